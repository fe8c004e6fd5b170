//! The gateway's metrics: per route (its template, never an id) the requests
//! by status and their latency, plus the rides it accepted.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// Metric names.
pub mod names {
    pub const REQUESTS: &str = "hail_http_requests_total";
    pub const DURATION: &str = "hail_http_request_duration_seconds";
    pub const ACCEPTED: &str = "hail_gateway_rides_accepted_total";
    pub const REPLAYED: &str = "hail_gateway_idempotent_replays_total";
}

/// The gateway's series.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    /// Requests answered, by route template and status code.
    pub requests: IntCounterVec,
    /// From the request to the answer, by route template.
    pub duration: HistogramVec,
    /// Rides answered 202 after their PubAck (first requests, not replays).
    pub accepted: IntCounter,
    /// Retried requests answered with the ride an `Idempotency-Key` already had.
    pub replayed: IntCounter,
}

impl GatewayMetrics {
    /// Creates and registers the series.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = GatewayMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    names::REQUESTS,
                    "HTTP requests answered, by route and status",
                ),
                &["route", "status"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(names::DURATION, "HTTP request latency, by route").buckets(
                    vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                ),
                &["route"],
            )?,
            accepted: IntCounter::new(names::ACCEPTED, "rides accepted (202) after their PubAck")?,
            replayed: IntCounter::new(
                names::REPLAYED,
                "retried requests answered with the ride their Idempotency-Key already had",
            )?,
        };
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.accepted.clone()))?;
        registry.register(Box::new(m.replayed.clone()))?;
        Ok(m)
    }
}

/// The route label of a request: its matched template, or `unmatched`.
pub fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string()
}

/// Middleware: counts and times every request under its route template.
pub async fn track(State(m): State<GatewayMetrics>, req: Request, next: Next) -> Response {
    let route = route_of(&req);
    let start = Instant::now();
    let res = next.run(req).await;
    m.requests
        .with_label_values(&[route.as_str(), res.status().as_str()])
        .inc();
    m.duration
        .with_label_values(&[route.as_str()])
        .observe(start.elapsed().as_secs_f64());
    res
}
