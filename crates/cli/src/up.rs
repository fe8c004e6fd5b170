//! `hail up [--cluster N]`, `hail down`, `hail kill <service|node>`,
//! `hail start <service|node>`.

use std::{io::Write, time::Duration};

use anyhow::{Context as _, Result};
use nix::sys::signal::Signal;

use crate::stack::{
    Component, Layout, SERVICES, Topology,
    cluster::{self, MAX_NODES},
    component::GATEWAY,
    local_identity, process,
};

/// Flags of `hail up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// JetStream's disk sync policy: `always` (fsync before every PubAck: survives
    /// a power cut, much slower) or an interval (the default 2m: survives a killed
    /// process, a power cut can lose the last interval). Applies when nats-server starts.
    #[arg(long, env = "HAIL_NATS_SYNC", default_value = "2m")]
    pub sync: String,
    /// Run nats-server with deploy/local/auth.conf (one identity per service,
    /// the monitor, intake and an admin; local passwords) and each component
    /// as its own identity. Applies when nats-server starts.
    #[arg(long, env = "HAIL_AUTH")]
    pub auth: bool,
    /// Run a JetStream cluster of this many nodes (nats-1, nats-2, …; 3 is
    /// the usual) instead of one nats-server; streams then get 3 replicas.
    /// Without it, what the last `hail up` started.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_NODES as u64))]
    pub cluster: Option<u64>,
}

impl Default for UpArgs {
    fn default() -> Self {
        UpArgs {
            sync: "2m".into(),
            auth: false,
            cluster: None,
        }
    }
}

/// The broker `hail up` runs: `--cluster`, else what was recorded. Refuses to
/// switch while the other kind runs, since they share ports 4222 and 8222.
fn topology(layout: &Layout, args: &UpArgs) -> Result<Topology> {
    let recorded = Topology::recorded(layout);
    let Some(n) = args.cluster else {
        return Ok(recorded);
    };
    let wanted = Topology { nodes: n as usize };
    if wanted != recorded {
        let running: Vec<String> = recorded
            .names()
            .into_iter()
            .filter(|name| process::running_pid(layout, name).is_some())
            .collect();
        anyhow::ensure!(
            running.is_empty(),
            "the stack runs {}; `hail down` first to switch to {} node(s)",
            running.join(", "),
            wanted.nodes
        );
    }
    Ok(wanted)
}

/// Everything `hail up` starts after the broker, in order.
fn components(layout: &Layout, topology: Topology) -> Result<Vec<Component>> {
    let mut all = Vec::new();
    for s in SERVICES {
        all.push(Component::hail(layout, s, topology)?);
    }
    all.push(Component::hail(layout, "monitor", topology)?);
    all.push(Component::gateway(layout, topology)?);
    match Component::prometheus(layout) {
        Ok(p) => all.push(p),
        Err(e) => eprintln!("warning: {e:#}; starting without Prometheus"),
    }
    Ok(all)
}

/// Starts whatever is not running yet and waits until each is ready: first
/// nats-server, then `hail provision` (as the admin, with `--auth`), then the
/// rest; says what runs where on `out`.
pub async fn up(layout: &Layout, args: &UpArgs, out: &mut dyn Write) -> Result<()> {
    let topology = topology(layout, args)?;
    set_auth(layout, topology, args.auth)?;
    topology.record(layout)?;
    start_broker(layout, topology, &args.sync, out).await?;
    provision(layout, topology, out).await?;
    for c in components(layout, topology)? {
        ensure_started(layout, &c).await?;
        writeln!(out, "  {:<11} {}", c.name, c.url)?;
    }
    if topology.is_cluster() {
        writeln!(out, "seeds: NATS_URL={}", topology.seeds())?;
    }
    if layout.auth_on() {
        let (user, password) = local_identity("admin");
        writeln!(
            out,
            "identities on: run hail commands as the admin, e.g. NATS_USER={user} NATS_PASSWORD={password} hail status"
        )?;
    }
    writeln!(out, "state and logs: {}", layout.state.display())?;
    Ok(())
}

/// Records whether the stack runs with identities; refuses to change it under
/// a running nats-server, which read its config when it started.
fn set_auth(layout: &Layout, topology: Topology, auth: bool) -> Result<()> {
    let broker_runs = topology
        .names()
        .iter()
        .any(|name| process::running_pid(layout, name).is_some());
    if broker_runs {
        anyhow::ensure!(
            layout.auth_on() == auth,
            "the broker already runs {} identities; `hail down` first to change --auth",
            if layout.auth_on() { "with" } else { "without" }
        );
        return Ok(());
    }
    std::fs::create_dir_all(&layout.state)?;
    if auth {
        std::fs::write(layout.auth_marker(), "deploy/local/auth.conf\n")?;
    } else if layout.auth_on() {
        std::fs::remove_file(layout.auth_marker())?;
    }
    Ok(())
}

