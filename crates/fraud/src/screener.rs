//! The screening step: rules over the history before a request, scored, then the
//! request recorded. Pure and synchronous; the handler holds it behind a lock.

use hail_events::{RideRequested, RideScreened, Verdict};

use crate::{
    history::{History, Retention, Sighting, Sizes},
    rules::{Rule, RuleSettings},
    scoring::Scoring,
};

/// What the screening decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Screening {
    pub fired: Vec<Rule>,
    pub score: f64,
    pub verdict: Verdict,
}

impl Screening {
    /// The event to publish, screened at `at_ms`.
    pub fn event(&self, req: &RideRequested, at_ms: u64) -> RideScreened {
        RideScreened {
            ride_id: req.ride_id.clone(),
            city: req.city.clone(),
            rider_id: req.rider_id.clone(),
            score: self.score,
            verdict: self.verdict,
            rules: self.fired.iter().map(|r| r.name().to_string()).collect(),
            requested_at_ms: req.requested_at_ms,
            at_ms,
        }
    }
}

/// Rules, scoring and the history they read.
#[derive(Debug)]
pub struct Screener {
    rules: RuleSettings,
    scoring: Scoring,
    history: History,
}

impl Screener {
    /// A screener with an empty history; `max_skew_ms` bounds how far ahead of its
    /// storage time a request's own clock is trusted.
    pub fn new(rules: RuleSettings, scoring: Scoring, max_skew_ms: u64) -> Screener {
        let retention = Retention {
            horizon_ms: rules.horizon_ms(),
            max_skew_ms,
        };
        Screener {
            rules,
            scoring,
            history: History::new(retention),
        }
    }

    /// Judges `s` against the history before it, then records it.
    pub fn screen(&mut self, s: &Sighting, card_blocked: bool) -> Screening {
        let fired = self.rules.fired(&self.history, s, card_blocked);
        let (score, verdict) = self.scoring.judge(&fired);
        self.history.insert(s);
        Screening {
            fired,
            score,
            verdict,
        }
    }

    /// Records `s` without judging it (the replay at start); false if already known.
    pub fn record(&mut self, s: &Sighting) -> bool {
        self.history.insert(s)
    }

    /// How much history is kept.
    pub fn sizes(&self) -> Sizes {
        self.history.sizes()
    }
}

#[cfg(test)]
mod tests {
    use hail_events::sample;

    use super::*;

    fn rules() -> RuleSettings {
        RuleSettings {
            velocity_max_requests: 2,
            velocity_window_ms: 600_000,
            travel_max_speed_mps: 300.0 / 3.6,
            travel_min_distance_m: 1_000.0,
            travel_window_ms: 3_600_000,
            shared_min_riders: 3,
            shared_window_ms: 3_600_000,
        }
    }

    #[test]
    fn screens_then_records() {
        let mut screener = Screener::new(rules(), Scoring::default(), 300_000);
        let mut req = sample::ride_requested("r1", "berlin");
        let first = screener.screen(&Sighting::of(&req, req.requested_at_ms), false);
        assert_eq!(first.verdict, Verdict::Allow);
        req.ride_id = "r2".parse().unwrap();
        req.requested_at_ms += 1_000;
        screener.screen(&Sighting::of(&req, req.requested_at_ms), false);
        req.ride_id = "r3".parse().unwrap();
        req.requested_at_ms += 1_000;
        let third = screener.screen(&Sighting::of(&req, req.requested_at_ms), false);
        assert_eq!(third.fired, vec![Rule::Velocity]);
        assert_eq!(third.verdict, Verdict::Review);
        let event = third.event(&req, 42);
        assert_eq!(event.rules, vec!["velocity".to_string()]);
        assert_eq!(event.score, 0.5);
        assert_eq!(screener.sizes().entries, 3);
    }

    #[test]
    fn a_blocked_card_is_blocked() {
        let mut screener = Screener::new(rules(), Scoring::default(), 300_000);
        let req = sample::ride_requested("r1", "berlin");
        let s = screener.screen(&Sighting::of(&req, req.requested_at_ms), true);
        assert_eq!((s.score, s.verdict), (1.0, Verdict::Block));
        assert_eq!(s.event(&req, 1).rules, vec!["blocklisted_card".to_string()]);
    }
}
