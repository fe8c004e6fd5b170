//! Logging: level from `RUST_LOG` (default `info`), text or JSON lines on stderr,
//! coloured only on a terminal and never when `NO_COLOR` is set (no-color.org).

use std::ffi::OsString;

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn"));
    // `with_ansi` overrides tracing-subscriber's own NO_COLOR check, so it is
    // checked here.
    let ansi = use_color(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR"),
    );
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(installed);
}

/// Colour only on a terminal, and not when `NO_COLOR` is set to anything but
/// the empty string.
pub fn use_color(is_terminal: bool, no_color: Option<OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_turns_colour_off_on_a_terminal() {
        assert!(use_color(true, None));
        assert!(!use_color(true, Some("1".into())));
        assert!(
            !use_color(true, Some("0".into())),
            "any non-empty value counts"
        );
        assert!(use_color(true, Some("".into())), "empty means unset");
        assert!(!use_color(false, None), "never into a file or pipe");
    }
}
