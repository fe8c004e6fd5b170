//! `hail demo`: the experience hail exists for. Brings the stack up, runs the
//! load generator, kills analytics while rides continue, restarts it, narrates
//! what happens and ends with the audit. Exit 0 only when the audit holds.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_events::subjects;
use hail_runtime::service::Service;
use serde::Serialize;

use crate::{audit, stack::Layout, up};

/// Flags of `hail demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Ride requests per second (open loop).
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Second of the run at which analytics is killed (SIGKILL).
    #[arg(long, default_value_t = 20)]
    kill_at: u64,
    /// Seconds analytics stays down.
    #[arg(long, default_value_t = 20)]
    down_for: u64,
    /// Print the summary as JSON on stdout (the narration goes to stderr).
    #[arg(long)]
    json: bool,
    /// After the audit, write a report of the run to FILE (HTML with inline
    /// SVG) and a PNG beside it (FILE with the extension .png).
    #[arg(long, value_name = "FILE")]
    report: Option<std::path::PathBuf>,
}

/// One second of the run, as the demo saw it.
#[derive(Debug, Clone, Copy, Serialize)]
struct Tick {
    second: u64,
    answered: u64,
    matched: u64,
    analytics_lag: u64,
    analytics_up: bool,
}

/// What the demo measured.
#[derive(Debug, Serialize)]
struct Summary {
    rate: u32,
    duration_s: u64,
    kill_at_s: u64,
    restart_at_s: u64,
    answered_per_s_before: f64,
    answered_per_s_during_outage: f64,
    matched_per_s_before: f64,
    matched_per_s_during_outage: f64,
    /// Matched over matching's answers, before, during and after the outage.
    match_rate_before: Option<f64>,
    match_rate_during_outage: Option<f64>,
    match_rate_after: Option<f64>,
    analytics_lag_peak: u64,
    analytics_caught_up_after_s: Option<f64>,
    audit_holds: bool,
    dashboard: String,
    ticks: Vec<Tick>,
}

/// Runs the demo; `Ok(false)` when the audit does not hold.
pub async fn run(nats_url: &str, layout: &Layout, args: DemoArgs) -> Result<bool> {
    anyhow::ensure!(
        args.kill_at + args.down_for < args.duration,
        "--kill-at + --down-for must end before --duration"
    );
    say("bringing the stack up (idempotent)");
    // As the stack runs: with identities if it was started with them.
    let up_args = up::UpArgs {
        auth: layout.auth_on(),
        ..Default::default()
    };
    up::up(layout, &up_args, &mut std::io::stderr()).await?;
    let auth = up::admin(layout);
    let client =
        hail_runtime::connect::connect_as(nats_url, "hail-demo", Duration::from_secs(10), &auth)
            .await?;
    let js = &jetstream::new(client);
    // Killed when the demo ends, an early error included.
    let mut loadgen = LoadGen(start_loadgen(layout, &args, nats_url)?);
    say(&format!(
        "load: {} rides/s for {} s; analytics will be killed at {} s and restarted at {} s",
        args.rate,
        args.duration,
        args.kill_at,
        args.kill_at + args.down_for
    ));
    let start = Instant::now();
    let started_unix = crate::report::unix_now();
    let mut ticks: Vec<Tick> = Vec::new();
    let mut killed = false;
    let mut restarted_at: Option<Instant> = None;
    let mut caught_up: Option<f64> = None;
    let end = Duration::from_secs(args.duration + 30);
    loop {
        let second = start.elapsed().as_secs();
        if !killed && second >= args.kill_at {
            up::kill(layout, Service::Analytics.name(), &mut std::io::stderr())?;
            say("analytics killed (SIGKILL); rides continue, analytics' events wait in RIDES");
            killed = true;
        }
        if killed && restarted_at.is_none() && second >= args.kill_at + args.down_for {
            say("restarting analytics");
            up::start(layout, Service::Analytics.name(), &mut std::io::stderr()).await?;
            restarted_at = Some(Instant::now());
        }
        let tick = sample(js, second, killed && restarted_at.is_none()).await?;
        let (rate_now, matched_now) = ticks.last().map_or((0, 0), |p: &Tick| {
            (
                tick.answered.saturating_sub(p.answered),
                tick.matched.saturating_sub(p.matched),
            )
        });
        narrate(&tick, rate_now, matched_now);
        if let (Some(at), None) = (restarted_at, caught_up)
            && tick.analytics_lag < u64::from(args.rate)
        {
            let s = at.elapsed().as_secs_f64();
            caught_up = Some(s);
            say(&format!(
                "analytics caught up {s:.1} s after its restart: lag {} < one second of traffic",
                tick.analytics_lag
            ));
        }
        ticks.push(tick);
        let load_done = loadgen.0.try_wait()?.is_some();
        if (load_done && caught_up.is_some() && drained(js).await) || start.elapsed() > end {
            break;
        }
        tokio::time::sleep(
            Duration::from_secs(1).saturating_sub(start.elapsed() - Duration::from_secs(second)),
        )
        .await;
    }
    drop(loadgen);
    tell_the_city(layout);
    say("auditing: every request accounted for once per service");
    let reports = audit::audit(js).await?;
    let audit_holds = reports.iter().all(|r| r.holds);
    audit::print_table_to_stderr(&reports, audit_holds);
    if let Some(file) = &args.report {
        let (kill, down) = (args.kill_at, args.down_for);
        crate::report::for_demo(file, started_unix, kill, kill + down, &reports).await?;
    }
    let summary = summarize(&args, ticks, caught_up, audit_holds);
    report(&summary, &args)?;
    Ok(audit_holds)
}

