//! hail's Prometheus files pass promtool: the rules check, their unit tests
//! (`deploy/local/prometheus/tests/*.yml`) pass, and the checked-in
//! `prometheus.yml` is what the shared generator makes and a valid config.
//!
//! Needs promtool (Debian's `prometheus` package); no NATS, no services.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use hail_e2e::prometheus::{config, deploy_dir, scope, tool};

/// Runs promtool with `args` in `dir`; Ok with its output when it exits 0.
fn promtool(dir: &Path, args: &[String]) -> Result<String> {
    let out = Command::new(tool("promtool")?)
        .args(args)
        .current_dir(dir)
        .output()
        .context("running promtool")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "promtool {} failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    Ok(text)
}

/// The `*.yml` files of `deploy/local/prometheus/<sub>`, sorted, as strings.
fn yml_files(sub: &str) -> Result<Vec<String>> {
    let dir = deploy_dir().join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yml"));
    files.sort();
    ensure!(!files.is_empty(), "no .yml files in {}", dir.display());
    Ok(files.iter().map(|p| p.display().to_string()).collect())
}

#[test]
fn promtool_is_installed() {
    if let Err(e) = tool("promtool") {
        panic!("{e:#}");
    }
}

#[test]
fn rules_pass_promtool_check() -> Result<()> {
    let files = yml_files("rules")?;
    let mut args = vec!["check".to_string(), "rules".to_string()];
    args.extend(files.iter().cloned());
    let out = promtool(&deploy_dir(), &args)?;
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
    for alert in [
        "ServiceDown",
        "ConsumerStopped",
        "ConsumerLagHigh",
        "DeadLettersRising",
    ] {
        let alerts = std::fs::read_to_string(deploy_dir().join("rules/alerts.yml"))?;
        assert!(
            alerts.contains(&format!("- alert: {alert}\n")),
            "{alert} missing"
        );
    }
    Ok(())
}

#[test]
fn rule_unit_tests_pass() -> Result<()> {
    let files = yml_files("tests")?;
    let mut args = vec!["test".to_string(), "rules".to_string()];
    args.extend(files.iter().cloned());
    let out = promtool(&deploy_dir(), &args)?;
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
    Ok(())
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_case() -> Result<()> {
    let alerts = std::fs::read_to_string(deploy_dir().join("rules/alerts.yml"))?;
    let tests = std::fs::read_to_string(deploy_dir().join("tests/alerts_test.yml"))?;
    let names = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "));
    for name in names {
        let cases: Vec<&str> = tests
            .split("- eval_time:")
            .filter(|c| c.contains(&format!("alertname: {name}\n")))
            .collect();
        ensure!(
            cases.iter().any(|c| c.contains("exp_alerts: []")),
            "{name}: no case where it stays quiet"
        );
        ensure!(
            cases.iter().any(|c| c.contains("exp_labels:")),
            "{name}: no case where it fires"
        );
    }
    Ok(())
}

#[test]
fn checked_in_prometheus_yml_is_the_generated_one() -> Result<()> {
    let path = deploy_dir().join("prometheus.yml");
    let want = config::local();
    if std::env::var_os("HAIL_WRITE_PROMETHEUS_YML").is_some() {
        std::fs::write(&path, &want).with_context(|| format!("writing {}", path.display()))?;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} differs from hail_e2e::prometheus::config::local(); to rewrite it run\n  {}\n\
         --- generated ---\n{want}",
        path.display(),
        config::REGENERATE
    );
    Ok(())
}

#[test]
fn checked_in_prometheus_yml_passes_promtool_check_config() -> Result<()> {
    // Also loads and checks the rule files it names.
    let args = ["check", "config", "prometheus.yml"].map(String::from);
    let out = promtool(&deploy_dir(), &args)?;
    assert!(out.contains("SUCCESS: 2 rule files found"), "{out}");
    Ok(())
}

/// The `expr:` of every rule in `yml`, a folded expression's lines joined.
fn exprs(yml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in yml.lines().map(str::trim) {
        if let Some(e) = line.strip_prefix("expr:") {
            out.extend(current.take());
            current = Some(e.trim_start_matches(['>', '-', ' ']).to_string());
        } else if let Some(expr) = current.as_mut() {
            let ends = line.is_empty() || line.starts_with(['#', '-']) || line.contains(": ");
            if ends || line.ends_with(':') {
                out.extend(current.take());
            } else {
                expr.push(' ');
                expr.push_str(line);
            }
        }
    }
    out.extend(current);
    out
}

#[test]
fn every_rule_reads_hails_jobs_only_and_every_alert_says_hail() -> Result<()> {
    let mut count = 0;
    for file in yml_files("rules")? {
        let text = std::fs::read_to_string(&file)?;
        for expr in exprs(&text) {
            let bad = scope::unscoped(&expr);
            ensure!(
                bad.is_empty(),
                "{file}: {bad:?} without {} in {expr}",
                scope::HAIL_JOBS
            );
            count += 1;
        }
    }
    ensure!(count >= 15, "only {count} expressions found");
    let alerts = std::fs::read_to_string(deploy_dir().join("rules/alerts.yml"))?;
    assert_eq!(
        alerts.matches("\n          system: hail\n").count(),
        alerts.matches("- alert: ").count(),
        "an alert without the label system: hail"
    );
    Ok(())
}
