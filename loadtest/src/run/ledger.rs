//! What happened to every ride of the run: when it was meant to be sent, whether
//! the stream stored it, which answers came back and how late; plus the latency
//! histograms and the per-second series the report is built from.
//!
//! One entry per scheduled ride, indexed by the ride's number (9 bytes a ride), so
//! an answer finds its ride without a map, and a repeated answer (a service that
//! republished after a crash) is counted once.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use hail_events::EventKind;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::{schedule::Arrival, surge::SurgeStats};

/// Latencies are recorded in microseconds up to an hour; later ones count as an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// An answer the generator listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Matched,
    Unmatched,
    Priced,
    Screened,
}

impl Answer {
    /// The answer a subject carries (`rides.priced.paris` → `Priced`).
    pub fn of_subject(subject: &str) -> Option<Answer> {
        match EventKind::of_subject(subject).ok()? {
            EventKind::Matched => Some(Answer::Matched),
            EventKind::Unmatched => Some(Answer::Unmatched),
            EventKind::Priced => Some(Answer::Priced),
            EventKind::Screened => Some(Answer::Screened),
            EventKind::Requested
            | EventKind::DriverLocation
            | EventKind::Completed
            | EventKind::Cancelled => None,
        }
    }

    /// The answer a ride is waiting for that this one gives.
    fn flag(self) -> u8 {
        match self {
            Answer::Matched | Answer::Unmatched => MATCH_ANSWER,
            Answer::Priced => PRICED,
            Answer::Screened => SCREENED,
        }
    }

    /// This very kind of answer.
    fn own_flag(self) -> u8 {
        match self {
            Answer::Matched => MATCHED,
            Answer::Unmatched => UNMATCHED,
            Answer::Priced => PRICED,
            Answer::Screened => SCREENED,
        }
    }
}

const STORED: u8 = 1;
const FAILED: u8 = 2;
/// Matched or unmatched: matching answered.
const MATCH_ANSWER: u8 = 4;
const PRICED: u8 = 8;
const SCREENED: u8 = 16;
const MATCHED: u8 = 32;
const UNMATCHED: u8 = 64;
/// Sent, but whether the stream stored it is not known (its PubAck timed out).
const UNKNOWN: u8 = 128;
const ANSWERS: [u8; 3] = [MATCH_ANSWER, PRICED, SCREENED];

/// Latency histograms, in microseconds after each ride's intended send time.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Until the publish was handed to the client (how late the generator itself was).
    pub send_lag: Histogram<u64>,
    /// Until the PubAck.
    pub publish: Histogram<u64>,
    /// Until the first RideMatched or RideUnmatched.
    pub match_answer: Histogram<u64>,
    /// Until the RideMatched (matched rides only).
    pub matched: Histogram<u64>,
    pub priced: Histogram<u64>,
    pub screened: Histogram<u64>,
}

impl Latencies {
    /// The histogram of the first answer of this kind (matched and unmatched share one).
    fn of_answer(&mut self, answer: Answer) -> &mut Histogram<u64> {
        match answer {
            Answer::Matched | Answer::Unmatched => &mut self.match_answer,
            Answer::Priced => &mut self.priced,
            Answer::Screened => &mut self.screened,
        }
    }
}

/// Counts of one second of the run (by when things happened, not when intended).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Second {
    /// Seconds since the start.
    pub second: u64,
    /// Rides stored (PubAck received).
    pub published: u64,
    /// Rides refused or failed.
    pub failed: u64,
    pub matched: u64,
    pub unmatched: u64,
    pub priced: u64,
    pub screened: u64,
}

/// Rides stored whose answer never came.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// Neither matched nor unmatched.
    pub match_answer: u64,
    pub priced: u64,
    pub screened: u64,
}

/// First answers per kind, and the ones that were not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnswerCounts {
    pub matched: u64,
    pub unmatched: u64,
    pub priced: u64,
    pub screened: u64,
    /// A second answer of a kind a ride already had (a service republished).
    pub repeated: u64,
    /// Answers to rides that are not this run's.
    pub foreign: u64,
}

