//! `hail-ride-view`: builds every ride's status from RIDES.

use clap::Parser;
use hail_runtime::service::Service;

/// hail ride-view: reads every event on RIDES (rides.>) through the durable
/// consumer `ride-view`, from the start of the stream, and keeps each ride's
/// status in the KV bucket ride_view (JSON).
#[derive(Parser)]
#[command(name = Service::RideView.binary(), version)]
struct Cli {
    #[command(flatten)]
    ride_view: hail_ride_view::config::RideViewArgs,
    #[command(flatten)]
    runtime: hail_runtime::RuntimeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hail_runtime::telemetry::init(cli.runtime.log_format);
    hail_runtime::exit_code(
        Service::RideView.binary(),
        hail_ride_view::run(cli.ride_view, cli.runtime).await,
    )
}
