//! A day, compressed into the run: demand rises into a rush hour half way
//! through and falls back, and the hotspots drift across town as it goes.
//!
//! The rate factor is `base + bump(t)` normalised to a mean of 1 over the day,
//! so `--rate` stays the run's mean rate; `bump` is a raised cosine over the
//! middle half of the day (the wave). The extra demand of the wave goes to each
//! city's first [`WAVE_HOTSPOTS`] hotspots (a station at rush hour), and the
//! hotspots turn slowly around their resting place, one circle a day.

use std::f64::consts::TAU;

/// Height of the wave over the off-peak level (0.9: at its peak demand is 1.9×
/// what it is off-peak).
pub const WAVE_AMPLITUDE: f64 = 0.9;
/// The wave lasts from this share of the day to [`WAVE_END`].
pub const WAVE_START: f64 = 0.25;
/// End of the wave, as a share of the day.
pub const WAVE_END: f64 = 0.75;
/// How many hotspots of each city the wave's extra demand goes to.
pub const WAVE_HOTSPOTS: usize = 2;
/// Radius of a hotspot's daily circle, metres.
pub const DRIFT_M: f64 = 1_000.0;
/// Mean of `bump` over the day: a raised cosine of height 1 over half the day.
const MEAN_BUMP: f64 = (WAVE_END - WAVE_START) / 2.0;

/// The day of a run: how long it is, in microseconds from the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    length_us: u64,
    amplitude: f64,
}

impl Day {
    /// A day of `length_us` with the default wave.
    pub fn new(length_us: u64) -> Self {
        Self::with_wave(length_us, WAVE_AMPLITUDE)
    }

    /// A day of `length_us` whose wave is `amplitude` high (0: a flat day).
    pub fn with_wave(length_us: u64, amplitude: f64) -> Self {
        Self {
            length_us: length_us.max(1),
            amplitude: amplitude.max(0.0),
        }
    }

    /// A day without a wave.
    pub fn flat(length_us: u64) -> Self {
        Self::with_wave(length_us, 0.0)
    }

    /// The same day without its wave (the hotspots still drift).
    pub fn without_wave(&self) -> Self {
        Self::flat(self.length_us)
    }

    /// Where `at_us` falls in the day, 0 to 1 (and past 1 after the day).
    pub fn phase(&self, at_us: u64) -> f64 {
        at_us as f64 / self.length_us as f64
    }

    /// The wave's height at `at_us`, 0 off-peak to 1 at its peak.
    pub fn bump(&self, at_us: u64) -> f64 {
        let p = self.phase(at_us);
        if !(WAVE_START..WAVE_END).contains(&p) {
            return 0.0;
        }
        let x = (p - WAVE_START) / (WAVE_END - WAVE_START);
        (1.0 - (TAU * x).cos()) / 2.0
    }

    /// Whether `at_us` is in the wave's busier half (its bump above one half).
    pub fn in_wave(&self, at_us: u64) -> bool {
        self.bump(at_us) > 0.5
    }

    /// Demand at `at_us` relative to the day's mean.
    pub fn rate_factor(&self, at_us: u64) -> f64 {
        (1.0 + self.amplitude * self.bump(at_us)) / self.norm()
    }

    /// The highest [`Day::rate_factor`], at the wave's peak.
    pub fn peak_factor(&self) -> f64 {
        (1.0 + self.amplitude) / self.norm()
    }

    /// The share of the rate at `at_us` that is the wave's extra demand.
    pub fn wave_share(&self, at_us: u64) -> f64 {
        let extra = self.amplitude * self.bump(at_us);
        extra / (1.0 + extra)
    }

    /// The angle of the hotspots' drift at `at_us`: one turn a day.
    pub fn drift_angle(&self, at_us: u64) -> f64 {
        TAU * self.phase(at_us)
    }

    fn norm(&self) -> f64 {
        1.0 + self.amplitude * MEAN_BUMP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 60_000_000;

    #[test]
    fn the_mean_rate_is_the_target_and_the_wave_peaks_half_way() {
        let d = Day::new(DAY);
        let n = 60_000;
        let mean: f64 = (0..n).map(|k| d.rate_factor(k * DAY / n)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 1e-3, "{mean}");
        assert!((d.rate_factor(DAY / 2) - d.peak_factor()).abs() < 1e-9);
        assert!(d.rate_factor(0) < 1.0 && d.peak_factor() > 1.4);
        assert!(!d.in_wave(DAY / 5) && d.in_wave(DAY / 2) && !d.in_wave(DAY * 4 / 5));
        assert_eq!(d.wave_share(0), 0.0);
        let top = d.wave_share(DAY / 2);
        assert!((top - 0.9 / 1.9).abs() < 1e-9, "{top}");
    }

    #[test]
    fn a_flat_day_is_flat() {
        let d = Day::flat(DAY);
        assert!((0..100).all(|k| (d.rate_factor(k * DAY / 100) - 1.0).abs() < 1e-12));
        assert_eq!(d.peak_factor(), 1.0);
    }
}
