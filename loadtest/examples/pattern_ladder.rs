//! What hail's message pattern costs the broker, one part at a time.
//!
//! A minimal plain async-nats pipeline (no codec, no domain work): one
//! publisher, four durable pull consumers; three publish a 200 B output per
//! request (PubAck awaited before the ack, 256 in flight, a unique
//! `Nats-Msg-Id` on every publish), the fourth reads requests and outputs.
//! With no parts it is the broker's bare ceiling for the pattern (the same
//! program as the `jsceiling pipeline-id` measuring tool); each part
//! named moves it one step toward what hail's null pipeline does:
//!
//! - `stream`: RIDES' limits (`max_age` 24 h, `max_bytes` 8 GiB, discard old);
//!   `age` or `bytes` alone are the limits one at a time.
//! - `filters`: hail's subjects and consumer filters (matching filters three
//!   subjects, analytics `rides.>`).
//! - `headers`: the four headers every hail event carries beside its id
//!   (`Hail-Event`, `Content-Type`, `traceparent`, `Hail-Ride-Id`).
//! - `fence`: the first delivery's condition on every answer
//!   (`Nats-Expected-Last-Subject-Sequence` 0 on `fence.<service>.<ride>`).
//! - `consumer`: the durables' `max_deliver` and backoff, and analytics as a
//!   pinned priority group.
//! - `defaults`: the services' default batch (256) and `max_ack_pending` (4,096)
//!   instead of 1,000 and 10,000.
//!
//! ```sh
//! nats-server -js -a 127.0.0.1 -p 14999 -sd "$(mktemp -d)" &
//! cargo run --release -p hail-loadgen --example pattern_ladder -- \
//!     nats://127.0.0.1:14999 50000 stream,filters,headers
//! ```
//!
//! Prints rides/s from the first publish until every consumer has read all it
//! expects. Each run deletes and recreates the stream `LADDER`.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use async_nats::{
    HeaderMap,
    jetstream::{self, AckKind, consumer::pull, stream},
};
use futures::{StreamExt, stream::FuturesUnordered};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const PARTS: [&str; 8] = [
    "stream", "age", "bytes", "filters", "headers", "fence", "consumer", "defaults",
];
const SIZE: usize = 200;
const IN_FLIGHT: usize = 256;
const SERVICES: [&str; 3] = ["matching", "pricing", "fraud"];
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[derive(Clone, Copy)]
struct Parts {
    age: bool,
    bytes: bool,
    filters: bool,
    headers: bool,
    fence: bool,
    consumer: bool,
    defaults: bool,
}

impl Parts {
    fn parse(list: &str) -> Result<Parts, String> {
        let names: Vec<&str> = list.split(',').filter(|s| !s.is_empty()).collect();
        if let Some(bad) = names.iter().find(|n| !PARTS.contains(n)) {
            return Err(format!("unknown part {bad:?}: expected some of {PARTS:?}"));
        }
        let has = |n: &str| names.contains(&n);
        Ok(Parts {
            age: has("stream") || has("age"),
            bytes: has("stream") || has("bytes"),
            filters: has("filters"),
            headers: has("headers"),
            fence: has("fence"),
            consumer: has("consumer"),
            defaults: has("defaults"),
        })
    }

    fn request_subject(&self, i: u64) -> String {
        let prefix = if self.filters {
            "rides.requested"
        } else {
            "ladder.req"
        };
        format!("{prefix}.c{}", i % 16)
    }

    fn answer_subject(&self, consumer: usize, city: &str) -> String {
        let kinds = ["rides.unmatched", "rides.priced", "rides.screened"];
        if self.filters {
            format!("{}.{city}", kinds[consumer])
        } else {
            format!("ladder.out.{consumer}.{city}")
        }
    }

    fn stream(&self) -> stream::Config {
        let mut c = stream::Config {
            name: "LADDER".into(),
            subjects: if self.filters {
                vec!["rides.>".into(), "fence.>".into()]
            } else {
                vec!["ladder.>".into()]
            },
            ..Default::default()
        };
        if self.age {
            c.max_age = Duration::from_secs(86_400);
        }
        if self.bytes {
            c.max_bytes = 8 * 1024 * 1024 * 1024;
            c.discard = stream::DiscardPolicy::Old;
        }
        c
    }

    fn consumer(&self, i: usize) -> pull::Config {
        let reads_all = i == 3;
        let mut c = pull::Config {
            durable_name: Some(format!("c{i}")),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: if self.defaults { 4096 } else { 10_000 },
            ..Default::default()
        };
        c.filter_subjects = match (self.filters, i) {
            (true, 0) => [
                "rides.requested.>",
                "rides.completed.>",
                "rides.cancelled.>",
            ]
            .map(String::from)
            .to_vec(),
            (true, _) if reads_all => vec!["rides.>".into()],
            (true, _) => vec!["rides.requested.>".into()],
            (false, _) if reads_all => vec!["ladder.>".into()],
            (false, _) => vec!["ladder.req.>".into()],
        };
        if self.consumer {
            c.max_deliver = 5;
            c.backoff = [5, 10, 30, 60].map(Duration::from_secs).to_vec();
            if reads_all {
                c.priority_policy = jetstream::consumer::PriorityPolicy::PinnedClient;
                c.priority_groups = vec!["one".into()];
                c.priority_timeout = Duration::from_secs(5);
            }
        }
        c
    }

