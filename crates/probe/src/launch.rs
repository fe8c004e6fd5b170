//! Starting a program and waiting until it is ready: the one way hail's CLI
//! (`hail up`), the load generator and the tests start a hail binary.
//!
//! [`Launch`] says what to run (program, arguments, environment, log file,
//! process group); [`Launch::ready`] spawns it and waits until its readiness
//! URL answers 200, failing fast, with the program's name, exit status and
//! log, when it exits first. [`Process::wait_ready`] waits again after a
//! restart; [`wait_for_url`] is the wait itself, for a process started earlier.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::time::{Instant, sleep, timeout_at};

use crate::http::http_get;
use crate::process::Process;

/// How often the readiness URL is asked.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A program to start: what [`std::process::Command`] needs plus where its output goes.
#[derive(Debug, Clone)]
pub struct Launch {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    log_file: Option<PathBuf>,
    own_process_group: bool,
}

impl Launch {
    /// `program` with no arguments, the inherited environment and its output
    /// in a log file of a temporary directory removed with the [`Process`].
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            log_file: None,
            own_process_group: false,
        }
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets environment variables on top of the inherited environment.
    pub fn envs<I, K, V>(mut self, envs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let owned = |(k, v): (K, V)| (k.as_ref().to_owned(), v.as_ref().to_owned());
        self.envs.extend(envs.into_iter().map(owned));
        self
    }

    /// Appends stdout and stderr to `path` (created if missing), which outlives the process.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// Starts the process in a process group of its own, so a Ctrl-C in the
    /// caller's terminal does not reach it (for daemons that outlive the caller).
    pub fn own_process_group(mut self) -> Self {
        self.own_process_group = true;
        self
    }

    /// Spawns the process without waiting for anything.
    pub fn spawn(&self) -> Result<Process> {
        match &self.log_file {
            Some(path) => Process::start(self, path.clone(), None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("hail-proc-")
                    .tempdir()
                    .context("creating a temp dir for the process log")?;
                let name = self.program.file_name().unwrap_or(OsStr::new("process"));
                let path = dir.path().join(format!("{}.log", name.to_string_lossy()));
                Process::start(self, path, Some(dir))
            }
        }
    }

    /// Spawns the process and waits until `ready_url` answers 200.
    ///
    /// Fails at once when the process exits first (quoting its exit status
    /// and log) and after `timeout` otherwise; either way the process is
    /// killed, so a failed launch leaves nothing running.
    pub async fn ready(&self, ready_url: &str, timeout: Duration) -> Result<Process> {
        let mut process = self.spawn()?;
        match process.wait_ready(ready_url, timeout).await {
            Ok(()) => Ok(process),
            // Dropping the process kills it.
            Err(e) => Err(e.with_status(process.exit_status()).into()),
        }
    }

    pub(crate) fn program(&self) -> &Path {
        &self.program
    }

    pub(crate) fn arg_list(&self) -> &[OsString] {
        &self.args
    }

    pub(crate) fn env_list(&self) -> &[(OsString, OsString)] {
        &self.envs
    }

    pub(crate) fn in_own_process_group(&self) -> bool {
        self.own_process_group
    }
}

/// Why a process did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// It exited before the URL answered 200.
    #[error("exited{} before it was ready at {url}", .status.map(|s| format!(" ({s})")).unwrap_or_default())]
    Exited {
        url: String,
        /// Known when the waiter could reap the process.
        status: Option<ExitStatus>,
    },
    /// The URL did not answer 200 in time.
    #[error("{url} did not answer 200 within {timeout:?} (last: {last})")]
    Timeout {
        url: String,
        timeout: Duration,
        /// The last answer or error, e.g. `503 Service Unavailable`.
        last: String,
    },
}

/// A process that did not become ready: which one, why and its log.
#[derive(Debug, thiserror::Error)]
#[error("{program} {reason}; {log}")]
pub struct ReadyError {
    pub program: String,
    pub reason: NotReady,
    /// The end of its log, headed by the log's path.
    pub log: String,
}

impl ReadyError {
    /// Adds the exit status of a process that exited, once its owner has reaped it
    /// ([`Process::exit_status`]); [`Process::wait_ready`] works through a shared
    /// reference and cannot.
    pub fn with_status(mut self, exit_status: Option<ExitStatus>) -> Self {
        if let NotReady::Exited { status, .. } = &mut self.reason {
            *status = status.or(exit_status);
        }
        self
    }
}

impl Process {
    /// Waits until `url` answers 200; fails at once, quoting the log, if the
    /// process exits first (a service that cannot start never gets ready).
    pub async fn wait_ready(&self, url: &str, timeout: Duration) -> Result<(), ReadyError> {
        wait_for_url(url, timeout, || self.has_exited())
            .await
            .map_err(|reason| ReadyError {
                program: self.name().to_owned(),
                reason,
                log: self.log_tail(),
            })
    }
}

/// Asks `url` every 50 ms until it answers 200, `exited()` says the process
/// serving it is gone, or `timeout` passes (a hung request is cut off then too).
pub async fn wait_for_url(
    url: &str,
    timeout: Duration,
    mut exited: impl FnMut() -> bool,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + timeout;
    let mut last = "no answer yet".to_owned();
    loop {
        match timeout_at(deadline, http_get(url)).await {
            Ok(Ok((200, _))) => return Ok(()),
            Ok(Ok((status, _))) => last = format!("status {status}"),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => {}
        }
        if exited() {
            let url = url.into();
            return Err(NotReady::Exited { url, status: None });
        }
        let now = Instant::now();
        if now >= deadline {
            let (url, timeout) = (url.into(), timeout);
            return Err(NotReady::Timeout { url, timeout, last });
        }
        sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}
