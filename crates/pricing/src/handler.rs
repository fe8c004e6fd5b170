//! pricing's handler: one `FareQuoted` per `RideRequested`.

use std::sync::Arc;

use hail_events::RideRequested;
use hail_runtime::{Delivery, Handler, Outcome, Output};

use crate::{
    metrics::PricingMetrics,
    pricer::{Pricer, Quote},
    surge::Surge,
};

/// Quotes every request and keeps the metrics.
#[derive(Debug, Clone)]
pub struct PricingHandler {
    pricer: Arc<Pricer>,
    metrics: PricingMetrics,
}

impl PricingHandler {
    /// A handler over a shared pricer.
    pub fn new(pricer: Arc<Pricer>, metrics: PricingMetrics) -> Self {
        PricingHandler { pricer, metrics }
    }

    fn observe(&self, q: &Quote) {
        let city = q.fare.city.as_str();
        self.metrics
            .surge
            .with_label_values(&[city])
            .set(q.fare.surge);
        self.metrics
            .fare
            .with_label_values(&[city])
            .observe(q.fare.amount_minor as f64);
        if q.surge > Surge::NONE {
            self.metrics.surged.with_label_values(&[city]).inc();
        }
        if !q.counted {
            self.metrics.demand_dropped.with_label_values(&[city]).inc();
        }
        self.metrics
            .demand_cells
            .set(i64::try_from(q.demand_cells).unwrap_or(i64::MAX));
    }
}

/// When the request happened: its own time, but never after the stream stored
/// it, so a wrong or hostile client clock cannot push the demand window ahead.
pub fn event_time_ms(req: &RideRequested, d: &Delivery<'_>) -> u64 {
    let stored = d.published.unix_timestamp_nanos() / 1_000_000;
    let stored = u64::try_from(stored).unwrap_or(0);
    req.requested_at_ms.min(stored)
}

impl Handler for PricingHandler {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        let req: RideRequested = match d.decode() {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let quote = self
            .pricer
            .quote(&req, event_time_ms(&req, d), hail_runtime::now_ms());
        match Output::event(&quote.fare) {
            Ok(out) => {
                self.observe(&quote);
                Outcome::Done(vec![out])
            }
            Err(e) => e.into(),
        }
    }
}
