//! hail's load generator and the Foundation benchmark.
//!
//! - [`city`] and [`rides`]: the cities and the valid `RideRequested` events of a run.
//! - [`publisher`]: publishing them as fast as the broker takes them, with a bounded
//!   window of PubAcks in flight; [`publish_cmd`] is the `publish` subcommand.
//! - [`null_pipeline`] with [`outputs`]: the four consumer groups of
//!   [`hail_runtime::service::Service`] as do-nothing consumers that bind the
//!   services' own durables and publish what the services would, the broker's
//!   own ceiling.
//! - [`services`]: the four real service binaries as child processes.
//! - [`drain`]: when every durable has caught up.
//! - [`latency`]: `bench --rate`, rides sent at an open-loop pace and each
//!   answer's latency from its ride's due time.
//! - [`bench`] and [`report`]: the alternating null/services runs and their table.
//! - [`run`]: the `run` subcommand, an open-loop city model (riders at a Poisson
//!   rate around demand hotspots, drivers that move, report and take trips) with
//!   latency from each ride's intended send time, lag per service and a report;
//!   [`rng`] is its seeded randomness, [`streams`] makes sure the streams exist.
#![forbid(unsafe_code)]

pub mod bench;
pub mod city;
pub mod drain;
pub mod latency;
pub mod null_pipeline;
pub mod null_processes;
pub mod outputs;
pub mod publish_cmd;
pub mod publisher;
pub mod report;
pub mod rides;
pub mod rng;
pub mod run;
pub mod services;
pub mod streams;
