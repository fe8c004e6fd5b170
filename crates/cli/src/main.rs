//! `hail`: the operator's command line.
//!
//! - `up`, `down`, `kill`, `start`: the local stack ([`stack`]).
//! - `provision`: every stream, durable and bucket, so services need no admin rights.
//! - `status`: every service's lag, rate, status and instances.
//! - `audit`: every request accounted for once per service; `demo`: load, crash, catch up, audit.
//! - `request`: publish one ride request, or its cancellation, as a rider's app would.
//! - `fraud`, `analytics`: the fraud blocklist and analytics' totals.
//! - `trace`: one ride's events across RIDES and the DLQ, from ride-view's record ([`trace`]).
//!
//! Exit codes ([`EXIT_CODES`]): 0 done, 1 the audit does not hold (`audit`,
//! `demo`), 2 the command could not run (bad flags, NATS unreachable, any other
//! error), so a script can tell a failed check from a failed run.

mod analytics_cmd;
mod audit;
mod audit_check;
mod cluster_status;
mod demo;
mod dlq;
mod fraud_cmd;
mod provision;
mod read_all;
mod report;
mod request;
mod stack;
mod status;
mod trace;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The exit codes, as `hail --help` and `hail audit --help` print them.
const EXIT_CODES: &str = "Exit codes:
  0  done (for audit and demo: the audit holds)
  1  the audit does not hold (audit, demo)
  2  could not run: bad flags, NATS unreachable, or any other error";

/// Exit code when the audit ran and does not hold.
const DOES_NOT_HOLD: u8 = 1;
/// Exit code when the command could not run; clap uses it for bad flags too.
const COULD_NOT_RUN: u8 = 2;

/// hail: a ride-hailing event platform on NATS JetStream.
#[derive(Parser)]
#[command(name = "hail", version, after_help = EXIT_CODES)]
struct Cli {
    /// NATS server URL, or several seeds comma-separated [default: the local
    /// stack's: nats://127.0.0.1:4222, or every node after `hail up --cluster`].
    #[arg(long, global = true, env = "NATS_URL")]
    nats_url: Option<String>,
    #[command(flatten)]
    auth: hail_runtime::auth::AuthArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start nats-server, every service (the four, then ride-view), the monitor and Prometheus (idempotent).
    Up(up::UpArgs),
    /// Create or update every stream, durable consumer and KV bucket (idempotent; needs an admin identity).
    Provision(provision::ProvisionArgs),
    /// Stop everything `hail up` started.
    Down,
    /// SIGKILL one service or broker node, as a crash would.
    Kill {
        /// matching, pricing, fraud, analytics, ride-view, monitor, or a node: nats-server, nats-1, nats-2…
        service: String,
    },
    /// Start one service or broker node again and wait until it is ready.
    Start {
        /// matching, pricing, fraud, analytics, ride-view, monitor, or a node: nats-server, nats-1, nats-2…
        service: String,
    },
    /// Check every published request is accounted for once per service (exit 1 if not, 2 if it cannot run).
    #[command(after_help = EXIT_CODES)]
    Audit(audit::AuditArgs),
    /// Run load, kill analytics, restart it, narrate, audit (exit 0 only if the audit holds).
    #[command(after_help = EXIT_CODES)]
    Demo(demo::DemoArgs),
    /// Write a report of a run (HTML with inline SVG, and a PNG): lag, throughput, latency and match rate from Prometheus, and the audit.
    Report(report::ReportArgs),
    /// Every service's consumer on RIDES: pending, unacknowledged, redelivered.
    Status(status::StatusArgs),
    /// Publish one RideRequested (or, with --cancel, one RideCancelled).
    Request(request::RequestArgs),
    /// Fraud screening: the card blocklist.
    Fraud(fraud_cmd::FraudArgs),
    /// Per-city totals kept by analytics.
    Analytics(analytics_cmd::AnalyticsArgs),
    /// Inspect, replay and purge dead letters.
    Dlq(dlq::DlqArgs),
    /// Every event of one ride, in order, across RIDES and the DLQ, with its trace id (needs ride-view).
    Trace(trace::TraceArgs),
}

/// How a command that ran ended.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Done; for `audit` and `demo`, the audit holds.
    Done,
    /// `audit` or `demo` ran and the audit does not hold.
    DoesNotHold,
}

