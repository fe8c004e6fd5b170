//! Waiting for a condition with a deadline: how tests wait, instead of sleeping.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::time::{Instant, sleep, timeout_at};

const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `cond` every 50 ms until it returns `true` or `timeout` passes.
///
/// A single evaluation of `cond` that hangs is cut off at the deadline too.
/// The error names `what` and how long was waited. Uses tokio's clock, so it
/// also works under paused time.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        match timeout_at(deadline, cond()).await {
            Ok(true) => return Ok(()),
            Ok(false) if Instant::now() < deadline => {}
            Ok(false) | Err(_) => bail!(
                "timed out waiting for {what}: still false after {:?} (limit {timeout:?})",
                start.elapsed()
            ),
        }
        sleep(POLL_INTERVAL.min(deadline - Instant::now())).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        wait_until(Duration::from_secs(1), "third call", || async {
            calls.fetch_add(1, Ordering::SeqCst) == 2
        })
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_naming_what_it_waited_for() {
        let err = wait_until(Duration::from_millis(200), "the impossible", || async {
            false
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("timed out waiting for the impossible"),
            "{err}"
        );
        assert!(err.contains("200ms"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_condition_is_cut_off_at_the_deadline() {
        let err = wait_until(Duration::from_secs(1), "a hung probe", || {
            std::future::pending::<bool>()
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("a hung probe"), "{err}");
    }
}
