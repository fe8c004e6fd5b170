//! hail-gateway as a process for the tests, and the Python tools the tests
//! run against it (schemathesis, the examples), found the way nats-server is:
//! through a variable `./dev install` sets, else where `./dev install` puts
//! them (`.hail/py`, a virtual environment of pinned packages).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, ensure};
use hail_testkit::{Launch, Process, bin_path, free_port};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// deploy/local/cities.toml, as `hail up` passes it.
pub fn cities_file() -> PathBuf {
    repo_root().join("deploy/local/cities.toml")
}

/// A running hail-gateway.
pub struct Gateway {
    pub process: Process,
    pub addr: String,
    launch: Launch,
}

impl Gateway {
    /// Starts hail-gateway against `nats_url` on a free port with the local
    /// cities and waits until it is ready; `extra` flags follow.
    pub async fn start(nats_url: &str, extra: &[&str]) -> Result<Gateway> {
        let addr = format!("127.0.0.1:{}", free_port());
        let launch = Launch::new(bin_path("hail-gateway")?)
            .args(["--nats-url", nats_url, "--listen", &addr, "--cities"])
            .args([cities_file().display().to_string()])
            .args(extra)
            .envs([("RUST_LOG", "info")]);
        let process = launch
            .ready(&format!("http://{addr}/readyz"), Duration::from_secs(30))
            .await?;
        Ok(Gateway {
            process,
            addr,
            launch,
        })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it (SIGTERM) and starts it again on the same port.
    pub async fn restart(&mut self) -> Result<()> {
        self.process.terminate(Duration::from_secs(15))?;
        self.process = self
            .launch
            .ready(
                &format!("http://{}/readyz", self.addr),
                Duration::from_secs(30),
            )
            .await?;
        Ok(())
    }
}

/// A tool of `.hail/py/bin` (`schemathesis`, `python3`): `$<var>` if set,
/// else `.hail/py/bin/<name>`; the error says to run `./dev install`.
pub fn python_tool(var: &str, name: &str) -> Result<PathBuf> {
    let path = match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => repo_root().join(".hail/py/bin").join(name),
    };
    ensure!(
        path.is_file(),
        "{name} not found at {} (set {var}); install it with ./dev install",
        path.display()
    );
    Ok(path)
}

/// schemathesis: `$SCHEMATHESIS_BIN`, else `.hail/py/bin/schemathesis`.
pub fn schemathesis_bin() -> Result<PathBuf> {
    python_tool("SCHEMATHESIS_BIN", "schemathesis")
}

/// The Python with nats-py and msgpack: `$HAIL_PYTHON`, else `.hail/py/bin/python3`.
pub fn python_bin() -> Result<PathBuf> {
    python_tool("HAIL_PYTHON", "python3")
}

/// Runs `program args` to completion (at most `timeout`) in the temporary
/// directory (schemathesis leaves a cache where it runs), returning its exit
/// success and its output.
pub async fn run_tool(
    program: &Path,
    args: &[String],
    envs: &[(&str, String)],
    timeout: Duration,
) -> Result<(bool, String)> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(std::env::temp_dir())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .with_context(|| format!("{} did not finish within {timeout:?}", program.display()))?
        .with_context(|| format!("cannot run {}", program.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}
