//! The progress line, once a second on stderr: elapsed time, rides published, the
//! rate of the last second, failures, answers, and each service's lag (messages
//! pending plus awaiting ack on its durable consumer on RIDES). On a terminal it is
//! one line redrawn in place; otherwise one line per second, for logs.

use std::{
    fmt::Write as _,
    io::{IsTerminal, Write as _},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_nats::jetstream::{self, context::ConsumerInfoErrorKind};
use hail_events::subjects;
use tokio_util::sync::CancellationToken;

use super::{
    ledger::{Ledger, lock},
    schedule::Clock,
};
use hail_runtime::service::Service;

/// Longest wait for the four consumer infos of one progress line.
const LAG_TIMEOUT: Duration = Duration::from_millis(800);

/// A service's lag as its durable consumer shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// The durable does not exist: the service never ran against this broker.
    Absent,
    /// `num_pending + num_ack_pending`.
    Messages(u64),
    /// The consumer info did not come (timeout, broker trouble).
    Unknown,
}

impl Lag {
    fn text(self) -> String {
        match self {
            Lag::Absent => "-".into(),
            Lag::Messages(n) => n.to_string(),
            Lag::Unknown => "?".into(),
        }
    }
}

/// The lag of each of the four services, in [`Service::ALL`] order, asked at once.
pub async fn lags(js: &jetstream::Context) -> Vec<(Service, Lag)> {
    let asks = Service::ALL.map(|role| async move {
        let lag = tokio::time::timeout(LAG_TIMEOUT, lag(js, role.durable())).await;
        (role, lag.unwrap_or(Lag::Unknown))
    });
    futures::future::join_all(asks).await
}

async fn lag(js: &jetstream::Context, durable: &str) -> Lag {
    let Ok(stream) = js.get_stream_no_info(subjects::RIDES_STREAM).await else {
        return Lag::Unknown;
    };
    match stream.consumer_info(durable).await {
        Ok(info) => Lag::Messages(info.num_pending + info.num_ack_pending as u64),
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => Lag::Absent,
        Err(_) => Lag::Unknown,
    }
}

/// Prints the progress line every second until `stop`.
pub async fn report_progress(
    js: jetstream::Context,
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
    stop: CancellationToken,
) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    let mut last_published = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let lags = lags(&js).await;
        let (line, published) = line(&lock(&ledger), &lags, clock.elapsed_us(), last_published);
        last_published = published;
        print(&line, tty);
    }
    if tty {
        eprintln!();
    }
}

/// The progress line, and the rides published so far (for the next line's rate).
fn line(
    l: &Ledger,
    lags: &[(Service, Lag)],
    elapsed_us: u64,
    last_published: u64,
) -> (String, u64) {
    let mut s = format!(
        "[{:>6.1} s] published {} ({}/s), failed {} | answers match {} price {} screen {} | lag",
        elapsed_us as f64 / 1e6,
        l.published,
        l.published.saturating_sub(last_published),
        l.failed,
        l.answers.matched + l.answers.unmatched,
        l.answers.priced,
        l.answers.screened,
    );
    for (role, lag) in lags {
        let _ = write!(s, " {} {}", role.durable(), lag.text());
    }
    (s, l.published)
}

fn print(line: &str, tty: bool) {
    let mut err = std::io::stderr().lock();
    let _ = if tty {
        // Carriage return and erase line: redraw in place.
        write!(err, "\r\x1b[2K{line}")
    } else {
        writeln!(err, "{line}")
    };
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::schedule::Arrival;

    #[test]
    fn the_line_shows_counts_rate_and_lag() {
        let mut l = Ledger::new();
        for index in 0..3 {
            l.schedule(Arrival { index, at_us: 0 });
            l.stored(index, 0, 10, false);
        }
        let lags = [
            (Service::Matching, Lag::Messages(12)),
            (Service::Pricing, Lag::Absent),
            (Service::Fraud, Lag::Unknown),
            (Service::Analytics, Lag::Messages(0)),
        ];
        let (text, published) = line(&l, &lags, 2_500_000, 1);
        assert_eq!(published, 3);
        assert_eq!(
            text,
            "[   2.5 s] published 3 (2/s), failed 0 | answers match 0 price 0 screen 0 \
             | lag matching 12 pricing - fraud ? analytics 0"
        );
    }
}
