//! `hail-loadgen`: run the city model against hail, publish rides into it, or
//! benchmark the pipeline.

use std::{process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use hail_loadgen::{
    bench::{self, BenchSettings, Mode},
    city::{CityModel, distinct, parse_city},
    publish_cmd::{self, PublishCommand},
    rides::random_run_id,
    run::{
        self,
        config::{RunArgs, RunConfig},
        report::RunReport,
    },
};
use hail_runtime::duration::parse_duration;
use tracing_subscriber::EnvFilter;

/// hail's load generator and the Foundation benchmark.
#[derive(Parser)]
#[command(name = "hail-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// `--creds`, `--user`/`--password`, `--nkey`, `--tls-ca`… (run and publish).
    #[command(flatten)]
    auth: hail_runtime::auth::AuthArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the city model: riders at an open-loop Poisson rate, drivers that move
    /// and take trips; progress every second, then a latency and loss report.
    Run(Box<RunArgs>),
    /// Publish N valid RideRequested events as fast as the broker stores them.
    Publish(PublishArgs),
    /// Pipeline rides/s with the four services beside the null pipeline (the broker's ceiling).
    Bench(BenchArgs),
    /// One null consumer of a service's durable, until SIGTERM: what `bench
    /// --mode layout` runs as a process per service.
    #[command(hide = true)]
    NullConsumer(NullConsumerArgs),
}

#[derive(Args)]
struct NullConsumerArgs {
    /// NATS server URL, or several seeds comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Whose durable to consume (matching, pricing, fraud, analytics).
    #[arg(long)]
    service: hail_runtime::service::Service,
}

#[derive(Args)]
struct PublishArgs {
    /// NATS server URL, or several seeds comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Rides to publish.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rides: u64,
    /// Cities to request rides in, taking turns (known: berlin, paris, london, nyc).
    #[arg(long, default_value = "berlin,paris,london,nyc", value_delimiter = ',', value_parser = parse_city)]
    cities: Vec<CityModel>,
    /// Most PubAcks awaited at once.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    window: u64,
    /// Prefix of the ride ids (`<run-id>-<i>`) [default: 8 random hex digits].
    #[arg(long)]
    run_id: Option<String>,
    /// Give up reaching NATS after this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
}

#[derive(Args)]
struct BenchArgs {
    /// Rides per run.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    rides: u64,
    /// Pipelines to measure; `both` alternates null and services.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Runs of each pipeline.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=100))]
    repeat: u64,
    /// Most PubAcks awaited at once while publishing.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    window: u64,
    /// Longest wait, after the last publish, for every durable to drain.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Nodes of the broker: 1 is a single nats-server with one replica per
    /// stream; 3 is a JetStream cluster on this machine, with 3 replicas.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=5))]
    cluster: u64,
    /// Instances of each service (and of each null consumer) sharing its durable.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=16))]
    instances: u64,
    /// Send the rides open loop at this many per second instead of as fast as
    /// the broker takes them, and report each service's answer latency from
    /// the rides' due times (the latency baseline beside the null pipeline).
    #[arg(long, value_parser = positive_rate)]
    rate: Option<f64>,
    /// Also print the results as one JSON object (last line of stdout).
    #[arg(long)]
    json: bool,
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a positive number of rides per second"
        )),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logs();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run_model(*a, cli.auth).await,
        Command::Publish(a) => publish(a, cli.auth).await,
        Command::Bench(a) => bench(a).await,
        Command::NullConsumer(a) => hail_loadgen::null_processes::run_one(&a.nats_url, a.service)
            .await
            .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hail-loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Warnings and errors on stderr (RUST_LOG overrides): stderr is for the progress
/// and the results, not for every connection event.
fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    // The services' colour rule: on a terminal, unless NO_COLOR is set.
    let ansi = hail_runtime::telemetry::use_color(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR"),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

async fn run_model(a: RunArgs, auth: hail_runtime::auth::AuthArgs) -> anyhow::Result<ExitCode> {
    let cfg = RunConfig {
        auth,
        ..a.config()?
    };
    let report = run::run(&cfg).await?;
    emit(&report, a.json, a.report.as_deref())?;
    Ok(if report.any_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The text report on stdout, or on stderr when stdout carries the JSON; the JSON
/// also to `file` when given.
fn emit(report: &RunReport, json: bool, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    if let Some(path) = file {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing the report to --report {}", path.display()))?;
    }
    if json {
        eprint!("{}", report.text());
        println!("{text}");
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

async fn publish(a: PublishArgs, auth: hail_runtime::auth::AuthArgs) -> anyhow::Result<ExitCode> {
    let cmd = PublishCommand {
        nats_url: a.nats_url,
        rides: a.rides,
        cities: distinct(a.cities),
        window: a.window as usize,
        run_id: a.run_id.unwrap_or_else(random_run_id),
        connect_timeout: a.connect_timeout,
        auth,
    };
    let report = publish_cmd::run(&cmd).await?;
    Ok(if report.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let settings = BenchSettings {
        rides: a.rides,
        mode: a.mode,
        repeat: a.repeat as usize,
        window: a.window as usize,
        poll: Duration::from_millis(100),
        drain_timeout: a.drain_timeout,
        instances: a.instances as usize,
        nodes: a.cluster as usize,
        rate: a.rate,
    };
    let report = bench::run(&settings).await?;
    print!("{}", report.table());
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}
