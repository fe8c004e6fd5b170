//! A private 3-node (or N-node) nats-server cluster with JetStream, for one
//! test: loopback ports chosen up front (client, route and monitor per node),
//! one store per node, server names `nats-1..N`, killed on drop. Any node can
//! be SIGKILLed, paused (SIGSTOP/SIGCONT) and restarted on its own store and
//! ports, and the cluster says which node leads the meta group or a stream.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tempfile::TempDir;

use crate::bins::nats_server_bin;
use crate::http::http_get;
use crate::launch::Launch;
use crate::nats_server::DEFAULT_MAX_FILE_STORE;
use crate::port::free_port;
use crate::process::{Process, read_log};
use crate::wait::wait_until;

/// The cluster's name (`cluster.name` in every node's config).
pub const CLUSTER_NAME: &str = "hail-test";
/// How long a (re)started node, or a new cluster, gets to become healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One node's ports, fixed for its whole life so a restart reuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePorts {
    /// Client port.
    pub client: u16,
    /// Cluster route port.
    pub route: u16,
    /// HTTP monitor port.
    pub monitor: u16,
}

#[derive(Debug)]
struct Node {
    name: String,
    ports: NodePorts,
    config: PathBuf,
    log: PathBuf,
    /// Where the current run's lines start in `log` (a restart appends).
    log_start: usize,
    process: Option<Process>,
}

/// A JetStream cluster on 127.0.0.1; every node SIGKILLed on drop, then the
/// temporary directory with every store removed.
#[derive(Debug)]
pub struct NatsCluster {
    bin: PathBuf,
    nodes: Vec<Node>,
    _dir: TempDir,
}

impl NatsCluster {
    /// Starts a 3-node cluster and waits until every node is healthy and the
    /// meta group has a leader.
    pub async fn start() -> Result<Self> {
        Self::start_with(3).await
    }

    /// Starts an `n`-node cluster, as [`NatsCluster::start`].
    pub async fn start_with(n: usize) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hail-nats-cluster-")
            .tempdir()
            .context("creating a temp dir for the cluster")?;
        let ports: Vec<NodePorts> = (0..n)
            .map(|_| NodePorts {
                client: free_port(),
                route: free_port(),
                monitor: free_port(),
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let name = node_name(i);
            let config = dir.path().join(format!("{name}.conf"));
            let store = dir.path().join(&name);
            fs::write(&config, render_config(&name, *p, &ports, &store))
                .with_context(|| format!("writing {}", config.display()))?;
            nodes.push(Node {
                log: dir.path().join(format!("{name}.log")),
                name,
                ports: *p,
                config,
                log_start: 0,
                process: None,
            });
        }
        let mut cluster = NatsCluster {
            bin: nats_server_bin()?,
            nodes,
            _dir: dir,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        for i in 0..n {
            cluster.wait_healthy(i).await?;
        }
        cluster.wait_meta_leader().await?;
        cluster.wait_meta_current().await?;
        Ok(cluster)
    }

    /// The seed list: every node's client URL, comma-separated, as
    /// `--nats-url` takes it.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| client_url(n.ports))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        client_url(self.nodes[i].ports)
    }

    /// Node `i`'s HTTP monitor base URL.
    pub fn monitor_url(&self, i: usize) -> String {
        monitor_url(self.nodes[i].ports)
    }

    /// Every node's HTTP monitor base URL, comma-separated.
    pub fn monitor_urls(&self) -> String {
        (0..self.len())
            .map(|i| self.monitor_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s server name, `nats-<i+1>`.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the node named `name` (`nats-2` → 1).
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| anyhow!("no node named {name:?} in the cluster"))
    }

    /// Node `i`'s ports.
    pub fn ports(&self, i: usize) -> NodePorts {
        self.nodes[i].ports
    }

    /// Node `i`'s log, all runs, for diagnostics.
    pub fn log(&self, i: usize) -> String {
        read_log(&self.nodes[i].log)
    }

