//! `journeyman doctor --deep` as a real process: the bundled board, a real git remote carrying an
//! offline flake (good or broken), the default wrapper and the real `nix develop`.

use journeyman::harness::sim::BoardHandle;

use super::{EVAL_ERROR_FLAKE, OFFLINE_NIX_CONFIG, nix_or_skip, offline_flake, unique_marker};
use crate::support::git::BareRemote;

const BIN: &str = env!("CARGO_BIN_EXE_journeyman");
const SCRIPTED: &str = env!("CARGO_BIN_EXE_journeyman-scripted-agent");

/// Runs `journeyman doctor ARGS` with the worker's default wrapper and the offline Nix settings:
/// exit code, the report (stdout; its log lines on stderr are left out), and the workdir it was
/// given.
async fn doctor(
    board: &BoardHandle,
    remote: &BareRemote,
    args: &[&str],
) -> (i32, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(BIN)
        .arg("doctor")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env("NIX_CONFIG", OFFLINE_NIX_CONFIG)
        .env("JOURNEYMAN_OPENPROJECT_URL", board.url().as_str())
        .env("JOURNEYMAN_OPENPROJECT_TOKEN", board.token())
        .env("JOURNEYMAN_POD_NAME", "pod-doc")
        .env("JOURNEYMAN_REPOS", format!("demo={}#main", remote.url()))
        .env("JOURNEYMAN_WORKDIR", dir.path().join("work"))
        .env("JOURNEYMAN_AGENT_COMMAND", SCRIPTED)
        .env("JOURNEYMAN_HTTP_TIMEOUT", "3s")
        .output()
        .await
        .expect("doctor runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), report, dir)
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
}

/// The remote's branches: the doctor must not add one.
fn branches(remote: &BareRemote) -> Vec<String> {
    remote
        .repo
        .branches(None)
        .unwrap()
        .map(|b| b.unwrap().0.name().unwrap().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn doctor_deep_enters_the_repositorys_dev_shell_and_says_how_long_it_took() {
    if !nix_or_skip(
        "nix::doctor::doctor_deep_enters_the_repositorys_dev_shell_and_says_how_long_it_took",
    ) {
        return;
    }
    let board = crate::support::board().await;
    let remote = BareRemote::new();
    remote.commit_file(
        "main",
        "flake.nix",
        &offline_flake(&unique_marker()),
        "Add an offline dev shell",
    );
    let (code, out, workdir) = doctor(&board, &remote, &["--deep"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("all checks passed\n"), "{out}");
    let check = line(&out, "dev shell demo");
    assert!(check.starts_with("OK"), "{out}");
    assert!(
        check.contains("`nix develop --command true` took ")
            && check.contains(" s in a fresh clone of main at ")
            && check.contains("with its flake.nix"),
        "{check}"
    );
    assert_eq!(branches(&remote), ["main"], "nothing pushed");
    assert!(
        !workdir.path().join("work").join("repos").exists(),
        "the pod's clones are not touched: the doctor clones into a scratch directory"
    );
}

#[tokio::test]
async fn doctor_deep_fails_on_a_flake_that_does_not_evaluate_with_nixs_error_and_a_fix() {
    if !nix_or_skip(
        "nix::doctor::doctor_deep_fails_on_a_flake_that_does_not_evaluate_with_nixs_error_and_a_fix",
    ) {
        return;
    }
    let board = crate::support::board().await;
    let remote = BareRemote::new();
    remote.commit_file(
        "main",
        "flake.nix",
        EVAL_ERROR_FLAKE,
        "Add a broken dev shell",
    );
    let (code, out, _) = doctor(&board, &remote, &["--deep", "--repo", "demo"]).await;
    assert_ne!(code, 0, "{out}");
    let check = line(&out, "dev shell demo");
    assert!(
        check.starts_with("FAIL")
            && check.contains("`nix develop --command true` failed after ")
            && check.contains("error: undefined variable 'pkgs'"),
        "Nix's own error on the check's line: {out}"
    );
    assert!(
        out.contains("fix: fix its flake.nix (devShells.<system>.default)"),
        "{out}"
    );
    assert!(
        out.ends_with("1 check(s) failed\n"),
        "only the dev shell: {out}"
    );
}

#[tokio::test]
async fn without_deep_the_doctor_never_enters_the_dev_shell() {
    if !nix_or_skip("nix::doctor::without_deep_the_doctor_never_enters_the_dev_shell") {
        return;
    }
    let board = crate::support::board().await;
    let remote = BareRemote::new();
    remote.commit_file(
        "main",
        "flake.nix",
        EVAL_ERROR_FLAKE,
        "Add a broken dev shell",
    );
    let (code, out, _) = doctor(&board, &remote, &[]).await;
    assert_eq!(code, 0, "a broken flake is not seen without --deep: {out}");
    assert!(!out.contains("dev shell"), "{out}");
    assert!(line(&out, "environment wrapper").starts_with("OK"), "{out}");
}
