//! The one error type of the event contract: every way input can be wrong, named.

/// Why a value, an event or a byte string was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// A coordinate is NaN, infinite or outside its range.
    #[error("invalid {field}: {value} (must be finite and within [{min}, {max}])")]
    InvalidCoordinate {
        field: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
    /// An id is empty, too long or holds characters that cannot go into a subject.
    #[error("invalid {kind}: {reason}")]
    InvalidId { kind: &'static str, reason: String },
    /// A field other than an id or a coordinate holds an impossible value.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A field failed validation while being decoded (`kind` is
    /// `invalid_coordinate` or `invalid_id`).
    #[error("{message}")]
    Invalid { kind: &'static str, message: String },
    /// The encoded payload is larger than [`crate::MAX_PAYLOAD_BYTES`].
    #[error("payload of {size} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge { size: usize, max: usize },
    /// The payload carries a schema version this build does not read.
    #[error("unknown schema version {found} of {event} (this build reads up to {supported})")]
    UnknownVersion {
        event: String,
        found: u16,
        supported: u16,
    },
    /// The payload is a valid event, but not the one expected.
    #[error("expected a {expected} event, got {found}")]
    WrongEvent {
        expected: &'static str,
        found: String,
    },
    /// The payload is not a hail event at all.
    #[error("not a hail event: {0}")]
    NotAnEvent(String),
    /// The event could not be encoded (should not happen for valid events).
    #[error("cannot encode event: {0}")]
    Encode(String),
}

impl EventError {
    /// A short, stable, low-cardinality name for the kind of error, for metric labels
    /// and dead-letter reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::InvalidCoordinate { .. } => "invalid_coordinate",
            EventError::InvalidId { .. } => "invalid_id",
            EventError::InvalidField { .. } => "invalid_field",
            EventError::Invalid { kind, .. } => kind,
            EventError::PayloadTooLarge { .. } => "payload_too_large",
            EventError::UnknownVersion { .. } => "unknown_version",
            EventError::WrongEvent { .. } => "wrong_event",
            EventError::NotAnEvent(_) => "not_an_event",
            EventError::Encode(_) => "encode",
        }
    }
}
