//! Prometheus for hail's tests: the files in `deploy/local/prometheus` and
//! `deploy/grafana`, a real Prometheus process, and promtool.
//!
//! - [`config`]: the one generator of `prometheus.yml`, for the checked-in file
//!   (default ports) and for a test's copy (free ports), so the two cannot drift.
//! - [`server`]: [`Prometheus`], a real `prometheus` child process on a free
//!   loopback port with a temporary store, serving hail's rules and consoles.
//! - [`queries`]: the queries of the console dashboard and the Grafana dashboard,
//!   read out of their files, so a test checks what the dashboards really ask.
//! - [`scope`]: whether a query reads hail's jobs only.
//!
//! The binaries come from Debian's `prometheus` package (`/usr/bin/prometheus`,
//! `/usr/bin/promtool`); [`tool`] finds them or says how to install them.

pub mod config;
pub mod queries;
pub mod scope;
pub mod server;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

pub use config::Target;
pub use server::{Prometheus, RangeSeries, Sample};

/// The repository's root (where the workspace `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `deploy/local/prometheus`: config, rules, rule tests, consoles, console libraries.
pub fn deploy_dir() -> PathBuf {
    repo_root().join("deploy/local/prometheus")
}

/// `deploy/grafana/dashboards/hail.json`.
pub fn grafana_dashboard() -> PathBuf {
    repo_root().join("deploy/grafana/dashboards/hail.json")
}

/// Finds `name` (`prometheus` or `promtool`) on `PATH`, or fails saying how to install it.
pub fn tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    match found {
        Some(p) => Ok(p),
        None => bail!(
            "{name} not found on PATH: install Debian's prometheus package \
             (`apt-get install -y prometheus`, which provides /usr/bin/prometheus \
             and /usr/bin/promtool)"
        ),
    }
}
