//! `hail up`, `hail down`, `hail kill <service>`, `hail start <service>`.

use std::{io::Write, time::Duration};

use anyhow::{Context as _, Result};
use nix::sys::signal::Signal;

use crate::stack::{Component, Layout, SERVICES, process};

/// Flags of `hail up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// JetStream's disk sync policy: `always` (fsync before every PubAck: survives
    /// a power cut, much slower) or an interval (the default 2m: survives a killed
    /// process, a power cut can lose the last interval). Applies when nats-server starts.
    #[arg(long, env = "HAIL_NATS_SYNC", default_value = "2m")]
    pub sync: String,
}

impl Default for UpArgs {
    fn default() -> Self {
        UpArgs { sync: "2m".into() }
    }
}

/// Everything `hail up` starts, in order.
fn components(layout: &Layout, args: &UpArgs) -> Result<Vec<Component>> {
    let mut all = vec![Component::nats(layout, &args.sync)?];
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

/// Starts whatever is not running yet and waits until each is ready; says what
/// runs where on `out`.
pub async fn up(layout: &Layout, args: &UpArgs, out: &mut dyn Write) -> Result<()> {
    for c in components(layout, args)? {
        ensure_started(layout, &c).await?;
        writeln!(out, "  {:<11} {}", c.name, c.url)?;
    }
    writeln!(out, "state and logs: {}", layout.state.display())?;
    Ok(())
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
