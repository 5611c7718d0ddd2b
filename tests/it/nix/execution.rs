//! The worker end to end through the real `nix develop`: the real worker and executor with the
//! default environment wrapper (`JOURNEYMAN_ENV_WRAPPER` unset), the scripted stand-in agent, a real
//! git remote whose `main` carries an offline flake, and the bundled board.

use std::path::{Path, PathBuf};
use std::time::Duration;

use journeyman::agent::EnvWrapper;
use journeyman::harness::sim::seed::SeedWp;
use journeyman::task::{FailureKind, Outcome};
use journeyman::workspace::{STARTER_FLAKE_MESSAGE, Workspaces};
use tempfile::TempDir;

use super::{
    BUILD_ERROR_FLAKE, EVAL_ERROR_FLAKE, OFFLINE_FLAKE_LOCK, OFFLINE_NIX_CONFIG, lock_id,
    nix_or_skip, offline_flake, processes_where, unique_marker,
};
use crate::execution::{Rig, rig_custom};
use crate::support::eventually;

/// A rig with the worker's default wrapper and the offline Nix settings in the agent's
/// environment, its remote's `main` carrying `flake` (and `lock` as flake.lock). The agent's
/// `TMPDIR` is the returned directory: `nix develop` leaves a `nix-shell.*` directory there on
/// every entry, removed with it.
async fn nix_rig(task_timeout: &str, flake: &str, lock: Option<&str>) -> (Rig, TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let rig = rig_custom(
        task_timeout,
        &[],
        &["JOURNEYMAN_ENV_WRAPPER"],
        &[
            ("NIX_CONFIG", OFFLINE_NIX_CONFIG),
            ("TMPDIR", tmp.path().to_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        rig.config.agent.wrapper,
        EnvWrapper::Command(vec!["nix".into(), "develop".into(), "--command".into()]),
        "JOURNEYMAN_ENV_WRAPPER unset is `nix develop --command`"
    );
    rig.remote
        .commit_file("main", "flake.nix", flake, "Add an offline dev shell");
    if let Some(lock) = lock {
        rig.remote
            .commit_file("main", "flake.lock", lock, "Lock the dev shell");
    }
    (rig, tmp)
}

/// The working tree the agent runs in (the repository's cached clone).
fn checkout(rig: &Rig) -> PathBuf {
    Workspaces::from_config(&rig.config).clone_path(&rig.remote.url())
}

fn prompts_log(rig: &Rig) -> PathBuf {
    let home = rig
        .config
        .agent
        .home
        .clone()
        .expect("the agent has its own home");
    home.join("journeyman-prompts.log")
}

#[tokio::test]
async fn the_agent_runs_in_the_flakes_dev_shell_in_the_checkout_and_its_result_is_pushed() {
    if !nix_or_skip(
        "nix::execution::the_agent_runs_in_the_flakes_dev_shell_in_the_checkout_and_its_result_is_pushed",
    ) {
        return;
    }
    let marker = unique_marker();
    let (mut rig, _tmp) = nix_rig("120s", &offline_flake(&marker), Some(OFFLINE_FLAKE_LOCK)).await;
    // Text that a shell would run if `nix develop` passed the prompt on unquoted.
    let hostile = "It's \"quoted\"; $(touch PWNED) `touch PWNED` \\ and a newline\nhere.";
    let wp = rig.board.create(
        &SeedWp::new("Task", "Dump the environment")
            .description(&format!("agent:env-dump\n{hostile}")),
    );
    let r = rig.cycle().await;
    let Some(Outcome::Pushed {
        branch, summary, ..
    }) = &r.outcome
    else {
        panic!("{r:?}\n{:#?}", rig.board.comments(wp));
    };
    assert_eq!(
        summary, "Wrote ENV_DUMP.txt. ",
        "the agent's JSON result came through Nix unchanged"
    );
    let dump = rig
        .remote
        .read_file(branch, "ENV_DUMP.txt")
        .expect("the dump was written in the checkout and pushed");
    let has = |line: String| dump.lines().any(|l| l == line);
    assert!(
        has(format!("JOURNEYMAN_FLAKE_MARKER={marker}")),
        "the flake's variable: {dump}"
    );
    assert!(has("IN_NIX_SHELL=impure".into()), "{dump}");
    assert!(
        has(format!("PWD={}", checkout(&rig).display())),
        "the dev shell's working directory is the checkout: {dump}"
    );
    assert!(
        has("ANTHROPIC_API_KEY=model-key".into()),
        "the allowlist's variables still reach the agent: {dump}"
    );
    assert!(
        !dump.contains("git-secret-123") && !dump.contains(rig.board.token()),
        "{dump}"
    );
    assert!(
        rig.remote.read_file(branch, "PWNED").is_none(),
        "the prompt reached the agent as one argument, never run by the dev shell"
    );
    let prompts = std::fs::read_to_string(prompts_log(&rig)).unwrap();
    assert!(prompts.contains(hostile), "{prompts}");
    assert!(
        !rig.remote
            .log(branch)
            .iter()
            .any(|m| m.starts_with(STARTER_FLAKE_MESSAGE)),
        "the repository's own flake is used, no starter flake is added"
    );
    assert_eq!(rig.board.status_of(wp), "In testing");
}

#[tokio::test]
async fn the_agents_failures_pass_through_nix_unchanged_as_spikes() {
    if !nix_or_skip("nix::execution::the_agents_failures_pass_through_nix_unchanged_as_spikes") {
        return;
    }
    let (mut rig, _tmp) = nix_rig("120s", &offline_flake(&unique_marker()), None).await;
    let failing = rig
        .board
        .create(&SeedWp::new("Task", "fails").description("agent:fail"));
    let crashing = rig
        .board
        .create(&SeedWp::new("Task", "crashes").description("agent:crash"));

    let r = rig.cycle().await;
    let Some(Outcome::Failed { kind, reason, .. }) = &r.outcome else {
        panic!("{r:?}");
    };
    assert_eq!(*kind, FailureKind::Agent);
    assert_eq!(
        reason,
        "the agent failed during execution: Scripted failure: the ticket asked for agent:fail. (exit code 1)",
        "the agent's own result object and exit code, read through Nix"
    );
    assert!(
        rig.spike_of(failing).subject.starts_with("Spike:"),
        "a Spike"
    );
    assert!(
        rig.board
            .comments(failing)
            .iter()
            .any(|c| c.contains("agent run **failed**") && c.contains("$0.01")),
        "the failed run's cost, from its JSON result"
    );

    let r = rig.cycle().await;
    let Some(Outcome::Failed {
        kind,
        reason,
        evidence,
    }) = &r.outcome
    else {
        panic!("{r:?}");
    };
    assert_eq!(*kind, FailureKind::Agent);
    assert_eq!(
        reason, "the agent exited with code 3",
        "the exit code came through Nix"
    );
    assert!(evidence.contains("stderr"), "{evidence}");
    assert!(rig.spike_of(crashing).subject.starts_with("Spike:"));
    assert!(
        rig.worker.paused().is_none(),
        "the agent's failure, not the pod's"
    );
}

/// The pid's process group, from `/proc/<pid>/stat` (field 5, after the command in parentheses).
fn pgid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn environ_has(pid: i32, marker: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|e| String::from_utf8_lossy(&e).contains(marker))
}

#[tokio::test]
async fn a_timeout_in_the_dev_shell_kills_nix_the_shell_the_agent_and_its_child() {
    if !nix_or_skip(
        "nix::execution::a_timeout_in_the_dev_shell_kills_nix_the_shell_the_agent_and_its_child",
    ) {
        return;
    }
    let marker = unique_marker();
    let (mut rig, _tmp) = nix_rig("5s", &offline_flake(&marker), None).await;
    let co = checkout(&rig);
    rig.board
        .create(&SeedWp::new("Task", "hangs").description("agent:fork-hang"));
    // While the cycle runs: the agent and the child it forked (which ignores SIGTERM) are up,
    // inside the dev shell (they carry the flake's marker), in one process group.
    let watch = async {
        eventually(
            "the agent and its child inside the dev shell",
            Duration::from_secs(60),
            || {
                let agent = read_pid(&co.join("AGENT_PID"))?;
                let child = read_pid(&co.join("CHILD_PID"))?;
                let group = pgid(agent)?;
                (environ_has(agent, &marker)
                    && environ_has(child, &marker)
                    && pgid(child) == Some(group))
                .then_some((agent, child, group))
            },
        )
        .await
    };
    let (r, (agent, child, group)) = tokio::join!(rig.cycle(), watch);
    let Some(Outcome::Failed { kind, reason, .. }) = &r.outcome else {
        panic!("{r:?}");
    };
    assert_eq!(*kind, FailureKind::Agent);
    assert_eq!(reason, "timed out after 5s");
    assert_ne!(
        group,
        std::process::id() as i32,
        "the agent runs in its own process group"
    );
    for pid in [agent, child] {
        eventually(
            &format!("pid {pid} to be gone"),
            Duration::from_secs(10),
            || (!Path::new(&format!("/proc/{pid}")).exists()).then_some(()),
        )
        .await;
    }
    eventually(
        &format!("process group {group} to be empty"),
        Duration::from_secs(10),
        || {
            let probe = ::nix::sys::signal::killpg(::nix::unistd::Pid::from_raw(group), None);
            (probe == Err(::nix::errno::Errno::ESRCH)).then_some(())
        },
    )
    .await;
    let left = |p: &super::Proc| {
        p.environ.contains(&marker)
            || p.cmdline.contains(co.to_str().unwrap())
            || p.cwd.as_ref().is_some_and(|d| d.starts_with(&co))
    };
    eventually(
        "no process of the dev shell left",
        Duration::from_secs(10),
        || processes_where(left).is_empty().then_some(()),
    )
    .await;
    assert!(
        processes_where(|p| p.environ.contains(&marker)).is_empty(),
        "nothing started inside the dev shell survives"
    );
}

/// Runs one task on a repository whose flake is `flake`, which must fail to enter: the outcome's
/// reason and evidence.
async fn environment_failure(flake: &str) -> (String, String) {
    let (mut rig, _tmp) = nix_rig("120s", flake, None).await;
    let wp = rig.board.create(&SeedWp::new("Task", "Add a greeting"));
    let r = rig.cycle().await;
    let Some(Outcome::Failed {
        kind,
        reason,
        evidence,
    }) = r.outcome
    else {
        panic!("{r:?}");
    };
    assert!(matches!(kind, FailureKind::Environment(_)), "{kind:?}");
    assert!(
        !rig.board.board().children.contains_key(&wp),
        "no Spike blames the ticket"
    );
    let comments = rig.board.comments(wp);
    assert_eq!(
        comments
            .iter()
            .filter(|c| c.contains("flake.nix build and enter on this pod"))
            .count(),
        1,
        "its one question: {comments:#?}"
    );
    assert!(
        !comments.iter().any(|c| c.contains("environment ready")),
        "{comments:#?}"
    );
    assert!(rig.worker.paused().is_some(), "the pod pauses");
    assert!(!prompts_log(&rig).exists(), "the agent never ran");
    assert_eq!(rig.board.status_of(wp), "New", "released");
    (reason, evidence)
}

#[tokio::test]
async fn a_flake_that_does_not_evaluate_pauses_the_pod_with_nixs_error_as_evidence() {
    if !nix_or_skip(
        "nix::execution::a_flake_that_does_not_evaluate_pauses_the_pod_with_nixs_error_as_evidence",
    ) {
        return;
    }
    let (reason, evidence) = environment_failure(EVAL_ERROR_FLAKE).await;
    assert!(
        reason.starts_with("entering the environment failed:"),
        "{reason}"
    );
    assert!(
        evidence.contains("error: undefined variable 'pkgs'")
            && (evidence.contains("flake.nix:9:") || evidence.contains("flake.nix:10:")),
        "Nix's own error, with where: {evidence}"
    );
}

#[tokio::test]
async fn a_dev_shell_that_does_not_build_pauses_the_pod_with_nixs_build_log_as_evidence() {
    if !nix_or_skip(
        "nix::execution::a_dev_shell_that_does_not_build_pauses_the_pod_with_nixs_build_log_as_evidence",
    ) {
        return;
    }
    let (reason, evidence) = environment_failure(BUILD_ERROR_FLAKE).await;
    assert!(
        reason.starts_with("entering the environment failed:"),
        "{reason}"
    );
    assert!(
        evidence.contains("journeyman-broken-tool.drv' failed with exit code 1")
            && evidence.contains("journeyman-broken-tool: compilation failed"),
        "Nix's build error and the builder's last log line: {evidence}"
    );
}

#[tokio::test]
async fn the_environment_ready_step_enters_the_dev_shell_through_nix_and_names_the_flake_lock() {
    if !nix_or_skip(
        "nix::execution::the_environment_ready_step_enters_the_dev_shell_through_nix_and_names_the_flake_lock",
    ) {
        return;
    }
    let (mut rig, _tmp) = nix_rig(
        "120s",
        &offline_flake(&unique_marker()),
        Some(OFFLINE_FLAKE_LOCK),
    )
    .await;
    let wp = rig.board.create(&SeedWp::new("Task", "Add a greeting"));
    let r = rig.cycle().await;
    assert!(matches!(r.outcome, Some(Outcome::Pushed { .. })), "{r:?}");
    let comments = rig.board.comments(wp);
    let ready = comments
        .iter()
        .position(|c| c.contains("**environment ready** in"))
        .unwrap_or_else(|| panic!("{comments:#?}"));
    let id = lock_id(OFFLINE_FLAKE_LOCK);
    assert!(
        comments[ready].contains(&format!("flake.lock `{id}`")),
        "the repository's flake.lock ({id}): {}",
        comments[ready]
    );
    let complete = comments
        .iter()
        .position(|c| c.contains("execution **complete**"))
        .unwrap();
    assert!(
        ready < complete,
        "entered before the agent ran: {comments:#?}"
    );
}
