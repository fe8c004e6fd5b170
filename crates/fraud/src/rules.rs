//! The rules, each a pure function of one request and the history before it.
//!
//! "Before" is in event time (`requested_at_ms`, ties by ride), never wall-clock
//! time or arrival order: a redelivered request is judged exactly as the first
//! time, and a request that arrives late does not change how earlier ones were
//! judged.

use crate::history::{History, Sighting, Use};

/// A rule's name is a fixed, small set: safe as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The card is on the blocklist.
    BlocklistedCard,
    /// The rider asked for more rides in the window than allowed.
    Velocity,
    /// The pickup is farther from the rider's previous pickup than anyone could travel.
    ImpossibleTravel,
    /// Many distinct riders on one device.
    SharedDevice,
    /// Many distinct riders on one card.
    SharedCard,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 5] = [
        Rule::BlocklistedCard,
        Rule::Velocity,
        Rule::ImpossibleTravel,
        Rule::SharedDevice,
        Rule::SharedCard,
    ];

    /// The name in `RideScreened.rules` and in the `rule` label.
    pub fn name(self) -> &'static str {
        match self {
            Rule::BlocklistedCard => "blocklisted_card",
            Rule::Velocity => "velocity",
            Rule::ImpossibleTravel => "impossible_travel",
            Rule::SharedDevice => "shared_device",
            Rule::SharedCard => "shared_card",
        }
    }
}

/// Thresholds and windows of the rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleSettings {
    /// Velocity fires when a rider makes more than this many requests in the window.
    pub velocity_max_requests: usize,
    pub velocity_window_ms: u64,
    /// Impossible travel fires above this speed (metres per second)…
    pub travel_max_speed_mps: f64,
    /// …between pickups at least this far apart (GPS jitter is not travel)…
    pub travel_min_distance_m: f64,
    /// …when the previous pickup is at most this old.
    pub travel_window_ms: u64,
    /// Shared device/card fires when this many distinct riders or more used it in the window.
    pub shared_min_riders: usize,
    pub shared_window_ms: u64,
}

impl RuleSettings {
    /// The longest window: how much history the rules need.
    pub fn horizon_ms(&self) -> u64 {
        self.velocity_window_ms
            .max(self.travel_window_ms)
            .max(self.shared_window_ms)
    }

    /// The rules that fire for `s`, given the history before it and whether its
    /// card is blocklisted, in the order of [`Rule::ALL`].
    pub fn fired(&self, h: &History, s: &Sighting, blocked: bool) -> Vec<Rule> {
        let checks = [
            blocked,
            self.velocity(h, s),
            self.impossible_travel(h, s),
            self.shared(h.device_before(s.device, s.order()), s),
            self.shared(h.card_before(s.card, s.order()), s),
        ];
        Rule::ALL
            .into_iter()
            .zip(checks)
            .filter_map(|(rule, fired)| fired.then_some(rule))
            .collect()
    }

    fn velocity(&self, h: &History, s: &Sighting) -> bool {
        let earlier = h.rider_before(s.rider, s.order());
        let from = s.at_ms.saturating_sub(self.velocity_window_ms);
        let in_window = earlier.len() - earlier.partition_point(|v| v.at_ms <= from);
        in_window + 1 > self.velocity_max_requests
    }

    fn impossible_travel(&self, h: &History, s: &Sighting) -> bool {
        let Some(prev) = h.rider_before(s.rider, s.order()).last() else {
            return false;
        };
        let elapsed_ms = s.at_ms - prev.at_ms;
        if elapsed_ms > self.travel_window_ms {
            return false;
        }
        let distance_m = prev.pickup.haversine_m(&s.pickup);
        if distance_m < self.travel_min_distance_m {
            return false;
        }
        // distance / time > max, without dividing by a zero interval.
        distance_m * 1_000.0 > self.travel_max_speed_mps * elapsed_ms as f64
    }

    fn shared(&self, earlier: &[Use], s: &Sighting) -> bool {
        let from = s.at_ms.saturating_sub(self.shared_window_ms);
        let recent = &earlier[earlier.partition_point(|u| u.at_ms <= from)..];
        let mut riders = Vec::with_capacity(self.shared_min_riders);
        riders.push(s.rider);
        for u in recent.iter().rev() {
            if !riders.contains(&u.rider) {
                riders.push(u.rider);
                if riders.len() >= self.shared_min_riders {
                    return true;
                }
            }
        }
        riders.len() >= self.shared_min_riders
    }
}

#[cfg(test)]
mod tests {
    use hail_events::LatLng;

    use super::*;
    use crate::history::{Key, Retention};

    const MIN: u64 = 60_000;
    const T0: u64 = 1_000_000 * MIN;

    fn settings() -> RuleSettings {
        RuleSettings {
            velocity_max_requests: 5,
            velocity_window_ms: 10 * MIN,
            travel_max_speed_mps: 300.0 / 3.6,
            travel_min_distance_m: 1_000.0,
            travel_window_ms: 60 * MIN,
            shared_min_riders: 3,
            shared_window_ms: 60 * MIN,
        }
    }

    fn history() -> History {
        History::new(Retention {
            horizon_ms: settings().horizon_ms(),
            max_skew_ms: 5 * MIN,
        })
    }

    /// A request of `rider` on its own device and card, at `at_ms`, picked up at `pickup`.
    fn req(ride: &str, rider: &str, at_ms: u64, pickup: LatLng) -> Sighting {
        Sighting {
            ride: Key::of(ride),
            rider: Key::of(rider),
            device: Key::of(&format!("dev-{rider}")),
            card: Key::of(&format!("card-{rider}")),
            at_ms,
            pickup,
            stored_ms: at_ms,
        }
    }

