//! matching's claims layer against a real nats-server: a claim first expects
//! the revision the index knows for the driver's key (one write when it is
//! current), and whatever that guess is — current, stale, of a claim that
//! expired, of a key never written — the driver is won exactly when no ride
//! holds it.

use std::time::Duration;

use anyhow::{Result, ensure};
use hail_e2e::{rides, serial};
use hail_events::{DriverId, RideId};
use hail_matching::claims::{Claims, DriverClaim, Lifetimes};
use hail_testkit::{NatsServer, wait_until};

fn won(c: DriverClaim) -> Result<u64> {
    match c {
        DriverClaim::Won { revision } => Ok(revision),
        DriverClaim::Taken => anyhow::bail!("taken, expected won"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_won_exactly_when_no_ride_holds_the_driver_whatever_revision_it_expects()
-> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    let lifetimes = Lifetimes {
        claim_ttl: Duration::from_secs(1),
        forget_after: Duration::from_secs(3600),
    };
    let claims = Claims::open(&js, 1, lifetimes).await?;
    let d = DriverId::new("d-0")?;
    let ride = |n: &str| RideId::new(n).unwrap();

    // Never claimed: expecting nothing, and expecting a release it never had.
    let first = won(claims.claim_driver(&d, &ride("r1"), 0).await?)?;
    let other = DriverId::new("d-9")?;
    won(claims.claim_driver(&other, &ride("r9"), 12_345).await?)?;

    // Held: taken, whatever release it expects.
    for released_at in [0, first + 100] {
        let c = claims.claim_driver(&d, &ride("r2"), released_at).await?;
        ensure!(
            c == DriverClaim::Taken,
            "held by r1, expecting {released_at}: {c:?}"
        );
    }

    // Released: won expecting the release (what the index knows, usually),
    // and also with no expectation or a stale one (an older release).
    let released = claims.release_driver(&d, first).await?;
    let second = won(claims.claim_driver(&d, &ride("r2"), released).await?)?;
    ensure!(second > released, "{second} after {released}");
    // Held by r2: a claim expecting the older release is taken.
    let c = claims.claim_driver(&d, &ride("r3"), released).await?;
    ensure!(c == DriverClaim::Taken, "held by r2: {c:?}");
    let stale = released;
    let released = claims.release_driver(&d, second).await?;
    let third = won(claims.claim_driver(&d, &ride("r3"), stale).await?)?;
    claims.release_driver(&d, third).await?;
    won(claims.claim_driver(&d, &ride("r4"), 0).await?)?;
    ensure!(third > released);

    // A claim that expired (its TTL passed with nothing releasing it): won
    // again, expecting nothing or the release before it.
    let e = DriverId::new("d-1")?;
    let expiring = won(claims.claim_driver(&e, &ride("r5"), 0).await?)?;
    let before = claims.release_driver(&e, expiring).await?;
    won(claims.claim_driver(&e, &ride("r6"), before).await?)?;
    wait_until(Duration::from_secs(30), "d-1's claim to expire", || async {
        claims.holder(&e).await.is_ok_and(|h| h.is_none())
    })
    .await?;
    won(claims.claim_driver(&e, &ride("r7"), before).await?)?;
    let c = claims.claim_driver(&e, &ride("r8"), 0).await?;
    ensure!(c == DriverClaim::Taken, "held by r7: {c:?}");
    Ok(())
}
