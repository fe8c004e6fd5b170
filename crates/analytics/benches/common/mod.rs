//! Realistic events and states for the benchmarks.

use hail_analytics::{event::RideEvent, state::State};
use hail_events::{
    City, DriverId, RideId, RideMatched, RideScreened, RideUnmatched, RiderId, UnmatchedReason,
    Verdict, sample,
};

/// `n` cities named `city-0`…
pub fn city(i: usize, n: usize) -> String {
    format!("city-{}", i % n)
}

/// The events of ride `i` in one of `cities` cities, as the pipeline makes them:
/// request, match (nine in ten) or not, quote, verdict.
pub fn ride_events(i: usize, cities: usize) -> Vec<RideEvent> {
    let c = city(i, cities);
    let req = sample::ride_requested(&format!("r{i}"), &c);
    let id = RideId::new(format!("r{i}")).unwrap();
    let city = City::new(c.as_str()).unwrap();
    let outcome = if i % 10 == 3 {
        RideEvent::Unmatched(RideUnmatched {
            ride_id: id.clone(),
            city: city.clone(),
            reason: UnmatchedReason::NoDriverInRadius,
            requested_at_ms: req.requested_at_ms,
            at_ms: req.requested_at_ms + 20,
        })
    } else {
        RideEvent::Matched(RideMatched {
            ride_id: id.clone(),
            city: city.clone(),
            driver_id: DriverId::new(format!("d{i}")).unwrap(),
            pickup_distance_m: 500.0,
            eta_s: 120,
            requested_at_ms: req.requested_at_ms,
            matched_at_ms: req.requested_at_ms + (i as u64 % 300) * 9,
        })
    };
    let mut fare = sample::fare_quoted(&format!("r{i}"), &c);
    fare.amount_minor = 600 + (i as u64 % 97) * 53;
    fare.surge = 1.0 + (i % 5) as f64 * 0.3;
    if i % 4 == 1 {
        fare.currency = "GBP".into();
    }
    let screened = RideScreened {
        ride_id: id,
        city,
        rider_id: RiderId::new(format!("u{i}")).unwrap(),
        score: 0.2,
        verdict: [Verdict::Allow, Verdict::Review, Verdict::Block][i % 3],
        rules: vec![],
        requested_at_ms: req.requested_at_ms,
        at_ms: req.requested_at_ms + 15,
    };
    vec![
        RideEvent::Requested(req),
        outcome,
        RideEvent::Priced(fare),
        RideEvent::Screened(screened),
    ]
}

/// The events of `rides` rides over `cities` cities, in stream order.
pub fn events(rides: usize, cities: usize) -> Vec<RideEvent> {
    (0..rides).flat_map(|i| ride_events(i, cities)).collect()
}

/// A state that has seen `rides` rides over `cities` cities, its coverage
/// holding `runs` out-of-order runs above the floor.
pub fn state(rides: usize, cities: usize, runs: usize) -> State {
    let mut s = State::default();
    let events = events(rides, cities);
    let gap_every = events.len() / (runs + 1);
    let mut seq = 0;
    for (k, e) in events.iter().enumerate() {
        seq += 1;
        if runs > 0 && k > 0 && k % gap_every == 0 && k / gap_every <= runs {
            seq += 1; // leave a hole: the run above it stays separate
        }
        s.apply(seq, e);
    }
    s
}
