//! `journeyman doctor --deep`: one repository's dev shell, entered exactly as the worker enters it
//! before every agent run (`<wrapper> true` in a checkout, with the agent's environment and
//! `JOURNEYMAN_ENV_TIMEOUT`), timed, with Nix's own error when it fails.
//!
//! Why this exists: the plain checks see that `nix` is installed, not that the repository's flake
//! evaluates, builds and enters on this pod; the first task would find out, and pause the pod.
//! This finds out first, and says how long a cold start takes.
//!
//! What it must never do: write anywhere but a scratch directory it removes (the clone, the
//! agent's home for this run, the starter flake's commit when the repository has no flake all live
//! there), or push anything.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Check, fail, ok};
use crate::agent::nix_error;
use crate::agent::{Agent, AgentFailure, ClaudeCli, EnvWrapper};
use crate::config::{Config, RepoMapping};
use crate::workspace::{GitAuth, Workspaces};

/// The local branch of the scratch clone (never pushed).
const BRANCH: &str = "journeyman-doctor";

/// Enters the dev shell of the repository of `project` (the first configured one when `None`).
pub async fn dev_shell(config: &Config, project: Option<&str>) -> Check {
    let repo = match project {
        None => config.repos.first(),
        Some(p) => config.repos.iter().find(|r| r.project == p),
    };
    let Some(repo) = repo else {
        return fail(
            "dev shell",
            format!("no repository for project `{}`", project.unwrap_or("")),
            "name a project of JOURNEYMAN_REPOS with --repo",
        );
    };
    let name = format!("dev shell {}", repo.project);
    if config.agent.wrapper == EnvWrapper::None {
        return ok(
            &name,
            "not entered: JOURNEYMAN_ENV_WRAPPER=none runs the agent without one",
        );
    }
    let scratch = match tempfile::Builder::new()
        .prefix("journeyman-doctor-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => {
            return fail(
                &name,
                format!("creating a scratch directory: {e}"),
                "set TMPDIR to a writable directory",
            );
        }
    };
    let clone = match checkout(config, repo, scratch.path()).await {
        Ok(clone) => clone,
        Err(e) => {
            return fail(
                &name,
                format!("cloning {}: {e}", repo.url),
                "see the repository check above",
            );
        }
    };
    let agent = ClaudeCli::from_options(&config.agent).with_home(scratch.path().join("home"));
    if let Err(e) = std::fs::create_dir_all(scratch.path().join("home")) {
        return fail(
            &name,
            format!("creating the agent's home: {e}"),
            "set TMPDIR to a writable directory",
        );
    }
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    // Ctrl-C stops the dev shell's process group too, not only this process.
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let started = Instant::now();
    let entered = agent
        .enter_environment(&clone.path, config.limits.env_timeout, &cancel)
        .await;
    interrupt.abort();
    let command = format!("{} true", wrapper_words(&config.agent.wrapper));
    report(&name, &command, &clone, entered, started.elapsed())
}

/// The scratch checkout: what the worker's task would start from.
struct Scratch {
    path: std::path::PathBuf,
    /// `base_branch` at its commit (short), for the report.
    at: String,
    /// Whether the repository has no flake.nix and the starter flake was committed (locally).
    starter: bool,
}

async fn checkout(
    config: &Config,
    repo: &RepoMapping,
    scratch: &std::path::Path,
) -> Result<Scratch, crate::workspace::WorkspaceError> {
    let workspaces = Workspaces::new(
        scratch.join("repos"),
        GitAuth::new(config.git_token.clone(), config.git_ssh_key.clone()),
        config.git_author_name.clone(),
        config.git_author_email.clone(),
    );
    let repo = repo.clone();
    workspaces
        .run(move |ws| {
            let co = ws.prepare(&repo, BRANCH)?;
            let starter = ws.ensure_flake(&co)?.is_some();
            Ok(Scratch {
                at: format!("{} at {}", co.base_branch, &co.base_commit[..12]),
                path: co.path,
                starter,
            })
        })
        .await
}