impl From<bool> for Verdict {
    fn from(holds: bool) -> Self {
        if holds {
            Verdict::Done
        } else {
            Verdict::DoesNotHold
        }
    }
}

/// A command without a verdict of its own is done when it did not fail.
fn done(result: anyhow::Result<()>) -> anyhow::Result<Verdict> {
    result.map(|()| Verdict::Done)
}

/// Maps how the command ended to its exit code (see [`EXIT_CODES`]).
fn exit_code(result: anyhow::Result<Verdict>) -> ExitCode {
    match result {
        Ok(Verdict::Done) => ExitCode::SUCCESS,
        Ok(Verdict::DoesNotHold) => {
            eprintln!("hail: the audit does not hold");
            ExitCode::from(DOES_NOT_HOLD)
        }
        Err(e) => {
            eprintln!("hail: error: {e:#}");
            if let Some(v) = hail_runtime::auth::last_violation() {
                eprintln!("hail: {v}");
            }
            ExitCode::from(COULD_NOT_RUN)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Bad flags end here, with clap's message and exit code 2 (COULD_NOT_RUN).
    let cli = Cli::parse();
    exit_code(run(cli).await)
}

/// `--nats-url` when given, else the seeds of the local stack's broker.
fn nats_url(cli: &Cli) -> String {
    cli.nats_url.clone().unwrap_or_else(|| {
        let topology = stack::Layout::discover()
            .map(|l| stack::Topology::recorded(&l))
            .unwrap_or(stack::Topology::SINGLE);
        topology.seeds()
    })
}

async fn run(cli: Cli) -> anyhow::Result<Verdict> {
    let layout = stack::Layout::discover;
    let mut out = std::io::stdout();
    let nats_url = nats_url(&cli);
    match cli.command {
        Command::Up(args) => done(up::up(&layout()?, &args, &mut out).await),
        Command::Down => done(up::down(&layout()?)),
        Command::Kill { service } => done(up::kill(&layout()?, &service, &mut out)),
        Command::Start { service } => done(up::start(&layout()?, &service, &mut out).await),
        Command::Demo(args) => Ok(demo::run(&nats_url, &layout()?, args).await?.into()),
        on_nats => run_on_nats(&nats_url, &cli.auth, on_nats).await,
    }
}

/// The commands that only talk to NATS.
async fn run_on_nats(
    nats_url: &str,
    auth: &hail_runtime::auth::AuthArgs,
    command: Command,
) -> anyhow::Result<Verdict> {
    let timeout = std::time::Duration::from_secs(5);
    let client = hail_runtime::connect::connect_as(nats_url, "hail-cli", timeout, auth).await?;
    let js = async_nats::jetstream::new(client);
    match command {
        Command::Provision(args) => done(provision::run(&js, &args, &mut std::io::stdout()).await),
        Command::Audit(args) => Ok(audit::run(&js, args).await?.into()),
        Command::Status(args) => done(status::run(&js, args).await),
        Command::Report(args) => done(report::run(&js, args).await),
        Command::Request(args) => done(request::run(&js, args).await),
        Command::Fraud(args) => done(fraud_cmd::run(&js, args).await),
        Command::Analytics(args) => done(analytics_cmd::run(&js, args).await),
        Command::Dlq(args) => done(dlq::run(&js, args).await),
        Command::Trace(args) => done(trace::run(&js, args).await),
        Command::Up(_)
        | Command::Down
        | Command::Kill { .. }
        | Command::Start { .. }
        | Command::Demo(_) => unreachable!("run handles the local commands"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn exit_codes_tell_a_failed_check_from_a_failed_run() {
        assert_eq!(exit_code(Ok(Verdict::Done)), ExitCode::SUCCESS);
        assert_eq!(exit_code(Ok(Verdict::DoesNotHold)), ExitCode::from(1));
        assert_eq!(exit_code(Err(anyhow::anyhow!("x"))), ExitCode::from(2));
        assert_eq!(Verdict::from(false), Verdict::DoesNotHold);
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let mut cli = Cli::command();
        let audit = cli.find_subcommand_mut("audit").unwrap().render_long_help();
        assert!(audit.to_string().contains("2  could not run"), "{audit}");
        assert!(cli.render_long_help().to_string().contains("Exit codes:"));
    }

    #[test]
    fn bad_flags_exit_2() {
        let err = Cli::try_parse_from(["hail", "audit", "--no-such-flag"])
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), i32::from(COULD_NOT_RUN));
    }
}
