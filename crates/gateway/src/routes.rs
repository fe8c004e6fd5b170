//! The HTTP API: `POST /v1/rides`, `GET /v1/rides/{id}`,
//! `POST /v1/rides/{id}/cancel`, `/openapi.json`, beside the runtime's
//! `/metrics`, `/healthz` and `/readyz`. Every answer that is not a success
//! carries a [`Problem`] body.

use std::sync::{Arc, Mutex, OnceLock};

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hail_events::trace::TraceContext;
use hail_events::{RideCancelled, RideId, RiderId, ride_view::RideState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    broker::{Broker, Claim, Unavailable},
    cities::Cities,
    idempotency::{self, Record},
    metrics::{self, GatewayMetrics},
    problem::{ApiError, FieldProblem, Problem},
    recent::{Accepted as Remembered, Recent},
    request::{self, RideRequest},
    status::RideStatus,
};

/// The header that makes a `POST /v1/rides` idempotent.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest body read, in bytes.
    pub max_body_bytes: usize,
    /// `Retry-After` of a 503, in seconds.
    pub retry_after_s: u64,
    /// How many accepted rides are remembered in memory.
    pub recent_rides: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            max_body_bytes: 16 * 1024,
            retry_after_s: 1,
            recent_rides: 100_000,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    /// Set once connected and bound; until then every API call is 503.
    pub broker: Arc<OnceLock<Broker>>,
    pub cities: Arc<Cities>,
    pub recent: Arc<Mutex<Recent>>,
    pub metrics: GatewayMetrics,
    pub settings: ApiSettings,
    /// The OpenAPI document served at `/openapi.json`.
    pub openapi: Arc<String>,
}

impl App {
    fn broker(&self) -> Result<&Broker, ApiError> {
        self.broker.get().ok_or_else(|| {
            ApiError::unavailable(
                "not connected to NATS yet".into(),
                self.settings.retry_after_s,
            )
        })
    }

    fn unavailable(&self, e: Unavailable) -> ApiError {
        ApiError::unavailable(
            format!("nothing was stored: {e}"),
            self.settings.retry_after_s,
        )
    }

    fn remember(&self, ride: &str, city: &str, at_ms: u64) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.insert(
            ride,
            Remembered {
                city: city.to_string(),
                requested_at_ms: at_ms,
            },
        );
    }

    fn remembered(&self, ride: &str) -> Option<Remembered> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.get(ride).cloned()
    }
}

/// The API's routes with the runtime's `/metrics`, `/healthz`, `/readyz`.
pub fn router(app: App, health: hail_runtime::http::HttpState) -> Router {
    let m = app.metrics.clone();
    let api = Router::new()
        .route("/v1/rides", post(request_ride))
        .route("/v1/rides/{id}", get(ride_status))
        .route("/v1/rides/{id}/cancel", post(cancel_ride))
        .route("/openapi.json", get(openapi))
        .with_state(app);
    api.merge(hail_runtime::http::router(health))
        .route_layer(middleware::from_fn_with_state(m.clone(), metrics::track))
        .fallback(move || {
            let m = m.clone();
            async move {
                m.requests.with_label_values(&["unmatched", "404"]).inc();
                ApiError::not_found_route()
            }
        })
}

/// The answer to an accepted request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The ride's id.
    pub ride_id: String,
    /// Where its status is: `/v1/rides/{id}` (also in `Location`).
    pub status_url: String,
}

/// The optional `Idempotency-Key` header.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// Any printable ASCII without spaces, 1 to 255 bytes: a retried request
    /// with the same key and body gets the same ride (for a day). The ride's id
    /// is derived from the key: `ride-` and the first 32 hex digits of
    /// SHA-256("hail-gateway ride id\0" + key).
    #[serde(rename = "Idempotency-Key")]
    #[param(rename = "Idempotency-Key", value_type = String, required = false, min_length = 1, max_length = 255, pattern = r"^[!-~]{1,255}$")]
    pub key: Option<String>,
}

/// A ride in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RidePath {
    /// The ride's id, as `POST /v1/rides` returned it.
    #[param(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub id: String,
}

/// The longest cancel reason, in characters: 64 characters of UTF-8 are at
/// most [`hail_events::MAX_CANCEL_REASON`] (256) bytes.
pub const MAX_REASON_CHARS: usize = hail_events::MAX_CANCEL_REASON / 4;

/// The optional body of `POST /v1/rides/{id}/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why, in the rider's words: at most 64 characters (so at most the 256
    /// bytes `RideCancelled` carries).
    #[schema(max_length = 64)]
    #[serde(default)]
    pub reason: Option<String>,
    /// The rider who cancels.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    #[serde(default)]
    pub rider: Option<String>,
}

fn accepted(ride: &str) -> Response {
    let url = format!("/v1/rides/{ride}");
    let body = Accepted {
        ride_id: ride.to_string(),
        status_url: url.clone(),
    };
    let mut res = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Refuses a body not declared `application/json` (parameters such as
/// `charset` are fine).
fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::unsupported_media_type(None));
    };
    let text = String::from_utf8_lossy(v.as_bytes());
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(Some(&text)))
    }
}

