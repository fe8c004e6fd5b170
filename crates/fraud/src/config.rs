//! fraud's flags: rule thresholds and windows, weights, verdict thresholds;
//! validated once at start with errors that name the flag.

use std::time::Duration;

use hail_runtime::duration::parse_duration;

use crate::{history::MAX_ENTRIES_PER_KEY, rules::RuleSettings, scoring::Scoring};

/// The rules and their scoring, from flags or environment.
#[derive(Debug, Clone, clap::Args)]
pub struct FraudArgs {
    /// Velocity: a rider making more than this many requests within --velocity-window is flagged.
    #[arg(long, env = "HAIL_FRAUD_VELOCITY_MAX_REQUESTS", default_value_t = 5)]
    pub velocity_max_requests: usize,
    /// Velocity: the window, in event time (requested_at_ms).
    #[arg(long, env = "HAIL_FRAUD_VELOCITY_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub velocity_window: Duration,
    /// Impossible travel: implied speed between a rider's consecutive pickups above which it fires, km/h.
    #[arg(long, env = "HAIL_FRAUD_TRAVEL_MAX_SPEED_KMH", default_value_t = 300.0)]
    pub travel_max_speed_kmh: f64,
    /// Impossible travel: pickups closer than this many metres are never flagged (GPS jitter).
    #[arg(
        long,
        env = "HAIL_FRAUD_TRAVEL_MIN_DISTANCE_M",
        default_value_t = 1_000.0
    )]
    pub travel_min_distance_m: f64,
    /// Impossible travel: a previous pickup older than this is not compared.
    #[arg(long, env = "HAIL_FRAUD_TRAVEL_WINDOW", default_value = "1h", value_parser = parse_duration)]
    pub travel_window: Duration,
    /// Shared device/card: flagged when this many distinct riders or more used one device or card within --shared-window.
    #[arg(long, env = "HAIL_FRAUD_SHARED_MIN_RIDERS", default_value_t = 3)]
    pub shared_min_riders: usize,
    /// Shared device/card: the window, in event time.
    #[arg(long, env = "HAIL_FRAUD_SHARED_WINDOW", default_value = "1h", value_parser = parse_duration)]
    pub shared_window: Duration,
    /// Weight of the velocity rule in the score, in [0, 1].
    #[arg(long, env = "HAIL_FRAUD_WEIGHT_VELOCITY", default_value_t = Scoring::default().velocity)]
    pub weight_velocity: f64,
    /// Weight of the impossible-travel rule, in [0, 1].
    #[arg(long, env = "HAIL_FRAUD_WEIGHT_IMPOSSIBLE_TRAVEL", default_value_t = Scoring::default().impossible_travel)]
    pub weight_impossible_travel: f64,
    /// Weight of the shared-device rule, in [0, 1].
    #[arg(long, env = "HAIL_FRAUD_WEIGHT_SHARED_DEVICE", default_value_t = Scoring::default().shared_device)]
    pub weight_shared_device: f64,
    /// Weight of the shared-card rule, in [0, 1].
    #[arg(long, env = "HAIL_FRAUD_WEIGHT_SHARED_CARD", default_value_t = Scoring::default().shared_card)]
    pub weight_shared_card: f64,
    /// Lowest score judged `review` (score = 1 - Π(1 - weight) over the rules that fired).
    #[arg(long, env = "HAIL_FRAUD_REVIEW_SCORE", default_value_t = Scoring::default().review_at)]
    pub review_score: f64,
    /// Lowest score judged `block`; a blocklisted card is always blocked.
    #[arg(long, env = "HAIL_FRAUD_BLOCK_SCORE", default_value_t = Scoring::default().block_at)]
    pub block_score: f64,
    /// How far ahead of the stream's clock a request's requested_at_ms is trusted to move the
    /// event-time watermark (and how much earlier the history replay at start begins).
    #[arg(long, env = "HAIL_FRAUD_MAX_CLOCK_SKEW", default_value = "5m", value_parser = parse_duration)]
    pub max_clock_skew: Duration,
}

