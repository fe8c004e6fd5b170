//! The `run` subcommand's flags, checked once at start.

use std::{path::PathBuf, time::Duration};

use anyhow::{Result, ensure};
use clap::Args;
use hail_runtime::duration::parse_duration;

use super::{
    day::{self, Day},
    fleet::{FleetSettings, ONLINE_CHANCE, city_speed_mps, mean_trip_scale},
    riders::RiderMix,
};
use crate::{
    city::{CityModel, distinct, parse_city},
    rides::random_run_id,
};

/// The duration of a run given neither `--duration` nor `--rides`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// Highest `--rate` accepted, rides per second.
const MAX_RATE: f64 = 1_000_000.0;

/// Flags of `hail-loadgen run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// NATS server URL, or several seeds comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Target rides per second, all cities together (Poisson arrivals, open loop).
    #[arg(long, env = "HAIL_LOADGEN_RATE", default_value_t = 200.0, value_parser = positive)]
    pub rate: f64,
    /// How long to request rides [default: 60s unless --rides is given].
    #[arg(long, env = "HAIL_LOADGEN_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many rides (or at --duration if that comes first).
    #[arg(long, env = "HAIL_LOADGEN_RIDES", value_parser = clap::value_parser!(u64).range(1..))]
    pub rides: Option<u64>,
    /// Cities to request rides in (known: berlin, paris, london, nyc).
    #[arg(long, env = "HAIL_LOADGEN_CITIES", default_value = "berlin,paris,london,nyc", value_delimiter = ',', value_parser = parse_city)]
    pub cities: Vec<CityModel>,
    /// Demand hotspots per city; 80 % of pickups are drawn around them.
    #[arg(long, env = "HAIL_LOADGEN_HOTSPOTS", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub hotspots: u64,
    /// Drivers per city (ids `d-<city>-<n>`, the same in every run) [default: sized
    /// to the demand: the wave's peak rate times the mean trip time, over
    /// --utilization, plus the drivers offline].
    #[arg(long, env = "HAIL_LOADGEN_DRIVERS_PER_CITY", value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub drivers_per_city: Option<u64>,
    /// Share of the fleet on a trip at the wave's peak that the default fleet size aims at.
    #[arg(long, env = "HAIL_LOADGEN_UTILIZATION", default_value_t = DEFAULT_UTILIZATION, value_parser = share_above_zero)]
    pub utilization: f64,
    /// How often a moving driver (on a trip or repositioning) reports its location.
    #[arg(long, env = "HAIL_LOADGEN_DRIVER_INTERVAL", default_value = "4s", value_parser = parse_duration)]
    pub driver_interval: Duration,
    /// A waiting driver reports every this many intervals.
    #[arg(long, env = "HAIL_LOADGEN_IDLE_EVERY", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub idle_every: u64,
    /// Speed of drivers repositioning, km/h [default: the city's speed, a trip of
    /// the mean length (6.25 km) in --trip-seconds].
    #[arg(long, env = "HAIL_LOADGEN_DRIVER_SPEED_KMH", value_parser = positive)]
    pub driver_speed_kmh: Option<f64>,
    /// Mean trip time in seconds (each trip: this times its length over the mean
    /// length). Time is compressed: 3 s stand for a trip of about 15 minutes.
    #[arg(long, env = "HAIL_LOADGEN_TRIP_SECONDS", default_value_t = 3.0, value_parser = positive)]
    pub trip_seconds: f64,
    /// Height of the rush-hour wave in the middle of the run: at its peak demand is
    /// 1 + this times its off-peak level (0: a constant rate). --rate stays the mean.
    #[arg(long, env = "HAIL_LOADGEN_WAVE", default_value_t = day::WAVE_AMPLITUDE, value_parser = non_negative)]
    pub wave: f64,
    /// Chance per reporting round that a waiting driver goes offline (for about
    /// four rounds).
    #[arg(long, env = "HAIL_LOADGEN_OFFLINE_CHANCE", default_value_t = 0.02, value_parser = share)]
    pub offline_chance: f64,
    /// Share of matched rides whose rider cancels before the pickup.
    #[arg(long, env = "HAIL_LOADGEN_CANCEL_SHARE", default_value_t = 0.03, value_parser = share)]
    pub cancel_share: f64,
    /// pricing's surge cap, for the report's share of rides at the cap.
    #[arg(long, env = "HAIL_LOADGEN_SURGE_CAP", default_value_t = 3.0, value_parser = positive)]
    pub surge_cap: f64,
    /// Ordinary riders rides are drawn from (a large pool: repeat riders are rare).
    #[arg(long, env = "HAIL_LOADGEN_RIDERS", default_value_t = RiderMix::default().pool)]
    pub riders: u64,
    /// Share of rides, 0 to 1, requested by a fraud ring that shares devices and
    /// cards across cities, so fraud's rules fire on them.
    #[arg(long, env = "HAIL_LOADGEN_FRAUD_RING_SHARE", default_value_t = RiderMix::default().ring_share)]
    pub fraud_ring_share: f64,
    /// Riders in the fraud ring.
    #[arg(long, env = "HAIL_LOADGEN_FRAUD_RING_RIDERS", default_value_t = RiderMix::default().ring_riders)]
    pub fraud_ring_riders: u64,
    /// Seed of the city layout, the fleet and the schedule.
    #[arg(long, env = "HAIL_LOADGEN_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Prefix of the ride ids (`<run-id>-<i>`) [default: 8 random hex digits].
    #[arg(long, env = "HAIL_LOADGEN_RUN_ID")]
    pub run_id: Option<String>,
    /// Most rides awaiting their PubAck; a ride due when it is full fails as `backpressure`.
    #[arg(long, env = "HAIL_LOADGEN_WINDOW", default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub window: u64,
    /// Longest wait for missing answers after the last ride.
    #[arg(long, env = "HAIL_LOADGEN_SETTLE", default_value = "10s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Print the report as JSON on stdout (the text report goes to stderr).
    #[arg(long, env = "HAIL_LOADGEN_JSON")]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, env = "HAIL_LOADGEN_REPORT")]
    pub report: Option<PathBuf>,
    /// Give up reaching NATS after this long.
    #[arg(long, env = "HAIL_LOADGEN_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// How rides are requested: `nats` (published to RIDES) or `http`
    /// (POSTed to hail-gateway, each with an Idempotency-Key).
    #[arg(long, env = "HAIL_LOADGEN_VIA", value_enum, default_value = "nats")]
    pub via: super::http::Via,
    /// The gateway's URL, with `--via http`.
    #[arg(
        long,
        env = "HAIL_GATEWAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub gateway_url: String,
}

