//! When riders ask: an open-loop Poisson schedule.
//!
//! Arrival times are drawn up front from the seed and the rate (exponential gaps),
//! relative to the start of the run, and never depend on how the system answers:
//! a slow broker makes rides late or refused, never fewer. Each ride keeps its
//! intended time, and latencies are measured from it, which corrects for
//! coordinated omission.

use std::time::Duration;

use tokio::time::Instant;

use super::day::Day;
use crate::rng::{SplitMix64, mix};

/// Salt of the arrival times, so they do not repeat the rides' draws.
const SCHEDULE_SALT: u64 = 0x7363_6865_6475_6c65;

/// The run's time base: a monotonic start, and the wall clock at that start for
/// event timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_ms: u64,
}

impl Clock {
    /// Starts the run's clock now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
            start_ms: hail_runtime::now_ms(),
        }
    }

    /// Microseconds since the start.
    pub fn elapsed_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// The instant `at_us` after the start.
    pub fn instant(&self, at_us: u64) -> Instant {
        self.start + Duration::from_micros(at_us)
    }

    /// Wall-clock milliseconds since the Unix epoch of `at_us` after the start.
    pub fn wall_ms(&self, at_us: u64) -> u64 {
        self.start_ms + at_us / 1_000
    }
}

/// One ride of the schedule: its number and when it is meant to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub index: u64,
    /// Intended send time, microseconds after the start.
    pub at_us: u64,
}

/// The arrivals of a run, in order, until either bound is reached.
#[derive(Debug, Clone)]
pub struct Schedule {
    rng: SplitMix64,
    mean_gap_us: f64,
    next_us: f64,
    next_index: u64,
    max_rides: Option<u64>,
    until_us: Option<u64>,
    /// The day whose wave shapes the rate; `None`: a constant rate.
    day: Option<Day>,
}

impl Schedule {
    /// `rate` rides per second from `seed`; at most `max_rides`, and only those
    /// meant to be sent before `until`.
    pub fn new(seed: u64, rate: f64, max_rides: Option<u64>, until: Option<Duration>) -> Self {
        let mut rng = SplitMix64::new(mix(seed ^ SCHEDULE_SALT, 0));
        let mean_gap_us = 1e6 / rate;
        let next_us = rng.exp(mean_gap_us);
        Self {
            rng,
            mean_gap_us,
            next_us,
            next_index: 0,
            max_rides,
            until_us: until.map(|d| d.as_micros() as u64),
            day: None,
        }
    }

    /// The same mean rate, shaped by `day`'s wave: arrivals are drawn at the
    /// peak rate and each is kept with the day's rate at its time over the peak
    /// (thinning), which gives a Poisson process whose rate follows the day.
    pub fn with_day(mut self, day: Day) -> Self {
        self.mean_gap_us /= day.peak_factor();
        self.next_us = self.rng.exp(self.mean_gap_us);
        self.day = Some(day);
        self.thin();
        self
    }

    /// Moves `next_us` past the candidates the day's rate does not keep.
    fn thin(&mut self) {
        let Some(day) = self.day else { return };
        let peak = day.peak_factor();
        while self.rng.unit() * peak > day.rate_factor(self.next_us as u64) {
            self.next_us += self.rng.exp(self.mean_gap_us);
        }
    }

    /// The next arrival, or `None` when the schedule is over.
    pub fn peek(&self) -> Option<Arrival> {
        let at_us = self.next_us as u64;
        let timed_out = self.until_us.is_some_and(|u| at_us >= u);
        (!self.counted_out() && !timed_out).then_some(Arrival {
            index: self.next_index,
            at_us,
        })
    }

    /// Whether `max_rides` have been released.
    pub fn counted_out(&self) -> bool {
        self.max_rides.is_some_and(|n| self.next_index >= n)
    }

    /// The next arrival if it is due at `now_us`, and moves past it.
    pub fn pop_due(&mut self, now_us: u64) -> Option<Arrival> {
        let next = self.peek().filter(|a| a.at_us <= now_us)?;
        self.next_us += self.rng.exp(self.mean_gap_us);
        self.thin();
        self.next_index += 1;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(mut s: Schedule) -> Vec<Arrival> {
        std::iter::from_fn(|| s.pop_due(u64::MAX)).collect()
    }

    #[test]
    fn arrivals_come_at_the_rate_with_poisson_gaps() {
        let arrivals = all(Schedule::new(
            1,
            1_000.0,
            None,
            Some(Duration::from_secs(20)),
        ));
        // 20 000 expected, standard deviation about 141.
        assert!(
            (19_500..20_500).contains(&arrivals.len()),
            "{}",
            arrivals.len()
        );
        assert!(arrivals.iter().all(|a| a.at_us < 20_000_000));
        let gaps: Vec<f64> = arrivals
            .windows(2)
            .map(|w| (w[1].at_us - w[0].at_us) as f64)
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        // Exponential gaps: mean 1 ms, coefficient of variation 1.
        assert!((950.0..1_050.0).contains(&mean), "{mean}");
        assert!((0.95..1.05).contains(&(var.sqrt() / mean)), "{var}");
        assert!(
            arrivals
                .iter()
                .enumerate()
                .all(|(i, a)| a.index == i as u64)
        );
    }

    #[test]
    fn a_day_keeps_the_mean_rate_and_peaks_in_the_wave() {
        let secs = 40;
        let day = Day::new(secs * 1_000_000);
        let until = Some(Duration::from_secs(secs));
        let arrivals = all(Schedule::new(7, 1_000.0, None, until).with_day(day));
        // 40 000 expected.
        assert!(
            (39_000..41_000).contains(&arrivals.len()),
            "{}",
            arrivals.len()
        );
        let in_second = |s: u64| {
            let r = s * 1_000_000..(s + 1) * 1_000_000;
            arrivals.iter().filter(|a| r.contains(&a.at_us)).count() as f64
        };
        let quiet = (0..8).map(in_second).sum::<f64>() / 8.0;
        let peak = (18..22).map(in_second).sum::<f64>() / 4.0;
        let expect = |at: u64| 1_000.0 * day.rate_factor(at * 1_000_000);
        assert!((quiet / expect(4) - 1.0).abs() < 0.1, "{quiet}");
        assert!((peak / expect(20) - 1.0).abs() < 0.1, "{peak}");
        assert!(arrivals.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    }

    #[test]
    fn stops_at_the_count_and_is_reproducible() {
        let a = all(Schedule::new(5, 50_000.0, Some(1_000), None));
        assert_eq!(a.len(), 1_000);
        assert_eq!(a, all(Schedule::new(5, 50_000.0, Some(1_000), None)));
        assert_ne!(a, all(Schedule::new(6, 50_000.0, Some(1_000), None)));
    }

    #[test]
    fn only_what_is_due_is_released() {
        let mut s = Schedule::new(3, 1_000.0, Some(10), None);
        let first = s.peek().unwrap();
        assert!(first.at_us > 0);
        assert_eq!(s.pop_due(first.at_us - 1), None);
        assert_eq!(s.pop_due(first.at_us), Some(first));
        let late = s.peek().unwrap().at_us + 1_000_000;
        let burst: Vec<_> = std::iter::from_fn(|| s.pop_due(late)).collect();
        // Late: everything due is released at once (catching up, never skipped).
        assert_eq!(burst.len(), 9);
        assert_eq!(s.peek(), None);
    }
}