    /// Node `i`'s process id, while it has a process.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].process.as_ref().map(Process::pid)
    }

    /// Whether node `i`'s process runs (it may be paused).
    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i]
            .process
            .as_mut()
            .is_some_and(Process::is_running)
    }

    /// SIGKILLs node `i`, as a crash would; its store stays.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            p.kill();
        }
    }

    /// SIGSTOPs node `i`: it keeps its sockets but answers nothing.
    pub fn pause(&self, i: usize) -> Result<()> {
        self.process(i)?.pause()
    }

    /// SIGCONTs a paused node `i`.
    pub fn resume(&self, i: usize) -> Result<()> {
        self.process(i)?.resume()
    }

    /// Starts node `i` again on its own ports and store (killing it first if
    /// it runs) and waits until it is healthy: JetStream up and in contact
    /// with a meta leader.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_healthy(i).await
    }

    /// Like [`NatsCluster::restart`], then waits until every node is current
    /// in the meta group again ([`NatsCluster::wait_meta_current`]).
    pub async fn restart_all_current(&mut self, i: usize) -> Result<()> {
        self.restart(i).await?;
        self.wait_meta_current().await
    }

    /// Like [`NatsCluster::restart`] without waiting: for a node that cannot
    /// become healthy alone (the others are down).
    pub fn restart_no_wait(&mut self, i: usize) -> Result<()> {
        self.kill(i);
        self.spawn(i)
    }

    /// The meta group's leader as any running node's `/jsz` names it.
    pub async fn meta_leader(&self) -> Option<String> {
        for i in 0..self.len() {
            if self.nodes[i].process.is_none() {
                continue;
            }
            let Ok(jsz) = self.jsz(i, "").await else {
                continue;
            };
            if let Some(l) = jsz["meta_cluster"]["leader"]
                .as_str()
                .filter(|l| !l.is_empty())
            {
                return Some(l.to_string());
            }
        }
        None
    }

    /// The leader of `stream` (in the global account) as the running nodes'
    /// `/jsz?accounts=true&streams=true` name it, and its followers as the
    /// leader itself sees them (a follower does not know whether the other is
    /// current); any node's view when the leader does not answer.
    pub async fn stream_placement(&self, stream: &str) -> Option<StreamPlacement> {
        let mut any = None;
        for i in 0..self.len() {
            if self.nodes[i].process.is_none() {
                continue;
            }
            let Ok(jsz) = self.jsz(i, "?accounts=true&streams=true").await else {
                continue;
            };
            let Some(p) = StreamPlacement::from_jsz(&jsz, stream) else {
                continue;
            };
            if p.leader.as_deref() == Some(self.name(i)) {
                return Some(p);
            }
            any.get_or_insert(p);
        }
        any.map(|p| StreamPlacement {
            followers: Vec::new(), // unknown: the leader did not answer
            ..p
        })
    }

    /// The node index of `stream`'s leader.
    pub async fn stream_leader(&self, stream: &str) -> Option<usize> {
        let leader = self.stream_placement(stream).await?.leader?;
        self.index_of(&leader).ok()
    }

    /// The node index of the meta leader.
    pub async fn meta_leader_index(&self) -> Option<usize> {
        self.index_of(&self.meta_leader().await?).ok()
    }

    /// Waits until the meta group has a leader.
    pub async fn wait_meta_leader(&self) -> Result<String> {
        wait_until(READY_TIMEOUT, "a meta leader", || async {
            self.meta_leader().await.is_some()
        })
        .await
        .with_context(|| self.logs_tail())?;
        self.meta_leader()
            .await
            .ok_or_else(|| anyhow!("the meta leader vanished"))
    }

    /// Waits until the meta leader sees every other node current and online:
    /// until then it may refuse to place a new stream on them ("no suitable
    /// peers for placement, peer offline").
    pub async fn wait_meta_current(&self) -> Result<()> {
        let others = self.len() - 1;
        wait_until(
            READY_TIMEOUT,
            "every node current in the meta group",
            || async {
                let Some(leader) = self.meta_leader_index().await else {
                    return false;
                };
                let Ok(jsz) = self.jsz(leader, "").await else {
                    return false;
                };
                jsz["meta_cluster"]["replicas"]
                    .as_array()
                    .is_some_and(|rs| {
                        rs.len() == others
                            && rs.iter().all(|r| {
                                r["current"].as_bool() == Some(true)
                                    && r["offline"].as_bool() != Some(true)
                            })
                    })
            },
        )
        .await
        .with_context(|| self.logs_tail())
    }

    /// Waits until `stream` has a leader and `replicas` replicas (leader
    /// included), every one current, as the leader reports them.
    pub async fn wait_stream_current(
        &self,
        stream: &str,
        replicas: usize,
        timeout: Duration,
    ) -> Result<StreamPlacement> {
        let what = format!("stream {stream} led with {replicas} replicas all current");
        wait_until(timeout, &what, || async {
            self.stream_placement(stream)
                .await
                .is_some_and(|p| p.leader.is_some() && p.all_current(replicas))
        })
        .await?;
        self.stream_placement(stream)
            .await
            .ok_or_else(|| anyhow!("stream {stream} vanished"))
    }

    /// `GET /jsz<query>` of node `i`, parsed.
    pub async fn jsz(&self, i: usize, query: &str) -> Result<serde_json::Value> {
        let url = format!("{}/jsz{query}", self.monitor_url(i));
        let (status, body) = http_get(&url).await?;
        if status != 200 {
            bail!("GET {url} answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("parsing GET {url}"))
    }

    /// The last lines of every node's log, for a failed wait.
    pub fn logs_tail(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let log = read_log(&n.log);
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            let _ = write!(out, "\n--- {} ({}):\n{tail}", n.name, n.log.display());
        }
        out
    }

    fn process(&self, i: usize) -> Result<&Process> {
        self.nodes[i]
            .process
            .as_ref()
            .ok_or_else(|| anyhow!("{} is not running", self.nodes[i].name))
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        node.log_start = fs::metadata(&node.log).map_or(0, |m| m.len() as usize);
        let process = Launch::new(&self.bin)
            .args([
                "-c".into(),
                node.config.display().to_string(),
                "-l".into(),
                node.log.display().to_string(),
            ])
            .log_file(node.log.with_extension("out"))
            .spawn()
            .with_context(|| format!("starting {}", node.name))?;
        node.process = Some(process);
        Ok(())
    }

    /// Waits until node `i` answers `/healthz` with 200: JetStream enabled and
    /// current with the meta leader. Gives up at once if the node's current
    /// run logged a fatal error (it may not exit on one, e.g. a route port
    /// taken), naming it.
    async fn wait_healthy(&mut self, i: usize) -> Result<()> {
        let url = format!("{}/healthz", self.monitor_url(i));
        let name = self.nodes[i].name.clone();
        let (log, log_start) = (self.nodes[i].log.clone(), self.nodes[i].log_start);
        let fatal = || {
            read_log(&log)
                .get(log_start..)
                .and_then(|run| run.lines().find(|l| l.contains("[FTL]")).map(str::to_owned))
        };
        let result = wait_until(READY_TIMEOUT, &format!("{name} healthy"), || async {
            fatal().is_some() || matches!(http_get(&url).await, Ok((200, _)))
        })
        .await;
        let result = match fatal() {
            Some(line) => Err(anyhow!("{name} stopped on a fatal error: {line}")),
            None => result,
        };
        if let Err(e) = result {
            let exited = !self.is_running(i);
            return Err(e).with_context(|| {
                format!(
                    "{name} (exited: {exited}) is not healthy; {}",
                    self.logs_tail()
                )
            });
        }
        Ok(())
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        // SIGKILL ends a paused node too.
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Where a stream's RAFT group stands: its leader and every replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamPlacement {
    /// Server name of the leader, if it has one.
    pub leader: Option<String>,
    /// The followers as the leader sees them: name, current, offline.
    pub followers: Vec<Replica>,
}

/// One follower of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Its server name.
    pub name: String,
    /// Caught up with the leader.
    pub current: bool,
    /// Considered offline by the group.
    pub offline: bool,
}

