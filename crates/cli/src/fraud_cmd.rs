//! `hail fraud …`: the card blocklist that fraud screening reads live (KV bucket
//! `hail_fraud_blocklist`).

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use futures::StreamExt;
use hail_events::CardFingerprint;
use hail_fraud::blocklist::{self, BlockEntry};

/// Flags of `hail fraud`.
#[derive(Debug, clap::Args)]
pub struct FraudArgs {
    #[command(subcommand)]
    command: FraudCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FraudCommand {
    /// Block a card: every request paying with it is screened `block`.
    Block {
        /// The card fingerprint, as in RideRequested.card.
        card: CardFingerprint,
        /// Why, kept beside the entry.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Take a card off the blocklist.
    Unblock {
        /// The card fingerprint.
        card: CardFingerprint,
    },
    /// List the blocked cards: fingerprint, when blocked (UTC), reason.
    Blocklist,
}

/// Runs one `hail fraud` subcommand.
pub async fn run(js: &jetstream::Context, args: FraudArgs) -> Result<()> {
    let store = blocklist::open_or_create(js).await?;
    match args.command {
        FraudCommand::Block { card, reason } => block(&store, &card, reason).await,
        FraudCommand::Unblock { card } => unblock(&store, &card).await,
        FraudCommand::Blocklist => list(&store).await,
    }
}

async fn block(store: &jetstream::kv::Store, card: &CardFingerprint, reason: String) -> Result<()> {
    let entry = BlockEntry {
        blocked_at_ms: hail_runtime::now_ms(),
        reason,
    };
    store
        .put(card.as_str(), serde_json::to_vec(&entry)?.into())
        .await
        .with_context(|| format!("cannot block card {card}"))?;
    println!("blocked card {card}");
    Ok(())
}

async fn unblock(store: &jetstream::kv::Store, card: &CardFingerprint) -> Result<()> {
    let present = store
        .get(card.as_str())
        .await
        .with_context(|| format!("cannot read card {card}"))?
        .is_some();
    if !present {
        println!("card {card} was not blocked");
        return Ok(());
    }
    store
        .delete(card.as_str())
        .await
        .with_context(|| format!("cannot unblock card {card}"))?;
    println!("unblocked card {card}");
    Ok(())
}

async fn list(store: &jetstream::kv::Store) -> Result<()> {
    let mut keys = store.keys().await.context("cannot list the blocklist")?;
    let mut cards = Vec::new();
    while let Some(key) = keys.next().await {
        cards.push(key.context("listing the blocklist")?);
    }
    cards.sort();
    for card in cards {
        let Some(value) = store
            .get(&card)
            .await
            .with_context(|| format!("cannot read card {card}"))?
        else {
            continue; // unblocked while listing
        };
        let line = match serde_json::from_slice::<BlockEntry>(&value) {
            Ok(e) => format!("{card}\t{}\t{}", utc(e.blocked_at_ms), e.reason),
            Err(_) => format!("{card}\t-\t(unreadable entry)"),
        };
        println!("{line}");
    }
    Ok(())
}

fn utc(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
