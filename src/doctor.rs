//! `journeyman doctor`: checks everything a pod needs before it can work, and says how to fix what
//! is wrong. Read-only: it never writes to the board or pushes to a repository.
//!
//! Checks, in order: the board is reachable; the token is accepted (`users/me`); the configured
//! statuses, types and projects exist and make sense; the "Agent pod" custom field is active; each
//! repository can be listed with the configured credentials and has its base branch; the agent
//! command and the environment wrapper are installed (on the `PATH` the agent will have, as
//! configuration captured it); the workdir is writable. With `--deep`, one repository's dev shell is
//! entered as the worker enters it, in a scratch clone ([`dev_shell`]).

mod dev_shell;

pub use crate::agent::nix_error;
pub use dev_shell::dev_shell;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::agent::EnvWrapper;
use crate::config::Config;
use crate::openproject::{ApiError, ErrorKind};
use crate::snapshot::Resolved;
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
    if !board_checks(config, &mut checks).await {
        return checks;
    }
    checks.extend(repository_checks(config).await);
    let path = config.agent.env.get("PATH");
    checks.push(match &config.agent.wrapper {
        EnvWrapper::None => ok("environment wrapper", "none (JOURNEYMAN_ENV_WRAPPER=none)"),
        EnvWrapper::Command(words) => program_check(
            "environment wrapper",
            words.first().map(String::as_str).unwrap_or(""),
            path,
            "install Nix (flakes enabled) or set JOURNEYMAN_ENV_WRAPPER=none to run the agent without it",
        ),
    });
    checks.push(program_check("agent command", &config.agent.command, path, "install Claude Code (npm install -g @anthropic-ai/claude-code) or set JOURNEYMAN_AGENT_COMMAND"));
    checks.push(workdir_check(&config.workdir));
    checks
}

/// The board: client, reachability, token, names. False when the board cannot be checked at all
/// (no client, or no answer to `users/me`): then nothing else is checked.
async fn board_checks(config: &Config, checks: &mut Vec<Check>) -> bool {
    let client = match crate::pod::client(config) {
        Ok(c) => c,
        Err(e) => {
            checks.push(fail(
                "board client",
                format!("{e:#}"),
                "check JOURNEYMAN_OPENPROJECT_URL",
            ));
            return false;
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
            return false; // nothing else on the board can be checked
        }
    }
    match crate::snapshot::resolve(&client, config).await {
        Ok(resolved) => {
            checks.extend(names_checks(config, &resolved));
            checks.extend(transition_checks(&client, &resolved).await);
        }
        Err(e) => {
            let text = format!("{e:#}");
            let fix = names_fix(&text);
            checks.push(fail("board names", text, fix));
        }
    }
    true
}

/// What the resolved names say: every name exists, the projects, the custom field, and whether
/// the statuses make sense.
fn names_checks(config: &Config, resolved: &Resolved) -> Vec<Check> {
    let projects: Vec<&str> = resolved
        .repos
        .values()
        .map(|r| r.project.as_str())
        .collect();
    vec![
        ok(
            "statuses, types and priorities",
            "every configured name exists",
        ),
        ok("projects", format!("{projects:?}")),
        ok(
            "custom field",
            format!("`{}` is {}", config.names.pod_field, resolved.pod_field),
        ),
        match crate::snapshot::sanity(resolved) {
            Ok(()) => ok("status semantics", "ready and active statuses are open"),
            Err(e) => fail(
                "status semantics",
                e.to_string(),
                "choose open statuses for JOURNEYMAN_READY_STATUSES and JOURNEYMAN_ACTIVE_STATUS",
            ),
        },
    ]
}

/// For every work type and the Epic type, in every configured project: may the agent user's role
/// make each status change the worker makes? A claim (from the type's default status to the active
/// one) from the create form; the report and the release (from the active status to the done and
/// the ready one) from the form of a work package of that type In progress, when there is one.
/// Role workflows are enforced per type (API-NOTES section 13).
async fn transition_checks(client: &crate::openproject::Client, r: &Resolved) -> Vec<Check> {
    let c = &r.catalog;
    let types: Vec<u64> = c.work_types.iter().copied().chain([c.epic_type]).collect();
    let mut checks = Vec::new();
    for (&project, repo) in &r.repos {
        for &ty in &types {
            let name = format!("transitions for {} in `{}`", r.type_name(ty), repo.project);
            checks.push(match transitions(client, r, project, ty).await {
                Ok((missing, unchecked)) if missing.is_empty() => {
                    ok(&name, format!("the agent may claim{unchecked}"))
                }
                Ok((missing, _)) => fail(
                    &name,
                    format!("the agent's role may not make: {}", missing.join(", ")),
                    format!(
                        "Administration > Work packages > Workflows: for the agent user's role and type {}, allow {}{}",
                        r.type_name(ty),
                        missing.join(", "),
                        if c.work_types.contains(&ty) {
                            format!("; or set JOURNEYMAN_DONE_STATUS={}=<a status it may set>", r.type_name(ty))
                        } else {
                            String::new()
                        }
                    ),
                ),
                Err(e) => fail(&name, e.to_string(), api_fix(&e)),
            });
        }
    }
    checks
}

