//! The report as one HTML file: no script, no stylesheet or image from
//! elsewhere. The charts are inline SVG; the audit is a table (`id="audit"`,
//! one row per service with `data-service`); every series is also kept as JSON
//! in `<script type="application/json" id="hail-series">`, for whoever wants
//! the numbers behind the lines.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use super::series::{Mark, Panel};
use crate::audit_check::Report as AuditReport;

/// What the page shows.
#[derive(Debug)]
pub struct Page<'a> {
    /// The window, unix seconds.
    pub from: f64,
    pub to: f64,
    /// Marks, in seconds into the run.
    pub marks: &'a [Mark],
    pub panels: &'a [Panel],
    /// The charts, as `plotters`' SVG backend drew them.
    pub svg: &'a str,
    pub audit: &'a [AuditReport],
    /// File name of the PNG beside the page.
    pub png_name: &'a str,
}

#[derive(Serialize)]
struct Data<'a> {
    from: f64,
    to: f64,
    marks: &'a [Mark],
    panels: &'a [Panel],
}

/// The page's HTML.
pub fn page(p: &Page<'_>) -> Result<String> {
    let holds = p.audit.iter().all(|r| r.holds);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>hail: report of the run</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>hail: report of the run</h1>\n<p class=\"what\">{} to {} ({:.0} s), from \
         Prometheus' recording rules; the same charts as a picture: <a href=\"{}\">{}</a>.</p>\n",
        utc(p.from),
        utc(p.to),
        p.to - p.from,
        escape(p.png_name),
        escape(p.png_name),
    );
    if !p.marks.is_empty() {
        out.push_str("<ul class=\"marks\">\n");
        for m in p.marks {
            let _ = writeln!(out, "<li>{:.0} s: {}</li>", m.at, escape(&m.label));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<div class=\"charts\">\n");
    // plotters' SVG starts with an XML declaration, which has no place inline.
    let svg = p.svg.find("<svg").map_or(p.svg, |at| &p.svg[at..]);
    out.push_str(svg);
    out.push_str("\n</div>\n");
    let _ = write!(
        out,
        "<h2>Audit: {}</h2>\n<p class=\"what\">For every service, requests published = effects + \
         dead-lettered + pending, with no duplicates and nothing lost to RIDES' retention.</p>\n",
        if holds { "holds" } else { "DOES NOT HOLD" }
    );
    out.push_str(&audit_table(p.audit));
    let data = serde_json::to_string(&Data {
        from: p.from,
        to: p.to,
        marks: p.marks,
        panels: p.panels,
    })?;
    // JSON inside a script element: "</" would end it.
    let _ = write!(
        out,
        "<script type=\"application/json\" id=\"hail-series\">{}</script>\n</body>\n</html>\n",
        data.replace("</", "<\\/")
    );
    Ok(out)
}

fn audit_table(reports: &[AuditReport]) -> String {
    let mut out = String::from(
        "<table id=\"audit\">\n<tr><th>service</th><th>published</th><th>effects</th><th>dlq</th>\
         <th>pending</th><th>duplicates</th><th>unaccounted</th><th>lost</th><th>holds</th></tr>\n",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "<tr data-service=\"{s}\"><td>{s}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            r.published,
            r.effects,
            r.dead_lettered,
            r.pending,
            r.duplicates,
            r.unaccounted,
            r.lost,
            if r.holds { "yes" } else { "no" },
            if r.holds { "yes" } else { "NO" },
            s = escape(&r.service),
        );
    }
    out.push_str("</table>\n");
    out
}

/// `unix` seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(unix: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64).map_or_else(
        |_| format!("{unix:.0}"),
        |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        },
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{margin:0;padding:20px 28px;font:14px/1.4 'DejaVu Sans',Arial,sans-serif;\
color:#1d2733;background:#fff}h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:24px 0 4px}\
.what{color:#5b6877;margin:0 0 10px}.marks{color:#cf3f3f;margin:0 0 10px}\
.charts svg{max-width:100%;height:auto}table{border-collapse:collapse}\
th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #e4e8ed}\
th:first-child,td:first-child{text-align:left}td.no{color:#cf3f3f;font-weight:600}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::series::{Series, Unit};

    fn audit(service: &str, holds: bool) -> AuditReport {
        AuditReport {
            service: service.into(),
            published: 10,
            effects: 9,
            dead_lettered: 1,
            holds,
            ..AuditReport::default()
        }
    }

    #[test]
    fn holds_the_charts_the_audit_and_the_series() {
        let panels = [Panel {
            title: "Lag".into(),
            unit: Unit::Messages,
            series: vec![Series {
                name: "analytics</script>".into(),
                points: vec![(0.0, 1.0), (1.0, 5.0)],
            }],
        }];
        let marks = [Mark {
            label: "analytics killed".into(),
            at: 20.0,
        }];
        let audit = [audit("matching", true), audit("analytics", false)];
        let html = page(&Page {
            from: 1_765_000_000.0,
            to: 1_765_000_060.0,
            marks: &marks,
            panels: &panels,
            svg: "<?xml version=\"1.0\"?>\n<svg width=\"10\"></svg>",
            audit: &audit,
            png_name: "run.png",
        })
        .unwrap();
        assert!(html.contains("<div class=\"charts\">\n<svg width=\"10\"></svg>"));
        assert!(!html.contains("<?xml"));
        assert!(html.contains("<tr data-service=\"analytics\"><td>analytics</td><td>10</td>"));
        assert!(html.contains("Audit: DOES NOT HOLD"));
        assert!(html.contains("2025-12-06 05:46:40 UTC to 2025-12-06 05:47:40 UTC"));
        let json = html.split("id=\"hail-series\">").nth(1).unwrap();
        let json = json
            .split("</script>")
            .next()
            .unwrap()
            .replace("<\\/", "</");
        let data: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(data["panels"][0]["series"][0]["points"][1][1], 5.0);
        assert_eq!(data["marks"][0]["label"], "analytics killed");
    }
}
