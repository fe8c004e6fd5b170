//! `hail dlq purge`: delete dead letters, only after `--yes`.

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::stream::Stream;

use super::letter::{filter_of, read};

pub(super) async fn purge(stream: &Stream, service: Option<&str>, yes: bool) -> Result<()> {
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
