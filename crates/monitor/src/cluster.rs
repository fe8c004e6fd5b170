//! Cluster health: each node of the broker (from its HTTP monitor, given with
//! `--nats-monitor-url`) and each of hail's streams' RAFT group (from stream
//! info: leader, and per follower current, offline, lag and last seen).
//!
//! Under prometheus-nats-exporter's names where it has the fact:
//! `nats_healthz_status` (its `-healthz` collector: 0 healthy, 1 not) and
//! `nats_varz_jetstream_meta_cluster_size` (its `-varz` collector, flattening
//! `/varz`'s `jetstream.meta.cluster_size`), both labelled `server_id`: the
//! node's NATS server id, as the exporter run with `-ri` labels it. The
//! exporter has no replica series, so those are hail's, labelled by
//! `stream_name` and the peer's `server_name` only:
//! `hail_nats_node_up`, `hail_nats_node_is_meta_leader`,
//! `hail_stream_replicas` and `hail_stream_replicas_current` (the leader
//! plus the followers caught up),
//! `hail_stream_replica_current`, `hail_stream_replica_offline`,
//! `hail_stream_replica_lag`, `hail_stream_replica_active_seconds` and
//! `hail_stream_is_leader`. Without monitor URLs the only node is the server
//! the monitor is connected to.

use std::collections::HashMap;

use async_nats::jetstream;
use hail_events::subjects;
use hail_probe::http_get;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

/// The streams whose RAFT groups are watched: hail's three and its KV buckets'.
pub const STREAMS: [&str; 6] = [
    subjects::RIDES_STREAM,
    subjects::DRIVERS_STREAM,
    subjects::DLQ_STREAM,
    "KV_hail_claims",
    "KV_hail_analytics",
    "KV_hail_fraud_blocklist",
];

/// One node as its HTTP monitor showed it in this poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeReading {
    /// Its monitor base URL, as configured.
    pub url: String,
    /// Its server name (last known when it does not answer; the URL before any answer).
    pub server_name: String,
    /// Its server id (last known; the URL before any answer).
    pub server_id: String,
    /// Its monitor answered `/jsz`.
    pub up: bool,
    /// `/healthz` answered 200 (JetStream current with a meta leader);
    /// None when it was not asked (no monitor URL: the connected server).
    pub healthy: Option<bool>,
    /// The meta leader it names.
    pub meta_leader: Option<String>,
    /// The meta group's size it reports.
    pub cluster_size: Option<u64>,
    /// JetStream is not clustered there: the node is its own meta group
    /// (the exporter's `is_meta_leader` is "true" then, `meta_leader` empty).
    pub standalone: bool,
}

/// Reads every node; `known` keeps each URL's last name and id, so a node
/// that is down keeps its labels.
pub async fn read_nodes(
    urls: &[String],
    known: &mut HashMap<String, (String, String)>,
) -> Vec<NodeReading> {
    let mut out = Vec::new();
    for url in urls {
        let base = url.trim_end_matches('/');
        // /varz names the server; /jsz names the meta leader and the group's size.
        let varz = get_json(&format!("{base}/varz")).await;
        let jsz = get_json(&format!("{base}/jsz")).await;
        let healthy = Some(matches!(
            get(&format!("{base}/healthz")).await,
            Some((200, _))
        ));
        let mut node = NodeReading {
            url: url.clone(),
            up: jsz.is_some(),
            healthy,
            ..NodeReading::default()
        };
        let text = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
        if let Some(v) = &varz
            && let (Some(name), Some(id)) = (text(&v["server_name"]), text(&v["server_id"]))
        {
            known.insert(url.clone(), (name, id));
        }
        if let Some(j) = &jsz {
            node.meta_leader = text(&j["meta_cluster"]["leader"]);
            node.cluster_size = j["meta_cluster"]["cluster_size"].as_u64();
            node.standalone = j["meta_cluster"].is_null();
        }
        let (name, id) = known
            .get(url)
            .cloned()
            .unwrap_or_else(|| (url.clone(), url.clone()));
        node.server_name = name;
        node.server_id = id;
        out.push(node);
    }
    out
}

/// How long a node's monitor gets to answer: a paused node must not stall the poll.
const NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

async fn get(url: &str) -> Option<(u16, String)> {
    tokio::time::timeout(NODE_TIMEOUT, http_get(url))
        .await
        .ok()?
        .ok()
}