/// The fleet's default size aims at this share of drivers busy at the wave's peak.
pub const DEFAULT_UTILIZATION: f64 = 0.5;

/// A share from 0 to 1.
fn share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share from 0 to 1")),
    }
}

/// A share above 0, at most 1.
fn share_above_zero(s: &str) -> Result<f64, String> {
    match share(s) {
        Ok(v) if v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a share above 0, at most 1")),
    }
}

/// A finite number of at least zero.
fn non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of at least 0")),
    }
}

/// A finite number above zero.
fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// The checked settings of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub nats_url: String,
    pub rate: f64,
    pub duration: Option<Duration>,
    pub rides: Option<u64>,
    pub cities: Vec<CityModel>,
    pub hotspots: usize,
    pub riders: RiderMix,
    pub drivers_per_city: usize,
    pub driver_interval: Duration,
    pub idle_every: u64,
    pub driver_speed_kmh: f64,
    pub trip_seconds: f64,
    /// The run's day: its length and wave.
    pub day: Day,
    pub offline_chance: f64,
    pub cancel_share: f64,
    pub surge_cap: f64,
    pub seed: u64,
    pub run_id: String,
    pub window: usize,
    pub settle: Duration,
    pub connect_timeout: Duration,
    /// Credentials and TLS (the global `--creds`, `--user`… flags).
    pub auth: hail_runtime::auth::AuthArgs,
    /// NATS or the gateway, and the gateway's URL.
    pub via: super::http::Via,
    pub gateway_url: String,
}

