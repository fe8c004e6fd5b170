//! Pickup ETA: the straight-line distance driven at an average urban speed.

/// An average driving speed, known to be finite and positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UrbanSpeed {
    meters_per_second: f64,
}

impl UrbanSpeed {
    /// A speed in km/h, refusing NaN, zero, negative and implausible (over 200 km/h) values.
    pub fn from_kmh(kmh: f64) -> Result<Self, String> {
        if !(kmh.is_finite() && kmh > 0.0 && kmh <= 200.0) {
            return Err(format!("{kmh} km/h is not a speed in (0, 200]"));
        }
        Ok(Self {
            meters_per_second: kmh / 3.6,
        })
    }

    /// Seconds to drive `distance_m`, rounded up.
    pub fn eta_s(&self, distance_m: f64) -> u32 {
        let seconds = (distance_m.max(0.0) / self.meters_per_second).ceil();
        // `as` saturates: a distance this long is absurd, not an error.
        seconds as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_rounds_up_at_the_given_speed() {
        let speed = UrbanSpeed::from_kmh(36.0).unwrap(); // 10 m/s
        assert_eq!(speed.eta_s(0.0), 0);
        assert_eq!(speed.eta_s(1_000.0), 100);
        assert_eq!(speed.eta_s(1_001.0), 101);
    }

    #[test]
    fn refuses_impossible_speeds() {
        for kmh in [0.0, -5.0, f64::NAN, f64::INFINITY, 500.0] {
            assert!(UrbanSpeed::from_kmh(kmh).is_err(), "{kmh}");
        }
    }
}
