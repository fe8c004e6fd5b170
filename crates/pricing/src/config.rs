//! pricing's flags, and the settings they make once validated.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use hail_runtime::duration::parse_duration;

use crate::{cells::Grid, surge::SurgePolicy, tariffs::TariffBook};

/// Shortest demand window accepted.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Longest demand window accepted.
pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// pricing's flags, from the command line or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct PricingArgs {
    /// Tariffs file: one tariff per city plus a default (TOML, or JSON when the
    /// name ends in .json; see deploy/local/tariffs.toml). Without it, built-in
    /// tariffs for berlin, paris, lisbon (EUR), london (GBP) and nyc (USD) and a
    /// EUR default.
    #[arg(long, env = "HAIL_PRICING_TARIFFS", value_name = "FILE")]
    pub tariffs: Option<PathBuf>,

    /// H3 resolution of the cells demand and supply are counted in (0–15; 8 is
    /// about 0.74 km² a cell). Each request looks at its cell and the first ring.
    #[arg(long, env = "HAIL_PRICING_H3_RESOLUTION", default_value_t = 8)]
    pub h3_resolution: u8,

    /// How far back requests count as demand, in request time (1s to 24h).
    #[arg(long, env = "HAIL_PRICING_DEMAND_WINDOW", default_value = "5m", value_parser = parse_duration)]
    pub demand_window: Duration,

    /// Demand over supply at or below which there is no surge.
    #[arg(long, env = "HAIL_PRICING_SURGE_THRESHOLD", default_value_t = 1.0)]
    pub surge_threshold: f64,

    /// How much the multiplier rises per unit of demand over supply above the threshold.
    #[arg(long, env = "HAIL_PRICING_SURGE_SLOPE", default_value_t = 0.5)]
    pub surge_slope: f64,

    /// Highest surge multiplier, a multiple of 0.1 from 1.0 to 10.0.
    #[arg(long, env = "HAIL_PRICING_SURGE_CAP", default_value_t = 3.0)]
    pub surge_cap: f64,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The H3 grid.
    pub grid: Grid,
    /// Prices per city.
    pub tariffs: TariffBook,
    /// Demand over supply → multiplier.
    pub surge: SurgePolicy,
    /// Span of the demand window.
    pub demand_window: Duration,
}

impl Default for Settings {
    /// The defaults of the flags, with the built-in tariffs.
    fn default() -> Self {
        Settings {
            grid: Grid::default(),
            tariffs: TariffBook::builtin(),
            surge: SurgePolicy::default(),
            demand_window: Duration::from_secs(300),
        }
    }
}

impl PricingArgs {
    /// Validates every flag and loads the tariffs; the error names the bad flag,
    /// or the city and field of a bad tariff.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let grid = Grid::new(self.h3_resolution)?;
        let surge = SurgePolicy::new(self.surge_threshold, self.surge_slope, self.surge_cap)?;
        let w = self.demand_window;
        anyhow::ensure!(
            (MIN_WINDOW..=MAX_WINDOW).contains(&w),
            "--demand-window {w:?} must be from 1s to 24h"
        );
        let tariffs = match &self.tariffs {
            Some(path) => TariffBook::load(path).context("--tariffs")?,
            None => TariffBook::builtin(),
        };
        Ok(Settings {
            grid,
            tariffs,
            surge,
            demand_window: w,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        pricing: PricingArgs,
    }

    fn settings(args: &[&str]) -> anyhow::Result<Settings> {
        let argv = std::iter::once("hail-pricing").chain(args.iter().copied());
        Cli::try_parse_from(argv)?.pricing.settings()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        assert_eq!(settings(&[]).unwrap(), Settings::default());
    }

    #[test]
    fn bad_flags_are_named() {
        let cases = [
            (&["--h3-resolution", "16"][..], "--h3-resolution 16"),
            (&["--surge-cap", "0.5"][..], "--surge-cap 0.5"),
            (&["--surge-slope=-1"][..], "--surge-slope -1"),
            (&["--surge-threshold=-1"][..], "--surge-threshold -1"),
            (&["--demand-window", "500ms"][..], "--demand-window 500ms"),
            (
                &["--tariffs", "/nonexistent.toml"][..],
                "--tariffs: cannot read",
            ),
        ];
        for (args, expected) in cases {
            let e = format!("{:#}", settings(args).unwrap_err());
            assert!(e.starts_with(expected), "{args:?}: {e}");
        }
    }
}
