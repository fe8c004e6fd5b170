//! The OpenAPI document, generated from the handlers and types (utoipa), so
//! it cannot drift from the code. The cities a ride may be requested in come
//! from the cities file: the served document lists this gateway's, and the
//! copy in the repository (docs/openapi.json) those of
//! deploy/local/cities.toml; a unit test fails when that copy differs from
//! what the code generates. Regenerate it with
//! `hail-gateway --cities deploy/local/cities.toml openapi > docs/openapi.json`.

use utoipa::{
    OpenApi,
    openapi::{RefOr, Schema},
};

use crate::{cities::Cities, problem, request, routes, status};

/// The command that rewrites docs/openapi.json.
pub const REGENERATE: &str =
    "cargo run -p hail-gateway -- --cities deploy/local/cities.toml openapi > docs/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hail gateway",
        description = "Request a ride over HTTP, follow its status, cancel it. A request is answered `202 Accepted` only once it is stored in NATS JetStream (stream RIDES); errors carry a `Problem` naming each bad field.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(routes::request_ride, routes::ride_status, routes::cancel_ride),
    components(schemas(
        request::RideRequest,
        request::Position,
        routes::Accepted,
        routes::CancelRequest,
        status::RideStatus,
        status::State,
        status::Driver,
        status::Unmatched,
        status::Fare,
        status::Fraud,
        problem::Problem,
        problem::FieldProblem,
    )),
    tags((name = "rides", description = "Ride requests and their status")),
)]
struct ApiDoc;

/// The document, with `city` limited to `cities` when they are known.
pub fn document(cities: &Cities) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if let Some(names) = cities.names() {
        let city = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("RideRequest"))
            .and_then(|s| match s {
                RefOr::T(Schema::Object(o)) => o.properties.get_mut("city"),
                _ => None,
            });
        if let Some(RefOr::T(Schema::Object(o))) = city {
            o.enum_values = Some(names.into_iter().map(serde_json::Value::from).collect());
        }
    }
    doc
}

/// [`document`] as pretty JSON with a final newline, as in docs/openapi.json.
pub fn to_json(cities: &Cities) -> String {
    let mut s = serde_json::to_string_pretty(&document(cities)).expect("the document serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Cities {
        Cities::parse(
            include_str!("../../../deploy/local/cities.toml"),
            "cities.toml",
        )
        .unwrap()
    }

    /// docs/openapi.json is what the code generates; `HAIL_WRITE_OPENAPI=1`
    /// rewrites it.
    #[test]
    fn the_checked_in_document_is_the_generated_one() {
        let generated = to_json(&local());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        if std::env::var_os("HAIL_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/openapi.json differs from the code's document; regenerate it: {REGENERATE} \
             (or HAIL_WRITE_OPENAPI=1 cargo test -p hail-gateway openapi)"
        );
    }

    #[test]
    fn the_city_is_one_of_the_known_cities() {
        let doc = serde_json::to_value(document(&local())).unwrap();
        let city = &doc["components"]["schemas"]["RideRequest"]["properties"]["city"];
        assert_eq!(city["enum"][0], "berlin", "{city}");
        let body = &doc["paths"]["/v1/rides"]["post"]["requestBody"];
        assert!(body.to_string().contains("RideRequest"), "{body}");
    }
}
