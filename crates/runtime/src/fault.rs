//! Test-only fault injection: the one seam through which the `--fault-*` flags
//! reach the worker.
//!
//! The e2e and chaos tests use it to exercise redelivery, the ack wait and the
//! dead-letter path against the real binaries. [`FaultArgs`] are the flags;
//! [`Faults::from_args`] turns them into `None` when every rate is 0, so a
//! production worker checks one `Option` per delivery and nothing else. When
//! enabled, [`Faults::pick`] decides per delivery and [`Fault::outcome`] plays
//! the fault out in place of the handler.

use tokio_util::sync::CancellationToken;

use crate::Outcome;

/// The help heading of the fault flags. Set per flag: a struct-level
/// `next_help_heading` would also catch the flags a service declares after them.
const HEADING: &str = "Testing only (fault injection)";

/// The fault flags; every service flattens them through [`crate::RuntimeArgs`].
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct FaultArgs {
    /// Fail this fraction (0 to 1) of deliveries as if the handler had hit a
    /// transient error, to exercise redelivery and the dead-letter path.
    #[arg(long, env = "HAIL_FAULT_RETRY_RATE", default_value_t = 0.0, help_heading = HEADING)]
    pub fault_retry_rate: f64,

    /// Never finish this fraction (0 to 1) of deliveries, as if the handler
    /// hung, so the ack wait expires and the server redelivers.
    #[arg(long, env = "HAIL_FAULT_HANG_RATE", default_value_t = 0.0, help_heading = HEADING)]
    pub fault_hang_rate: f64,

    /// For this fraction (0 to 1) of messages, handle and publish every delivery
    /// but the last, then lose the ack (nak instead), as if the ack had never
    /// reached the server: the message comes back and its answer is published again.
    #[arg(long, env = "HAIL_FAULT_LOST_ACK_RATE", default_value_t = 0.0, help_heading = HEADING)]
    pub fault_lost_ack_rate: f64,
}

impl FaultArgs {
    /// Refuses a rate outside [0, 1], naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("--fault-retry-rate", self.fault_retry_rate),
            ("--fault-hang-rate", self.fault_hang_rate),
            ("--fault-lost-ack-rate", self.fault_lost_ack_rate),
        ];
        match rates.iter().find(|(_, r)| !(0.0..=1.0).contains(r)) {
            Some((flag, rate)) => Err(format!("{flag} must be within [0, 1], got {rate}")),
            None => Ok(()),
        }
    }
}

/// Enabled fault injection: at least one rate above 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    retry_rate: f64,
    hang_rate: f64,
    lost_ack_rate: f64,
}

/// What [`Faults::pick`] injects into one delivery instead of the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Hang until shutdown, then retry: the ack wait expires first.
    Hang,
    /// Fail at once as a transient error.
    Retry,
}

impl Faults {
    /// `None` (no injection, nothing to pay) when every rate is 0.
    pub fn from_args(args: &FaultArgs) -> Option<Faults> {
        let any = [
            args.fault_retry_rate,
            args.fault_hang_rate,
            args.fault_lost_ack_rate,
        ]
        .iter()
        .any(|r| *r > 0.0);
        any.then_some(Faults {
            retry_rate: args.fault_retry_rate,
            hang_rate: args.fault_hang_rate,
            lost_ack_rate: args.fault_lost_ack_rate,
        })
    }

    /// Whether the ack of this delivery is lost after its outputs are stored: the
    /// same messages on every delivery before `max_deliver`, never on the last.
    pub fn loses_ack(&self, stream_seq: u64, delivered: i64, max_deliver: i64) -> bool {
        delivered < max_deliver && unit_interval(stream_seq, 0) < self.lost_ack_rate
    }

