//! `hail dlq show`: everything about one dead letter, its body decoded as
//! whichever event it is, or a preview of the bytes that do not decode.

use std::collections::BTreeMap;

use anyhow::Result;
use async_nats::{HeaderMap, jetstream::stream::Stream};
use hail_events::{AnyEvent, EventError, codec};
use hail_runtime::dead_letter::is_dead_letter_header;
use serde::Serialize;

use super::letter::{fetch, opt};

/// The body of a dead letter: the event as JSON, or why it does not decode.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Body {
    Decoded {
        event: String,
        version: u16,
        value: serde_json::Value,
    },
    Undecodable {
        error: String,
        size: usize,
        hex: String,
        escaped: String,
    },
}

impl Body {
    fn of(bytes: &[u8]) -> Body {
        match decode_json(bytes) {
            Ok((event, version, value)) => Body::Decoded {
                event,
                version,
                value,
            },
            Err(e) => Body::Undecodable {
                error: e.to_string(),
                size: bytes.len(),
                hex: hex_preview(bytes, PREVIEW_BYTES),
                escaped: escaped_preview(bytes, PREVIEW_BYTES),
            },
        }
    }
}

/// How much of an undecodable body is shown.
const PREVIEW_BYTES: usize = 64;

/// (event name, schema version, event as JSON) when the bytes decode and validate.
fn decode_json(bytes: &[u8]) -> Result<(String, u16, serde_json::Value), EventError> {
    let version = codec::probe(bytes)?.v;
    let event = AnyEvent::from_payload(bytes)?;
    let value = serde_json::to_value(&event).map_err(|e| EventError::Encode(e.to_string()))?;
    Ok((event.name().to_string(), version, value))
}

fn hex_preview(bytes: &[u8], max: usize) -> String {
    let hex: Vec<String> = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    hex.join(" ") + if bytes.len() > max { " …" } else { "" }
}

fn escaped_preview(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    cut.escape_ascii().to_string() + if bytes.len() > max { "…" } else { "" }
}

/// The stored headers other than `Hail-Dlq-*` (those are shown as fields).
fn other_headers(h: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    h.iter()
        .filter(|(name, _)| !is_dead_letter_header(name.as_ref()))
        .map(|(name, values)| {
            let values = values.iter().map(|v| v.as_str().to_string()).collect();
            (name.to_string(), values)
        })
        .collect()
}

pub(super) async fn show(stream: &Stream, seq: u64, json: bool) -> Result<()> {
    let letter = fetch(stream, seq).await?;
    let summary = letter.summary();
    let headers = other_headers(&letter.headers);
    let body = Body::of(&letter.payload);
    if json {
        let v = serde_json::json!({ "letter": summary, "headers": headers, "body": body });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "dead letter   {} (stored {})",
        summary.dlq_seq, summary.stored_at
    );
    println!("service       {}", summary.service);
    println!("kind          {}", summary.kind);
    println!("reason        {}", summary.reason);
    let seq = opt(summary.stream_seq);
    println!(
        "origin        {} ({} seq {seq})",
        summary.subject, summary.stream
    );
    println!("deliveries    {}", opt(summary.deliveries));
    println!("headers       (as stored: Nats-Msg-Id is the dead letter's own)");
    for (name, values) in &headers {
        println!("  {name}: {}", values.join(", "));
    }
    print_body(&body)
}

fn print_body(body: &Body) -> Result<()> {
    match body {
        Body::Decoded {
            event,
            version,
            value,
        } => println!(
            "body          {event} v{version}\n{}",
            serde_json::to_string_pretty(value)?
        ),
        Body::Undecodable {
            error,
            size,
            hex,
            escaped,
        } => println!(
            "body          does not decode: {error}\n  {size} bytes, first {PREVIEW_BYTES}:\n  hex     {hex}\n  escaped {escaped}"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hail_events::sample;

    #[test]
    fn decodes_every_kind_to_json() {
        for event in sample::one_of_each("r1", "berlin") {
            let (name, v, value) = decode_json(&event.encode().unwrap()).unwrap();
            assert_eq!((name.as_str(), v), (event.name(), 1));
            assert_eq!(value["city"], "berlin");
        }
        let ride = sample::ride_requested("r1", "berlin");
        let (_, _, value) = decode_json(&codec::encode(&ride).unwrap()).unwrap();
        assert_eq!(value["ride_id"], "r1");
    }

    #[test]
    fn garbage_and_invalid_bodies_show_why_and_a_preview() {
        let garbage = b"\xc1 not msgpack".to_vec();
        match Body::of(&garbage) {
            Body::Undecodable { hex, escaped, .. } => {
                assert!(hex.starts_with("c1 20 6e"), "{hex}");
                assert_eq!(escaped, "\\xc1 not msgpack");
            }
            b => panic!("{b:?}"),
        }
        let bad = sample::ride_requested_raw("bad-lat", "berlin", 95.5, 13.4);
        let e = decode_json(&bad).unwrap_err();
        assert_eq!(e.kind(), "invalid_coordinate", "{e}");
    }

    #[test]
    fn previews_are_bounded() {
        let long = vec![b'a'; 100];
        assert!(escaped_preview(&long, 64).ends_with("a…"));
        assert_eq!(hex_preview(&long, 2), "61 61 …");
    }

    #[test]
    fn shows_the_original_headers_apart() {
        let mut h = HeaderMap::new();
        h.insert("Hail-Event", "RideRequested");
        h.insert("Hail-Dlq-Reason", "gave up");
        let shown = other_headers(&h);
        assert_eq!(shown.keys().collect::<Vec<_>>(), ["Hail-Event"]);
    }
}
