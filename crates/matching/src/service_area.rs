//! Each city's service area: a polygon of latitude/longitude vertices read from a
//! cities file (see deploy/local/cities.toml), and whether a pickup lies in it.
//!
//! ```toml
//! [[city]]
//! name = "berlin"
//! area = [
//!   { lat = 52.67, lon = 13.40 },
//!   { lat = 52.40, lon = 13.75 },
//!   { lat = 52.37, lon = 13.10 },
//! ]
//! ```
//!
//! The rule: a pickup is inside when geo's [`Contains`] says the polygon contains
//! it, that is when it lies in the polygon's interior; a pickup exactly on an edge
//! or a vertex is outside. Edges are straight lines in the longitude/latitude
//! plane (not great circles), which at city scale is the map a planner draws on.
//! A city the file does not list has no area: every pickup there is served, as
//! before service areas existed.
//!
//! Unknown fields are refused, and every error names the file, the city and the field.

use std::{collections::HashMap, path::Path};

use geo::{Contains, LineString, Point, Polygon, Validation};
use hail_events::{City, EventError, LatLng};
use serde::Deserialize;

/// A cities file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    /// The file could not be read.
    #[error("cannot read the cities file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("cities file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with its line.
        message: String,
    },
    /// A city's entry is wrong.
    #[error("cities file {path}: {city}{}: {reason}", at_field(.field))]
    Invalid {
        /// The file.
        path: String,
        /// `city "x"`, or `city #n` (counted from 1) when it has no usable name.
        city: String,
        /// The field, e.g. `area[2].lat`; empty when the city's table as a whole
        /// is wrong (a field missing).
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// The file: a `[[city]]` table per city, each parsed on its own so that an
/// error can name the city it is in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CitiesFile {
    #[serde(default)]
    city: Vec<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCity {
    /// The city's subject token, as in `rides.requested.<name>`.
    name: String,
    /// The polygon's ring; closing it (repeating the first vertex) is optional.
    area: Vec<RawVertex>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVertex {
    lat: f64,
    lon: f64,
}

/// A field error before the file and city are attached.
type FieldError = (String, String);

/// The service area of every configured city.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceAreas {
    areas: HashMap<City, Polygon<f64>>,
}

impl ServiceAreas {
    /// No areas: every pickup in every city is served.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads and validates a cities file.
    pub fn load(path: &Path) -> Result<Self, AreaError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AreaError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates a cities document; `name` is used in errors.
    pub fn parse(text: &str, name: &str) -> Result<Self, AreaError> {
        let file: CitiesFile = toml::from_str(text).map_err(|e| AreaError::Parse {
            path: name.to_string(),
            message: toml_message(&e, text),
        })?;
        let mut areas = HashMap::with_capacity(file.city.len());
        for (n, table) in file.city.into_iter().enumerate() {
            let label = label(&table, n);
            let invalid = |(field, reason): FieldError| AreaError::Invalid {
                path: name.to_string(),
                city: label.clone(),
                field,
                reason,
            };
            let (city, polygon) = city_area(table).map_err(invalid)?;
            if areas.contains_key(&city) {
                return Err(invalid(("name".into(), "the city is listed twice".into())));
            }
            areas.insert(city, polygon);
        }
        Ok(Self { areas })
    }

    /// Whether matching serves a pickup at `at` in `city`: inside its area, or
    /// anywhere when the city has none.
    pub fn admits(&self, city: &City, at: LatLng) -> bool {
        self.areas
            .get(city)
            .is_none_or(|area| area.contains(&Point::from(at)))
    }

    /// Cities with an area.
    pub fn cities(&self) -> impl Iterator<Item = &City> {
        self.areas.keys()
    }
}

fn at_field(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(", field {field}")
    }
}

/// How errors name the `n`th city (from 0): by its name when it has one.
fn label(table: &toml::Table, n: usize) -> String {
    match table.get("name").and_then(toml::Value::as_str) {
        Some(name) => format!("city {name:?}"),
        None => format!("city #{}", n + 1),
    }
}

/// One `[[city]]` table, validated.
fn city_area(table: toml::Table) -> Result<(City, Polygon<f64>), FieldError> {
    let raw: RawCity =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            let message = e.inner().message().to_string();
            (field, message)
        })?;
    let city = City::new(raw.name).map_err(|e| ("name".to_string(), e.to_string()))?;
    Ok((city, polygon(&raw.area)?))
}

/// The polygon of a ring of vertices: at least 3 distinct ones, each a valid
/// position, edges that do not cross.
fn polygon(ring: &[RawVertex]) -> Result<Polygon<f64>, FieldError> {
    let mut points = Vec::with_capacity(ring.len());
    for (i, v) in ring.iter().enumerate() {
        let at = LatLng::new(v.lat, v.lon).map_err(|e| (vertex_field(i, &e), e.to_string()))?;
        points.push(Point::from(at));
    }
    let mut distinct = points.clone();
    distinct.dedup();
    if distinct.len() > 1 && distinct.first() == distinct.last() {
        distinct.pop();
    }
    if distinct.len() < 3 {
        let why = format!(
            "has {} distinct vertices; a polygon needs at least 3",
            distinct.len()
        );
        return Err(("area".into(), why));
    }
    let polygon = Polygon::new(LineString::from(points), vec![]);
    polygon
        .check_validation()
        .map_err(|e| ("area".to_string(), e.to_string()))?;
    Ok(polygon)
}

/// `area[i].lat` or `area[i].lon`, whichever `e` refuses.
fn vertex_field(i: usize, e: &EventError) -> String {
    match e {
        EventError::InvalidCoordinate {
            field: "latitude", ..
        } => format!("area[{i}].lat"),
        EventError::InvalidCoordinate {
            field: "longitude", ..
        } => format!("area[{i}].lon"),
        _ => format!("area[{i}]"),
    }
}

/// The parser's message, prefixed with the line it points at.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let line = e.span().map(|s| {
        let before = &text.as_bytes()[..s.start.min(text.len())];
        before.iter().filter(|b| **b == b'\n').count() + 1
    });
    match line {
        Some(l) => format!("line {l}: {}", e.message()),
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests;
