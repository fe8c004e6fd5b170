//! hail's event contract, shared by every service, the load generator and the CLI.
//!
//! - [`ids`] and [`position`]: typed, validated ids and positions; an invalid value
//!   cannot be constructed, decoded or encoded.
//! - [`events`]: every event type and the [`Event`] trait that gives each its
//!   subject, deterministic message id and schema version.
//! - [`any_event`]: [`AnyEvent`] and [`EventKind`], the one place that knows every
//!   kind: which kind a subject or a type name is, and decoding any event.
//! - [`subjects`]: stream names and subject builders.
//! - [`codec`]: MessagePack with named fields inside a versioned envelope.
//! - [`headers`]: the headers every message carries (`Nats-Msg-Id`, `Hail-Event`,
//!   `Hail-Ride-Id`, `traceparent`, `Content-Type`) and the dead-letter headers.
//! - [`trace`]: the W3C trace context in `traceparent`: a random trace per
//!   ride, a span per hop.
//! - [`ride_view`]: the ride view, one status record per ride, that the
//!   `ride-view` service writes and the gateway and `hail trace` read.
//! - [`sample`]: small valid events for examples and tests.
//!
//! ```
//! use hail_events::{codec, headers, Event, RideRequested};
//! let ride = hail_events::sample::ride_requested("r-1", "berlin");
//! let payload = codec::encode(&ride).unwrap();
//! let h = headers::for_event(&ride);
//! assert_eq!(ride.subject(), "rides.requested.berlin");
//! assert_eq!(codec::decode::<RideRequested>(&payload).unwrap(), ride);
//! # let _ = h;
//! ```
#![forbid(unsafe_code)]

pub mod any_event;
pub mod codec;
mod error;
pub mod events;
pub mod headers;
pub mod ids;
pub mod position;
pub mod ride_view;
pub mod sample;
pub mod subjects;
pub mod trace;

pub use any_event::{AnyEvent, EVENT_NAMES, EventKind};
pub use codec::MAX_PAYLOAD_BYTES;
pub use error::EventError;
pub use events::*;
pub use ids::{CardFingerprint, City, DeviceId, DriverId, RideId, RiderId};
pub use position::LatLng;
