//! Any event of hail, and which kind a subject or a type name is.
//!
//! The one list of every event kind is the `every_event!` invocation below. From
//! it come [`EventKind`] (the lookups by subject and by type name), [`AnyEvent`]
//! (one variant per kind, decoded from a payload without knowing its type
//! beforehand), [`EVENT_NAMES`] and the [`Event`] impls of the ride kinds. Code
//! that handles several kinds matches on these rather than on subject tokens or
//! name strings of its own.
//!
//! ```
//! use hail_events::{AnyEvent, EventKind, codec, sample};
//! let bytes = codec::encode(&sample::fare_quoted("r-1", "berlin")).unwrap();
//! let event = AnyEvent::decode("rides.priced.berlin", &bytes).unwrap();
//! assert_eq!(event.kind(), EventKind::Priced);
//! assert_eq!(event.name(), "FareQuoted");
//! assert_eq!(EventKind::of_subject("drivers.berlin.d-1").unwrap(), EventKind::DriverLocation);
//! assert!(EventKind::from_name("RideBooked").unwrap_err().to_string().contains("RideBooked"));
//! ```

use bytes::Bytes;
use serde::Serialize;

use crate::{
    City, DriverLocationUpdated, Event, EventError, FareQuoted, RideCancelled, RideCompleted,
    RideId, RideMatched, RideRequested, RideScreened, RideUnmatched, codec,
    events::{check_cancelled, check_fare, check_matched, check_screened, no_checks},
    subjects,
};

/// Writes [`EventKind`], [`AnyEvent`] and [`EVENT_NAMES`] from the list of kinds:
/// `Variant(Type) on "subject pattern"` (`*` matches one token). A kind about one
/// ride adds `ride "<tag>", <subject of an event>, <validation>` and gets its
/// [`Event`] impl from here.
macro_rules! every_event {
    ($(
        $(#[$doc:meta])*
        $variant:ident($ty:ident) on $pattern:literal $(, ride $tag:literal, $subject:expr, $check:path)?;
    )*) => {
        $($(
            /// An event about one ride, on the subject `$subject` builds, with the message id
            /// `<tag>:<ride id>`.
            impl Event for $ty {
                const NAME: &'static str = stringify!($ty);
                const VERSION: u16 = 1;
                fn subject(&self) -> String {
                    let subject: fn(&$ty) -> String = $subject;
                    subject(self)
                }
                fn ride_id(&self) -> Option<&RideId> {
                    Some(&self.ride_id)
                }
                fn msg_id(&self) -> String {
                    format!(concat!($tag, ":{}"), self.ride_id)
                }
                fn validate(&self) -> Result<(), EventError> {
                    let check: fn(&$ty) -> Result<(), EventError> = $check;
                    check(self)
                }
            }
        )?)*

        /// Which event a message is: one per event type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $( $(#[$doc])* $variant, )*
        }

        /// Any event, decoded without knowing its type beforehand.
        ///
        /// Serializes as the event itself (no wrapper), e.g. to show it as JSON.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum AnyEvent {
            $( $(#[$doc])* $variant($ty), )*
        }

        impl EventKind {
            /// Every kind, in pipeline order (the request first, then the answers,
            /// completion and cancellation last).
            pub const ALL: [EventKind; [$(stringify!($variant)),*].len()] =
                [$(EventKind::$variant),*];

            /// The type name (`RideRequested`…), as in the payload and `Hail-Event`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( EventKind::$variant => <$ty as Event>::NAME, )*
                }
            }

            /// The subjects it is published on, `*` standing for one token
            /// (`rides.requested.*`): usable as a filter subject.
            pub const fn subject_pattern(self) -> &'static str {
                match self {
                    $( EventKind::$variant => $pattern, )*
                }
            }

            /// Whether it is an event about one ride, on `rides.<kind>.<city>`.
            pub const fn is_ride(self) -> bool {
                match self {
                    $( EventKind::$variant => every_event!(@ride $($tag)?), )*
                }
            }

            fn decode(self, bytes: &[u8]) -> Result<AnyEvent, EventError> {
                match self {
                    $( EventKind::$variant => codec::decode::<$ty>(bytes).map(AnyEvent::$variant), )*
                }
            }
        }

        impl AnyEvent {
            /// Which kind it is.
            pub fn kind(&self) -> EventKind {
                match self {
                    $( AnyEvent::$variant(_) => EventKind::$variant, )*
                }
            }

            /// The city it happened in.
            pub fn city(&self) -> &City {
                match self {
                    $( AnyEvent::$variant(e) => &e.city, )*
                }
            }

            /// The subject it is published on.
            pub fn subject(&self) -> String {
                match self {
                    $( AnyEvent::$variant(e) => e.subject(), )*
                }
            }

            /// The ride it belongs to, if any.
            pub fn ride_id(&self) -> Option<&RideId> {
                match self {
                    $( AnyEvent::$variant(e) => e.ride_id(), )*
                }
            }

            /// Its deterministic message id (see [`Event::msg_id`]).
            pub fn msg_id(&self) -> String {
                match self {
                    $( AnyEvent::$variant(e) => e.msg_id(), )*
                }
            }

            /// Encodes it as [`codec::encode`] encodes the event itself.
            pub fn encode(&self) -> Result<Bytes, EventError> {
                match self {
                    $( AnyEvent::$variant(e) => codec::encode(e), )*
                }
            }
        }

        $(
            impl From<$ty> for AnyEvent {
                fn from(e: $ty) -> Self {
                    AnyEvent::$variant(e)
                }
            }
        )*

        /// The names of every event type, for checking a `Hail-Event` header.
        pub const EVENT_NAMES: [&str; EventKind::ALL.len()] = [$(<$ty as Event>::NAME),*];
    };
    (@ride $tag:literal) => { true };
    (@ride) => { false };
}

