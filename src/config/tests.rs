//! Configuration tests: every default, every kind of bad value (one line naming the variable), secrets
//! from files, the repository allowlist, the agent's settings and the environment captured for it.

use super::*;
use crate::agent::EnvWrapper;
use secrecy::ExposeSecret;

fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        (
            "JOURNEYMAN_OPENPROJECT_URL".into(),
            "http://127.0.0.1:1".into(),
        ),
        ("JOURNEYMAN_OPENPROJECT_TOKEN".into(), "tok".into()),
        ("JOURNEYMAN_POD_NAME".into(), "pod-0".into()),
        ("JOURNEYMAN_REPOS".into(), "demo=file:///tmp/x.git".into()),
    ];
    for (k, val) in extra {
        v.retain(|(key, _)| key != k);
        v.push((k.to_string(), val.to_string()));
    }
    v
}

/// The one-line error for the given variables; panics if they are valid.
fn check_err(extra: &[(&str, &str)], var: &str, needle: &str) {
    let e = Config::from_vars(vars(extra)).expect_err("configuration should be rejected");
    assert_eq!(e.var, var, "wrong variable named in `{e}`");
    assert!(
        e.to_string().contains(needle),
        "`{e}` should mention `{needle}`"
    );
    assert!(
        !e.to_string().contains('\n'),
        "error must be one line: `{e}`"
    );
}

#[test]
fn defaults_are_valid_and_documented_values() {
    let c = Config::from_vars(vars(&[])).unwrap();
    assert_eq!(c.pod_name, "pod-0");
    assert_eq!(c.poll_interval, Duration::from_secs(60));
    assert_eq!(c.full_read_every, Duration::from_secs(30 * 60));
    assert_eq!(c.limits.task_timeout, Duration::from_secs(30 * 60));
    assert_eq!(c.epic_stale_after, Duration::from_secs(2 * 3600));
    assert_eq!(
        c.agent.wrapper,
        EnvWrapper::Command(vec!["nix".into(), "develop".into(), "--command".into()])
    );
    assert_eq!(c.names, BoardNames::default());
    assert_eq!(c.repos[0].base_branch, "main");
    assert_eq!(c.log_format, LogFormat::Text);
}

#[test]
fn durations_accept_humantime() {
    let c = Config::from_vars(vars(&[
        ("JOURNEYMAN_POLL_INTERVAL", "30s"),
        ("JOURNEYMAN_TASK_TIMEOUT", "2h"),
        ("JOURNEYMAN_EPIC_STALE_AFTER", "1h 30m"),
        ("JOURNEYMAN_FULL_READ_EVERY", "10m"),
    ]))
    .unwrap();
    assert_eq!(c.poll_interval, Duration::from_secs(30));
    assert_eq!(c.full_read_every, Duration::from_secs(600));
    assert_eq!(c.limits.task_timeout, Duration::from_secs(7200));
    assert_eq!(c.epic_stale_after, Duration::from_secs(5400));
}

#[test]
fn missing_required_values_name_the_variable() {
    let mut v = vars(&[]);
    v.retain(|(k, _)| k != "JOURNEYMAN_OPENPROJECT_URL");
    let e = Config::from_vars(v).unwrap_err();
    assert_eq!(e.var, "JOURNEYMAN_OPENPROJECT_URL");

    let mut v = vars(&[]);
    v.retain(|(k, _)| k != "JOURNEYMAN_OPENPROJECT_TOKEN");
    let e = Config::from_vars(v).unwrap_err();
    assert_eq!(e.var, "JOURNEYMAN_OPENPROJECT_TOKEN");

    let mut v = vars(&[]);
    v.retain(|(k, _)| k != "JOURNEYMAN_REPOS");
    let e = Config::from_vars(v).unwrap_err();
    assert_eq!(e.var, "JOURNEYMAN_REPOS");
}