/// Rides whose publish outcome was unknown when the PubAck timed out, and
/// what reading RIDES afterwards found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnknownOutcomes {
    pub count: u64,
    /// Of those, found in RIDES: counted in `published` too.
    pub stored: u64,
    /// Of those, not in RIDES (once reconciled).
    pub not_stored: u64,
    /// Whether RIDES was read to tell them apart.
    pub reconciled: bool,
    /// The first error's message.
    pub example: Option<String>,
}

/// The failures of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failures {
    pub count: u64,
    /// The first failure's message.
    pub example: String,
}

/// The state of every ride of the run.
#[derive(Debug, Clone)]
pub struct Ledger {
    intended_us: Vec<u64>,
    flags: Vec<u8>,
    /// Rides stored (PubAck), duplicates included.
    pub published: u64,
    /// Of those, how many the stream already had (a re-used run id).
    pub duplicates: u64,
    /// Rides refused (`backpressure`) or whose publish failed.
    pub failed: u64,
    /// Rides sent whose PubAck never came: stored or not, nobody said.
    pub unknown: UnknownOutcomes,
    /// The surge quoted to this run's rides.
    pub surge: SurgeStats,
    pub failures: BTreeMap<String, Failures>,
    pub answers: AnswerCounts,
    /// First RideUnmatched answers by reason.
    pub unmatched_by_reason: BTreeMap<&'static str, u64>,
    /// Stored rides with each answer: `published - answered` is what is missing.
    answered: [u64; 3],
    pub latency: Latencies,
    pub series: Vec<Second>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds");
        Self {
            intended_us: Vec::new(),
            flags: Vec::new(),
            published: 0,
            duplicates: 0,
            failed: 0,
            unknown: UnknownOutcomes::default(),
            surge: SurgeStats::default(),
            failures: BTreeMap::new(),
            answers: AnswerCounts::default(),
            unmatched_by_reason: BTreeMap::new(),
            answered: [0; 3],
            latency: Latencies {
                send_lag: h(),
                publish: h(),
                match_answer: h(),
                matched: h(),
                priced: h(),
                screened: h(),
            },
            series: Vec::new(),
        }
    }

    /// Adds the next ride of the schedule; arrivals come in order.
    pub fn schedule(&mut self, a: Arrival) {
        debug_assert_eq!(a.index, self.intended_us.len() as u64);
        self.intended_us.push(a.at_us);
        self.flags.push(0);
    }

    /// Rides scheduled so far.
    pub fn scheduled(&self) -> u64 {
        self.intended_us.len() as u64
    }

    /// The stream stored ride `i`: it was handed to the client at `sent_us` and
    /// acknowledged at `now_us`.
    pub fn stored(&mut self, i: u64, sent_us: u64, now_us: u64, duplicate: bool) {
        let Some(intended) = self.intended(i) else {
            return;
        };
        self.published += 1;
        self.duplicates += u64::from(duplicate);
        record(&mut self.latency.send_lag, sent_us.saturating_sub(intended));
        record(&mut self.latency.publish, now_us.saturating_sub(intended));
        self.second(now_us).published += 1;
        self.set(i, STORED);
    }

    /// Ride `i` was refused or its publish failed with `kind`.
    pub fn failed(&mut self, i: u64, kind: &str, example: impl FnOnce() -> String, now_us: u64) {
        if self.intended(i).is_none() {
            return;
        }
        self.failed += 1;
        self.failures
            .entry(kind.to_string())
            .or_insert_with(|| Failures {
                count: 0,
                example: example(),
            })
            .count += 1;
        self.second(now_us).failed += 1;
        self.set(i, FAILED);
    }

    /// Ride `i` was sent, but its PubAck did not come (`example` says why): the
    /// stream may or may not hold it.
    pub fn unknown(&mut self, i: u64, example: impl FnOnce() -> String) {
        if self.intended(i).is_none() {
            return;
        }
        self.unknown.count += 1;
        self.unknown.example.get_or_insert_with(example);
        self.set(i, UNKNOWN);
    }

    /// The rides whose outcome is unknown and not yet reconciled.
    pub fn unknown_rides(&self) -> Vec<u64> {
        self.flags
            .iter()
            .enumerate()
            .filter(|(_, f)| **f & UNKNOWN != 0 && **f & STORED == 0)
            .map(|(i, _)| i as u64)
            .collect()
    }

    /// RIDES was read: `stored` of the unknown rides are in it, the rest are not.
    pub fn reconciled(&mut self, stored: &[u64]) {
        for &i in stored {
            let Some(&f) = self.flags.get(i as usize) else {
                continue;
            };
            if f & UNKNOWN != 0 && f & STORED == 0 {
                self.published += 1;
                self.unknown.stored += 1;
                self.set(i, STORED);
            }
        }
        self.unknown.not_stored = self.unknown.count - self.unknown.stored;
        self.unknown.reconciled = true;
    }

    /// An answer arrived at `now_us` for ride `i` (`None`: not this run's ride).
    /// True when it is news: the ride's first answer of this kind. A RideUnmatched
    /// after a RideMatched is a repeat (the claim stands); a RideMatched after a
    /// RideUnmatched is news (a driver is held and its trip must complete).
    pub fn answer(&mut self, i: Option<u64>, answer: Answer, now_us: u64) -> bool {
        let Some((i, intended)) = i.and_then(|i| Some((i, self.intended(i)?))) else {
            self.answers.foreign += 1;
            return false;
        };
        let old = self.flags[i as usize];
        let repeat =
            old & answer.own_flag() != 0 || (answer == Answer::Unmatched && old & MATCHED != 0);
        if repeat {
            self.answers.repeated += 1;
            return false;
        }
        let latency = now_us.saturating_sub(intended);
        if old & answer.flag() == 0 {
            record(self.latency.of_answer(answer), latency);
        }
        self.count_answer(answer, latency, now_us);
        self.set(i, answer.flag() | answer.own_flag());
        true
    }

    /// Counts the reason of a RideUnmatched that [`Ledger::answer`] found news.
    pub fn unmatched_because(&mut self, reason: &'static str) {
        *self.unmatched_by_reason.entry(reason).or_default() += 1;
    }

    fn count_answer(&mut self, answer: Answer, latency: u64, now_us: u64) {
        let second = self.second(now_us);
        match answer {
            Answer::Matched => second.matched += 1,
            Answer::Unmatched => second.unmatched += 1,
            Answer::Priced => second.priced += 1,
            Answer::Screened => second.screened += 1,
        }
        match answer {
            Answer::Matched => {
                self.answers.matched += 1;
                record(&mut self.latency.matched, latency);
            }
            Answer::Unmatched => self.answers.unmatched += 1,
            Answer::Priced => self.answers.priced += 1,
            Answer::Screened => self.answers.screened += 1,
        }
    }

    /// Stored rides whose answers have not come (yet).
    pub fn missing(&self) -> Missing {
        Missing {
            match_answer: self.published - self.answered[0],
            priced: self.published - self.answered[1],
            screened: self.published - self.answered[2],
        }
    }

    /// When ride `i` was meant to be sent, microseconds after the start.
    pub fn intended(&self, i: u64) -> Option<u64> {
        self.intended_us.get(usize::try_from(i).ok()?).copied()
    }

    /// Sets `flag` on ride `i`, keeping the stored-and-answered counts.
    fn set(&mut self, i: u64, flag: u8) {
        let old = self.flags[i as usize];
        let new = old | flag;
        self.flags[i as usize] = new;
        for (n, answer) in ANSWERS.iter().enumerate() {
            let counted = |f: u8| f & STORED != 0 && f & answer != 0;
            if counted(new) && !counted(old) {
                self.answered[n] += 1;
            }
        }
    }

    fn second(&mut self, now_us: u64) -> &mut Second {
        let s = (now_us / 1_000_000) as usize;
        while self.series.len() <= s {
            let second = self.series.len() as u64;
            self.series.push(Second {
                second,
                ..Second::default()
            });
        }
        &mut self.series[s]
    }
}