every_event! {
    /// [`RideRequested`]
    Requested(RideRequested) on "rides.requested.*",
        ride "requested", |e| subjects::rides_requested(&e.city), no_checks;
    /// [`DriverLocationUpdated`]
    DriverLocation(DriverLocationUpdated) on "drivers.*.*";
    /// [`RideMatched`]
    Matched(RideMatched) on "rides.matched.*",
        ride "matched", |e| subjects::rides_matched(&e.city), check_matched;
    /// [`RideUnmatched`]
    Unmatched(RideUnmatched) on "rides.unmatched.*",
        ride "unmatched", |e| subjects::rides_unmatched(&e.city), no_checks;
    /// [`FareQuoted`]
    Priced(FareQuoted) on "rides.priced.*",
        ride "priced", |e| subjects::rides_priced(&e.city), check_fare;
    /// [`RideScreened`]
    Screened(RideScreened) on "rides.screened.*",
        ride "screened", |e| subjects::rides_screened(&e.city), check_screened;
    /// [`RideCompleted`]
    Completed(RideCompleted) on "rides.completed.*",
        ride "completed", |e| subjects::rides_completed(&e.city), no_checks;
    /// [`RideCancelled`]
    Cancelled(RideCancelled) on "rides.cancelled.*",
        ride "cancelled", |e| subjects::rides_cancelled(&e.city), check_cancelled;
}

