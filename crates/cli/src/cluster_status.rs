//! `hail status` on a cluster: each node's health (its HTTP monitor up,
//! JetStream current with a meta leader, whether it leads the meta group) and
//! each stream's leader and replicas, current or lagging. Shown only when the
//! server the CLI is connected to is clustered; the readings are
//! hail-monitor's ([`hail_monitor::cluster`]).

use std::collections::HashMap;

use anyhow::Result;
use async_nats::jetstream;
use hail_monitor::cluster::{self, GroupReading, NodeReading};
use serde::Serialize;

use crate::stack::{Layout, Topology};

/// The flag `hail status` takes for the cluster view.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// HTTP monitor URL of every broker node, comma-separated, for each
    /// node's health [default: the local stack's nodes after `hail up --cluster`].
    #[arg(long, env = "HAIL_NATS_MONITOR_URL", value_delimiter = ',')]
    nats_monitor_url: Vec<String>,
}

/// Name and id of a node by its monitor URL, as [`cluster::read_nodes`] keeps them.
type Known = HashMap<String, (String, String)>;

impl ClusterArgs {
    /// The monitor URLs to read, and the names of the local stack's nodes
    /// (so a node that is down is still named, not shown as its URL).
    fn monitor_urls(&self) -> (Vec<String>, Known) {
        if !self.nats_monitor_url.is_empty() {
            return (self.nats_monitor_url.clone(), Known::new());
        }
        let topology = Layout::discover()
            .map(|l| Topology::recorded(&l))
            .unwrap_or(Topology::SINGLE);
        if !topology.is_cluster() {
            return (Vec::new(), Known::new());
        }
        let urls: Vec<String> = topology
            .monitor_urls()
            .split(',')
            .map(String::from)
            .collect();
        let known = urls
            .iter()
            .zip(topology.names())
            .map(|(url, name)| (url.clone(), (name, String::new())))
            .collect();
        (urls, known)
    }
}

/// The cluster view, when the server is clustered.
#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub meta_leader: Option<String>,
    pub nodes: Vec<NodeStatus>,
    pub streams: Vec<StreamStatus>,
}

/// One node's line.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub node: String,
    pub up: bool,
    pub jetstream_current: bool,
    pub meta_leader: bool,
}

/// One stream's line.
#[derive(Debug, Serialize)]
pub struct StreamStatus {
    pub stream: String,
    pub replicas: usize,
    pub leader: Option<String>,
    pub current: Vec<String>,
    pub lagging: Vec<String>,
}

/// Reads the cluster view; None when the server is not clustered.
pub async fn read(js: &jetstream::Context, args: &ClusterArgs) -> Option<ClusterStatus> {
    let name = js
        .client()
        .server_info()
        .cluster
        .filter(|c| !c.is_empty())?;
    let (urls, mut known) = args.monitor_urls();
    let nodes = cluster::read_nodes(&urls, &mut known).await;
    let groups = cluster::read_groups(js).await;
    Some(view(name, &nodes, &groups))
}

fn view(name: String, nodes: &[NodeReading], groups: &[GroupReading]) -> ClusterStatus {
    let meta_leader = cluster::meta_leader(nodes);
    ClusterStatus {
        cluster: name,
        nodes: nodes
            .iter()
            .map(|n| NodeStatus {
                node: n.server_name.clone(),
                up: n.up,
                jetstream_current: n.healthy == Some(true),
                meta_leader: meta_leader.as_deref() == Some(n.server_name.as_str()),
            })
            .collect(),
        meta_leader,
        streams: groups
            .iter()
            .map(|g| {
                let (current, lagging) = g
                    .peers
                    .iter()
                    .partition::<Vec<_>, _>(|p| p.current && !p.offline);
                StreamStatus {
                    stream: g.stream.clone(),
                    replicas: g.replicas,
                    leader: g.leader.clone(),
                    current: current.iter().map(|p| p.name.clone()).collect(),
                    lagging: lagging
                        .iter()
                        .map(|p| match (p.offline, p.lag) {
                            (true, _) => format!("{} (offline)", p.name),
                            (false, Some(lag)) if lag > 0 => format!("{} ({lag} behind)", p.name),
                            _ => p.name.clone(),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

/// Prints the cluster view after the services' table, when clustered.
pub async fn print(js: &jetstream::Context, args: &ClusterArgs) -> Result<()> {
    let Some(c) = read(js, args).await else {
        return Ok(());
    };
    println!();
    println!(
        "cluster {}: meta leader {}",
        c.cluster,
        c.meta_leader.as_deref().unwrap_or("none")
    );
    if c.nodes.is_empty() {
        println!("  (no node monitor URLs: pass --nats-monitor-url for each node's health)");
    } else {
        println!(
            "{:<10} {:<6} {:<10} {:<6}",
            "node", "state", "jetstream", "meta"
        );
    }
    for n in &c.nodes {
        println!(
            "{:<10} {:<6} {:<10} {:<6}",
            n.node,
            if n.up { "up" } else { "down" },
            if n.jetstream_current {
                "current"
            } else if n.up {
                "behind"
            } else {
                "-"
            },
            if n.meta_leader { "leader" } else { "" }
        );
    }
    println!();
    println!(
        "{:<24} {:>8} {:<8} {:<20} lagging",
        "stream", "replicas", "leader", "current"
    );
    let dash = || "-".to_string();
    for s in &c.streams {
        println!(
            "{:<24} {:>8} {:<8} {:<20} {}",
            s.stream,
            s.replicas,
            s.leader.clone().unwrap_or_else(|| "none".into()),
            if s.current.is_empty() {
                dash()
            } else {
                s.current.join(",")
            },
            if s.lagging.is_empty() {
                dash()
            } else {
                s.lagging.join(", ")
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_nats::jetstream::stream::PeerInfo;

    use super::*;

    #[test]
    fn a_follower_offline_or_behind_is_lagging() {
        let node = |name: &str, up: bool| NodeReading {
            url: String::new(),
            server_name: name.into(),
            server_id: String::new(),
            up,
            healthy: Some(up),
            meta_leader: up.then(|| "nats-1".to_string()),
            cluster_size: None,
            standalone: false,
        };
        let peer = |name: &str, current: bool, offline: bool, lag: u64| PeerInfo {
            name: name.into(),
            current,
            active: Duration::ZERO,
            offline,
            lag: Some(lag),
        };
        let group = GroupReading {
            stream: "RIDES".into(),
            replicas: 3,
            leader: Some("nats-1".into()),
            peers: vec![
                peer("nats-2", true, false, 0),
                peer("nats-3", false, true, 5),
            ],
        };
        let v = view(
            "hail".into(),
            &[node("nats-1", true), node("nats-3", false)],
            &[group],
        );
        assert_eq!(v.meta_leader.as_deref(), Some("nats-1"));
        assert!(v.nodes[0].meta_leader && !v.nodes[1].up);
        assert_eq!(v.streams[0].current, ["nats-2"]);
        assert_eq!(v.streams[0].lagging, ["nats-3 (offline)"]);
    }
}
