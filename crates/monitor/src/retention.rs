//! How close a lagging consumer is to losing messages to its stream's limits. Pure.
//!
//! RIDES is a limits stream (never work-queue: that breaks fan-out), so it
//! drops its oldest messages once they pass `max_age` or the stream passes
//! `max_bytes`, whether every consumer has read them or not. A service that is
//! down long enough loses rides without an error anywhere. This is the figure
//! that warns before it happens:
//!
//! - by age: the age of the oldest message the group still owes over `max_age`;
//! - by size: the bytes from that message to the end of the stream over
//!   `max_bytes` (the stream drops from the old end, so everything before the
//!   oldest owed message is headroom, and so is the free space).
//!
//! The larger of the two, from 0 (nothing owed) to 1 (the oldest owed message
//! is being dropped now).

use std::time::Duration;

/// A stream's limits and the part of its state the ratio needs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamWindow {
    /// Oldest sequence still stored.
    pub first_seq: u64,
    /// Newest sequence stored.
    pub last_seq: u64,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// `max_age`, when the stream has one.
    pub max_age: Option<Duration>,
    /// `max_bytes`, when the stream has one.
    pub max_bytes: Option<u64>,
}

impl StreamWindow {
    /// Whether the stream discards anything by age or size.
    pub fn is_limited(&self) -> bool {
        self.max_age.is_some() || self.max_bytes.is_some()
    }
}

/// The oldest message a consumer group has not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldestOwed {
    /// Its stream sequence.
    pub seq: u64,
    /// How long ago it was stored.
    pub age: Duration,
}

/// The share of the stream's retention the consumer's backlog takes up, 0 to
/// 1; `None` when the stream has no age or size limit.
pub fn used_ratio(stream: &StreamWindow, oldest: Option<OldestOwed>) -> Option<f64> {
    if !stream.is_limited() {
        return None;
    }
    let Some(oldest) = oldest else {
        return Some(0.0);
    };
    let by_age = stream
        .max_age
        .filter(|max| !max.is_zero())
        .map_or(0.0, |max| oldest.age.as_secs_f64() / max.as_secs_f64());
    let by_size = stream
        .max_bytes
        .filter(|max| *max > 0)
        .map_or(0.0, |max| owed_bytes(stream, oldest.seq) / max as f64);
    Some(by_age.max(by_size).clamp(0.0, 1.0))
}

/// Bytes from `from_seq` to the end of the stream, at the stream's average
/// message size (its messages are events of similar size).
fn owed_bytes(stream: &StreamWindow, from_seq: u64) -> f64 {
    if stream.messages == 0 || from_seq > stream.last_seq {
        return 0.0;
    }
    let owed = (stream.last_seq - from_seq.max(stream.first_seq) + 1).min(stream.messages);
    stream.bytes as f64 * owed as f64 / stream.messages as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn rides(max_age: Option<Duration>, max_bytes: Option<u64>) -> StreamWindow {
        // 1,000 messages of 100 bytes, sequences 1,001..=2,000.
        StreamWindow {
            first_seq: 1_001,
            last_seq: 2_000,
            messages: 1_000,
            bytes: 100_000,
            max_age,
            max_bytes,
        }
    }

    fn owed(seq: u64, age: Duration) -> Option<OldestOwed> {
        Some(OldestOwed { seq, age })
    }

    #[test]
    fn an_unlimited_stream_has_no_ratio() {
        assert_eq!(used_ratio(&rides(None, None), owed(1_500, HOUR)), None);
    }

    #[test]
    fn a_consumer_that_owes_nothing_uses_none_of_it() {
        let stream = rides(Some(HOUR), Some(200_000));
        assert_eq!(used_ratio(&stream, None), Some(0.0));
    }

    #[test]
    fn by_age_it_is_the_oldest_owed_age_over_max_age() {
        let stream = rides(Some(HOUR), None);
        let half = used_ratio(&stream, owed(1_990, HOUR / 2)).unwrap();
        assert!((half - 0.5).abs() < 1e-9, "{half}");
    }

    #[test]
    fn by_size_it_is_the_owed_tail_over_max_bytes() {
        // Owes 1,500..=2,000: 501 messages of 100 bytes, of a 200,000-byte limit.
        let stream = rides(None, Some(200_000));
        let r = used_ratio(&stream, owed(1_500, Duration::ZERO)).unwrap();
        assert!((r - 50_100.0 / 200_000.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn the_nearer_limit_decides() {
        let stream = rides(Some(HOUR), Some(200_000));
        let r = used_ratio(&stream, owed(1_500, HOUR * 3 / 4)).unwrap();
        assert!((r - 0.75).abs() < 1e-9, "{r}");
        let r = used_ratio(&stream, owed(1_001, Duration::from_secs(60))).unwrap();
        assert!((r - 0.5).abs() < 1e-9, "the whole stream is owed: {r}");
    }

    #[test]
    fn it_stays_within_zero_and_one() {
        let full = rides(Some(HOUR), Some(100_000));
        assert_eq!(used_ratio(&full, owed(1, HOUR * 2)), Some(1.0));
        let r = used_ratio(&full, owed(1_001, Duration::ZERO)).unwrap();
        assert!((r - 1.0).abs() < 1e-9, "owes all of a full stream: {r}");
        assert_eq!(used_ratio(&full, owed(5_000, Duration::ZERO)), Some(0.0));
    }

    #[test]
    fn the_ratio_rises_with_the_backlog() {
        let stream = rides(Some(HOUR), Some(150_000));
        let mut last = 0.0;
        for seq in (1_001..=2_000).rev().step_by(50) {
            let r = used_ratio(&stream, owed(seq, Duration::ZERO)).unwrap();
            assert!(r >= last, "{r} < {last} at {seq}");
            last = r;
        }
    }
}
