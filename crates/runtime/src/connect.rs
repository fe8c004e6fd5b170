//! Connecting to NATS: retried for a bounded time at start, then reconnecting
//! forever once connected (a broker restart must not kill a service). A server
//! that refuses the credentials or the TLS setup is not retried: see [`crate::auth`].

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use tokio::time::Instant;

use crate::auth::{self, AuthArgs, AuthError};

/// NATS could not be reached at start, or refused this identity.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No server answered in time.
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    /// The server refused the credentials or the TLS setup; retrying cannot help.
    #[error(
        "NATS at {url} refused {identity}: {reason} (check --creds, --user/--password, --nkey, --tls-ca)"
    )]
    Refused {
        /// The URL tried.
        url: String,
        /// Who connected ([`AuthArgs::identity`]).
        identity: String,
        /// What the server (or the TLS handshake) said.
        reason: String,
    },
    /// The credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] AuthError),
}

/// NATS could not be reached at start.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach NATS at {url} within {waited:?} ({attempts} attempts): {last_error}")]
pub struct Unreachable {
    /// The URL tried.
    pub url: String,
    /// How long was spent trying.
    pub waited: Duration,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt said.
    pub last_error: String,
}

/// The seed URLs of a `--nats-url`: comma-separated, blanks around them ignored.
///
/// ```
/// let seeds = hail_runtime::connect::seeds("nats://a:4222, nats://b:4222");
/// assert_eq!(seeds, ["nats://a:4222", "nats://b:4222"]);
/// ```
pub fn seeds(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect()
}

/// Connects as `name` to any of the seeds in `url` (comma-separated, see
/// [`seeds`]), retrying with a growing delay until `timeout` has passed. Once
/// connected the client learns the cluster's other servers and fails over to
/// them, so losing the node it is on loses nothing.
///
/// <!-- no_run: needs a nats-server listening on 4222. -->
/// ```no_run
/// # async fn f() -> Result<(), hail_runtime::connect::ConnectError> {
/// let client = hail_runtime::connect::connect("nats://127.0.0.1:4222", "pricing", std::time::Duration::from_secs(5)).await?;
/// # let _ = client; Ok(()) }
/// ```
pub async fn connect(url: &str, name: &str, timeout: Duration) -> Result<Client, ConnectError> {
    connect_as(url, name, timeout, &AuthArgs::default()).await
}

/// Like [`connect`], with the credentials and TLS settings of `auth`.
pub async fn connect_as(
    url: &str,
    name: &str,
    timeout: Duration,
    auth: &AuthArgs,
) -> Result<Client, ConnectError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0;
    let mut last_error = String::new();
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let options = auth
            .apply(options(name, left.max(Duration::from_millis(200))))
            .await?;
        match tokio::time::timeout(left, options.connect(seeds(url))).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) => match auth::refusal(&e) {
                Some(reason) => {
                    return Err(ConnectError::Refused {
                        url: url.to_string(),
                        identity: auth.identity(),
                        reason,
                    });
                }
                None => last_error = e.to_string(),
            },
            // Cut short by the deadline: the previous attempt's error says more.
            Err(_) if !last_error.is_empty() => {}
            Err(_) => last_error = "timed out".to_string(),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Unreachable {
                url: url.to_string(),
                waited: Duration::from_millis(start.elapsed().as_millis() as u64),
                attempts,
                last_error,
            }
            .into());
        }
        tracing::warn!(url, attempts, error = %last_error, "nats not reachable yet, retrying");
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn options(name: &str, connection_timeout: Duration) -> ConnectOptions {
    ConnectOptions::new()
        .name(name)
        .connection_timeout(connection_timeout.min(Duration::from_secs(5)))
        .max_reconnects(None)
        .event_callback(|event| async move {
            match event {
                Event::Connected => tracing::info!("nats connected"),
                Event::Disconnected => tracing::warn!("nats disconnected, reconnecting"),
                Event::SlowConsumer(sid) => tracing::warn!(sid, "nats slow consumer"),
                Event::ServerError(e) => auth::on_server_error(&e),
                other => tracing::info!(event = %other, "nats event"),
            }
        })
}
