//! The report's data: Prometheus range queries over the run's window (the
//! recording rules of `deploy/local/prometheus/rules`, as the console's graphs
//! read them), each answer a set of named series.

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;
use serde_json::Value;

/// A moment of the run marked on every chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    /// What happened, e.g. `analytics killed`.
    pub label: String,
    /// When: unix seconds as given, seconds into the run once in a report.
    pub at: f64,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The service or city, and the quantile when the panel has several.
    pub name: String,
    /// `(seconds into the run, value)`, in time order; a missing scrape is a
    /// missing point.
    pub points: Vec<(f64, f64)>,
}

/// How a panel's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A count of messages.
    Messages,
    /// Per second.
    PerSecond,
    /// Seconds.
    Seconds,
    /// A ratio drawn as a percentage.
    Ratio,
}

impl Unit {
    /// `v` in this unit, short, for an axis.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Messages | Unit::PerSecond => {
                let s = if v.abs() >= 1e6 {
                    format!("{:.1}M", v / 1e6)
                } else if v.abs() >= 1e3 {
                    format!("{:.1}k", v / 1e3)
                } else {
                    format!("{v:.0}")
                };
                if self == Unit::PerSecond {
                    format!("{s}/s")
                } else {
                    s
                }
            }
            Unit::Seconds if v < 1.0 => format!("{:.0}ms", v * 1000.0),
            Unit::Seconds => format!("{v:.1}s"),
            Unit::Ratio => format!("{:.0}%", v * 100.0),
        }
    }
}

/// One chart: a title, a unit and its series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Panel {
    /// Its title.
    pub title: String,
    /// The unit of its values.
    pub unit: Unit,
    /// Its lines, sorted by name.
    pub series: Vec<Series>,
}

/// What a panel asks Prometheus: each query with the label that names its
/// series and a suffix for the name (the quantile), if any.
struct PanelQuery {
    title: &'static str,
    unit: Unit,
    queries: &'static [(&'static str, &'static str, &'static str)],
}

const PANELS: [PanelQuery; 4] = [
    PanelQuery {
        title: "Lag per service (messages)",
        unit: Unit::Messages,
        queries: &[("hail:consumer_lag_messages:max", "service", "")],
    },
    PanelQuery {
        title: "Throughput per service (processed, over 1m)",
        unit: Unit::PerSecond,
        queries: &[("hail:processed:rate1m", "service", "")],
    },
    PanelQuery {
        title: "End-to-end latency per service (p50, p99, over 1m)",
        unit: Unit::Seconds,
        queries: &[
            ("hail:e2e_latency_seconds:p50", "service", " p50"),
            ("hail:e2e_latency_seconds:p99", "service", " p99"),
        ],
    },
    PanelQuery {
        title: "Match rate (matched / answered, over 1m)",
        unit: Unit::Ratio,
        queries: &[
            ("hail:matching_match_ratio_overall:rate1m", "", "all cities"),
            ("hail:matching_match_ratio:rate1m", "city", ""),
        ],
    },
];

/// Seconds between points: about 300 points over the window, at least 1 s.
pub fn step(from: f64, to: f64) -> f64 {
    ((to - from) / 300.0).ceil().max(1.0)
}

/// Every panel of the report over `[from, to]` (unix seconds).
pub async fn fetch_all(prometheus: &str, from: f64, to: f64) -> Result<Vec<Panel>> {
    let step = step(from, to);
    let mut panels = Vec::new();
    for p in &PANELS {
        let mut series = Vec::new();
        for &(query, label, suffix) in p.queries {
            let url = format!(
                "{}/api/v1/query_range?query={}&start={from:.3}&end={to:.3}&step={step}",
                prometheus.trim_end_matches('/'),
                percent_encode(query)
            );
            let (status, body) = hail_probe::http_get(&url)
                .await
                .with_context(|| format!("asking Prometheus at {prometheus} for {query}"))?;
            if status != 200 {
                bail!("Prometheus at {prometheus} answered {status} to {query}: {body}");
            }
            series.extend(parse(&body, label, suffix, from).with_context(|| query.to_string())?);
        }
        series.sort_by(|a, b| a.name.cmp(&b.name));
        panels.push(Panel {
            title: p.title.to_string(),
            unit: p.unit,
            series,
        });
    }
    Ok(panels)
}

/// A `query_range` answer as series named by `label` (or by `suffix` alone
/// when `label` is empty) plus `suffix`, their times made relative to `from`.
/// Points that are not numbers (`NaN`: a ratio of nothing) are left out.
pub fn parse(body: &str, label: &str, suffix: &str, from: f64) -> Result<Vec<Series>> {
    let json: Value = serde_json::from_str(body).context("Prometheus' answer is not JSON")?;
    if json["status"] != "success" {
        bail!("query failed: {}", json["error"]);
    }
    let result = json["data"]["result"]
        .as_array()
        .ok_or_else(|| anyhow!("no result in {body}"))?;
    result
        .iter()
        .map(|s| {
            let name = if label.is_empty() {
                suffix.to_string()
            } else {
                format!("{}{suffix}", s["metric"][label].as_str().unwrap_or("?"))
            };
            let mut points = Vec::new();
            for p in s["values"].as_array().into_iter().flatten() {
                let t = p[0]
                    .as_f64()
                    .ok_or_else(|| anyhow!("point {p} has no time"))?;
                let v: f64 = p[1]
                    .as_str()
                    .ok_or_else(|| anyhow!("point {p} has no value"))?
                    .parse()
                    .with_context(|| format!("point {p}"))?;
                if v.is_finite() {
                    points.push((t - from, v));
                }
            }
            Ok(Series { name, points })
        })
        .collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_series_by_label_and_suffix_relative_to_the_start() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"service":"analytics"},"values":[[100,"5"],[102,"NaN"],[104,"7.5"]]},
            {"metric":{"service":"fraud"},"values":[[100,"0"]]}]}}"#;
        let s = parse(body, "service", " p99", 90.0).unwrap();
        assert_eq!(s[0].name, "analytics p99");
        assert_eq!(s[0].points, [(10.0, 5.0), (14.0, 7.5)]);
        assert_eq!(s[1].name, "fraud p99");
        let all = parse(body, "", "all cities", 100.0).unwrap();
        assert_eq!(all[0].name, "all cities");
        assert!(parse(r#"{"status":"error","error":"bad"}"#, "x", "", 0.0).is_err());
    }

    #[test]
    fn about_300_points_per_window() {
        assert_eq!(step(0.0, 60.0), 1.0);
        assert_eq!(step(0.0, 900.0), 3.0);
        assert_eq!(step(0.0, 1000.0), 4.0);
    }

    #[test]
    fn units_read_short() {
        assert_eq!(Unit::Messages.format(78_000.0), "78.0k");
        assert_eq!(Unit::PerSecond.format(950.0), "950/s");
        assert_eq!(Unit::Seconds.format(0.012), "12ms");
        assert_eq!(Unit::Seconds.format(2.5), "2.5s");
        assert_eq!(Unit::Ratio.format(0.874), "87%");
        assert_eq!(percent_encode("a:b{c=\"d\"}"), "a%3Ab%7Bc%3D%22d%22%7D");
    }
}
