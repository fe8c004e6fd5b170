//! `hail dlq replay`: republish dead letters to their original subject, for the
//! service that gave up on them. The headers are the runtime's replay protocol
//! ([`hail_runtime::replay`]); replaying the same dead letter twice inside the
//! duplicate window is stored once.

use anyhow::{Context as _, Result, anyhow, bail};
use async_nats::jetstream::{self, stream::Stream};
use hail_events::{AnyEvent, EventError};
use hail_runtime::replay::Replay;

use super::letter::{Letter, fetch, filter_of, read};

/// The replay of `letter`, or why its stored headers do not allow one.
fn replay_of(letter: &Letter) -> Result<Replay> {
    Replay::of_dead_letter(&letter.headers)
        .map_err(|e| anyhow!("dead letter {} has {e}", letter.seq))
}

/// Whether a dead letter is worth replaying: a body this build cannot decode
/// would only be dead-lettered again, unless forced.
fn replayable(letter: &Letter, force: bool) -> std::result::Result<(), EventError> {
    if force {
        return Ok(());
    }
    AnyEvent::from_payload(&letter.payload).map(|_| ())
}

pub(super) async fn replay_one(
    js: &jetstream::Context,
    stream: &Stream,
    seq: u64,
    force: bool,
) -> Result<()> {
    let letter = fetch(stream, seq).await?;
    if let Err(e) = replayable(&letter, force) {
        bail!(
            "dead letter {seq} does not decode ({e}): replaying it would only dead-letter it again; --force to replay anyway"
        );
    }
    publish(js, &letter).await.map(|_| ())
}

pub(super) async fn replay_all(
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

#[cfg(test)]
mod tests {
    use async_nats::HeaderMap;
    use hail_events::{codec, headers, sample};

    use super::*;
    use crate::dlq::letter::tests::letter;

    #[test]
    fn replays_to_the_original_subject_for_the_service() {
        let r = replay_of(&letter(Vec::new(), &[])).unwrap();
        assert_eq!(r.subject, "rides.requested.berlin");
        let get = |k: &str| r.headers.get(k).unwrap().as_str().to_string();
        assert_eq!(get(headers::REPLAY_FOR), "fraud");
        assert_eq!(get(headers::REPLAY_OF), "12");
        assert_eq!(get(headers::MSG_ID), "replay:fraud:12");
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
    fn only_bodies_that_decode_replay_unless_forced() {
        let ride = codec::encode(&sample::ride_requested("r1", "berlin")).unwrap();
        assert!(replayable(&letter(ride.to_vec(), &[]), false).is_ok());
        let bad = sample::ride_requested_raw("bad-lat", "berlin", 95.5, 13.4);
        assert!(replayable(&letter(bad, &[]), false).is_err());
        let garbage = b"\xc1 not msgpack".to_vec();
        assert!(replayable(&letter(garbage.clone(), &[]), false).is_err());
        assert!(replayable(&letter(garbage, &[]), true).is_ok());
    }
}
