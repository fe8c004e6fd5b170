//! `hail up`, `hail down`, `hail kill <service>`, `hail start <service>`.

use std::{io::Write, time::Duration};

use anyhow::{Context as _, Result};
use nix::sys::signal::Signal;

use crate::stack::{Component, Layout, SERVICES, local_identity, process};

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
}

impl Default for UpArgs {
    fn default() -> Self {
        UpArgs {
            sync: "2m".into(),
            auth: false,
        }
    }
}

/// Everything `hail up` starts after nats-server, in order.
fn components(layout: &Layout) -> Result<Vec<Component>> {
    let mut all = Vec::new();
    for s in SERVICES {
        all.push(Component::hail(layout, s)?);
    }
    all.push(Component::hail(layout, "monitor")?);
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
    set_auth(layout, args.auth)?;
    let nats = Component::nats(layout, &args.sync)?;
    ensure_started(layout, &nats).await?;
    writeln!(out, "  {:<11} {}", nats.name, nats.url)?;
    provision(layout, out).await?;
    for c in components(layout)? {
        ensure_started(layout, &c).await?;
        writeln!(out, "  {:<11} {}", c.name, c.url)?;
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
fn set_auth(layout: &Layout, auth: bool) -> Result<()> {
    if process::running_pid(layout, "nats-server").is_some() {
        anyhow::ensure!(
            layout.auth_on() == auth,
            "nats-server already runs {} identities; `hail down` first to change --auth",
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

/// `hail provision` with the services' defaults, as the admin when the stack
/// runs with identities: the services then only bind what they find.
async fn provision(layout: &Layout, out: &mut dyn Write) -> Result<()> {
    let mut auth = hail_runtime::auth::AuthArgs::default();
    if layout.auth_on() {
        let (user, password) = local_identity("admin");
        (auth.user, auth.password) = (Some(user), Some(password));
    }
    let url = "nats://127.0.0.1:4222";
    let client =
        hail_runtime::connect::connect_as(url, "hail-up", Duration::from_secs(10), &auth).await?;
    let js = async_nats::jetstream::new(client);
    crate::provision::run(&js, &crate::provision::ProvisionArgs::default(), out)
        .await
        .context("provisioning the streams, consumers and buckets")
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

/// Stops everything, last started first.
pub fn down(layout: &Layout) -> Result<()> {
    let mut names: Vec<&str> = vec!["nats-server"];
    names.extend(SERVICES);
    names.extend(["monitor", "prometheus"]);
    for name in names.into_iter().rev() {
        if process::stop(layout, name, Signal::SIGTERM, Duration::from_secs(15))? {
            println!("  stopped {name}");
        }
    }
    Ok(())
}

/// SIGKILLs one service: what a crash looks like.
pub fn kill(layout: &Layout, service: &str, out: &mut dyn Write) -> Result<()> {
    Component::hail(layout, service)?; // names the valid services on a typo
    let was = process::stop(layout, service, Signal::SIGKILL, Duration::from_secs(5))?;
    anyhow::ensure!(was, "{service} is not running");
    writeln!(out, "killed {service} (SIGKILL)")?;
    Ok(())
}

/// Starts one service (or the monitor) and waits until it is ready.
pub async fn start(layout: &Layout, service: &str, out: &mut dyn Write) -> Result<()> {
    let c = Component::hail(layout, service)?;
    ensure_started(layout, &c)
        .await
        .with_context(|| format!("starting {service}"))?;
    writeln!(out, "{service} ready: {}", c.url)?;
    Ok(())
}
