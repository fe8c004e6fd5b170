//! `hail-fraud`: screening of every ride request.

use clap::Parser;
use hail_runtime::service::Service;

/// hail fraud: reads every RideRequested through the durable consumer `fraud`,
/// judges it against the rider's history (velocity, impossible travel, shared
/// device or card) and the card blocklist (KV bucket hail_fraud_blocklist), and
/// publishes RideScreened on rides.screened.<city>.
#[derive(Parser)]
#[command(name = Service::Fraud.binary(), version)]
struct Cli {
    #[command(flatten)]
    runtime: hail_runtime::RuntimeArgs,
    #[command(flatten)]
    fraud: hail_fraud::FraudArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hail_runtime::telemetry::init(cli.runtime.log_format);
    hail_runtime::exit_code(
        Service::Fraud.binary(),
        hail_fraud::run(cli.runtime, cli.fraud).await,
    )
}
