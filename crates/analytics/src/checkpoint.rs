//! The checkpoint: the state plus who wrote it and when, as stored in KV
//! (`hail_analytics` / `checkpoint`, MessagePack with named fields).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::state::State;

/// The KV bucket analytics keeps its checkpoint in.
pub const BUCKET: &str = "hail_analytics";
/// The key of the checkpoint in [`BUCKET`].
pub const KEY: &str = "checkpoint";
/// The checkpoint format this build writes and reads.
pub const FORMAT: u16 = 1;

/// What is stored under [`KEY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`FORMAT`] of the writer.
    pub format: u16,
    /// The analytics process that wrote it (instance name and start time).
    pub writer: String,
    /// When it was written, milliseconds since the Unix epoch.
    pub saved_at_ms: u64,
    /// Totals and the sequences they cover.
    pub state: State,
}

/// A stored checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Not MessagePack of a checkpoint.
    #[error("checkpoint is not readable: {0}")]
    Decode(String),
    /// Written by a build with another format.
    #[error("checkpoint format {found} is not the format {FORMAT} this build reads")]
    Format { found: u16 },
    /// Readable, but does not fit this build (histogram bounds).
    #[error("checkpoint does not fit this build: {0}")]
    Shape(String),
    /// Could not be encoded (should not happen).
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
}

impl Checkpoint {
    /// MessagePack with named fields.
    pub fn encode(&self) -> Result<Bytes, CheckpointError> {
        rmp_serde::to_vec_named(self)
            .map(Bytes::from)
            .map_err(|e| CheckpointError::Encode(e.to_string()))
    }

    /// Reads what [`Checkpoint::encode`] wrote, refusing another format.
    pub fn decode(bytes: &[u8]) -> Result<Self, CheckpointError> {
        #[derive(Deserialize)]
        struct Probe {
            format: u16,
        }
        let probe: Probe =
            rmp_serde::from_slice(bytes).map_err(|e| CheckpointError::Decode(e.to_string()))?;
        if probe.format != FORMAT {
            return Err(CheckpointError::Format {
                found: probe.format,
            });
        }
        let cp: Checkpoint =
            rmp_serde::from_slice(bytes).map_err(|e| CheckpointError::Decode(e.to_string()))?;
        cp.state.check().map_err(CheckpointError::Shape)?;
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use hail_events::sample;

    use super::*;
    use crate::event::RideEvent;

    fn checkpoint() -> Checkpoint {
        let mut state = State::default();
        state.apply(
            1,
            &RideEvent::Requested(sample::ride_requested("a", "berlin")),
        );
        state.apply(4, &RideEvent::Priced(sample::fare_quoted("a", "berlin")));
        Checkpoint {
            format: FORMAT,
            writer: "analytics-test-1".into(),
            saved_at_ms: 1_800_000_000_000,
            state,
        }
    }

    #[test]
    fn round_trips() {
        let cp = checkpoint();
        let bytes = cp.encode().unwrap();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), cp);
    }

    #[test]
    fn refuses_other_formats_and_garbage() {
        let mut cp = checkpoint();
        cp.format = 9;
        let err = Checkpoint::decode(&cp.encode().unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint format 9 is not the format 1 this build reads"
        );
        let err = Checkpoint::decode(b"\xc1").unwrap_err();
        assert!(matches!(err, CheckpointError::Decode(_)), "{err}");
    }

    #[test]
    fn refuses_histograms_of_other_bounds() {
        let mut cp = checkpoint();
        let city = cp.state.cities.values_mut().next().unwrap();
        city.surge.counts.push(0);
        let err = Checkpoint::decode(&cp.encode().unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("city berlin: Surge histogram"),
            "{err}"
        );
    }
}
