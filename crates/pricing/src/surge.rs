//! Surge: how much fares are multiplied by where riders outnumber drivers.
//!
//! The ratio is recent requests over available drivers around the pickup. At or
//! below the threshold the multiplier is 1.0; above it, it rises by `slope` per
//! unit of ratio, is capped, and is floored to a step of 0.1. Flooring (not
//! rounding) keeps it within the cap and never lets it fall as demand rises.

/// A surge multiplier, held in tenths (15 = 1.5×): at least 1.0 and a multiple
/// of 0.1 by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Surge(u16);

impl Surge {
    /// No surge: 1.0×.
    pub const NONE: Surge = Surge(10);
    /// The highest cap accepted: 10.0×.
    pub const MAX: Surge = Surge(100);

    /// A multiplier of `tenths` / 10, if that is between 1.0 and [`Surge::MAX`].
    pub fn from_tenths(tenths: u16) -> Option<Surge> {
        (Surge::NONE.0..=Surge::MAX.0)
            .contains(&tenths)
            .then_some(Surge(tenths))
    }

    /// The multiplier in tenths.
    pub fn tenths(self) -> u16 {
        self.0
    }

    /// The multiplier as a number, e.g. 1.5.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 10.0
    }
}

/// A flag of the surge policy that is out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SurgeError {
    /// The ratio above which surge starts.
    #[error("--surge-threshold {0} must be a finite number of at least 0")]
    Threshold(f64),
    /// How fast surge rises.
    #[error("--surge-slope {0} must be a finite number above 0")]
    Slope(f64),
    /// The highest multiplier.
    #[error("--surge-cap {0} must be a multiple of 0.1 from 1.0 to 10.0")]
    Cap(f64),
}

/// How demand over supply turns into a multiplier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurgePolicy {
    threshold: f64,
    slope: f64,
    cap: Surge,
}

impl SurgePolicy {
    /// Validates the three settings, naming the flag of a bad one.
    pub fn new(threshold: f64, slope: f64, cap: f64) -> Result<Self, SurgeError> {
        if !(threshold.is_finite() && threshold >= 0.0) {
            return Err(SurgeError::Threshold(threshold));
        }
        if !(slope.is_finite() && slope > 0.0) {
            return Err(SurgeError::Slope(slope));
        }
        let tenths = (cap * 10.0).round();
        let whole_tenths = (cap * 10.0 - tenths).abs() < 1e-6;
        let cap_surge = whole_tenths
            .then(|| Surge::from_tenths(tenths as u16))
            .flatten()
            .ok_or(SurgeError::Cap(cap))?;
        Ok(SurgePolicy {
            threshold,
            slope,
            cap: cap_surge,
        })
    }

    /// The highest multiplier this policy gives.
    pub fn cap(&self) -> Surge {
        self.cap
    }

    /// The multiplier for `demand` recent requests and `supply` available drivers.
    /// No demand means no surge; demand with no driver at all means the cap.
    pub fn surge(&self, demand: u32, supply: u32) -> Surge {
        if demand == 0 {
            return Surge::NONE;
        }
        if supply == 0 {
            return self.cap;
        }
        let ratio = f64::from(demand) / f64::from(supply);
        if ratio <= self.threshold {
            return Surge::NONE;
        }
        let raw = 1.0 + self.slope * (ratio - self.threshold);
        // The epsilon keeps 1.5 from flooring to 1.4 when it is 1.4999999999.
        let tenths = (raw * 10.0 + 1e-9).floor().min(f64::from(self.cap.0));
        Surge(tenths as u16)
    }
}

impl Default for SurgePolicy {
    /// Threshold 1.0, slope 0.5, cap 3.0.
    fn default() -> Self {
        SurgePolicy {
            threshold: 1.0,
            slope: 0.5,
            cap: Surge(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_computed_multipliers() {
        let p = SurgePolicy::default();
        assert_eq!(p.surge(0, 0), Surge::NONE);
        assert_eq!(p.surge(5, 10), Surge::NONE);
        assert_eq!(p.surge(10, 10), Surge::NONE);
        // ratio 2 → 1 + 0.5 × 1 = 1.5.
        assert_eq!(p.surge(20, 10), Surge(15));
        // ratio 1.33 → 1.166 → 1.1.
        assert_eq!(p.surge(4, 3), Surge(11));
        // ratio 9 → 5.0, capped at 3.0.
        assert_eq!(p.surge(9, 1), Surge(30));
        assert_eq!(p.surge(1, 0), Surge(30));
    }

    #[test]
    fn bad_settings_name_their_flag() {
        let bad = [
            SurgePolicy::new(-1.0, 0.5, 3.0).unwrap_err(),
            SurgePolicy::new(1.0, 0.0, 3.0).unwrap_err(),
            SurgePolicy::new(1.0, f64::NAN, 3.0).unwrap_err(),
            SurgePolicy::new(1.0, 0.5, 0.9).unwrap_err(),
            SurgePolicy::new(1.0, 0.5, 2.55).unwrap_err(),
            SurgePolicy::new(1.0, 0.5, f64::INFINITY).unwrap_err(),
        ];
        let text: Vec<String> = bad.iter().map(ToString::to_string).collect();
        assert!(text[0].starts_with("--surge-threshold -1"), "{}", text[0]);
        assert!(text[1].starts_with("--surge-slope 0"), "{}", text[1]);
        assert!(text[2].starts_with("--surge-slope NaN"), "{}", text[2]);
        assert!(
            text[3..].iter().all(|t| t.starts_with("--surge-cap")),
            "{text:?}"
        );
        assert_eq!(SurgePolicy::new(1.0, 0.5, 2.5).unwrap().cap(), Surge(25));
    }

    fn policy() -> impl Strategy<Value = SurgePolicy> {
        (0.0..5.0f64, 0.01..5.0f64, 10u16..=100).prop_map(|(threshold, slope, cap)| {
            SurgePolicy::new(threshold, slope, f64::from(cap) / 10.0).unwrap()
        })
    }

    proptest! {
        #[test]
        fn never_falls_as_demand_rises(p in policy(), d in 0u32..100_000, more in 0u32..100_000, s in 0u32..100_000) {
            prop_assert!(p.surge(d, s) <= p.surge(d + more, s));
        }

        #[test]
        fn never_rises_as_supply_rises(p in policy(), d in 0u32..100_000, s in 0u32..100_000, more in 0u32..100_000) {
            prop_assert!(p.surge(d, s + more) <= p.surge(d, s));
        }

        #[test]
        fn stays_between_one_and_the_cap_in_steps_of_a_tenth(p in policy(), d in any::<u32>(), s in any::<u32>()) {
            let m = p.surge(d, s).as_f64();
            prop_assert!((1.0..=p.cap().as_f64()).contains(&m), "{m}");
            prop_assert!((m * 10.0 - (m * 10.0).round()).abs() < 1e-9, "{m}");
        }
    }
}
