//! A minimal HTTP/1.1 GET client for `/metrics` and health endpoints.
//!
//! Plain `http://` only, one request per connection (`Connection: close`),
//! bodies framed by `Content-Length`, chunked encoding or end of stream.
//! Enough for Prometheus scrapes and nats-server's monitor, nothing more.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bound for one whole request, so a hung endpoint fails a test instead of stalling it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `url` (e.g. `"http://127.0.0.1:9101/metrics"`) and returns `(status, body)`.
///
/// Any status is returned as is; errors (refused, timeout, malformed
/// response) name the URL.
pub async fn http_get(url: &str) -> Result<(u16, String)> {
    let request = async {
        let target = Target::parse(url)?;
        let mut stream = tokio::net::TcpStream::connect(&target.authority).await?;
        stream.write_all(target.request().as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_response(&raw)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| Err(anyhow!("no complete response within {REQUEST_TIMEOUT:?}")))
        .with_context(|| format!("GET {url}"))
}

/// [`http_get`] for synchronous code, such as waiting for a server to become ready.
pub fn http_get_blocking(url: &str) -> Result<(u16, String)> {
    let request = || {
        let target = Target::parse(url)?;
        let addr = target
            .authority
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", target.authority))?;
        let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
        stream.write_all(target.request().as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        parse_response(&raw)
    };
    request().with_context(|| format!("GET {url}"))
}

#[derive(Debug, PartialEq)]
struct Target {
    /// `host:port`, as connected to and sent in `Host`.
    authority: String,
    /// Path and query, at least `/`.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// URLs are supported"))?;
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            bail!("URL has no host");
        }
        let authority = match authority.rsplit_once(':') {
            Some(_) => authority.to_owned(),
            None => format!("{authority}:80"),
        };
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self { authority, path })
    }

    fn request(&self) -> String {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path, self.authority
        )
    }
}

fn parse_response(raw: &[u8]) -> Result<(u16, String)> {
    let head_end =
        find(raw, b"\r\n\r\n").ok_or_else(|| anyhow!("response has no complete header"))?;
    let head = std::str::from_utf8(&raw[..head_end]).context("response header is not UTF-8")?;
    let body = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        }
    }
    let body = match (chunked, length) {
        (true, _) => decode_chunked(body)?,
        (false, Some(n)) => body
            .get(..n)
            .ok_or_else(|| anyhow!("body has {} of {n} bytes", body.len()))?
            .to_vec(),
        (false, None) => body.to_vec(),
    };
    let body = String::from_utf8(body).context("response body is not UTF-8")?;
    Ok((status, body))
}

fn decode_chunked(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n").ok_or_else(|| anyhow!("truncated chunk size"))?;
        let size_line = std::str::from_utf8(&raw[..line_end])?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {size_hex:?}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = raw.get(..size).ok_or_else(|| anyhow!("truncated chunk"))?;
        body.extend_from_slice(chunk);
        raw = raw
            .get(size + 2..)
            .ok_or_else(|| anyhow!("truncated chunk"))?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(authority: &str, path: &str) -> Target {
        Target {
            authority: authority.into(),
            path: path.into(),
        }
    }

    #[test]
    fn parses_urls() {
        let parse = |u| Target::parse(u).unwrap();
        assert_eq!(
            parse("http://127.0.0.1:9101/metrics"),
            target("127.0.0.1:9101", "/metrics")
        );
        assert_eq!(
            parse("http://localhost:8222"),
            target("localhost:8222", "/")
        );
        assert_eq!(parse("http://h:1?x=1"), target("h:1", "/?x=1"));
        assert_eq!(
            parse("http://h/healthz?a=b"),
            target("h:80", "/healthz?a=b")
        );
        assert!(Target::parse("https://h/").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn request_closes_the_connection() {
        let req = target("h:1", "/metrics").request();
        assert!(
            req.starts_with("GET /metrics HTTP/1.1\r\nHost: h:1\r\n"),
            "{req}"
        );
        assert!(
            req.contains("Connection: close\r\n") && req.ends_with("\r\n\r\n"),
            "{req}"
        );
    }

    #[test]
    fn parses_content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-type: text/plain\r\n\r\nhello";
        assert_eq!(parse_response(raw).unwrap(), (200, "hello".into()));
    }

    #[test]
    fn parses_chunked_body() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n\
                    4\r\nwiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap(), (503, "wikipedia ".into()));
    }

    #[test]
    fn body_until_end_of_stream_without_framing() {
        let raw = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse_response(raw).unwrap(), (404, "nope".into()));
    }

    #[test]
    fn rejects_truncated_responses() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc";
        assert!(parse_response(chunked).is_err());
    }

    #[tokio::test]
    async fn connection_refused_names_the_url() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/metrics");
        let err = http_get(&url).await.unwrap_err();
        assert!(format!("{err:#}").contains(&url), "{err:#}");
        let err = http_get_blocking(&url).unwrap_err();
        assert!(format!("{err:#}").contains(&url), "{err:#}");
    }
}
