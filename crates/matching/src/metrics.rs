//! matching's metrics, registered once into the runtime's registry. The only label
//! besides the outcome is the city: never a ride, rider or driver id.
//!
//! The driver gauges are read from the index when `/metrics` is scraped, so they
//! are exact at that moment and cost nothing per event.

use std::sync::{Arc, Mutex};

use hail_events::City;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    core::{Collector, Desc},
    proto::MetricFamily,
};

use crate::{index::DriverIndex, lock};

/// Metric names, for tests and dashboards.
pub mod names {
    /// Gauge by city: drivers that would be offered to a request now. Named
    /// `hail_<service>_drivers_<state>`, as pricing's `hail_pricing_drivers_available`.
    pub const DRIVERS_AVAILABLE: &str = "hail_matching_drivers_available";
    /// Gauge: drivers a ride holds in the claims bucket.
    pub const DRIVERS_CLAIMED: &str = "hail_matching_drivers_claimed";
    /// Counter by city and outcome (`matched`, `no_driver_in_radius`,
    /// `all_nearby_claimed`, `outside_service_area`, `replayed`, `lapsed`: recorded
    /// matched, but the claim expired and another ride has the driver). A request whose
    /// ride was cancelled before it was answered counts as `replayed`: its answer
    /// (unmatched, `cancelled`) is the record the cancellation wrote.
    pub const REQUESTS: &str = "hail_matching_requests_total";
    /// Histogram by city: distance from the matched driver to the pickup.
    pub const PICKUP_DISTANCE: &str = "hail_matching_pickup_distance_meters";
    /// Counter by city: claims lost because another ride held the driver.
    pub const CLAIMS_LOST: &str = "hail_matching_claims_lost_total";
    /// Counter by city and outcome (`released`, `nothing_held`, `already_released`).
    pub const COMPLETIONS: &str = "hail_matching_completions_total";
    /// Counter by city and outcome (`before_answer`, `released`, `nothing_held`,
    /// `already_finished`).
    pub const CANCELLATIONS: &str = "hail_matching_cancellations_total";
}

/// Outcome label of a request answered again from the claims bucket.
pub const REPLAYED: &str = "replayed";
/// Outcome label of a request recorded matched whose claim lapsed and whose
/// driver another ride holds now: nothing is published.
pub const LAPSED: &str = "lapsed";

/// What matching counts per event.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: IntCounterVec,
    pickup_distance: HistogramVec,
    claims_lost: IntCounterVec,
    completions: IntCounterVec,
    cancellations: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them, with the gauges read from `index`.
    pub fn register(
        registry: &Registry,
        index: Arc<Mutex<DriverIndex>>,
    ) -> prometheus::Result<Self> {
        let distance_buckets = vec![
            50.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 10000.0,
        ];
        let m = Metrics {
            requests: IntCounterVec::new(
                Opts::new(names::REQUESTS, "ride requests answered, by outcome"),
                &["city", "outcome"],
            )?,
            pickup_distance: HistogramVec::new(
                HistogramOpts::new(
                    names::PICKUP_DISTANCE,
                    "distance from matched driver to pickup",
                )
                .buckets(distance_buckets),
                &["city"],
            )?,
            claims_lost: IntCounterVec::new(
                Opts::new(names::CLAIMS_LOST, "driver claims lost to another ride"),
                &["city"],
            )?,
            completions: IntCounterVec::new(
                Opts::new(names::COMPLETIONS, "ride completions handled, by outcome"),
                &["city", "outcome"],
            )?,
            cancellations: IntCounterVec::new(
                Opts::new(
                    names::CANCELLATIONS,
                    "ride cancellations handled, by outcome",
                ),
                &["city", "outcome"],
            )?,
        };
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.pickup_distance.clone()))?;
        registry.register(Box::new(m.claims_lost.clone()))?;
        registry.register(Box::new(m.completions.clone()))?;
        registry.register(Box::new(m.cancellations.clone()))?;
        registry.register(Box::new(DriverGauges::new(index)?))?;
        Ok(m)
    }

    /// Counts an answered request (`outcome` is [`REPLAYED`] when it was answered
    /// before) and the claims it lost.
    pub fn request(&self, city: &City, outcome: &str, claims_lost: u32) {
        self.requests
            .with_label_values(&[city.as_str(), outcome])
            .inc();
        if claims_lost > 0 {
            self.claims_lost
                .with_label_values(&[city.as_str()])
                .inc_by(u64::from(claims_lost));
        }
    }

    /// Records the pickup distance of a new match.
    pub fn pickup(&self, city: &City, distance_m: f64) {
        self.pickup_distance
            .with_label_values(&[city.as_str()])
            .observe(distance_m);
    }

    /// Counts a handled completion.
    pub fn completion(&self, city: &City, outcome: &str) {
        self.completions
            .with_label_values(&[city.as_str(), outcome])
            .inc();
    }

    /// Counts a handled cancellation.
    pub fn cancellation(&self, city: &City, outcome: &str) {
        self.cancellations
            .with_label_values(&[city.as_str(), outcome])
            .inc();
    }
}

/// Gauges computed from the index at scrape time.
struct DriverGauges {
    index: Arc<Mutex<DriverIndex>>,
    available: IntGaugeVec,
    claimed: IntGauge,
}

impl DriverGauges {
    fn new(index: Arc<Mutex<DriverIndex>>) -> prometheus::Result<Self> {
        Ok(Self {
            index,
            available: IntGaugeVec::new(
                Opts::new(
                    names::DRIVERS_AVAILABLE,
                    "drivers available and unclaimed, by city of their last location",
                ),
                &["city"],
            )?,
            claimed: IntGauge::new(
                names::DRIVERS_CLAIMED,
                "drivers held by a ride in the claims bucket",
            )?,
        })
    }
}

impl Collector for DriverGauges {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.available.desc();
        descs.extend(self.claimed.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        {
            let index = lock(&self.index);
            for (city, free) in index.free_by_city() {
                let free = i64::try_from(free).unwrap_or(i64::MAX);
                self.available.with_label_values(&[city.as_str()]).set(free);
            }
            self.claimed
                .set(i64::try_from(index.held_count()).unwrap_or(i64::MAX));
        }
        let mut families = self.available.collect();
        families.extend(self.claimed.collect());
        families
    }
}
