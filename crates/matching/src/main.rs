//! `hail-matching`: a driver (or a reason for none) for every ride request.

use clap::Parser;
use hail_runtime::service::Service;

/// hail matching: reads every RideRequested and RideCompleted through the durable
/// consumer `matching`, claims the nearest available driver in the KV bucket
/// `hail_claims` and publishes RideMatched or RideUnmatched.
#[derive(Parser)]
#[command(name = Service::Matching.binary(), version)]
struct Cli {
    #[command(flatten)]
    matching: hail_matching::config::MatchingArgs,
    #[command(flatten)]
    runtime: hail_runtime::RuntimeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hail_runtime::telemetry::init(cli.runtime.log_format);
    hail_runtime::exit_code(
        Service::Matching.binary(),
        hail_matching::run(cli.matching, cli.runtime).await,
    )
}
