//! matching's own flags, validated once at start into [`Settings`].

use std::{path::PathBuf, time::Duration};

use hail_runtime::{RuntimeArgs, duration::parse_duration};

use crate::{claims::Lifetimes, eta::UrbanSpeed, service_area::ServiceAreas};

/// Largest search radius accepted, in metres.
pub const MAX_RADIUS_M: f64 = 100_000.0;

/// How matching picks drivers; flattened into the binary's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MatchingArgs {
    /// Search radius around the pickup, in metres (haversine distance).
    #[arg(long, env = "HAIL_MATCHING_RADIUS_M", default_value_t = 3000.0)]
    pub radius_m: f64,

    /// Average urban driving speed for the pickup ETA, in km/h.
    #[arg(long, env = "HAIL_MATCHING_SPEED_KMH", default_value_t = 20.0)]
    pub speed_kmh: f64,

    /// Drivers a request tries to claim before it gives up as all_nearby_claimed
    /// (a claim fails when another instance took the driver first).
    #[arg(long, env = "HAIL_MATCHING_MAX_CLAIM_ATTEMPTS", default_value_t = 32)]
    pub max_claim_attempts: u32,

    /// The longest a driver stays claimed by a ride that nothing releases (a ride
    /// that never completes, a request dead-lettered after its claim, a failed
    /// release): the driver is offered again at most this long after its claim.
    /// Set it to the longest ride you run; a completion or cancellation releases
    /// the driver before.
    #[arg(long, env = "HAIL_MATCHING_CLAIM_TTL", default_value = "2h", value_parser = parse_duration)]
    pub claim_ttl: Duration,

    /// How long a ride's answer, and the fact that it finished, are kept in the
    /// claims bucket so that every later delivery of its request gets the same
    /// answer. At least --rides-max-age (the default), so that no request still in
    /// RIDES can outlive it, and at least --claim-ttl.
    #[arg(long, env = "HAIL_MATCHING_FORGET_AFTER", value_parser = parse_duration)]
    pub forget_after: Option<Duration>,

    /// Cities file: each city's service area as a polygon (TOML; see
    /// deploy/local/cities.toml). A pickup outside its city's area is answered
    /// unmatched as outside_service_area. Without it, or for a city it does not
    /// list, every pickup is served.
    #[arg(long, env = "HAIL_MATCHING_CITIES", value_name = "FILE")]
    pub cities: Option<PathBuf>,
}

/// How a request is matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Search radius in metres.
    pub radius_m: f64,
    /// Speed for the ETA.
    pub speed: UrbanSpeed,
    /// Claims tried per request.
    pub max_claim_attempts: u32,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How requests are matched.
    pub policy: Policy,
    /// How long the claims bucket keeps claims and records.
    pub lifetimes: Lifetimes,
    /// Where each city is served.
    pub areas: ServiceAreas,
}

impl MatchingArgs {
    /// Checks every flag against the others and the runtime's, naming the bad one,
    /// and loads the cities file (an error names its city and field).
    pub fn validate(&self, runtime: &RuntimeArgs) -> Result<Settings, String> {
        if !(self.radius_m.is_finite() && self.radius_m > 0.0 && self.radius_m <= MAX_RADIUS_M) {
            return Err(format!(
                "--radius-m must be within (0, {MAX_RADIUS_M}], got {}",
                self.radius_m
            ));
        }
        let speed =
            UrbanSpeed::from_kmh(self.speed_kmh).map_err(|e| format!("--speed-kmh: {e}"))?;
        if self.max_claim_attempts == 0 {
            return Err("--max-claim-attempts must be at least 1, got 0".into());
        }
        let lifetimes = self.lifetimes(runtime)?;
        let areas = match &self.cities {
            Some(path) => ServiceAreas::load(path).map_err(|e| format!("--cities: {e}"))?,
            None => ServiceAreas::none(),
        };
        Ok(Settings {
            areas,
            policy: Policy {
                radius_m: self.radius_m,
                speed,
                max_claim_attempts: self.max_claim_attempts,
            },
            lifetimes,
        })
    }