/// Locks a shared ledger. Its updates leave it consistent at every step, so a
/// panic elsewhere while it was held does not make it unusable.
pub fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(1, MAX_LATENCY_US));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger with rides 0..n meant to go at 0, 1 000, 2 000… µs.
    fn ledger(n: u64) -> Ledger {
        let mut l = Ledger::new();
        for index in 0..n {
            l.schedule(Arrival {
                index,
                at_us: index * 1_000,
            });
        }
        l
    }

    #[test]
    fn answers_are_known_by_their_subject() {
        assert_eq!(
            Answer::of_subject("rides.priced.paris"),
            Some(Answer::Priced)
        );
        assert_eq!(
            Answer::of_subject("rides.unmatched.paris"),
            Some(Answer::Unmatched)
        );
        assert_eq!(Answer::of_subject("rides.requested.paris"), None);
        assert_eq!(Answer::of_subject("rides.bogus.paris"), None);
    }

    #[test]
    fn latencies_count_from_the_intended_time() {
        let mut l = ledger(2);
        // Ride 1 was meant for 1 ms, sent late at 5 ms, stored at 6 ms, priced at 21 ms.
        l.stored(1, 5_000, 6_000, false);
        assert!(l.answer(Some(1), Answer::Priced, 21_000));
        assert!(
            l.latency
                .send_lag
                .equivalent(l.latency.send_lag.max(), 4_000)
        );
        assert!(l.latency.publish.equivalent(l.latency.publish.max(), 5_000));
        assert!(l.latency.priced.equivalent(l.latency.priced.max(), 20_000));
        assert_eq!(l.latency.priced.len(), 1);
        assert_eq!(l.latency.matched.len(), 0);
    }

    #[test]
    fn missing_answers_of_stored_rides_whatever_the_order() {
        let mut l = ledger(3);
        // An answer can beat its own PubAck to this process.
        assert!(l.answer(Some(0), Answer::Unmatched, 500));
        l.stored(0, 10, 600, false);
        l.stored(1, 1_010, 1_600, false);
        l.failed(2, "backpressure", || "window full".into(), 2_000);
        assert!(l.answer(Some(1), Answer::Screened, 3_000));
        assert_eq!(
            l.missing(),
            Missing {
                match_answer: 1,
                priced: 2,
                screened: 1
            }
        );
        // An answer to a failed ride is counted but missing only counts stored rides.
        assert!(l.answer(Some(2), Answer::Priced, 3_000));
        assert_eq!(l.missing().priced, 2);
        assert_eq!(l.published, 2);
        assert_eq!(l.failed, 1);
        assert_eq!(l.failures["backpressure"].example, "window full");
    }

    #[test]
    fn repeats_and_foreign_answers_count_apart() {
        let mut l = ledger(1);
        l.stored(0, 0, 100, false);
        assert!(l.answer(Some(0), Answer::Matched, 200));
        assert!(!l.answer(Some(0), Answer::Matched, 300));
        // The claim stands: an unmatched after a match is a repeat.
        assert!(!l.answer(Some(0), Answer::Unmatched, 400));
        assert!(!l.answer(Some(9), Answer::Priced, 400));
        assert!(!l.answer(None, Answer::Priced, 400));
        assert_eq!(l.answers.matched, 1);
        assert_eq!(l.answers.unmatched, 0);
        assert_eq!(l.answers.repeated, 2);
        assert_eq!(l.answers.foreign, 2);
        assert_eq!(l.missing().match_answer, 0);
    }

    #[test]
    fn a_match_after_an_unmatched_is_news_but_not_a_second_answer() {
        let mut l = ledger(1);
        l.stored(0, 0, 100, false);
        assert!(l.answer(Some(0), Answer::Unmatched, 200));
        assert!(l.answer(Some(0), Answer::Matched, 300));
        assert_eq!(l.latency.match_answer.len(), 1);
        assert_eq!(l.latency.matched.len(), 1);
        assert_eq!((l.answers.matched, l.answers.unmatched), (1, 1));
    }

    #[test]
    fn the_series_counts_per_second_of_the_run() {
        let mut l = ledger(3);
        l.stored(0, 0, 100, false);
        l.stored(1, 0, 2_500_000, true);
        l.failed(2, "timed_out", String::new, 2_900_000);
        l.answer(Some(0), Answer::Matched, 2_000_000);
        let s = &l.series;
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].second, s[0].published), (0, 1));
        assert_eq!(
            s[1],
            Second {
                second: 1,
                ..Second::default()
            }
        );
        assert_eq!((s[2].published, s[2].failed, s[2].matched), (1, 1, 1));
        assert_eq!(l.duplicates, 1);
    }
}
