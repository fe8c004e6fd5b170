//! fraud's metrics. Labels: `city`, `verdict` and `rule`, all bounded (rules are
//! the fixed set of [`Rule::ALL`]); never a ride, rider, device or card.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::{history::Sizes, rules::Rule, screener::Screening};

/// Metric names.
pub mod names {
    pub const VERDICTS: &str = "hail_fraud_verdicts_total";
    pub const RULE_HITS: &str = "hail_fraud_rule_hits_total";
    pub const BLOCKLIST_CARDS: &str = "hail_fraud_blocklist_cards";
    pub const HISTORY_RIDERS: &str = "hail_fraud_history_riders";
    pub const HISTORY_ENTRIES: &str = "hail_fraud_history_entries";
    pub const REPLAYED: &str = "hail_fraud_replayed_requests_total";
    pub const FEED_WAITS_TIMED_OUT: &str = "hail_fraud_feed_waits_timed_out_total";
}

/// Everything fraud counts.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Screenings by city and verdict.
    pub verdicts: IntCounterVec,
    /// Rules that fired, by rule.
    pub rule_hits: IntCounterVec,
    /// Cards on the blocklist, as this process sees it.
    pub blocklist_cards: IntGauge,
    /// Riders with requests in the history.
    pub history_riders: IntGauge,
    /// Requests in the history.
    pub history_entries: IntGauge,
    /// Requests read back into the history at start.
    pub replayed: IntCounter,
    /// Screenings made before the request feed reached their request.
    pub feed_waits_timed_out: IntCounter,
}

impl Metrics {
    /// Creates and registers fraud's metrics.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let m = Metrics {
            verdicts: IntCounterVec::new(
                Opts::new(names::VERDICTS, "ride requests screened, by verdict"),
                &["city", "verdict"],
            )?,
            rule_hits: IntCounterVec::new(
                Opts::new(names::RULE_HITS, "fraud rules that fired"),
                &["rule"],
            )?,
            blocklist_cards: IntGauge::new(names::BLOCKLIST_CARDS, "cards on the blocklist")?,
            history_riders: IntGauge::new(
                names::HISTORY_RIDERS,
                "riders in the screening history",
            )?,
            history_entries: IntGauge::new(
                names::HISTORY_ENTRIES,
                "ride requests in the screening history",
            )?,
            replayed: IntCounter::new(
                names::REPLAYED,
                "ride requests read back into the history at start",
            )?,
            feed_waits_timed_out: IntCounter::new(
                names::FEED_WAITS_TIMED_OUT,
                "requests screened before the request feed reached them (it was too far behind)",
            )?,
        };
        registry.register(Box::new(m.verdicts.clone()))?;
        registry.register(Box::new(m.rule_hits.clone()))?;
        registry.register(Box::new(m.blocklist_cards.clone()))?;
        registry.register(Box::new(m.history_riders.clone()))?;
        registry.register(Box::new(m.history_entries.clone()))?;
        registry.register(Box::new(m.replayed.clone()))?;
        registry.register(Box::new(m.feed_waits_timed_out.clone()))?;
        for rule in Rule::ALL {
            m.rule_hits.with_label_values(&[rule.name()]);
        }
        Ok(m)
    }

    /// Counts one screening.
    pub fn screened(&self, city: &str, s: &Screening) {
        self.verdicts
            .with_label_values(&[city, s.verdict.as_str()])
            .inc();
        for rule in &s.fired {
            self.rule_hits.with_label_values(&[rule.name()]).inc();
        }
    }

    /// Sets the history gauges.
    pub fn history(&self, sizes: Sizes) {
        self.history_riders.set(sizes.riders as i64);
        self.history_entries.set(sizes.entries as i64);
    }
}
