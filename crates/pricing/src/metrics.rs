//! pricing's own metrics. The city is the only label: never a ride, rider,
//! driver or H3 cell id.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Names of pricing's metrics.
pub mod names {
    /// Surge multiplier of the last quote in a city (analytics' distribution of
    /// the same quantity is `hail_analytics_surge_multiplier`).
    pub const SURGE: &str = "hail_pricing_surge_multiplier";
    /// Histogram by city: the surge of every quote, so dashboards show its
    /// p50 and p95 over time (`hail:pricing_surge:p50`, `:p95`).
    pub const SURGE_QUOTED: &str = "hail_pricing_surge";
    /// Quoted fares, in minor units of the city's currency.
    pub const FARE: &str = "hail_pricing_fare_minor_units";
    /// Quotes with a surge above 1.0.
    pub const SURGED: &str = "hail_pricing_surged_quotes_total";
    /// Drivers known from DRIVERS, any status.
    pub const DRIVERS_KNOWN: &str = "hail_pricing_drivers_known";
    /// Drivers available now (matching's, per city and unclaimed, is
    /// `hail_matching_drivers_available`).
    pub const DRIVERS_AVAILABLE: &str = "hail_pricing_drivers_available";
    /// H3 cells with requests in the demand window.
    pub const DEMAND_CELLS: &str = "hail_pricing_demand_cells";
    /// Requests left out of demand because too many cells were tracked.
    pub const DEMAND_DROPPED: &str = "hail_pricing_demand_dropped_total";
    /// Requests counted as demand from RIDES (every instance's, not only this one's).
    pub const DEMAND_RECORDED: &str = "hail_pricing_demand_recorded_total";
    /// Quotes that waited in vain for the demand feed to reach their request.
    pub const FEED_WAITS_TIMED_OUT: &str = "hail_pricing_demand_feed_waits_timed_out_total";
}

/// pricing's metrics, registered once into the runtime's registry.
#[derive(Debug, Clone)]
pub struct PricingMetrics {
    /// Last quoted surge per city.
    pub surge: GaugeVec,
    /// Surge of every quote per city.
    pub surge_quoted: HistogramVec,
    /// Fares per city.
    pub fare: HistogramVec,
    /// Surged quotes per city.
    pub surged: IntCounterVec,
    /// Drivers known.
    pub drivers_known: IntGauge,
    /// Drivers available.
    pub drivers_available: IntGauge,
    /// Cells in the demand window.
    pub demand_cells: IntGauge,
    /// Requests left out of demand.
    pub demand_dropped: IntCounterVec,
    /// Requests counted as demand.
    pub demand_recorded: IntCounter,
    /// Quotes made without waiting for the feed any longer.
    pub feed_waits_timed_out: IntCounter,
}

impl PricingMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let fare_buckets = prometheus::exponential_buckets(250.0, 1.5, 14)?;
        let m = PricingMetrics {
            surge: GaugeVec::new(
                Opts::new(
                    names::SURGE,
                    "surge multiplier of the last fare quoted in the city",
                ),
                &["city"],
            )?,
            surge_quoted: HistogramVec::new(
                HistogramOpts::new(names::SURGE_QUOTED, "surge multiplier of every fare quoted")
                    .buckets(surge_buckets()),
                &["city"],
            )?,
            fare: HistogramVec::new(
                HistogramOpts::new(
                    names::FARE,
                    "fares quoted, in minor units of the city's currency",
                )
                .buckets(fare_buckets),
                &["city"],
            )?,
            surged: IntCounterVec::new(
                Opts::new(names::SURGED, "fares quoted with a surge above 1.0"),
                &["city"],
            )?,
            drivers_known: IntGauge::new(names::DRIVERS_KNOWN, "drivers known from DRIVERS")?,
            drivers_available: IntGauge::new(names::DRIVERS_AVAILABLE, "drivers available now")?,
            demand_cells: IntGauge::new(
                names::DEMAND_CELLS,
                "H3 cells with requests in the demand window",
            )?,
            demand_dropped: IntCounterVec::new(
                Opts::new(
                    names::DEMAND_DROPPED,
                    "requests not counted as demand: too many cells tracked",
                ),
                &["city"],
            )?,
            demand_recorded: IntCounter::new(
                names::DEMAND_RECORDED,
                "requests counted as demand from RIDES, every instance's",
            )?,
            feed_waits_timed_out: IntCounter::new(
                names::FEED_WAITS_TIMED_OUT,
                "quotes made before the demand feed reached their request (it was too far behind)",
            )?,
        };
        registry.register(Box::new(m.surge.clone()))?;
        registry.register(Box::new(m.surge_quoted.clone()))?;
        registry.register(Box::new(m.fare.clone()))?;
        registry.register(Box::new(m.surged.clone()))?;
        registry.register(Box::new(m.drivers_known.clone()))?;
        registry.register(Box::new(m.drivers_available.clone()))?;
        registry.register(Box::new(m.demand_cells.clone()))?;
        registry.register(Box::new(m.demand_dropped.clone()))?;
        registry.register(Box::new(m.demand_recorded.clone()))?;
        registry.register(Box::new(m.feed_waits_timed_out.clone()))?;
        Ok(m)
    }
}

/// Buckets of [`names::SURGE_QUOTED`]. Surge comes in steps of 0.1, so each step
/// from 1.0 to 3.0 (the default cap) gets a narrow bucket of its own,
/// (s - 0.005, s + 0.005]: `histogram_quantile` interpolates inside a bucket, and
/// only a narrow one puts a p50 of quotes all at 1.0 at 1.0 (not 0.5, as one
/// bucket from 0 to 1.0 would). Above 3.0 (a cap raised by `--surge-cap`) the
/// buckets are coarse, up to the highest cap accepted.
pub fn surge_buckets() -> Vec<f64> {
    let mut b = Vec::new();
    for tenths in 10..=30 {
        let s = f64::from(tenths) / 10.0;
        b.push(s - 0.005);
        b.push(s + 0.005);
    }
    b.extend([4.005, 5.005, 7.505, 10.005]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_up_to_the_default_cap_has_a_narrow_bucket() {
        let b = surge_buckets();
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        for tenths in 10..=30 {
            let s = f64::from(tenths) / 10.0;
            // The value as pricing computes it (tenths / 10) falls inside its bucket.
            let i = b.partition_point(|&le| le < s);
            assert!(i > 0 && b[i] - b[i - 1] < 0.011, "{s} in {b:?}");
        }
        assert_eq!(b.last(), Some(&10.005));
    }
}
