//! The checkpoint store against a real nats-server: compare-and-set between two
//! writers, adopting our own write after a lost acknowledgement, reading.

use std::time::Duration;

use anyhow::Result;
use async_nats::jetstream;
use hail_analytics::{
    checkpoint::{BUCKET, Checkpoint, FORMAT, KEY},
    event::RideEvent,
    state::State,
    store::{self, CheckpointStore, StoreError},
};
use hail_events::sample;
use hail_testkit::NatsServer;

fn checkpoint(writer: &str, requests: u64) -> Checkpoint {
    let mut state = State::default();
    for seq in 1..=requests {
        let ride = sample::ride_requested(&format!("r{seq}"), "berlin");
        state.apply(seq, &RideEvent::Requested(ride));
    }
    Checkpoint {
        format: FORMAT,
        writer: writer.into(),
        saved_at_ms: 1,
        state,
    }
}

async fn js_of(server: &NatsServer) -> Result<jetstream::Context> {
    Ok(jetstream::new(async_nats::connect(server.url()).await?))
}

#[tokio::test]
async fn the_slower_of_two_writers_gets_a_conflict_and_takes_up_the_stored_checkpoint() -> Result<()>
{
    let server = NatsServer::start()?;
    let js = js_of(&server).await?;
    assert!(
        store::read(&js, Duration::from_secs(5)).await.is_err(),
        "no bucket yet"
    );
    let (mut a, loaded) = CheckpointStore::open(&js, 1, "a".into()).await?;
    assert!(loaded.is_none());
    assert!(store::read(&js, Duration::from_secs(5)).await?.is_none());
    a.save(&checkpoint("a", 1)).await?;

    let (mut b, loaded) = CheckpointStore::open(&js, 1, "b".into()).await?;
    assert_eq!(loaded, Some(checkpoint("a", 1)));
    a.save(&checkpoint("a", 2)).await?;
    let err = b.save(&checkpoint("b", 3)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { writer, .. } if writer == "a"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("another analytics instance wrote it")
    );

    let (stored, revision) = store::read(&js, Duration::from_secs(5)).await?.unwrap();
    assert_eq!(stored, checkpoint("a", 2), "b overwrote nothing");
    assert_eq!(revision, a.revision());

    // The loser takes up the winner's checkpoint, then extends it.
    assert_eq!(b.reload_if_changed().await?, Some(Some(checkpoint("a", 2))));
    assert_eq!(b.reload_if_changed().await?, None, "nothing new since");
    b.save(&checkpoint("b", 3)).await?;
    assert_eq!(a.reload_if_changed().await?, Some(Some(checkpoint("b", 3))));
    Ok(())
}

#[tokio::test]
async fn a_write_whose_ack_was_lost_is_recognised_as_our_own() -> Result<()> {
    let server = NatsServer::start()?;
    let js = js_of(&server).await?;
    let (mut a, _) = CheckpointStore::open(&js, 1, "a".into()).await?;
    a.save(&checkpoint("a", 1)).await?;
    // As if our previous write was stored but its acknowledgement never came:
    // the key moved on without our store knowing the new revision.
    let kv = js.get_key_value(BUCKET).await?;
    kv.put(KEY, checkpoint("a", 2).encode()?).await?;

    a.save(&checkpoint("a", 3)).await?;
    let (stored, _) = store::read(&js, Duration::from_secs(5)).await?.unwrap();
    assert_eq!(stored, checkpoint("a", 3));
    Ok(())
}
