//! The benchmark's results: one row per run, the median of each pipeline, and
//! the ratio services/null; as a table and as JSON.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use crate::latency::Summary;

/// Which pipeline a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pipeline {
    /// In-process null consumers: the broker's ceiling.
    Null,
    /// The same null consumers, one process each, as the services run
    /// ([`crate::null_processes`]).
    NullSplit,
    /// The four real service binaries.
    Services,
}

impl Pipeline {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Pipeline::Null => "null",
            Pipeline::NullSplit => "null-split",
            Pipeline::Services => "services",
        }
    }
}

/// One run: a fresh server, N rides, until every durable drained.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// 1-based, in the order run.
    pub run: usize,
    pub pipeline: Pipeline,
    pub rides: u64,
    /// Rides stored per second, from the first publish to the last PubAck.
    pub publish_rides_per_s: f64,
    /// From the first publish until all four durables were drained, seconds.
    pub pipeline_seconds: f64,
    /// `rides / pipeline_seconds`.
    pub pipeline_rides_per_s: f64,
    /// From the last PubAck until all four durables were drained, seconds: at
    /// an open-loop rate the pipeline keeps up with, close to zero.
    pub drained_after_publish_s: f64,
    /// The same for each durable: above the highest rate the pipeline keeps up
    /// with, the one furthest behind drained last.
    pub durable_drained_after_s: Vec<(String, f64)>,
    /// Messages in RIDES at the end (4 per ride: the request and three outputs).
    pub stream_messages: u64,
    /// CPU microseconds per ride while publishing and draining: the broker, and
    /// each service (all its instances) or the load generator itself (null).
    pub cpu_us_per_ride: BTreeMap<String, f64>,
    /// Open-loop runs: each answering service's latency from the rides' due times.
    pub latency: BTreeMap<String, Summary>,
}

/// The medians of one pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Median {
    pub runs: usize,
    pub publish_rides_per_s: f64,
    pub pipeline_rides_per_s: f64,
    /// Open-loop runs: the median over the runs of each service's p99, ms.
    pub p99_ms: BTreeMap<String, f64>,
}

/// All runs and what they add up to.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub rides: u64,
    /// Instances per durable, in both pipelines.
    pub instances: usize,
    /// Broker nodes (1: a single server).
    pub nodes: usize,
    pub runs: Vec<RunResult>,
    pub null: Option<Median>,
    pub null_split: Option<Median>,
    pub services: Option<Median>,
    /// Median pipeline rides/s of services over that of null.
    pub services_over_null: Option<f64>,
    /// Median pipeline rides/s of null-split over that of null: what running
    /// the consumers as four processes costs.
    pub null_split_over_null: Option<f64>,
    /// Open-loop runs: each service's median p99 over the null pipeline's.
    pub p99_services_over_null: BTreeMap<String, f64>,
}

impl BenchReport {
    /// Summarises `runs`.
    pub fn new(rides: u64, instances: usize, nodes: usize, runs: Vec<RunResult>) -> Self {
        let null = median_of(&runs, Pipeline::Null);
        let null_split = median_of(&runs, Pipeline::NullSplit);
        let services = median_of(&runs, Pipeline::Services);
        let over = |a: &Option<Median>, b: &Option<Median>| match (a, b) {
            (Some(a), Some(b)) => Some(a.pipeline_rides_per_s / b.pipeline_rides_per_s),
            _ => None,
        };
        let services_over_null = over(&services, &null);
        let null_split_over_null = over(&null_split, &null);
        let p99_services_over_null = match (&null, &services) {
            (Some(n), Some(s)) => s
                .p99_ms
                .iter()
                .filter_map(|(who, sp)| Some((who.clone(), sp / n.p99_ms.get(who)?)))
                .collect(),
            _ => BTreeMap::new(),
        };
        BenchReport {
            rides,
            instances,
            nodes,
            runs,
            null,
            null_split,
            services,
            services_over_null,
            null_split_over_null,
            p99_services_over_null,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{} instance(s) per durable, {} broker node(s)",
            self.instances, self.nodes
        );
        let _ = writeln!(
            t,
            "{:>3}  {:<10}  {:>8}  {:>15}  {:>16}  {:>9}  {:>13}  {:>8}",
            "run",
            "pipeline",
            "rides",
            "publish rides/s",
            "pipeline rides/s",
            "seconds",
            "drained after",
            "messages"
        );
        for r in &self.runs {
            let _ = writeln!(
                t,
                "{:>3}  {:<10}  {:>8}  {:>15.0}  {:>16.0}  {:>9.2}  {:>11.2} s  {:>8}",
                r.run,
                r.pipeline.as_str(),
                r.rides,
                r.publish_rides_per_s,
                r.pipeline_rides_per_s,
                r.pipeline_seconds,
                r.drained_after_publish_s,
                r.stream_messages
            );
        }
        for r in &self.runs {
            let each = listed(&r.durable_drained_after_s, |(d, s)| format!("{d} {s:.2} s"));
            let _ = writeln!(t, "run {} drained after: {each}", r.run);
        }
        for r in &self.runs {
            for (who, l) in &r.latency {
                let _ = writeln!(
                    t,
                    "run {} {who:<8} answers {:>8}  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
                    r.run, l.answers, l.p50_ms, l.p99_ms, l.max_ms
                );
            }
        }
        let medians = [
            ("null", &self.null),
            ("null-split", &self.null_split),
            ("services", &self.services),
        ];
        for (name, m) in medians {
            if let Some(m) = m {
                let _ = writeln!(
                    t,
                    "median {name:<10} pipeline {:>8.0} rides/s  (publish {:.0} rides/s, {} runs)",
                    m.pipeline_rides_per_s, m.publish_rides_per_s, m.runs
                );
            }
        }
        if let Some(ratio) = self.services_over_null {
            let _ = writeln!(t, "services/null  {ratio:.3}");
        }
        if let Some(ratio) = self.null_split_over_null {
            let _ = writeln!(t, "null-split/null  {ratio:.3}");
        }
        for (name, m) in medians {
            if let Some(m) = m
                && !m.p99_ms.is_empty()
            {
                let p99 = listed(&m.p99_ms, |(who, ms)| format!("{who} {ms:.2}"));
                let _ = writeln!(t, "median p99 ms, {name:<10} {p99}");
            }
        }
        if !self.p99_services_over_null.is_empty() {
            let ratios = listed(&self.p99_services_over_null, |(who, r)| {
                format!("{who} {r:.2}")
            });
            let _ = writeln!(t, "p99 services/null  {ratios}");
        }
        for r in &self.runs {
            if !r.cpu_us_per_ride.is_empty() {
                let cpu = listed(&r.cpu_us_per_ride, |(who, us)| format!("{who} {us:.0}"));
                let _ = writeln!(t, "run {} CPU µs per ride: {cpu}", r.run);
            }
        }
        t
    }
}

