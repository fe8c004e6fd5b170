//! The run's final report, as text for people and JSON for scripts.
//!
//! Latencies are in milliseconds from each ride's intended send time (its place
//! in the schedule), so time a ride spent waiting to be sent counts too: this
//! corrects for coordinated omission.

use std::{collections::BTreeMap, fmt::Write as _};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{
    fleet_task::FleetStats,
    ledger::{AnswerCounts, Failures, Ledger, Missing, Second, UnknownOutcomes},
    surge::SurgeReport,
};

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub seed: u64,
    pub cities: Vec<String>,
    /// `duration`, `rides` or `signal`.
    pub stopped_by: &'static str,
    /// Rides per second the schedule aimed at.
    pub target_rate: f64,
    pub duration_s: Option<f64>,
    pub rides_limit: Option<u64>,
    /// Length of the load phase, seconds.
    pub elapsed_s: f64,
    /// Rides stored per second of the load phase.
    pub achieved_rate: f64,
    /// Time spent waiting for answers after the load phase, seconds.
    pub settle_s: f64,
    pub rides: RidesReport,
    pub fleet: FleetStats,
    /// Driver location reports stored per second of the load phase.
    pub driver_updates_per_s: f64,
    pub answers: AnswersReport,
    /// Matched over matching's answers (matched or unmatched); `null` before any.
    pub match_rate: Option<f64>,
    /// The surge quoted: per city, in the wave's hotspots, away from hotspots.
    pub surge: SurgeReport,
    /// Stored rides whose answer never came.
    pub missing: Missing,
    pub latency_ms: LatencyReport,
    /// Counts per second of the run, by when they happened.
    pub series: Vec<Second>,
}

/// What became of the scheduled rides.
#[derive(Debug, Clone, Serialize)]
pub struct RidesReport {
    pub scheduled: u64,
    pub published: u64,
    /// Stored before (a re-used run id): counted in `published`.
    pub duplicates: u64,
    pub failed: u64,
    pub failed_by_kind: BTreeMap<String, Failures>,
    /// Sent, but the PubAck never came; reconciled against RIDES.
    pub outcome_unknown: UnknownOutcomes,
}

/// The answers heard.
#[derive(Debug, Clone, Serialize)]
pub struct AnswersReport {
    #[serde(flatten)]
    pub counts: AnswerCounts,
    pub unmatched_by_reason: BTreeMap<&'static str, u64>,
}

/// The latency distributions, milliseconds from the intended send time.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    /// Until the ride was handed to the client: how late the generator itself was.
    pub send_lag: Summary,
    /// Until the PubAck.
    pub publish: Summary,
    /// Until RideMatched or RideUnmatched, whichever came first.
    pub match_answer: Summary,
    /// Until RideMatched, for matched rides.
    pub matched: Summary,
    pub priced: Summary,
    pub screened: Summary,
}

/// One distribution; the figures are `null` when nothing was recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p99_9: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl Summary {
    /// Summarises a histogram of microseconds in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| (!h.is_empty()).then(|| us as f64 / 1_000.0);
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: (!h.is_empty()).then(|| h.mean() / 1_000.0),
        }
    }
}

/// The run's settings the report repeats.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    pub seed: u64,
    pub cities: Vec<String>,
    pub target_rate: f64,
    pub duration_s: Option<f64>,
    pub rides_limit: Option<u64>,
    pub stopped_by: &'static str,
    pub elapsed_s: f64,
    pub settle_s: f64,
}

impl RunReport {
    /// The report of a finished run.
    pub fn new(facts: RunFacts, l: &Ledger, fleet: FleetStats, surge_cap: f64) -> Self {
        let lat = &l.latency;
        let answered = l.answers.matched + l.answers.unmatched;
        Self {
            driver_updates_per_s: fleet.updates_published as f64 / facts.elapsed_s.max(1e-9),
            match_rate: (answered > 0).then(|| l.answers.matched as f64 / answered as f64),
            surge: l.surge.report(surge_cap),
            run_id: facts.run_id,
            seed: facts.seed,
            cities: facts.cities,
            stopped_by: facts.stopped_by,
            target_rate: facts.target_rate,
            duration_s: facts.duration_s,
            rides_limit: facts.rides_limit,
            elapsed_s: facts.elapsed_s,
            achieved_rate: l.published as f64 / facts.elapsed_s.max(1e-9),
            settle_s: facts.settle_s,
            rides: RidesReport {
                scheduled: l.scheduled(),
                published: l.published,
                duplicates: l.duplicates,
                failed: l.failed,
                failed_by_kind: l.failures.clone(),
                outcome_unknown: l.unknown.clone(),
            },
            fleet,
            answers: AnswersReport {
                counts: l.answers.clone(),
                unmatched_by_reason: l.unmatched_by_reason.clone(),
            },
            missing: l.missing(),
            latency_ms: LatencyReport {
                send_lag: Summary::of(&lat.send_lag),
                publish: Summary::of(&lat.publish),
                match_answer: Summary::of(&lat.match_answer),
                matched: Summary::of(&lat.matched),
                priced: Summary::of(&lat.priced),
                screened: Summary::of(&lat.screened),
            },
            series: l.series.clone(),
        }
    }

