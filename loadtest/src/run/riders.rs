//! Who asks for ride `i`: riders drawn from a pool, and a small fraud ring.
//!
//! Most rides come from a pool of ordinary riders, each with their own device
//! and card; a large pool makes repeat riders rare, as in a real city. A share
//! of rides comes from a ring of a few riders who share a handful of devices
//! and cards and request in whichever city the ride is in, so fraud's rules
//! (velocity, impossible travel, shared device or card) fire on them and the
//! dashboard's verdicts show review and block beside allow. Like the trips,
//! ride `i`'s rider is a function of the seed and `i` alone.

use anyhow::{Result, ensure};
use hail_events::{CardFingerprint, DeviceId, EventError, RiderId};

use crate::rng::{SplitMix64, mix};

/// Salt of the rider draws, so they do not repeat the trips' draws.
const RIDERS_SALT: u64 = 0x7269_6465_7273_2121;
/// Devices the ring shares among its riders.
const RING_DEVICES: u64 = 3;
/// Cards the ring shares among its riders.
const RING_CARDS: u64 = 3;

/// How riders are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiderMix {
    /// Ordinary riders to draw from.
    pub pool: u64,
    /// Share of rides, 0 to 1, requested by the fraud ring.
    pub ring_share: f64,
    /// Riders in the ring.
    pub ring_riders: u64,
}

impl Default for RiderMix {
    fn default() -> Self {
        RiderMix {
            pool: 1_000_000,
            ring_share: 0.01,
            ring_riders: 12,
        }
    }
}

impl RiderMix {
    /// Refuses a mix that cannot be drawn from, naming the flag.
    pub fn check(&self) -> Result<()> {
        ensure!(self.pool >= 1, "--riders must be at least 1");
        ensure!(
            (0.0..=1.0).contains(&self.ring_share),
            "--fraud-ring-share must be between 0 and 1, got {}",
            self.ring_share
        );
        ensure!(
            self.ring_riders >= 1,
            "--fraud-ring-riders must be at least 1"
        );
        Ok(())
    }
}

/// The identity a ride is requested with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub rider: RiderId,
    pub device: DeviceId,
    pub card: CardFingerprint,
    /// Whether the ride comes from the fraud ring.
    pub ring: bool,
}

/// The riders of one run.
#[derive(Debug, Clone)]
pub struct Riders {
    run_id: String,
    seed: u64,
    mix: RiderMix,
}

impl Riders {
    /// The riders of run `run_id` (a valid id prefix) drawn with `mix`.
    pub fn new(run_id: &str, seed: u64, mix: RiderMix) -> Result<Self> {
        mix.check()?;
        Ok(Riders {
            run_id: run_id.to_string(),
            seed,
            mix,
        })
    }

    /// Who requests ride `i`.
    pub fn of(&self, i: u64) -> Result<Identity, EventError> {
        let mut rng = SplitMix64::new(mix(self.seed ^ RIDERS_SALT, i));
        let run = &self.run_id;
        if rng.unit() < self.mix.ring_share {
            let k = rng.below(self.mix.ring_riders);
            return Ok(Identity {
                rider: RiderId::new(format!("u-{run}-ring-{k}"))?,
                device: DeviceId::new(format!("d-{run}-ring-{}", k % RING_DEVICES))?,
                card: CardFingerprint::new(format!("c-{run}-ring-{}", k % RING_CARDS))?,
                ring: true,
            });
        }
        let k = rng.below(self.mix.pool);
        Ok(Identity {
            rider: RiderId::new(format!("u-{run}-{k}"))?,
            device: DeviceId::new(format!("d-{run}-{k}"))?,
            card: CardFingerprint::new(format!("c-{run}-{k}"))?,
            ring: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn riders(mix: RiderMix) -> Riders {
        Riders::new("t1", 42, mix).unwrap()
    }

    #[test]
    fn the_same_ride_has_the_same_rider() {
        let r = riders(RiderMix::default());
        assert_eq!(r.of(17).unwrap(), r.of(17).unwrap());
        let other_seed = Riders::new("t1", 43, RiderMix::default()).unwrap();
        let differ = (0..100).any(|i| r.of(i).unwrap() != other_seed.of(i).unwrap());
        assert!(differ);
    }

    #[test]
    fn the_ring_takes_its_share_and_shares_devices_and_cards() {
        let r = riders(RiderMix::default());
        let ring: Vec<Identity> = (0..100_000)
            .map(|i| r.of(i).unwrap())
            .filter(|id| id.ring)
            .collect();
        let share = ring.len() as f64 / 100_000.0;
        assert!((0.008..0.012).contains(&share), "ring share {share}");
        let riders: HashSet<_> = ring.iter().map(|id| &id.rider).collect();
        assert_eq!(riders.len(), 12);
        let mut per_device: HashMap<&DeviceId, HashSet<&RiderId>> = HashMap::new();
        for id in &ring {
            per_device.entry(&id.device).or_default().insert(&id.rider);
        }
        assert_eq!(per_device.len(), 3);
        assert!(per_device.values().all(|r| r.len() == 4), "{per_device:?}");
    }

    #[test]
    fn ordinary_riders_rarely_repeat_in_a_large_pool() {
        let r = riders(RiderMix {
            ring_share: 0.0,
            ..RiderMix::default()
        });
        let n = 60_000;
        let distinct: HashSet<_> = (0..n).map(|i| r.of(i).unwrap().rider).collect();
        // 60,000 draws from a million: about 1,800 repeats.
        assert!(distinct.len() > 57_000, "{} distinct", distinct.len());
        let small = riders(RiderMix {
            pool: 10,
            ring_share: 0.0,
            ..RiderMix::default()
        });
        let distinct: HashSet<_> = (0..1_000).map(|i| small.of(i).unwrap().rider).collect();
        assert_eq!(distinct.len(), 10);
    }

    #[test]
    fn a_bad_mix_names_the_flag() {
        let bad = |mix: RiderMix| Riders::new("t1", 1, mix).unwrap_err().to_string();
        let d = RiderMix::default();
        assert!(bad(RiderMix { pool: 0, ..d }).starts_with("--riders"));
        assert!(
            bad(RiderMix {
                ring_share: 1.5,
                ..d
            })
            .starts_with("--fraud-ring-share")
        );
        assert!(
            bad(RiderMix {
                ring_riders: 0,
                ..d
            })
            .starts_with("--fraud-ring-riders")
        );
    }
}
