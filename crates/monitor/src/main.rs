//! `hail-monitor`: consumer lag and status of every hail service, on /metrics.

use clap::Parser;
use hail_runtime::service::MONITOR_BINARY;

/// hail-monitor: polls JetStream consumer info for every durable and serves
/// nats_consumer_* and nats_stream_* (as prometheus-nats-exporter
/// -jsz=consumers -prefix=nats names and labels them),
/// hail_consumer_lag_messages, hail_consumer_lag_seconds, hail_consumer_status,
/// hail_stream_max_age_seconds and
/// hail_consumer_retention_used_ratio on /metrics.
#[derive(Parser)]
#[command(name = MONITOR_BINARY, version)]
struct Cli {
    #[command(flatten)]
    args: hail_monitor::MonitorArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hail_runtime::telemetry::init(cli.args.log_format);
    hail_runtime::exit_code(MONITOR_BINARY, hail_monitor::run(cli.args).await)
}
