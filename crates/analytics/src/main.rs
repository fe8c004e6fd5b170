//! `hail-analytics`: per-city totals of every ride event.

use clap::Parser;

/// hail analytics: reads every ride event (rides.>) through the durable
/// consumer `analytics` and counts it per city.
#[derive(Parser)]
#[command(name = "hail-analytics", version)]
struct Cli {
    #[command(flatten)]
    runtime: hail_runtime::RuntimeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hail_runtime::telemetry::init(cli.runtime.log_format);
    hail_runtime::exit_code("hail-analytics", hail_analytics::run(cli.runtime).await)
}
