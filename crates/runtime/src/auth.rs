//! Who a process is to NATS, and how it knows the server: the credential and
//! TLS flags every hail binary takes (`--creds`, `--user`/`--password`,
//! `--nkey`, `--tls-ca`, `--tls-cert`/`--tls-key`, each with the environment
//! variable the NATS tools use), the identity they name in errors, and what a
//! permission violation the server reports at run time looks like.
//!
//! ```
//! use clap::Parser;
//! use hail_runtime::auth::AuthArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     auth: AuthArgs,
//! }
//! let cli = Cli::parse_from(["svc", "--user", "pricing", "--password", "secret"]);
//! assert_eq!(cli.auth.identity(), r#"user "pricing""#);
//! ```

use std::{
    path::PathBuf,
    sync::{LazyLock, Mutex},
};

use async_nats::ConnectOptions;
use prometheus::{IntCounterVec, Opts, Registry, core::Collector as _};

/// The metric counting permission violations the server reported, by operation.
pub const PERMISSION_VIOLATIONS: &str = "hail_nats_permission_violations_total";

/// Credentials and TLS settings for the NATS connection.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "NATS credentials and TLS")]
pub struct AuthArgs {
    /// A NATS credentials file (user JWT and nkey seed) to connect with.
    #[arg(long, global = true, env = "NATS_CREDS", conflicts_with_all = ["user", "nkey"])]
    pub creds: Option<PathBuf>,

    /// User name to connect with (with --password).
    #[arg(
        long,
        global = true,
        env = "NATS_USER",
        requires = "password",
        conflicts_with = "nkey"
    )]
    pub user: Option<String>,

    /// Password of --user.
    #[arg(
        long,
        global = true,
        env = "NATS_PASSWORD",
        requires = "user",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// A file holding the nkey seed (`SU…`) to connect with.
    #[arg(long, global = true, env = "NATS_NKEY")]
    pub nkey: Option<PathBuf>,

    /// CA certificate (PEM) the server's certificate must chain to; the connection then requires TLS.
    #[arg(long, global = true, env = "NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for servers that verify clients (with --tls-key).
    #[arg(long, global = true, env = "NATS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, global = true, env = "NATS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The credentials could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot use {identity}: {reason}")]
pub struct AuthError {
    /// The identity named by the flags.
    pub identity: String,
    /// What went wrong.
    pub reason: String,
}

impl AuthArgs {
    /// The identity the flags name, for messages: `user "pricing"`, `nkey UA…`,
    /// `creds file /path`, or `no credentials`.
    pub fn identity(&self) -> String {
        if let Some(path) = &self.creds {
            format!("creds file {}", path.display())
        } else if let Some(user) = &self.user {
            format!("user {user:?}")
        } else if let Some(path) = &self.nkey {
            match read_seed(path).and_then(|seed| public_key(&seed)) {
                Ok(public) => format!("nkey {public} (seed file {})", path.display()),
                Err(_) => format!("nkey seed file {}", path.display()),
            }
        } else {
            "no credentials".to_string()
        }
    }

    /// `options` with these credentials and TLS settings.
    pub async fn apply(&self, mut options: ConnectOptions) -> Result<ConnectOptions, AuthError> {
        let fail = |reason: String| AuthError {
            identity: self.identity(),
            reason,
        };
        if let Some(path) = &self.creds {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| fail(format!("cannot read the credentials file: {e}")))?;
        }
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(path) = &self.nkey {
            let seed = read_seed(path).map_err(fail)?;
            public_key(&seed).map_err(fail)?;
            options = options.nkey(seed);
        }
        if let Some(ca) = &self.tls_ca {
            ensure_file(ca, "--tls-ca").map_err(fail)?;
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            ensure_file(cert, "--tls-cert").map_err(fail)?;
            ensure_file(key, "--tls-key").map_err(fail)?;
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        Ok(options)
    }
}

fn ensure_file(path: &std::path::Path, flag: &str) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!("{flag} {}: no such file", path.display()))
    }
}

fn read_seed(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the nkey seed file {}: {e}", path.display()))?;
    // A seed file may hold comments or a public key too; the seed is the `S…` line.
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with('S'))
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "{} holds no nkey seed (a line starting with S)",
                path.display()
            )
        })
}

fn public_key(seed: &str) -> Result<String, String> {
    nkeys::KeyPair::from_seed(seed)
        .map(|kp| kp.public_key())
        .map_err(|e| format!("not a valid nkey seed: {e}"))
}