impl RunArgs {
    /// Checks what clap cannot and fills in the defaults that depend on other flags.
    pub fn config(&self) -> Result<RunConfig> {
        ensure!(
            self.rate <= MAX_RATE,
            "--rate must be at most {MAX_RATE}, got {}",
            self.rate
        );
        ensure!(
            self.duration.is_none_or(|d| !d.is_zero()),
            "--duration must be longer than 0s"
        );
        ensure!(
            self.driver_interval >= Duration::from_millis(10),
            "--driver-interval must be at least 10ms, got {:?}",
            self.driver_interval
        );
        let riders = RiderMix {
            pool: self.riders,
            ring_share: self.fraud_ring_share,
            ring_riders: self.fraud_ring_riders,
        };
        riders.check()?;
        let duration = match (self.duration, self.rides) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        };
        // The day is the run: its duration, or the time its rides take at the rate.
        let day_us = match (duration, self.rides) {
            (Some(d), _) => d.as_micros() as u64,
            (None, Some(n)) => (n as f64 / self.rate * 1e6) as u64,
            (None, None) => unreachable!("a run has a duration or a ride count"),
        };
        let day = Day::with_wave(day_us, self.wave);
        let cities = distinct(self.cities.clone());
        let drivers_per_city = match self.drivers_per_city {
            Some(n) => n as usize,
            None => fleet_size(
                self.rate * day.peak_factor() / cities.len() as f64,
                self.trip_seconds,
                self.utilization,
                self.offline_chance,
            ),
        };
        let speed = self
            .driver_speed_kmh
            .unwrap_or(city_speed_mps(self.trip_seconds) * 3.6);
        Ok(RunConfig {
            nats_url: self.nats_url.clone(),
            rate: self.rate,
            duration,
            rides: self.rides,
            cities,
            hotspots: self.hotspots as usize,
            riders,
            drivers_per_city,
            driver_interval: self.driver_interval,
            idle_every: self.idle_every,
            driver_speed_kmh: speed,
            trip_seconds: self.trip_seconds,
            day,
            offline_chance: self.offline_chance,
            cancel_share: self.cancel_share,
            surge_cap: self.surge_cap,
            seed: self.seed,
            run_id: self.run_id.clone().unwrap_or_else(random_run_id),
            window: self.window as usize,
            settle: self.settle,
            connect_timeout: self.connect_timeout,
            auth: hail_runtime::auth::AuthArgs::default(),
            via: self.via,
            gateway_url: self.gateway_url.trim_end_matches('/').to_string(),
        })
    }
}

impl RunConfig {
    /// The fleet's part of the settings.
    pub fn fleet(&self) -> FleetSettings {
        FleetSettings {
            per_city: self.drivers_per_city,
            interval: self.driver_interval,
            trip_seconds: self.trip_seconds,
            speed_mps: self.driver_speed_kmh / 3.6,
            seed: self.seed,
            idle_every: self.idle_every,
            offline_chance: self.offline_chance,
            cancel_share: self.cancel_share,
        }
    }
}

/// Drivers a city needs for `peak_rate` rides per second: the drivers busy at
/// the peak (each ride takes a driver for the mean trip time), over the target
/// `utilization`, plus the share that is offline at any time. At least 10.
pub fn fleet_size(
    peak_rate: f64,
    trip_seconds: f64,
    utilization: f64,
    offline_chance: f64,
) -> usize {
    let busy = peak_rate * trip_seconds * mean_trip_scale();
    let settings_offline = offline_chance / (offline_chance + ONLINE_CHANCE);
    let n = busy / utilization / (1.0 - settings_offline);
    (n.ceil() as usize).clamp(10, 100_000)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunConfig> {
        let cli = Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))?;
        cli.run.config()
    }

    #[test]
    fn defaults_and_bounds() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.duration, Some(DEFAULT_DURATION));
        assert_eq!((c.rate, c.seed), (200.0, 42));
        // 200 rides/s over 4 cities, 1.55 times that at the peak, 3 s a ride,
        // 50 % busy, 7 % offline: about 500 drivers a city.
        assert!(
            (450..550).contains(&c.drivers_per_city),
            "{}",
            c.drivers_per_city
        );
        let c = parse(&["--drivers-per-city", "300"]).unwrap();
        assert_eq!(c.drivers_per_city, 300);
        assert_eq!(c.cities.len(), 4);
        assert_eq!(c.run_id.len(), 8);
        // --rides alone: no time bound.
        let c = parse(&["--rides", "10"]).unwrap();
        assert_eq!((c.duration, c.rides), (None, Some(10)));
        let c = parse(&["--rides", "10", "--duration", "3s"]).unwrap();
        assert_eq!(c.duration, Some(Duration::from_secs(3)));
        assert!((c.fleet().speed_mps - 6_250.0 / 3.0).abs() < 1e-6);
        let c = parse(&["--driver-speed-kmh", "30"]).unwrap();
        assert!((c.fleet().speed_mps - 30.0 / 3.6).abs() < 1e-9);
    }

    #[test]
    fn bad_flags_are_named() {
        for (args, flag) in [
            (&["--rate", "0"][..], "--rate"),
            (&["--rate", "NaN"], "--rate"),
            (&["--rate", "2000000"], "--rate"),
            (&["--duration", "0s"], "--duration"),
            (&["--trip-seconds=-1"], "--trip-seconds"),
            (&["--driver-interval", "1ms"], "--driver-interval"),
            (&["--rides", "0"], "--rides"),
            (&["--cities", "tokyo"], "--cities"),
            (&["--window", "0"], "--window"),
            (&["--utilization", "0"], "--utilization"),
            (&["--cancel-share", "1.5"], "--cancel-share"),
            (&["--wave=-1"], "--wave"),
        ] {
            let err = format!("{:#}", parse(args).unwrap_err());
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }
}
