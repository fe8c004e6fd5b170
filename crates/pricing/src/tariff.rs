//! The fare formula: (base + per-km × distance + per-minute × duration) × surge,
//! never below the minimum fare. Pure; money in minor units.

/// A city's prices, in minor units of `currency`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    /// ISO 4217 code.
    pub currency: String,
    /// Flag-fall.
    pub base_minor: u64,
    /// Per kilometre of trip.
    pub per_km_minor: u64,
    /// Per minute of estimated trip duration.
    pub per_minute_minor: u64,
    /// Lowest fare charged.
    pub minimum_minor: u64,
}

impl Default for Tariff {
    fn default() -> Self {
        Tariff {
            currency: "EUR".into(),
            base_minor: 250,
            per_km_minor: 120,
            per_minute_minor: 30,
            minimum_minor: 700,
        }
    }
}

/// Average urban driving speed used to estimate trip duration, in m/s (25 km/h).
pub const URBAN_SPEED_MPS: f64 = 25_000.0 / 3600.0;

/// Estimated trip duration in whole seconds for a distance in metres.
pub fn duration_s(distance_m: f64) -> u32 {
    (distance_m / URBAN_SPEED_MPS)
        .round()
        .min(f64::from(u32::MAX)) as u32
}

impl Tariff {
    /// The fare in minor units, rounded to the nearest minor unit.
    pub fn fare_minor(&self, distance_m: f64, duration_s: u32, surge: f64) -> u64 {
        let raw = self.base_minor as f64
            + self.per_km_minor as f64 * distance_m / 1000.0
            + self.per_minute_minor as f64 * f64::from(duration_s) / 60.0;
        ((raw * surge).round() as u64).max(self.minimum_minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_fares() {
        let t = Tariff::default();
        // 10 km, 24 min: 250 + 1200 + 720 = 2170.
        assert_eq!(t.fare_minor(10_000.0, 1440, 1.0), 2170);
        // Same trip at 1.5× surge: 3255.
        assert_eq!(t.fare_minor(10_000.0, 1440, 1.5), 3255);
        // A 500 m hop costs the minimum.
        assert_eq!(t.fare_minor(500.0, 72, 1.0), 700);
        assert_eq!(duration_s(25_000.0), 3600);
    }
}
