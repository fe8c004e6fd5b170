//! `hail provision`: creates or updates every stream, every service's durable
//! consumer and every KV bucket, idempotently, so that the services need no
//! right to manage any of them (they only check and bind what is there).
//! Run it with an admin identity; `hail up` runs it before the services.

use std::{io::Write, time::Duration};

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_runtime::{
    config::{self, defaults},
    duration::parse_duration,
    provision::{self, StreamSettings},
    replicas::Replicas,
    service::Service,
};

/// Flags of `hail provision`: the consumer-shaping and stream flags the
/// services take, with the same environment variables and defaults, so a
/// service started with the same settings finds everything as it needs it.
#[derive(Debug, Clone, clap::Args)]
pub struct ProvisionArgs {
    /// Deliveries of one message before it is dead-lettered.
    #[arg(long, env = "HAIL_MAX_DELIVER", default_value_t = defaults::MAX_DELIVER)]
    pub max_deliver: i64,

    /// Redelivery delays (fewer entries than --max-deliver).
    #[arg(long, env = "HAIL_BACKOFF", default_value = defaults::BACKOFF, value_delimiter = ',', value_parser = parse_duration)]
    pub backoff: Vec<Duration>,

    /// Unacknowledged messages the server lets each consumer group hold.
    #[arg(long, env = "HAIL_MAX_ACK_PENDING", default_value_t = defaults::MAX_ACK_PENDING)]
    pub max_ack_pending: i64,

    /// How long RIDES keeps messages.
    #[arg(long, env = "HAIL_RIDES_MAX_AGE", default_value = defaults::RIDES_MAX_AGE, value_parser = parse_duration)]
    pub rides_max_age: Duration,

    /// Largest size of RIDES in bytes.
    #[arg(long, env = "HAIL_RIDES_MAX_BYTES", default_value_t = defaults::RIDES_MAX_BYTES)]
    pub rides_max_bytes: i64,

    /// How long every stream remembers a `Nats-Msg-Id`.
    #[arg(long, env = "HAIL_DUPLICATE_WINDOW", default_value = defaults::DUPLICATE_WINDOW, value_parser = parse_duration)]
    pub duplicate_window: Duration,

    /// Replicas of every stream and bucket: `auto` is 3 on a cluster, 1 on a
    /// single server.
    #[arg(long, env = "HAIL_REPLICAS", default_value_t = Replicas::Auto)]
    pub replicas: Replicas,
}

impl Default for ProvisionArgs {
    fn default() -> Self {
        ProvisionArgs {
            max_deliver: defaults::MAX_DELIVER,
            backoff: defaults::backoff(),
            max_ack_pending: defaults::MAX_ACK_PENDING,
            rides_max_age: defaults::rides_max_age(),
            rides_max_bytes: defaults::RIDES_MAX_BYTES,
            duplicate_window: defaults::duplicate_window(),
            replicas: Replicas::Auto,
        }
    }
}

impl ProvisionArgs {
    fn validate(&self) -> Result<(), String> {
        if self.max_ack_pending < 1 {
            return Err("--max-ack-pending must be at least 1".into());
        }
        config::validate_consumer(self.max_deliver, &self.backoff)?;
        config::validate_streams(self.duplicate_window, self.rides_max_age)
    }
}

/// Creates or updates everything; says what on `out`.
pub async fn run(js: &jetstream::Context, args: &ProvisionArgs, out: &mut dyn Write) -> Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    let replicas = args.replicas.for_client(&js.client());
    let settings = StreamSettings {
        rides_max_age: args.rides_max_age,
        rides_max_bytes: args.rides_max_bytes,
        duplicate_window: args.duplicate_window,
        replicas,
    };
    provision::ensure_streams(js, &settings).await?;
    writeln!(
        out,
        "  streams     RIDES, DRIVERS, DLQ ({replicas} replica(s))"
    )?;
    for service in Service::EVERY {
        let spec = service.spec(args.max_deliver, args.backoff.clone(), args.max_ack_pending);
        provision::ensure_consumer(js, &spec).await?;
        writeln!(out, "  consumer    {} on {}", spec.durable, spec.stream)?;
    }
    let buckets = [
        hail_matching::claims::bucket_config(replicas),
        hail_analytics::store::bucket_config(replicas),
        hail_fraud::blocklist::bucket_config(replicas),
        hail_ride_view::store::bucket_config(replicas),
        hail_gateway::idempotency::bucket_config(replicas),
    ];
    for bucket in buckets {
        let name = bucket.bucket.clone();
        provision::ensure_kv(js, bucket)
            .await
            .with_context(|| format!("cannot create or update KV bucket {name}"))?;
        writeln!(out, "  KV bucket   {name}")?;
    }
    Ok(())
}