    /// Whether any publish failed: rides, driver reports, completions or
    /// cancellations, or a ride's outcome is still unknown.
    pub fn any_failed(&self) -> bool {
        let f = &self.fleet;
        let unknown = &self.rides.outcome_unknown;
        let unresolved = unknown.count - unknown.stored;
        self.rides.failed
            + f.updates_failed
            + f.completions_failed
            + f.cancellations_failed
            + unresolved
            > 0
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "run {} (seed {}) in {}: stopped by {} after {:.1} s; target {:.0} rides/s, achieved {:.0} rides/s",
            self.run_id,
            self.seed,
            self.cities.join(","),
            self.stopped_by,
            self.elapsed_s,
            self.target_rate,
            self.achieved_rate
        );
        self.write_counts(&mut t);
        self.write_city(&mut t);
        self.write_latency(&mut t);
        t
    }

    /// Match rate, why rides went unmatched, surge.
    fn write_city(&self, t: &mut String) {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0));
        let x = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}x"));
        let reasons: Vec<String> = self
            .answers
            .unmatched_by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let _ = writeln!(
            t,
            "matching  match rate {}; unmatched: {}; riders cancelled {} rides before pickup",
            pct(self.match_rate),
            if reasons.is_empty() {
                "none".to_string()
            } else {
                reasons.join(", ")
            },
            self.fleet.cancellations_published
        );
        let s = &self.surge;
        let _ = writeln!(
            t,
            "surge     p50 / p95 / share surged / share at the cap ({:.1}x)",
            s.cap
        );
        let rows = s.by_city.iter().map(|(c, v)| (c.as_str(), v)).chain([
            ("wave hotspots", &s.wave_hotspots),
            ("away from hotspots", &s.background),
        ]);
        for (name, v) in rows {
            let _ = writeln!(
                t,
                "  {name:<20}{:>6} {:>6} {:>8} {:>8}   ({} quotes)",
                x(v.p50),
                x(v.p95),
                pct(v.surged_share),
                pct(v.at_cap_share),
                v.quotes
            );
        }
    }

    fn write_counts(&self, t: &mut String) {
        let (r, f, a, m) = (
            &self.rides,
            &self.fleet,
            &self.answers.counts,
            &self.missing,
        );
        let _ = writeln!(
            t,
            "rides     scheduled {}, published {} ({} duplicates), failed {}",
            r.scheduled, r.published, r.duplicates, r.failed
        );
        for (kind, fail) in &r.failed_by_kind {
            let _ = writeln!(t, "          {} {kind}, e.g.: {}", fail.count, fail.example);
        }
        let u = &r.outcome_unknown;
        if u.count > 0 {
            let found = if u.reconciled {
                format!(
                    "RIDES holds {} of them (counted as published), not {}",
                    u.stored, u.not_stored
                )
            } else {
                "RIDES could not be read to tell them apart".to_string()
            };
            let _ = writeln!(
                t,
                "          outcome unknown {} (PubAck never came: {}); {found}",
                u.count,
                u.example.as_deref().unwrap_or("-")
            );
        }
        let _ = writeln!(
            t,
            "fleet     {} drivers, {} location reports ({:.0}/s beside {:.0} rides/s, {} failed); {} trips completed ({} failed, {} cut short at the end)",
            f.drivers,
            f.updates_published,
            self.driver_updates_per_s,
            self.achieved_rate,
            f.updates_failed,
            f.completions_published,
            f.completions_failed,
            f.trips_cut_short
        );
        let _ = writeln!(
            t,
            "answers   matched {}, unmatched {}, priced {}, screened {} ({} repeated, {} not of this run)",
            a.matched, a.unmatched, a.priced, a.screened, a.repeated, a.foreign
        );
        let _ = writeln!(
            t,
            "missing   match answer {}, priced {}, screened {} (after waiting {:.1} s)",
            m.match_answer, m.priced, m.screened, self.settle_s
        );
    }

    fn write_latency(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "latency from the intended send time, ms\n  {:<13}{:>9}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        let l = &self.latency_ms;
        for (name, s) in [
            ("send lag", &l.send_lag),
            ("publish", &l.publish),
            ("match answer", &l.match_answer),
            ("matched", &l.matched),
            ("priced", &l.priced),
            ("screened", &l.screened),
        ] {
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
            let _ = writeln!(
                t,
                "  {name:<13}{:>9}{:>10}{:>10}{:>10}{:>10}{:>10}",
                s.count,
                f(s.p50),
                f(s.p90),
                f(s.p99),
                f(s.p99_9),
                f(s.max)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{ledger::Answer, schedule::Arrival};

    fn facts() -> RunFacts {
        RunFacts {
            run_id: "r1".into(),
            seed: 42,
            cities: vec!["berlin".into()],
            target_rate: 2.0,
            duration_s: Some(1.0),
            rides_limit: None,
            stopped_by: "duration",
            elapsed_s: 1.0,
            settle_s: 0.5,
        }
    }

    #[test]
    fn json_has_counts_missing_answers_and_latencies() {
        let mut l = Ledger::new();
        for index in 0..2 {
            l.schedule(Arrival {
                index,
                at_us: index * 500_000,
            });
            l.stored(index, index * 500_000, index * 500_000 + 2_000, false);
        }
        l.answer(Some(0), Answer::Priced, 12_000);
        let r = RunReport::new(facts(), &l, FleetStats::default(), 3.0);
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["rides"]["published"], 2);
        assert_eq!(j["achieved_rate"], 2.0);
        assert_eq!(j["missing"]["priced"], 1);
        assert_eq!(j["missing"]["match_answer"], 2);
        assert_eq!(j["answers"]["priced"], 1);
        assert_eq!(j["latency_ms"]["priced"]["count"], 1);
        let p50 = j["latency_ms"]["priced"]["p50"].as_f64().unwrap();
        assert!((11.99..12.02).contains(&p50), "{p50}");
        assert!(j["latency_ms"]["matched"]["p50"].is_null());
        assert_eq!(j["series"][0]["published"], 2);
        assert_eq!(j["series"][0]["priced"], 1);
        assert!(!r.any_failed());
        let text = r.text();
        assert!(
            text.contains("missing   match answer 2, priced 1, screened 2"),
            "{text}"
        );
        assert!(text.contains("achieved 2 rides/s"), "{text}");
    }
}
