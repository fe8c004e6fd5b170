//! A private nats-server with JetStream, for a benchmark run or one test: free
//! loopback ports, a temporary store, killed on drop, and restartable on the
//! same ports to simulate a crash.

use std::ffi::OsString;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tempfile::TempDir;

use crate::bins::nats_server_bin;
use crate::http::http_get_blocking;
use crate::launch::Launch;
use crate::process::{Process, read_log};

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// JetStream's file storage limit unless the caller asks for another. nats-server
/// otherwise derives it from the free disk of the host (75% of it), so the
/// services' stream reservations (RIDES asks for 8 GiB by default) would pass
/// or fail depending on the machine. It is accounting only: tests write far less.
pub const DEFAULT_MAX_FILE_STORE: u64 = 64 << 30;
/// JetStream's memory storage limit (hail keeps no stream in memory).
const MAX_MEMORY_STORE: u64 = 1 << 30;

/// A JetStream-enabled nats-server listening on 127.0.0.1 only.
///
/// Its client and monitor ports are chosen by the server (`-p -1 -m -1`) and
/// read from the ports file it writes. Its store, log and ports files live in
/// a temporary directory that is removed on drop, after the server has been
/// SIGKILLed.
#[derive(Debug)]
pub struct NatsServer {
    launcher: Launcher,
    process: Process,
    ports: Ports,
}

impl NatsServer {
    /// Starts nats-server and waits (up to 10 s) until it is ready: the ports
    /// file is written, the client port accepts connections and the monitor's
    /// `/healthz` answers 200.
    pub fn start() -> Result<Self> {
        Self::start_with_args(&[])
    }

    /// Like [`NatsServer::start`], with `extra` arguments appended to the
    /// command line (and reused by [`NatsServer::restart`]).
    pub fn start_with_args(extra: &[&str]) -> Result<Self> {
        Self::launch_new(extra, DEFAULT_MAX_FILE_STORE)
    }

    /// Like [`NatsServer::start`], with `config` appended to the server's
    /// config file (an `authorization` block, a `tls` block…) and `extra`
    /// arguments on the command line.
    pub fn start_with_config(config: &str, extra: &[&str]) -> Result<Self> {
        Self::launch_with(extra, DEFAULT_MAX_FILE_STORE, config)
    }

    /// Like [`NatsServer::start`], with JetStream file storage limited to
    /// `bytes` (as a small disk or a tight `max_file_store` would).
    pub fn start_with_max_file_store(bytes: u64) -> Result<Self> {
        Self::launch_new(&[], bytes)
    }

    fn launch_new(extra: &[&str], max_file_store: u64) -> Result<Self> {
        Self::launch_with(extra, max_file_store, "")
    }

    fn launch_with(extra: &[&str], max_file_store: u64, more_config: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hail-nats-")
            .tempdir()
            .context("creating a temp dir for nats-server")?;
        let config = dir.path().join("nats-server.conf");
        fs::write(
            &config,
            format!(
                "jetstream {{\n  max_file_store: {max_file_store}\n  max_memory_store: {MAX_MEMORY_STORE}\n}}\n{more_config}\n"
            ),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let launcher = Launcher {
            bin: nats_server_bin()?,
            extra: extra.iter().map(OsString::from).collect(),
            config,
            store_dir: dir.path().join("store"),
            dir,
        };
        let (process, ports) = launcher.launch(None)?;
        Ok(Self {
            launcher,
            process,
            ports,
        })
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://{HOST}:{}", self.ports.client)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.ports.client
    }

    /// The HTTP monitor's base URL, `http://127.0.0.1:<port>`.
    pub fn monitor_url(&self) -> String {
        format!("http://{HOST}:{}", self.ports.monitor)
    }

    /// The directory given to `-sd`; nats-server keeps JetStream data in its
    /// `jetstream` subdirectory.
    pub fn store_dir(&self) -> &Path {
        &self.launcher.store_dir
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's log (all runs, including restarts), for diagnostics.
    pub fn log(&self) -> String {
        read_log(&self.launcher.log_path())
    }

    /// SIGSTOPs the server: it keeps its sockets but answers nothing, as a
    /// long GC pause or a frozen VM would.
    pub fn pause(&self) -> Result<()> {
        self.process.pause()
    }

    /// SIGCONTs a paused server.
    pub fn resume(&self) -> Result<()> {
        self.process.resume()
    }

    /// SIGKILLs the server, as a crash would, and reaps it. Its store stays.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same client and monitor ports with the
    /// same store, so clients reconnect to the same URL and JetStream state
    /// is recovered. Kills the running server first, if any; waits until
    /// ready like [`NatsServer::start`].
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let (process, _) = self.launcher.launch(Some(self.ports))?;
        self.process = process;
        Ok(())
    }
}

impl Drop for NatsServer {
    /// Kills the server before its temporary directory (in `launcher`) is removed.
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Ports {
    client: u16,
    monitor: u16,
}

/// Everything needed to (re)start the server; owns the temp dir.
#[derive(Debug)]
struct Launcher {
    bin: PathBuf,
    extra: Vec<OsString>,
    config: PathBuf,
    store_dir: PathBuf,
    dir: TempDir,
}

impl Launcher {
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    fn ports_dir(&self) -> PathBuf {
        self.dir.path().join("ports")
    }