/// The load generator's process: killed (and reaped) when dropped, so a demo
/// that fails half-way leaves no load running against the stack.
struct LoadGen(std::process::Child);

impl Drop for LoadGen {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The load generator on every seed, as the intake identity when the stack
/// runs with identities.
fn start_loadgen(layout: &Layout, args: &DemoArgs, nats_url: &str) -> Result<std::process::Child> {
    let bin = layout.hail_bin("hail-loadgen")?;
    let log = std::fs::File::create(layout.state.join("logs/loadgen.log"))?;
    let mut command = std::process::Command::new(&bin);
    if layout.auth_on() {
        let (user, password) = crate::stack::local_identity("intake");
        command
            .env("NATS_USER", user)
            .env("NATS_PASSWORD", password);
    }
    command
        .args([
            "run",
            "--nats-url",
            nats_url,
            "--rate",
            &args.rate.to_string(),
            "--duration",
            &format!("{}s", args.duration),
            "--report",
            &loadgen_report(layout).display().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))
}

async fn sample(js: &jetstream::Context, second: u64, analytics_down: bool) -> Result<Tick> {
    let stream = js.get_stream(subjects::RIDES_STREAM).await?;
    let matched = subject_count(&stream, subjects::RIDES_MATCHED_ALL).await?;
    let unmatched = subject_count(&stream, subjects::RIDES_UNMATCHED_ALL).await?;
    let c = stream.consumer_info(Service::Analytics.durable()).await?;
    Ok(Tick {
        second,
        answered: matched + unmatched,
        matched,
        analytics_lag: c.num_pending + c.num_ack_pending as u64,
        analytics_up: !analytics_down,
    })
}

async fn subject_count(stream: &jetstream::stream::Stream, filter: &str) -> Result<u64> {
    let info = stream.info_with_subjects(filter).await?;
    let mut total = 0;
    let mut subjects = info;
    use futures::TryStreamExt;
    while let Some((_, n)) = subjects.try_next().await? {
        total += n as u64;
    }
    Ok(total)
}

async fn drained(js: &jetstream::Context) -> bool {
    let Ok(stream) = js.get_stream(subjects::RIDES_STREAM).await else {
        return false;
    };
    for s in Service::ALL {
        match stream.consumer_info(s.durable()).await {
            Ok(c) if c.num_pending == 0 && c.num_ack_pending == 0 => {}
            _ => return false,
        }
    }
    true
}

fn narrate(t: &Tick, answered_last_s: u64, matched_last_s: u64) {
    let state = if t.analytics_up { "up  " } else { "DOWN" };
    let rate = if answered_last_s > 0 {
        format!(
            "{:>3.0}%",
            100.0 * matched_last_s as f64 / answered_last_s as f64
        )
    } else {
        "  -".into()
    };
    eprintln!(
        "  t={:>3}s  matching answered {:>5}/s, matched {rate}  analytics {state} lag {:>7}",
        t.second, answered_last_s, t.analytics_lag
    );
}

/// Where the demo has the load generator write its JSON report.
fn loadgen_report(layout: &Layout) -> std::path::PathBuf {
    layout.state.join("logs/loadgen-report.json")
}

/// What the load generator's report says of the city: match rate, why rides
/// went unmatched, cancellations, surge, driver updates.
fn tell_the_city(layout: &Layout) {
    let path = loadgen_report(layout);
    let Some(r) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        say(&format!("no load generator report at {}", path.display()));
        return;
    };
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let reasons: Vec<String> = r["answers"]["unmatched_by_reason"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| format!("{k} {v}")).collect())
        .unwrap_or_default();
    say(&format!(
        "the city: {} rides, {:.1}% matched (unmatched: {}); riders cancelled {} before pickup; {:.0} driver updates/s beside {:.0} rides/s",
        r["rides"]["published"],
        100.0 * f(&r["match_rate"]),
        if reasons.is_empty() {
            "none".into()
        } else {
            reasons.join(", ")
        },
        r["fleet"]["cancellations_published"],
        f(&r["driver_updates_per_s"]),
        f(&r["achieved_rate"]),
    ));
    let (hot, away) = (&r["surge"]["wave_hotspots"], &r["surge"]["background"]);
    say(&format!(
        "surge: in the rush-hour hotspots p50 {:.1}x, p95 {:.1}x ({:.0}% surged); away from hotspots p50 {:.1}x ({:.0}% surged)",
        f(&hot["p50"]),
        f(&hot["p95"]),
        100.0 * f(&hot["surged_share"]),
        f(&away["p50"]),
        100.0 * f(&away["surged_share"]),
    ));
    let unknown = &r["rides"]["outcome_unknown"];
    if unknown["count"].as_u64().unwrap_or(0) > 0 {
        say(&format!(
            "{} rides' PubAcks never came; RIDES holds {} of them",
            unknown["count"], unknown["stored"]
        ));
    }
}

