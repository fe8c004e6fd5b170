//! The tariff book: one tariff per city plus a default for every other city,
//! from a TOML file (JSON when the name ends in `.json`) or built in.
//!
//! ```toml
//! [default]
//! currency = "EUR"
//! base_minor = 250        # flag-fall, minor units (cents)
//! per_km_minor = 120
//! per_minute_minor = 30
//! minimum_minor = 700     # lowest fare, after surge
//! # maximum_minor = 20000 # optional highest fare, after surge
//!
//! [cities.london]
//! currency = "GBP"
//! base_minor = 250
//! per_km_minor = 125
//! per_minute_minor = 20
//! minimum_minor = 600
//! ```
//!
//! Unknown fields are refused, and every error names the tariff (`city "x"` or
//! `default`) and the field.

use std::{collections::BTreeMap, collections::HashMap, path::Path};

use hail_events::City;
use serde::Deserialize;
use serde_path_to_error::{Path as FieldPath, Segment};

use crate::tariff::Tariff;

/// Largest amount accepted in any field, in minor units.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// A tariffs file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TariffError {
    /// The file could not be read.
    #[error("cannot read the tariffs file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML/JSON of the expected shape.
    #[error("tariffs file {path}: {place}{message}")]
    Parse {
        /// The file.
        path: String,
        /// `city "x", field f: ` when known.
        place: String,
        /// The parser's message.
        message: String,
    },
    /// A field's value is out of range.
    #[error("tariffs file {path}: {tariff}, field {field}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// `city "x"` or `default`.
        tariff: String,
        /// The field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TariffFile {
    default: RawTariff,
    #[serde(default)]
    cities: BTreeMap<String, RawTariff>,
}

/// A tariff as written, before validation (signed, so a negative amount is
/// reported by name rather than as a type error).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTariff {
    currency: String,
    base_minor: i64,
    per_km_minor: i64,
    per_minute_minor: i64,
    minimum_minor: i64,
    #[serde(default)]
    maximum_minor: Option<i64>,
}

/// A field error before the file and tariff names are attached.
type FieldError = (&'static str, String);

impl RawTariff {
    fn validate(&self) -> Result<Tariff, FieldError> {
        check_currency(&self.currency)?;
        let amount = |field, v| check_amount(field, v);
        let base_minor = amount("base_minor", self.base_minor)?;
        let per_km_minor = amount("per_km_minor", self.per_km_minor)?;
        let per_minute_minor = amount("per_minute_minor", self.per_minute_minor)?;
        let minimum_minor = amount("minimum_minor", self.minimum_minor)?;
        if base_minor == 0 && per_km_minor == 0 {
            let why = "is 0 and so is base_minor: every trip would cost only time".into();
            return Err(("per_km_minor", why));
        }
        let maximum_minor = match self.maximum_minor {
            None => None,
            Some(v) => Some(check_maximum(amount("maximum_minor", v)?, minimum_minor)?),
        };
        Ok(Tariff {
            currency: self.currency.clone(),
            base_minor,
            per_km_minor,
            per_minute_minor,
            minimum_minor,
            maximum_minor,
        })
    }
}

fn check_currency(c: &str) -> Result<(), FieldError> {
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        let why = format!("{c:?} is not an ISO 4217 code such as EUR, GBP or USD");
        Err(("currency", why))
    }
}

fn check_amount(field: &'static str, v: i64) -> Result<u64, FieldError> {
    if v < 0 {
        return Err((field, format!("{v} is negative")));
    }
    if v > MAX_AMOUNT_MINOR {
        return Err((field, format!("{v} is above {MAX_AMOUNT_MINOR}")));
    }
    Ok(v as u64)
}

fn check_maximum(max: u64, min: u64) -> Result<u64, FieldError> {
    if max == 0 {
        return Err(("maximum_minor", "is 0: every fare would be free".into()));
    }
    if min > max {
        let why = format!("minimum_minor {min} is above maximum_minor {max}");
        return Err(("minimum_minor", why));
    }
    Ok(max)
}

/// Validated tariffs: one per listed city, the default for the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct TariffBook {
    default: Tariff,
    cities: HashMap<City, Tariff>,
}

