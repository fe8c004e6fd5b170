//! Where things are: the repository (for `deploy/local`), the binaries and the state folder.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// Paths the stack commands use.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The checkout holding `deploy/local`.
    pub root: PathBuf,
    /// Folder of the hail binaries (next to the running `hail`).
    pub bin_dir: PathBuf,
    /// All state: pid files, logs, stores.
    pub state: PathBuf,
}

impl Layout {
    /// Finds the checkout (`$HAIL_ROOT`, the current folder or one above it, or
    /// two folders above the binary as in `target/release/hail`) and the binaries.
    pub fn discover() -> Result<Layout> {
        let exe = std::env::current_exe().context("cannot locate the hail binary")?;
        let bin_dir = exe
            .parent()
            .context("hail binary has no folder")?
            .to_path_buf();
        let candidates = std::env::var_os("HAIL_ROOT")
            .map(PathBuf::from)
            .into_iter()
            .chain(
                std::env::current_dir()
                    .ok()
                    .into_iter()
                    .flat_map(|d| d.ancestors().map(Path::to_path_buf).collect::<Vec<_>>()),
            )
            .chain(bin_dir.ancestors().map(Path::to_path_buf));
        let root = candidates
            .into_iter()
            .find(|d| d.join("deploy/local/nats.conf").is_file())
            .context("cannot find the hail checkout (a folder with deploy/local/nats.conf); run from it or set HAIL_ROOT")?;
        let state = std::env::var_os("HAIL_STATE")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".hail"));
        Ok(Layout {
            root,
            bin_dir,
            state,
        })
    }

    /// `deploy/local/<name>`.
    pub fn deploy(&self, name: &str) -> PathBuf {
        self.root.join("deploy/local").join(name)
    }

    /// The marker `hail up --auth` leaves while the stack runs with identities.
    pub fn auth_marker(&self) -> PathBuf {
        self.state.join("auth")
    }

    /// Whether the stack runs with deploy/local/auth.conf's identities.
    pub fn auth_on(&self) -> bool {
        self.auth_marker().is_file()
    }

    /// Pid file of a component.
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.state.join("run").join(format!("{name}.pid"))
    }

    /// Log file of a component.
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.state.join("logs").join(format!("{name}.log"))
    }

    /// A hail binary next to this one.
    pub fn hail_bin(&self, name: &str) -> Result<PathBuf> {
        let p = self.bin_dir.join(name);
        anyhow::ensure!(
            p.is_file(),
            "{} not found; build it with `cargo build --release --workspace --bins`",
            p.display()
        );
        Ok(p)
    }

    /// A tool: `$<ENV>`, then `.hail/tools/bin/<name>`, then PATH.
    pub fn tool(&self, name: &str, env: &str, install_hint: &str) -> Result<PathBuf> {
        if let Some(p) = std::env::var_os(env) {
            return Ok(PathBuf::from(p));
        }
        let local = self.state.join("tools/bin").join(name);
        if local.is_file() {
            return Ok(local);
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .with_context(|| format!("{name} not found (set {env} or {install_hint})"))
    }
}