#[test]
fn each_kind_of_bad_value_fails_with_one_line() {
    // (variable, bad value, what the error must mention)
    let cases = [
        (
            "JOURNEYMAN_OPENPROJECT_URL",
            "not a url",
            "expected an http(s) URL",
        ),
        ("JOURNEYMAN_OPENPROJECT_URL", "ftp://x", "scheme `ftp`"),
        ("JOURNEYMAN_POLL_INTERVAL", "soon", "like `30s`"),
        ("JOURNEYMAN_POLL_INTERVAL", "0s", "greater than zero"),
        ("JOURNEYMAN_TASK_TIMEOUT", "10", "like `30s`"),
        ("JOURNEYMAN_MAX_TURNS", "-3", "whole number"),
        ("JOURNEYMAN_MAX_TURNS", "0", "whole number"),
        ("JOURNEYMAN_TASK_BUDGET_USD", "five", "US dollars"),
        ("JOURNEYMAN_TASK_BUDGET_USD", "NaN", "US dollars"),
        ("JOURNEYMAN_TASK_BUDGET_USD", "50", "HOURLY_BUDGET_USD"),
        ("JOURNEYMAN_HOURLY_BUDGET_USD", "500", "DAILY_BUDGET_USD"),
        ("JOURNEYMAN_POD_NAME", "pod 1", "letters, digits"),
        ("JOURNEYMAN_REPOS", "justaurl", "PROJECT=GIT_URL"),
        ("JOURNEYMAN_REPOS", "a=x,a=y", "listed twice"),
        ("JOURNEYMAN_REPOS", "a=x#bad..branch", "not a valid branch"),
        (
            "JOURNEYMAN_REPOS",
            "a=https://u:p@host/r.git",
            "credentials",
        ),
        ("JOURNEYMAN_LISTEN", "everywhere", "0.0.0.0:8080"),
        ("JOURNEYMAN_LOG_FORMAT", "xml", "`json` or `text`"),
        ("JOURNEYMAN_GIT_AUTHOR_EMAIL", "nobody", "e-mail"),
        ("JOURNEYMAN_WORK_TYPES", "Task,Epic", "container"),
        (
            "JOURNEYMAN_READY_STATUSES",
            "New,In progress",
            "active status",
        ),
        ("JOURNEYMAN_READY_STATUSES", "New,New", "twice"),
        ("JOURNEYMAN_GIT_SSH_KEY", "/nonexistent/key", "not a file"),
    ];
    for (var, value, needle) in cases {
        check_err(&[(var, value)], var, needle);
    }
}

#[test]
fn secrets_come_from_files_and_never_from_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "from-file\n").unwrap();
    let mut v = vars(&[("JOURNEYMAN_OPENPROJECT_TOKEN_FILE", path.to_str().unwrap())]);
    v.retain(|(k, _)| k != "JOURNEYMAN_OPENPROJECT_TOKEN");
    let c = Config::from_vars(v.clone()).unwrap();
    assert_eq!(c.openproject_token.expose_secret(), "from-file");
    assert!(
        !format!("{c:?}").contains("from-file"),
        "Debug must redact secrets"
    );

    check_err(
        &[("JOURNEYMAN_OPENPROJECT_TOKEN_FILE", path.to_str().unwrap())],
        "JOURNEYMAN_OPENPROJECT_TOKEN",
        "not both",
    );
    check_err(
        &[("JOURNEYMAN_GIT_TOKEN_FILE", "/nonexistent/secret")],
        "JOURNEYMAN_GIT_TOKEN_FILE",
        "cannot read",
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "  \n").unwrap();
    check_err(
        &[("JOURNEYMAN_GIT_TOKEN_FILE", empty.to_str().unwrap())],
        "JOURNEYMAN_GIT_TOKEN_FILE",
        "is empty",
    );
}

#[test]
fn repos_parse_branches_and_separators() {
    let r = parse_repos(Some(
        "a=file:///x.git#develop, b=git@host:org/b.git;c=https://h/c.git",
    ))
    .unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(
        r[0],
        RepoMapping {
            project: "a".into(),
            url: "file:///x.git".into(),
            base_branch: "develop".into()
        }
    );
    assert_eq!(r[1].url, "git@host:org/b.git");
    assert_eq!(r[2].base_branch, "main");
}

