//! The dashboards against a live stack: nats-server, the four services and
//! hail-monitor under load, scraped every second by a real Prometheus with
//! hail's rules and consoles. Every query of the console page and of the
//! Grafana dashboard returns data, the console page renders every widget, and
//! headless Chromium takes a screenshot of it (target/dashboard.png). Then
//! analytics is killed: ServiceDown and ConsumerStopped fire and the page shows
//! it (target/dashboard-analytics-down.png).
//!
//! Needs Debian's `prometheus` and `chromium` packages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, ensure};
use async_nats::jetstream;
use hail_e2e::prometheus::{self, Prometheus, Target, config::job, queries, scope};
use hail_e2e::{SERVICES, monitor::Monitor, rides, serial, services};
use hail_testkit::{NatsServer, Process, http_get, wait_until};

const CHROMIUM: &str = "/usr/bin/chromium";
const PAGE: &str = "/consoles/hail.html";
/// Longest wait for Prometheus to see a change (alerts have `for: 30s`).
const WAIT: Duration = Duration::from_secs(120);

/// Every query of the console page (with its library) and of the Grafana dashboard.
fn dashboard_queries() -> Result<Vec<String>> {
    let mut all = Vec::new();
    for file in ["consoles/hail.html", "console_libraries/hail.lib"] {
        let path = prometheus::deploy_dir().join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        all.extend(queries::console(&text));
    }
    let console_count = all.len();
    ensure!(
        console_count >= 10,
        "only {console_count} console queries found: {all:?}"
    );
    let grafana: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(prometheus::grafana_dashboard())?)?;
    for q in queries::grafana(&grafana) {
        if !all.contains(&q.expr) {
            all.push(q.expr);
        }
    }
    ensure!(all.len() > console_count, "no Grafana queries found");
    Ok(all)
}

/// The queries that return no data now (or fail, with the error).
async fn empty_queries(prom: &Prometheus, all: &[String]) -> Vec<String> {
    let mut empty = Vec::new();
    for q in all {
        match prom.query(q).await {
            Ok(samples) if !samples.is_empty() => {}
            Ok(_) => empty.push(format!("{q}: no data")),
            Err(e) => empty.push(format!("{q}: {e:#}")),
        }
    }
    empty
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| prometheus::repo_root().join("target"))
}

/// Headless Chromium saves a 1400×2000 screenshot of `url` to `png`.
fn screenshot(url: &str, png: &Path) -> Result<()> {
    ensure!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} not found: install it with `apt-get install -y chromium`"
    );
    let profile = tempfile::Builder::new()
        .prefix("hail-chromium-")
        .tempdir()?;
    let _ = std::fs::remove_file(png);
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        &format!("--user-data-dir={}", profile.path().display()),
        &format!("--screenshot={}", png.display()),
        "--window-size=1400,2000",
        url,
    ]
    .map(String::from);
    let mut chromium = Process::spawn(Path::new(CHROMIUM), &args, &[])?;
    let status = chromium
        .wait_timeout(Duration::from_secs(60))
        .ok_or_else(|| anyhow!("chromium still running after 60s:\n{}", chromium.log()))?;
    ensure!(
        status.success(),
        "chromium failed ({status}):\n{}",
        chromium.log()
    );
    Ok(())
}

/// Width and height from a PNG's IHDR, or an error if `bytes` is not a PNG.
fn png_size(bytes: &[u8]) -> Result<(u32, u32)> {
    ensure!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG"
    );
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok((be(16), be(20)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_show_live_data_and_the_console_renders() -> Result<()> {
    const RATE_PER_TICK: usize = 5; // every 20 ms: 250 rides/s
    let _serial = serial().await;
    let all = dashboard_queries()?;
    let server = NatsServer::start()?;
    let mut svcs = services::spawn_all(&server.url()).await?;
    // Polling fast, so the status follows the load.
    let monitor = Monitor::spawn(&server.url())?;
    let mut targets: Vec<Target> = svcs
        .iter()
        .map(|s| Target::local(&job(s.name), s.port))
        .collect();
    targets.push(Target::local(&job("monitor"), monitor.port()));
    let prom = Prometheus::start(&targets, 1)?;
    prom.wait_ready(Duration::from_secs(30)).await?;

    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let load_js = js.clone();
    let load = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for batch in 0..(180_000 / 20) {
            tick.tick().await;
            let from = batch * RATE_PER_TICK;
            if rides::publish(&load_js, "dash", from, from + RATE_PER_TICK)
                .await
                .is_err()
            {
                break;
            }
        }
    });
    // Dead letters too, so their rate and the DeadLettersRising alert have data.
    for _ in 0..3 {
        let garbage = b"\xc1 not msgpack".to_vec();
        rides::publish_raw(
            &js,
            "rides.requested.berlin",
            garbage,
            Some("RideRequested"),
        )
        .await?;
    }

    let result = async {
        wait_for_data(&prom, &all).await?;
        check_page(&prom).await?;
        checked_screenshot(&prom, "dashboard.png")?;
        analytics_down_shows(&prom, &mut svcs).await?;
        checked_screenshot(&prom, "dashboard-analytics-down.png")
    }
    .await;
    load.abort();
    result.map_err(|e| anyhow!("{e:#}\n--- prometheus log ---\n{}", prom.log()))
}

