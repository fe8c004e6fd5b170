//! `hail dlq …`: the dead letters in the DLQ stream (`dlq.<service>`) — list
//! them, show one with its body decoded, replay them to their original subject
//! for the service that gave up on them, purge them.
//!
//! A replay carries the original payload and headers, minus every `Hail-Dlq-*`
//! header, plus `Hail-Replay-For`/`Hail-Replay-Of` (the other services ack it
//! without handling it) and a deterministic `Nats-Msg-Id`, so replaying the same
//! dead letter twice inside the duplicate window is stored once.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use async_nats::{
    HeaderMap,
    jetstream::{
        self, ErrorCode,
        consumer::pull::OrderedConfig,
        context::GetStreamErrorKind,
        stream::{RawMessageErrorKind, Stream},
    },
};
use futures::StreamExt;
use hail_events::{
    DriverLocationUpdated, Event, EventError, FareQuoted, RideCompleted, RideMatched,
    RideRequested, RideScreened, RideUnmatched, codec, headers, subjects,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::stack::SERVICES;

/// Flags of `hail dlq`.
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// One line per dead letter: DLQ seq, stored (UTC), service, kind, origin, deliveries, reason.
    Ls {
        /// Only this service's dead letters.
        #[arg(long, value_parser = service_parser())]
        service: Option<String>,
        /// Print JSON (with the full reason) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Everything about one dead letter: reason, origin, headers, the body decoded.
    Show {
        /// Its sequence in the DLQ stream (first column of `hail dlq ls`).
        seq: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Republish dead letters to their original subject, for the service that gave up on them.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["seq", "all"])))]
    Replay {
        /// The DLQ sequence of the one dead letter to replay.
        seq: Option<u64>,
        /// Replay every dead letter (of --service if given) whose body decodes.
        #[arg(long)]
        all: bool,
        /// With --all: only this service's dead letters.
        #[arg(long, requires = "all", value_parser = service_parser())]
        service: Option<String>,
        /// Replay even a body that does not decode here (e.g. a newer schema version
        /// the upgraded service reads); otherwise it would only be dead-lettered again.
        #[arg(long)]
        force: bool,
    },
    /// Delete dead letters (all, or one service's).
    Purge {
        /// Only this service's dead letters.
        #[arg(long, value_parser = service_parser())]
        service: Option<String>,
        /// Really purge; without it, only say how many would go.
        #[arg(long)]
        yes: bool,
    },
}

fn service_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(SERVICES)
}

/// Runs one `hail dlq` subcommand.
pub async fn run(js: &jetstream::Context, args: DlqArgs) -> Result<()> {
    let stream = dlq_stream(js).await?;
    match args.command {
        DlqCommand::Ls { service, json } => ls(&stream, service.as_deref(), json).await,
        DlqCommand::Show { seq, json } => show(&stream, seq, json).await,
        DlqCommand::Replay {
            seq: Some(seq),
            force,
            ..
        } => replay_one(js, &stream, seq, force).await,
        DlqCommand::Replay { service, force, .. } => {
            replay_all(js, &stream, service.as_deref(), force).await
        }
        DlqCommand::Purge { service, yes } => purge(&stream, service.as_deref(), yes).await,
    }
}

async fn dlq_stream(js: &jetstream::Context) -> Result<Stream> {
    match js.get_stream(subjects::DLQ_STREAM).await {
        Ok(s) => Ok(s),
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            bail!(
                "there is no {} stream yet: no hail service has started against this server",
                subjects::DLQ_STREAM
            )
        }
        Err(e) => Err(e).context("cannot read the DLQ stream"),
    }
}

/// One dead letter as stored in the DLQ stream.
struct Letter {
    seq: u64,
    stored: OffsetDateTime,
    headers: HeaderMap,
    payload: Vec<u8>,
}

impl Letter {
    fn get(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.as_str())
    }

    fn stream_seq(&self) -> Option<u64> {
        self.get(headers::dlq::STREAM_SEQ).parse().ok()
    }

    fn summary(&self) -> Summary {
        Summary {
            dlq_seq: self.seq,
            stored_at: utc(self.stored),
            service: self.get(headers::dlq::SERVICE).to_string(),
            kind: self.get(headers::dlq::REASON_KIND).to_string(),
            subject: self.get(headers::dlq::SUBJECT).to_string(),
            stream: self.get(headers::dlq::STREAM).to_string(),
            stream_seq: self.stream_seq(),
            deliveries: self.get(headers::dlq::DELIVERIES).parse().ok(),
            reason: self.get(headers::dlq::REASON).to_string(),
        }
    }
}

