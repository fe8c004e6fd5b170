//! The fare formula: (base + per-km × distance + per-minute × duration) × surge,
//! never below the minimum fare nor above the maximum. Pure; money in minor units
//! (cents, pence) of the tariff's currency.

use crate::surge::Surge;

/// A city's prices, in minor units of `currency`. Built only by
/// [`crate::tariffs`], which validates every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tariff {
    /// ISO 4217 code, three capital letters.
    pub currency: String,
    /// Flag-fall.
    pub base_minor: u64,
    /// Per kilometre of trip.
    pub per_km_minor: u64,
    /// Per minute of estimated trip duration.
    pub per_minute_minor: u64,
    /// Lowest fare charged, after surge.
    pub minimum_minor: u64,
    /// Highest fare charged, after surge, if the city caps fares.
    pub maximum_minor: Option<u64>,
}

/// Average urban driving speed used to estimate trip duration, in m/s (25 km/h).
pub const URBAN_SPEED_MPS: f64 = 25_000.0 / 3600.0;

/// Estimated trip duration in whole seconds for a distance in metres.
pub fn duration_s(distance_m: f64) -> u32 {
    (distance_m / URBAN_SPEED_MPS)
        .round()
        .clamp(0.0, f64::from(u32::MAX)) as u32
}

impl Tariff {
    /// The fare in minor units: the metered amount times the surge, rounded to
    /// the nearest minor unit, then held between the minimum and the maximum.
    pub fn fare_minor(&self, distance_m: f64, duration_s: u32, surge: Surge) -> u64 {
        let metered = self.base_minor as f64
            + self.per_km_minor as f64 * distance_m / 1000.0
            + self.per_minute_minor as f64 * f64::from(duration_s) / 60.0;
        // Tenths keep the multiplication exact for the surge itself.
        let surged = (metered * f64::from(surge.tenths()) / 10.0).round() as u64;
        let floored = surged.max(self.minimum_minor);
        self.maximum_minor.map_or(floored, |max| floored.min(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> Tariff {
        Tariff {
            currency: "EUR".into(),
            base_minor: 250,
            per_km_minor: 120,
            per_minute_minor: 30,
            minimum_minor: 700,
            maximum_minor: None,
        }
    }

    fn surge(tenths: u16) -> Surge {
        Surge::from_tenths(tenths).unwrap()
    }

    #[test]
    fn metered_fare_without_surge() {
        // 10 km, 24 min: 250 + 120 × 10 + 30 × 24 = 2170.
        assert_eq!(berlin().fare_minor(10_000.0, 1440, Surge::NONE), 2170);
        // 3.5 km, 8.5 min: 250 + 420 + 255 = 925.
        assert_eq!(berlin().fare_minor(3_500.0, 510, Surge::NONE), 925);
    }

    #[test]
    fn surge_multiplies_the_metered_fare() {
        // 2170 × 1.5 = 3255.
        assert_eq!(berlin().fare_minor(10_000.0, 1440, surge(15)), 3255);
        // 925 × 2.3 = 2127.5, rounded half away from zero: 2128.
        assert_eq!(berlin().fare_minor(3_500.0, 510, surge(23)), 2128);
    }

    #[test]
    fn short_trips_cost_the_minimum_even_with_a_little_surge() {
        // 500 m, 72 s: 250 + 60 + 36 = 346 → minimum 700.
        assert_eq!(berlin().fare_minor(500.0, 72, Surge::NONE), 700);
        // × 1.8 = 622.8 → still the minimum.
        assert_eq!(berlin().fare_minor(500.0, 72, surge(18)), 700);
        // × 3.0 = 1038: the surge lifts it above the minimum.
        assert_eq!(berlin().fare_minor(500.0, 72, surge(30)), 1038);
    }

    #[test]
    fn the_maximum_caps_a_surged_fare() {
        let capped = Tariff {
            maximum_minor: Some(5_000),
            ..berlin()
        };
        // 2170 × 3.0 = 6510 → 5000.
        assert_eq!(capped.fare_minor(10_000.0, 1440, surge(30)), 5_000);
        assert_eq!(capped.fare_minor(10_000.0, 1440, Surge::NONE), 2170);
    }

    #[test]
    fn london_in_pence() {
        let london = Tariff {
            currency: "GBP".into(),
            base_minor: 300,
            per_km_minor: 125,
            per_minute_minor: 25,
            minimum_minor: 800,
            maximum_minor: None,
        };
        // 6 km, 14.4 min: 300 + 750 + 360 = 1410; × 2.0 = 2820.
        assert_eq!(london.fare_minor(6_000.0, 864, surge(20)), 2820);
    }

    #[test]
    fn duration_at_urban_speed() {
        assert_eq!(duration_s(25_000.0), 3600);
        assert_eq!(duration_s(0.0), 0);
        assert_eq!(duration_s(1_000.0), 144);
    }
}
