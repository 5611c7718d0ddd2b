//! `journeyman doctor`: checks everything a pod needs before it can work, and says how to fix what
//! is wrong. Read-only: it never writes to the board or pushes to a repository.
//!
//! Checks, in order: the board is reachable; the token is accepted (`users/me`); the configured
//! statuses, types and projects exist and make sense; the "Agent pod" custom field is active; each
//! repository can be listed with the configured credentials and has its base branch; the agent
//! command and the environment wrapper are installed (on the `PATH` the agent will have, as
//! configuration captured it); the workdir is writable.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::agent::EnvWrapper;
use crate::config::Config;
use crate::openproject::{ApiError, ErrorKind};
use crate::workspace::Workspaces;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// How to fix it (empty when OK).
    pub fix: String,
}

fn ok(name: &str, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        detail: detail.into(),
        fix: String::new(),
    }
}

fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: false,
        detail: detail.into(),
        fix: fix.into(),
    }
}

fn api_fix(e: &ApiError) -> String {
    match e.kind() {
        ErrorKind::Transport => "check JOURNEYMAN_OPENPROJECT_URL and that this pod can reach it (DNS, NetworkPolicy, proxy)".into(),
        ErrorKind::Unauthenticated => "create an API token for the agent user (My account > Access tokens) and set JOURNEYMAN_OPENPROJECT_TOKEN(_FILE)".into(),
        ErrorKind::Forbidden => "give the agent user a role in the configured projects that may view and edit work packages".into(),
        ErrorKind::NotFound => "check the URL path and the project identifiers in JOURNEYMAN_REPOS".into(),
        _ => "see the error above; the board answered something unexpected".into(),
    }
}

/// Runs every check against the real board, repositories and PATH.
pub async fn run(config: &Config) -> Vec<Check> {
    let mut checks = vec![ok(
        "configuration",
        format!(
            "pod `{}`, {} repositories",
            config.pod_name,
            config.repos.len()
        ),
    )];
    let client = match crate::pod::client(config) {
        Ok(c) => c,
        Err(e) => {
            checks.push(fail(
                "board client",
                format!("{e:#}"),
                "check JOURNEYMAN_OPENPROJECT_URL",
            ));
            return checks;
        }
    };
    match client.me().await {
        Ok(me) => {
            checks.push(ok("board reachable", config.openproject_url.to_string()));
            checks.push(ok(
                "token accepted (users/me)",
                format!("agent user `{}` (id {})", me.name, me.id),
            ));
        }
        Err(e) => {
            let name = if e.kind() == ErrorKind::Transport {
                "board reachable"
            } else {
                "token accepted (users/me)"
            };
            checks.push(fail(name, e.to_string(), api_fix(&e)));
            return checks; // nothing else on the board can be checked
        }
    }
    match crate::snapshot::resolve(&client, config).await {
        Ok(resolved) => {
            checks.push(ok(
                "statuses, types and priorities",
                "every configured name exists",
            ));
            checks.push(ok(
                "projects",
                format!(
                    "{:?}",
                    resolved
                        .repos
                        .values()
                        .map(|r| r.project.as_str())
                        .collect::<Vec<_>>()
                ),
            ));
            checks.push(ok(
                "custom field",
                format!("`{}` is {}", config.names.pod_field, resolved.pod_field),
            ));
            match crate::snapshot::sanity(&resolved) {
                Ok(()) => checks.push(ok("status semantics", "ready and active statuses are open")),
                Err(e) => checks.push(fail("status semantics", e.to_string(), "choose open statuses for JOURNEYMAN_READY_STATUSES and JOURNEYMAN_ACTIVE_STATUS")),
            }
        }
        Err(e) => {
            let text = format!("{e:#}");
            let fix = if text.contains("custom field") {
                "in OpenProject: Administration > Custom fields > Work packages: add a text field with that name, enable it for the work types and activate it in each project"
            } else if text.contains("status `") {
                "create the status (Administration > Work packages > Status) or set the JOURNEYMAN_*_STATUS variable to an existing one"
            } else if text.contains("type `") {
                "create the type (Administration > Work packages > Types) or set the JOURNEYMAN_*_TYPE variable to an existing one"
            } else if text.contains("project `") {
                "fix the project identifier in JOURNEYMAN_REPOS, and make the agent user a member of that project"
            } else {
                "see the error"
            };
            checks.push(fail("board names", text, fix));
        }
    }
    let workspaces = Workspaces::from_config(config);
    for repo in &config.repos {
        let name = format!("repository {}", repo.project);
        let w = workspaces.clone();
        let r = repo.clone();
        match tokio::task::spawn_blocking(move || w.probe(&r)).await {
            Ok(Ok(commit)) => checks.push(ok(
                &name,
                format!(
                    "{} has `{}` at {}",
                    repo.url,
                    repo.base_branch,
                    &commit[..commit.len().min(12)]
                ),
            )),
            Ok(Err(e)) => {
                let fix = if e.is_environment() && e.to_string().to_lowercase().contains("auth") {
                    "set JOURNEYMAN_GIT_TOKEN(_FILE) or JOURNEYMAN_GIT_SSH_KEY to credentials that can read and push this repository"
                } else {
                    "check the URL and base branch in JOURNEYMAN_REPOS and that this pod can reach the git host"
                };
                checks.push(fail(&name, e.to_string(), fix));
            }
            Err(e) => checks.push(fail(&name, e.to_string(), "internal error")),
        }
    }
    let path = config.agent.env.get("PATH");
    match &config.agent.wrapper {
        EnvWrapper::None => checks.push(ok("environment wrapper", "none (JOURNEYMAN_ENV_WRAPPER=none)")),
        EnvWrapper::Command(words) => checks.push(program_check(
            "environment wrapper",
            words.first().map(String::as_str).unwrap_or(""),
            path,
            "install Nix (flakes enabled) or set JOURNEYMAN_ENV_WRAPPER=none to run the agent without it",
        )),
    }
    checks.push(program_check("agent command", &config.agent.command, path, "install Claude Code (npm install -g @anthropic-ai/claude-code) or set JOURNEYMAN_AGENT_COMMAND"));
    checks.push(workdir_check(&config.workdir));
    checks
}

