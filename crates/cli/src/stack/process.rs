//! Detached processes with pid files: started by `hail up`, found again by any
//! later `hail` command, stopped with SIGTERM (SIGKILL after a timeout).

use std::{
    fs,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::{Component, Layout};

/// The pid of a running component, if its pid file names a live process.
pub fn running_pid(layout: &Layout, name: &str) -> Option<i32> {
    let pid: i32 = fs::read_to_string(layout.pid_file(name))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok() && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Starts `c` in its own process group (a Ctrl-C of the caller does not reach it),
/// output appended to its log, and writes its pid file. Returns the pid.
pub fn start(layout: &Layout, c: &Component) -> Result<i32> {
    fs::create_dir_all(layout.state.join("run"))?;
    fs::create_dir_all(layout.state.join("logs"))?;
    let log_path = layout.log_file(&c.name);
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new(&c.program)
            .args(&c.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", c.name, c.program.display()))?
    };
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    fs::write(layout.pid_file(&c.name), format!("{pid}\n"))?;
    Ok(pid)
}

/// Sends `signal`; with SIGTERM waits up to `timeout` and then sends SIGKILL.
/// Removes the pid file. Returns false when it was not running.
pub fn stop(layout: &Layout, name: &str, signal: Signal, timeout: Duration) -> Result<bool> {
    let Some(pid) = running_pid(layout, name) else {
        let _ = fs::remove_file(layout.pid_file(name));
        return Ok(false);
    };
    let p = Pid::from_raw(pid);
    kill(p, signal).with_context(|| format!("cannot signal {name} (pid {pid})"))?;
    let deadline = Instant::now() + timeout;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        kill(p, Signal::SIGKILL).with_context(|| format!("cannot kill {name} (pid {pid})"))?;
    }
    let _ = fs::remove_file(layout.pid_file(name));
    Ok(true)
}
