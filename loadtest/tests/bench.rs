//! `bench` end to end: its own nats-server (hail-probe's) and the four real
//! service binaries, started and waited for through `hail_probe::Launch`.

use std::time::Duration;

use hail_loadgen::bench::{self, BenchSettings, Mode};
use hail_loadgen::report::Pipeline;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_pipelines_drain_every_ride_on_a_private_server() {
    let settings = BenchSettings {
        rides: 200,
        mode: Mode::Both,
        repeat: 1,
        window: 64,
        poll: Duration::from_millis(50),
        drain_timeout: Duration::from_secs(60),
        instances: 2,
    };
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
        };
        assert_eq!(who, want, "CPU is read for the broker and each part");
        let total: f64 = run.cpu_us_per_ride.values().sum();
        assert!(
            total > 0.0,
            "{:?} used no CPU: {:?}",
            run.pipeline,
            run.cpu_us_per_ride
        );
    }
}
