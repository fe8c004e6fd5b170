//! `http_get` against a real HTTP server on the IPv6 loopback.

use axum::{Router, http::StatusCode, routing::get};
use hail_probe::http_get;
use tokio::net::TcpListener;

/// Serves `/metrics` (200) and `/readyz` (503) on `[::1]`, on a port the kernel picks.
async fn serve_on_ipv6_loopback() -> String {
    let listener = TcpListener::bind("[::1]:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/metrics", get(|| async { "hail_up 1\n" }))
        .route(
            "/readyz",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "not yet") }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn reads_status_and_body_from_ipv6_loopback() {
    let base = serve_on_ipv6_loopback().await;
    assert!(base.starts_with("http://[::1]:"), "{base}");
    let (status, body) = http_get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hail_up 1\n"));
    let (status, body) = http_get(&format!("{base}/readyz")).await.unwrap();
    assert_eq!((status, body.as_str()), (503, "not yet"));
    let (status, _) = http_get(&format!("{base}/nope")).await.unwrap();
    assert_eq!(status, 404);
}
