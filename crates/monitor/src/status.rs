//! Burrow-style consumer status, evaluated over a window of samples. Pure.
//!
//! | status | meaning |
//! |---|---|
//! | `ok` | no lag, or lag with the ack floor advancing and the lag not growing |
//! | `warn` | acks advance but the lag is not shrinking over the window |
//! | `stall` | messages are delivered but the ack floor does not move |
//! | `stop` | lag present and neither deliveries nor acks move: nobody is consuming |
//! | `stalled_max_ack_pending` | the consumer holds max_ack_pending unacked messages |
//! | `not_pulling` | no lag, but no client has a pull request waiting: the service is gone |

/// One reading of a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// Messages not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: u64,
    /// Pull requests waiting at the server.
    pub waiting: u64,
    /// Last stream sequence delivered.
    pub delivered_seq: u64,
    /// Every message at or below is acknowledged.
    pub ack_floor_seq: u64,
    /// The consumer's max_ack_pending.
    pub max_ack_pending: u64,
}

impl Sample {
    /// Messages the consumer group still owes: pending plus unacknowledged.
    pub fn lag(&self) -> u64 {
        self.pending + self.ack_pending
    }
}

/// The verdict on a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Stall,
    Stop,
    StalledMaxAckPending,
    NotPulling,
}

impl Status {
    /// Every status, for one-hot gauges.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Warn,
        Status::Stall,
        Status::Stop,
        Status::StalledMaxAckPending,
        Status::NotPulling,
    ];

    /// The label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Stall => "stall",
            Status::Stop => "stop",
            Status::StalledMaxAckPending => "stalled_max_ack_pending",
            Status::NotPulling => "not_pulling",
        }
    }
}

/// The status from the oldest and newest sample of a window (oldest first).
pub fn evaluate(window: &[Sample]) -> Status {
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return Status::Ok;
    };
    let full_window = window.len() >= 2;
    if last.lag() == 0 {
        let idle_without_pullers = full_window && window.iter().all(|s| s.waiting == 0);
        return if idle_without_pullers {
            Status::NotPulling
        } else {
            Status::Ok
        };
    }
    if last.max_ack_pending > 0 && last.ack_pending >= last.max_ack_pending {
        return Status::StalledMaxAckPending;
    }
    if !full_window {
        return Status::Ok;
    }
    let acks_move = last.ack_floor_seq > first.ack_floor_seq;
    let deliveries_move = last.delivered_seq > first.delivered_seq;
    match (deliveries_move, acks_move) {
        (false, false) => Status::Stop,
        (true, false) => Status::Stall,
        _ if last.lag() > first.lag() && first.lag() > 0 => Status::Warn,
        _ => Status::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pending: u64, ack_pending: u64, waiting: u64, delivered: u64, floor: u64) -> Sample {
        Sample {
            pending,
            ack_pending,
            waiting,
            delivered_seq: delivered,
            ack_floor_seq: floor,
            max_ack_pending: 1000,
        }
    }

    #[test]
    fn idle_and_caught_up_is_ok() {
        assert_eq!(
            evaluate(&[s(0, 0, 1, 10, 10), s(0, 0, 1, 10, 10)]),
            Status::Ok
        );
    }

    #[test]
    fn gone_without_lag_is_not_pulling() {
        assert_eq!(
            evaluate(&[s(0, 0, 0, 10, 10), s(0, 0, 0, 10, 10)]),
            Status::NotPulling
        );
    }

    #[test]
    fn lag_with_nothing_moving_is_stop() {
        assert_eq!(
            evaluate(&[s(100, 0, 1, 10, 10), s(500, 0, 1, 10, 10)]),
            Status::Stop
        );
    }

    #[test]
    fn delivering_without_acks_is_stall() {
        assert_eq!(
            evaluate(&[s(100, 10, 1, 10, 5), s(100, 50, 1, 60, 5)]),
            Status::Stall
        );
    }

    #[test]
    fn growing_lag_while_acking_is_warn_and_shrinking_is_ok() {
        assert_eq!(
            evaluate(&[s(100, 10, 1, 110, 100), s(300, 10, 1, 210, 200)]),
            Status::Warn
        );
        assert_eq!(
            evaluate(&[s(300, 10, 1, 110, 100), s(100, 10, 1, 310, 300)]),
            Status::Ok
        );
    }

    #[test]
    fn full_ack_pending_is_stalled_on_max_ack_pending() {
        assert_eq!(
            evaluate(&[s(100, 1000, 1, 10, 5), s(100, 1000, 1, 10, 5)]),
            Status::StalledMaxAckPending
        );
    }
}
