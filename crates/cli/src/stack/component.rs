//! The processes of the local stack and how each is started and checked.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use hail_runtime::service::{MONITOR_BINARY, MONITOR_METRICS_PORT, Service};

use super::{Layout, Topology};

/// Every service's name, in start order ([`Service::EVERY`]: the four of
/// the pipeline, then ride-view).
pub const SERVICES: [&str; 5] = Service::EVERY_NAMES;

/// pricing's demand window in the local stack: matched to the load generator's
/// compressed time.
pub const PRICING_DEMAND_WINDOW: &str = "1s";

/// The monitor's name in the stack (pid file, log file, `hail kill monitor`).
pub const MONITOR: &str = "monitor";

/// The gateway's name in the stack (pid file, log file, `hail kill gateway`).
pub const GATEWAY: &str = "gateway";

/// One process of the stack.
#[derive(Debug, Clone)]
pub struct Component {
    /// Short name: pid file, log file, `hail kill <name>`.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment on top of ours (its NATS identity, with `hail up --auth`).
    pub env: Vec<(String, String)>,
    /// Answers 200 once the process is ready.
    pub ready_url: String,
    /// Shown by `hail up`.
    pub url: String,
}

impl Component {
    /// nats-server with deploy/local/nats.conf, its store under the state folder
    /// and the sync policy `sync` (`always`, or an interval like 2m) written into
    /// the copy of the config it runs with; with deploy/local/auth.conf's
    /// identities too when the stack runs with `--auth`.
    pub fn nats(layout: &Layout, sync: &str) -> Result<Component> {
        let program = layout.tool("nats-server", "NATS_SERVER_BIN", "run ./dev install")?;
        let config = render_nats_conf(layout, sync, layout.auth_on())?;
        let args = vec![
            "-c".into(),
            config.display().to_string(),
            "-sd".into(),
            layout.state.join("nats").display().to_string(),
        ];
        Ok(Component {
            name: "nats-server".into(),
            program,
            args,
            env: Vec::new(),
            ready_url: "http://127.0.0.1:8222/healthz".into(),
            url: format!("nats://127.0.0.1:4222 (monitor http://127.0.0.1:8222, sync {sync})"),
        })
    }

    /// A service (`matching`…) or the monitor, connecting to `topology`'s seeds.
    pub fn hail(layout: &Layout, name: &str, topology: Topology) -> Result<Component> {
        let (binary, port, ready) = if name == MONITOR {
            (MONITOR_BINARY, MONITOR_METRICS_PORT, "healthz")
        } else {
            let service: Service = name
                .parse()
                .map_err(|e| anyhow::anyhow!("{e}, or {MONITOR}"))?;
            (service.binary(), service.metrics_port(), "readyz")
        };
        let program = layout.hail_bin(binary)?;
        let mut args = vec!["--nats-url".into(), topology.seeds()];
        if name == MONITOR {
            // Every node's health and the meta leader come from their HTTP monitors.
            args.extend(["--nats-monitor-url".into(), topology.monitor_urls()]);
        }
        if name == Service::Matching.name() {
            // Each city's service area; pricing's tariffs are built in, these are not.
            let cities = layout.deploy("cities.toml").display().to_string();
            args.extend(["--cities".into(), cities]);
        }
        if name == Service::Pricing.name() {
            // The load generator's city runs on compressed time (a trip of about
            // 15 minutes takes 3 s), so demand is counted over 1 s: about 5
            // minutes of that city.
            args.extend(["--demand-window".into(), PRICING_DEMAND_WINDOW.into()]);
        }
        let env = identity_env(layout, name);
        Ok(Component {
            name: name.into(),
            program,
            args,
            env,
            ready_url: format!("http://127.0.0.1:{port}/{ready}"),
            url: format!("http://127.0.0.1:{port}/metrics"),
        })
    }