async fn read_body(body: Body, max: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, max).await.map_err(|e| {
        // axum reports http-body's `LengthLimitError` as "length limit exceeded".
        let too_large = e.to_string().contains("length limit");
        if too_large {
            ApiError::too_large(max)
        } else {
            ApiError::invalid(vec![FieldProblem::new("body", format!("unreadable: {e}"))])
        }
    })
}

fn ride_id(id: &str) -> Result<RideId, ApiError> {
    RideId::new(id).map_err(|e| ApiError::invalid(vec![FieldProblem::new("id", e.to_string())]))
}

/// Requests a ride.
///
/// The ride is published as `RideRequested` on `rides.requested.<city>`; the
/// answer is `202` only once JetStream has stored it. With an
/// `Idempotency-Key`, a retry gets the same ride instead of a new one.
#[utoipa::path(
    post,
    path = "/v1/rides",
    tag = "rides",
    params(IdempotencyHeader),
    request_body(content = RideRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Stored in RIDES; follow `Location` for its status", body = Accepted,
            headers(("Location" = String, description = "`/v1/rides/{id}`"))),
        (status = 400, description = "A field is missing or wrong; each is named", body = Problem),
        (status = 413, description = "The body is too large", body = Problem),
        (status = 415, description = "The body is not `application/json`", body = Problem),
        (status = 422, description = "The `Idempotency-Key` was used for a different request", body = Problem),
        (status = 503, description = "NATS did not acknowledge: nothing was stored, retry", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn request_ride(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    match request_ride_inner(&app, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn request_ride_inner(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_json(headers)?;
    let body = read_body(body, app.settings.max_body_bytes).await?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| idempotency::bucket_key(v.as_bytes()));
    let new = request::validate(&body, &app.cities);
    let (new, key) = match (new, key) {
        (Ok(n), None) => (n, None),
        (Ok(n), Some(Ok(k))) => (n, Some(k)),
        (new, key) => {
            let mut bad = new.err().unwrap_or_default();
            if let Some(Err(reason)) = key {
                bad.push(FieldProblem::new(IDEMPOTENCY_KEY, reason));
            }
            return Err(ApiError::invalid(bad));
        }
    };
    let broker = app.broker()?;
    let at_ms = hail_runtime::now_ms();
    let Some(key) = key else {
        let fresh = new_ride_id();
        let event = new.event(fresh.clone(), at_ms);
        broker
            .publish(&event, &trace_of(headers))
            .await
            .map_err(|e| app.unavailable(e))?;
        app.metrics.accepted.inc();
        app.remember(fresh.as_str(), new.city.as_str(), at_ms);
        return Ok(accepted(fresh.as_str()));
    };
    // A key names its ride: see [`idempotency::ride_id_for_key`].
    let header = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let fresh = idempotency::ride_id_for_key(header);
    let record = Record {
        ride_id: fresh.to_string(),
        requested_at_ms: at_ms,
        request: new.clone(),
        accepted: false,
    };
    let (record, revision, first) = match broker.claim(&key, &record).await {
        Ok(Claim::Created(rev)) => (record, rev, true),
        Ok(Claim::Exists(found, rev)) => {
            if found.request != new {
                return Err(ApiError::key_reused());
            }
            if found.accepted {
                app.metrics.replayed.inc();
                app.remember(
                    &found.ride_id,
                    found.request.city.as_str(),
                    found.requested_at_ms,
                );
                return Ok(accepted(&found.ride_id));
            }
            (found, rev, false)
        }
        Err(e) => return Err(app.unavailable(e)),
    };
    let ride = ride_id(&record.ride_id)?;
    let event = record.request.event(ride, record.requested_at_ms);
    broker
        .publish(&event, &trace_of(headers))
        .await
        .map_err(|e| app.unavailable(e))?;
    // Off the answer's path: the mark only spares a retry its republish.
    let (b, k, r) = (broker.clone(), key.clone(), record.clone());
    tokio::spawn(async move { b.mark_accepted(&k, &r, revision).await });
    if first {
        app.metrics.accepted.inc();
    } else {
        app.metrics.replayed.inc();
    }
    app.remember(
        &record.ride_id,
        record.request.city.as_str(),
        record.requested_at_ms,
    );
    Ok(accepted(&record.ride_id))
}

/// A new ride id (a request without a key): `ride-` and 128 random bits in hex.
fn new_ride_id() -> RideId {
    RideId::new(format!("ride-{:032x}", rand::random::<u128>())).expect("a valid ride id")
}

/// A ride's status.
///
/// From the ride view that ride-view builds from every event of the ride. A
/// ride this gateway accepted moments ago that ride-view has not recorded yet
/// is `requested`.
#[utoipa::path(
    get,
    path = "/v1/rides/{id}",
    tag = "rides",
    params(RidePath),
    responses(
        (status = 200, description = "The ride's status", body = RideStatus),
        (status = 400, description = "Not a valid ride id", body = Problem),
        (status = 404, description = "No such ride", body = Problem),
        (status = 503, description = "NATS did not answer; retry", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn ride_status(State(app): State<App>, Path(id): Path<String>) -> Response {
    match ride_status_inner(&app, &id).await {
        Ok(s) => (StatusCode::OK, axum::Json(s)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn ride_status_inner(app: &App, id: &str) -> Result<RideStatus, ApiError> {
    let ride = ride_id(id)?;
    let broker = app.broker()?;
    match broker.view(&ride).await.map_err(|e| app.unavailable(e))? {
        Some(view) => Ok(RideStatus::from(&view)),
        None => match app.remembered(id) {
            Some(r) => Ok(RideStatus::requested(id, &r.city, r.requested_at_ms)),
            None => Err(ApiError::not_found(id)),
        },
    }
}

/// Cancels a ride.
///
/// Publishes `RideCancelled` (matching frees its driver, or answers a ride it
/// has not matched yet `unmatched`, reason `cancelled`). Cancelling a
/// cancelled ride again is accepted and changes nothing.
#[utoipa::path(
    post,
    path = "/v1/rides/{id}/cancel",
    tag = "rides",
    params(RidePath),
    request_body(content = Option<CancelRequest>, content_type = "application/json",
        description = "Optional: why, and who"),
    responses(
        (status = 202, description = "The cancellation is stored in RIDES", body = Accepted,
            headers(("Location" = String, description = "`/v1/rides/{id}`"))),
        (status = 400, description = "A field is wrong; each is named", body = Problem),
        (status = 404, description = "No such ride", body = Problem),
        (status = 409, description = "The ride is over (completed or unmatched)", body = Problem),
        (status = 413, description = "The body is too large", body = Problem),
        (status = 415, description = "A body that is not `application/json`", body = Problem),
        (status = 503, description = "NATS did not acknowledge: nothing was stored, retry", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn cancel_ride(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match cancel_inner(&app, &id, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn cancel_inner(
    app: &App,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(body, app.settings.max_body_bytes).await?;
    let cancel = parse_cancel(headers, &body)?;
    let ride = ride_id(id)?;
    let rider = match cancel.rider.as_deref().map(RiderId::new).transpose() {
        Ok(r) => r,
        Err(e) => {
            return Err(ApiError::invalid(vec![FieldProblem::new(
                "rider",
                e.to_string(),
            )]));
        }
    };
    let broker = app.broker()?;
    let view = broker.view(&ride).await.map_err(|e| app.unavailable(e))?;
    let city = match &view {
        Some(v) => {
            let over = match v.state {
                RideState::Completed => Some("completed"),
                RideState::Unmatched
                    if v.unmatched_reason != Some(hail_events::UnmatchedReason::Cancelled) =>
                {
                    Some("unmatched")
                }
                _ => None,
            };
            if let Some(state) = over {
                return Err(ApiError::conflict(format!(
                    "ride {id} is {state}: there is nothing to cancel"
                )));
            }
            v.city
                .clone()
                .or_else(|| app.remembered(id).map(|r| r.city))
        }
        None => app.remembered(id).map(|r| r.city),
    };
    let Some(city) = city else {
        return Err(ApiError::not_found(id));
    };
    let city = hail_events::City::new(city)
        .map_err(|e| ApiError::conflict(format!("ride {id} has an unusable city: {e}")))?;
    let event = RideCancelled {
        ride_id: ride,
        city,
        rider_id: rider,
        at_ms: hail_runtime::now_ms(),
        reason: cancel.reason,
    };
    broker
        .publish(&event, &trace_of(headers))
        .await
        .map_err(|e| app.unavailable(e))?;
    Ok(accepted(id))
}

/// The trace a request's events join: a new span of the caller's W3C
/// `traceparent` when it sent a valid one, else a new trace.
fn trace_of(headers: &HeaderMap) -> TraceContext {
    headers
        .get(hail_events::headers::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::root, |t| t.child())
}

/// The cancel body: empty, or a JSON [`CancelRequest`].
fn parse_cancel(headers: &HeaderMap, body: &[u8]) -> Result<CancelRequest, ApiError> {
    if body.is_empty() {
        return Ok(CancelRequest {
            reason: None,
            rider: None,
        });
    }
    check_json(headers)?;
    let c: Option<CancelRequest> = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(vec![FieldProblem::new(
            "body",
            format!("not a cancel request: {e}"),
        )])
    })?;
    let c = c.unwrap_or(CancelRequest {
        reason: None,
        rider: None,
    });
    if let Some(r) = &c.reason
        && r.chars().count() > MAX_REASON_CHARS
    {
        return Err(ApiError::invalid(vec![FieldProblem::new(
            "reason",
            format!(
                "{} characters, more than {MAX_REASON_CHARS}",
                r.chars().count()
            ),
        )]));
    }
    Ok(c)
}

/// The OpenAPI document of this API.
async fn openapi(State(app): State<App>) -> Response {
    let mut res = app.openapi.as_str().to_owned().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
