//! pricing's handler: one `FareQuoted` per `RideRequested`.

use std::sync::Arc;

use hail_events::RideRequested;
use hail_runtime::{Delivery, Handler, Outcome, Output, request_feed::FeedPosition};

use crate::{
    demand_feed::event_time_ms,
    metrics::PricingMetrics,
    pricer::{Pricer, Quote},
    surge::Surge,
};

/// Quotes every request and keeps the metrics.
#[derive(Debug, Clone)]
pub struct PricingHandler {
    pricer: Arc<Pricer>,
    metrics: PricingMetrics,
    feed: FeedPosition,
}

impl PricingHandler {
    /// A handler over a shared pricer whose demand `feed` records.
    pub fn new(pricer: Arc<Pricer>, metrics: PricingMetrics, feed: FeedPosition) -> Self {
        PricingHandler {
            pricer,
            metrics,
            feed,
        }
    }

    fn observe(&self, q: &Quote) {
        let city = q.fare.city.as_str();
        self.metrics
            .surge
            .with_label_values(&[city])
            .set(q.fare.surge);
        self.metrics
            .surge_quoted
            .with_label_values(&[city])
            .observe(q.fare.surge);
        self.metrics
            .fare
            .with_label_values(&[city])
            .observe(q.fare.amount_minor as f64);
        if q.surge > Surge::NONE {
            self.metrics.surged.with_label_values(&[city]).inc();
        }
    }
}

impl Handler for PricingHandler {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        let req: RideRequested = match d.decode() {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        // Its own request and every one before it counted, by whichever instance.
        self.feed
            .wait_for_handler(d.stream_seq, &self.metrics.feed_waits_timed_out)
            .await;
        let quote = self.pricer.quote(
            &req,
            event_time_ms(&req, d.published),
            hail_runtime::now_ms(),
        );
        match Output::event(&quote.fare) {
            Ok(out) => {
                self.observe(&quote);
                Outcome::Done(vec![out])
            }
            Err(e) => e.into(),
        }
    }
}
