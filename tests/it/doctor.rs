//! `journeyman doctor` as a real process against the bundled board and a real git remote, with a
//! good set-up and with each kind of broken one.

use journeyman::harness::sim::{self, BoardHandle, BoardOptions};

use crate::support::git::BareRemote;

const BIN: &str = env!("CARGO_BIN_EXE_journeyman");
const SCRIPTED: &str = env!("CARGO_BIN_EXE_journeyman-scripted-agent");

async fn doctor(board: &BoardHandle, remote: &BareRemote, extra: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("doctor")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("JOURNEYMAN_OPENPROJECT_URL", board.url().as_str())
        .env("JOURNEYMAN_OPENPROJECT_TOKEN", board.token())
        .env("JOURNEYMAN_POD_NAME", "pod-doc")
        .env("JOURNEYMAN_REPOS", format!("demo={}#main", remote.url()))
        .env("JOURNEYMAN_WORKDIR", dir.path().join("work"))
        .env("JOURNEYMAN_ENV_WRAPPER", "none")
        .env("JOURNEYMAN_AGENT_COMMAND", SCRIPTED)
        .env("JOURNEYMAN_HTTP_TIMEOUT", "3s");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("doctor runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
}

#[tokio::test]
async fn a_good_setup_passes_every_check() {
    let b = crate::support::board().await;
    let remote = BareRemote::new();
    let (code, out) = doctor(&b, &remote, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("all checks passed\n"), "{out}");
    for name in [
        "board reachable",
        "token accepted",
        "custom field",
        "repository demo",
        "agent command",
        "workdir",
    ] {
        assert!(line(&out, name).starts_with("OK"), "{out}");
    }
    assert!(
        line(&out, "token accepted").contains("Journeyman Bot"),
        "{out}"
    );
}

#[tokio::test]
async fn a_rejected_token_fails_with_the_fix() {
    let b = crate::support::board().await;
    let remote = BareRemote::new();
    let (code, out) = doctor(&b, &remote, &[("JOURNEYMAN_OPENPROJECT_TOKEN", "wrong")]).await;
    assert_ne!(code, 0);
    assert!(line(&out, "token accepted").starts_with("FAIL"), "{out}");
    assert!(
        out.contains("Access tokens"),
        "the fix says where to create a token: {out}"
    );
}

#[tokio::test]
async fn an_unreachable_board_fails_as_unreachable() {
    let b = crate::support::board().await;
    let remote = BareRemote::new();
    // Port 9 (discard) on loopback: nothing listens there, the connection is refused.
    let (code, out) = doctor(
        &b,
        &remote,
        &[("JOURNEYMAN_OPENPROJECT_URL", "http://127.0.0.1:9/")],
    )
    .await;
    assert_ne!(code, 0);
    assert!(line(&out, "board reachable").starts_with("FAIL"), "{out}");
    assert!(out.contains("JOURNEYMAN_OPENPROJECT_URL"), "{out}");
}

#[tokio::test]
async fn a_board_without_the_pod_field_fails_with_how_to_create_it() {
    let b = sim::start(BoardOptions {
        pod_field: false,
        ..BoardOptions::default()
    })
    .await
    .unwrap();
    let remote = BareRemote::new();
    let (code, out) = doctor(&b, &remote, &[]).await;
    assert_ne!(code, 0);
    assert!(line(&out, "board names").starts_with("FAIL"), "{out}");
    assert!(
        out.contains("Agent pod") && out.contains("Custom fields"),
        "{out}"
    );
}

#[tokio::test]
async fn unknown_status_and_project_names_fail() {
    let b = crate::support::board().await;
    let remote = BareRemote::new();
    let (_, out) = doctor(&b, &remote, &[("JOURNEYMAN_DONE_STATUS", "Shipped")]).await;
    assert!(line(&out, "board names").contains("Shipped"), "{out}");
    let (_, out) = doctor(
        &b,
        &remote,
        &[(
            "JOURNEYMAN_REPOS",
            format!("nosuch={}", remote.url()).as_str(),
        )],
    )
    .await;
    assert!(line(&out, "board names").contains("nosuch"), "{out}");
}

#[tokio::test]
async fn a_missing_repository_base_branch_or_agent_fails() {
    let b = crate::support::board().await;
    let remote = BareRemote::new();
    let (code, out) = doctor(
        &b,
        &remote,
        &[("JOURNEYMAN_REPOS", "demo=file:///nonexistent/repo.git")],
    )
    .await;
    assert_ne!(code, 0);
    assert!(line(&out, "repository demo").starts_with("FAIL"), "{out}");
    let (_, out) = doctor(
        &b,
        &remote,
        &[(
            "JOURNEYMAN_REPOS",
            format!("demo={}#develop", remote.url()).as_str(),
        )],
    )
    .await;
    assert!(line(&out, "repository demo").contains("develop"), "{out}");
    let (_, out) = doctor(
        &b,
        &remote,
        &[
            ("JOURNEYMAN_AGENT_COMMAND", "no-such-claude"),
            ("JOURNEYMAN_ENV_WRAPPER", "no-such-nix develop --command"),
        ],
    )
    .await;
    assert!(line(&out, "agent command").starts_with("FAIL"), "{out}");
    assert!(
        line(&out, "environment wrapper").starts_with("FAIL"),
        "{out}"
    );
}

#[tokio::test]
async fn every_transition_the_worker_makes_is_checked_per_type_with_the_fix() {
    let b = crate::support::board().await;
    let remote = BareRemote::new();
    let (code, out) = doctor(&b, &remote, &[]).await;
    assert_eq!(code, 0, "{out}");
    for ty in ["Task", "Bug", "Feature", "User story", "Epic"] {
        assert!(
            line(&out, &format!("transitions for {ty} in `demo`")).starts_with("OK"),
            "{out}"
        );
    }
    // OpenProject's standard seed: a Task may not go to In testing. A Task In progress lets the
    // doctor read its form.
    b.use_standard_seed_workflows();
    b.create(&journeyman::harness::sim::seed::SeedWp::new("Task", "busy").status("In progress"));
    let (code, out) = doctor(&b, &remote, &[]).await;
    assert_ne!(code, 0, "{out}");
    let task = line(&out, "transitions for Task in `demo`");
    assert!(
        task.starts_with("FAIL") && task.contains("In progress -> In testing"),
        "{out}"
    );
    assert!(
        out.contains("JOURNEYMAN_DONE_STATUS=Task=<a status it may set>"),
        "the fix names the setting: {out}"
    );
    assert!(
        line(&out, "transitions for Bug in `demo`").starts_with("OK"),
        "{out}"
    );
    let (code, out) = doctor(
        &b,
        &remote,
        &[("JOURNEYMAN_DONE_STATUS", "In testing,Task=Closed")],
    )
    .await;
    assert!(
        line(&out, "transitions for Task in `demo`").starts_with("OK"),
        "{out}"
    );
    assert_eq!(code, 0, "{out}");
}
