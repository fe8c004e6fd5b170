//! A real Prometheus for a test: `/usr/bin/prometheus` as a child process on a
//! free loopback port, with a temporary store, hail's rules and hail's consoles.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use hail_testkit::{Process, free_port, http_get};
use serde_json::Value;
use tempfile::TempDir;

use super::{Target, config, deploy_dir, tool};

/// One sample of a query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`__name__` included when the result keeps it).
    pub labels: BTreeMap<String, String>,
    /// Its value (`NaN` and infinities as Prometheus reports them).
    pub value: f64,
}

/// One series of a range query: its labels and its `(unix time, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// Its points in time order (`NaN` and infinities as Prometheus reports them).
    pub points: Vec<(f64, f64)>,
}

/// A running Prometheus, killed on drop, its store removed with it.
pub struct Prometheus {
    process: Process,
    port: u16,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every `interval_seconds`, with the rules
    /// of `deploy/local/prometheus/rules` and the consoles and console libraries
    /// of `deploy/local/prometheus`, listening on 127.0.0.1 only.
    pub fn start(targets: &[Target], interval_seconds: u32) -> Result<Prometheus> {
        let dir = tempfile::Builder::new()
            .prefix("hail-prometheus-")
            .tempdir()
            .context("creating a temp dir for Prometheus")?;
        let deploy = deploy_dir();
        let rules = deploy.join("rules/*.yml");
        let yml = config::render(targets, interval_seconds, &rules.to_string_lossy());
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, yml)
            .with_context(|| format!("writing {}", config_file.display()))?;
        let port = free_port();
        let path_arg = |flag: &str, p: &std::path::Path| format!("--{flag}={}", p.display());
        let args = vec![
            path_arg("config.file", &config_file),
            path_arg("storage.tsdb.path", &dir.path().join("data")),
            format!("--web.listen-address=127.0.0.1:{port}"),
            path_arg("web.console.templates", &deploy.join("consoles")),
            path_arg("web.console.libraries", &deploy.join("console_libraries")),
        ];
        let process = Process::spawn(&tool("prometheus")?, &args, &[])?;
        Ok(Prometheus {
            process,
            port,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything Prometheus logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until `/-/ready` answers 200; fails at once, quoting Prometheus's
    /// log, if it exits first.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        Ok(self
            .process
            .wait_ready(&self.url("/-/ready"), timeout)
            .await?)
    }

    /// Evaluates `expr` now through `/api/v1/query`: a vector's samples, or a
    /// scalar as one sample without labels. A bad query is an error naming it.
    pub async fn query(&self, expr: &str) -> Result<Vec<Sample>> {
        let url = self.url(&format!("/api/v1/query?query={}", percent_encode(expr)));
        let (status, body) = http_get(&url).await?;
        let json: Value = serde_json::from_str(&body)
            .with_context(|| format!("query {expr:?}: answer is not JSON: {body}"))?;
        if status != 200 || json["status"] != "success" {
            bail!("query {expr:?} failed ({status}): {}", json["error"]);
        }
        parse_result(&json["data"]).with_context(|| format!("query {expr:?}: {body}"))
    }
}

impl Prometheus {
    /// Evaluates `expr` from `start` to `end` (unix seconds) every `step` seconds
    /// through `/api/v1/query_range`, as the console's graphs do.
    pub async fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<RangeSeries>> {
        let url = self.url(&format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}",
            percent_encode(expr)
        ));
        let (status, body) = http_get(&url).await?;
        let json: Value = serde_json::from_str(&body)
            .with_context(|| format!("query_range {expr:?}: answer is not JSON: {body}"))?;
        if status != 200 || json["status"] != "success" {
            bail!("query_range {expr:?} failed ({status}): {}", json["error"]);
        }
        parse_matrix(&json["data"]).with_context(|| format!("query_range {expr:?}: {body}"))
    }
}

fn parse_matrix(data: &Value) -> Result<Vec<RangeSeries>> {
    if data["resultType"] != "matrix" {
        bail!("unexpected result type {}", data["resultType"]);
    }
    data["result"]
        .as_array()
        .ok_or_else(|| anyhow!("matrix result is not an array"))?
        .iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .ok_or_else(|| anyhow!("series without values"))?
                .iter()
                .map(|p| {
                    let t = p[0]
                        .as_f64()
                        .ok_or_else(|| anyhow!("point {p} has no time"))?;
                    Ok((t, sample_value(p)?))
                })
                .collect::<Result<_>>()?;
            Ok(RangeSeries {
                labels: serde_json::from_value(s["metric"].clone())?,
                points,
            })
        })
        .collect()
}

fn parse_result(data: &Value) -> Result<Vec<Sample>> {
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => result
            .as_array()
            .ok_or_else(|| anyhow!("vector result is not an array"))?
            .iter()
            .map(|s| {
                Ok(Sample {
                    labels: serde_json::from_value(s["metric"].clone())?,
                    value: sample_value(&s["value"])?,
                })
            })
            .collect(),
        Some("scalar") => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: sample_value(result)?,
        }]),
        other => bail!("unexpected result type {other:?}"),
    }
}

/// `[<unix time>, "<value>"]` → the value.
fn sample_value(pair: &Value) -> Result<f64> {
    let text = pair[1]
        .as_str()
        .ok_or_else(|| anyhow!("sample {pair} has no string value"))?;
    text.parse()
        .with_context(|| format!("sample value {text:?} is not a number"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn percent_encodes_promql() {
        assert_eq!(
            percent_encode(r#"sum by (service) (up{job="a b"}) > 0"#),
            "sum%20by%20%28service%29%20%28up%7Bjob%3D%22a%20b%22%7D%29%20%3E%200"
        );
        assert_eq!(percent_encode("hail:x_y-1.2~"), "hail%3Ax_y-1.2~");
        assert_eq!(percent_encode("×"), "%C3%97");
    }

    #[test]
    fn parses_vectors_and_scalars() {
        let v = json!({"resultType": "vector", "result": [
            {"metric": {"service": "fraud"}, "value": [1.5, "0.25"]},
            {"metric": {}, "value": [1.5, "NaN"]},
        ]});
        let samples = parse_result(&v).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["service"], "fraud");
        assert_eq!(samples[0].value, 0.25);
        assert!(samples[1].value.is_nan());
        let s = json!({"resultType": "scalar", "result": [1.5, "+Inf"]});
        assert_eq!(parse_result(&s).unwrap()[0].value, f64::INFINITY);
        let m = json!({"resultType": "matrix", "result": []});
        assert!(parse_result(&m).is_err());
    }

    #[test]
    fn parses_matrices() {
        let m = json!({"resultType": "matrix", "result": [
            {"metric": {"service": "analytics"}, "values": [[10, "1"], [11.5, "250"]]},
        ]});
        let series = parse_matrix(&m).unwrap();
        assert_eq!(series[0].labels["service"], "analytics");
        assert_eq!(series[0].points, [(10.0, 1.0), (11.5, 250.0)]);
        assert!(parse_matrix(&json!({"resultType": "vector", "result": []})).is_err());
    }
}
