//! `hail dlq …`: the dead letters in the DLQ stream (`dlq.<service>.<stream>.<seq>`) — list
//! them, show one with its body decoded, replay them to their original subject
//! for the service that gave up on them, purge them.
//!
//! - [`letter`]: one dead letter as stored, and reading them from the stream.
//! - [`list`], [`show`], [`replay`], [`purge`]: one subcommand each. What a
//!   replay carries is the runtime's replay protocol ([`hail_runtime::replay`]).

mod letter;
mod list;
mod purge;
mod replay;
mod show;

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::{self, ErrorCode, context::GetStreamErrorKind, stream::Stream};
use hail_events::subjects;

use crate::stack::SERVICES;

/// Flags of `hail dlq`.
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// One line per dead letter: DLQ seq, stored (UTC), service, kind, origin, deliveries, reason.
    Ls {
        /// Only this service's dead letters.
        #[arg(long, value_parser = service_parser())]
        service: Option<String>,
        /// Print JSON (with the full reason) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Everything about one dead letter: reason, origin, headers, the body decoded.
    Show {
        /// Its sequence in the DLQ stream (first column of `hail dlq ls`).
        seq: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Republish dead letters to their original subject, for the service that gave up on them.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["seq", "all"])))]
    Replay {
        /// The DLQ sequence of the one dead letter to replay.
        seq: Option<u64>,
        /// Replay every dead letter (of --service if given) whose body decodes.
        #[arg(long)]
        all: bool,
        /// With --all: only this service's dead letters.
        #[arg(long, requires = "all", value_parser = service_parser())]
        service: Option<String>,
        /// Replay even a body that does not decode here (e.g. a newer schema version
        /// the upgraded service reads); otherwise it would only be dead-lettered again.
        #[arg(long)]
        force: bool,
    },
    /// Delete dead letters (all, or one service's).
    Purge {
        /// Only this service's dead letters.
        #[arg(long, value_parser = service_parser())]
        service: Option<String>,
        /// Really purge; without it, only say how many would go.
        #[arg(long)]
        yes: bool,
    },
}

fn service_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(SERVICES)
}

/// Runs one `hail dlq` subcommand.
pub async fn run(js: &jetstream::Context, args: DlqArgs) -> Result<()> {
    let stream = dlq_stream(js).await?;
    match args.command {
        DlqCommand::Ls { service, json } => list::ls(&stream, service.as_deref(), json).await,
        DlqCommand::Show { seq, json } => show::show(&stream, seq, json).await,
        DlqCommand::Replay {
            seq: Some(seq),
            force,
            ..
        } => replay::replay_one(js, &stream, seq, force).await,
        DlqCommand::Replay { service, force, .. } => {
            replay::replay_all(js, &stream, service.as_deref(), force).await
        }
        DlqCommand::Purge { service, yes } => purge::purge(&stream, service.as_deref(), yes).await,
    }
}

async fn dlq_stream(js: &jetstream::Context) -> Result<Stream> {
    match js.get_stream(subjects::DLQ_STREAM).await {
        Ok(s) => Ok(s),
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            bail!(
                "there is no {} stream yet: no hail service has started against this server",
                subjects::DLQ_STREAM
            )
        }
        Err(e) => Err(e).context("cannot read the DLQ stream"),
    }
}
