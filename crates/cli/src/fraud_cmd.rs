//! `hail fraud block|unblock|blocklist [--json]`: the card blocklist that fraud
//! screening reads live (KV bucket `hail_fraud_blocklist`).

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use futures::StreamExt;
use hail_events::CardFingerprint;
use hail_fraud::blocklist::{self, BlockEntry};
use serde::Serialize;

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
    Blocklist {
        /// Print JSON instead of tab-separated lines.
        #[arg(long)]
        json: bool,
    },
}

/// One line of `hail fraud blocklist`; the times and reason are `None` when
/// the stored entry cannot be read.
#[derive(Debug, PartialEq, Serialize)]
struct Listed {
    card: String,
    blocked_at_ms: Option<u64>,
    /// `blocked_at_ms` in RFC 3339, UTC.
    blocked_at: Option<String>,
    reason: Option<String>,
}

impl Listed {
    fn new(card: String, value: &[u8]) -> Self {
        let entry = serde_json::from_slice::<BlockEntry>(value).ok();
        Listed {
            card,
            blocked_at_ms: entry.as_ref().map(|e| e.blocked_at_ms),
            blocked_at: entry.as_ref().map(|e| utc(e.blocked_at_ms)),
            reason: entry.map(|e| e.reason),
        }
    }

    /// `card<TAB>blocked at<TAB>reason`.
    fn line(&self) -> String {
        match (&self.blocked_at, &self.reason) {
            (Some(at), Some(reason)) => format!("{}\t{at}\t{reason}", self.card),
            _ => format!("{}\t-\t(unreadable entry)", self.card),
        }
    }
}

/// Runs one `hail fraud` subcommand.
pub async fn run(js: &jetstream::Context, args: FraudArgs) -> Result<()> {
    let store = blocklist::open_or_create(js).await?;
    match args.command {
        FraudCommand::Block { card, reason } => block(&store, &card, reason).await,
        FraudCommand::Unblock { card } => unblock(&store, &card).await,
        FraudCommand::Blocklist { json } => list(&store, json).await,
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

async fn list(store: &jetstream::kv::Store, json: bool) -> Result<()> {
    let mut keys = store.keys().await.context("cannot list the blocklist")?;
    let mut cards = Vec::new();
    while let Some(key) = keys.next().await {
        cards.push(key.context("listing the blocklist")?);
    }
    cards.sort();
    let mut listed = Vec::with_capacity(cards.len());
    for card in cards {
        let Some(value) = store
            .get(&card)
            .await
            .with_context(|| format!("cannot read card {card}"))?
        else {
            continue; // unblocked while listing
        };
        listed.push(Listed::new(card, &value));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
    } else {
        for l in &listed {
            println!("{}", l.line());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lists_as_a_line_and_as_json() {
        let l = Listed::new(
            "card-1".into(),
            br#"{"blocked_at_ms":0,"reason":"chargeback"}"#,
        );
        assert_eq!(l.line(), "card-1\t1970-01-01T00:00:00Z\tchargeback");
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["blocked_at"], "1970-01-01T00:00:00Z");
        assert_eq!(json["reason"], "chargeback");
    }

    #[test]
    fn an_unreadable_entry_is_listed_not_skipped() {
        let l = Listed::new("card-2".into(), b"not json");
        assert_eq!(l.line(), "card-2\t-\t(unreadable entry)");
        assert_eq!(l.reason, None);
    }
}
