//! The environment-ready step: the checkout's environment is entered once (`<wrapper> true`)
//! before the agent, with its own timeout. Real wrapper scripts stand in for `nix develop` here
//! (the real Nix runs in `tests/it/nix.rs` where it is installed): one that works, one that fails
//! like a flake that does not evaluate, one that hangs.

use std::os::unix::fs::PermissionsExt;

use journeyman::harness::sim::seed::SeedWp;
use journeyman::task::{FailureKind, Outcome};

use crate::execution::rig_with;

/// A wrapper script: `body` runs first; then it executes its arguments (as `nix develop
/// --command ARGS...` would).
fn wrapper(dir: &std::path::Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\nexec \"$@\"\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_environment_is_entered_before_the_agent_and_said_ready_on_the_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("entered.log");
    let w = wrapper(
        dir.path(),
        "dev-shell",
        &format!("echo \"$@\" >> {}", log.display()),
    );
    let mut rig = rig_with("60s", &[("JOURNEYMAN_ENV_WRAPPER", &w)]).await;
    let wp = rig.board.create(&SeedWp::new("Task", "Add a greeting"));
    let r = rig.cycle().await;
    assert!(matches!(r.outcome, Some(Outcome::Pushed { .. })), "{r:?}");
    let entered = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = entered.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"true"),
        "entered once with `true` first: {entered}"
    );
    assert!(
        lines[1].contains("journeyman-scripted-agent -p "),
        "then the agent: {entered}"
    );
    assert_eq!(
        lines.iter().filter(|l| **l == "true").count(),
        1,
        "entered once"
    );
    let comments = rig.board.comments(wp);
    let ready = comments
        .iter()
        .position(|c| c.contains("**environment ready** in"))
        .unwrap_or_else(|| panic!("{comments:?}"));
    let usage = comments
        .iter()
        .position(|c| c.contains("execution **complete**"))
        .unwrap();
    assert!(ready < usage, "{comments:?}");
    assert!(
        comments[ready].contains("flake.lock `none`"),
        "no flake.lock: {}",
        comments[ready]
    );
}

#[tokio::test]
async fn an_environment_that_fails_is_the_pods_problem_with_its_own_error_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let w = wrapper(
        dir.path(),
        "broken-shell",
        "echo \"error: undefined variable 'pkgs' at /checkout/flake.nix:7:5\" >&2; exit 1",
    );
    let mut rig = rig_with("60s", &[("JOURNEYMAN_ENV_WRAPPER", &w)]).await;
    let wp = rig.board.create(&SeedWp::new("Task", "Add a greeting"));
    let r = rig.cycle().await;
    let Some(Outcome::Failed {
        kind,
        reason,
        evidence,
    }) = &r.outcome
    else {
        panic!("{r:?}");
    };
    assert!(matches!(kind, FailureKind::Environment(_)), "{kind:?}");
    assert!(
        reason.contains("entering the environment failed")
            && reason.contains(&format!("`{w} true` exited with code 1"))
            && reason.contains("error: undefined variable 'pkgs' at /checkout/flake.nix:7:5"),
        "the command, its exit and Nix's first error line: {reason}"
    );
    assert!(
        evidence.contains("undefined variable 'pkgs'"),
        "Nix's own error: {evidence}"
    );
    assert!(
        !rig.board.board().children.contains_key(&wp),
        "no Spike blames the ticket"
    );
    let last = rig.board.comments(wp).last().unwrap().clone();
    assert!(
        last.contains("flake.nix build and enter on this pod"),
        "its one question: {last}"
    );
    assert!(
        last.contains("error: undefined variable 'pkgs'"),
        "the error is on the ticket, not only in the log: {last}"
    );
    assert!(rig.worker.paused().is_some(), "the pod pauses");
}

#[tokio::test]
async fn an_environment_that_hangs_times_out_as_the_pods_problem() {
    let dir = tempfile::tempdir().unwrap();
    let w = wrapper(dir.path(), "slow-shell", "sleep 30");
    let mut rig = rig_with(
        "60s",
        &[
            ("JOURNEYMAN_ENV_WRAPPER", &w),
            ("JOURNEYMAN_ENV_TIMEOUT", "1s"),
        ],
    )
    .await;
    rig.board.create(&SeedWp::new("Task", "Add a greeting"));
    let started = std::time::Instant::now();
    let r = rig.cycle().await;
    let Some(Outcome::Failed { kind, reason, .. }) = &r.outcome else {
        panic!("{r:?}");
    };
    assert!(matches!(kind, FailureKind::Environment(_)), "{kind:?}");
    assert!(reason.contains("timed out after 1s"), "{reason}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test]
async fn the_agent_gets_its_own_temporary_directory_emptied_after_each_run() {
    let mut rig = rig_with("60s", &[]).await;
    rig.board
        .create(&SeedWp::new("Task", "Dump the environment").description("agent:env-dump"));
    let r = rig.cycle().await;
    assert!(r.outcome.is_some(), "{r:?}");
    let tmp = rig.config.workdir.join("agent-tmp");
    let dump = crate::process::find_file(&rig.config.workdir.join("repos"), "ENV_DUMP.txt")
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_default();
    assert!(
        dump.lines()
            .any(|l| l == format!("TMPDIR={}", tmp.display())),
        "TMPDIR is the pod's own: {dump}"
    );
    assert!(
        std::fs::read_dir(&tmp).map_or(true, |mut d| d.next().is_none()),
        "nothing left in it after the run"
    );
}
