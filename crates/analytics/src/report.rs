//! What `hail analytics` shows: the stored checkpoint as JSON (`--json`) or a
//! table. Built from the checkpoint alone, so it works while analytics is down.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use crate::{
    checkpoint::Checkpoint,
    histogram::{Histogram, Scale},
    totals::{CityTotals, Unmatched, Verdicts},
};

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Where the figures come from.
    pub checkpoint: CheckpointInfo,
    /// Per city, by city code.
    pub cities: BTreeMap<String, CityReport>,
    /// Every city added up.
    pub all: CityReport,
}

/// The checkpoint the figures come from.
#[derive(Debug, Serialize)]
pub struct CheckpointInfo {
    /// KV revision of the checkpoint.
    pub revision: u64,
    /// The analytics process that wrote it.
    pub writer: String,
    /// When, milliseconds since the Unix epoch.
    pub saved_at_ms: u64,
    /// RIDES sequence up to which every message is included.
    pub covered_through_seq: u64,
    /// Runs of sequences included above that (messages handled out of order).
    pub covered_runs_above: usize,
}

/// One city's figures (or all cities').
#[derive(Debug, Serialize)]
pub struct CityReport {
    pub requests: u64,
    pub matched: u64,
    pub unmatched: u64,
    pub unmatched_by_reason: Unmatched,
    /// matched / (matched + unmatched); null before any ride is decided.
    pub match_rate: Option<f64>,
    pub priced: u64,
    pub completed: u64,
    /// `RideCancelled` events.
    pub cancelled: u64,
    pub verdicts: Verdicts,
    /// Per ISO 4217 currency, in minor units.
    pub fares_minor: BTreeMap<String, HistogramReport>,
    pub surge: HistogramReport,
    pub time_to_match_ms: HistogramReport,
}

/// A histogram with its summary figures.
#[derive(Debug, Serialize)]
pub struct HistogramReport {
    pub count: u64,
    pub sum: f64,
    pub mean: Option<f64>,
    /// Estimated from the buckets, as Prometheus' `histogram_quantile`.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    /// Per-bucket (not cumulative) counts, `le` as in Prometheus (`"+Inf"` last).
    pub buckets: Vec<BucketReport>,
}

/// One bucket.
#[derive(Debug, Serialize)]
pub struct BucketReport {
    pub le: String,
    pub count: u64,
}

impl Report {
    /// The report of checkpoint `cp`, stored at KV revision `revision`.
    pub fn new(cp: &Checkpoint, revision: u64) -> Self {
        let cities = cp
            .state
            .cities
            .iter()
            .map(|(city, t)| (city.to_string(), CityReport::new(t)))
            .collect();
        Report {
            checkpoint: CheckpointInfo {
                revision,
                writer: cp.writer.clone(),
                saved_at_ms: cp.saved_at_ms,
                covered_through_seq: cp.state.coverage.floor(),
                covered_runs_above: cp.state.coverage.runs(),
            },
            cities,
            all: CityReport::new(&cp.state.all_cities()),
        }
    }

    /// A table for people; `now_ms` dates the checkpoint.
    pub fn table(&self, now_ms: u64) -> String {
        let c = &self.checkpoint;
        let age_s = now_ms.saturating_sub(c.saved_at_ms) as f64 / 1000.0;
        let mut out = format!(
            "analytics checkpoint revision {} by {}, saved {age_s:.1}s ago; covers RIDES through sequence {} (+{} runs above)\n",
            c.revision, c.writer, c.covered_through_seq, c.covered_runs_above
        );
        let _ = writeln!(
            out,
            "{:<12} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>16} {:>7} {:>10} {:>10}",
            "city",
            "requests",
            "matched",
            "unmatched",
            "match",
            "completed",
            "cancelled",
            "allow",
            "review",
            "block",
            "fare mean minor",
            "surge",
            "match p50",
            "match p95"
        );
        for (city, r) in self.cities.iter().chain([(&"all".to_string(), &self.all)]) {
            let _ = writeln!(out, "{}", r.row(city));
        }
        out
    }
}

impl CityReport {
    fn new(t: &CityTotals) -> Self {
        CityReport {
            requests: t.requests,
            matched: t.matched,
            unmatched: t.unmatched_total(),
            unmatched_by_reason: t.unmatched.clone(),
            match_rate: t.match_rate(),
            priced: t.priced,
            completed: t.completed,
            cancelled: t.cancelled,
            verdicts: t.verdicts.clone(),
            fares_minor: t
                .fares
                .iter()
                .map(|(c, h)| (c.clone(), HistogramReport::new(h, Scale::FareMinor)))
                .collect(),
            surge: HistogramReport::new(&t.surge, Scale::Surge),
            time_to_match_ms: HistogramReport::new(&t.time_to_match_ms, Scale::TimeToMatchMs),
        }
    }

