//! The cost of one checkpoint for a realistic state: the snapshot taken under
//! the lock (a clone), the MessagePack encoding, and the decoding at start.
//! 50 cities, two currencies each, every histogram filled, and 200 runs of
//! out-of-order sequences above the floor (a checkpoint taken mid-burst).
//!
//! `cargo bench -p hail-analytics --bench checkpoint`

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hail_analytics::checkpoint::{Checkpoint, FORMAT};

fn checkpoint(c: &mut Criterion) {
    let cp = Checkpoint {
        format: FORMAT,
        writer: "analytics-host-12345-1800000000000".into(),
        saved_at_ms: 1_800_000_000_000,
        state: common::state(100_000, 50, 200),
    };
    let bytes = cp.encode().unwrap();
    println!(
        "checkpoint: {} cities, {} coverage runs, {} bytes encoded",
        cp.state.cities.len(),
        cp.state.coverage.runs(),
        bytes.len()
    );
    let mut g = c.benchmark_group("checkpoint_50_cities");
    g.bench_function("snapshot_clone", |b| b.iter(|| black_box(cp.state.clone())));
    g.bench_function("encode", |b| b.iter(|| black_box(cp.encode().unwrap())));
    g.bench_function("decode", |b| {
        b.iter(|| black_box(Checkpoint::decode(black_box(&bytes)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, checkpoint);
criterion_main!(benches);
