//! `hail`: the operator's command line.
//!
//! - `up`, `down`, `kill`, `start`: the local stack ([`stack`]).
//! - `status`: every service's lag, rate, status and instances.
//! - `audit`: every request accounted for once per service; `demo`: load, crash, catch up, audit.
//! - `request`: publish one ride request, as a rider's app would.
//! - `fraud`, `analytics`: the fraud blocklist and analytics' totals.

mod analytics_cmd;
mod audit;
mod audit_check;
mod demo;
mod dlq;
mod fraud_cmd;
mod request;
mod stack;
mod status;
mod up;

use clap::{Parser, Subcommand};

/// hail: a ride-hailing event platform on NATS JetStream.
#[derive(Parser)]
#[command(name = "hail", version)]
struct Cli {
    /// NATS server URL.
    #[arg(
        long,
        global = true,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start nats-server, the four services, the monitor and Prometheus (idempotent).
    Up(up::UpArgs),
    /// Stop everything `hail up` started.
    Down,
    /// SIGKILL one service, as a crash would.
    Kill {
        /// matching, pricing, fraud, analytics or monitor.
        service: String,
    },
    /// Start one service again and wait until it is ready.
    Start {
        /// matching, pricing, fraud, analytics or monitor.
        service: String,
    },
    /// Check every published request is accounted for once per service (exit 1 if not).
    Audit(audit::AuditArgs),
    /// Run load, kill analytics, restart it, narrate, audit (exit 0 only if the audit holds).
    Demo(demo::DemoArgs),
    /// Every service's consumer on RIDES: pending, unacknowledged, redelivered.
    Status(status::StatusArgs),
    /// Publish one RideRequested.
    Request(request::RequestArgs),
    /// Fraud screening: the card blocklist.
    Fraud(fraud_cmd::FraudArgs),
    /// Per-city totals kept by analytics.
    Analytics(analytics_cmd::AnalyticsArgs),
    /// Inspect, replay and purge dead letters.
    Dlq(dlq::DlqArgs),
}

fn holds(ok: bool) -> anyhow::Result<()> {
    anyhow::ensure!(ok, "the audit does not hold");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hail_runtime::exit_code("hail", run(cli).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Up(args) => {
            return up::up(&stack::Layout::discover()?, args, &mut std::io::stdout()).await;
        }
        Command::Down => return up::down(&stack::Layout::discover()?),
        Command::Kill { service } => {
            return up::kill(&stack::Layout::discover()?, service, &mut std::io::stdout());
        }
        Command::Start { service } => {
            return up::start(&stack::Layout::discover()?, service, &mut std::io::stdout()).await;
        }
        Command::Demo(args) => {
            let layout = stack::Layout::discover()?;
            return holds(demo::run(&cli.nats_url, &layout, args.clone()).await?);
        }
        _ => {}
    }
    let client = hail_runtime::connect::connect(
        &cli.nats_url,
        "hail-cli",
        std::time::Duration::from_secs(5),
    )
    .await?;
    let js = async_nats::jetstream::new(client);
    match cli.command {
        Command::Status(args) => status::run(&js, args).await,
        Command::Request(args) => request::run(&js, args).await,
        Command::Fraud(args) => fraud_cmd::run(&js, args).await,
        Command::Analytics(args) => analytics_cmd::run(&js, args).await,
        Command::Dlq(args) => dlq::run(&js, args).await,
        Command::Audit(args) => holds(audit::run(&js, args).await?),
        Command::Demo(_) => unreachable!("handled above"),
        Command::Up(_) | Command::Down | Command::Kill { .. } | Command::Start { .. } => {
            unreachable!("handled above")
        }
    }
}