    /// The claim TTL and record lifetime, checked against each other and RIDES.
    fn lifetimes(&self, runtime: &RuntimeArgs) -> Result<Lifetimes, String> {
        let claim_ttl = self.claim_ttl;
        if claim_ttl < Duration::from_secs(1) {
            return Err(format!(
                "--claim-ttl must be at least 1s, got {claim_ttl:?}"
            ));
        }
        let forget_after = self.forget_after.unwrap_or(runtime.rides_max_age);
        let redeliveries: Duration = runtime.backoff.iter().sum();
        let floor = [
            claim_ttl,
            runtime.rides_max_age,
            redeliveries + Duration::from_secs(1),
        ]
        .into_iter()
        .max()
        .unwrap_or_default();
        if forget_after < floor {
            return Err(format!(
                "--forget-after ({forget_after:?}) must be at least --claim-ttl ({claim_ttl:?}), \
                 --rides-max-age ({:?}) and longer than the whole --backoff schedule ({redeliveries:?})",
                runtime.rides_max_age
            ));
        }
        Ok(Lifetimes {
            claim_ttl,
            forget_after,
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
        matching: MatchingArgs,
        #[command(flatten)]
        runtime: RuntimeArgs,
    }

    fn validate(args: &[&str]) -> Result<Settings, String> {
        let cli = Cli::parse_from(std::iter::once("hail-matching").chain(args.iter().copied()));
        cli.matching.validate(&cli.runtime)
    }

    #[test]
    fn defaults_are_valid() {
        let s = validate(&[]).unwrap();
        assert_eq!(s.policy.radius_m, 3000.0);
        assert_eq!(s.policy.max_claim_attempts, 32);
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(s.lifetimes.claim_ttl, Duration::from_secs(2 * 3600));
        assert_eq!(s.lifetimes.forget_after, day, "RIDES' max age");
        assert_eq!(s.areas, ServiceAreas::none());
    }

    #[test]
    fn without_flags_it_binds_the_default_consumer() {
        // What the bench's null pipeline binds in matching's place.
        let cli = Cli::parse_from(["hail-matching"]);
        let matching = hail_runtime::service::Service::Matching;
        let bound = matching.consumer_spec(&cli.runtime);
        assert_eq!(bound, matching.default_consumer_spec());
    }

    #[test]
    fn names_the_bad_flag() {
        let cases: [(&[&str], &str); 9] = [
            (&["--radius-m", "0"], "--radius-m"),
            (&["--radius-m", "NaN"], "--radius-m"),
            (&["--speed-kmh=-3"], "--speed-kmh"),
            (&["--max-claim-attempts", "0"], "--max-claim-attempts"),
            (&["--forget-after", "90s"], "--forget-after"),
            (&["--claim-ttl", "0s"], "--claim-ttl"),
            (
                &["--forget-after", "1h", "--rides-max-age", "2h"],
                "--forget-after",
            ),
            (
                &["--claim-ttl", "3h", "--forget-after", "2h"],
                "--forget-after",
            ),
            (
                &["--cities", "/nonexistent.toml"],
                "--cities: cannot read the cities file /nonexistent.toml",
            ),
        ];
        for (args, flag) in cases {
            let err = validate(args).unwrap_err();
            assert!(err.starts_with(flag), "{args:?}: {err}");
        }
        let short = [
            "--forget-after",
            "90s",
            "--backoff",
            "1s,2s",
            "--claim-ttl",
            "5s",
        ];
        let ok = validate(&[&short[..], &["--rides-max-age", "90s"]].concat());
        assert!(ok.is_ok(), "{ok:?}");
        let lifetimes = ok.unwrap().lifetimes;
        assert_eq!(lifetimes.claim_ttl, Duration::from_secs(5));
        assert_eq!(lifetimes.forget_after, Duration::from_secs(90));
        let rides = validate(&["--rides-max-age", "48h"]).unwrap();
        assert_eq!(rides.lifetimes.forget_after, Duration::from_secs(48 * 3600));
    }
}
