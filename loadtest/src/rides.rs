//! The rides of one load run: `RideRequested` number `i` of run `<run-id>`.
//!
//! Ids are derived from the ride id (`<run-id>-<i>`), one rider, device and card
//! per ride, so a consumer that only sees the `Hail-Ride-Id` header (the null
//! pipeline) can rebuild the same ids: see [`rider_of`].

use anyhow::{Context, Result, ensure};
use hail_events::{
    CardFingerprint, City, DeviceId, EventError, LatLng, RideId, RideRequested, RiderId,
};

use crate::city::{CityModel, seed_of};

/// Builds the rides of one run.
#[derive(Debug, Clone)]
pub struct RideFactory {
    run_id: String,
    seed: u64,
    cities: Vec<(CityModel, City)>,
}

impl RideFactory {
    /// Checks that `run_id` makes valid ride ids and that there is a city.
    pub fn new(run_id: &str, cities: &[CityModel]) -> Result<Self> {
        ensure!(!cities.is_empty(), "no city to request rides in");
        check_run_id(run_id)?;
        let cities = cities
            .iter()
            .map(|c| Ok((*c, City::new(c.name)?)))
            .collect::<Result<_, EventError>>()?;
        Ok(Self {
            run_id: run_id.to_string(),
            seed: seed_of(run_id),
            cities,
        })
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Ride number `i`, requested now; cities take turns.
    pub fn ride(&self, i: u64, now_ms: u64) -> Result<RideRequested, EventError> {
        let (model, city) = &self.cities[(i % self.cities.len() as u64) as usize];
        let ride_id = RideId::new(format!("{}-{i}", self.run_id))?;
        let (pickup, dropoff) = model.trip(self.seed, i)?;
        request(ride_id, city.clone(), pickup, dropoff, now_ms)
    }
}

/// A request of the load generator: its own rider, device and card, named after
/// the ride.
pub fn request(
    ride_id: RideId,
    city: City,
    pickup: LatLng,
    dropoff: LatLng,
    requested_at_ms: u64,
) -> Result<RideRequested, EventError> {
    Ok(RideRequested {
        rider_id: rider_of(&ride_id)?,
        device_id: DeviceId::new(format!("d-{ride_id}"))?,
        card: CardFingerprint::new(format!("c-{ride_id}"))?,
        ride_id,
        city,
        pickup,
        dropoff,
        requested_at_ms,
    })
}

/// Checks that `<run_id>-<i>` is a valid ride id for every `i`, and the rider,
/// device and card ids named after it too.
pub fn check_run_id(run_id: &str) -> Result<()> {
    RideId::new(format!("{run_id}-{}", u64::MAX))
        .map_err(anyhow::Error::from)
        .and_then(|r| RiderId::new(format!("u-{r}")).map_err(anyhow::Error::from))
        .with_context(|| format!("--run-id {run_id:?} cannot form ride ids"))?;
    Ok(())
}

/// The rider of a ride of the load generator.
pub fn rider_of(ride: &RideId) -> Result<RiderId, EventError> {
    RiderId::new(format!("u-{ride}"))
}

/// A short random run id (8 hex digits) from the clock and the process id.
pub fn random_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = seed_of(&format!("{nanos}-{}", std::process::id()));
    format!("{:08x}", mixed as u32)
}

#[cfg(test)]
mod tests {
    use hail_events::{Event, codec};

    use super::*;
    use crate::city::CITIES;

    #[test]
    fn rides_are_valid_unique_and_spread_over_the_cities() {
        let f = RideFactory::new("run1", &CITIES).unwrap();
        let a = f.ride(0, 1).unwrap();
        let b = f.ride(1, 1).unwrap();
        assert_eq!(a.ride_id.as_str(), "run1-0");
        assert_eq!(a.subject(), "rides.requested.berlin");
        assert_eq!(b.subject(), "rides.requested.paris");
        assert_eq!(a.rider_id, rider_of(&a.ride_id).unwrap());
        assert_ne!(a.msg_id(), b.msg_id());
        codec::encode(&a).unwrap();
    }

    #[test]
    fn refuses_a_run_id_that_cannot_form_ids() {
        let err = RideFactory::new("a.b", &CITIES).unwrap_err();
        assert!(format!("{err:#}").contains("--run-id \"a.b\""), "{err:#}");
        assert!(RideFactory::new(&"x".repeat(60), &CITIES).is_err());
    }

    #[test]
    fn random_run_ids_are_valid_tokens() {
        let id = random_run_id();
        assert_eq!(id.len(), 8);
        RideFactory::new(&id, &CITIES).unwrap();
    }
}
