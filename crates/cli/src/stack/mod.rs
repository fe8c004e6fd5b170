//! The local stack: nats-server, the four services, the monitor and Prometheus,
//! each its own process, all state under one folder (`.hail/` by default).
//!
//! - [`layout`]: where binaries, config and state live.
//! - [`component`]: what each process is and how to tell it is ready.
//! - [`cluster`]: one nats-server or a cluster of nodes `nats-1..N`, and the
//!   seeds every other process connects to.
//! - [`process`]: starting detached processes, pid files, stopping them.

pub mod cluster;
pub mod component;
pub mod layout;
pub mod process;

pub use cluster::Topology;
pub use component::{Component, SERVICES, local_identity};
pub use layout::Layout;
