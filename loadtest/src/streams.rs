//! Making sure the streams the generator publishes to exist.
//!
//! Services provision the streams at start; when none has run yet, a missing
//! stream is created with their defaults so nothing published is refused. An
//! existing stream is left exactly as it is (its limits are the operator's).

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, ErrorCode, context::GetStreamErrorKind, stream};

/// Creates the stream of `config` unless a stream of that name exists.
pub async fn ensure_exists(
    js: &jetstream::Context,
    config: stream::Config,
    url: &str,
) -> Result<()> {
    let name = config.name.clone();
    let missing = match js.get_stream(&name).await {
        Ok(_) => return Ok(()),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(err)
                if err.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                e
            }
            _ => return Err(e).with_context(|| format!("checking stream {name} at {url}")),
        },
    };
    eprintln!(
        "stream {name} not found at {url} ({missing}); creating it with the services' defaults"
    );
    js.create_stream(config)
        .await
        .with_context(|| format!("creating stream {name} at {url}"))?;
    Ok(())
}
