//! `POST /v1/rides`: the JSON body, and its validation into a ride request.
//! Validation reads the body as a JSON value and checks every field, so that
//! the answer names each bad field at once, not only the first.

use hail_events::{
    CardFingerprint, DeviceId, LatLng, RideId, RideRequested, RiderId, ids::MAX_ID_LEN,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{cities::Cities, problem::FieldProblem};

/// The body of `POST /v1/rides`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RideRequest {
    /// The rider's id.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_-]{1,64}$",
        example = "rider-42"
    )]
    pub rider: String,
    /// The city, one of the cities this gateway serves.
    #[schema(example = "berlin")]
    pub city: String,
    /// Where the rider is picked up.
    pub pickup: Position,
    /// Where the rider goes.
    pub dropoff: Position,
    /// The rider's device fingerprint (fraud screening).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_-]{1,64}$",
        example = "dev-7"
    )]
    pub device: String,
    /// The payment card's fingerprint, never its number (fraud screening).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_-]{1,64}$",
        example = "card-9"
    )]
    pub card: String,
}

/// A WGS84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Latitude in degrees.
    #[schema(minimum = -90.0, maximum = 90.0, example = 52.52)]
    pub lat: f64,
    /// Longitude in degrees.
    #[schema(minimum = -180.0, maximum = 180.0, example = 13.405)]
    pub lng: f64,
}

/// A validated request, before it has a ride id and a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRide {
    pub rider: RiderId,
    pub city: hail_events::City,
    pub pickup: LatLng,
    pub dropoff: LatLng,
    pub device: DeviceId,
    pub card: CardFingerprint,
}

impl NewRide {
    /// The event: this request as ride `ride_id`, requested at `at_ms`.
    pub fn event(&self, ride_id: RideId, at_ms: u64) -> RideRequested {
        RideRequested {
            ride_id,
            rider_id: self.rider.clone(),
            city: self.city.clone(),
            pickup: self.pickup,
            dropoff: self.dropoff,
            requested_at_ms: at_ms,
            device_id: self.device.clone(),
            card: self.card.clone(),
        }
    }
}

const FIELDS: [&str; 6] = ["rider", "city", "pickup", "dropoff", "device", "card"];

/// Parses and checks a body; on failure every bad field is named.
pub fn validate(body: &[u8], cities: &Cities) -> Result<NewRide, Vec<FieldProblem>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![FieldProblem::new("body", format!("not valid JSON: {e}"))])?;
    let Value::Object(obj) = value else {
        return Err(vec![FieldProblem::new(
            "body",
            format!("must be a JSON object, got {}", kind(&value)),
        )]);
    };
    let mut bad = Vec::new();
    for k in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        bad.push(FieldProblem::new(k.as_str(), "unknown field"));
    }
    let rider = id(&obj, "rider", &mut bad, RiderId::new);
    let city = text(&obj, "city", &mut bad).and_then(|c| {
        cities
            .check(c)
            .map_err(|reason| bad.push(FieldProblem::new("city", reason)))
            .ok()
    });
    let pickup = position(&obj, "pickup", &mut bad);
    let dropoff = position(&obj, "dropoff", &mut bad);
    let device = id(&obj, "device", &mut bad, DeviceId::new);
    let card = id(&obj, "card", &mut bad, CardFingerprint::new);
    match (rider, city, pickup, dropoff, device, card) {
        (Some(rider), Some(city), Some(pickup), Some(dropoff), Some(device), Some(card))
            if bad.is_empty() =>
        {
            Ok(NewRide {
                rider,
                city,
                pickup,
                dropoff,
                device,
                card,
            })
        }
        _ => Err(bad),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required string field.
fn text<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    bad: &mut Vec<FieldProblem>,
) -> Option<&'a str> {
    match obj.get(field) {
        None => bad.push(FieldProblem::new(field, "missing")),
        Some(Value::String(s)) => return Some(s),
        Some(v) => bad.push(FieldProblem::new(
            field,
            format!("must be a string, got {}", kind(v)),
        )),
    }
    None
}

