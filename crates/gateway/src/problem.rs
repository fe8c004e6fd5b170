//! The error body of every answer that is not a success: what went wrong, in
//! words and as a stable code, and for a bad request each bad field by name.
//!
//! ```json
//! {"error":"invalid_request","message":"2 fields are invalid",
//!  "fields":[{"field":"city","reason":"unknown city \"tokyo\"; known: berlin, paris"},
//!            {"field":"pickup.lat","reason":"123 is outside [-90, 90]"}]}
//! ```

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A stable code: `invalid_request`, `unsupported_media_type`,
    /// `body_too_large`, `idempotency_key_reused`, `not_found`, `conflict`,
    /// `unavailable`.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Each bad field of the request (empty when the problem is not a field's).
    pub fields: Vec<FieldProblem>,
}

/// One bad field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    /// The field's path in the body (`pickup.lat`), a header (`Content-Type`,
    /// `Idempotency-Key`), `id` for the path's ride id, or `body` for the body
    /// as a whole.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldProblem {
    /// A bad `field` and why.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// An error answer: a status, a [`Problem`] and, for 503, when to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub problem: Problem,
    /// Seconds for `Retry-After` (503 only).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, error: &str, message: String, fields: Vec<FieldProblem>) -> Self {
        ApiError {
            status,
            problem: Problem {
                error: error.into(),
                message,
                fields,
            },
            retry_after_s: None,
        }
    }

    /// 400: the named fields are wrong.
    pub fn invalid(fields: Vec<FieldProblem>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.reason),
            many => format!("{} fields are invalid", many.len()),
        };
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message, fields)
    }

    /// 415: the body is not declared as JSON.
    pub fn unsupported_media_type(found: Option<&str>) -> Self {
        let reason = match found {
            Some(t) => format!("{t:?} is not application/json"),
            None => "missing; send Content-Type: application/json".into(),
        };
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type: {reason}"),
            vec![FieldProblem::new("Content-Type", reason)],
        )
    }

    /// 413: the body is larger than `max` bytes.
    pub fn too_large(max: usize) -> Self {
        let reason = format!("larger than {max} bytes");
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is {reason}"),
            vec![FieldProblem::new("body", reason)],
        )
    }

    /// 422: an `Idempotency-Key` already used for a different request.
    pub fn key_reused() -> Self {
        let reason = "already used for a different request; use a new key for a new ride";
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            format!("Idempotency-Key {reason}"),
            vec![FieldProblem::new("Idempotency-Key", reason)],
        )
    }

    /// 404: no such ride.
    pub fn not_found(ride: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no ride {ride:?} is known"),
            Vec::new(),
        )
    }

    /// 404: no such route.
    pub fn not_found_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route; the API is described at /openapi.json".into(),
            Vec::new(),
        )
    }

    /// 409: the ride is in a state that does not allow the operation.
    pub fn conflict(message: String) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message, Vec::new())
    }

    /// 503: NATS did not answer; nothing was stored, retry after `retry_after_s`.
    pub fn unavailable(message: String, retry_after_s: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            message,
            Vec::new(),
        );
        e.retry_after_s = Some(retry_after_s);
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after_s {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_field_is_named_in_the_message() {
        let e = ApiError::invalid(vec![FieldProblem::new("city", "missing")]);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.problem.message, "city: missing");
        let e = ApiError::invalid(vec![
            FieldProblem::new("city", "missing"),
            FieldProblem::new("rider", "missing"),
        ]);
        assert_eq!(e.problem.message, "2 fields are invalid");
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let res = ApiError::unavailable("no PubAck".into(), 2).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    }
}
