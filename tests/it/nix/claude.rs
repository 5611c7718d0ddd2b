//! The real Claude Code CLI through the real `nix develop`, offline: the CLI runs in the dev shell of
//! a checkout's flake (`nix develop <checkout> --command claude ...`), talks to the stand-in Messages
//! API, and its JSON result comes back through Nix.

use std::ffi::OsString;
use std::time::Duration;

use journeyman::agent::prompt::{self, PromptContext, Ticket};
use journeyman::agent::{Agent, AgentRequest, ClaudeCli, EnvWrapper};
use tokio_util::sync::CancellationToken;

use super::{OFFLINE_NIX_CONFIG, nix_or_skip, offline_flake_with, unique_marker};
use crate::support::fake_anthropic::{FakeAnthropic, Script};

/// A git repository in `dir` with `flake` committed as flake.nix (Nix sees tracked files only).
fn repository_with_flake(dir: &std::path::Path, flake: &str) {
    let repo = git2::Repository::init(dir).unwrap();
    std::fs::write(dir.join("flake.nix"), flake).unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(std::path::Path::new("flake.nix")).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    index.write().unwrap();
    let sig = git2::Signature::now("Someone Else", "else@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "Add a dev shell", &tree, &[])
        .unwrap();
}

#[tokio::test]
async fn real_claude_cli_runs_in_the_flakes_dev_shell_and_its_result_passes_through_nix() {
    let test = "nix::claude::real_claude_cli_runs_in_the_flakes_dev_shell_and_its_result_passes_through_nix";
    if !nix_or_skip(test) {
        return;
    }
    let Some(claude) = std::env::var_os("JOURNEYMAN_TEST_CLAUDE") else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but JOURNEYMAN_TEST_CLAUDE is not: CI must run the real CLI. \
                 Set JOURNEYMAN_TEST_CLAUDE=\"$(scripts/install-claude)\""
            );
        }
        eprintln!(
            "SKIPPED {test}: JOURNEYMAN_TEST_CLAUDE is unset \
             (set it to \"$(scripts/install-claude)\" to run it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let checkout = dir.path().canonicalize().unwrap();
    let target = checkout.join("hello.txt");
    let api = FakeAnthropic::start(Script {
        trigger: "create hello.txt".into(),
        file_path: target.clone(),
        content: "hello from the stand-in\n".into(),
        ..Script::default()
    })
    .await;
    // The Messages API's address comes from the flake alone: the CLI reaches the stand-in only
    // from inside the dev shell (outside it, it would try api.anthropic.com and fail offline).
    let marker = unique_marker();
    repository_with_flake(
        &checkout,
        &offline_flake_with(&[
            ("JOURNEYMAN_FLAKE_MARKER", &marker),
            ("ANTHROPIC_BASE_URL", &api.url()),
        ]),
    );
    let mut env: Vec<(OsString, OsString)> = ["PATH", "LANG"]
        .iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (OsString::from(k), v)))
        .collect();
    for (k, v) in [
        ("HOME", home.path().to_str().unwrap()),
        ("TMPDIR", tmp.path().to_str().unwrap()),
        ("NIX_CONFIG", OFFLINE_NIX_CONFIG),
        ("ANTHROPIC_API_KEY", "dummy"),
        ("DISABLE_TELEMETRY", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
    ] {
        env.push((k.into(), v.into()));
    }
    let wrapper = EnvWrapper::Command(vec![
        "nix".into(),
        "develop".into(),
        checkout.display().to_string(),
        "--command".into(),
    ]);
    let cli = ClaudeCli::new(&claude).with_wrapper(wrapper).with_env(env);
    let req = AgentRequest {
        workdir: checkout.clone(),
        prompt: prompt::build(&PromptContext {
            epic: None,
            story: None,
            work_package: Ticket {
                id: 42,
                subject: "Greeting file".into(),
                description: "Please create hello.txt with a greeting.".into(),
            },
            verify: vec!["the new file exists".into()],
            history: vec![],
        }),
        max_turns: 5,
        timeout: Duration::from_secs(180),
        resume: None,
        budget: None,
        progress: None,
    };
    let report = match cli.run(&req, &CancellationToken::new()).await {
        Ok(report) => report,
        Err(e) => panic!(
            "real claude in nix develop failed: {}\n{}\nrequests: {:#?}",
            e.reason(),
            e.evidence(),
            api.seen()
        ),
    };
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "hello from the stand-in\n",
        "the Write tool call was carried out in the checkout"
    );
    assert_eq!(report.subtype, "success");
    assert_eq!(report.result, "Done.");
    assert_eq!(report.num_turns, 2, "tool call, then the final answer");
    assert!(
        report.session_id.as_deref().is_some_and(|s| s.len() >= 32),
        "{report:?}"
    );
    assert!(report.cost_usd > 0.0, "{report:?}");
    let messages = api
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/v1/messages") && s.tools.iter().any(|t| t == "Write"))
        .count();
    assert_eq!(messages, 2, "the prompt, then the tool result");
}
