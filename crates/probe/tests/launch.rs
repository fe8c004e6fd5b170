//! `Launch::ready` against real child processes and a real HTTP server.

use std::time::Duration;

use axum::{Router, http::StatusCode, routing::get};
use hail_probe::{Launch, NotReady, ReadyError};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

/// Serves `/ok` (200) and `/busy` (503) on a loopback port the kernel picks.
async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/busy", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn sh(script: &str) -> Launch {
    Launch::new("/bin/sh").args(["-c", script])
}

#[tokio::test]
async fn ready_returns_the_running_process_once_the_url_answers_200() {
    let base = serve().await;
    let mut process = sh("echo started; exec sleep 30")
        .ready(&format!("{base}/ok"), WAIT)
        .await
        .unwrap();
    assert!(process.is_running());
    assert_eq!(process.name(), "sh");
}

#[tokio::test]
async fn a_process_that_exits_fails_at_once_with_its_status_and_log() {
    let url = "http://127.0.0.1:9/ok"; // the discard port: nothing answers there
    let started = std::time::Instant::now();
    let err = sh("echo cannot bind >&2; exit 3")
        .envs([("HAIL_PROBE_TEST", "1")])
        .ready(url, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "not fast");
    let ready = err.downcast_ref::<ReadyError>().expect("a ReadyError");
    assert!(matches!(ready.reason, NotReady::Exited { .. }), "{err}");
    let msg = err.to_string();
    for needle in [
        "sh exited (exit status: 3)",
        "before it was ready at",
        "cannot bind",
        "sh.log",
    ] {
        assert!(msg.contains(needle), "no {needle:?} in {msg}");
    }
}

#[tokio::test]
async fn a_url_that_never_answers_200_times_out_with_the_last_answer() {
    let base = serve().await;
    let err = sh("exec sleep 30")
        .ready(&format!("{base}/busy"), Duration::from_millis(300))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("did not answer 200 within 300ms"), "{msg}");
    assert!(msg.contains("status 503"), "{msg}");
}

#[tokio::test]
async fn the_log_file_is_kept_where_asked_and_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("svc.log");
    for word in ["first", "second"] {
        let err = sh(&format!("echo {word}; exit 1"))
            .log_file(&log)
            .ready("http://127.0.0.1:9/", WAIT)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(&log.display().to_string()),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nsecond\n");
}
