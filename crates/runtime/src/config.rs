//! Settings every service shares, from flags or environment variables, validated
//! once at start.

use std::{net::SocketAddr, time::Duration};

use crate::{duration::parse_duration, fault::FaultArgs, replicas::Replicas};

/// The defaults of the flags, one definition each: the flags below show them,
/// and [`crate::service::Service::default_consumer_spec`] and
/// [`crate::provision::StreamSettings::default`] build what the services bind
/// and create when no flag is given.
pub mod defaults {
    /// `--batch`.
    pub const BATCH: usize = 256;
    /// `--concurrency`.
    pub const CONCURRENCY: usize = 256;
    /// `--max-ack-pending`.
    pub const MAX_ACK_PENDING: i64 = 4096;
    /// `--max-deliver`.
    pub const MAX_DELIVER: i64 = 5;
    /// `--backoff`, as written on the command line; see [`backoff`].
    pub const BACKOFF: &str = "5s,10s,30s,60s";
    /// `--rides-max-age`, as written on the command line; see [`rides_max_age`].
    pub const RIDES_MAX_AGE: &str = "24h";
    /// `--duplicate-window`, as written on the command line; see [`duplicate_window`].
    pub const DUPLICATE_WINDOW: &str = "2m";
    /// `--rides-max-bytes`: 8 GiB.
    pub const RIDES_MAX_BYTES: i64 = 8 * 1024 * 1024 * 1024;
    /// Replicas of [`crate::provision::StreamSettings::default`]: a single
    /// server's; `--replicas` defaults to `auto` ([`crate::replicas::Replicas`]).
    pub const REPLICAS: usize = crate::replicas::SINGLE;
    /// How long the pinned instance of a one-active group (analytics) may go
    /// without pulling before the server pins another
    /// ([`crate::provision::ConsumerSpec::pinned`]).
    pub const PINNED_TTL: std::time::Duration = std::time::Duration::from_secs(5);

    /// [`BACKOFF`] parsed.
    pub fn backoff() -> Vec<std::time::Duration> {
        BACKOFF
            .split(',')
            .map(|d| super::parse_duration(d).expect("the default --backoff parses"))
            .collect()
    }

    /// [`DUPLICATE_WINDOW`] parsed.
    pub fn duplicate_window() -> std::time::Duration {
        super::parse_duration(DUPLICATE_WINDOW).expect("the default --duplicate-window parses")
    }

    /// [`RIDES_MAX_AGE`] parsed.
    pub fn rides_max_age() -> std::time::Duration {
        super::parse_duration(RIDES_MAX_AGE).expect("the default --rides-max-age parses")
    }
}

/// Refuses a `--max-deliver` and `--backoff` that cannot shape a consumer,
/// naming the flag (the services and `hail provision`).
pub fn validate_consumer(max_deliver: i64, backoff: &[Duration]) -> Result<(), String> {
    if max_deliver < 2 {
        return Err(format!(
            "--max-deliver must be at least 2, got {max_deliver}"
        ));
    }
    if backoff.is_empty() || backoff.len() as i64 >= max_deliver {
        return Err(format!(
            "--backoff needs 1 to {} entries (fewer than --max-deliver {max_deliver}), got {}",
            max_deliver - 1,
            backoff.len()
        ));
    }
    if backoff.iter().any(|d| d.is_zero()) {
        return Err("--backoff entries must be longer than 0s".into());
    }
    Ok(())
}

