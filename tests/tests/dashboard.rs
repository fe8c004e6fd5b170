//! The dashboards against a live stack: nats-server, the four services and
//! hail-monitor under load, scraped every second by a real Prometheus with
//! hail's rules and consoles. Every query of the console page and of the
//! Grafana dashboard returns data, the console page renders every widget, and
//! headless Chromium takes a screenshot of it (target/dashboard.png). Then
//! analytics is killed: ServiceDown and ConsumerStopped fire and the page shows
//! it (target/dashboard-analytics-down.png). Then it is restarted and catches
//! up: the data behind the lag graph (a range query, as the page's script
//! makes) rises while it was down and falls after, and the page as Chromium
//! draws it holds that graph's SVG path for analytics and a red band where it
//! was down (target/dashboard-analytics-restarted.png). `hail report` writes
//! the report of the run (target/dashboard-report.html and .png): its lag
//! series of analytics rises and falls the same way and it holds the audit.
//!
//! Needs Debian's `prometheus` and `chromium` packages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, ensure};
use async_nats::jetstream;
use hail_e2e::prometheus::{self, Prometheus, Target, config::job, queries, scope};
use hail_e2e::{SERVICES, cli::hail, monitor::Monitor, rides, serial, services};
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

/// Size of the screenshots: the whole page, graphs and widgets.
const WINDOW: (u32, u32) = (1400, 2600);
/// Virtual time Chromium gives the page's script to draw its graphs (it
/// stands still while the page's range queries are in flight).
const SCRIPT_BUDGET_MS: u32 = 5000;

/// Headless Chromium saves a screenshot of `url` to `png`, after the page's
/// script has drawn its graphs.
fn screenshot(url: &str, png: &Path) -> Result<()> {
    let _ = std::fs::remove_file(png);
    chromium(
        url,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ],
    )?;
    Ok(())
}

/// The DOM of `url` once the page's script has drawn its graphs, as headless
/// Chromium serializes it.
fn dump_dom(url: &str) -> Result<String> {
    let out = chromium(url, &["--dump-dom".to_string()])?;
    let (Some(from), Some(to)) = (out.find("<html"), out.rfind("</html>")) else {
        anyhow::bail!("no document in chromium's output:\n{out}");
    };
    Ok(out[from..to + "</html>".len()].to_string())
}

/// Runs headless Chromium on `url` with `extra` flags and a virtual time
/// budget for the page's script; its output (stdout and stderr).
fn chromium(url: &str, extra: &[String]) -> Result<String> {
    ensure!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} not found: install it with `apt-get install -y chromium`"
    );
    let profile = tempfile::Builder::new()
        .prefix("hail-chromium-")
        .tempdir()?;
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    args.push(format!("--virtual-time-budget={SCRIPT_BUDGET_MS}"));
    args.extend(extra.iter().cloned());
    args.push(url.to_string());
    let mut chromium = Process::spawn(Path::new(CHROMIUM), &args, &[])?;
    let status = chromium
        .wait_timeout(Duration::from_secs(60))
        .ok_or_else(|| anyhow!("chromium still running after 60s:\n{}", chromium.log()))?;
    ensure!(
        status.success(),
        "chromium failed ({status}):\n{}",
        chromium.log()
    );
    Ok(chromium.log())
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
        for batch in 0..(360_000 / 20) {
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
        lag_history(&prom).await?;
        let killed_at = unix_now();
        analytics_down_shows(&prom, &mut svcs).await?;
        checked_screenshot(&prom, "dashboard-analytics-down.png")?;
        let restarted_at = restart_analytics(&prom, &mut svcs).await?;
        lag_rose_and_fell(&prom, killed_at, restarted_at).await?;
        report_written(&prom, &server.url(), killed_at, restarted_at).await?;
        graphs_drawn(&prom)?;
        checked_screenshot(&prom, "dashboard-analytics-restarted.png")
    }
    .await;
    load.abort();
    result.map_err(|e| anyhow!("{e:#}\n--- prometheus log ---\n{}", prom.log()))
}

