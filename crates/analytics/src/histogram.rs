//! Fixed-bucket histograms that can be stored, merged and exported exactly.
//!
//! Bucket bounds are fixed per [`Scale`] and not stored: a checkpoint holds the
//! counts only, and refuses to load counts that do not fit the scale.

use serde::{Deserialize, Serialize};

/// What a histogram measures, and so its bucket upper bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// A fare in minor units of its currency (cents).
    FareMinor,
    /// A surge multiplier (1.0 = no surge).
    Surge,
    /// Time from request to match, in milliseconds.
    TimeToMatchMs,
}

const FARE_MINOR: [f64; 12] = [
    500.0, 750.0, 1_000.0, 1_500.0, 2_000.0, 3_000.0, 5_000.0, 7_500.0, 10_000.0, 15_000.0,
    25_000.0, 50_000.0,
];
const SURGE: [f64; 10] = [1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0];
const TIME_TO_MATCH_MS: [f64; 13] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0, 30_000.0,
    60_000.0,
];

impl Scale {
    /// Inclusive upper bounds of the finite buckets, ascending; one more bucket
    /// (`+Inf`) follows.
    pub fn bounds(self) -> &'static [f64] {
        match self {
            Scale::FareMinor => &FARE_MINOR,
            Scale::Surge => &SURGE,
            Scale::TimeToMatchMs => &TIME_TO_MATCH_MS,
        }
    }
}

/// Per-bucket (not cumulative) counts and the sum of observed values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// One count per bound of the scale, then the `+Inf` bucket.
    pub counts: Vec<u64>,
    /// Sum of every observed value (exact for whole numbers below 2^53).
    pub sum: f64,
}

impl Histogram {
    /// An empty histogram on `scale`.
    pub fn new(scale: Scale) -> Self {
        Histogram {
            counts: vec![0; scale.bounds().len() + 1],
            sum: 0.0,
        }
    }

    /// Counts `value` into the first bucket whose bound is at least `value`.
    pub fn observe(&mut self, scale: Scale, value: f64) {
        let i = scale.bounds().partition_point(|b| *b < value);
        self.counts[i] += 1;
        self.sum += value;
    }

    /// Takes back one [`Histogram::observe`] of `value` (a withdrawn event).
    /// The count is exact; the sum is too for whole numbers (fares, times),
    /// and within rounding for fractions (surge).
    pub fn unobserve(&mut self, scale: Scale, value: f64) {
        let i = scale.bounds().partition_point(|b| *b < value);
        self.counts[i] = self.counts[i].saturating_sub(1);
        self.sum -= value;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Mean of the observations, if any.
    pub fn mean(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum / n as f64)
    }

    /// The `q` quantile (0 to 1), interpolated linearly inside its bucket as
    /// Prometheus' `histogram_quantile` does; the highest finite bound when it
    /// falls into `+Inf`; `None` when empty.
    pub fn quantile(&self, scale: Scale, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let bounds = scale.bounds();
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = bounds.get(i) else {
                    return bounds.last().copied();
                };
                let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
                let within = (rank - below as f64) / n as f64;
                return Some(lower + (upper - lower) * within);
            }
            below += n;
        }
        bounds.last().copied()
    }

    /// Adds `other`'s observations (same scale) to these.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
    }

    /// `Err` naming the scale when the counts do not fit it (a checkpoint
    /// written with other bounds).
    pub fn check(&self, scale: Scale) -> Result<(), String> {
        let want = scale.bounds().len() + 1;
        if self.counts.len() == want {
            Ok(())
        } else {
            Err(format!(
                "{scale:?} histogram has {} buckets, this build has {want}",
                self.counts.len()
            ))
        }
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last: the
    /// Prometheus form.
    pub fn cumulative(&self, scale: Scale) -> Vec<(f64, u64)> {
        let bounds = scale.bounds().iter().copied().chain([f64::INFINITY]);
        let mut total = 0;
        bounds
            .zip(&self.counts)
            .map(|(b, c)| {
                total += c;
                (b, total)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_upper_bounds() {
        let mut h = Histogram::new(Scale::Surge);
        for v in [1.0, 1.05, 1.1, 7.5] {
            h.observe(Scale::Surge, v);
        }
        assert_eq!(h.counts[0], 1, "1.0 is in the <=1.0 bucket");
        assert_eq!(h.counts[1], 2, "1.05 and 1.1 in the <=1.1 bucket");
        assert_eq!(*h.counts.last().unwrap(), 1, "7.5 overflows to +Inf");
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum, 10.65);
    }

    #[test]
    fn cumulative_ends_with_the_total_at_inf() {
        let mut h = Histogram::new(Scale::FareMinor);
        for v in [400.0, 1_200.0, 1_200.0, 99_999.0] {
            h.observe(Scale::FareMinor, v);
        }
        let c = h.cumulative(Scale::FareMinor);
        assert_eq!(c.len(), FARE_MINOR.len() + 1);
        assert_eq!(c[0], (500.0, 1));
        assert_eq!(c[3], (1_500.0, 3));
        assert_eq!(*c.last().unwrap(), (f64::INFINITY, 4));
        assert_eq!(h.mean(), Some(25_699.75));
    }

    #[test]
    fn merge_adds_and_check_refuses_foreign_bounds() {
        let mut a = Histogram::new(Scale::TimeToMatchMs);
        let mut b = Histogram::new(Scale::TimeToMatchMs);
        a.observe(Scale::TimeToMatchMs, 30.0);
        b.observe(Scale::TimeToMatchMs, 30.0);
        b.observe(Scale::TimeToMatchMs, 70_000.0);
        a.merge(&b);
        assert_eq!((a.count(), a.sum), (3, 70_060.0));
        assert!(a.check(Scale::TimeToMatchMs).is_ok());
        let err = a.check(Scale::Surge).unwrap_err();
        assert!(err.starts_with("Surge histogram has 14 buckets"), "{err}");
        assert_eq!(Histogram::new(Scale::Surge).mean(), None);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let mut h = Histogram::new(Scale::TimeToMatchMs);
        assert_eq!(h.quantile(Scale::TimeToMatchMs, 0.5), None);
        for _ in 0..4 {
            h.observe(Scale::TimeToMatchMs, 60.0); // the (50, 100] bucket
        }
        assert_eq!(h.quantile(Scale::TimeToMatchMs, 0.5), Some(75.0));
        assert_eq!(h.quantile(Scale::TimeToMatchMs, 1.0), Some(100.0));
        h.observe(Scale::TimeToMatchMs, 1e9);
        assert_eq!(h.quantile(Scale::TimeToMatchMs, 0.99), Some(60_000.0));
    }
}
