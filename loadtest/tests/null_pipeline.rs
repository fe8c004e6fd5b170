//! The null pipeline against a real nats-server: every ride read by all four
//! durables, three outputs per ride, nothing left pending.

use std::{collections::BTreeMap, time::Duration};

use futures::TryStreamExt;
use hail_events::subjects;
use hail_loadgen::{
    city::CITIES,
    drain,
    null_pipeline::{NullPipeline, NullStats},
    publisher::{self, PublishSettings},
    rides::RideFactory,
};
use hail_runtime::service::Service;
use hail_testkit::NatsServer;

const RIDES: u64 = 2_000;

/// Messages in RIDES per subject kind (`requested`, `priced`…).
async fn counts_by_kind(js: &async_nats::jetstream::Context) -> BTreeMap<String, u64> {
    let stream = js.get_stream(subjects::RIDES_STREAM).await.unwrap();
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(subjects::RIDES_ALL)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for (subject, n) in subjects {
        let kind = subject.split('.').nth(1).unwrap().to_string();
        *counts.entry(kind).or_default() += n as u64;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ride_is_read_by_all_four_and_answered_by_three() {
    let nats = NatsServer::start().unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = publisher::context(client, 512);
    hail_runtime::provision::ensure_streams(
        &js,
        &hail_runtime::provision::StreamSettings::default(),
    )
    .await
    .unwrap();
    let pipeline = NullPipeline::start(&nats.url(), 1).await.unwrap();

    let factory = RideFactory::new("t1", &CITIES).unwrap();
    let settings = PublishSettings {
        rides: RIDES,
        window: 512,
        progress: false,
        pace: None,
    };
    let report = publisher::publish(&js, &factory, &settings).await.unwrap();
    assert_eq!(
        (report.published, report.failed, report.duplicates),
        (RIDES, 0, 0)
    );

    let durables = Service::ALL.map(Service::durable);
    drain::wait_drained(
        &js,
        &durables,
        Duration::from_millis(100),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let stats = pipeline.stop().await;

    for b in drain::backlogs(&js, &durables).await.unwrap() {
        assert_eq!((b.num_pending, b.num_ack_pending), (0, 0), "{b:?}");
    }
    let counts = counts_by_kind(&js).await;
    let expected: BTreeMap<String, u64> = ["priced", "requested", "screened", "unmatched"]
        .into_iter()
        .map(|k| (k.to_string(), RIDES))
        .collect();
    assert_eq!(counts, expected);
    assert_eq!(
        stats,
        NullStats {
            // matching, pricing and fraud ack each request; analytics every message.
            acked: 3 * RIDES + 4 * RIDES,
            published: 3 * RIDES,
            errors: 0,
        }
    );
}

#[tokio::test]
async fn failed_publishes_are_counted_not_hidden() {
    // No stream: every publish is refused (no responders).
    let nats = NatsServer::start().unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = publisher::context(client, 8);
    let factory = RideFactory::new("t2", &CITIES).unwrap();
    let settings = PublishSettings {
        rides: 20,
        window: 8,
        progress: false,
        pace: None,
    };
    let report = publisher::publish(&js, &factory, &settings).await.unwrap();
    assert_eq!((report.published, report.failed), (0, 20));
    let (kind, (n, _)) = report.errors.iter().next().unwrap();
    assert_eq!(
        (kind.as_str(), *n),
        ("StreamNotFound", 20),
        "{:?}",
        report.errors
    );
}
