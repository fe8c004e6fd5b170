//! `hail-gateway`: the HTTP front door; `hail-gateway openapi` prints its
//! OpenAPI document.

use clap::{Parser, Subcommand};
use hail_gateway::{BINARY, GatewayArgs};

/// hail-gateway: POST /v1/rides (202 Accepted once JetStream stored the ride,
/// 503 + Retry-After when it did not), GET /v1/rides/{id},
/// POST /v1/rides/{id}/cancel, /openapi.json, /metrics, /healthz, /readyz.
#[derive(Parser)]
#[command(name = BINARY, version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: GatewayArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print the OpenAPI document (with the cities of --cities) and exit:
    /// `hail-gateway --cities deploy/local/cities.toml openapi > docs/openapi.json`.
    Openapi,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        let result = cli.args.load_cities().map(|c| {
            print!("{}", hail_gateway::openapi::to_json(&c));
        });
        return hail_runtime::exit_code(BINARY, result);
    }
    hail_runtime::telemetry::init(cli.args.log_format);
    hail_runtime::exit_code(BINARY, hail_gateway::run(cli.args).await)
}