fn wrapper_words(wrapper: &EnvWrapper) -> String {
    match wrapper {
        EnvWrapper::None => String::new(),
        EnvWrapper::Command(words) => words.join(" "),
    }
}

fn report(
    name: &str,
    command: &str,
    clone: &Scratch,
    entered: Result<Option<Duration>, AgentFailure>,
    took: Duration,
) -> Check {
    let seconds = took.as_secs_f64();
    let flake = if clone.starter {
        "the starter flake (the repository has no flake.nix)"
    } else {
        "its flake.nix"
    };
    match entered {
        Ok(_) => ok(
            name,
            format!(
                "`{command}` took {seconds:.1} s in a fresh clone of {} with {flake}",
                clone.at
            ),
        ),
        Err(AgentFailure::Timeout { after, .. }) => fail(
            name,
            format!(
                "`{command}` did not finish within JOURNEYMAN_ENV_TIMEOUT ({})",
                humantime::format_duration(after)
            ),
            "raise JOURNEYMAN_ENV_TIMEOUT, or make the shell cheaper to build (commit flake.lock, use a binary cache the pod reaches)",
        ),
        Err(f) if f.is_environment() => fail(
            name,
            format!("`{command}`: {}", f.reason()),
            "install Nix (flakes enabled) on the pod, or set JOURNEYMAN_ENV_WRAPPER=none to run the agent without it",
        ),
        Err(f) => fail(
            name,
            format!(
                "`{command}` failed after {seconds:.1} s: {}",
                nix_error(&f.evidence()).unwrap_or_else(|| f.reason())
            ),
            format!(
                "fix {flake} (devShells.<system>.default) until `{command}` works in a clone of the repository, or set JOURNEYMAN_ENV_WRAPPER=none"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::agent::nix_error;

    /// Nix 2.8's own words, as `nix develop --command true` printed them.
    const EVAL: &str = "warning: Git tree '/tmp/x' is dirty\n\
        error (ignored): error: unable to download '': URL using bad/illegal format or missing URL (3)\n\
        error: undefined variable 'pkgs'\n\n       at /nix/store/y95w-source/flake.nix:9:40:\n";
    const BUILD: &str = "building '/nix/store/72s9-journeyman-broken-tool.drv'...\n\
        error: builder for '/nix/store/72s9-journeyman-broken-tool.drv' failed with exit code 1;\n\
        \x20      last 1 log lines:\n\
        \x20      > journeyman-broken-tool: compilation failed\n\
        \x20      For full logs, run 'nix log /nix/store/72s9-journeyman-broken-tool.drv'.\n\
        error: 1 dependencies of derivation '/nix/store/jfs0-shell-env.drv' failed to build\n";
    const OFFLINE: &str = "warning: error: unable to download 'https://api.github.com/repos/NixOS/nixpkgs/commits/nixos-unstable': Couldn't resolve host name (6); retrying in 257 ms\n\
        error: unable to download 'https://api.github.com/repos/NixOS/nixpkgs/commits/nixos-unstable': Couldn't resolve host name (6)\n";

    #[test]
    fn nix_errors_are_summed_up_in_one_line_with_the_builders_last_words() {
        assert_eq!(
            nix_error(EVAL).as_deref(),
            Some("error: undefined variable 'pkgs'")
        );
        assert_eq!(
            nix_error(BUILD).as_deref(),
            Some(
                "error: builder for '/nix/store/72s9-journeyman-broken-tool.drv' failed with exit code 1; last log line: journeyman-broken-tool: compilation failed"
            )
        );
        assert!(
            nix_error(OFFLINE)
                .unwrap()
                .starts_with("error: unable to download 'https://api.github.com/")
        );
        assert_eq!(nix_error("warning: only a warning\n"), None);
    }
}