    /// The fault for this delivery, if any: a deterministic pick of each rate,
    /// spread over sequences and deliveries. A hang is picked before a retry.
    pub fn pick(&self, stream_seq: u64, delivered: i64) -> Option<Fault> {
        let x = unit_interval(stream_seq, delivered);
        if x < self.hang_rate {
            Some(Fault::Hang)
        } else if x < self.retry_rate {
            Some(Fault::Retry)
        } else {
            None
        }
    }
}

impl Fault {
    /// Plays the fault out; a hang lasts until `shutdown`.
    pub async fn outcome(self, shutdown: &CancellationToken) -> Outcome {
        let reason = match self {
            Fault::Hang => {
                shutdown.cancelled().await;
                "injected hang (--fault-hang-rate)"
            }
            Fault::Retry => "injected transient fault (--fault-retry-rate)",
        };
        Outcome::Retry {
            reason: reason.into(),
        }
    }
}

/// A number in [0, 1) that depends only on the delivery.
fn unit_interval(stream_seq: u64, delivered: i64) -> f64 {
    let x = (stream_seq ^ (delivered as u64).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(retry: f64, hang: f64) -> Option<Faults> {
        Faults::from_args(&FaultArgs {
            fault_retry_rate: retry,
            fault_hang_rate: hang,
            fault_lost_ack_rate: 0.0,
        })
    }

    fn hits(f: &Faults, fault: Fault) -> usize {
        (1..100_001)
            .filter(|s| f.pick(*s, 1) == Some(fault))
            .count()
    }

    #[test]
    fn all_rates_zero_is_no_injection() {
        assert_eq!(faults(0.0, 0.0), None);
        assert!(faults(0.1, 0.0).is_some());
        assert!(faults(0.0, 0.1).is_some());
    }

    #[test]
    fn a_lost_ack_hits_the_same_messages_on_every_delivery_but_the_last() {
        let f = Faults::from_args(&FaultArgs {
            fault_lost_ack_rate: 0.1,
            ..FaultArgs::default()
        })
        .unwrap();
        let hit: Vec<u64> = (1..10_001).filter(|s| f.loses_ack(*s, 1, 5)).collect();
        assert!((800..1_200).contains(&hit.len()), "{}", hit.len());
        assert!(hit.iter().all(|s| (2..5).all(|d| f.loses_ack(*s, d, 5))));
        assert!(hit.iter().all(|s| !f.loses_ack(*s, 5, 5)));
        assert_eq!(f.pick(hit[0], 1), None, "the handler still runs");
    }

    #[test]
    fn injected_faults_hit_about_the_rate() {
        let retry = faults(0.1, 0.0).unwrap();
        assert!((9_000..11_000).contains(&hits(&retry, Fault::Retry)));
        assert_eq!(hits(&retry, Fault::Hang), 0);
        let hang = faults(0.0, 0.1).unwrap();
        assert!((9_000..11_000).contains(&hits(&hang, Fault::Hang)));
        assert_eq!(hits(&hang, Fault::Retry), 0);
        let all = faults(1.0, 0.0).unwrap();
        assert!((1..1000).all(|s| all.pick(s, 1) == Some(Fault::Retry)));
    }

    #[test]
    fn a_redelivery_is_picked_afresh() {
        let f = faults(0.5, 0.0).unwrap();
        assert!((1..1000).any(|s| f.pick(s, 1).is_some() && f.pick(s, 2).is_none()));
    }

    #[test]
    fn rates_outside_the_unit_interval_name_the_flag() {
        let bad = FaultArgs {
            fault_hang_rate: 1.5,
            ..FaultArgs::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.starts_with("--fault-hang-rate"), "{err}");
        assert_eq!(FaultArgs::default().validate(), Ok(()));
    }

    #[tokio::test]
    async fn a_retry_fault_retries_at_once_naming_the_flag() {
        let outcome = Fault::Retry.outcome(&CancellationToken::new()).await;
        assert!(
            matches!(&outcome, Outcome::Retry { reason } if reason.contains("--fault-retry-rate")),
            "{outcome:?}"
        );
    }
}
