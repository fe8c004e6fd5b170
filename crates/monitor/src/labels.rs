//! The labels prometheus-nats-exporter puts on its JetStream series (`-jsz`):
//! the server that answered, its account, then the stream and the consumer
//! with their leaders, in the exporter's order.
//!
//! The exporter reads them from the server's `/jsz` monitoring endpoint; the
//! monitor reads the same facts from the connection's INFO, the account's
//! `$SYS.REQ.USER.INFO` and the JetStream API's stream and consumer info.
//! `meta_leader` only `/jsz` knows: it is read from the nodes' HTTP monitors
//! (`--nats-monitor-url`, [`crate::cluster`]); without them it stays empty,
//! and so does `is_meta_leader` on a clustered server (the exporter's
//! `"true"` when JetStream is not clustered, as it says then too).

use std::time::Duration;

use serde::Deserialize;

use crate::poll::{ConsumerReading, StreamReading};

/// Labels of the server and its account, first on every series.
const SERVER: [&str; 9] = [
    "server_id",
    "server_name",
    "cluster",
    "domain",
    "meta_leader",
    "is_meta_leader",
    "account",
    "account_name",
    "account_id",
];

/// Labels of a `nats_stream_*` series.
pub const STREAM: [&str; 13] = [
    SERVER[0],
    SERVER[1],
    SERVER[2],
    SERVER[3],
    SERVER[4],
    SERVER[5],
    SERVER[6],
    SERVER[7],
    SERVER[8],
    "stream_name",
    "stream_leader",
    "is_stream_leader",
    "stream_raft_group",
];

/// Labels of a `nats_consumer_*` series: the stream's, then the consumer's.
pub const CONSUMER: [&str; 17] = [
    STREAM[0],
    STREAM[1],
    STREAM[2],
    STREAM[3],
    STREAM[4],
    STREAM[5],
    STREAM[6],
    STREAM[7],
    STREAM[8],
    STREAM[9],
    STREAM[10],
    STREAM[11],
    STREAM[12],
    "consumer_name",
    "consumer_leader",
    "is_consumer_leader",
    "consumer_desc",
];

/// Where a RAFT group (stream or consumer) lives: its leader and group name,
/// `None` when the server does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Server name of the group's leader.
    pub leader: Option<String>,
    /// Name of the RAFT group.
    pub raft_group: Option<String>,
}

impl Placement {
    /// From the `cluster` field of a stream or consumer info.
    pub fn from_cluster(cluster: Option<&async_nats::jetstream::stream::ClusterInfo>) -> Self {
        Placement {
            leader: cluster.and_then(|c| c.leader.clone()),
            raft_group: cluster.and_then(|c| c.raft_group.clone()),
        }
    }
}

/// The server the monitor is connected to, and its account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The server's id.
    pub server_id: String,
    /// The server's name (what leaders are named by).
    pub server_name: String,
    /// The server's cluster, when it has one.
    pub cluster: Option<String>,
    /// The server's JetStream domain, when it has one.
    pub domain: Option<String>,
    /// The account's name.
    pub account_name: String,
    /// The account's id (its public key; `$G` without operator mode).
    pub account_id: String,
    /// The meta group's leader, from a node's `/jsz` (None: not known).
    pub meta_leader: Option<String>,
}

#[derive(Deserialize)]
struct UserInfoReply {
    data: UserInfo,
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default)]
    account: String,
    #[serde(default)]
    account_name: String,
}

/// The connection's user and account, as the server tells any client;
/// None when it does not answer in time or in a form this reads.
async fn user_info(client: &async_nats::Client) -> Option<UserInfo> {
    let request = client.request("$SYS.REQ.USER.INFO", "".into());
    let reply = tokio::time::timeout(USER_INFO_TIMEOUT, request)
        .await
        .ok()?
        .ok()?;
    let parsed: UserInfoReply = serde_json::from_slice(&reply.payload).ok()?;
    Some(parsed.data)
}

/// How long the account lookup waits for the server.
const USER_INFO_TIMEOUT: Duration = Duration::from_secs(2);

impl Origin {
    /// The connection's server and the account it is bound to; the account
    /// stays empty when the server does not answer `$SYS.REQ.USER.INFO`.
    pub async fn discover(client: &async_nats::Client) -> Origin {
        let mut origin = Origin::default();
        origin.refresh(client);
        match user_info(client).await {
            Some(info) => {
                origin.account_id = info.account;
                origin.account_name = if info.account_name.is_empty() {
                    origin.account_id.clone()
                } else {
                    info.account_name
                };
            }
            None => tracing::warn!("no account from $SYS.REQ.USER.INFO: account labels left empty"),
        }
        origin
    }