    fn event_headers(&self, h: &mut HeaderMap, event: &str, ride: &str) {
        if self.headers {
            h.insert("Hail-Event", event);
            h.insert("Content-Type", "application/msgpack");
            h.insert("traceparent", TRACEPARENT);
            h.insert("Hail-Ride-Id", ride);
        }
    }
}

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(rides)) = (args.get(1), args.get(2)) else {
        return Err("usage: pattern_ladder <nats-url> <rides> [part,part,...]".into());
    };
    let rides: u64 = rides.parse().map_err(|e| format!("rides {rides:?}: {e}"))?;
    let names = args.get(3).map_or("", String::as_str);
    let parts = Parts::parse(names)?;
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client);
    let _ = js.delete_stream("LADDER").await;
    let stream = js.create_stream(parts.stream()).await?;
    let mut consumers = Vec::new();
    for i in 0..4 {
        stream.create_consumer(parts.consumer(i)).await?;
        let own = jetstream::new(async_nats::connect(url).await?);
        consumers.push(tokio::spawn(consume(own, parts, i, rides)));
    }
    let t0 = Instant::now();
    let payload = bytes::Bytes::from(vec![7u8; SIZE]);
    let mut window = VecDeque::new();
    for i in 0..rides {
        let ride = format!("ladder-{i}");
        let mut h = HeaderMap::new();
        parts.event_headers(&mut h, "RideRequested", &ride);
        h.insert("Nats-Msg-Id", format!("requested:{ride}").as_str());
        let ack = js
            .publish_with_headers(parts.request_subject(i), h, payload.clone())
            .await?;
        window.push_back(ack);
        if window.len() >= IN_FLIGHT
            && let Some(oldest) = window.pop_front()
        {
            oldest.await?;
        }
    }
    while let Some(ack) = window.pop_front() {
        ack.await?;
    }
    for c in consumers {
        c.await??;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let shown = if names.is_empty() { "ceiling" } else { names };
    println!(
        "parts={shown} rides={rides} seconds={seconds:.2} rides_per_s={:.0}",
        rides as f64 / seconds
    );
    js.delete_stream("LADDER").await?;
    Ok(())
}

/// Consumer `i`: 0–2 answer each request, 3 reads everything.
async fn consume(js: jetstream::Context, parts: Parts, i: usize, rides: u64) -> Res<()> {
    let consumer: jetstream::consumer::PullConsumer = js
        .get_stream("LADDER")
        .await?
        .get_consumer(&format!("c{i}"))
        .await?;
    let batch = if parts.defaults { 256 } else { 1000 };
    let mut pull = consumer.stream().max_messages_per_batch(batch);
    if parts.consumer && i == 3 {
        let expires = Duration::from_millis(2500);
        pull = pull.group("one").expires(expires).heartbeat(expires / 4);
    }
    let mut messages = pull.messages().await?;
    let expect = if i == 3 { 4 * rides } else { rides };
    let answer = bytes::Bytes::from(vec![9u8; SIZE]);
    let mut in_flight = FuturesUnordered::new();
    for got in 0..expect {
        let m = messages.next().await.ok_or("the pull stream ended")??;
        if i == 3 {
            m.ack().await?;
            continue;
        }
        // The ride's id from its header when events carry one; else any unique id.
        let ride = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Hail-Ride-Id"))
            .map_or_else(|| format!("{i}-{got}"), |v| v.as_str().to_string());
        let city = m.subject.rsplit('.').next().unwrap_or("c0").to_string();
        let mut h = HeaderMap::new();
        parts.event_headers(&mut h, "Answer", &ride);
        h.insert("Nats-Msg-Id", format!("{}:{ride}", SERVICES[i]).as_str());
        if parts.fence {
            h.insert("Nats-Expected-Last-Subject-Sequence", "0");
            let fence = format!("fence.{}.{ride}", SERVICES[i]);
            h.insert(
                "Nats-Expected-Last-Subject-Sequence-Subject",
                fence.as_str(),
            );
        }
        let stored = js
            .publish_with_headers(parts.answer_subject(i, &city), h, answer.clone())
            .await?;
        in_flight.push(async move {
            stored.await?;
            m.ack_with(AckKind::Ack).await
        });
        while in_flight.len() >= IN_FLIGHT {
            in_flight.next().await.transpose()?;
        }
    }
    while in_flight.next().await.transpose()?.is_some() {}
    Ok(())
}