impl TariffBook {
    /// Reads and validates a tariffs file (JSON if its name ends in `.json`,
    /// else TOML).
    pub fn load(path: &Path) -> Result<TariffBook, TariffError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TariffError::Read {
            path: shown.clone(),
            source,
        })?;
        let json = path.extension().is_some_and(|e| e == "json");
        TariffBook::parse(&text, json, &shown)
    }

    /// Parses and validates a tariffs document; `name` is used in errors.
    pub fn parse(text: &str, json: bool, name: &str) -> Result<TariffBook, TariffError> {
        let file = if json {
            parse_json(text, name)?
        } else {
            parse_toml(text, name)?
        };
        TariffBook::from_file(file, name)
    }

    fn from_file(file: TariffFile, name: &str) -> Result<TariffBook, TariffError> {
        let invalid = |tariff: String| {
            let path = name.to_string();
            move |(field, reason): FieldError| TariffError::Invalid {
                path,
                tariff,
                field,
                reason,
            }
        };
        let default = file.default.validate().map_err(invalid("default".into()))?;
        let mut cities = HashMap::with_capacity(file.cities.len());
        for (key, raw) in file.cities {
            let city = City::new(key.clone()).map_err(|e| TariffError::Parse {
                path: name.to_string(),
                place: format!("city {key:?}: "),
                message: e.to_string(),
            })?;
            let tariff = raw.validate().map_err(invalid(format!("city {key:?}")))?;
            cities.insert(city, tariff);
        }
        Ok(TariffBook { default, cities })
    }

    /// The built-in book: berlin, paris, lisbon (EUR), london (GBP), nyc (USD),
    /// and a EUR default: deploy/local/tariffs.toml, compiled in.
    pub fn builtin() -> TariffBook {
        TariffBook::parse(BUILTIN, false, "(built in)")
            .unwrap_or_else(|e| unreachable!("the built-in tariffs are invalid: {e}"))
    }

    /// The tariff of `city`, or the default.
    pub fn for_city(&self, city: &City) -> &Tariff {
        self.cities.get(city).unwrap_or(&self.default)
    }

    /// Cities with a tariff of their own.
    pub fn cities(&self) -> impl Iterator<Item = &City> {
        self.cities.keys()
    }
}

fn parse_toml(text: &str, name: &str) -> Result<TariffFile, TariffError> {
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(&e, text, None, name))?;
    serde_path_to_error::deserialize(de)
        .map_err(|e| toml_error(e.inner(), text, Some(e.path()), name))
}

fn toml_error(e: &toml::de::Error, text: &str, at: Option<&FieldPath>, name: &str) -> TariffError {
    let line = e.span().map(|s| {
        let before = &text.as_bytes()[..s.start.min(text.len())];
        before.iter().filter(|b| **b == b'\n').count() + 1
    });
    let message = match line {
        Some(l) => format!("line {l}: {}", e.message()),
        None => e.message().to_string(),
    };
    TariffError::Parse {
        path: name.to_string(),
        place: at.map(place).unwrap_or_default(),
        message,
    }
}

fn parse_json(text: &str, name: &str) -> Result<TariffFile, TariffError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| TariffError::Parse {
        path: name.to_string(),
        place: place(e.path()),
        message: e.inner().to_string(),
    })
}

/// `city "berlin", field base_minor: ` from `cities.berlin.base_minor`.
fn place(path: &FieldPath) -> String {
    let keys: Vec<String> = path
        .iter()
        .map(|s| match s {
            Segment::Map { key } => key.clone(),
            other => other.to_string(),
        })
        .collect();
    let (tariff, field) = match keys.as_slice() {
        [] => return String::new(),
        [c, city, rest @ ..] if c == "cities" => (format!("city {city:?}"), rest.join(".")),
        [d, rest @ ..] if d == "default" => ("default".to_string(), rest.join(".")),
        other => (format!("at {}", other.join(".")), String::new()),
    };
    if field.is_empty() {
        format!("{tariff}: ")
    } else {
        format!("{tariff}, field {field}: ")
    }
}

/// The built-in tariffs are deploy/local/tariffs.toml itself, compiled in, so
/// the file and the defaults cannot drift apart.
const BUILTIN: &str = include_str!("../../../deploy/local/tariffs.toml");

#[cfg(test)]
mod tests;
