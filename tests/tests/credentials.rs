//! Least privilege: a nats-server with `deploy/local/auth.conf` (one identity
//! per service, the monitor, intake and an admin), `hail provision` run as the
//! admin, the services as themselves. Each identity may do its own work and
//! nothing else; wrong credentials stop a service at once; TLS needs the CA.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result};
use async_nats::{ConnectOptions, Event, ServerError, jetstream};
use hail_e2e::{monitor::Monitor, rides, serial, services::Service};
use hail_events::subjects;
use hail_runtime::auth::{PERMISSION_VIOLATIONS, violation};
use hail_testkit::{NatsServer, Process, bin_path, free_port, wait_until};
use tokio::sync::mpsc;

/// The local stack's identities: `hail-local-<user>` is each one's password.
fn password(user: &str) -> String {
    format!("hail-local-{user}")
}

fn auth_conf() -> Result<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/auth.conf");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn server_with_auth() -> Result<NatsServer> {
    NatsServer::start_with_config(&auth_conf()?, &[])
}

/// `--user <user> --password <its password>`.
fn as_user(user: &str) -> Vec<String> {
    vec![
        "--user".into(),
        user.into(),
        "--password".into(),
        password(user),
    ]
}

/// Runs `hail provision` as the admin, with a RIDES the test machine can
/// hold and `extra` flags.
async fn provision(url: &str, extra: &[&str]) -> Result<()> {
    let mut args = as_user("admin");
    args.push("provision".into());
    args.extend(STREAM_FLAGS.iter().chain(extra).map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    hail_e2e::cli::hail(url, &args).await?;
    Ok(())
}

/// The service flags that match what [`provision`] made.
const STREAM_FLAGS: [&str; 2] = ["--rides-max-bytes", "1073741824"];

/// A client as `user`, and the permission violations the server reports to it.
async fn connect_as(
    url: &str,
    user: &str,
) -> Result<(async_nats::Client, mpsc::UnboundedReceiver<String>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = ConnectOptions::new()
        .user_and_password(user.into(), password(user))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(ServerError::Other(msg)) = event {
                    let _ = tx.send(msg);
                }
            }
        })
        .connect(url)
        .await?;
    Ok((client, rx))
}

/// Publishes to `subject` as the client and waits for the server's refusal.
async fn refused(
    client: &async_nats::Client,
    errors: &mut mpsc::UnboundedReceiver<String>,
    subject: &str,
    body: &str,
) -> Result<()> {
    let inbox = client.new_inbox();
    client
        .publish_with_reply(subject.to_string(), inbox, body.to_string().into())
        .await?;
    client.flush().await?;
    let msg = tokio::time::timeout(Duration::from_secs(5), errors.recv())
        .await
        .with_context(|| format!("no permission error for {subject}"))?
        .context("connection closed")?;
    let v = violation(&msg).with_context(|| format!("not a permission violation: {msg}"))?;
    anyhow::ensure!(
        v.operation == "publish" && v.subject == subject,
        "{subject}: the server said {msg}"
    );
    Ok(())
}