/// What `ls` prints per dead letter, and the head of `show`.
#[derive(Debug, Serialize)]
struct Summary {
    dlq_seq: u64,
    stored_at: String,
    service: String,
    kind: String,
    subject: String,
    stream: String,
    stream_seq: Option<u64>,
    deliveries: Option<i64>,
    reason: String,
}

/// Every dead letter on `filter`, in DLQ order.
async fn read(stream: &Stream, filter: &str, headers_only: bool) -> Result<Vec<Letter>> {
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: filter.to_string(),
            headers_only,
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot read {filter} from the DLQ stream"))?;
    let total = consumer.cached_info().num_pending as usize;
    let mut out = Vec::with_capacity(total);
    let mut messages = consumer.messages().await?;
    while out.len() < total {
        let msg = messages.next().await.context("reading ended early")??;
        let info = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        out.push(Letter {
            seq: info.stream_sequence,
            stored: info.published,
            headers: msg.headers.clone().unwrap_or_default(),
            payload: msg.payload.to_vec(),
        });
    }
    Ok(out)
}

fn filter_of(service: Option<&str>) -> String {
    service.map_or_else(|| subjects::DLQ_ALL.to_string(), subjects::dlq)
}

async fn ls(stream: &Stream, service: Option<&str>, json: bool) -> Result<()> {
    let letters = read(stream, &filter_of(service), true).await?;
    let rows: Vec<Summary> = letters.iter().map(Letter::summary).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:>7}  {:<20}  {:<9}  {:<20}  {:<32}  {:>5}  reason",
        "dlq_seq", "stored (UTC)", "service", "kind", "origin (subject #seq)", "deliv"
    );
    for r in &rows {
        let origin = format!("{} #{}", r.subject, opt(r.stream_seq));
        let stored = r.stored_at.get(..19).unwrap_or(&r.stored_at);
        println!(
            "{:>7}  {:<20}  {:<9}  {:<20}  {:<32}  {:>5}  {}",
            r.dlq_seq,
            stored,
            r.service,
            r.kind,
            origin,
            opt(r.deliveries),
            truncate(&r.reason, 60)
        );
    }
    println!("{} dead letters", rows.len());
    Ok(())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// At most `max` characters, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

