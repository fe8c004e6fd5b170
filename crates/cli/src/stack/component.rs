//! The processes of the local stack and how each is started and checked.

use std::path::PathBuf;

use anyhow::Result;

use super::Layout;

/// The four services, in start order.
pub const SERVICES: [&str; 4] = ["matching", "pricing", "fraud", "analytics"];

/// Default `/metrics` port of a service or the monitor.
pub fn metrics_port(name: &str) -> Option<u16> {
    match name {
        "matching" => Some(9101),
        "pricing" => Some(9102),
        "fraud" => Some(9103),
        "analytics" => Some(9104),
        "monitor" => Some(9105),
        _ => None,
    }
}

/// One process of the stack.
#[derive(Debug, Clone)]
pub struct Component {
    /// Short name: pid file, log file, `hail kill <name>`.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Answers 200 once the process is ready.
    pub ready_url: String,
    /// Shown by `hail up`.
    pub url: String,
}

impl Component {
    /// nats-server with deploy/local/nats.conf and its store under the state folder.
    pub fn nats(layout: &Layout) -> Result<Component> {
        let program = layout.tool("nats-server", "NATS_SERVER_BIN", "run ./dev install")?;
        let args = vec![
            "-c".into(),
            layout.deploy("nats.conf").display().to_string(),
            "-sd".into(),
            layout.state.join("nats").display().to_string(),
        ];
        Ok(Component {
            name: "nats-server".into(),
            program,
            args,
            ready_url: "http://127.0.0.1:8222/healthz".into(),
            url: "nats://127.0.0.1:4222 (monitor http://127.0.0.1:8222)".into(),
        })
    }

    /// A service (`matching`…) or the monitor.
    pub fn hail(layout: &Layout, name: &str) -> Result<Component> {
        let port = metrics_port(name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown service {name:?}; one of matching, pricing, fraud, analytics, monitor"
            )
        })?;
        let program = layout.hail_bin(&format!("hail-{name}"))?;
        let ready = if name == "monitor" {
            "healthz"
        } else {
            "readyz"
        };
        Ok(Component {
            name: name.into(),
            program,
            args: vec!["--nats-url".into(), "nats://127.0.0.1:4222".into()],
            ready_url: format!("http://127.0.0.1:{port}/{ready}"),
            url: format!("http://127.0.0.1:{port}/metrics"),
        })
    }

    /// Prometheus with hail's config, rules and console dashboard.
    pub fn prometheus(layout: &Layout) -> Result<Component> {
        let program = layout.tool("prometheus", "PROMETHEUS_BIN", "apt-get install prometheus")?;
        let dir = layout.deploy("prometheus");
        let args = vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!(
                "--storage.tsdb.path={}",
                layout.state.join("prometheus").display()
            ),
            "--web.listen-address=127.0.0.1:9090".into(),
            format!("--web.console.templates={}", dir.join("consoles").display()),
            format!(
                "--web.console.libraries={}",
                dir.join("console_libraries").display()
            ),
        ];
        Ok(Component {
            name: "prometheus".into(),
            program,
            args,
            ready_url: "http://127.0.0.1:9090/-/ready".into(),
            url: "http://127.0.0.1:9090 (dashboard http://127.0.0.1:9090/consoles/hail.html)"
                .into(),
        })
    }
}
