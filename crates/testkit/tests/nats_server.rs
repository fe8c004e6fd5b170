//! NatsServer against the real nats-server: readiness, crash, restart on the same ports.

use std::net::TcpStream;
use std::time::Duration;

use async_nats::jetstream;
use hail_testkit::{NatsServer, http_get, wait_until};

const WAIT: Duration = Duration::from_secs(20);

fn accepts_clients(server: &NatsServer) -> bool {
    TcpStream::connect(("127.0.0.1", server.port())).is_ok()
}

async fn healthz(server: &NatsServer) -> u16 {
    let url = format!("{}/healthz", server.monitor_url());
    http_get(&url).await.map_or(0, |(status, _)| status)
}

async fn stream_messages(js: &jetstream::Context, name: &str) -> Option<u64> {
    let stream = js.get_stream(name).await.ok()?;
    Some(stream.cached_info().state.messages)
}

#[tokio::test]
async fn started_server_is_ready_on_localhost() {
    let server = NatsServer::start().unwrap();
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    assert!(server.monitor_url().starts_with("http://127.0.0.1:"));
    assert!(accepts_clients(&server));
    assert_eq!(healthz(&server).await, 200);
    let (status, varz) = http_get(&format!("{}/varz", server.monitor_url()))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        varz.contains(&format!("\"port\": {}", server.port())),
        "{varz}"
    );
    assert!(server.store_dir().join("jetstream").is_dir());
    assert!(server.log().contains("Server is ready"), "{}", server.log());
}

#[tokio::test]
async fn killed_server_restarts_on_the_same_ports_with_its_streams() {
    let mut server = NatsServer::start().unwrap();
    let (port, monitor, pid) = (server.port(), server.monitor_url(), server.pid());
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "RIDES".into(),
        subjects: vec!["rides.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("rides.requested", "r-1".into())
        .await
        .unwrap()
        .await
        .unwrap();

    server.kill();
    assert!(
        !accepts_clients(&server),
        "port {port} still accepts after kill"
    );
    assert_eq!(healthz(&server).await, 0);

    server.restart().unwrap();
    assert_eq!((server.port(), server.monitor_url()), (port, monitor));
    assert_ne!(server.pid(), pid);
    assert!(accepts_clients(&server));
    assert_eq!(healthz(&server).await, 200);
    // The client connected before the crash reconnects to the same URL and
    // finds the stream recovered from the store.
    wait_until(
        WAIT,
        "the old client to see RIDES with 1 message",
        || async { stream_messages(&js, "RIDES").await == Some(1) },
    )
    .await
    .unwrap();
    let log = server.log();
    assert_eq!(log.matches("Server is ready").count(), 2, "{log}");
}

#[tokio::test]
async fn restart_of_a_running_server_kills_it_first() {
    let mut server = NatsServer::start().unwrap();
    let (port, pid) = (server.port(), server.pid());
    server.restart().unwrap();
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), pid);
    assert_eq!(healthz(&server).await, 200);
}

#[test]
fn concurrent_servers_get_different_ports_and_stores() {
    let a = NatsServer::start().unwrap();
    let b = NatsServer::start().unwrap();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.monitor_url(), b.monitor_url());
    assert_ne!(a.store_dir(), b.store_dir());
}

#[test]
fn extra_args_are_passed_and_kept_across_restarts() {
    let mut server = NatsServer::start_with_args(&["--server_name", "hail-test-node"]).unwrap();
    assert!(server.log().contains("hail-test-node"), "{}", server.log());
    server.restart().unwrap();
    assert_eq!(
        server.log().matches("Name:     hail-test-node").count(),
        2,
        "{}",
        server.log()
    );
}

/// JetStream's file storage limit as the server reports it on `/jsz`.
async fn max_storage(server: &NatsServer) -> u64 {
    let (status, body) = http_get(&format!("{}/jsz", server.monitor_url()))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let jsz: serde_json::Value = serde_json::from_str(&body).unwrap();
    jsz["config"]["max_storage"]
        .as_u64()
        .unwrap_or_else(|| panic!("no config.max_storage in {body}"))
}

#[tokio::test]
async fn the_storage_limit_is_fixed_not_taken_from_the_hosts_free_disk() {
    let server = NatsServer::start().unwrap();
    assert_eq!(
        max_storage(&server).await,
        hail_testkit::nats::DEFAULT_MAX_FILE_STORE
    );
    let mut small = NatsServer::start_with_max_file_store(1 << 30).unwrap();
    assert_eq!(max_storage(&small).await, 1 << 30);
    small.restart().unwrap();
    assert_eq!(max_storage(&small).await, 1 << 30, "kept across restarts");
}

#[test]
fn bad_args_fail_fast_with_the_log() {
    let err = NatsServer::start_with_args(&["--no-such-flag"]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("nats-server did not start"), "{msg}");
    assert!(msg.contains("exited during startup"), "{msg}");
    assert!(msg.contains("no-such-flag"), "{msg}");
}

#[test]
fn drop_kills_the_server_and_removes_its_dir() {
    let server = NatsServer::start().unwrap();
    let (port, dir) = (
        server.port(),
        server.store_dir().parent().unwrap().to_path_buf(),
    );
    drop(server);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.exists());
}
