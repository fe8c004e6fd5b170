//! The per-event cost of analytics' pure step: coverage check plus totals
//! update, in order, out of order and for a skipped redelivery; and with the
//! decoding and the shared lock the handler adds around it.
//!
//! `cargo bench -p hail-analytics --bench apply`

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hail_analytics::{event::RideEvent, live::Live, state::State};

const CITIES: usize = 20;

fn apply(c: &mut Criterion) {
    let events = common::events(4096, CITIES);
    let mut g = c.benchmark_group("apply");

    let mut state = common::state(10_000, CITIES, 0);
    let mut seq = state.coverage.floor();
    g.bench_function("in_order", |b| {
        b.iter(|| {
            seq += 1;
            let e = &events[seq as usize % events.len()];
            black_box(state.apply(black_box(seq), e))
        })
    });

    // Sequences arrive shuffled inside windows of 1,024, as concurrent
    // handlers apply them.
    let window: Vec<u64> = shuffled(1024);
    let mut state = common::state(10_000, CITIES, 0);
    let (mut base, mut k) = (state.coverage.floor() + 1, 0usize);
    g.bench_function("out_of_order_window_1024", |b| {
        b.iter(|| {
            let s = base + window[k];
            k += 1;
            if k == window.len() {
                (base, k) = (base + window.len() as u64, 0);
            }
            let e = &events[s as usize % events.len()];
            black_box(state.apply(black_box(s), e))
        })
    });

    let mut state = common::state(10_000, CITIES, 0);
    let mut i = 0usize;
    g.bench_function("redelivery_skipped", |b| {
        b.iter(|| {
            i += 1;
            let e = &events[i % events.len()];
            black_box(state.apply(black_box(1 + (i as u64 % 30_000)), e))
        })
    });
    g.finish();
}

/// What the handler does before it waits: decode by subject, then apply under
/// the shared lock.
fn handler_step(c: &mut Criterion) {
    let outputs: Vec<(String, Vec<u8>)> =
        common::events(4096, CITIES).iter().map(encoded).collect();
    let live = Live::new(State::default(), u64::MAX);
    let mut seq = 0u64;
    c.bench_function("decode_and_live_apply", |b| {
        b.iter(|| {
            seq += 1;
            let (subject, bytes) = &outputs[seq as usize % outputs.len()];
            let e = RideEvent::decode(subject, bytes).unwrap();
            black_box(live.apply(seq, &e))
        })
    });
}

fn encoded(e: &RideEvent) -> (String, Vec<u8>) {
    (e.subject(), e.encode().unwrap().to_vec())
}

/// A fixed permutation of 0..n (xorshift Fisher-Yates).
fn shuffled(n: usize) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n as u64).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

criterion_group!(benches, apply, handler_step);
criterion_main!(benches);