#[tokio::test]
async fn each_service_identity_may_not_touch_what_is_not_its_own() -> Result<()> {
    let _serial = serial().await;
    let nats = server_with_auth()?;
    provision(&nats.url(), &[]).await?;
    let others_output = |s: &str| {
        if s == "pricing" {
            "rides.matched.berlin"
        } else {
            "rides.priced.berlin"
        }
    };
    for svc in hail_e2e::SERVICES {
        let (client, mut errors) = connect_as(&nats.url(), svc).await?;
        let other = if svc == "fraud" { "pricing" } else { "fraud" };
        refused(&client, &mut errors, others_output(svc), "x").await?;
        refused(&client, &mut errors, &format!("dlq.{other}.RIDES.1"), "x").await?;
        let next = format!("$JS.API.CONSUMER.MSG.NEXT.RIDES.{other}");
        refused(&client, &mut errors, &next, r#"{"batch":1}"#).await?;
        let change = format!("$JS.API.CONSUMER.CREATE.RIDES.{other}");
        refused(&client, &mut errors, &change, "{}").await?;
        // ride-view, added later, is as much another's durable.
        let next = "$JS.API.CONSUMER.MSG.NEXT.RIDES.ride-view";
        refused(&client, &mut errors, next, r#"{"batch":1}"#).await?;
        refused(&client, &mut errors, "$JS.API.STREAM.DELETE.RIDES", "").await?;
        refused(&client, &mut errors, "$JS.API.STREAM.UPDATE.RIDES", "{}").await?;
        refused(&client, &mut errors, "$JS.API.STREAM.PURGE.RIDES", "{}").await?;
    }
    // An unnamed create (how a reader of its own starts) cannot reach a durable
    // either: the server answers an error, and fraud's durable stays as it was.
    let (client, _) = connect_as(&nats.url(), "pricing").await?;
    for config in [r#""durable_name":"fraud""#, r#""name":"fraud""#] {
        let body = format!(
            r#"{{"stream_name":"RIDES","config":{{{config},"ack_policy":"none","filter_subject":"rides.>"}}}}"#
        );
        let reply = client
            .request("$JS.API.CONSUMER.CREATE.RIDES", body.into())
            .await?;
        let reply = String::from_utf8_lossy(&reply.payload).to_string();
        assert!(reply.contains(r#""error""#), "{config}: {reply}");
    }
    // The server still holds everything as provisioned.
    let (admin, _) = connect_as(&nats.url(), "admin").await?;
    let js = jetstream::new(admin);
    let mut rides = js.get_stream(subjects::RIDES_STREAM).await?;
    assert_eq!(rides.info().await?.state.consumer_count, 5);
    let fraud = rides.consumer_info("fraud").await?;
    assert_eq!(fraud.config.filter_subject, "rides.requested.>");
    Ok(())
}

#[tokio::test]
async fn wrong_or_missing_credentials_stop_a_service_at_once_naming_the_identity() -> Result<()> {
    let _serial = serial().await;
    let nats = server_with_auth()?;
    let dir = tempfile::tempdir()?;
    let seed = nkeys::KeyPair::new_user();
    let nkey_file = dir.path().join("stranger.nk");
    std::fs::write(&nkey_file, seed.seed()?)?;
    let nkey = nkey_file.display().to_string();
    let cases: [(&[&str], String); 3] = [
        (
            &["--user", "pricing", "--password", "wrong"],
            r#"user "pricing""#.into(),
        ),
        (&[], "no credentials".into()),
        (&["--nkey", &nkey], format!("nkey {}", seed.public_key())),
    ];
    for (flags, identity) in cases {
        let started = std::time::Instant::now();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut args: Vec<String> = ["--nats-url", &nats.url(), "--metrics-addr", &addr]
            .map(String::from)
            .to_vec();
        args.extend(flags.iter().map(|s| s.to_string()));
        let mut p = Process::spawn(&bin_path("hail-pricing")?, &args, &[])?;
        let status = p
            .wait_timeout(Duration::from_secs(8))
            .context("still running after 8 s")?;
        assert!(!status.success(), "{status}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        let log = p.log();
        assert!(log.contains(&format!("refused {identity}")), "{log}");
        assert!(log.contains("Authorization Violation"), "{log}");
        assert!(!log.contains("retrying"), "a refusal is not retried: {log}");
    }
    Ok(())
}

#[tokio::test]
async fn a_service_that_may_not_provision_says_to_run_hail_provision() -> Result<()> {
    let _serial = serial().await;
    let nats = server_with_auth()?;
    let mut flags = as_user("fraud");
    flags.extend(STREAM_FLAGS.map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let service = Service::spawn_with("fraud", &nats.url(), &flags)?;
    let err = service
        .wait_ready(Duration::from_secs(30))
        .await
        .expect_err("nothing provisioned");
    let msg = format!("{err:#}");
    assert!(msg.contains("stream RIDES, which is missing"), "{msg}");
    assert!(msg.contains("run `hail provision`"), "{msg}");
    assert!(
        msg.contains(r#"Permissions Violation for publish to "$JS.API.STREAM."#),
        "{msg}"
    );
    Ok(())
}

/// `flags` as the `&str`s a spawn takes.
fn strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// The whole pipeline as four identities, after `hail provision` as the admin:
/// first deliveries, a poison request dead-lettered by every service, and a
/// backlog older than half the duplicate window (the answer fence's careful
/// path: fence markers and read-back consumers), watched by hail-monitor as
/// itself. No service needed more than its own rights.
#[tokio::test]
async fn the_pipeline_runs_with_one_identity_per_service_after_provision() -> Result<()> {
    let _serial = serial().await;
    let nats = server_with_auth()?;
    let window = ["--duplicate-window", "2s"];
    provision(&nats.url(), &window).await?;
    let flags = |svc: &str| {
        let mut f = as_user(svc);
        f.extend(STREAM_FLAGS.iter().chain(&window).map(|s| s.to_string()));
        f
    };
    let mut services = Vec::new();
    for svc in ["matching", "fraud", "analytics", "ride-view"] {
        services.push(Service::spawn_with(svc, &nats.url(), &strs(&flags(svc)))?);
    }
    for s in &services {
        s.wait_ready(Duration::from_secs(30)).await?;
    }
    let monitor = Monitor::spawn_with(&nats.url(), &strs(&as_user("monitor")))?;
    let (intake, _) = connect_as(&nats.url(), "intake").await?;
    let rides_count = 20;
    rides::publish(&jetstream::new(intake), "cred", 0, rides_count).await?;
    let published = tokio::time::Instant::now();
    let (admin, _) = connect_as(&nats.url(), "admin").await?;
    let js = jetstream::new(admin);
    rides::publish_raw(
        &js,
        "rides.requested.berlin",
        b"not an event".to_vec(),
        None,
    )
    .await?;
    // pricing starts once its requests are older than half the window: each
    // answer then takes the careful path.
    tokio::time::sleep_until(published + Duration::from_millis(1500)).await;
    services.push(Service::spawn_with(
        "pricing",
        &nats.url(),
        &strs(&flags("pricing")),
    )?);
    services[4].wait_ready(Duration::from_secs(30)).await?;
    for durable in hail_e2e::SERVICES.into_iter().chain(["ride-view"]) {
        let what = format!("{durable} drained");
        wait_until(Duration::from_secs(30), &what, || {
            rides::drained(&js, durable)
        })
        .await?;
        assert_eq!(
            rides::dead_letters(&js, durable).await?.len(),
            1,
            "{durable}"
        );
    }
    let answers = |filter: &'static str| {
        let js = js.clone();
        async move {
            Ok::<_, anyhow::Error>(
                rides::read_subject(&js, subjects::RIDES_STREAM, filter)
                    .await?
                    .0,
            )
        }
    };
    let matched = answers("rides.matched.>").await? + answers("rides.unmatched.>").await?;
    assert_eq!(matched, rides_count);
    assert_eq!(answers("rides.priced.>").await?, rides_count);
    assert_eq!(answers("rides.screened.>").await?, rides_count);
    // ride-view, as itself, recorded every ride (the poison message has none).
    let view = js.get_key_value(hail_events::ride_view::BUCKET).await?;
    let keys: Vec<String> = futures::TryStreamExt::try_collect(view.keys().await?).await?;
    assert_eq!(keys.len(), rides_count, "ride-view records");
    let checked = services[4]
        .metric(hail_runtime::metrics::names::CHECKED, &[])
        .await?;
    assert_eq!(checked, rides_count as f64, "pricing took the careful path");
    wait_until(
        Duration::from_secs(10),
        "the monitor reads pricing",
        || async {
            monitor
                .value("nats_consumer_num_pending", &[("consumer_name", "pricing")])
                .await
                == Some(0.0)
        },
    )
    .await?;
    assert_eq!(
        monitor
            .value(PERMISSION_VIOLATIONS, &[])
            .await
            .unwrap_or(0.0),
        0.0
    );
    for s in &services {
        let log = s.process.log();
        assert_eq!(
            s.metric(PERMISSION_VIOLATIONS, &[]).await?,
            0.0,
            "{}: {log}",
            s.name
        );
        assert!(
            !log.contains("creating or updating"),
            "{} needed admin rights: {log}",
            s.name
        );
    }
    Ok(())
}

/// A CA, and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
fn certificates(dir: &std::path::Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    let cert = params.signed_by(&key, &issuer)?;
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server-key.pem"),
    );
    std::fs::write(&paths.0, ca.pem())?;
    std::fs::write(&paths.1, cert.pem())?;
    std::fs::write(&paths.2, key.serialize_pem())?;
    Ok(paths)
}

#[tokio::test]
async fn over_tls_a_service_needs_the_ca_and_then_answers() -> Result<()> {
    let _serial = serial().await;
    let dir = tempfile::tempdir()?;
    let (ca, cert, key) = certificates(dir.path())?;
    let tls = format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let nats = NatsServer::start_with_config(&tls, &[])?;
    let ca_flag = ca.display().to_string();

    let addr = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = ["--nats-url", &nats.url(), "--metrics-addr", &addr]
        .map(String::from)
        .to_vec();
    let mut p = Process::spawn(&bin_path("hail-pricing")?, &args, &[])?;
    let status = p
        .wait_timeout(Duration::from_secs(15))
        .context("still running after 15 s")?;
    assert!(!status.success(), "{status}");
    let log = p.log();
    assert!(
        log.contains("refused") && log.to_lowercase().contains("tls"),
        "{log}"
    );

    let client = ConnectOptions::new()
        .add_root_certificates(ca.clone())
        .require_tls(true)
        .connect(nats.url())
        .await?;
    pricing_answers_a_ride(
        client,
        &nats.url(),
        &["--tls-ca", &ca_flag],
        "tls",
        "over TLS",
    )
    .await
}

/// An nkey identity: the server knows only the public key, the service holds
/// the seed (`--nkey`), signs the server's challenge and answers a ride; a
/// seed the server does not know is refused naming its public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_seed_file_is_an_identity() -> Result<()> {
    let _serial = serial().await;
    let dir = tempfile::tempdir()?;
    let known = nkeys::KeyPair::new_user();
    let seed_file = |name: &str, key: &nkeys::KeyPair| -> Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{}\n", key.seed()?))?;
        Ok(path.display().to_string())
    };
    let seed = seed_file("pricing.nk", &known)?;
    let config = format!(
        "authorization {{\n  users: [ {{ nkey: {:?} }} ]\n}}\n",
        known.public_key()
    );
    let nats = NatsServer::start_with_config(&config, &[])?;

    let stranger = nkeys::KeyPair::new_user();
    let stranger_seed = seed_file("stranger.nk", &stranger)?;
    let addr = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = [
        "--nats-url",
        &nats.url(),
        "--metrics-addr",
        &addr,
        "--nkey",
        &stranger_seed,
    ]
    .map(String::from)
    .to_vec();
    let mut p = Process::spawn(&bin_path("hail-pricing")?, &args, &[])?;
    let status = p
        .wait_timeout(Duration::from_secs(15))
        .context("still running after 15 s")?;
    assert!(!status.success(), "{status}");
    let log = p.log();
    assert!(log.contains(&stranger.public_key()), "names the key: {log}");
    assert!(log.contains("Authorization Violation"), "{log}");

    let client = ConnectOptions::with_nkey(known.seed()?)
        .connect(nats.url())
        .await?;
    pricing_answers_a_ride(
        client,
        &nats.url(),
        &["--nkey", &seed],
        "nkey",
        "as the nkey identity",
    )
    .await
}

/// pricing started with `flags` (its credentials) against `url` answers a ride
/// (its id starting with `prefix`) published through `client`, which may
/// create the streams.
async fn pricing_answers_a_ride(
    client: async_nats::Client,
    url: &str,
    flags: &[&str],
    prefix: &str,
    how: &str,
) -> Result<()> {
    let js = jetstream::new(client);
    rides::ensure_test_streams(&js).await?;
    let mut args = flags.to_vec();
    args.extend(["--rides-max-bytes", "1073741824", "--rides-max-age", "1h"]);
    let pricing = Service::spawn_with("pricing", url, &args)?;
    pricing.wait_ready(Duration::from_secs(30)).await?;
    rides::publish(&js, prefix, 0, 1).await?;
    wait_until(
        Duration::from_secs(20),
        &format!("a fare {how}"),
        || async {
            matches!(
                rides::read_subject(&js, subjects::RIDES_STREAM, "rides.priced.>").await,
                Ok((1, _))
            )
        },
    )
    .await
    .with_context(|| pricing.process.log())?;
    Ok(())
}
