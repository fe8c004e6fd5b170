//! Child processes (hail's service binaries, usually) with their output in a log file;
//! [`crate::launch`] starts them and waits until they are ready.

use std::fs::{self, File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::launch::Launch;

/// How often a blocking wait checks whether a child has exited.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Lines of log quoted in errors.
const LOG_TAIL_LINES: usize = 80;

/// A running child process, SIGKILLed and reaped on drop.
///
/// Its stdout and stderr go, appended, to one log file: [`Process::log`]
/// returns it for assertions and diagnostics.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    /// Set once the child has been reaped; its pid must not be signalled after that.
    status: Option<ExitStatus>,
    log_path: PathBuf,
    /// Where this run's output starts in the log, which may hold earlier runs.
    log_start: u64,
    /// Set by [`Process::detach`]: left running on drop.
    detached: bool,
    /// Holds the log when the caller gave no directory; removed on drop.
    _log_dir: Option<TempDir>,
}

impl Process {
    /// Spawns `program` with `args` and extra `envs` (on top of the inherited
    /// environment), logging to a file in a temporary directory of its own.
    pub fn spawn(program: &Path, args: &[String], envs: &[(String, String)]) -> Result<Self> {
        Launch::new(program).args(args).envs(pairs(envs)).spawn()
    }

    /// Like [`Process::spawn`], logging to `<log_dir>/<name>.log`, which
    /// outlives the process (appended to if it exists, e.g. after a restart).
    pub fn spawn_in(
        log_dir: &Path,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
    ) -> Result<Self> {
        let log = log_dir.join(format!("{}.log", program_name(program)));
        Launch::new(program)
            .args(args)
            .envs(pairs(envs))
            .log_file(log)
            .spawn()
    }

    /// Spawns what `launch` describes; its log goes to `log_path`, whose
    /// temporary directory (if any) the process keeps until dropped.
    pub(crate) fn start(
        launch: &Launch,
        log_path: PathBuf,
        log_dir: Option<TempDir>,
    ) -> Result<Self> {
        let (log, log_start) = open_log(&log_path)?;
        let mut command = Command::new(launch.program());
        command
            .args(launch.arg_list())
            .envs(launch.env_list().iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file handle")?)
            .stderr(log);
        if launch.in_own_process_group() {
            command.process_group(0);
        }
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", launch.program().display()))?;
        Ok(Self {
            name: program_name(launch.program()),
            child,
            status: None,
            log_path,
            log_start,
            detached: false,
            _log_dir: log_dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now and at its peak (VmRSS, VmHWM), in KiB, from
    /// `/proc/<pid>/status`.
    pub fn memory_kib(&self) -> Result<(u64, u64)> {
        let path = format!("/proc/{}/status", self.pid());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// The program's file name, e.g. `hail-pricing`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// The last lines this run wrote, headed by the log's path, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, self.log_start)
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Whether the process has exited, without reaping it (so it works
    /// through a shared reference): reaped already, gone from `/proc`, or a
    /// zombie waiting to be reaped.
    pub fn has_exited(&self) -> bool {
        if self.status.is_some() {
            return true;
        }
        match fs::read_to_string(format!("/proc/{}/stat", self.pid())) {
            // `pid (comm) state …`; comm may hold spaces and parentheses.
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "Z" || state == "X"),
            Err(_) => true,
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    ///
    /// Returns its exit status (also when it had already exited before).
    /// When it does not exit in time it is SIGKILLed and the error quotes
    /// the end of its log.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_status() {
            return Ok(status);
        }
        send_signal(self.pid(), Signal::SIGTERM)
            .with_context(|| format!("sending SIGTERM to {} (pid {})", self.name, self.pid()))?;
        if let Some(status) = self.wait_timeout(timeout) {
            return Ok(status);
        }
        self.kill();
        bail!(
            "{} (pid {}) did not exit within {timeout:?} of SIGTERM and was killed; {}",
            self.name,
            self.pid(),
            log_tail(&self.log_path, self.log_start)
        )
    }

    /// Lets the process outlive this handle (a daemon started by `hail up`):
    /// it is neither killed nor waited for on drop. Returns its pid.
    pub fn detach(mut self) -> u32 {
        self.detached = true;
        self.pid()
    }

    /// The exit status, if the process has exited (reaping it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.try_status()
    }

    /// SIGSTOPs the process, as a long GC pause or a frozen VM would: it keeps
    /// its connections and its messages but does nothing until [`Process::resume`].
    pub fn pause(&self) -> Result<()> {
        send_signal(self.pid(), Signal::SIGSTOP)
            .with_context(|| format!("sending SIGSTOP to {} (pid {})", self.name, self.pid()))
    }

    /// SIGCONTs a paused process.
    pub fn resume(&self) -> Result<()> {
        send_signal(self.pid(), Signal::SIGCONT)
            .with_context(|| format!("sending SIGCONT to {} (pid {})", self.name, self.pid()))
    }

    /// SIGKILLs the process, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            self.status = kill_and_reap(&mut self.child);
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            thread::sleep(POLL_INTERVAL.min(left));
        }
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("waitpid on our own child");
        }
        self.status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.detached {
            self.kill();
        }
    }
}

/// The file name of `program`, e.g. `hail-pricing`.
fn program_name(program: &Path) -> String {
    program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// SIGKILLs `child` unless it has already exited, then reaps it; its exit status if known.
pub(crate) fn kill_and_reap(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    // Not reaped yet, so the pid still belongs to our child. A failure means
    // it is already gone, and wait() below reaps it either way.
    let _ = send_signal(child.id(), Signal::SIGKILL);
    child.wait().ok()
}

fn send_signal(pid: u32, sig: Signal) -> nix::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| nix::Error::ESRCH)?;
    signal::kill(Pid::from_raw(pid), sig)
}

/// Opens `path` for appending; returns it with its current length, where the new output starts.
pub(crate) fn open_log(path: &Path) -> Result<(File, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log file {}", path.display()))?;
    let start = file.metadata().map_or(0, |m| m.len());
    Ok((file, start))
}

pub(crate) fn read_log(path: &Path) -> String {
    fs::read(path).map_or_else(
        |e| format!("<cannot read {}: {e}>", path.display()),
        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The last lines written to the log at `path` from byte `start` on, for error messages.
pub(crate) fn log_tail(path: &Path, start: u64) -> String {
    let log = read_log(path);
    let run = log
        .get(usize::try_from(start).unwrap_or(0)..)
        .unwrap_or(&log);
    let lines: Vec<&str> = run.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    format!(
        "last {} lines of {}:\n{tail}",
        lines.len().min(LOG_TAIL_LINES),
        path.display()
    )
}

fn pairs(envs: &[(String, String)]) -> impl Iterator<Item = (&String, &String)> {
    envs.iter().map(|(k, v)| (k, v))
}