fn utc(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// One dead letter by DLQ sequence, with its body.
async fn fetch(stream: &Stream, seq: u64) -> Result<Letter> {
    match stream.get_raw_message(seq).await {
        Ok(m) => Ok(Letter {
            seq,
            stored: m.time,
            headers: m.headers,
            payload: m.payload.to_vec(),
        }),
        Err(e) if no_message(&e.kind()) => {
            bail!("no dead letter with DLQ sequence {seq} (see `hail dlq ls`)")
        }
        Err(e) => Err(e).with_context(|| format!("cannot read dead letter {seq}")),
    }
}

fn no_message(kind: &RawMessageErrorKind) -> bool {
    match kind {
        RawMessageErrorKind::NoMessageFound => true,
        RawMessageErrorKind::JetStream(j) => j.error_code() == ErrorCode::NO_MESSAGE_FOUND,
        _ => false,
    }
}

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

type ToJson = fn(&[u8]) -> Result<serde_json::Value, EventError>;

/// Every event type the codec knows, by name.
const DECODERS: [(&str, ToJson); 7] = [
    (RideRequested::NAME, as_json::<RideRequested>),
    (
        DriverLocationUpdated::NAME,
        as_json::<DriverLocationUpdated>,
    ),
    (RideMatched::NAME, as_json::<RideMatched>),
    (RideUnmatched::NAME, as_json::<RideUnmatched>),
    (FareQuoted::NAME, as_json::<FareQuoted>),
    (RideScreened::NAME, as_json::<RideScreened>),
    (RideCompleted::NAME, as_json::<RideCompleted>),
];

fn as_json<E: Event>(bytes: &[u8]) -> Result<serde_json::Value, EventError> {
    let event: E = codec::decode(bytes)?;
    serde_json::to_value(&event).map_err(|e| EventError::Encode(e.to_string()))
}

/// (event name, schema version, event as JSON) when the bytes decode and validate.
fn decode_json(bytes: &[u8]) -> Result<(String, u16, serde_json::Value), EventError> {
    let probe = codec::probe(bytes)?;
    let Some((_, to_json)) = DECODERS.iter().find(|(name, _)| *name == probe.t) else {
        return Err(EventError::NotAnEvent(format!(
            "unknown event type {:?}",
            probe.t
        )));
    };
    Ok((probe.t, probe.v, to_json(bytes)?))
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
        .filter(|(name, _)| !is_dlq_header(name.as_ref()))
        .map(|(name, values)| {
            let values = values.iter().map(|v| v.as_str().to_string()).collect();
            (name.to_string(), values)
        })
        .collect()
}

fn is_dlq_header(name: &str) -> bool {
    name.len() >= 9 && name[..9].eq_ignore_ascii_case("Hail-Dlq-")
}

async fn show(stream: &Stream, seq: u64, json: bool) -> Result<()> {
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
    match &body {
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

/// Subject, headers and message id of the replay of a dead letter.
#[derive(Debug)]
struct Replay {
    subject: String,
    headers: HeaderMap,
    service: String,
    stream_seq: u64,
}

fn replay_of(letter: &Letter) -> Result<Replay> {
    let need = |name: &str| {
        let v = letter.get(name);
        anyhow::ensure!(
            !v.is_empty(),
            "dead letter {} has no {name} header",
            letter.seq
        );
        Ok(v.to_string())
    };
    let service = need(headers::dlq::SERVICE)?;
    let subject = need(headers::dlq::SUBJECT)?;
    let stream_seq: u64 = need(headers::dlq::STREAM_SEQ)?.parse().with_context(|| {
        format!(
            "dead letter {} has a bad {} header",
            letter.seq,
            headers::dlq::STREAM_SEQ
        )
    })?;
    let headers = replay_headers(&letter.headers, &service, stream_seq);
    Ok(Replay {
        subject,
        headers,
        service,
        stream_seq,
    })
}

/// The original headers minus `Hail-Dlq-*`, plus the replay's own. A dead letter
/// that is itself a failed replay keeps pointing at the first original (its
/// `Hail-Replay-Of`), and gets a message id of its own so it is not dropped as a
/// duplicate of the replay that failed.
fn replay_headers(stored: &HeaderMap, service: &str, stream_seq: u64) -> HeaderMap {
    let original = stored
        .get(headers::REPLAY_OF)
        .map_or_else(|| stream_seq.to_string(), |v| v.as_str().to_string());
    let mut h = HeaderMap::new();
    for (name, values) in stored.iter() {
        let n: &str = name.as_ref();
        let replaced = [headers::MSG_ID, headers::REPLAY_FOR, headers::REPLAY_OF]
            .iter()
            .any(|r| r.eq_ignore_ascii_case(n));
        if is_dlq_header(n) || replaced {
            continue;
        }
        for v in values {
            h.append(name.clone(), v.clone());
        }
    }
    h.insert(headers::REPLAY_FOR, service);
    h.insert(headers::REPLAY_OF, original.as_str());
    let id = format!("replay:{service}:{stream_seq}");
    h.insert(headers::MSG_ID, id.as_str());
    h
}

/// Whether a dead letter is worth replaying: a body this build cannot decode
/// would only be dead-lettered again, unless forced.
fn replayable(letter: &Letter, force: bool) -> std::result::Result<(), EventError> {
    if force {
        return Ok(());
    }
    decode_json(&letter.payload).map(|_| ())
}

async fn replay_one(js: &jetstream::Context, stream: &Stream, seq: u64, force: bool) -> Result<()> {
    let letter = fetch(stream, seq).await?;
    if let Err(e) = replayable(&letter, force) {
        bail!(
            "dead letter {seq} does not decode ({e}): replaying it would only dead-letter it again; --force to replay anyway"
        );
    }
    publish(js, &letter).await.map(|_| ())
}

async fn replay_all(
    js: &jetstream::Context,
    stream: &Stream,
    service: Option<&str>,
    force: bool,
) -> Result<()> {
    let letters = read(stream, &filter_of(service), false).await?;
    let (mut replayed, mut already, mut skipped) = (0, 0, 0);
    for letter in &letters {
        if let Err(e) = replayable(letter, force) {
            println!(
                "dlq {}: skipped, does not decode ({e}); --force to replay anyway",
                letter.seq
            );
            skipped += 1;
        } else if publish(js, letter).await? {
            already += 1;
        } else {
            replayed += 1;
        }
    }
    println!("{replayed} replayed, {already} already replayed, {skipped} skipped");
    Ok(())
}

/// Publishes the replay of `letter`, PubAck awaited; true when JetStream had it
/// already (the same dead letter replayed inside the duplicate window).
async fn publish(js: &jetstream::Context, letter: &Letter) -> Result<bool> {
    let r = replay_of(letter)?;
    let ack = js
        .publish_with_headers(r.subject.clone(), r.headers, letter.payload.clone().into())
        .await
        .with_context(|| format!("cannot replay dead letter {} to {}", letter.seq, r.subject))?
        .await
        .with_context(|| format!("replay of dead letter {} not acknowledged", letter.seq))?;
    let what = format!(
        "dlq {} ({} #{} for {})",
        letter.seq, r.subject, r.stream_seq, r.service
    );
    if ack.duplicate {
        println!(
            "{what}: already replayed as {} #{}",
            ack.stream, ack.sequence
        );
    } else {
        println!("{what}: replayed as {} #{}", ack.stream, ack.sequence);
    }
    Ok(ack.duplicate)
}

async fn purge(stream: &Stream, service: Option<&str>, yes: bool) -> Result<()> {
    let filter = filter_of(service);
    let whose = service.map_or_else(|| "every service".to_string(), |s| s.to_string());
    if !yes {
        let n = read(stream, &filter, true).await?.len();
        bail!("would purge {n} dead letters of {whose} ({filter}); add --yes to do it");
    }
    let purged = stream
        .purge()
        .filter(filter.clone())
        .await
        .with_context(|| format!("cannot purge {filter}"))?;
    println!("purged {} dead letters of {whose}", purged.purged);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hail_events::sample;

    fn letter(payload: Vec<u8>, extra: &[(&str, &str)]) -> Letter {
        let mut h = HeaderMap::new();
        h.insert(headers::EVENT, "RideRequested");
        h.insert(headers::RIDE_ID, "r1");
        h.insert(headers::MSG_ID, "dlq:fraud:RIDES:12");
        h.insert(headers::dlq::SERVICE, "fraud");
        h.insert(headers::dlq::SUBJECT, "rides.requested.berlin");
        h.insert(headers::dlq::STREAM_SEQ, "12");
        h.insert(headers::dlq::REASON_KIND, "max_deliveries");
        for (k, v) in extra {
            h.insert(*k, *v);
        }
        Letter {
            seq: 3,
            stored: OffsetDateTime::UNIX_EPOCH,
            headers: h,
            payload,
        }
    }

    #[test]
    fn replay_drops_dlq_headers_and_marks_the_replay() {
        let r = replay_of(&letter(Vec::new(), &[])).unwrap();
        assert_eq!(r.subject, "rides.requested.berlin");
        assert!(r.headers.iter().all(|(n, _)| !is_dlq_header(n.as_ref())));
        let get = |k: &str| r.headers.get(k).unwrap().as_str().to_string();
        assert_eq!(get(headers::REPLAY_FOR), "fraud");
        assert_eq!(get(headers::REPLAY_OF), "12");
        assert_eq!(get(headers::MSG_ID), "replay:fraud:12");
        assert_eq!(get(headers::RIDE_ID), "r1");
    }

    #[test]
    fn a_failed_replay_replays_as_the_first_original() {
        let l = letter(Vec::new(), &[(headers::REPLAY_OF, "7")]);
        let r = replay_of(&l).unwrap();
        assert_eq!(r.headers.get(headers::REPLAY_OF).unwrap().as_str(), "7");
        let id = r.headers.get(headers::MSG_ID).unwrap();
        assert_eq!(id.as_str(), "replay:fraud:12");
    }

    #[test]
    fn replay_without_origin_names_the_letter_and_header() {
        let mut l = letter(Vec::new(), &[]);
        l.headers = HeaderMap::new();
        let e = replay_of(&l).unwrap_err().to_string();
        assert!(
            e.contains("dead letter 3") && e.contains(headers::dlq::SERVICE),
            "{e}"
        );
    }

    #[test]
    fn decodes_a_valid_event_to_json() {
        let ride = sample::ride_requested("r1", "berlin");
        let (name, v, value) = decode_json(&codec::encode(&ride).unwrap()).unwrap();
        assert_eq!((name.as_str(), v), ("RideRequested", 1));
        assert_eq!(value["ride_id"], "r1");
        assert!(replayable(&letter(codec::encode(&ride).unwrap().to_vec(), &[]), false).is_ok());
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
        assert!(replayable(&letter(bad, &[]), false).is_err());
        assert!(replayable(&letter(garbage, &[]), true).is_ok());
    }

    #[test]
    fn previews_and_truncation_are_bounded() {
        let long = vec![b'a'; 100];
        assert!(escaped_preview(&long, 64).ends_with("a…"));
        assert_eq!(hex_preview(&long, 2), "61 61 …");
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
        assert!(is_dlq_header("hail-dlq-reason") && !is_dlq_header("Hail-Event"));
    }
}
