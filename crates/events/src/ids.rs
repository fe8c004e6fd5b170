//! Typed identifiers. Every id is a short ASCII token that is safe inside a NATS
//! subject and a header value: `[A-Za-z0-9_-]`, 1 to [`MAX_ID_LEN`] bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::EventError;

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

fn check_token(kind: &'static str, s: &str) -> Result<(), EventError> {
    let fail = |reason: String| Err(EventError::InvalidId { kind, reason });
    if s.is_empty() {
        return fail("empty".into());
    }
    if s.len() > MAX_ID_LEN {
        return fail(format!("{} bytes long, the limit is {MAX_ID_LEN}", s.len()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return fail(format!(
            "{s:?} holds {c:?}; only A-Z a-z 0-9 _ - are allowed"
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id, refusing empty, oversize or subject-unsafe input.
            pub fn new(s: impl Into<String>) -> Result<Self, EventError> {
                let s = s.into();
                check_token($kind, &s)?;
                Ok(Self(s))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = EventError;
            fn try_from(s: String) -> Result<Self, EventError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = EventError;
            fn from_str(s: &str) -> Result<Self, EventError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A ride, from request to completion.
    RideId,
    "ride id"
);
id_type!(
    /// A driver.
    DriverId,
    "driver id"
);
id_type!(
    /// A rider (the person requesting rides).
    RiderId,
    "rider id"
);
id_type!(
    /// A rider's device fingerprint, as seen by fraud screening.
    DeviceId,
    "device id"
);
id_type!(
    /// A payment card's fingerprint (never the card number).
    CardFingerprint,
    "card fingerprint"
);
id_type!(
    /// A city code, the third token of every ride subject (`rides.requested.<city>`).
    City,
    "city"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_subject_safe_tokens() {
        assert_eq!(RideId::new("r-1_A").unwrap().as_str(), "r-1_A");
    }

    #[test]
    fn refuses_empty_oversize_and_unsafe() {
        assert!(matches!(
            RideId::new(""),
            Err(EventError::InvalidId {
                kind: "ride id",
                ..
            })
        ));
        let long = "x".repeat(MAX_ID_LEN + 1);
        let err = DriverId::new(long).unwrap_err().to_string();
        assert!(err.contains("65 bytes"), "{err}");
        let err = City::new("new.york").unwrap_err().to_string();
        assert!(err.contains("'.'"), "{err}");
        assert!(RiderId::new("a b").is_err());
        assert!(RiderId::new("a>").is_err());
    }
}