    /// Re-reads the server fields from the connection (it may have moved to
    /// another server of the cluster).
    pub fn refresh(&mut self, client: &async_nats::Client) {
        let info = client.server_info();
        self.server_id = info.server_id;
        self.server_name = info.server_name;
        self.cluster = info.cluster.filter(|c| !c.is_empty());
        self.domain = info.domain.filter(|d| !d.is_empty());
    }

    /// Values of [`STREAM`] for `s`.
    pub fn stream(&self, s: &StreamReading) -> Vec<String> {
        let is_meta_leader = match (&self.cluster, &self.meta_leader) {
            (None, _) => "true",
            (Some(_), None) => "",
            (Some(_), Some(l)) if *l == self.server_name => "true",
            (Some(_), Some(_)) => "false",
        };
        vec![
            self.server_id.clone(),
            self.server_name.clone(),
            self.cluster.clone().unwrap_or_default(),
            self.domain.clone().unwrap_or_default(),
            self.meta_leader.clone().unwrap_or_default(),
            is_meta_leader.to_string(),
            self.account_name.clone(),
            self.account_name.clone(),
            self.account_id.clone(),
            s.name.clone(),
            s.placement.leader.clone().unwrap_or_default(),
            self.is_leader(&s.placement).to_string(),
            s.placement.raft_group.clone().unwrap_or_default(),
        ]
    }

    /// Values of [`CONSUMER`] for `c` of stream `s`.
    pub fn consumer(&self, s: &StreamReading, c: &ConsumerReading) -> Vec<String> {
        let mut values = self.stream(s);
        values.extend([
            c.consumer.clone(),
            c.placement.leader.clone().unwrap_or_default(),
            self.is_leader(&c.placement).to_string(),
            c.description.clone(),
        ]);
        values
    }

    /// As the exporter: `"true"` when this server leads the group, or when
    /// the group has no leader to name (not clustered).
    fn is_leader(&self, p: &Placement) -> &'static str {
        match &p.leader {
            Some(l) if *l != self.server_name => "false",
            _ => "true",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{retention::StreamWindow, status::Sample};

    fn origin() -> Origin {
        Origin {
            server_id: "NID".into(),
            server_name: "n1".into(),
            cluster: None,
            domain: Some("hub".into()),
            account_name: "$G".into(),
            account_id: "$G".into(),
            meta_leader: None,
        }
    }

    fn stream(leader: Option<&str>) -> StreamReading {
        StreamReading {
            name: "RIDES".into(),
            window: StreamWindow::default(),
            consumer_count: 1,
            subject_count: 1,
            limit_bytes: -1,
            limit_messages: -1,
            placement: Placement {
                leader: leader.map(String::from),
                raft_group: None,
            },
        }
    }

    #[test]
    fn stream_values_follow_the_exporter_order() {
        let v = origin().stream(&stream(Some("n1")));
        assert_eq!(v.len(), STREAM.len());
        let pairs: Vec<(&str, &str)> = STREAM
            .iter()
            .copied()
            .zip(v.iter().map(String::as_str))
            .collect();
        assert_eq!(
            pairs,
            [
                ("server_id", "NID"),
                ("server_name", "n1"),
                ("cluster", ""),
                ("domain", "hub"),
                ("meta_leader", ""),
                ("is_meta_leader", "true"),
                ("account", "$G"),
                ("account_name", "$G"),
                ("account_id", "$G"),
                ("stream_name", "RIDES"),
                ("stream_leader", "n1"),
                ("is_stream_leader", "true"),
                ("stream_raft_group", ""),
            ]
        );
    }

    #[test]
    fn a_consumer_led_elsewhere_is_not_led_here() {
        let c = ConsumerReading {
            stream: "RIDES".into(),
            consumer: "pricing".into(),
            sample: Sample::default(),
            delivered_consumer_seq: 0,
            ack_floor_consumer_seq: 0,
            redelivered: 0,
            since_delivery: None,
            since_ack: None,
            oldest_owed: None,
            placement: Placement {
                leader: Some("n2".into()),
                raft_group: Some("C-1".into()),
            },
            description: "fares".into(),
        };
        let mut o = origin();
        o.cluster = Some("east".into());
        let v = o.consumer(&stream(None), &c);
        assert_eq!(v.len(), CONSUMER.len());
        assert_eq!(&v[13..], ["pricing", "n2", "false", "fares"]);
        assert_eq!(v[5], "", "meta leadership unknown when clustered");
        o.meta_leader = Some("n2".into());
        let v = o.consumer(&stream(None), &c);
        assert_eq!((v[4].as_str(), v[5].as_str()), ("n2", "false"));
        o.meta_leader = Some("n1".into());
        assert_eq!(o.consumer(&stream(None), &c)[5], "true");
        assert_eq!(
            v[11], "true",
            "a stream without a leader counts as led here"
        );
    }
}