fn median_of(runs: &[RunResult], pipeline: Pipeline) -> Option<Median> {
    let of = |f: fn(&RunResult) -> f64| {
        median(
            runs.iter()
                .filter(|r| r.pipeline == pipeline)
                .map(f)
                .collect(),
        )
    };
    let mine: Vec<&RunResult> = runs.iter().filter(|r| r.pipeline == pipeline).collect();
    let services: std::collections::BTreeSet<&String> =
        mine.iter().flat_map(|r| r.latency.keys()).collect();
    let p99_ms = services
        .into_iter()
        .filter_map(|who| {
            let each = mine.iter().filter_map(|r| Some(r.latency.get(who)?.p99_ms));
            Some((who.clone(), median(each.collect())?))
        })
        .collect();
    Some(Median {
        runs: mine.len(),
        publish_rides_per_s: of(|r| r.publish_rides_per_s)?,
        pipeline_rides_per_s: of(|r| r.pipeline_rides_per_s)?,
        p99_ms,
    })
}

/// The median; the mean of the middle two for an even count.
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    })
}

/// Each item shown by `show`, comma-separated.
fn listed<I: IntoIterator>(items: I, show: impl Fn(I::Item) -> String) -> String {
    items.into_iter().map(show).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(run: usize, pipeline: Pipeline, rate: f64) -> RunResult {
        RunResult {
            run,
            pipeline,
            rides: 1000,
            publish_rides_per_s: 2.0 * rate,
            pipeline_seconds: 1000.0 / rate,
            pipeline_rides_per_s: rate,
            drained_after_publish_s: 0.1,
            durable_drained_after_s: Vec::new(),
            stream_messages: 4000,
            cpu_us_per_ride: BTreeMap::new(),
            latency: BTreeMap::new(),
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn ratio_of_medians() {
        let runs = vec![
            run(1, Pipeline::Null, 100.0),
            run(2, Pipeline::Services, 40.0),
            run(3, Pipeline::Null, 120.0),
            run(4, Pipeline::Services, 60.0),
        ];
        let r = BenchReport::new(1000, 1, 1, runs);
        assert_eq!(r.null.as_ref().unwrap().pipeline_rides_per_s, 110.0);
        assert_eq!(r.services.as_ref().unwrap().pipeline_rides_per_s, 50.0);
        assert!((r.services_over_null.unwrap() - 50.0 / 110.0).abs() < 1e-12);
        assert!(r.table().contains("services/null  0.455"), "{}", r.table());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["runs"][1]["pipeline"], "services");
    }

    #[test]
    fn p99_ratio_of_medians_per_service() {
        let with_p99 = |run_no, pipeline, ms: f64| {
            let mut r = run(run_no, pipeline, 100.0);
            let summary = Summary {
                answers: 1000,
                p50_ms: ms / 2.0,
                p99_ms: ms,
                max_ms: ms * 2.0,
            };
            r.latency.insert("pricing".into(), summary);
            r
        };
        let runs = vec![
            with_p99(1, Pipeline::Null, 2.0),
            with_p99(2, Pipeline::Services, 5.0),
            with_p99(3, Pipeline::Null, 4.0),
            with_p99(4, Pipeline::Services, 7.0),
        ];
        let r = BenchReport::new(1000, 1, 1, runs);
        assert_eq!(r.null.as_ref().unwrap().p99_ms["pricing"], 3.0);
        assert_eq!(r.p99_services_over_null["pricing"], 2.0);
        assert!(
            r.table().contains("p99 services/null  pricing 2.00"),
            "{}",
            r.table()
        );
    }

    #[test]
    fn one_pipeline_only_has_no_ratio() {
        let r = BenchReport::new(1000, 1, 1, vec![run(1, Pipeline::Null, 100.0)]);
        assert!(r.services.is_none() && r.services_over_null.is_none());
    }
}
