//! The baseline every handler pays: decoding its input and encoding its output.
//! Run beside the services' own benches so their per-event costs read against it.

use criterion::{Criterion, criterion_group, criterion_main};
use hail_events::{RideRequested, codec, headers, sample};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let ride = sample::ride_requested("bench-1", "berlin");
    let bytes = codec::encode(&ride).unwrap();
    c.bench_function("decode RideRequested", |b| {
        b.iter(|| codec::decode::<RideRequested>(black_box(&bytes)).unwrap())
    });
    let fare = sample::fare_quoted("bench-1", "berlin");
    c.bench_function("encode FareQuoted + headers", |b| {
        b.iter(|| {
            (
                codec::encode(black_box(&fare)).unwrap(),
                headers::for_event(black_box(&fare)),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