#[test]
fn env_wrapper_none_and_custom() {
    let c = Config::from_vars(vars(&[("JOURNEYMAN_ENV_WRAPPER", "none")])).unwrap();
    assert_eq!(c.agent.wrapper, EnvWrapper::None);
    let c = Config::from_vars(vars(&[(
        "JOURNEYMAN_ENV_WRAPPER",
        "nix develop /flake --command",
    )]))
    .unwrap();
    assert_eq!(
        c.agent.wrapper,
        EnvWrapper::Command(vec![
            "nix".into(),
            "develop".into(),
            "/flake".into(),
            "--command".into()
        ])
    );
}

#[test]
fn live_budgets_and_prices_have_defaults_and_bad_values_name_their_variable() {
    let c = Config::from_vars(vars(&[])).unwrap();
    assert_eq!(c.limits.stall_timeout, Duration::from_secs(600));
    assert_eq!(c.limits.progress_every, Duration::from_secs(60));
    assert_eq!(c.agent.prices, crate::agent::live::Prices::default());
    let c = Config::from_vars(vars(&[
        ("JOURNEYMAN_MODEL_PRICES", "sonnet=3/15"),
        ("JOURNEYMAN_STALL_TIMEOUT", "90s"),
    ]))
    .unwrap();
    assert_eq!(c.limits.stall_timeout, Duration::from_secs(90));
    assert_eq!(
        c.agent.prices.of("claude-sonnet-4"),
        crate::agent::live::Price {
            input: 3.0,
            output: 15.0
        }
    );
    for (var, value, says) in [
        ("JOURNEYMAN_MODEL_PRICES", "sonnet=cheap", "input/output"),
        ("JOURNEYMAN_MODEL_PRICES", "sonnet=3/x", "not a price"),
        ("JOURNEYMAN_STALL_TIMEOUT", "never", "like `30s`"),
    ] {
        let e = Config::from_vars(vars(&[(var, value)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(var) && e.contains(says), "{var}={value}: {e}");
    }
}

#[test]
fn agent_tools_and_env_have_tested_defaults() {
    let c = Config::from_vars(vars(&[])).unwrap();
    assert_eq!(
        c.agent.allowed_tools,
        ["Read", "Edit", "Write", "Glob", "Grep", "Bash", "TodoWrite"]
    );
    assert_eq!(
        c.agent.disallowed_tools,
        ["Bash(git:*)", "WebFetch", "WebSearch", "Agent", "Task"]
    );
    assert!(c.agent.extra_env.is_empty());
    assert_eq!(c.agent.kill_grace, Duration::from_secs(5));

    let c = Config::from_vars(vars(&[
        ("JOURNEYMAN_ALLOWED_TOOLS", "Read, Edit,Bash(cargo test:*)"),
        (
            "JOURNEYMAN_DISALLOWED_TOOLS",
            "Bash(git:*),mcp__github__push",
        ),
        ("JOURNEYMAN_AGENT_ENV", "RUST_LOG, CARGO_HOME"),
        ("JOURNEYMAN_AGENT_KILL_GRACE", "500ms"),
    ]))
    .unwrap();
    assert_eq!(
        c.agent.allowed_tools,
        ["Read", "Edit", "Bash(cargo test:*)"]
    );
    assert_eq!(
        c.agent.disallowed_tools,
        ["Bash(git:*)", "mcp__github__push"]
    );
    assert_eq!(c.agent.extra_env, ["RUST_LOG", "CARGO_HOME"]);
    assert_eq!(c.agent.kill_grace, Duration::from_millis(500));
}

#[test]
fn agent_settings_reject_flags_credentials_and_bad_names() {
    check_err(
        &[(
            "JOURNEYMAN_ALLOWED_TOOLS",
            "Read,--dangerously-skip-permissions",
        )],
        "JOURNEYMAN_ALLOWED_TOOLS",
        "tool names like `Edit`",
    );
    check_err(
        &[("JOURNEYMAN_DISALLOWED_TOOLS", "Bash(git:*")],
        "JOURNEYMAN_DISALLOWED_TOOLS",
        "tool names like `Edit`",
    );
    check_err(
        &[("JOURNEYMAN_DISALLOWED_TOOLS", "Bash")],
        "JOURNEYMAN_DISALLOWED_TOOLS",
        "also in JOURNEYMAN_ALLOWED_TOOLS",
    );
    for secret in [
        "JOURNEYMAN_OPENPROJECT_TOKEN",
        "JOURNEYMAN_GIT_TOKEN",
        "GIT_ASKPASS",
        "GITHUB_TOKEN",
    ] {
        check_err(
            &[("JOURNEYMAN_AGENT_ENV", &format!("RUST_LOG,{secret}"))],
            "JOURNEYMAN_AGENT_ENV",
            "never passed to the agent",
        );
    }
    check_err(
        &[("JOURNEYMAN_AGENT_ENV", "RUST-LOG")],
        "JOURNEYMAN_AGENT_ENV",
        "not a variable name",
    );
    check_err(
        &[("JOURNEYMAN_AGENT_KILL_GRACE", "soon")],
        "JOURNEYMAN_AGENT_KILL_GRACE",
        "like `30s`",
    );
}

#[test]
fn the_agent_environment_is_captured_from_the_variables_without_printing_it() {
    let c = Config::from_vars(vars(&[
        ("PATH", "/bin"),
        ("ANTHROPIC_API_KEY", "sk-model-key"),
        ("TERM", ""),
        ("RUST_LOG", "debug"),
        ("GITHUB_TOKEN", "ghp"),
        ("JOURNEYMAN_AGENT_ENV", "RUST_LOG"),
    ]))
    .unwrap();
    let held: Vec<_> = c
        .agent
        .env
        .iter()
        .map(|(k, _)| k.to_str().unwrap())
        .collect();
    assert_eq!(held, ["PATH", "ANTHROPIC_API_KEY", "TERM", "RUST_LOG"]);
    assert_eq!(c.agent.env.get("PATH"), Some(std::ffi::OsStr::new("/bin")));
    assert!(
        !format!("{c:?}").contains("sk-model-key"),
        "Debug must not print the agent's environment"
    );
    let c = Config::from_vars(vars(&[])).unwrap();
    assert_eq!(c.agent.env.iter().count(), 0);
}

#[test]
fn empty_values_mean_default() {
    let c = Config::from_vars(vars(&[("JOURNEYMAN_POLL_INTERVAL", "")])).unwrap();
    assert_eq!(c.poll_interval, Duration::from_secs(60));
}

#[test]
fn done_status_per_type_notify_and_git_timeouts() {
    let c = Config::from_vars(vars(&[
        (
            "JOURNEYMAN_DONE_STATUS",
            "In testing, Task=Closed ,Bug=Resolved",
        ),
        ("JOURNEYMAN_NOTIFY", "all"),
        ("JOURNEYMAN_GIT_TIMEOUT", "10s"),
    ]))
    .unwrap();
    assert_eq!(c.names.done_status, "In testing");
    assert_eq!(
        c.names.done_by_type,
        [
            ("Task".to_string(), "Closed".to_string()),
            ("Bug".to_string(), "Resolved".to_string())
        ]
    );
    assert_eq!(c.notify, crate::openproject::NotifyPolicy::All);
    assert_eq!(c.git_timeout, Duration::from_secs(10));
    let d = Config::from_vars(vars(&[])).unwrap();
    assert_eq!(
        d.notify,
        crate::openproject::NotifyPolicy::Needed,
        "only what a human needs"
    );
    assert_eq!(d.git_connect_timeout, Duration::from_secs(30));
    let only_types = Config::from_vars(vars(&[("JOURNEYMAN_DONE_STATUS", "Task=Closed")])).unwrap();
    assert_eq!(
        only_types.names.done_status, "In testing",
        "the default stays"
    );
    check_err(
        &[("JOURNEYMAN_DONE_STATUS", "A,B")],
        "JOURNEYMAN_DONE_STATUS",
        "two default statuses",
    );
    check_err(
        &[("JOURNEYMAN_DONE_STATUS", "Task=")],
        "JOURNEYMAN_DONE_STATUS",
        "Type=Status",
    );
    check_err(
        &[("JOURNEYMAN_NOTIFY", "sometimes")],
        "JOURNEYMAN_NOTIFY",
        "`needed`, `all` or `none`",
    );
}
