//! A small seeded random-number generator and the draws the city model needs.
//!
//! SplitMix64 needs no crate, is reproducible from one `u64` on every platform, and
//! can be re-seeded per item ([`mix`]), so ride `i` is the same whichever order the
//! rides are built in.

use std::f64::consts::TAU;

/// The golden-ratio increment of SplitMix64, also used to spread item seeds.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64 (Steele, Lea and Flood): fast and well mixed.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose draws are a function of `seed` alone.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, 2π).
    pub fn angle(&mut self) -> f64 {
        self.unit() * TAU
    }

    /// Uniform in `0..n`; `n` must not be 0.
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough for picking among a few cities.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Exponentially distributed with the given mean (the gap between Poisson arrivals).
    pub fn exp(&mut self, mean: f64) -> f64 {
        // 1 - unit() is in (0, 1], so the logarithm is finite.
        -mean * (1.0 - self.unit()).ln()
    }

    /// The distance from the centre of a 2-D normal with standard deviation `sigma`
    /// in each axis (Rayleigh distributed).
    pub fn rayleigh(&mut self, sigma: f64) -> f64 {
        sigma * (-2.0 * (1.0 - self.unit()).ln()).sqrt()
    }
}

/// The seed of item `i` of a stream seeded with `seed`.
pub fn mix(seed: u64, i: u64) -> u64 {
    seed ^ i.wrapping_mul(GOLDEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(n: usize, mut draw: impl FnMut() -> f64) -> f64 {
        (0..n).map(|_| draw()).sum::<f64>() / n as f64
    }

    #[test]
    fn draws_have_the_intended_means_and_ranges() {
        let mut rng = SplitMix64::new(7);
        assert!((mean(100_000, || rng.unit()) - 0.5).abs() < 0.01);
        assert!((mean(100_000, || rng.exp(2.0)) - 2.0).abs() < 0.05);
        // Rayleigh mean: sigma * sqrt(pi / 2).
        let want = 100.0 * (std::f64::consts::PI / 2.0).sqrt();
        assert!((mean(100_000, || rng.rayleigh(100.0)) - want).abs() < 2.0);
        assert!((0..10_000).all(|_| rng.below(3) < 3));
        assert!((0..10_000).all(|_| rng.exp(1.0).is_finite()));
    }

    #[test]
    fn same_seed_same_draws() {
        let a: Vec<u64> = (0..5)
            .map(|i| SplitMix64::new(mix(1, i)).next_u64())
            .collect();
        let b: Vec<u64> = (0..5)
            .map(|i| SplitMix64::new(mix(1, i)).next_u64())
            .collect();
        assert_eq!(a, b);
        assert_ne!(
            SplitMix64::new(mix(1, 0)).next_u64(),
            SplitMix64::new(mix(2, 0)).next_u64()
        );
    }
}