/// Waits until analytics' lag has a history before the kill: the lag graph's
/// query has points for at least 8 of the last 20 s (a loaded machine may
/// reach this later than the first scrape of every query).
async fn lag_history(prom: &Prometheus) -> Result<()> {
    wait_until(WAIT, "8 s of analytics' lag in Prometheus", || async {
        let now = unix_now();
        let Ok(series) = prom.query_range(LAG_QUERY, now - 20.0, now, 1.0).await else {
            return false;
        };
        series.iter().any(|s| {
            s.labels.get("service").is_some_and(|s| s == "analytics")
                && s.points.iter().filter(|(_, v)| v.is_finite()).count() >= 8
        })
    })
    .await
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
    assert_eq!(png_size(&bytes)?, WINDOW, "{}", png.display());
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

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// The query of the console's lag graph (as the page holds it) and analytics' series of it.
const LAG_QUERY: &str = "hail:consumer_lag_messages:max";
const ANALYTICS_LAG: &str = r#"hail:consumer_lag_messages:max{service="analytics"}"#;

/// Analytics' lag as Prometheus has it now.
async fn analytics_lag(prom: &Prometheus) -> Option<f64> {
    let samples = prom.query(ANALYTICS_LAG).await.ok()?;
    samples.first().map(|s| s.value)
}

/// Restarts analytics and waits until Prometheus's range query, the one the
/// graphs draw, ends under an eighth of the lag's peak (the checks want under
/// a quarter); returns when it was restarted.
async fn restart_analytics(prom: &Prometheus, svcs: &mut [services::Service]) -> Result<f64> {
    let analytics = svcs
        .iter_mut()
        .find(|s| s.name == "analytics")
        .context("no analytics")?;
    let peak = analytics_lag(prom).await.context("no lag for analytics")?;
    ensure!(
        peak >= 1000.0,
        "analytics' lag only {peak} while it is down"
    );
    let restarted_at = unix_now();
    analytics.restart()?;
    analytics.wait_ready(WAIT).await?;
    wait_until(
        WAIT,
        "analytics' lag to drain after its restart",
        || async { drained_in_range(prom, restarted_at).await },
    )
    .await?;
    Ok(restarted_at)
}

/// Whether analytics' lag, read as the graphs read it (a range query, whose
/// last point may be a scrape or a rule evaluation older than an instant
/// query's), is under an eighth of its peak since 60 s before `restarted_at`.
async fn drained_in_range(prom: &Prometheus, restarted_at: f64) -> bool {
    let Ok(series) = prom
        .query_range(ANALYTICS_LAG, restarted_at - 60.0, unix_now(), 1.0)
        .await
    else {
        return false;
    };
    let Some(points) = series.first().map(|s| &s.points) else {
        return false;
    };
    let values: Vec<f64> = points
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .collect();
    let peak = values.iter().copied().fold(0.0, f64::max);
    let after: Vec<f64> = points
        .iter()
        .filter(|(t, v)| *t >= restarted_at && v.is_finite())
        .map(|&(_, v)| v)
        .collect();
    after.len() >= 3 && after.last().is_some_and(|&last| last < peak / 8.0)
}

/// The data behind the lag graph, as the page's script asks for it: analytics'
/// series rises while it is down and falls after its restart.
async fn lag_rose_and_fell(prom: &Prometheus, killed_at: f64, restarted_at: f64) -> Result<()> {
    let page = std::fs::read_to_string(prometheus::deploy_dir().join("consoles/hail.html"))?;
    ensure!(
        page.contains("\"lag-messages\" \"Lag (messages)\"")
            && page.contains(&format!("`{LAG_QUERY}`")),
        "the console's lag graph does not draw {LAG_QUERY}"
    );
    let series = prom
        .query_range(LAG_QUERY, killed_at - 20.0, unix_now(), 1.0)
        .await?;
    let analytics = series
        .iter()
        .find(|s| s.labels.get("service").is_some_and(|s| s == "analytics"))
        .with_context(|| format!("no analytics in {series:?}"))?;
    rose_and_fell(&analytics.points, killed_at, restarted_at).context("the console's lag graph")
}

/// Checks analytics' lag over the run: at most `quiet` before the kill, rising
/// while it is down, under a quarter of its peak at the end. `points` are
/// `(unix time, value)`.
fn rose_and_fell(points: &[(f64, f64)], killed_at: f64, restarted_at: f64) -> Result<()> {
    let within = |from: f64, to: f64| -> Vec<f64> {
        points
            .iter()
            .filter(|(t, v)| (from..=to).contains(t) && v.is_finite())
            .map(|&(_, v)| v)
            .collect()
    };
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let before = within(killed_at - 20.0, killed_at);
    let down = within(killed_at + 2.0, restarted_at);
    let after = within(restarted_at, f64::INFINITY);
    ensure!(
        before.len() >= 5 && down.len() >= 15 && after.len() >= 3,
        "too few points (before {}, down {}, after {}): {points:?}",
        before.len(),
        down.len(),
        after.len()
    );
    let third = down.len() / 3;
    let (early, late) = (mean(&down[..third]), mean(&down[down.len() - third..]));
    ensure!(
        late > 2.0 * early.max(1.0) && max(&down) > 4.0 * max(&before).max(100.0),
        "analytics' lag did not rise while it was down: {early:.0} then {late:.0}, \
         {:.0} before the kill: {points:?}",
        max(&before)
    );
    let peak = max(&down).max(max(&after));
    let last = *after.last().expect("checked above");
    ensure!(
        last < peak / 4.0,
        "analytics' lag did not fall after its restart: peak {peak:.0}, now {last:.0}: {points:?}"
    );
    Ok(())
}

/// `hail report` over the run: the HTML holds the charts as SVG, analytics'
/// lag series (rising while it was down, falling after) and the audit's table
/// with a row per service; the PNG beside it is a real picture.
async fn report_written(
    prom: &Prometheus,
    nats_url: &str,
    killed_at: f64,
    restarted_at: f64,
) -> Result<()> {
    let html = target_dir().join("dashboard-report.html");
    let png = target_dir().join("dashboard-report.png");
    for f in [&html, &png] {
        let _ = std::fs::remove_file(f);
    }
    let from = killed_at - 30.0;
    let out = hail(
        nats_url,
        &[
            "report",
            &html.display().to_string(),
            "--prometheus-url",
            &prom.url(""),
            "--from",
            &format!("{from:.3}"),
            "--mark",
            &format!("analytics killed@{killed_at:.3}"),
            "--mark",
            &format!("analytics restarted@{restarted_at:.3}"),
        ],
    )
    .await?;
    ensure!(
        out.contains("dashboard-report.png"),
        "hail report said: {out}"
    );
    let page = std::fs::read_to_string(&html).with_context(|| format!("{}", html.display()))?;
    ensure!(
        page.matches("<polyline").count() >= 8 && page.contains("analytics killed"),
        "no charts in {}",
        html.display()
    );
    let json = page
        .split("<script type=\"application/json\" id=\"hail-series\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .context("no series in the report")?;
    let data: serde_json::Value = serde_json::from_str(&json.replace("<\\/", "</"))?;
    let lag = data["panels"]
        .as_array()
        .and_then(|p| {
            p.iter()
                .find(|p| p["title"].as_str().is_some_and(|t| t.starts_with("Lag")))
        })
        .context("no lag panel in the report")?;
    let analytics = lag["series"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "analytics"))
        .with_context(|| format!("no analytics in the report's lag panel: {lag}"))?;
    let points: Vec<(f64, f64)> = serde_json::from_value(analytics["points"].clone())?;
    // The report's times are seconds into its window.
    let points: Vec<(f64, f64)> = points.into_iter().map(|(t, v)| (from + t, v)).collect();
    rose_and_fell(&points, killed_at, restarted_at).context("the report's lag series")?;
    let rows = tags(&page, "tr");
    for s in SERVICES {
        ensure!(
            rows.iter()
                .any(|r| r.get("data-service").is_some_and(|n| n == s)),
            "no audit row for {s} in {}",
            html.display()
        );
    }
    ensure!(page.contains("<table id=\"audit\">"), "no audit table");
    let bytes = std::fs::read(&png).with_context(|| format!("{}", png.display()))?;
    ensure!(
        png_size(&bytes)? == (1600, 1000) && bytes.len() > 30_000,
        "{} is {} bytes",
        png.display(),
        bytes.len()
    );
    Ok(())
}

/// The page as Chromium draws it over its 5m window: every graph drawn, the lag graph with a path
/// of many points for analytics, and the band of analytics red somewhere.
fn graphs_drawn(prom: &Prometheus) -> Result<()> {
    // The shortest window: a point a second (the test's scrape interval).
    let dom = dump_dom(&prom.url(&format!("{PAGE}?range=5m")))?;
    ensure!(
        dom.contains("data-window=\"5m\" class=\"on\"")
            || dom.contains("class=\"on\" data-window=\"5m\""),
        "the 5m window is not the one shown:\n{dom}"
    );
    for graph in [
        "up",
        "lag-messages",
        "lag-seconds",
        "throughput",
        "latency",
        "match-rate",
        "surge",
        "dead-letters",
    ] {
        ensure!(
            !svg(&dom, graph).is_empty(),
            "graph {graph} not drawn:\n{dom}"
        );
    }
    // The script marks each chart drawn, or "error" with the failure as its text.
    let charts = tags(&dom, "div");
    let charts: Vec<_> = charts
        .iter()
        .filter(|d| d.contains_key("data-graph"))
        .collect();
    ensure!(
        charts.len() == 8
            && charts
                .iter()
                .all(|c| c.get("data-drawn").is_some_and(|d| d == "true")),
        "not every graph drawn: {charts:?}"
    );
    let lag = svg(&dom, "lag-messages");
    let paths = tags(lag, "path");
    for s in SERVICES {
        ensure!(
            paths
                .iter()
                .any(|p| p.get("data-series").is_some_and(|n| n == s)),
            "no lag path for {s}: {paths:?}"
        );
    }
    let analytics = paths
        .iter()
        .find(|p| p.get("data-series").is_some_and(|n| n == "analytics"))
        .expect("checked above");
    let points: usize = analytics["data-points"].parse()?;
    let segments = analytics["d"].matches('L').count();
    ensure!(
        points >= 30 && segments >= 20,
        "analytics' lag path has {points} points, {segments} segments: {analytics:?}"
    );
    let bands = tags(svg(&dom, "up"), "rect");
    ensure!(
        bands
            .iter()
            .any(|r| r.get("class").is_some_and(|c| c == "band down")
                && r.get("data-series").is_some_and(|n| n == "hail-analytics")),
        "no down band for analytics: {bands:?}"
    );
    Ok(())
}

/// The `<svg>` element of graph `id` in `dom` (its chart's `<div>` carries the
/// same `data-graph`), or "".
fn svg<'a>(dom: &'a str, id: &str) -> &'a str {
    let attr = format!("data-graph=\"{id}\"");
    for (open, _) in dom.match_indices("<svg ") {
        let tag_end = dom[open..].find('>').map_or(dom.len(), |e| open + e);
        if dom[open..tag_end].contains(&attr) {
            let close = dom[open..].find("</svg>").map_or(dom.len(), |c| open + c);
            return &dom[open..close];
        }
    }
    ""
}

