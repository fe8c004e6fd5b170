//! The pricing step for one request, pure but for its two locks: the pickup's
//! H3 cell, demand (recent requests) and supply (available drivers) in the cell
//! and its first ring, the surge they give, and the city's fare.
//!
//! Demand is recorded apart from quoting ([`Pricer::record`]): the service feeds
//! it every request on RIDES (see `demand_feed`), not only the ones this
//! instance quotes, so N instances of one consumer group see the same demand.

use std::sync::{Mutex, MutexGuard, PoisonError};

use hail_events::{DriverLocationUpdated, DriverStatus, FareQuoted, RideRequested};

use crate::{
    config::Settings, demand::DemandWindow, supply::Supply, surge::Surge, tariff::duration_s,
};

/// A quote and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The event to publish.
    pub fare: FareQuoted,
    /// The multiplier applied.
    pub surge: Surge,
    /// Requests recorded in the neighbourhood within the window ending at the
    /// request's time (this one included once it has been recorded).
    pub demand: u32,
    /// Available drivers in the neighbourhood.
    pub supply: u32,
}

/// What recording one request did to the demand window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// False when the request could not be counted (too many cells tracked).
    pub counted: bool,
    /// Cells tracked by the demand window after it.
    pub cells: usize,
}

/// Drivers known and available after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupplyTotals {
    /// Drivers known, any status.
    pub known: usize,
    /// Drivers available.
    pub available: usize,
}

/// Quotes requests from the demand and supply it keeps. Shared by the handler
/// (many requests at once) and the DRIVERS feed; no lock is held across an await,
/// and none while the other is held.
#[derive(Debug)]
pub struct Pricer {
    settings: Settings,
    demand: Mutex<DemandWindow>,
    supply: Mutex<Supply>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent at every step, so a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pricer {
    /// A pricer with no demand and no drivers yet.
    pub fn new(settings: Settings) -> Self {
        let demand = Mutex::new(DemandWindow::new(settings.demand_window));
        Pricer {
            settings,
            demand,
            supply: Mutex::new(Supply::new()),
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Applies a driver's last location and status.
    pub fn apply_driver(&self, u: &DriverLocationUpdated) -> SupplyTotals {
        let cell = self.settings.grid.cell(&u.position);
        let available = u.status == DriverStatus::Available;
        let mut supply = lock(&self.supply);
        supply.apply(u.driver_id.clone(), cell, available);
        SupplyTotals {
            known: supply.known(),
            available: supply.available(),
        }
    }

    /// Counts a request as demand in its pickup's cell at `event_ms`.
    pub fn record(&self, req: &RideRequested, event_ms: u64) -> Recorded {
        let cell = self.settings.grid.cell(&req.pickup);
        let mut window = lock(&self.demand);
        let counted = window.record(cell, event_ms);
        Recorded {
            counted,
            cells: window.cells(),
        }
    }

    /// Quotes a request from the demand recorded so far (see [`Pricer::record`])
    /// as of `event_ms`; `now_ms` is the quote's own time.
    pub fn quote(&self, req: &RideRequested, event_ms: u64, now_ms: u64) -> Quote {
        let grid = &self.settings.grid;
        let around = grid.neighbourhood(grid.cell(&req.pickup));
        let demand = lock(&self.demand).count(&around, event_ms);
        let supply = lock(&self.supply).count(&around);
        let surge = self.settings.surge.surge(demand, supply);
        let tariff = self.settings.tariffs.for_city(&req.city);
        let distance_m = req.pickup.haversine_m(&req.dropoff);
        let duration_s = duration_s(distance_m);
        let fare = FareQuoted {
            ride_id: req.ride_id.clone(),
            city: req.city.clone(),
            amount_minor: tariff.fare_minor(distance_m, duration_s, surge),
            currency: tariff.currency.clone(),
            surge: surge.as_f64(),
            distance_m,
            duration_s,
            requested_at_ms: req.requested_at_ms,
            at_ms: now_ms,
        };
        Quote {
            fare,
            surge,
            demand,
            supply,
        }
    }
}

#[cfg(test)]
mod tests;
