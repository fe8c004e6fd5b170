//! ride-view's own flags (beside the runtime's).

use std::time::Duration;

use clap::Args;
use hail_runtime::duration::parse_duration;

/// The longest `--linger` accepted: a writer that waits longer holds its
/// ride's status back from riders for no gain (the services answer within
/// milliseconds).
pub const MAX_LINGER: Duration = Duration::from_secs(1);

/// ride-view's flags.
#[derive(Debug, Clone, Args)]
pub struct RideViewArgs {
    /// How long the writer of a live ride's record waits before writing, so
    /// the services' answers stored right after the request share one write
    /// (0ms: write at once; at most 1s).
    #[arg(long, env = "HAIL_RIDE_VIEW_LINGER", default_value = "20ms", value_parser = parse_duration)]
    pub linger: Duration,
}

impl RideViewArgs {
    /// The flags, checked: an error names the bad flag and its value.
    pub fn validate(&self) -> Result<(), String> {
        if self.linger > MAX_LINGER {
            return Err(format!(
                "--linger {:?}: at most {MAX_LINGER:?} (a ride's status would wait that long)",
                self.linger
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RideViewArgs,
    }

    fn parse(args: &[&str]) -> Result<RideViewArgs, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("hail-ride-view").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        cli.args.validate()?;
        Ok(cli.args)
    }

    #[test]
    fn linger_defaults_to_20ms_and_bad_values_are_named() {
        assert_eq!(parse(&[]).unwrap().linger, Duration::from_millis(20));
        assert_eq!(parse(&["--linger", "0ms"]).unwrap().linger, Duration::ZERO);
        let err = parse(&["--linger", "2s"]).unwrap_err();
        assert!(err.starts_with("--linger 2s"), "{err}");
        let err = parse(&["--linger", "soon"]).unwrap_err();
        assert!(err.contains("soon"), "{err}");
    }
}
