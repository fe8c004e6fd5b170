//! analytics' flags, validated once at start.

use std::time::Duration;

use clap::parser::ValueSource;
use hail_runtime::{RuntimeArgs, duration::parse_duration};

/// Deliveries analytics handles at once unless `--concurrency` is given: each
/// waits for the checkpoint that includes it (about one interval), so it takes
/// more of them in flight than a service that answers at once.
pub const DEFAULT_CONCURRENCY: usize = 1024;

/// How analytics checkpoints.
#[derive(Debug, Clone, clap::Args)]
pub struct AnalyticsArgs {
    /// How often the state is written to KV while it changes; a delivery is
    /// acked once a checkpoint includes it, so this is most of its latency.
    #[arg(long, env = "HAIL_ANALYTICS_CHECKPOINT_INTERVAL", default_value = "50ms", value_parser = parse_duration)]
    pub checkpoint_interval: Duration,

    /// Checkpoint early once this many updates wait for one.
    #[arg(long, env = "HAIL_ANALYTICS_CHECKPOINT_EVERY", default_value_t = 1000)]
    pub checkpoint_every: u64,

    /// How long a delivery waits for the checkpoint that includes it before it
    /// is retried (keep it below the ack wait, the first --backoff entry).
    #[arg(long, env = "HAIL_ANALYTICS_CHECKPOINT_TIMEOUT", default_value = "4s", value_parser = parse_duration)]
    pub checkpoint_timeout: Duration,

    /// How often the consumer's ack floor is read to move the coverage floor
    /// past sequences analytics will never see (expired or dead-lettered).
    #[arg(long, env = "HAIL_ANALYTICS_ACK_FLOOR_REFRESH", default_value = "5s", value_parser = parse_duration)]
    pub ack_floor_refresh: Duration,
}

impl AnalyticsArgs {
    /// Refuses settings that cannot work, naming the flag. `ack_wait` is the
    /// consumer's (the first `--backoff` entry): a delivery still waiting for
    /// its checkpoint when it expires is redelivered while it is in flight.
    pub fn validate(&self, ack_wait: Duration) -> Result<(), String> {
        let nonzero = [
            ("--checkpoint-interval", self.checkpoint_interval),
            ("--checkpoint-timeout", self.checkpoint_timeout),
            ("--ack-floor-refresh", self.ack_floor_refresh),
        ];
        if let Some((flag, _)) = nonzero.iter().find(|(_, d)| d.is_zero()) {
            return Err(format!("{flag} must be longer than 0ms"));
        }
        if self.checkpoint_every == 0 {
            return Err("--checkpoint-every must be at least 1, got 0".into());
        }
        if self.checkpoint_timeout <= self.checkpoint_interval {
            return Err(format!(
                "--checkpoint-timeout ({:?}) must be longer than --checkpoint-interval ({:?})",
                self.checkpoint_timeout, self.checkpoint_interval
            ));
        }
        if self.checkpoint_timeout >= ack_wait {
            return Err(format!(
                "--checkpoint-timeout ({:?}) must be shorter than the ack wait, the first --backoff entry ({ack_wait:?})",
                self.checkpoint_timeout
            ));
        }
        Ok(())
    }
}

/// Raises `--concurrency` to [`DEFAULT_CONCURRENCY`] when neither the flag nor
/// `HAIL_CONCURRENCY` set it.
pub fn default_concurrency(source: Option<ValueSource>, runtime: &mut RuntimeArgs) {
    if matches!(source, None | Some(ValueSource::DefaultValue)) {
        runtime.concurrency = DEFAULT_CONCURRENCY;
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        rt: RuntimeArgs,
        #[command(flatten)]
        analytics: AnalyticsArgs,
    }

    fn parse(args: &[&str]) -> Cli {
        let argv = std::iter::once("hail-analytics").chain(args.iter().copied());
        let matches = Cli::command().get_matches_from(argv);
        let mut cli = Cli::from_arg_matches(&matches).unwrap();
        default_concurrency(matches.value_source("concurrency"), &mut cli.rt);
        cli
    }

    #[test]
    fn defaults_are_valid_and_raise_concurrency() {
        let cli = parse(&[]);
        assert_eq!(cli.analytics.validate(cli.rt.ack_wait()), Ok(()));
        assert_eq!(cli.rt.concurrency, DEFAULT_CONCURRENCY);
    }

    #[test]
    fn without_flags_it_binds_the_default_consumer() {
        // What the bench's null pipeline binds in analytics' place.
        let analytics = hail_runtime::service::Service::Analytics;
        let bound = analytics.consumer_spec(&parse(&[]).rt);
        assert_eq!(bound, analytics.default_consumer_spec());
    }

    #[test]
    fn an_explicit_concurrency_is_kept() {
        assert_eq!(parse(&["--concurrency", "64"]).rt.concurrency, 64);
    }

    #[test]
    fn names_the_bad_flag() {
        let err_of = |argv: &[&str]| {
            let cli = parse(argv);
            cli.analytics.validate(cli.rt.ack_wait()).unwrap_err()
        };
        let err = err_of(&["--checkpoint-every", "0"]);
        assert!(err.starts_with("--checkpoint-every"), "{err}");
        let err = err_of(&["--checkpoint-timeout", "10ms"]);
        assert!(err.starts_with("--checkpoint-timeout (10ms)"), "{err}");
        let err = err_of(&["--ack-floor-refresh", "0s"]);
        assert!(err.starts_with("--ack-floor-refresh"), "{err}");
    }

    #[test]
    fn a_checkpoint_timeout_past_the_ack_wait_is_refused() {
        let err = {
            let cli = parse(&["--backoff", "3s,10s", "--checkpoint-timeout", "4s"]);
            cli.analytics.validate(cli.rt.ack_wait()).unwrap_err()
        };
        assert!(err.contains("--checkpoint-timeout (4s)"), "{err}");
        assert!(err.contains("first --backoff entry (3s)"), "{err}");
        let cli = parse(&["--backoff", "5s,10s", "--checkpoint-timeout", "4s"]);
        assert_eq!(cli.analytics.validate(cli.rt.ack_wait()), Ok(()));
    }
}