async fn get_json(url: &str) -> Option<serde_json::Value> {
    match get(url).await? {
        (200, body) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

/// Without monitor URLs: the server the client is connected to, which is up,
/// and is its own meta group when it is not clustered.
pub fn connected_node(client: &async_nats::Client) -> NodeReading {
    let info = client.server_info();
    let clustered = info.cluster.as_deref().is_some_and(|c| !c.is_empty());
    NodeReading {
        url: String::new(),
        server_name: info.server_name,
        server_id: info.server_id,
        up: true,
        healthy: None,
        meta_leader: None,
        cluster_size: None,
        standalone: !clustered,
    }
}

/// The meta leader as the nodes that answer name it (the first that names one).
pub fn meta_leader(nodes: &[NodeReading]) -> Option<String> {
    nodes.iter().find_map(|n| n.meta_leader.clone())
}

/// One stream's RAFT group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReading {
    /// Stream name.
    pub stream: String,
    /// Configured replicas.
    pub replicas: usize,
    /// Server name of the leader.
    pub leader: Option<String>,
    /// Followers as the leader sees them.
    pub peers: Vec<jetstream::stream::PeerInfo>,
}

impl GroupReading {
    /// The leader (a single server's stream counts as led) plus every
    /// follower that is current and online.
    pub fn replicas_current(&self) -> usize {
        let led = usize::from(self.leader.is_some() || self.peers.is_empty());
        led + self
            .peers
            .iter()
            .filter(|p| p.current && !p.offline)
            .count()
    }
}

/// The RAFT group of each of [`STREAMS`] that exists.
pub async fn read_groups(js: &jetstream::Context) -> Vec<GroupReading> {
    let mut out = Vec::new();
    for name in STREAMS {
        let Ok(mut stream) = js.get_stream(name).await else {
            continue;
        };
        let Ok(info) = stream.info().await else {
            continue;
        };
        let cluster = info.cluster.clone();
        out.push(GroupReading {
            stream: name.to_string(),
            replicas: info.config.num_replicas,
            leader: cluster.as_ref().and_then(|c| c.leader.clone()),
            peers: cluster.map(|c| c.replicas).unwrap_or_default(),
        });
    }
    out
}

/// The gauges of this module, and the label sets last set, so rows of a
/// node or peer that is gone are removed.
pub struct ClusterSeries {
    healthz: IntGaugeVec,
    cluster_size: IntGaugeVec,
    node_up: IntGaugeVec,
    is_meta_leader: IntGaugeVec,
    replicas: IntGaugeVec,
    replicas_current: IntGaugeVec,
    is_leader: IntGaugeVec,
    current: IntGaugeVec,
    offline: IntGaugeVec,
    lag: IntGaugeVec,
    active: GaugeVec,
    rows: Vec<(IntGaugeVec, Vec<String>)>,
    active_rows: Vec<Vec<String>>,
}

fn ints(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl ClusterSeries {
    /// Creates and registers every series.
    pub fn register(r: &Registry) -> prometheus::Result<Self> {
        let node = &["server_name"];
        let peer = &["stream_name", "server_name"];
        let active = GaugeVec::new(
            Opts::new(
                "hail_stream_replica_active_seconds",
                "seconds since the stream's leader last heard from this follower",
            ),
            peer,
        )?;
        r.register(Box::new(active.clone()))?;
        Ok(ClusterSeries {
            healthz: ints(r, "nats_healthz_status", "status", &["server_id"])?,
            cluster_size: ints(
                r,
                "nats_varz_jetstream_meta_cluster_size",
                "jetstream_meta_cluster_size",
                &["server_id"],
            )?,
            node_up: ints(
                r,
                "hail_nats_node_up",
                "1 when the node's HTTP monitor answers",
                node,
            )?,
            is_meta_leader: ints(
                r,
                "hail_nats_node_is_meta_leader",
                "1 for the node leading the JetStream meta group",
                node,
            )?,
            replicas: ints(
                r,
                "hail_stream_replicas",
                "replicas the stream is configured with",
                &["stream_name"],
            )?,
            replicas_current: ints(
                r,
                "hail_stream_replicas_current",
                "replicas of the stream that are current: its leader and the followers caught up with it",
                &["stream_name"],
            )?,
            is_leader: ints(
                r,
                "hail_stream_is_leader",
                "1 for the node leading the stream's RAFT group, 0 for its followers",
                peer,
            )?,
            current: ints(
                r,
                "hail_stream_replica_current",
                "1 when the follower is caught up with the stream's leader",
                peer,
            )?,
            offline: ints(
                r,
                "hail_stream_replica_offline",
                "1 when the stream's group considers the follower offline",
                peer,
            )?,
            lag: ints(
                r,
                "hail_stream_replica_lag",
                "operations the follower is behind the stream's leader",
                peer,
            )?,
            active,
            rows: Vec::new(),
            active_rows: Vec::new(),
        })
    }

    /// Sets every series from one poll, removing rows not set again.
    pub fn update(&mut self, nodes: &[NodeReading], groups: &[GroupReading]) {
        let old_rows = std::mem::take(&mut self.rows);
        let old_active = std::mem::take(&mut self.active_rows);
        let leader = meta_leader(nodes);
        for n in nodes {
            if let Some(healthy) = n.healthy {
                self.set(&self.healthz.clone(), &[&n.server_id], i64::from(!healthy));
            }
            if let Some(size) = n.cluster_size {
                self.set(&self.cluster_size.clone(), &[&n.server_id], size as i64);
            }
            self.set(&self.node_up.clone(), &[&n.server_name], i64::from(n.up));
            let leads = n.standalone || leader.as_deref() == Some(n.server_name.as_str());
            self.set(
                &self.is_meta_leader.clone(),
                &[&n.server_name],
                i64::from(leads),
            );
        }
        for g in groups {
            self.set(&self.replicas.clone(), &[&g.stream], g.replicas as i64);
            self.set(
                &self.replicas_current.clone(),
                &[&g.stream],
                g.replicas_current() as i64,
            );
            if let Some(l) = &g.leader {
                self.set(&self.is_leader.clone(), &[&g.stream, l], 1);
            }
            for p in &g.peers {
                let l = [g.stream.as_str(), p.name.as_str()];
                self.set(&self.is_leader.clone(), &l, 0);
                self.set(&self.current.clone(), &l, i64::from(p.current));
                self.set(&self.offline.clone(), &l, i64::from(p.offline));
                self.set(&self.lag.clone(), &l, p.lag.unwrap_or(0) as i64);
                self.active
                    .with_label_values(&l)
                    .set(p.active.as_secs_f64());
                self.active_rows
                    .push(l.iter().map(|s| s.to_string()).collect());
            }
        }
        for (g, values) in old_rows {
            if !self.rows.iter().any(|(h, v)| same(h, &g) && *v == values) {
                let _ = g.remove_label_values(&values);
            }
        }
        for values in old_active {
            if !self.active_rows.contains(&values) {
                let _ = self.active.remove_label_values(&values);
            }
        }
    }

    fn set(&mut self, g: &IntGaugeVec, values: &[&str], v: i64) {
        g.with_label_values(values).set(v);
        self.rows
            .push((g.clone(), values.iter().map(|s| s.to_string()).collect()));
    }
}

/// Whether two handles are the same vector (same name).
fn same(a: &IntGaugeVec, b: &IntGaugeVec) -> bool {
    use prometheus::core::Collector as _;
    a.desc()[0].fq_name == b.desc()[0].fq_name
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn node(name: &str, up: bool, leader: Option<&str>) -> NodeReading {
        NodeReading {
            url: format!("http://{name}"),
            server_name: name.into(),
            server_id: format!("ID-{name}"),
            up,
            healthy: Some(up),
            meta_leader: leader.map(String::from),
            cluster_size: up.then_some(3),
            standalone: false,
        }
    }

    #[test]
    fn exports_nodes_and_replicas_and_drops_what_is_gone() {
        let registry = Registry::new();
        let mut series = ClusterSeries::register(&registry).unwrap();
        let nodes = [
            node("nats-1", true, Some("nats-2")),
            node("nats-2", true, Some("nats-2")),
            node("nats-3", false, None),
        ];
        let group = GroupReading {
            stream: "RIDES".into(),
            replicas: 3,
            leader: Some("nats-1".into()),
            peers: vec![jetstream::stream::PeerInfo {
                name: "nats-3".into(),
                current: false,
                active: Duration::from_secs(4),
                offline: true,
                lag: Some(12),
            }],
        };
        series.update(&nodes, std::slice::from_ref(&group));
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        for line in [
            "hail_nats_node_is_meta_leader{server_name=\"nats-2\"} 1",
            "hail_nats_node_up{server_name=\"nats-3\"} 0",
            "nats_healthz_status{server_id=\"ID-nats-3\"} 1",
            "nats_varz_jetstream_meta_cluster_size{server_id=\"ID-nats-1\"} 3",
            "hail_stream_is_leader{server_name=\"nats-1\",stream_name=\"RIDES\"} 1",
            "hail_stream_replica_lag{server_name=\"nats-3\",stream_name=\"RIDES\"} 12",
            "hail_stream_replica_current{server_name=\"nats-3\",stream_name=\"RIDES\"} 0",
            "hail_stream_replica_active_seconds{server_name=\"nats-3\",stream_name=\"RIDES\"} 4",
            "hail_stream_replicas_current{stream_name=\"RIDES\"} 1",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        series.update(&nodes, &[]);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(!text.contains("hail_stream_replica_lag{"), "{text}");
        assert!(text.contains("hail_nats_node_up{server_name=\"nats-3\"} 0"));
    }

    #[test]
    fn the_meta_leader_is_the_first_named() {
        let nodes = [
            node("nats-1", false, None),
            node("nats-2", true, Some("nats-3")),
        ];
        assert_eq!(meta_leader(&nodes).as_deref(), Some("nats-3"));
        assert_eq!(meta_leader(&[]), None);
    }
}
