//! `hail`: the operator's command line.
//!
//! - `status`: every durable consumer on RIDES with its lag.
//! - `request`: publish one ride request, as a rider's app would.

mod analytics_cmd;
mod fraud_cmd;
mod request;
mod status;

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
    /// Every service's consumer on RIDES: pending, unacknowledged, redelivered.
    Status(status::StatusArgs),
    /// Publish one RideRequested.
    Request(request::RequestArgs),
    /// Fraud screening: the card blocklist.
    Fraud(fraud_cmd::FraudArgs),
    /// Per-city totals kept by analytics.
    Analytics(analytics_cmd::AnalyticsArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = async {
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
        }
    }
    .await;
    hail_runtime::exit_code("hail", result)
}