/// Waits until every query of both dashboards returns data; the error lists the empty ones.
async fn wait_for_data(prom: &Prometheus, all: &[String]) -> Result<()> {
    let waited = wait_until(WAIT, "every dashboard query to return data", || async {
        empty_queries(prom, all).await.is_empty()
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(e) => Err(anyhow!("{e}; now: {:#?}", empty_queries(prom, all).await)),
    }
}

/// Screenshots the console page to `target/<name>` and checks the PNG.
fn checked_screenshot(prom: &Prometheus, name: &str) -> Result<()> {
    let png = target_dir().join(name);
    screenshot(&prom.url(PAGE), &png)?;
    let bytes = std::fs::read(&png).with_context(|| format!("reading {}", png.display()))?;
    assert_eq!(png_size(&bytes)?, (1400, 2000), "{}", png.display());
    assert!(
        bytes.len() > 50_000,
        "{} is only {} bytes",
        png.display(),
        bytes.len()
    );
    Ok(())
}

/// Kills analytics: ServiceDown and ConsumerStopped fire, and the page shows it.
async fn analytics_down_shows(prom: &Prometheus, svcs: &mut [services::Service]) -> Result<()> {
    let analytics = svcs
        .iter_mut()
        .find(|s| s.name == "analytics")
        .context("no analytics")?;
    analytics.process.kill();
    let firing = [
        r#"ALERTS{alertname="ServiceDown", job="hail-analytics", alertstate="firing"}"#,
        r#"ALERTS{alertname="ConsumerStopped", consumer_name="analytics", alertstate="firing"}"#,
    ];
    wait_until(
        WAIT,
        "ServiceDown and ConsumerStopped firing for analytics",
        || async {
            for q in firing {
                if !prom.query(q).await.is_ok_and(|r| !r.is_empty()) {
                    return false;
                }
            }
            true
        },
    )
    .await?;
    let (_, page) = http_get(&prom.url(PAGE)).await?;
    ensure!(
        page.matches(">DOWN<").count() == 1,
        "analytics not DOWN:\n{page}"
    );
    ensure!(
        page.contains("st-stop\">stop<"),
        "no consumer in stop:\n{page}"
    );
    Ok(())
}

/// The console page as Prometheus renders it: every widget has rows, every
/// target is up, every service has a lag and a throughput row.
async fn check_page(prom: &Prometheus) -> Result<()> {
    let (status, page) = http_get(&prom.url(PAGE)).await?;
    ensure!(status == 200, "{PAGE} answered {status}:\n{page}");
    ensure!(
        !page.contains("class=\"none\""),
        "a widget without data:\n{page}"
    );
    ensure!(
        page.matches(">UP<").count() == 5,
        "not all 5 targets up:\n{page}"
    );
    ensure!(!page.contains(">DOWN<"), "a target is down:\n{page}");
    for s in SERVICES {
        ensure!(
            page.matches(&format!("<th>{s}")).count() >= 4,
            "{s} missing rows:\n{page}"
        );
    }
    for city in rides::CITIES {
        ensure!(
            page.contains(&format!("<th>{city}")),
            "{city} missing:\n{page}"
        );
    }
    ensure!(
        page.contains("DeadLettersRising"),
        "no DeadLettersRising alert:\n{page}"
    );
    Ok(())
}

#[test]
fn every_dashboard_query_reads_hails_jobs_only() -> Result<()> {
    for q in dashboard_queries()? {
        let bad = scope::unscoped(&q);
        ensure!(
            bad.is_empty(),
            "{bad:?} without {} (or {} for ALERTS) in {q}",
            scope::HAIL_JOBS,
            scope::HAIL_ALERTS
        );
    }
    Ok(())
}

#[test]
fn grafana_dashboard_is_well_formed() -> Result<()> {
    let path = prometheus::grafana_dashboard();
    let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    assert_eq!(d["uid"], "hail");
    let var = &d["templating"]["list"][0];
    assert_eq!(
        (&var["name"], &var["type"], &var["query"]),
        (
            &"datasource".into(),
            &"datasource".into(),
            &"prometheus".into()
        )
    );
    let panels = d["panels"].as_array().context("no panels")?;
    let mut ids = Vec::new();
    for p in panels {
        let title = p["title"].as_str().context("panel without title")?;
        ids.push(
            p["id"]
                .as_u64()
                .with_context(|| format!("{title}: no id"))?,
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"]
            .as_array()
            .with_context(|| format!("{title}: no targets"))?;
        assert!(!targets.is_empty(), "{title}: no targets");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                "{title}: {t}"
            );
        }
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids are not unique");
    // One panel per item of the console page.
    let page = std::fs::read_to_string(prometheus::deploy_dir().join("consoles/hail.html"))?;
    let sections = page.matches("template \"hail.section\"").count();
    assert_eq!(
        panels.len(),
        sections,
        "console has {sections} items, Grafana {}",
        panels.len()
    );
    Ok(())
}
