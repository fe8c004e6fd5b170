//! The workspace's `rust-version` is a real minimum: no package in the locked
//! dependency graph declares a higher one, and it is not below what the
//! workspace members' edition needs.
//!
//! Reads `cargo metadata --locked --offline` for the host platform (the
//! platform filter keeps cargo from wanting sources of Windows- or wasm-only
//! crates), so it needs no network once the workspace has been built.

use std::{path::Path, process::Command};

use serde_json::Value;

/// The oldest Rust that understands each edition.
const EDITION_MINIMUM: [(&str, &str); 4] = [
    ("2015", "1.0"),
    ("2018", "1.31"),
    ("2021", "1.56"),
    ("2024", "1.85"),
];

#[test]
fn no_package_needs_a_newer_rust_than_the_workspace_declares() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hail-e2e lives one level below the workspace root");
    let declared = workspace_rust_version(&root.join("Cargo.toml"));
    let metadata = cargo_metadata(root);
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut too_new = Vec::new();
    let mut highest: Option<(Version, String)> = None;
    for package in metadata["packages"].as_array().expect("packages") {
        let name = format!("{} {}", package["name"], package["version"]).replace('"', "");
        let needs = package["rust_version"]
            .as_str()
            .map(|v| (v, "rust-version"));
        let needs = needs.or_else(|| {
            let is_member = members.contains(&package["id"].as_str().unwrap_or_default());
            is_member
                .then(|| edition_minimum(package["edition"].as_str().unwrap_or("2015")))
                .map(|v| (v, "its edition"))
        });
        let Some((needs, why)) = needs else { continue };
        let version = Version::parse(needs);
        if version > declared {
            too_new.push(format!("{name} needs Rust {needs} ({why})"));
        }
        if highest.as_ref().is_none_or(|(v, _)| version > *v) {
            highest = Some((version, name));
        }
    }
    assert!(
        too_new.is_empty(),
        "root Cargo.toml declares rust-version {declared}, but:\n  {}\nraise \
         [workspace.package] rust-version to the highest of these",
        too_new.join("\n  ")
    );
    if let Some((version, name)) = highest {
        eprintln!("minimum Rust {version}, set by {name}; the workspace declares {declared}");
    }
}

/// `[workspace.package] rust-version` of the root manifest.
fn workspace_rust_version(manifest: &Path) -> Version {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[workspace.package]"
            && let Some(value) = line.strip_prefix("rust-version")
        {
            let value = value.trim_start().trim_start_matches('=').trim();
            return Version::parse(value.trim_matches('"'));
        }
    }
    panic!(
        "{} has no rust-version in [workspace.package]",
        manifest.display()
    );
}

fn cargo_metadata(root: &Path) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = host_triple(&cargo);
    let out = Command::new(&cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} metadata: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata --locked --offline failed (are the dependencies fetched? \
         `cargo fetch` once with network):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The `host:` line of `cargo -vV`.
fn host_triple(cargo: &str) -> String {
    let out = Command::new(cargo)
        .arg("-vV")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} -vV: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{cargo} -vV names no host"))
}

fn edition_minimum(edition: &str) -> &'static str {
    EDITION_MINIMUM
        .iter()
        .find(|(e, _)| *e == edition)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("unknown edition {edition:?}: add it to EDITION_MINIMUM"))
}

/// A Rust version `major.minor[.patch]`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version(u64, u64, u64);

impl Version {
    fn parse(s: &str) -> Version {
        let mut parts = s.split('.').map(|p| {
            p.parse::<u64>()
                .unwrap_or_else(|_| panic!("{s:?} is not a rust-version"))
        });
        let major = parts.next().unwrap_or(0);
        Version(major, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[test]
fn versions_compare_numerically() {
    assert!(Version::parse("1.90") > Version::parse("1.89.0"));
    assert!(Version::parse("1.100") > Version::parse("1.90"));
    assert_eq!(Version::parse("1.85"), Version::parse("1.85.0"));
    assert_eq!(edition_minimum("2024"), "1.85");
}
