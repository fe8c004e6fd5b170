//! `hail-pricing`: quotes a fare for every ride request.

use clap::Parser;
use hail_runtime::service::Service;

/// hail pricing: reads every RideRequested through the durable consumer `pricing`
/// and publishes a FareQuoted on rides.priced.<city>.
#[derive(Parser)]
#[command(name = Service::Pricing.binary(), version)]
struct Cli {
    #[command(flatten)]
    runtime: hail_runtime::RuntimeArgs,
    #[command(flatten)]
    pricing: hail_pricing::config::PricingArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hail_runtime::telemetry::init(cli.runtime.log_format);
    hail_runtime::exit_code(
        Service::Pricing.binary(),
        hail_pricing::run(cli.runtime, cli.pricing).await,
    )
}