/// Starts every node (a node of a cluster is ready once its JetStream is
/// enabled, which needs no peer), then waits until each is healthy: in
/// contact with a meta leader, which needs a majority of them.
async fn start_broker(
    layout: &Layout,
    topology: Topology,
    sync: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let mut nodes = Vec::new();
    for name in topology.names() {
        let c = topology
            .component(layout, &name, sync)?
            .expect("a name of the topology is a node");
        ensure_started(layout, &c).await?;
        nodes.push(c);
    }
    for c in &nodes {
        if topology.is_cluster() {
            let exited = || process::running_pid(layout, &c.name).is_none();
            hail_probe::wait_for_url(&cluster::healthy_url(c), READY_TIMEOUT, exited)
                .await
                .with_context(|| {
                    format!(
                        "{} has no meta leader; {}",
                        c.name,
                        process::log_tail(layout, &c.name)
                    )
                })?;
        }
        writeln!(out, "  {:<11} {}", c.name, c.url)?;
    }
    Ok(())
}

/// `hail provision` with the services' defaults, as the admin when the stack
/// runs with identities: the services then only bind what they find.
async fn provision(layout: &Layout, topology: Topology, out: &mut dyn Write) -> Result<()> {
    let auth = admin(layout);
    let url = topology.seeds();
    let client =
        hail_runtime::connect::connect_as(&url, "hail-up", Duration::from_secs(10), &auth).await?;
    let js = async_nats::jetstream::new(client);
    crate::provision::run(&js, &crate::provision::ProvisionArgs::default(), out)
        .await
        .context("provisioning the streams, consumers and buckets")
}

/// The credentials the stack's own commands (`hail up`, `hail demo`) use: the
/// admin identity when the stack runs with identities, none otherwise.
pub fn admin(layout: &Layout) -> hail_runtime::auth::AuthArgs {
    let mut auth = hail_runtime::auth::AuthArgs::default();
    if layout.auth_on() {
        let (user, password) = local_identity("admin");
        (auth.user, auth.password) = (Some(user), Some(password));
    }
    auth
}

/// How long a component gets to answer at its readiness URL.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `c` unless it runs already, then waits for its readiness URL.
pub async fn ensure_started(layout: &Layout, c: &Component) -> Result<()> {
    if process::running_pid(layout, &c.name).is_none() {
        return process::start(layout, c, READY_TIMEOUT).await;
    }
    let exited = || process::running_pid(layout, &c.name).is_none();
    hail_probe::wait_for_url(&c.ready_url, READY_TIMEOUT, exited)
        .await
        .with_context(|| {
            format!(
                "{} is not ready; {}",
                c.name,
                process::log_tail(layout, &c.name)
            )
        })
}

/// Stops everything, last started first, and forgets a cluster (the stores stay).
pub fn down(layout: &Layout) -> Result<()> {
    let mut names: Vec<String> = vec![cluster::SINGLE.to_string()];
    names.extend((1..=MAX_NODES).map(|n| format!("nats-{n}")));
    names.extend(SERVICES.map(String::from));
    names.extend([
        "monitor".to_string(),
        GATEWAY.to_string(),
        "prometheus".to_string(),
    ]);
    for name in names.into_iter().rev() {
        if process::stop(layout, &name, Signal::SIGTERM, Duration::from_secs(15))? {
            println!("  stopped {name}");
        }
    }
    Topology::SINGLE.record(layout)
}

/// The component called `name`: a node of the broker, a service or the monitor.
fn named(layout: &Layout, name: &str) -> Result<Component> {
    let topology = Topology::recorded(layout);
    // The sync policy of a node started alone is the one of its config.
    match topology.component(layout, name, &recorded_sync(layout, name))? {
        Some(node) => Ok(node),
        None if name == GATEWAY => Component::gateway(layout, topology),
        None => Component::hail(layout, name, topology)
            .with_context(|| format!("or a node: {}", topology.names().join(", "))),
    }
}

/// The sync policy in the config a node last ran with (`2m` if none).
fn recorded_sync(layout: &Layout, name: &str) -> String {
    let file = if name == cluster::SINGLE {
        "nats.conf".to_string()
    } else {
        format!("{name}.conf")
    };
    std::fs::read_to_string(layout.state.join(file))
        .ok()
        .and_then(|text| {
            let line = text
                .lines()
                .find(|l| l.trim().starts_with("sync_interval:"))?;
            Some(line.split_once(':')?.1.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "2m".into())
}

/// SIGKILLs one service or broker node: what a crash looks like.
pub fn kill(layout: &Layout, name: &str, out: &mut dyn Write) -> Result<()> {
    named(layout, name)?; // names the valid ones on a typo
    let was = process::stop(layout, name, Signal::SIGKILL, Duration::from_secs(5))?;
    anyhow::ensure!(was, "{name} is not running");
    writeln!(out, "killed {name} (SIGKILL)")?;
    Ok(())
}

/// Starts one service, the monitor or a broker node (on its own store) and
/// waits until it is ready.
pub async fn start(layout: &Layout, name: &str, out: &mut dyn Write) -> Result<()> {
    let c = named(layout, name)?;
    ensure_started(layout, &c)
        .await
        .with_context(|| format!("starting {name}"))?;
    writeln!(out, "{name} ready: {}", c.url)?;
    Ok(())
}
