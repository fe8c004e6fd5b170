//! `hail report` and `hail demo --report`: a self-contained report of a run,
//! from Prometheus range queries over its window and the audit at its end.
//!
//! - [`series`]: the range queries (lag, throughput, latency, match rate) and
//!   their answers as named series of `(seconds into the run, value)`.
//! - [`chart`]: the four panels drawn with `plotters` on any backend, with the
//!   run's marks (analytics killed, restarted) as vertical lines.
//! - [`html`]: the HTML page: the charts as inline SVG, the audit's table, and
//!   every series as JSON (`<script type="application/json" id="hail-series">`).
//! - [`font`]: the one font `plotters` draws text with (DejaVu Sans).
//!
//! The page is written to FILE and the same charts as a PNG beside it (FILE
//! with the extension `.png`).

mod chart;
mod font;
mod html;
mod series;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, ensure};
use async_nats::jetstream;
use plotters::prelude::{BitMapBackend, IntoDrawingArea as _, SVGBackend};

use crate::{audit, audit_check::Report as AuditReport};

pub use series::Mark;

/// Width and height of the charts, in pixels.
const SIZE: (u32, u32) = (1600, 1000);

/// The Prometheus of the local stack (`hail up`).
pub const LOCAL_PROMETHEUS: &str = "http://127.0.0.1:9090";

/// Flags of `hail report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The HTML file to write; the PNG goes beside it (the same name, `.png`).
    file: PathBuf,
    /// Start of the window, unix seconds.
    #[arg(long, value_name = "UNIX_SECONDS")]
    from: f64,
    /// End of the window, unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECONDS")]
    to: Option<f64>,
    /// A moment to mark on the charts, `LABEL@UNIX_SECONDS` (repeatable), e.g.
    /// `"analytics killed@1765000000"`.
    #[arg(long = "mark", value_name = "LABEL@UNIX_SECONDS", value_parser = parse_mark)]
    marks: Vec<Mark>,
    /// Prometheus to read the series from.
    #[arg(long, default_value = LOCAL_PROMETHEUS, env = "HAIL_PROMETHEUS_URL")]
    prometheus_url: String,
}

fn parse_mark(s: &str) -> Result<Mark, String> {
    let (label, at) = s
        .rsplit_once('@')
        .ok_or_else(|| format!("{s:?} is not LABEL@UNIX_SECONDS"))?;
    let at: f64 = at
        .parse()
        .map_err(|_| format!("{at:?} is not unix seconds"))?;
    Ok(Mark {
        label: label.to_string(),
        at,
    })
}

/// The time now, in unix seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `hail report`: audits now, then writes the report of the window.
pub async fn run(js: &jetstream::Context, args: ReportArgs) -> Result<()> {
    let reports = audit::audit(js).await?;
    let to = args.to.unwrap_or_else(unix_now);
    let png = write(
        &args.file,
        &args.prometheus_url,
        args.from,
        to,
        &args.marks,
        &reports,
    )
    .await?;
    println!("report: {} and {}", args.file.display(), png.display());
    Ok(())
}

/// `hail demo --report FILE`: the report of the demo that started at
/// `started` (unix seconds), with analytics killed and restarted at those
/// seconds into it, read from the local stack's Prometheus.
pub async fn for_demo(
    file: &Path,
    started: f64,
    killed_at: u64,
    restarted_at: u64,
    audit: &[AuditReport],
) -> Result<()> {
    let marks = [
        Mark {
            label: "analytics killed".into(),
            at: started + killed_at as f64,
        },
        Mark {
            label: "analytics restarted".into(),
            at: started + restarted_at as f64,
        },
    ];
    // A little before the load, so the charts start from a quiet stack.
    let png = write(
        file,
        LOCAL_PROMETHEUS,
        started - 10.0,
        unix_now(),
        &marks,
        audit,
    )
    .await?;
    eprintln!(
        "==> report of the run: {} (and {})",
        file.display(),
        png.display()
    );
    Ok(())
}

/// Writes the report of `[from, to]` (unix seconds) to `file` and its PNG
/// beside it; returns the PNG's path.
pub async fn write(
    file: &Path,
    prometheus_url: &str,
    from: f64,
    to: f64,
    marks: &[Mark],
    audit: &[AuditReport],
) -> Result<PathBuf> {
    ensure!(to > from, "the report's window is empty ({from} to {to})");
    font::register()?;
    let panels = series::fetch_all(prometheus_url, from, to).await?;
    let marks: Vec<Mark> = marks
        .iter()
        .map(|m| Mark {
            label: m.label.clone(),
            at: m.at - from,
        })
        .collect();
    let span = to - from;
    let png = png_path(file);
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        chart::draw(&root, &panels, &marks, span)
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", png.display()))?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        chart::draw(&root, &panels, &marks, span)
            .map_err(|e| anyhow::anyhow!("drawing the SVG: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("drawing the SVG: {e}"))?;
    }
    let page = html::page(&html::Page {
        from,
        to,
        marks: &marks,
        panels: &panels,
        svg: &svg,
        audit,
        png_name: &png
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })?;
    std::fs::write(file, page).with_context(|| format!("writing {}", file.display()))?;
    Ok(png)
}

/// `report.html` → `report.png`; a name without an extension gets `.png` added.
pub fn png_path(file: &Path) -> PathBuf {
    if file.extension().is_some() {
        file.with_extension("png")
    } else {
        let mut name = file.as_os_str().to_owned();
        name.push(".png");
        PathBuf::from(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_goes_beside_the_page() {
        assert_eq!(
            png_path(Path::new("out/run.html")),
            Path::new("out/run.png")
        );
        assert_eq!(png_path(Path::new("run")), Path::new("run.png"));
    }

    #[test]
    fn marks_are_a_label_and_a_time() {
        let m = parse_mark("analytics killed@1765000000.5").unwrap();
        assert_eq!(
            (m.label.as_str(), m.at),
            ("analytics killed", 1_765_000_000.5)
        );
        assert!(parse_mark("no time").is_err());
        assert!(parse_mark("x@soon").is_err());
    }
}
