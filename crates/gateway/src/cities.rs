//! The cities the gateway takes rides in: those of the cities file
//! (deploy/local/cities.toml, `--cities`), read and validated exactly as
//! hail-matching reads it. Without a file every valid city token is taken.

use std::{collections::BTreeSet, path::Path};

use hail_events::City;
use hail_matching::service_area::ServiceAreas;

/// The cities a ride may be requested in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cities {
    /// `None`: any valid city token.
    known: Option<BTreeSet<String>>,
}

impl Cities {
    /// Any valid city token.
    pub fn any() -> Self {
        Cities::default()
    }

    /// The cities of a cities file; an error names the file, the city and the field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Ok(Self::from_areas(&ServiceAreas::load(path)?))
    }

    /// The cities of a cities document (`name` is used in errors).
    pub fn parse(text: &str, name: &str) -> anyhow::Result<Self> {
        Ok(Self::from_areas(&ServiceAreas::parse(text, name)?))
    }

    fn from_areas(areas: &ServiceAreas) -> Self {
        Cities {
            known: Some(areas.cities().map(|c| c.as_str().to_string()).collect()),
        }
    }

    /// The known cities, sorted; `None` when any city is taken.
    pub fn names(&self) -> Option<Vec<String>> {
        self.known.as_ref().map(|k| k.iter().cloned().collect())
    }

    /// Checks a city token: valid, and known when there is a list.
    pub fn check(&self, name: &str) -> Result<City, String> {
        let city = City::new(name).map_err(|e| e.to_string())?;
        match &self.known {
            Some(k) if !k.contains(name) => Err(format!(
                "unknown city {name:?}; known: {}",
                k.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            _ => Ok(city),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = include_str!("../../../deploy/local/cities.toml");

    #[test]
    fn the_local_cities_are_known_and_others_named() {
        let c = Cities::parse(FILE, "cities.toml").unwrap();
        assert!(c.check("berlin").is_ok());
        let err = c.check("tokyo").unwrap_err();
        assert!(
            err.starts_with("unknown city \"tokyo\"; known: berlin"),
            "{err}"
        );
        let err = c.check("new.york").unwrap_err();
        assert!(err.contains("'.'"), "{err}");
    }

    #[test]
    fn without_a_file_any_token_is_a_city() {
        assert!(Cities::any().check("tokyo").is_ok());
        assert!(Cities::any().check("").is_err());
        assert_eq!(Cities::any().names(), None);
    }
}