impl EventKind {
    /// The kind of the type name `name` (`RideRequested`…).
    ///
    /// ```
    /// # use hail_events::EventKind;
    /// assert_eq!(EventKind::from_name("FareQuoted").unwrap(), EventKind::Priced);
    /// ```
    pub fn from_name(name: &str) -> Result<EventKind, EventError> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| EventError::NotAnEvent(format!("unknown event type {name:?}")))
    }

    /// The kind published on `subject` (`rides.priced.berlin` → `Priced`).
    ///
    /// ```
    /// # use hail_events::EventKind;
    /// assert_eq!(EventKind::of_subject("rides.priced.berlin").unwrap(), EventKind::Priced);
    /// assert!(EventKind::of_subject("rides.bogus.berlin").is_err());
    /// ```
    pub fn of_subject(subject: &str) -> Result<EventKind, EventError> {
        EventKind::ALL
            .into_iter()
            .find(|k| matches_pattern(k.subject_pattern(), subject))
            .ok_or_else(|| EventError::InvalidField {
                field: "subject",
                reason: format!("{subject:?} is not an event subject"),
            })
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl AnyEvent {
    /// Decodes and validates a payload as the kind it names.
    ///
    /// ```
    /// # use hail_events::{AnyEvent, codec, sample};
    /// let bytes = codec::encode(&sample::ride_requested("r-1", "berlin")).unwrap();
    /// assert_eq!(AnyEvent::from_payload(&bytes).unwrap().name(), "RideRequested");
    /// ```
    pub fn from_payload(bytes: &[u8]) -> Result<AnyEvent, EventError> {
        EventKind::from_name(&codec::probe(bytes)?.t)?.decode(bytes)
    }

    /// Decodes and validates a message on `subject` as the kind the subject
    /// announces; a payload of another kind is a [`EventError::WrongEvent`].
    pub fn decode(subject: &str, bytes: &[u8]) -> Result<AnyEvent, EventError> {
        EventKind::of_subject(subject)?.decode(bytes)
    }

    /// The type name (`RideRequested`…).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// Whether `subject` has the tokens of `pattern`, `*` matching any one token.
fn matches_pattern(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    let tokens_match = pattern.split('.').all(|p| {
        subject
            .next()
            .is_some_and(|s| !s.is_empty() && (p == "*" || p == s))
    });
    tokens_match && subject.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    fn one_of_each() -> Vec<AnyEvent> {
        sample::one_of_each("r1", "berlin")
    }

    #[test]
    fn there_is_one_sample_of_every_kind_in_order() {
        let kinds: Vec<EventKind> = one_of_each().iter().map(AnyEvent::kind).collect();
        assert_eq!(kinds, EventKind::ALL);
        assert_eq!(EVENT_NAMES.len(), EventKind::ALL.len());
    }

    #[test]
    fn every_kind_round_trips() {
        for event in one_of_each() {
            let bytes = event.encode().unwrap();
            assert_eq!(AnyEvent::from_payload(&bytes).unwrap(), event);
            assert_eq!(AnyEvent::decode(&event.subject(), &bytes).unwrap(), event);
        }
    }

    #[test]
    fn every_kind_is_found_by_its_subject_and_name() {
        for event in one_of_each() {
            let kind = event.kind();
            assert_eq!(EventKind::of_subject(&event.subject()).unwrap(), kind);
            assert_eq!(EventKind::from_name(kind.name()).unwrap(), kind);
            assert_eq!(kind.to_string(), event.name());
            assert_eq!(kind.is_ride(), event.ride_id().is_some(), "{kind}");
            assert_eq!(event.city().as_str(), "berlin");
            if let Some(ride) = event.ride_id() {
                let tag = event.subject().split('.').nth(1).unwrap().to_string();
                assert_eq!(event.msg_id(), format!("{tag}:{ride}"));
            }
        }
    }

    #[test]
    fn unknown_subjects_and_names_are_named() {
        for subject in [
            "rides.bogus.berlin",
            "rides.priced",
            "rides.priced.berlin.x",
            "drivers.berlin",
            "rides..berlin",
            "",
        ] {
            let err = EventKind::of_subject(subject).unwrap_err();
            assert_eq!(err.kind(), "invalid_field");
            assert!(err.to_string().contains(&format!("{subject:?}")), "{err}");
        }
        let err = EventKind::from_name("RideBooked").unwrap_err();
        assert_eq!(err.kind(), "not_an_event");
        assert_eq!(
            err.to_string(),
            "not a hail event: unknown event type \"RideBooked\""
        );
    }

    #[test]
    fn a_payload_must_be_the_kind_its_subject_announces() {
        let bytes = codec::encode(&sample::ride_requested("r1", "berlin")).unwrap();
        let err = AnyEvent::decode("rides.priced.berlin", &bytes).unwrap_err();
        assert_eq!(err.kind(), "wrong_event");
        let err = AnyEvent::from_payload(b"").unwrap_err();
        assert_eq!(err.kind(), "not_an_event");
    }

    #[test]
    fn serializes_as_the_event_itself() {
        let ride = sample::ride_requested("r1", "berlin");
        let any = rmp_serde::to_vec_named(&AnyEvent::from(ride.clone())).unwrap();
        assert_eq!(any, rmp_serde::to_vec_named(&ride).unwrap());
    }
}
