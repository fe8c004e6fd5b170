//! pricing's handler: one `FareQuoted` per `RideRequested`.

use hail_events::{FareQuoted, RideRequested};
use hail_runtime::{Delivery, Handler, Outcome, Output};

use crate::tariff::{Tariff, duration_s};

/// Quotes every request with the configured tariff.
#[derive(Debug, Clone)]
pub struct Pricing {
    tariff: Tariff,
}

impl Pricing {
    /// A pricer with one tariff for every city.
    pub fn new(tariff: Tariff) -> Self {
        Pricing { tariff }
    }

    /// The quote for a request (pure).
    pub fn quote(&self, req: &RideRequested, now_ms: u64) -> FareQuoted {
        let distance_m = req.pickup.haversine_m(&req.dropoff);
        let duration_s = duration_s(distance_m);
        let surge = 1.0;
        FareQuoted {
            ride_id: req.ride_id.clone(),
            city: req.city.clone(),
            amount_minor: self.tariff.fare_minor(distance_m, duration_s, surge),
            currency: self.tariff.currency.clone(),
            surge,
            distance_m,
            duration_s,
            requested_at_ms: req.requested_at_ms,
            at_ms: now_ms,
        }
    }
}

impl Handler for Pricing {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        let req: RideRequested = match d.decode() {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        match Output::event(&self.quote(&req, hail_runtime::now_ms())) {
            Ok(out) => Outcome::Done(vec![out]),
            Err(e) => e.into(),
        }
    }
}
