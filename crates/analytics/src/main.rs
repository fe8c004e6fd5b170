//! `hail-analytics`: per-city totals of every ride event, exact across crashes.

use clap::{CommandFactory, FromArgMatches, Parser};
use hail_runtime::service::Service;

/// hail analytics: reads every ride event (rides.>) through the durable
/// consumer `analytics`, counts it per city and checkpoints the totals in the
/// KV bucket hail_analytics (read them with `hail analytics`). Start as many
/// instances as you like: one counts at a time, the others stand by and take
/// over within seconds when it stops.
/// Here --concurrency defaults to 1024, not 256: each delivery waits for the
/// checkpoint that includes it.
#[derive(Parser)]
#[command(name = Service::Analytics.binary(), version)]
struct Cli {
    #[command(flatten)]
    runtime: hail_runtime::RuntimeArgs,
    #[command(flatten)]
    analytics: hail_analytics::config::AnalyticsArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let source = matches.value_source("concurrency");
    hail_analytics::config::default_concurrency(source, &mut cli.runtime);
    hail_runtime::telemetry::init(cli.runtime.log_format);
    hail_runtime::exit_code(
        Service::Analytics.binary(),
        hail_analytics::run(cli.runtime, cli.analytics).await,
    )
}