/// Refuses a `--duplicate-window` longer than `--rides-max-age` or zero.
pub fn validate_streams(duplicate_window: Duration, rides_max_age: Duration) -> Result<(), String> {
    if duplicate_window.is_zero() || duplicate_window > rides_max_age {
        return Err(format!(
            "--duplicate-window must be longer than 0s and at most --rides-max-age ({rides_max_age:?}), got {duplicate_window:?}"
        ));
    }
    Ok(())
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The runtime's flags; each service flattens them into its own `clap` parser.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// NATS server URL (several may be given, comma-separated).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Address of the /metrics, /healthz and /readyz HTTP server [default: 127.0.0.1:<service port>].
    #[arg(long, env = "HAIL_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Give up connecting to NATS at start after this long.
    #[arg(long, env = "HAIL_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Messages requested per pull.
    #[arg(long, env = "HAIL_BATCH", default_value_t = defaults::BATCH)]
    pub batch: usize,

    /// Messages handled at once by this process.
    #[arg(long, env = "HAIL_CONCURRENCY", default_value_t = defaults::CONCURRENCY)]
    pub concurrency: usize,

    /// Unacknowledged messages the server lets the whole consumer group hold.
    #[arg(long, env = "HAIL_MAX_ACK_PENDING", default_value_t = defaults::MAX_ACK_PENDING)]
    pub max_ack_pending: i64,

    /// Deliveries of one message before it is dead-lettered.
    #[arg(long, env = "HAIL_MAX_DELIVER", default_value_t = defaults::MAX_DELIVER)]
    pub max_deliver: i64,

    /// Redelivery delays after a failed or timed-out delivery (fewer entries than --max-deliver).
    #[arg(long, env = "HAIL_BACKOFF", default_value = defaults::BACKOFF, value_delimiter = ',', value_parser = parse_duration)]
    pub backoff: Vec<Duration>,

    /// How long RIDES keeps messages; a consumer down longer than this loses them.
    #[arg(long, env = "HAIL_RIDES_MAX_AGE", default_value = defaults::RIDES_MAX_AGE, value_parser = parse_duration)]
    pub rides_max_age: Duration,

    /// Largest size of RIDES in bytes before the oldest messages are discarded.
    #[arg(long, env = "HAIL_RIDES_MAX_BYTES", default_value_t = defaults::RIDES_MAX_BYTES)]
    pub rides_max_bytes: i64,

    /// How long every stream remembers a `Nats-Msg-Id`, so that a retried publish
    /// is stored once. No guarantee rests on it: an answer is stored at most once
    /// per ride at any age (see docs/DESIGN.md, "Exactly once").
    #[arg(long, env = "HAIL_DUPLICATE_WINDOW", default_value = defaults::DUPLICATE_WINDOW, value_parser = parse_duration)]
    pub duplicate_window: Duration,

    /// Replicas of every stream and KV bucket: a number, or `auto` (3 on a
    /// cluster, 1 on a single server); more than the cluster's nodes is refused.
    #[arg(long, env = "HAIL_REPLICAS", default_value = "auto")]
    pub replicas: Replicas,

    /// Time allowed for in-flight messages to finish on SIGTERM.
    #[arg(long, env = "HAIL_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "HAIL_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Name of this instance in logs and the services API [default: <host>-<pid>].
    #[arg(long, env = "HAIL_INSTANCE")]
    pub instance: Option<String>,

    /// `--creds`, `--user`, `--nkey`, `--tls-ca`…, under their own help heading.
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,

    /// Testing only: the `--fault-*` flags, under their own help heading.
    #[command(flatten)]
    pub faults: FaultArgs,
}

impl RuntimeArgs {
    /// How long a delivery may stay unacked before the server redelivers it.
    pub fn ack_wait(&self) -> Duration {
        crate::provision::ack_wait(&self.backoff)
    }

    /// Refuses settings that cannot work, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("--batch", self.batch as i64),
            ("--concurrency", self.concurrency as i64),
            ("--max-ack-pending", self.max_ack_pending),
        ];
        if let Some((flag, v)) = positive.iter().find(|(_, v)| *v < 1) {
            return Err(format!("{flag} must be at least 1, got {v}"));
        }
        validate_consumer(self.max_deliver, &self.backoff)?;
        self.faults.validate()?;
        validate_streams(self.duplicate_window, self.rides_max_age)
    }

    /// This instance's name.
    pub fn instance_name(&self, service: &str) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
            format!("{service}-{host}-{}", std::process::id())
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        rt: RuntimeArgs,
    }

    /// The runtime's flags parsed from `args` (without the program name).
    pub(crate) fn parse(args: &[&str]) -> RuntimeArgs {
        Cli::parse_from(std::iter::once("svc").chain(args.iter().copied())).rt
    }

    #[test]
    fn defaults_are_valid() {
        let rt = parse(&[]);
        assert_eq!(rt.validate(), Ok(()));
        assert_eq!(rt.backoff.len(), 4);
    }

    #[test]
    fn the_flags_default_to_the_defaults() {
        let rt = parse(&[]);
        assert_eq!(rt.backoff, defaults::backoff());
        assert_eq!(rt.rides_max_age, defaults::rides_max_age());
        assert_eq!(rt.max_deliver, defaults::MAX_DELIVER);
        assert_eq!(rt.max_ack_pending, defaults::MAX_ACK_PENDING);
        assert_eq!(rt.rides_max_bytes, defaults::RIDES_MAX_BYTES);
        assert_eq!(
            (rt.batch, rt.concurrency),
            (defaults::BATCH, defaults::CONCURRENCY)
        );
    }

    #[test]
    fn fault_flags_have_a_help_heading_of_their_own() {
        use clap::CommandFactory as _;
        /// A service's parser: the runtime's flags, then its own.
        #[derive(Parser)]
        struct Service {
            #[command(flatten)]
            rt: RuntimeArgs,
            #[arg(long)]
            own: bool,
        }
        let help = Service::command().render_help().to_string();
        let (before, testing) = help
            .split_once("Testing only (fault injection):")
            .unwrap_or_else(|| panic!("no fault heading in {help}"));
        assert!(testing.contains("--fault-retry-rate") && testing.contains("--fault-hang-rate"));
        assert!(!before.contains("--fault-"), "{help}");
        assert!(!testing.contains("--instance"), "{help}");
        assert!(
            !testing.contains("--own"),
            "a service's own flags stay out: {help}"
        );
    }

    #[test]
    fn names_the_bad_flag() {
        let err = parse(&["--max-deliver", "3"]).validate().unwrap_err();
        assert!(err.starts_with("--backoff"), "{err}");
        let err = parse(&["--batch", "0"]).validate().unwrap_err();
        assert!(err.starts_with("--batch"), "{err}");
        let err = parse(&["--fault-hang-rate", "2"]).validate().unwrap_err();
        assert!(err.starts_with("--fault-hang-rate"), "{err}");
    }
}
