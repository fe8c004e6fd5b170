//! Which pin of a one-active group ([`crate::service::Service::one_active`])
//! this instance last received: the server marks every message it delivers to
//! the pinned instance with `Nats-Pin-Id`, and names the pinned id in the
//! consumer's info, so `hail status` can tell which instance is active.

use std::sync::{Arc, Mutex};

use async_nats::{HeaderMap, jetstream::consumer::PullConsumer};

/// The `Nats-Pin-Id` of the last delivery that carried one.
#[derive(Debug, Clone, Default)]
pub struct PinSeen(Arc<Mutex<Option<String>>>);

impl PinSeen {
    /// Remembers the delivery's pin id, if it has one.
    pub fn note(&self, headers: Option<&HeaderMap>) {
        let Some(id) = headers.and_then(|h| h.get(async_nats::header::NATS_PIN_ID)) else {
            return;
        };
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.as_deref() != Some(id.as_str()) {
            *seen = Some(id.as_str().to_string());
        }
    }

    /// The last pin id received, if any.
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// On a clean stop: if the server still pins this instance, unpin it so that
/// a standby takes over now rather than after the pinned TTL.
pub async fn release(
    js: &async_nats::jetstream::Context,
    consumer: &mut PullConsumer,
    seen: &PinSeen,
) {
    let Some(mine) = seen.get() else { return };
    let Ok(info) = consumer.info().await else {
        return;
    };
    let (stream, durable) = (info.stream_name.clone(), info.name.clone());
    let Some(group) = info
        .priority_groups
        .iter()
        .find(|g| g.pinned_client_id.as_deref() == Some(mine.as_str()))
        .map(|g| g.group.clone())
    else {
        return;
    };
    let unpinned = async {
        js.get_stream(&stream)
            .await?
            .unpin_consumer(&durable, &group)
            .await
            .map_err(async_nats::Error::from)
    };
    match unpinned.await {
        Ok(()) => tracing::info!(group, "unpinned: a standby takes over"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot unpin; a standby takes over after the pinned TTL")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_pin_and_ignores_deliveries_without_one() {
        let seen = PinSeen::default();
        assert_eq!(seen.get(), None);
        seen.note(None);
        let mut h = HeaderMap::new();
        h.insert(async_nats::header::NATS_PIN_ID, "a1");
        seen.note(Some(&h));
        seen.note(Some(&HeaderMap::new()));
        assert_eq!(seen.get().as_deref(), Some("a1"));
        h.insert(async_nats::header::NATS_PIN_ID, "b2");
        seen.note(Some(&h));
        assert_eq!(seen.clone().get().as_deref(), Some("b2"));
    }
}
