//! The report's charts, drawn with `plotters` on any backend (a PNG bitmap, an
//! SVG string): the panels in a 2×2 grid, one line per series (broken where a
//! scrape is missing), the run's marks as red vertical lines.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::series::{Mark, Panel};

/// Series colours, in the order of a panel's series (as the console's).
const COLORS: [RGBColor; 8] = [
    RGBColor(0x3f, 0x7f, 0xd0),
    RGBColor(0xd9, 0x90, 0x2b),
    RGBColor(0x2e, 0x9d, 0x57),
    RGBColor(0xcf, 0x3f, 0x3f),
    RGBColor(0x8e, 0x5c, 0xc2),
    RGBColor(0x1a, 0xa3, 0xa3),
    RGBColor(0xb8, 0x57, 0x9a),
    RGBColor(0x6b, 0x7a, 0x89),
];
const MARK: RGBColor = RGBColor(0xcf, 0x3f, 0x3f);

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws every panel over `[0, span]` seconds into `root`.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Panel],
    marks: &[Mark],
    span: f64,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(44);
    title.draw_text(
        "hail: the run, from Prometheus",
        &("sans-serif", 26).into_font().color(&BLACK),
        (16, 10),
    )?;
    let rows = panels.len().div_ceil(2);
    for (area, panel) in body.split_evenly((rows, 2)).iter().zip(panels) {
        draw_panel(area, panel, marks, span)?;
    }
    Ok(())
}

/// The top of a panel's y axis: a round number above its largest value (1 for a ratio).
fn y_top(panel: &Panel) -> f64 {
    if panel.unit == super::series::Unit::Ratio {
        return 1.0;
    }
    let max = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    nice_ceil(max * 1.05)
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten at or above `v` (1 for nothing).
pub fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// The runs of consecutive points: a gap longer than twice the usual step
/// (a missing scrape, a process down) breaks the line.
pub fn segments(points: &[(f64, f64)]) -> Vec<&[(f64, f64)]> {
    let step = points
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(f64::INFINITY, f64::min);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].0 - points[i - 1].0 > 2.0 * step {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    marks: &[Mark],
    span: f64,
) -> DrawResult<DB> {
    let top = y_top(panel);
    let unit = panel.unit;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..span, 0.0..top)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(0xee, 0xf1, 0xf5))
        .x_desc("seconds into the run")
        .x_labels(8)
        .y_labels(6)
        .y_label_formatter(&|v| unit.format(*v))
        .label_style(("sans-serif", 14))
        .draw()?;
    for m in marks.iter().filter(|m| (0.0..=span).contains(&m.at)) {
        chart.draw_series(LineSeries::new(
            [(m.at, 0.0), (m.at, top)],
            MARK.stroke_width(2),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            m.label.clone(),
            (m.at, top * 0.97),
            ("sans-serif", 14).into_font().color(&MARK),
        )))?;
    }
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = if s.name.ends_with(" p50") {
            color.stroke_width(1)
        } else {
            color.stroke_width(2)
        };
        let mut labelled = false;
        for seg in segments(&s.points) {
            let drawn = chart.draw_series(LineSeries::new(seg.iter().copied(), style))?;
            if !labelled {
                drawn.label(s.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
                labelled = true;
            }
        }
    }
    if !panel.series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xc9, 0xd1, 0xdb))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_tops() {
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(78_000.0), 100_000.0);
        assert_eq!(nice_ceil(1_900.0), 2_000.0);
        assert_eq!(nice_ceil(2_100.0), 2_500.0);
        assert_eq!(nice_ceil(0.012), 0.02);
        assert_eq!(nice_ceil(5.0), 5.0);
    }

    #[test]
    fn a_gap_breaks_the_line() {
        let p = [(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (9.0, 2.0), (10.0, 2.0)];
        let s = segments(&p);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].len(), s[1].len()), (3, 2));
        assert_eq!(segments(&[(0.0, 1.0)]).len(), 1);
        assert!(segments(&[]).is_empty());
    }
}