/// The transitions the role may not make (`from -> to`), and a note on what could not be checked.
async fn transitions(
    client: &crate::openproject::Client,
    r: &Resolved,
    project: u64,
    ty: u64,
) -> Result<(Vec<String>, String), ApiError> {
    let c = &r.catalog;
    let active = c.active_status;
    let mut missing = Vec::new();
    let new = client.allowed_statuses_for_new(project, ty).await?;
    if !new.contains(&active) {
        missing.push(format!(
            "{} -> {}",
            r.status_name(r.ready_status),
            r.status_name(active)
        ));
    }
    let q = crate::openproject::WorkPackageQuery {
        filters: vec![
            crate::openproject::Filter::new("project", "=", [project]),
            crate::openproject::Filter::new("type", "=", [ty]),
            crate::openproject::Filter::new("status", "=", [active]),
        ],
        page_size: Some(1),
        ..Default::default()
    };
    let page = client.work_packages_page(&q, 1).await?;
    let Some(wp) = page.embedded.elements.first() else {
        return Ok((missing, "; the report and release transitions are checked once a work package of this type is In progress".into()));
    };
    let allowed = client.allowed_statuses(wp.id, wp.lock_version).await?;
    let mut targets = vec![r.ready_status];
    if c.work_types.contains(&ty) {
        targets.push(c.done_for(ty));
    }
    for to in targets {
        if !allowed.contains(&to) {
            missing.push(format!(
                "{} -> {}",
                r.status_name(active),
                r.status_name(to)
            ));
        }
    }
    Ok((
        missing,
        format!(", report and release (checked on #{})", wp.id),
    ))
}

/// How to fix a name that did not resolve, from the error's text.
fn names_fix(text: &str) -> &'static str {
    if text.contains("custom field") {
        "in OpenProject: Administration > Custom fields > Work packages: add a text field with that name, enable it for the work types and activate it in each project"
    } else if text.contains("status `") {
        "create the status (Administration > Work packages > Status) or set the JOURNEYMAN_*_STATUS variable to an existing one"
    } else if text.contains("type `") {
        "create the type (Administration > Work packages > Types) or set the JOURNEYMAN_*_TYPE variable to an existing one"
    } else if text.contains("project `") {
        "fix the project identifier in JOURNEYMAN_REPOS, and make the agent user a member of that project"
    } else {
        "see the error"
    }
}

/// Each repository can be listed with the configured credentials and has its base branch.
async fn repository_checks(config: &Config) -> Vec<Check> {
    let workspaces = Workspaces::from_config(config);
    let mut checks = Vec::new();
    for repo in &config.repos {
        let name = format!("repository {}", repo.project);
        let w = workspaces.clone();
        let r = repo.clone();
        checks.push(match tokio::task::spawn_blocking(move || w.probe(&r)).await {
            Ok(Ok(commit)) => ok(
                &name,
                format!(
                    "{} has `{}` at {}",
                    repo.url,
                    repo.base_branch,
                    &commit[..commit.len().min(12)]
                ),
            ),
            Ok(Err(e)) => {
                let fix = if e.is_environment() && e.to_string().to_lowercase().contains("auth") {
                    "set JOURNEYMAN_GIT_TOKEN(_FILE) or JOURNEYMAN_GIT_SSH_KEY to credentials that can read and push this repository"
                } else {
                    "check the URL and base branch in JOURNEYMAN_REPOS and that this pod can reach the git host"
                };
                fail(&name, e.to_string(), fix)
            }
            Err(e) => fail(&name, e.to_string(), "internal error"),
        });
    }
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
    fn each_unresolved_name_gets_its_own_fix() {
        assert!(names_fix("custom field `Agent pod` is not active").contains("Custom fields"));
        assert!(names_fix("status `Ready` not found").contains("create the status"));
        assert!(names_fix("type `Spike` not found").contains("create the type"));
        assert!(names_fix("project `web` not found").contains("project identifier"));
        assert_eq!(names_fix("something else"), "see the error");
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
