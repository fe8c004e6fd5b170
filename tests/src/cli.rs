//! The real `hail` CLI as a child process.

use anyhow::Result;
use hail_testkit::bin_path;

/// Runs `hail --nats-url <nats_url> <args>`; its stdout, or an error with its stderr.
pub async fn hail(nats_url: &str, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(bin_path("hail")?)
        .arg("--nats-url")
        .arg(nats_url)
        .args(args)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "hail {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
