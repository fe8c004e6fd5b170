//! Process against real child processes.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use hail_probe::{Process, wait_until};

const SH: &str = "/bin/sh";
const WAIT: Duration = Duration::from_secs(10);

fn sh(script: &str) -> Process {
    sh_with_env(script, &[])
}

fn sh_with_env(script: &str, envs: &[(String, String)]) -> Process {
    Process::spawn(Path::new(SH), &["-c".into(), script.into()], envs).unwrap()
}

/// Waits until the script has printed `ready`, i.e. its traps are installed.
async fn wait_ready(process: &Process) {
    wait_until(WAIT, "the script to print ready", || async {
        process.log().contains("ready")
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn terminate_delivers_sigterm_and_returns_the_exit_status() {
    let mut p = sh("trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done");
    assert_eq!(p.name(), "sh");
    wait_ready(&p).await;
    assert!(p.is_running());
    let status = p.terminate(WAIT).unwrap();
    assert_eq!(status.code(), Some(7));
    assert!(!p.is_running());
}

#[tokio::test]
async fn terminate_kills_a_process_that_ignores_sigterm() {
    let mut p = sh("trap '' TERM; echo ready; while true; do sleep 0.1; done");
    wait_ready(&p).await;
    let err = p
        .terminate(Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not exit within 300ms"), "{err}");
    assert!(err.contains("ready"), "error should quote the log: {err}");
    assert!(!p.is_running());
}

#[test]
fn kill_sends_sigkill_and_reaps() {
    let mut p = sh("while true; do sleep 0.1; done");
    p.kill();
    assert!(!p.is_running());
    assert_eq!(p.wait_timeout(Duration::ZERO).unwrap().signal(), Some(9));
    p.kill(); // idempotent
}

#[test]
fn wait_timeout_returns_the_status_of_a_process_that_exits() {
    let mut p = sh("exit 3");
    assert_eq!(p.wait_timeout(WAIT).unwrap().code(), Some(3));
    // Terminating an exited process just reports how it ended.
    assert_eq!(p.terminate(WAIT).unwrap().code(), Some(3));
}

#[tokio::test]
async fn has_exited_sees_an_unreaped_exit_through_a_shared_reference() {
    let p = sh("echo ready; while true; do sleep 0.1; done");
    wait_ready(&p).await;
    assert!(!p.has_exited());
    let done = sh("exit 0");
    wait_until(WAIT, "the short script to exit", || async {
        done.has_exited()
    })
    .await
    .unwrap();
}

#[test]
fn wait_timeout_is_none_while_running() {
    let mut p = sh("while true; do sleep 0.1; done");
    assert!(p.wait_timeout(Duration::from_millis(100)).is_none());
    assert!(p.is_running());
}

#[test]
fn stdout_stderr_and_env_go_to_the_log() {
    let env = [("HAIL_TEST_VALUE".to_owned(), "forty-two".to_owned())];
    let mut p = sh_with_env("echo out $HAIL_TEST_VALUE; echo err >&2", &env);
    assert!(p.wait_timeout(WAIT).unwrap().success());
    let log = p.log();
    assert!(
        log.contains("out forty-two") && log.contains("err"),
        "{log}"
    );
    assert!(p.log_path().ends_with("sh.log"));
}

#[test]
fn spawn_in_keeps_the_log_in_the_given_dir() {
    let dir = tempfile::tempdir().unwrap();
    let script = ["-c".to_owned(), "echo hello".to_owned()];
    let mut p = Process::spawn_in(dir.path(), Path::new(SH), &script, &[]).unwrap();
    assert!(p.wait_timeout(WAIT).is_some());
    drop(p);
    let log = std::fs::read_to_string(dir.path().join("sh.log")).unwrap();
    assert_eq!(log, "hello\n");
}

#[test]
fn missing_program_is_an_error() {
    let err = Process::spawn(Path::new("/nonexistent/hail-x"), &[], &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains("spawning /nonexistent/hail-x"),
        "{err:#}"
    );
}

#[test]
fn drop_kills_a_running_process() {
    let p = sh("while true; do sleep 0.1; done");
    let pid = nix::unistd::Pid::from_raw(p.pid() as i32);
    drop(p);
    // Reaped, so the pid no longer exists (barring immediate reuse).
    assert!(nix::sys::signal::kill(pid, None).is_err());
}
