//! The font of the report's charts. `plotters` draws text with `ab_glyph` from
//! a font it is given (no system font lookup, no fontconfig): DejaVu Sans, from
//! Debian's `fonts-dejavu-core` (which `./dev install` installs), or the file
//! named by `HAIL_REPORT_FONT`.

use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow};
use plotters::style::{FontStyle, register_font};

/// Where Debian's `fonts-dejavu-core` puts DejaVu Sans.
pub const DEJAVU_SANS: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers the font as `sans-serif` (what the charts ask for), once per process.
pub fn register() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| load().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn load() -> Result<()> {
    let path = std::env::var("HAIL_REPORT_FONT").unwrap_or_else(|_| DEJAVU_SANS.to_string());
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "reading the report's font {path}: install Debian's fonts-dejavu-core \
             (`apt-get install fonts-dejavu-core`, or ./dev install) or name a TrueType \
             font in HAIL_REPORT_FONT"
        )
    })?;
    // Registered fonts live as long as the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{path} is not a font ab_glyph can read"))
}
