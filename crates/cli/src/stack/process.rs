//! Detached processes with pid files: started by `hail up`, found again by any
//! later `hail` command, stopped with SIGTERM (SIGKILL after a timeout).

use std::{
    fs,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use hail_probe::Launch;

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
/// output appended to its log, writes its pid file and waits up to `timeout`
/// until its readiness URL answers 200. It keeps running after `hail` exits,
/// also when it does not get ready (`hail down` stops it then).
pub async fn start(layout: &Layout, c: &Component, timeout: Duration) -> Result<()> {
    // Another process on its port would answer the readiness check in its
    // place, and this stack would then take it for its own.
    if let Some(addr) = listener_at(&c.ready_url) {
        anyhow::bail!(
            "cannot start {}: something else already listens on {addr} \
             (another hail stack? stop it with `hail down` and that stack's HAIL_STATE, \
             or free the port)",
            c.name
        );
    }
    fs::create_dir_all(layout.state.join("run"))?;
    fs::create_dir_all(layout.state.join("logs"))?;
    let mut process = Launch::new(&c.program)
        .args(&c.args)
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .log_file(layout.log_file(&c.name))
        .own_process_group()
        .spawn()
        .with_context(|| format!("cannot start {} ({})", c.name, c.program.display()))?;
    // The pid file first: a `hail` interrupted while waiting leaves a component
    // that `hail down` can still find.
    fs::write(layout.pid_file(&c.name), format!("{}\n", process.pid()))?;
    let ready = process.wait_ready(&c.ready_url, timeout).await;
    let ready = ready.map_err(|e| e.with_status(process.exit_status()));
    process.detach();
    ready.with_context(|| format!("{} is not ready", c.name))
}

/// The `host:port` of an `http://host:port/…` URL, if something accepts
/// connections there.
fn listener_at(url: &str) -> Option<String> {
    let authority = url.strip_prefix("http://")?.split('/').next()?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()?
        .next()?;
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .ok()
        .map(|_| authority.to_string())
}

/// The last lines of a component's log, headed by its path, for error messages.
pub fn log_tail(layout: &Layout, name: &str) -> String {
    let path = layout.log_file(name);
    let text = fs::read_to_string(&path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("its log {}:\n{tail}", path.display())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn component(port: u16) -> Component {
        Component {
            name: "analytics".into(),
            program: "/bin/true".into(),
            args: Vec::new(),
            env: Vec::new(),
            ready_url: format!("http://127.0.0.1:{port}/readyz"),
            url: String::new(),
        }
    }

    #[tokio::test]
    async fn a_port_another_process_listens_on_is_refused_before_anything_starts() {
        let state = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: state.path().into(),
            bin_dir: state.path().into(),
            state: state.path().into(),
        };
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = other.local_addr().unwrap().port();
        let err = start(&layout, &component(port), Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot start analytics")
                && err.contains(&format!("127.0.0.1:{port}"))
                && err.contains("hail down"),
            "{err}"
        );
        assert!(
            !layout.pid_file("analytics").exists(),
            "nothing was started, so no pid file"
        );
    }

    #[test]
    fn a_free_port_has_no_listener() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(
            listener_at(&format!("http://127.0.0.1:{port}/readyz")),
            None
        );
        assert_eq!(listener_at("not a url"), None);
    }
}