impl StreamPlacement {
    /// From a `/jsz?accounts=true&streams=true` answer; `None` when that node
    /// does not list the stream with a cluster section.
    pub fn from_jsz(jsz: &serde_json::Value, stream: &str) -> Option<Self> {
        let accounts = jsz["account_details"].as_array()?;
        let detail = accounts
            .iter()
            .filter_map(|a| a["stream_detail"].as_array())
            .flatten()
            .find(|s| s["name"] == stream)?;
        let cluster = &detail["cluster"];
        let leader = cluster["leader"]
            .as_str()
            .filter(|l| !l.is_empty())
            .map(String::from);
        let followers = cluster["replicas"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| Replica {
                        name: r["name"].as_str().unwrap_or_default().to_string(),
                        current: r["current"].as_bool().unwrap_or(false),
                        offline: r["offline"].as_bool().unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(StreamPlacement { leader, followers })
    }

    /// A leader plus `replicas - 1` followers, each current and online.
    pub fn all_current(&self, replicas: usize) -> bool {
        self.leader.is_some()
            && self.followers.len() + 1 == replicas
            && self.followers.iter().all(|r| r.current && !r.offline)
    }
}

fn node_name(i: usize) -> String {
    format!("nats-{}", i + 1)
}

fn client_url(p: NodePorts) -> String {
    format!("nats://127.0.0.1:{}", p.client)
}

fn monitor_url(p: NodePorts) -> String {
    format!("http://127.0.0.1:{}", p.monitor)
}

/// One node's config: its ports, its store, routes to every node.
fn render_config(name: &str, p: NodePorts, all: &[NodePorts], store: &Path) -> String {
    let routes: Vec<String> = all
        .iter()
        .map(|o| format!("nats-route://127.0.0.1:{}", o.route))
        .collect();
    format!(
        "server_name: {name}\n\
         listen: 127.0.0.1:{client}\n\
         http: 127.0.0.1:{monitor}\n\
         jetstream {{\n  store_dir: {store:?}\n  max_file_store: {DEFAULT_MAX_FILE_STORE}\n  max_memory_store: {mem}\n}}\n\
         cluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n",
        client = p.client,
        monitor = p.monitor,
        route = p.route,
        mem = 1u64 << 30,
        store = store.display().to_string(),
        routes = routes.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_config_routes_to_every_node() {
        let p = |c, r, m| NodePorts {
            client: c,
            route: r,
            monitor: m,
        };
        let all = [p(1, 2, 3), p(4, 5, 6)];
        let conf = render_config("nats-1", all[0], &all, Path::new("/s/nats-1"));
        assert!(conf.contains("server_name: nats-1"), "{conf}");
        assert!(conf.contains("listen: 127.0.0.1:1\n"), "{conf}");
        assert!(conf.contains("listen: 127.0.0.1:2\n"), "{conf}");
        assert!(
            conf.contains("routes: [nats-route://127.0.0.1:2, nats-route://127.0.0.1:5]"),
            "{conf}"
        );
        assert!(conf.contains("store_dir: \"/s/nats-1\""), "{conf}");
    }

    #[test]
    fn reads_a_stream_placement_from_jsz() {
        let jsz = serde_json::json!({"account_details": [{"name": "$G", "stream_detail": [
            {"name": "DLQ", "cluster": {"leader": "nats-3"}},
            {"name": "RIDES", "cluster": {"leader": "nats-2", "replicas": [
                {"name": "nats-1", "current": true, "active": 1},
                {"name": "nats-3", "current": false, "offline": true}
            ]}}
        ]}]});
        let p = StreamPlacement::from_jsz(&jsz, "RIDES").unwrap();
        assert_eq!(p.leader.as_deref(), Some("nats-2"));
        assert_eq!(p.followers.len(), 2);
        assert!(!p.all_current(3));
        assert!(StreamPlacement::from_jsz(&jsz, "DRIVERS").is_none());
    }
}
