//! Stream names and subject builders. Cities and ids are validated tokens, so a
//! built subject never holds a `.`, `*`, `>` or whitespace it should not.

use crate::{City, DriverId, RideId};

/// Requests and every ride outcome.
pub const RIDES_STREAM: &str = "RIDES";
/// Last known location and status of every driver.
pub const DRIVERS_STREAM: &str = "DRIVERS";
/// Dead letters of every service.
pub const DLQ_STREAM: &str = "DLQ";

/// Every ride event the RIDES stream holds.
pub const RIDES_ALL: &str = "rides.>";
/// The answer fences RIDES holds beside the ride events (see [`fence`]).
pub const FENCES_ALL: &str = "fence.>";
/// Every ride request, any city.
pub const RIDES_REQUESTED_ALL: &str = "rides.requested.>";
/// Every ride matched to a driver, any city.
pub const RIDES_MATCHED_ALL: &str = "rides.matched.>";
/// Every ride that found no driver, any city.
pub const RIDES_UNMATCHED_ALL: &str = "rides.unmatched.>";
/// Every fare quote, any city.
pub const RIDES_PRICED_ALL: &str = "rides.priced.>";
/// Every screening verdict, any city.
pub const RIDES_SCREENED_ALL: &str = "rides.screened.>";
/// Every completed ride, any city.
pub const RIDES_COMPLETED_ALL: &str = "rides.completed.>";
/// Every ride a rider cancelled, any city.
pub const RIDES_CANCELLED_ALL: &str = "rides.cancelled.>";
/// Every driver location.
pub const DRIVERS_ALL: &str = "drivers.>";
/// Every dead letter.
pub const DLQ_ALL: &str = "dlq.>";

/// `rides.requested.<city>`
pub fn rides_requested(city: &City) -> String {
    format!("rides.requested.{city}")
}
/// `rides.matched.<city>`
pub fn rides_matched(city: &City) -> String {
    format!("rides.matched.{city}")
}
/// `rides.unmatched.<city>`
pub fn rides_unmatched(city: &City) -> String {
    format!("rides.unmatched.{city}")
}
/// `rides.priced.<city>`
pub fn rides_priced(city: &City) -> String {
    format!("rides.priced.{city}")
}
/// `rides.screened.<city>`
pub fn rides_screened(city: &City) -> String {
    format!("rides.screened.{city}")
}
/// `rides.completed.<city>`
pub fn rides_completed(city: &City) -> String {
    format!("rides.completed.{city}")
}
/// `rides.cancelled.<city>`
pub fn rides_cancelled(city: &City) -> String {
    format!("rides.cancelled.{city}")
}
/// `drivers.<city>.<driver_id>`
pub fn driver(city: &City, driver: &DriverId) -> String {
    format!("drivers.{city}.{driver}")
}
/// `dlq.<service>.>`: every dead letter of one service.
pub fn dlq(service: &str) -> String {
    format!("dlq.{service}.>")
}

/// `dlq.<service>.<stream>.<seq>`: the one dead letter a service may write for
/// one message, on a subject of its own so that it is stored at most once.
pub fn dead_letter(service: &str, stream: &str, seq: u64) -> String {
    format!("dlq.{service}.{stream}.{seq}")
}

/// `fence.<service>.<ride id>`: one service's answer fence for one ride. A
/// first delivery publishes its answer only while this subject is empty; a
/// redelivery stores a marker here before it looks for an earlier answer, so
/// that no first delivery still in flight can store one after it looked.
pub fn fence(service: &str, ride: &RideId) -> String {
    format!("fence.{service}.{ride}")
}

/// The city token of a ride subject (`rides.<kind>.<city>`), if it has one.
pub fn city_of(subject: &str) -> Option<&str> {
    let mut parts = subject.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("rides"), Some(kind), Some(city), None) if !kind.is_empty() && !city.is_empty() => {
            Some(city)
        }
        _ => None,
    }
}

/// Whether `subject` is one of the subjects `filter` stands for, as NATS reads
/// a filter: `*` is any one token, a last `>` is one or more tokens.
///
/// ```
/// use hail_events::subjects::{self, RIDES_REQUESTED_ALL};
/// assert!(subjects::matches(RIDES_REQUESTED_ALL, "rides.requested.berlin"));
/// assert!(!subjects::matches(RIDES_REQUESTED_ALL, "rides.priced.berlin"));
/// assert!(subjects::matches("drivers.*.d-1", "drivers.berlin.d-1"));
/// ```
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for f in filter.split('.') {
        match (f, tokens.next()) {
            (_, None | Some("")) => return false,
            (">", Some(_)) => return tokens.all(|t| !t.is_empty()),
            ("*", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses() {
        let city = City::new("berlin").unwrap();
        let ride = RideId::new("r-1").unwrap();
        assert_eq!(rides_requested(&city), "rides.requested.berlin");
        assert_eq!(rides_cancelled(&city), "rides.cancelled.berlin");
        assert_eq!(rides_priced(&city), "rides.priced.berlin");
        assert_eq!(fence("pricing", &ride), "fence.pricing.r-1");
        assert!(matches(FENCES_ALL, &fence("pricing", &ride)));
        assert!(!matches(RIDES_ALL, &fence("pricing", &ride)));
        assert!(matches(RIDES_CANCELLED_ALL, &rides_cancelled(&city)));
        assert!(!matches(RIDES_COMPLETED_ALL, &rides_cancelled(&city)));
        assert_eq!(city_of("rides.priced.berlin"), Some("berlin"));
        assert_eq!(city_of("rides.priced..r-1"), None);
        assert_eq!(city_of("rides.priced.berlin.r-1"), None);
        assert_eq!(city_of("drivers.berlin.d1"), None);
        let d = DriverId::new("d-7").unwrap();
        assert_eq!(driver(&city, &d), "drivers.berlin.d-7");
    }

    #[test]
    fn filters_match_as_nats_reads_them() {
        assert!(matches("rides.>", "rides.requested.berlin"));
        assert!(matches("rides.>", "rides.x"));
        assert!(!matches("rides.>", "rides"));
        assert!(!matches("rides.>", "rides."));
        assert!(matches("rides.requested.>", "rides.requested.berlin.x"));
        assert!(!matches("rides.requested.>", "rides.requestedx.berlin"));
        assert!(matches("rides.*.berlin", "rides.priced.berlin"));
        assert!(!matches("rides.*.berlin", "rides.priced.berlin.x"));
        assert!(!matches("rides.*.berlin", "rides..berlin"));
        assert!(!matches("rides.priced.berlin", "rides.priced"));
        assert!(matches("dlq.fraud", "dlq.fraud"));
        assert!(!matches("dlq.fraud", "dlq.pricing"));
    }
}
