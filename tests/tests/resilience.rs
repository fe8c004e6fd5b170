//! A service killed with SIGKILL loses nothing: the others go on, its events wait
//! in the stream, and it catches up when restarted.

use std::time::Duration;

use anyhow::Result;
use async_nats::jetstream;
use hail_e2e::{rides, serial, services};
use hail_events::subjects;
use hail_testkit::{NatsServer, wait_until};

const DRAIN: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_killed_catches_up_after_restart() -> Result<()> {
    const FIRST: usize = 5_000;
    const MORE: usize = 5_000;
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let mut svcs = services::spawn_all(&server.url()).await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);

    rides::publish(&js, "before", 0, FIRST).await?;
    wait_until(DRAIN, "analytics drained before the kill", || {
        rides::drained(&js, "analytics")
    })
    .await?;

    svcs[3].process.kill();
    rides::publish(&js, "during", 0, MORE).await?;
    let total = (FIRST + MORE) as f64;
    for svc in &svcs[..3] {
        let what = format!("{} reached {total} while analytics is down", svc.name);
        wait_until(DRAIN, &what, || async {
            svc.processed("RideRequested")
                .await
                .is_ok_and(|v| v >= total)
        })
        .await?;
        assert_eq!(svc.processed("RideRequested").await?, total, "{}", svc.name);
    }
    let (pending, _) = rides::consumer_backlog(&js, "analytics").await?;
    assert!(
        pending >= MORE as u64,
        "analytics' backlog while down: {pending}"
    );
    assert!(
        !svcs[3].process.is_running(),
        "analytics must still be down"
    );

    svcs[3].restart()?;
    svcs[3].wait_ready(Duration::from_secs(30)).await?;
    wait_until(DRAIN, "analytics caught up", || {
        rides::drained(&js, "analytics")
    })
    .await?;
    let stream = js
        .get_stream(subjects::RIDES_STREAM)
        .await?
        .get_info()
        .await?;
    let consumer = js
        .get_stream(subjects::RIDES_STREAM)
        .await?
        .consumer_info("analytics")
        .await?;
    assert_eq!(
        consumer.ack_floor.stream_sequence,
        stream.state.last_sequence
    );
    let after = svcs[3].processed("RideRequested").await?;
    assert!(
        after >= MORE as f64,
        "restarted analytics processed {after} requests"
    );
    Ok(())
}
