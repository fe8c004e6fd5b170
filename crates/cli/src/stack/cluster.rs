//! The local stack's broker: one nats-server (`nats-server`, the default) or a
//! JetStream cluster of nodes `nats-1..N` (`hail up --cluster N`), each from
//! deploy/local/nats-cluster.conf with its own ports and store. The choice is
//! recorded under the state folder, so `hail kill nats-2`, `hail start
//! nats-2`, `hail status` and `hail down` find the nodes again.

use std::fs;

use anyhow::{Context as _, Result};

use super::{Component, Layout};

/// The single server's name in the stack.
pub const SINGLE: &str = "nats-server";
/// Client port of the single server and of node 1; node n uses `+ n - 1`.
const CLIENT_PORT: u16 = 4222;
/// Route port of node 1.
const ROUTE_PORT: u16 = 6222;
/// HTTP monitor port of the single server and of node 1.
const MONITOR_PORT: u16 = 8222;
/// Most nodes `--cluster` accepts (the ports of node 10 would meet other defaults).
pub const MAX_NODES: usize = 9;

/// How many nats-servers the stack runs: 1 (a single server) or a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    /// Number of nodes; 1 is the single server `nats-server`.
    pub nodes: usize,
}

impl Topology {
    /// A single server.
    pub const SINGLE: Topology = Topology { nodes: 1 };

    /// What `hail up` last started (a single server if it never recorded a cluster).
    pub fn recorded(layout: &Layout) -> Topology {
        let nodes = fs::read_to_string(record(layout))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|n| (2..=MAX_NODES).contains(n))
            .unwrap_or(1);
        Topology { nodes }
    }

    /// Records this topology for later commands (a single server removes the record).
    pub fn record(self, layout: &Layout) -> Result<()> {
        let path = record(layout);
        if self.is_cluster() {
            fs::create_dir_all(layout.state.join("run"))?;
            fs::write(&path, format!("{}\n", self.nodes))
                .with_context(|| format!("writing {}", path.display()))
        } else {
            let _ = fs::remove_file(&path);
            Ok(())
        }
    }

    /// True for more than one node.
    pub fn is_cluster(self) -> bool {
        self.nodes > 1
    }

    /// The process names: `nats-server`, or `nats-1..N`.
    pub fn names(self) -> Vec<String> {
        if self.is_cluster() {
            (1..=self.nodes).map(|n| format!("nats-{n}")).collect()
        } else {
            vec![SINGLE.to_string()]
        }
    }

    /// The client URLs of every node, comma-separated: the `--nats-url` of
    /// every process of the stack.
    pub fn seeds(self) -> String {
        (0..self.nodes)
            .map(|i| format!("nats://127.0.0.1:{}", CLIENT_PORT + i as u16))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The HTTP monitor URL of every node, comma-separated.
    pub fn monitor_urls(self) -> String {
        (0..self.nodes)
            .map(|i| format!("http://127.0.0.1:{}", MONITOR_PORT + i as u16))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node called `name` (`nats-server`, `nats-2`) as a component.
    pub fn component(self, layout: &Layout, name: &str, sync: &str) -> Result<Option<Component>> {
        if name == SINGLE && !self.is_cluster() {
            return Component::nats(layout, sync).map(Some);
        }
        let Some(n) = name.strip_prefix("nats-").and_then(|n| n.parse().ok()) else {
            return Ok(None);
        };
        anyhow::ensure!(
            self.is_cluster() && (1..=self.nodes).contains(&n),
            "{name}: the stack runs {}",
            self.names().join(", ")
        );
        node(layout, self, n, sync).map(Some)
    }
}

fn record(layout: &Layout) -> std::path::PathBuf {
    layout.state.join("run").join("cluster")
}

/// Node `n` (1-based) of `topology`: its config rendered from the template
/// with its ports, routes to every node and the sync policy, its store
/// `<state>/nats-<n>`. Ready once JetStream is enabled; that it has a meta
/// leader is waited for after every node has started ([`healthy_url`]).
fn node(layout: &Layout, topology: Topology, n: usize, sync: &str) -> Result<Component> {
    let program = layout.tool("nats-server", "NATS_SERVER_BIN", "run ./dev install")?;
    let name = format!("nats-{n}");
    let offset = (n - 1) as u16;
    let routes: Vec<String> = (0..topology.nodes)
        .map(|i| format!("nats-route://127.0.0.1:{}", ROUTE_PORT + i as u16))
        .collect();
    let template = super::component::read_config(layout, "nats-cluster.conf", sync)?;
    let mut rendered = template
        .replace("{name}", &name)
        .replace("{client_port}", &(CLIENT_PORT + offset).to_string())
        .replace("{monitor_port}", &(MONITOR_PORT + offset).to_string())
        .replace("{route_port}", &(ROUTE_PORT + offset).to_string())
        .replace("{routes}", &routes.join(", "));
    if layout.auth_on() {
        super::component::add_identities(layout, &mut rendered)?;
    }
    let config = layout.state.join(format!("{name}.conf"));
    fs::create_dir_all(&layout.state)?;
    fs::write(&config, rendered).with_context(|| format!("writing {}", config.display()))?;
    let monitor = MONITOR_PORT + offset;
    Ok(Component {
        name: name.clone(),
        program,
        args: vec![
            "-c".into(),
            config.display().to_string(),
            "-sd".into(),
            layout.state.join(&name).display().to_string(),
        ],
        env: Vec::new(),
        ready_url: format!("http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"),
        url: format!(
            "nats://127.0.0.1:{} (monitor http://127.0.0.1:{monitor}, sync {sync})",
            CLIENT_PORT + offset
        ),
    })
}

/// A node's full health: JetStream current with a meta leader.
pub fn healthy_url(c: &Component) -> String {
    c.ready_url.replace("?js-enabled-only=true", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_names_follow_the_node_count() {
        let single = Topology::SINGLE;
        assert_eq!(single.seeds(), "nats://127.0.0.1:4222");
        assert_eq!(single.names(), ["nats-server"]);
        let three = Topology { nodes: 3 };
        assert_eq!(
            three.seeds(),
            "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
        );
        assert_eq!(three.names(), ["nats-1", "nats-2", "nats-3"]);
        assert_eq!(
            three.monitor_urls(),
            "http://127.0.0.1:8222,http://127.0.0.1:8223,http://127.0.0.1:8224"
        );
    }
}
