//! What one ride costs the generator itself, without the network: the schedule's
//! next arrival, building and encoding the request with its headers, and the
//! ledger's bookkeeping for its PubAck and three answers. The sum bounds the rate
//! one publisher task can sustain.
//!
//! `cargo bench -p hail-loadgen --bench per_ride`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hail_events::{Event, codec, headers};
use hail_loadgen::{
    city::CITIES,
    run::{
        demand::Demand,
        ledger::{Answer, Ledger},
        schedule::{Arrival, Schedule},
    },
};

const T0_MS: u64 = 1_800_000_000_000;

fn schedule(c: &mut Criterion) {
    let mut s = Schedule::new(42, 20_000.0, None, None);
    c.bench_function("schedule/next_arrival", |b| {
        b.iter(|| black_box(s.pop_due(u64::MAX)))
    });
}

fn build(c: &mut Criterion) {
    let demand = Demand::new("bench0001", 42, &CITIES, 4).unwrap();
    let mut i = 0u64;
    c.bench_function("ride/build_encode_headers", |b| {
        b.iter(|| {
            i += 1;
            let ride = demand.ride(i, 0, T0_MS).unwrap();
            let payload = codec::encode(&ride).unwrap();
            black_box((ride.subject(), headers::for_event(&ride), payload))
        })
    });
}

fn ledger(c: &mut Criterion) {
    let mut l = Ledger::new();
    let mut i = 0u64;
    c.bench_function("ledger/stored_and_three_answers", |b| {
        b.iter(|| {
            let at_us = i * 50;
            l.schedule(Arrival { index: i, at_us });
            l.stored(i, at_us + 100, at_us + 1_500, false);
            for a in [Answer::Unmatched, Answer::Priced, Answer::Screened] {
                black_box(l.answer(Some(i), a, at_us + 9_000));
            }
            i += 1;
        })
    });
}

criterion_group!(benches, schedule, build, ledger);
criterion_main!(benches);