/// Finds a program as the agent runner would: a path, or a name on `path` (the agent's `PATH`, as
/// configuration captured it).
pub fn which(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    let p = Path::new(program);
    if program.contains('/') {
        return is_executable(p).then(|| p.to_path_buf());
    }
    path?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|c| is_executable(c))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn program_check(name: &str, program: &str, path: Option<&OsStr>, fix: &str) -> Check {
    match which(program, path) {
        Some(path) => ok(name, format!("`{program}` is {}", path.display())),
        None => fail(
            name,
            format!("`{program}` is not installed or not on PATH"),
            fix,
        ),
    }
}

fn workdir_check(dir: &Path) -> Check {
    let probe = dir.join(".journeyman-doctor");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => ok("workdir", format!("{} is writable", dir.display())),
        Err(e) => fail(
            "workdir",
            format!("{}: {e}", dir.display()),
            "set JOURNEYMAN_WORKDIR to a writable directory (a volume in pods)",
        ),
    }
}

/// The report as a table, one check per line, fixes indented below failures.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{}  {:width$}  {}\n",
            if c.ok { "OK  " } else { "FAIL" },
            c.name,
            c.detail.lines().next().unwrap_or("")
        ));
        if !c.ok {
            out.push_str(&format!("      {:width$}  fix: {}\n", "", c.fix));
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&if failed == 0 {
        "all checks passed\n".to_string()
    } else {
        format!("{failed} check(s) failed\n")
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_fixes_under_failures() {
        let text = render(&[ok("a", "fine"), fail("bb", "broken", "do this")]);
        assert_eq!(
            text,
            "OK    a   fine\nFAIL  bb  broken\n          fix: do this\n1 check(s) failed\n"
        );
    }

    #[test]
    fn which_finds_programs_on_path_and_by_path() {
        let path = Some(OsStr::new("/usr/bin:/bin"));
        assert!(which("sh", path).is_some());
        assert!(which("sh", None).is_none(), "no PATH, no program by name");
        assert!(which("/bin/sh", None).is_some());
        assert!(which("definitely-not-a-program-journeyman", path).is_none());
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "not a program").unwrap();
        assert!(
            which(plain.to_str().unwrap(), path).is_none(),
            "not executable"
        );
    }
}