/// Validated settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub rules: RuleSettings,
    pub scoring: Scoring,
    pub max_skew_ms: u64,
}

impl FraudArgs {
    /// The settings, or an error naming the bad flag.
    pub fn settings(&self) -> Result<Settings, String> {
        self.check_counts()?;
        self.check_rates()?;
        let windows = [
            ("--velocity-window", self.velocity_window),
            ("--travel-window", self.travel_window),
            ("--shared-window", self.shared_window),
        ];
        if let Some((flag, _)) = windows.iter().find(|(_, d)| d.is_zero()) {
            return Err(format!("{flag} must be longer than 0s"));
        }
        Ok(Settings {
            rules: RuleSettings {
                velocity_max_requests: self.velocity_max_requests,
                velocity_window_ms: millis(self.velocity_window),
                travel_max_speed_mps: self.travel_max_speed_kmh / 3.6,
                travel_min_distance_m: self.travel_min_distance_m,
                travel_window_ms: millis(self.travel_window),
                shared_min_riders: self.shared_min_riders,
                shared_window_ms: millis(self.shared_window),
            },
            scoring: Scoring {
                velocity: self.weight_velocity,
                impossible_travel: self.weight_impossible_travel,
                shared_device: self.weight_shared_device,
                shared_card: self.weight_shared_card,
                review_at: self.review_score,
                block_at: self.block_score,
            },
            max_skew_ms: millis(self.max_clock_skew),
        })
    }

    fn check_counts(&self) -> Result<(), String> {
        let limit = MAX_ENTRIES_PER_KEY - 1;
        let counts = [
            ("--velocity-max-requests", self.velocity_max_requests, 1),
            ("--shared-min-riders", self.shared_min_riders, 2),
        ];
        for (flag, v, min) in counts {
            if v < min || v > limit {
                return Err(format!("{flag} must be within [{min}, {limit}], got {v}"));
            }
        }
        Ok(())
    }

    fn check_rates(&self) -> Result<(), String> {
        let positive = [
            ("--travel-max-speed-kmh", self.travel_max_speed_kmh),
            ("--travel-min-distance-m", self.travel_min_distance_m),
        ];
        for (flag, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{flag} must be a positive number, got {v}"));
            }
        }
        let unit = [
            ("--weight-velocity", self.weight_velocity),
            ("--weight-impossible-travel", self.weight_impossible_travel),
            ("--weight-shared-device", self.weight_shared_device),
            ("--weight-shared-card", self.weight_shared_card),
            ("--review-score", self.review_score),
            ("--block-score", self.block_score),
        ];
        if let Some((flag, v)) = unit.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(format!("{flag} must be within [0, 1], got {v}"));
        }
        if self.review_score > self.block_score {
            return Err(format!(
                "--review-score {} must not be above --block-score {}",
                self.review_score, self.block_score
            ));
        }
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        fraud: FraudArgs,
    }

    fn parse(args: &[&str]) -> FraudArgs {
        Cli::parse_from(std::iter::once("fraud").chain(args.iter().copied())).fraud
    }

    #[test]
    fn defaults_are_valid() {
        let s = parse(&[]).settings().unwrap();
        assert_eq!(s.rules.velocity_max_requests, 5);
        assert_eq!(s.rules.velocity_window_ms, 600_000);
        assert_eq!(s.rules.horizon_ms(), 3_600_000);
        assert_eq!(s.scoring, Scoring::default());
    }

    #[test]
    fn names_the_bad_flag() {
        let cases: [(&[&str], &str); 5] = [
            (&["--velocity-max-requests", "0"], "--velocity-max-requests"),
            (&["--shared-min-riders", "1"], "--shared-min-riders"),
            (&["--weight-velocity", "1.5"], "--weight-velocity"),
            (&["--review-score", "0.9"], "--review-score"),
            (&["--velocity-window", "0s"], "--velocity-window"),
        ];
        for (args, flag) in cases {
            let err = parse(args).settings().unwrap_err();
            assert!(err.starts_with(flag), "{args:?}: {err}");
        }
    }
}
