//! The real `nix develop`: the worker's default environment wrapper (`nix develop --command`) run
//! for real, against real git repositories whose flake works offline (no inputs; the dev shell is a
//! plain derivation, `tests/fixtures/nix/`), so these tests need Nix but no network.
//!
//! `scripts/test` installs Nix (Debian's `nix-bin`) and sets `JOURNEYMAN_TEST_NIX=1`. Without Nix
//! each test prints one `SKIPPED` line and returns, except when `CI` or `JOURNEYMAN_TEST_NIX` is
//! set: then a missing Nix fails the test, so CI can never pass without running them. Every `nix`
//! these tests start gets the settings of `scripts/lib/nix-offline.conf` as `NIX_CONFIG`.

mod claude;
mod doctor;
mod execution;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The Nix settings every test passes to `nix` (flakes on, no sandbox, no build users, nothing to
/// download): the file `scripts/test` exports too.
pub(crate) const OFFLINE_NIX_CONFIG: &str = include_str!("../../scripts/lib/nix-offline.conf");

/// A flake without inputs whose dev shell exports `JOURNEYMAN_FLAKE_MARKER=@MARKER@`.
const OFFLINE_FLAKE: &str = include_str!("../fixtures/nix/offline-flake.nix");

/// The lock file `nix flake lock` would write for a flake without inputs (Nix 2.8 writes none).
pub(crate) const OFFLINE_FLAKE_LOCK: &str = include_str!("../fixtures/nix/offline-flake.lock");

/// A flake that does not evaluate (`undefined variable 'pkgs'`).
pub(crate) const EVAL_ERROR_FLAKE: &str = include_str!("../fixtures/nix/eval-error-flake.nix");

/// A flake whose dev shell does not build (an input's builder fails).
pub(crate) const BUILD_ERROR_FLAKE: &str = include_str!("../fixtures/nix/build-error-flake.nix");

/// The offline flake, its dev shell exporting `JOURNEYMAN_FLAKE_MARKER=marker`.
pub(crate) fn offline_flake(marker: &str) -> String {
    offline_flake_with(&[("JOURNEYMAN_FLAKE_MARKER", marker)])
}

/// The offline flake, its dev shell exporting `vars` (names and values without quotes or
/// backslashes).
pub(crate) fn offline_flake_with(vars: &[(&str, &str)]) -> String {
    let line = "          JOURNEYMAN_FLAKE_MARKER = \"@MARKER@\";\n";
    assert!(
        OFFLINE_FLAKE.contains(line),
        "the fixture exports the marker"
    );
    let exports: String = vars
        .iter()
        .map(|(k, v)| {
            assert!(!v.contains(['"', '\\', '$']), "a plain value: {v}");
            format!("          {k} = \"{v}\";\n")
        })
        .collect();
    OFFLINE_FLAKE.replace(line, &exports)
}

/// A value no other test uses: a process carrying it in its environment was started by this test.
pub(crate) fn unique_marker() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("journeyman-test-{}-{nanos}", std::process::id())
}

/// True when `nix` runs. When it does not: a failure under `CI` or `JOURNEYMAN_TEST_NIX`, else one
/// `SKIPPED <test>: ...` line and false.
pub(crate) fn nix_or_skip(test: &str) -> bool {
    let version = std::process::Command::new("nix")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success());
    if version.is_some() {
        return true;
    }
    for required in ["CI", "JOURNEYMAN_TEST_NIX"] {
        if std::env::var_os(required).is_some() {
            panic!(
                "{required} is set but nix is not installed (or `nix --version` fails): the Nix \
                 tests must run here. Run scripts/test, which installs it \
                 (apt-get install -y nix-bin)"
            );
        }
    }
    eprintln!("SKIPPED {test}: nix is not installed (scripts/test installs it)");
    false
}

/// The first 12 hex digits of the git blob id of `content`: how the worker names a flake.lock.
pub(crate) fn lock_id(content: &str) -> String {
    let oid = git2::Oid::hash_object(git2::ObjectType::Blob, content.as_bytes()).unwrap();
    oid.to_string()[..12].to_string()
}

/// The pids of processes (other than this test's) that satisfy `matches` on their command line,
/// working directory and environment, each read from `/proc` (a process that exits meanwhile is
/// skipped).
pub(crate) fn processes_where(matches: impl Fn(&Proc) -> bool) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let dir = Path::new("/proc").join(pid.to_string());
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            let proc = Proc {
                cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
                cwd: std::fs::read_link(dir.join("cwd")).ok(),
                environ: std::fs::read(dir.join("environ"))
                    .map(|e| String::from_utf8_lossy(&e).into_owned())
                    .unwrap_or_default(),
            };
            matches(&proc).then_some((pid, proc.cmdline))
        })
        .collect()
}

/// What `/proc` says about one process.
pub(crate) struct Proc {
    pub(crate) cmdline: String,
    pub(crate) cwd: Option<std::path::PathBuf>,
    pub(crate) environ: String,
}
