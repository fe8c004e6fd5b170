//! `bench` end to end: its own nats-server (hail-probe's) and the four real
//! service binaries, started and waited for through `hail_probe::Launch`.

use std::time::Duration;

use hail_loadgen::bench::{self, BenchSettings, Mode};
use hail_loadgen::report::Pipeline;

/// 200 rides as fast as they go, two instances per durable, one broker node.
fn settings(mode: Mode) -> BenchSettings {
    BenchSettings {
        rides: 200,
        mode,
        repeat: 1,
        window: 64,
        poll: Duration::from_millis(50),
        drain_timeout: Duration::from_secs(60),
        instances: 2,
        nodes: 1,
        rate: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_pipelines_drain_every_ride_on_a_private_server() {
    let settings = settings(Mode::Both);
    let report = bench::run(&settings).await.unwrap();
    let pipelines: Vec<Pipeline> = report.runs.iter().map(|r| r.pipeline).collect();
    assert_eq!(pipelines, [Pipeline::Null, Pipeline::Services]);
    for run in &report.runs {
        assert_eq!(run.rides, 200);
        assert!(run.pipeline_rides_per_s > 0.0, "{:?}", run.pipeline);
        // A fresh server per run: RIDES holds this run's requests and no earlier run's.
        let messages = run.stream_messages;
        assert!(
            (200..=200 * 4).contains(&messages),
            "{messages} in {:?}",
            run.pipeline
        );
        let who: Vec<&str> = run.cpu_us_per_ride.keys().map(String::as_str).collect();
        let want: &[&str] = match run.pipeline {
            Pipeline::Null => &["hail-loadgen", "nats-server"],
            Pipeline::Services => &["analytics", "fraud", "matching", "nats-server", "pricing"],
            Pipeline::NullSplit => unreachable!("not in this plan"),
        };
        assert_eq!(who, want, "CPU is read for the broker and each part");
        let total: f64 = run.cpu_us_per_ride.values().sum();
        assert!(
            total > 0.0,
            "{:?} used no CPU: {:?}",
            run.pipeline,
            run.cpu_us_per_ride
        );
        // Each durable's own drain time, the last of them the pipeline's.
        let each = &run.durable_drained_after_s;
        let durables: Vec<&str> = each.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(durables, ["matching", "pricing", "fraud", "analytics"]);
        let last = each.iter().map(|(_, s)| *s).fold(0.0, f64::max);
        assert!(
            each.iter().all(|(_, s)| *s <= run.drained_after_publish_s),
            "{each:?} after {}",
            run.drained_after_publish_s
        );
        assert!(
            (run.drained_after_publish_s - last).abs() < 1e-9,
            "the pipeline drained when its last durable did: {each:?}, {}",
            run.drained_after_publish_s
        );
    }
}

/// `--mode layout`: the null consumers also run as a process per service
/// (two per durable here), drain every ride, and each process's CPU is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_null_consumers_drain_every_ride_as_a_process_each() {
    let settings = settings(Mode::Layout);
    let report = bench::run(&settings).await.unwrap();
    let pipelines: Vec<Pipeline> = report.runs.iter().map(|r| r.pipeline).collect();
    assert_eq!(
        pipelines,
        [Pipeline::Null, Pipeline::NullSplit, Pipeline::Services]
    );
    let split = &report.runs[1];
    // Every ride's request and its three outputs: each null consumer answered.
    assert_eq!(split.stream_messages, 200 * 4);
    let who: Vec<&str> = split.cpu_us_per_ride.keys().map(String::as_str).collect();
    assert_eq!(
        who,
        [
            "nats-server",
            "null-analytics",
            "null-fraud",
            "null-matching",
            "null-pricing"
        ]
    );
    for (who, us) in &split.cpu_us_per_ride {
        assert!(*us > 0.0, "{who} used no CPU: {:?}", split.cpu_us_per_ride);
    }
    assert!(report.null_split_over_null.is_some_and(|r| r > 0.0));
}

/// The same bench on a 3-node cluster on this machine: streams get 3 replicas,
/// the services find every node through the seeds, and the broker's CPU is
/// summed over the nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_pipelines_drain_on_a_three_node_cluster() {
    let settings = BenchSettings {
        rides: 100,
        drain_timeout: Duration::from_secs(120),
        instances: 1,
        nodes: 3,
        ..settings(Mode::Both)
    };
    let report = bench::run(&settings).await.unwrap();
    assert_eq!(report.nodes, 3);
    for run in &report.runs {
        assert_eq!(run.stream_messages, 400, "{:?}", run.pipeline);
        assert!(
            run.cpu_us_per_ride["nats-server"] > 0.0,
            "{:?}",
            run.cpu_us_per_ride
        );
    }
}

/// `--rate`: the rides go out at the given pace, not as fast as the broker
/// takes them, and every answering service's answers are timed in both
/// pipelines, with two instances per durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_run_times_every_answer_in_both_pipelines() {
    let (rides, rate) = (300, 200.0);
    let settings = BenchSettings {
        rides,
        rate: Some(rate),
        ..settings(Mode::Both)
    };
    let report = bench::run(&settings).await.unwrap();
    for run in &report.runs {
        // Paced: the last ride is due (rides - 1) / rate after the first.
        let paced = (rides - 1) as f64 / rate;
        assert!(
            run.pipeline_seconds >= paced,
            "{:?} finished in {:.2} s, before its last ride was due ({paced:.2} s)",
            run.pipeline,
            run.pipeline_seconds
        );
        let services: Vec<&str> = run.latency.keys().map(String::as_str).collect();
        assert_eq!(
            services,
            ["fraud", "matching", "pricing"],
            "{:?}",
            run.pipeline
        );
        for (who, l) in &run.latency {
            assert!(
                l.answers >= rides,
                "{:?}: {who} answered {} of {rides}",
                run.pipeline,
                l.answers
            );
            assert!(
                0.0 < l.p50_ms && l.p50_ms <= l.p99_ms && l.p99_ms <= l.max_ms,
                "{who}: {l:?}"
            );
        }
    }
    for who in ["fraud", "matching", "pricing"] {
        assert!(report.p99_services_over_null[who] > 0.0, "{who}");
    }
}
