//! HTTP GET for `/metrics`, health endpoints and nats-server's monitor.
//!
//! One shared [`reqwest`] client: `http://` and `https://` (rustls with the
//! system's roots), IPv4 and IPv6 hosts (`http://[::1]:9105`), any framing.
//! It keeps no idle connections, so it serves any number of tokio runtimes
//! (one per `#[tokio::test]`) without handing one a connection of another.

use std::error::Error as _;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

/// Upper bound for one whole request, so a hung endpoint fails instead of stalling.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong with a GET, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// The URL is malformed or its scheme is not http/https.
    Url,
    /// No connection: refused, unreachable, name not resolved, TLS handshake failed.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The response or its body could not be read.
    Response,
}

impl fmt::Display for HttpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpErrorKind::Url => "bad url",
            HttpErrorKind::Connect => "connection failed",
            HttpErrorKind::Timeout => "timed out",
            HttpErrorKind::Response => "bad response",
        })
    }
}

/// A failed GET: its kind, the URL and the underlying causes.
#[derive(Debug, thiserror::Error)]
#[error("GET {url}: {kind}: {detail}")]
pub struct HttpError {
    kind: HttpErrorKind,
    url: String,
    /// The causes, outermost first, joined with `: `.
    detail: String,
}

impl HttpError {
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn new(url: &str, e: &reqwest::Error) -> Self {
        let kind = if e.is_builder() {
            HttpErrorKind::Url
        } else if e.is_timeout() {
            HttpErrorKind::Timeout
        } else if e.is_connect() {
            HttpErrorKind::Connect
        } else {
            HttpErrorKind::Response
        };
        let mut detail = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            detail.push_str(": ");
            detail.push_str(&c.to_string());
            cause = c.source();
        }
        Self {
            kind,
            url: url.to_owned(),
            detail,
        }
    }
}

/// GETs `url` (e.g. `"http://127.0.0.1:9101/metrics"`) and returns `(status, body)`.
///
/// Any status is returned as is; a body that is not UTF-8 is read lossily.
/// Errors (bad URL, refused, timeout, broken response) name the URL.
///
/// ```no_run
/// # async fn f() -> Result<(), hail_probe::HttpError> {
/// let (status, body) = hail_probe::http_get("http://127.0.0.1:9105/metrics").await?;
/// # let _ = (status, body);
/// # Ok(())
/// # }
/// ```
pub async fn http_get(url: &str) -> Result<(u16, String), HttpError> {
    let response = client(url)?
        .get(url)
        .send()
        .await
        .map_err(|e| HttpError::new(url, &e))?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| HttpError::new(url, &e))?;
    Ok((status, body))
}

/// [`http_get`] for synchronous code, also when called on a tokio runtime's
/// thread: the request runs on a thread and runtime of its own.
pub(crate) fn http_get_blocking(url: &str) -> Result<(u16, String), anyhow::Error> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                Ok(runtime.block_on(http_get(url))?)
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("GET {url}: the request thread panicked")))
    })
}

/// The shared client; building it fails only when the system's TLS roots are unusable.
fn client(url: &str) -> Result<&'static reqwest::Client, HttpError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let built = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // An idle connection belongs to the runtime that opened it; keep none.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| HttpError::new("", &e).detail)
    });
    built.as_ref().map_err(|detail| HttpError {
        kind: HttpErrorKind::Connect,
        url: url.to_owned(),
        detail: format!("cannot build the HTTP client: {detail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port on `host` that was free a moment ago: nothing listens there.
    fn closed_port(host: &str) -> u16 {
        std::net::TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn connection_refused_names_the_url() {
        let url = format!("http://127.0.0.1:{}/metrics", closed_port("127.0.0.1"));
        let err = http_get(&url).await.unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Connect, "{err}");
        assert!(err.to_string().contains(&url), "{err}");
        let err = http_get_blocking(&url).unwrap_err();
        assert!(format!("{err:#}").contains(&url), "{err:#}");
    }

    #[tokio::test]
    async fn https_is_supported_and_fails_only_at_connecting() {
        let url = format!("https://127.0.0.1:{}/metrics", closed_port("127.0.0.1"));
        let err = http_get(&url).await.unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Connect, "{err}");
        assert!(!err.to_string().contains("scheme"), "{err}");
    }

    #[tokio::test]
    async fn other_schemes_and_malformed_urls_are_url_errors() {
        for url in ["ftp://127.0.0.1/x", "http://", "127.0.0.1:9101/metrics"] {
            let err = http_get(url).await.unwrap_err();
            assert_eq!(err.kind(), HttpErrorKind::Url, "{url}: {err}");
            assert!(err.to_string().contains(url), "{err}");
        }
    }
}