/// Why a failed connection will stay refused, if it will: wrong or missing
/// credentials, or a TLS setup that does not fit the server's. Retrying those
/// only hides the reason; anything else (no server yet) is worth a retry.
pub fn refusal(e: &async_nats::ConnectError) -> Option<String> {
    use async_nats::ConnectErrorKind as K;
    let text = e.to_string();
    match e.kind() {
        // nats-server's words.
        K::AuthorizationViolation => Some("Authorization Violation".into()),
        K::Authentication | K::Tls => Some(text),
        // rustls reports an untrusted or mismatched certificate as I/O.
        K::Io if text.contains("certificate") => Some(format!(
            "TLS: the server's certificate is not trusted ({text}); give its CA with --tls-ca"
        )),
        _ => None,
    }
}

/// What a connection was not allowed to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `publish` or `subscribe`.
    pub operation: &'static str,
    /// The subject it was denied.
    pub subject: String,
}

/// Reads the server's `Permissions Violation for Publish to "x"` or
/// `… for Subscription to "x"` (async-nats' `ServerError::Other`).
///
/// ```
/// use hail_runtime::auth::violation;
/// let v = violation(r#"Permissions Violation for Publish to "rides.priced.berlin""#).unwrap();
/// assert_eq!((v.operation, v.subject.as_str()), ("publish", "rides.priced.berlin"));
/// assert!(violation("Slow Consumer").is_none());
/// ```
pub fn violation(message: &str) -> Option<Violation> {
    let rest = message
        .trim()
        .trim_matches('\'')
        .strip_prefix("Permissions Violation for ")?;
    let (operation, rest) = if let Some(r) = rest.strip_prefix("Publish to ") {
        ("publish", r)
    } else if let Some(r) = rest.strip_prefix("Subscription to ") {
        ("subscribe", r)
    } else {
        ("other", rest)
    };
    let subject = rest.split('"').nth(1).unwrap_or(rest).to_string();
    Some(Violation { operation, subject })
}

static VIOLATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            PERMISSION_VIOLATIONS,
            "Operations the NATS server refused this process for lack of permission, by operation.",
        ),
        &["operation"],
    )
    .expect("a valid metric")
});

/// The last permission violation the server reported to this process.
static LAST: Mutex<Option<Violation>> = Mutex::new(None);

/// The last permission violation the server reported to this process, if
/// any: a request it refused only times out, and this says why.
pub fn last_violation() -> Option<Violation> {
    LAST.lock().map(|v| v.clone()).unwrap_or(None)
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server refused this identity: Permissions Violation for {} to {:?}",
            self.operation, self.subject
        )
    }
}

/// How many permission violations the server has reported to this process.
pub fn violations() -> u64 {
    VIOLATIONS
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// Adds the permission-violation counter (one per process) to `registry`.
pub fn register_metrics(registry: &Registry) -> prometheus::Result<()> {
    registry.register(Box::new(VIOLATIONS.clone()))
}

/// Logs a server error: a permission violation at error level, naming the
/// subject, and counts it.
pub fn on_server_error(error: &async_nats::ServerError) {
    match error {
        async_nats::ServerError::Other(message) => match violation(message) {
            Some(v) => {
                VIOLATIONS.with_label_values(&[v.operation]).inc();
                if let Ok(mut last) = LAST.lock() {
                    *last = Some(v.clone());
                }
                tracing::error!(
                    operation = v.operation,
                    subject = v.subject,
                    "nats permission violation: this identity may not {} {}",
                    v.operation,
                    v.subject
                );
            }
            None => tracing::error!(error = %message, "nats server error"),
        },
        other => tracing::error!(error = %other, "nats server error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_kinds_of_violation() {
        let v =
            violation(r#"Permissions Violation for Subscription to "$KV.hail_claims.>""#).unwrap();
        assert_eq!(v.operation, "subscribe");
        assert_eq!(v.subject, "$KV.hail_claims.>");
        let v = violation(r#"'Permissions Violation for Subscription to "x.y" using queue "q"'"#)
            .unwrap();
        assert_eq!((v.operation, v.subject.as_str()), ("subscribe", "x.y"));
        assert!(violation("Authorization Violation").is_none());
    }

    #[test]
    fn an_identity_names_what_was_given() {
        assert_eq!(AuthArgs::default().identity(), "no credentials");
        let creds = AuthArgs {
            creds: Some("/x/matching.creds".into()),
            ..Default::default()
        };
        assert_eq!(creds.identity(), "creds file /x/matching.creds");
        let dir = tempfile_dir();
        let seed = nkeys::KeyPair::new_user();
        let path = dir.join("user.nk");
        std::fs::write(&path, format!("{}\n", seed.seed().unwrap())).unwrap();
        let nkey = AuthArgs {
            nkey: Some(path),
            ..Default::default()
        };
        assert!(
            nkey.identity()
                .starts_with(&format!("nkey {}", seed.public_key())),
            "{}",
            nkey.identity()
        );
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hail-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