/// A required id field (1 to 64 of `A-Z a-z 0-9 _ -`).
fn id<T>(
    obj: &Map<String, Value>,
    field: &str,
    bad: &mut Vec<FieldProblem>,
    parse: impl Fn(String) -> Result<T, hail_events::EventError>,
) -> Option<T> {
    let s = text(obj, field, bad)?;
    match parse(s.to_string()) {
        Ok(v) => Some(v),
        Err(e) => {
            // "invalid rider id: empty" → "empty (1 to 64 of A-Z a-z 0-9 _ -)".
            let reason = e.to_string();
            let reason = reason.split_once(": ").map_or(reason.as_str(), |(_, r)| r);
            bad.push(FieldProblem::new(
                field,
                format!("{reason} (1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ -)"),
            ));
            None
        }
    }
}

/// A required `{lat, lng}` object.
fn position(obj: &Map<String, Value>, field: &str, bad: &mut Vec<FieldProblem>) -> Option<LatLng> {
    let inner = match obj.get(field) {
        None => {
            bad.push(FieldProblem::new(field, "missing"));
            return None;
        }
        Some(Value::Object(inner)) => inner,
        Some(v) => {
            bad.push(FieldProblem::new(
                field,
                format!(
                    "must be an object {{\"lat\": …, \"lng\": …}}, got {}",
                    kind(v)
                ),
            ));
            return None;
        }
    };
    for k in inner.keys().filter(|k| *k != "lat" && *k != "lng") {
        bad.push(FieldProblem::new(format!("{field}.{k}"), "unknown field"));
    }
    let lat = degrees(inner, field, "lat", 90.0, bad);
    let lng = degrees(inner, field, "lng", 180.0, bad);
    LatLng::new(lat?, lng?).ok()
}

fn degrees(
    obj: &Map<String, Value>,
    parent: &str,
    field: &str,
    limit: f64,
    bad: &mut Vec<FieldProblem>,
) -> Option<f64> {
    let name = format!("{parent}.{field}");
    match obj.get(field) {
        None => bad.push(FieldProblem::new(name, "missing")),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && (-limit..=limit).contains(&v) => return Some(v),
            _ => bad.push(FieldProblem::new(
                name,
                format!("{n} is outside [-{limit}, {limit}]"),
            )),
        },
        Some(v) => bad.push(FieldProblem::new(
            name,
            format!("must be a number of degrees, got {}", kind(v)),
        )),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> Cities {
        Cities::parse(
            include_str!("../../../deploy/local/cities.toml"),
            "cities.toml",
        )
        .unwrap()
    }

    fn fields(body: &str) -> Vec<String> {
        validate(body.as_bytes(), &berlin())
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    const GOOD: &str = r#"{"rider":"r1","city":"berlin","pickup":{"lat":52.52,"lng":13.4},
        "dropoff":{"lat":52.5,"lng":13.45},"device":"d1","card":"c1"}"#;

    #[test]
    fn a_good_request_validates() {
        let r = validate(GOOD.as_bytes(), &berlin()).unwrap();
        assert_eq!(r.city.as_str(), "berlin");
        assert_eq!(r.pickup.lat(), 52.52);
        let e = r.event(RideId::new("x").unwrap(), 7);
        assert_eq!(e.requested_at_ms, 7);
        assert_eq!(e.rider_id.as_str(), "r1");
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = r#"{"rider":"","city":"tokyo","pickup":{"lat":123,"lng":"x"},
            "dropoff":[],"card":"c.1","extra":1}"#;
        assert_eq!(
            fields(body),
            [
                "extra",
                "rider",
                "city",
                "pickup.lat",
                "pickup.lng",
                "dropoff",
                "device",
                "card"
            ]
        );
    }

    #[test]
    fn reasons_say_what_is_wrong() {
        let bad = validate(
            br#"{"rider":"a b","city":"berlin","pickup":{"lat":-91,"lng":0},"dropoff":{"lat":0},"device":"d","card":"c"}"#,
            &berlin(),
        )
        .unwrap_err();
        let reason = |f: &str| bad.iter().find(|p| p.field == f).unwrap().reason.clone();
        assert!(reason("rider").contains("holds ' '"), "{bad:?}");
        assert_eq!(reason("pickup.lat"), "-91 is outside [-90, 90]");
        assert_eq!(reason("dropoff.lng"), "missing");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_named() {
        assert_eq!(fields("[1]"), ["body"]);
        assert_eq!(fields("{"), ["body"]);
        assert_eq!(fields(""), ["body"]);
    }
}