    fn row(&self, city: &str) -> String {
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".into(), f);
        let fare = self
            .fares_minor
            .iter()
            .map(|(cur, h)| opt(h.mean, &|m| format!("{m:.0} {cur}")))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{:<12} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>16} {:>7} {:>10} {:>10}",
            city,
            self.requests,
            self.matched,
            self.unmatched,
            opt(self.match_rate, &|r| format!("{:.1}%", r * 100.0)),
            self.completed,
            self.cancelled,
            self.verdicts.allow,
            self.verdicts.review,
            self.verdicts.block,
            if fare.is_empty() { "-".into() } else { fare },
            opt(self.surge.mean, &|s| format!("{s:.2}x")),
            opt(self.time_to_match_ms.p50, &|ms| format!("{ms:.0}ms")),
            opt(self.time_to_match_ms.p95, &|ms| format!("{ms:.0}ms")),
        )
    }
}

impl HistogramReport {
    fn new(h: &Histogram, scale: Scale) -> Self {
        let les = scale.bounds().iter().map(|b| b.to_string());
        let buckets = les
            .chain(["+Inf".to_string()])
            .zip(&h.counts)
            .map(|(le, &count)| BucketReport { le, count })
            .collect();
        HistogramReport {
            count: h.count(),
            sum: h.sum,
            mean: h.mean(),
            p50: h.quantile(scale, 0.5),
            p95: h.quantile(scale, 0.95),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use hail_events::{City, DriverId, RideId, RideMatched, sample};

    use super::*;
    use crate::{checkpoint::FORMAT, event::RideEvent, state::State};

    fn checkpoint() -> Checkpoint {
        let mut state = State::default();
        let events = [
            RideEvent::Requested(sample::ride_requested("a", "berlin")),
            RideEvent::Requested(sample::ride_requested("b", "paris")),
            RideEvent::Priced(sample::fare_quoted("a", "berlin")),
            RideEvent::Matched(RideMatched {
                ride_id: RideId::new("a").unwrap(),
                city: City::new("berlin").unwrap(),
                driver_id: DriverId::new("d").unwrap(),
                pickup_distance_m: 100.0,
                eta_s: 30,
                requested_at_ms: 1_000,
                matched_at_ms: 1_040,
            }),
            RideEvent::Cancelled(sample::ride_cancelled("b", "paris")),
        ];
        for (seq, e) in (1..).zip(&events) {
            state.apply(seq, e);
        }
        state.apply(
            7,
            &RideEvent::Requested(sample::ride_requested("c", "paris")),
        );
        Checkpoint {
            format: FORMAT,
            writer: "analytics-x".into(),
            saved_at_ms: 1_000_000,
            state,
        }
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(Report::new(&checkpoint(), 12)).unwrap();
        assert_eq!(v["checkpoint"]["revision"], 12);
        assert_eq!(v["checkpoint"]["covered_through_seq"], 5);
        assert_eq!(v["checkpoint"]["covered_runs_above"], 1);
        assert_eq!(v["all"]["requests"], 3);
        assert_eq!(v["cities"]["paris"]["requests"], 2);
        assert_eq!(v["cities"]["paris"]["cancelled"], 1);
        assert_eq!(v["all"]["cancelled"], 1);
        assert_eq!(v["all"]["unmatched_by_reason"]["cancelled"], 0);
        let berlin = &v["cities"]["berlin"];
        assert_eq!(berlin["matched"], 1);
        assert_eq!(berlin["match_rate"], 1.0);
        assert_eq!(berlin["verdicts"]["allow"], 0);
        assert_eq!(berlin["unmatched_by_reason"]["all_nearby_claimed"], 0);
        assert_eq!(berlin["fares_minor"]["EUR"]["count"], 1);
        assert_eq!(berlin["fares_minor"]["EUR"]["sum"], 1250.0);
        assert_eq!(berlin["time_to_match_ms"]["buckets"][3]["le"], "50");
        assert_eq!(berlin["time_to_match_ms"]["buckets"][3]["count"], 1);
        let last = berlin["surge"]["buckets"]
            .as_array()
            .unwrap()
            .last()
            .unwrap();
        assert_eq!(last["le"], "+Inf");
        assert!(v["cities"]["paris"]["match_rate"].is_null());
    }

    #[test]
    fn table_has_a_row_per_city_and_one_for_all() {
        let table = Report::new(&checkpoint(), 12).table(3_500_000);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("analytics checkpoint revision 12"),
            "{table}"
        );
        assert!(lines[0].contains("saved 2500.0s ago"), "{table}");
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[2].starts_with("berlin"), "{table}");
        assert!(
            lines[2].contains("1250 EUR") && lines[2].contains("100.0%"),
            "{table}"
        );
        assert!(lines[4].starts_with("all"), "{table}");
        assert!(lines[1].contains("cancelled"), "{table}");
    }
}