fn say(s: &str) {
    eprintln!("==> {s}");
}

/// Mean per-second increase of `f` over ticks with `range` seconds.
fn mean_rate(ticks: &[Tick], from: u64, to: u64, f: fn(&Tick) -> u64) -> f64 {
    let w: Vec<&Tick> = ticks
        .iter()
        .filter(|t| t.second >= from && t.second <= to)
        .collect();
    match (w.first(), w.last()) {
        (Some(a), Some(b)) if b.second > a.second => {
            (f(b) - f(a)) as f64 / (b.second - a.second) as f64
        }
        _ => 0.0,
    }
}

/// Matched over answered between the ticks of seconds `from` and `to`.
fn match_rate(ticks: &[Tick], from: u64, to: u64) -> Option<f64> {
    let w: Vec<&Tick> = ticks
        .iter()
        .filter(|t| t.second >= from && t.second <= to)
        .collect();
    let (a, b) = (w.first()?, w.last()?);
    let answered = b.answered.checked_sub(a.answered)?;
    (answered > 0).then(|| (b.matched - a.matched) as f64 / answered as f64)
}

fn summarize(
    args: &DemoArgs,
    ticks: Vec<Tick>,
    caught_up: Option<f64>,
    audit_holds: bool,
) -> Summary {
    let (k, r) = (args.kill_at, args.kill_at + args.down_for);
    let before_from = k.saturating_sub(10).max(3);
    Summary {
        rate: args.rate,
        duration_s: args.duration,
        kill_at_s: k,
        restart_at_s: r,
        answered_per_s_before: mean_rate(&ticks, before_from, k, |t| t.answered),
        answered_per_s_during_outage: mean_rate(&ticks, k + 1, r, |t| t.answered),
        matched_per_s_before: mean_rate(&ticks, before_from, k, |t| t.matched),
        matched_per_s_during_outage: mean_rate(&ticks, k + 1, r, |t| t.matched),
        match_rate_before: match_rate(&ticks, before_from, k),
        match_rate_during_outage: match_rate(&ticks, k + 1, r),
        match_rate_after: match_rate(&ticks, r + 1, args.duration),
        analytics_lag_peak: ticks.iter().map(|t| t.analytics_lag).max().unwrap_or(0),
        analytics_caught_up_after_s: caught_up,
        audit_holds,
        dashboard: "http://127.0.0.1:9090/consoles/hail.html".into(),
        ticks,
    }
}

fn report(s: &Summary, args: &DemoArgs) -> Result<()> {
    say(&format!(
        "matching answered {:.0}/s before the outage and {:.0}/s while analytics was down ({:+.1}%)",
        s.answered_per_s_before,
        s.answered_per_s_during_outage,
        100.0 * (s.answered_per_s_during_outage / s.answered_per_s_before.max(1.0) - 1.0)
    ));
    let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0));
    say(&format!(
        "rides matched to a driver: {} before the outage, {} during it, {} after",
        pct(s.match_rate_before),
        pct(s.match_rate_during_outage),
        pct(s.match_rate_after)
    ));
    say(&format!(
        "analytics lag peaked at {} messages; caught up {}",
        s.analytics_lag_peak,
        s.analytics_caught_up_after_s
            .map_or("never".into(), |v| format!("{v:.1} s after restart"))
    ));
    say(&format!(
        "audit {}; dashboard: {}",
        if s.audit_holds {
            "holds"
        } else {
            "DOES NOT HOLD"
        },
        s.dashboard
    ));
    if args.json {
        println!("{}", serde_json::to_string_pretty(s)?);
    }
    Ok(())
}