    /// Spawns the server on `ports` (or server-chosen ports) and waits until it is ready.
    fn launch(&self, ports: Option<Ports>) -> Result<(Process, Ports)> {
        let ports_dir = self.ports_dir();
        // A fresh ports dir: the file of a killed run must not be mistaken for this one's.
        let _ = fs::remove_dir_all(&ports_dir);
        fs::create_dir_all(&ports_dir).context("creating the ports file dir")?;
        // Early failures (bad flags) go to stderr before `-l` takes effect.
        let mut process = Launch::new(&self.bin)
            .args(self.args(ports))
            .log_file(self.log_path())
            .spawn()?;
        match wait_ready(&mut process, &ports_dir, ports) {
            Ok(ready) => Ok((process, ready)),
            Err(e) => {
                process.kill();
                Err(anyhow!(
                    "nats-server did not start: {e:#}; {}",
                    process.log_tail()
                ))
            }
        }
    }

    fn args(&self, ports: Option<Ports>) -> Vec<OsString> {
        let port = |p: Option<u16>| p.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let mut args: Vec<OsString> = vec!["-c".into(), self.config.clone().into()];
        args.extend(["-js".into(), "-a".into(), HOST.to_string().into()]);
        args.extend(["-p".into(), port(ports.map(|p| p.client)).into()]);
        args.extend(["-m".into(), port(ports.map(|p| p.monitor)).into()]);
        args.extend(["--ports_file_dir".into(), self.ports_dir().into()]);
        args.extend(["-sd".into(), self.store_dir.clone().into()]);
        args.extend(["-l".into(), self.log_path().into()]);
        args.extend(self.extra.iter().cloned());
        args
    }
}

fn wait_ready(process: &mut Process, ports_dir: &Path, expected: Option<Ports>) -> Result<Ports> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = process.exit_status() {
            bail!("it exited during startup with {status}");
        }
        let probe = probe(process.pid(), ports_dir);
        if let Ok(ports) = probe {
            if let Some(expected) = expected.filter(|e| *e != ports) {
                bail!("it listens on {ports:?} instead of {expected:?}");
            }
            return Ok(ports);
        }
        if Instant::now() >= deadline {
            return probe.with_context(|| format!("not ready after {READY_TIMEOUT:?}"));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Ready means: ports file written, client port accepting, `/healthz` answering 200.
fn probe(pid: u32, ports_dir: &Path) -> Result<Ports> {
    let ports = read_ports_file(ports_dir, pid)?;
    let client = SocketAddr::from((HOST, ports.client));
    TcpStream::connect_timeout(&client, PROBE_TIMEOUT)
        .with_context(|| format!("connecting to client port {client}"))?;
    let healthz = format!("http://{HOST}:{}/healthz", ports.monitor);
    let (status, body) = http_get_blocking(&healthz)?;
    ensure!(status == 200, "GET {healthz} answered {status}: {body}");
    Ok(ports)
}

/// Reads `<exe name>_<pid>.ports`:
/// `{"nats":["nats://127.0.0.1:P"],"monitoring":["http://127.0.0.1:M"]}`.
fn read_ports_file(ports_dir: &Path, pid: u32) -> Result<Ports> {
    let suffix = format!("_{pid}.ports");
    let path = fs::read_dir(ports_dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
        })
        .ok_or_else(|| anyhow!("no ports file *{suffix} in {} yet", ports_dir.display()))?;
    parse_ports(&fs::read_to_string(&path)?).with_context(|| format!("reading {}", path.display()))
}

fn parse_ports(json: &str) -> Result<Ports> {
    let value: serde_json::Value = serde_json::from_str(json)?;
    let port_of = |key: &str| -> Result<u16> {
        let url = value[key][0]
            .as_str()
            .ok_or_else(|| anyhow!("no {key:?} URL in ports file"))?;
        let port = url.rsplit_once(':').map(|(_, p)| p.trim_end_matches('/'));
        port.and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no port in {key:?} URL {url:?}"))
    };
    Ok(Ports {
        client: port_of("nats")?,
        monitor: port_of("monitoring")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ports_file() {
        let json = r#"{"nats":["nats://127.0.0.1:38657"],"monitoring":["http://127.0.0.1:46589"]}"#;
        assert_eq!(
            parse_ports(json).unwrap(),
            Ports {
                client: 38657,
                monitor: 46589
            }
        );
    }

    #[test]
    fn incomplete_ports_file_is_an_error() {
        assert!(parse_ports(r#"{"nats":["nats://127.0.0.1:1"]}"#).is_err());
        assert!(parse_ports(r#"{"nats":["nats://127.0.0.1:1"],"monitor"#).is_err());
    }
}