    fn berlin() -> LatLng {
        LatLng::new(52.52, 13.405).unwrap()
    }

    /// Screens then records each, as the handler does; the rules of the last.
    fn run(h: &mut History, seq: &[Sighting]) -> Vec<Rule> {
        let mut last = Vec::new();
        for s in seq {
            last = settings().fired(h, s, false);
            h.insert(s);
        }
        last
    }

    fn rider_requests(n: usize, spacing_ms: u64) -> Vec<Sighting> {
        (0..n)
            .map(|i| {
                req(
                    &format!("r{i}"),
                    "alice",
                    T0 + i as u64 * spacing_ms,
                    berlin(),
                )
            })
            .collect()
    }

    #[test]
    fn velocity_fires_on_the_sixth_request_in_ten_minutes_not_the_fifth() {
        let five = rider_requests(5, MIN);
        assert_eq!(run(&mut history(), &five), vec![]);
        let six = rider_requests(6, MIN);
        assert_eq!(run(&mut history(), &six), vec![Rule::Velocity]);
    }

    #[test]
    fn velocity_window_is_event_time() {
        // Six requests, but the first is exactly ten minutes before the sixth: out.
        let six = rider_requests(6, 2 * MIN);
        assert_eq!(run(&mut history(), &six), vec![]);
        let six = rider_requests(6, 2 * MIN - 1);
        assert_eq!(run(&mut history(), &six), vec![Rule::Velocity]);
    }

    #[test]
    fn velocity_counts_a_redelivered_request_once_and_judges_it_the_same() {
        let mut h = history();
        let six = rider_requests(6, MIN);
        let first = run(&mut h, &six);
        // The fourth comes again (redelivery) after the sixth was recorded.
        assert_eq!(settings().fired(&h, &six[3], false), vec![]);
        assert!(!h.insert(&six[3]));
        assert_eq!(settings().fired(&h, &six[5], false), first);
    }

    /// Pickups `km` apart, `minutes` apart.
    fn trip(km: f64, minutes: f64) -> Vec<Rule> {
        let a = berlin();
        // One degree of latitude is 111.195 km on the haversine sphere.
        let b = LatLng::new(a.lat() + km / 111.195_08, a.lon()).unwrap();
        let dt = (minutes * MIN as f64) as u64;
        run(
            &mut history(),
            &[req("a", "alice", T0, a), req("b", "alice", T0 + dt, b)],
        )
    }

    #[test]
    fn impossible_travel_fires_just_over_the_speed_and_not_just_under() {
        // 300 km/h is 5 km a minute.
        assert_eq!(trip(4.9, 1.0), vec![]);
        assert_eq!(trip(5.1, 1.0), vec![Rule::ImpossibleTravel]);
        assert_eq!(trip(150.0, 31.0), vec![]);
        assert_eq!(trip(150.0, 29.0), vec![Rule::ImpossibleTravel]);
    }

    #[test]
    fn impossible_travel_ignores_jitter_and_stale_pickups() {
        assert_eq!(trip(0.9, 0.0), vec![], "under the minimum distance");
        assert_eq!(trip(1.1, 0.0), vec![Rule::ImpossibleTravel], "same instant");
        assert_eq!(
            trip(1_000.0, 61.0),
            vec![],
            "previous pickup older than the window"
        );
    }

    /// `n` distinct riders on one device, a minute apart.
    fn device_riders(n: usize) -> Vec<Sighting> {
        (0..n)
            .map(|i| {
                let mut s = req(
                    &format!("r{i}"),
                    &format!("rider{i}"),
                    T0 + i as u64 * MIN,
                    berlin(),
                );
                s.device = Key::of("shared-phone");
                s
            })
            .collect()
    }

    #[test]
    fn shared_device_fires_at_three_riders_not_two() {
        assert_eq!(run(&mut history(), &device_riders(2)), vec![]);
        assert_eq!(
            run(&mut history(), &device_riders(3)),
            vec![Rule::SharedDevice]
        );
    }

    #[test]
    fn shared_device_counts_distinct_riders_in_the_window() {
        let mut seq = device_riders(2);
        // The first rider again: still two distinct riders.
        let mut again = req("r9", "rider0", T0 + 5 * MIN, berlin());
        again.device = Key::of("shared-phone");
        seq.push(again);
        assert_eq!(run(&mut history(), &seq), vec![]);
        // A third rider more than an hour after the first two: out of the window.
        let mut seq = device_riders(2);
        let mut late = req("r8", "rider8", T0 + 62 * MIN, berlin());
        late.device = Key::of("shared-phone");
        seq.push(late);
        assert_eq!(run(&mut history(), &seq), vec![]);
    }

    #[test]
    fn shared_card_fires_at_three_riders_not_two() {
        let on_card = |n: usize| -> Vec<Sighting> {
            (0..n)
                .map(|i| {
                    let mut s = req(
                        &format!("r{i}"),
                        &format!("rider{i}"),
                        T0 + i as u64,
                        berlin(),
                    );
                    s.card = Key::of("stolen-card");
                    s
                })
                .collect()
        };
        assert_eq!(run(&mut history(), &on_card(2)), vec![]);
        assert_eq!(run(&mut history(), &on_card(3)), vec![Rule::SharedCard]);
    }

    #[test]
    fn blocklisted_fires_only_for_a_blocked_card() {
        let h = history();
        let s = req("r1", "alice", T0, berlin());
        assert_eq!(settings().fired(&h, &s, true), vec![Rule::BlocklistedCard]);
        assert_eq!(settings().fired(&h, &s, false), vec![]);
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> = Rule::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), Rule::ALL.len());
    }
}