/// The attributes of every `<name ...>` tag in `html` (values as serialized,
/// entities left as they are).
fn tags(html: &str, name: &str) -> Vec<BTreeMap<String, String>> {
    let open = format!("<{name} ");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&open) {
        let tag = &rest[at + open.len()..];
        let end = tag.find('>').unwrap_or(tag.len());
        let mut attrs = BTreeMap::new();
        let mut body = &tag[..end];
        while let Some(eq) = body.find("=\"") {
            let key = body[..eq].trim().to_string();
            let value_end = body[eq + 2..].find('"').map_or(body.len(), |v| eq + 2 + v);
            attrs.insert(key, body[eq + 2..value_end].to_string());
            body = body.get(value_end + 1..).unwrap_or("");
        }
        out.push(attrs);
        rest = &tag[end..];
    }
    out
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
    // One panel per item of the console page (a widget of now, a graph over
    // time, or both under one title), by title.
    let page = std::fs::read_to_string(prometheus::deploy_dir().join("consoles/hail.html"))?;
    let mut console = console_titles(&page);
    console.sort();
    console.dedup();
    let mut grafana: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    grafana.sort();
    assert_eq!(
        grafana, console,
        "Grafana's panels and the console's items differ"
    );
    Ok(())
}

/// The titles of a console page's items: each "hail.section" (its first
/// argument) and each "hail.graph" (its second, after the graph's id).
fn console_titles(page: &str) -> Vec<&str> {
    let strings = |rest: &'static str| {
        page.match_indices(rest).filter_map(move |(at, _)| {
            let mut quoted = page[at + rest.len()..].split('"');
            Some((quoted.next()?, quoted.next(), quoted.next()))
        })
    };
    let sections = strings("template \"hail.section\" (args \"").map(|(title, _, _)| title);
    // "<id>" "<title>": after the id come its closing quote, a space, the title.
    let graphs = strings("template \"hail.graph\" (args \"").filter_map(|(_, _, title)| title);
    sections.chain(graphs).collect()
}

#[test]
fn reads_the_titles_of_console_items() {
    let page = r#"{{ template "hail.section" (args "Lag" "what") }}
{{ template "hail.graph" (args "lag" "Lag over time" "what" `q`) }}"#;
    assert_eq!(console_titles(page), ["Lag", "Lag over time"]);
}

#[test]
fn finds_the_paths_of_a_drawn_graph() {
    let dom = r#"<div class="chart" data-graph="a"><svg viewBox="0 0 9 9" class="graph" data-graph="a"><path d="M1 2L3 4" data-series="x y" data-points="2"></path></svg>
<svg class="graph" data-graph="lag"><rect x="1" class="band down" data-series="hail-analytics"></rect><path d="M0 0" data-series="fraud"></path></svg></div>"#;
    let lag = tags(svg(dom, "lag"), "path");
    assert_eq!(lag.len(), 1);
    assert_eq!(lag[0]["data-series"], "fraud");
    let a = tags(svg(dom, "a"), "path");
    assert_eq!(
        (a[0]["d"].as_str(), a[0]["data-points"].as_str()),
        ("M1 2L3 4", "2")
    );
    assert_eq!(tags(svg(dom, "lag"), "rect")[0]["class"], "band down");
    assert!(svg(dom, "none").is_empty());
}