    /// hail-gateway on its default port, taking rides in the cities of
    /// deploy/local/cities.toml, connecting to `topology`'s seeds.
    pub fn gateway(layout: &Layout, topology: Topology) -> Result<Component> {
        let program = layout.hail_bin(hail_gateway::BINARY)?;
        let port = hail_gateway::DEFAULT_PORT;
        let cities = layout.deploy("cities.toml").display().to_string();
        let args = vec![
            "--nats-url".into(),
            topology.seeds(),
            "--cities".into(),
            cities,
        ];
        let env = identity_env(layout, GATEWAY);
        Ok(Component {
            name: GATEWAY.into(),
            program,
            args,
            env,
            ready_url: format!("http://127.0.0.1:{port}/readyz"),
            url: format!(
                "http://127.0.0.1:{port} (API: /v1/rides, OpenAPI: /openapi.json, /metrics)"
            ),
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
            env: Vec::new(),
            ready_url: "http://127.0.0.1:9090/-/ready".into(),
            url: "http://127.0.0.1:9090 (dashboard http://127.0.0.1:9090/consoles/hail.html)"
                .into(),
        })
    }
}

/// The environment that gives `name` its NATS identity with `hail up --auth`;
/// none without it.
fn identity_env(layout: &Layout, name: &str) -> Vec<(String, String)> {
    if !layout.auth_on() {
        return Vec::new();
    }
    let (user, password) = local_identity(name);
    vec![
        ("NATS_USER".to_string(), user),
        ("NATS_PASSWORD".to_string(), password),
    ]
}

/// The user and password of `name` (a service, `monitor`, `intake` or
/// `admin`) in deploy/local/auth.conf: public, for the local stack only.
pub fn local_identity(name: &str) -> (String, String) {
    (name.to_string(), format!("hail-local-{name}"))
}

/// The line of deploy/local/nats.conf that sets the sync policy.
const SYNC_LINE: &str = "  sync_interval: \"2m\"";

/// Writes `<state>/nats.conf`: deploy/local/nats.conf with `sync` as its sync
/// policy, and deploy/local/auth.conf's identities after it when `auth`.
fn render_nats_conf(layout: &Layout, sync: &str, auth: bool) -> Result<PathBuf> {
    let mut rendered = read_config(layout, "nats.conf", sync)?;
    if auth {
        add_identities(layout, &mut rendered)?;
    }
    std::fs::create_dir_all(&layout.state)?;
    let out = layout.state.join("nats.conf");
    std::fs::write(&out, rendered)?;
    Ok(out)
}

/// Appends deploy/local/auth.conf (the stack's identities) to a server config.
pub(super) fn add_identities(layout: &Layout, rendered: &mut String) -> Result<()> {
    let identities = layout.deploy("auth.conf");
    let text = std::fs::read_to_string(&identities)
        .with_context(|| format!("cannot read {}", identities.display()))?;
    rendered.push('\n');
    rendered.push_str(&text);
    Ok(())
}

/// deploy/local/`<file>` with `sync` (`always`, or an interval) as its sync policy.
pub(super) fn read_config(layout: &Layout, file: &str, sync: &str) -> Result<String> {
    let valid = sync == "always" || hail_runtime::duration::parse_duration(sync).is_ok();
    anyhow::ensure!(
        valid,
        "--sync {sync:?}: use `always` or an interval like 2m or 10s"
    );
    let template = layout.deploy(file);
    let text = std::fs::read_to_string(&template)
        .with_context(|| format!("cannot read {}", template.display()))?;
    anyhow::ensure!(
        text.contains(SYNC_LINE),
        "{} has no line `{}`",
        template.display(),
        SYNC_LINE.trim()
    );
    let value = if sync == "always" {
        "always".to_string()
    } else {
        format!("\"{sync}\"")
    };
    Ok(text.replace(SYNC_LINE, &format!("  sync_interval: {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_local_identity_is_in_auth_conf() {
        let conf = include_str!("../../../../deploy/local/auth.conf");
        let names = SERVICES
            .iter()
            .copied()
            .chain([MONITOR, GATEWAY, "intake", "admin"]);
        for name in names {
            let (user, password) = local_identity(name);
            let entry = format!("user: \"{user}\", password: \"{password}\"");
            assert!(conf.contains(&entry), "auth.conf lacks {entry}");
        }
    }
}
