//! Configuration: every `JOURNEYMAN_*` variable, read once at start-up into one validated [`Config`].
//!
//! Why this module exists: a worker that starts with a typo in its configuration burns budget or,
//! worse, works the wrong repository. So every value is parsed and checked here, before any I/O, and
//! every bad value fails with one line that names the variable and says what is expected. Nothing
//! outside this module reads the worker's environment: the variables the agent may be given are
//! captured here too ([`AgentOptions::env`]), and `doctor` looks for tools on that captured `PATH`.
//!
//! Secrets (`OPENPROJECT_TOKEN`, `GIT_TOKEN`) can also come from files (`*_FILE`, as Kubernetes mounts
//! them) and are held as [`SecretString`], whose `Debug` never prints the value.
//!
//! What it must never do: depend on the rest of the worker. It sits at the bottom: from the crate it
//! takes only the agent's plain option types and its pure name checks (`agent::options`,
//! `agent::env`).
//!
//! - this file: the types, and [`Config::from_vars`], which reads each group of variables in turn;
//! - [`defaults`]: every default, written once;
//! - `parse`: the value parsers (URL, secret, duration, amount, names, ...);
//! - `agent`: the agent's settings into [`AgentOptions`], and its captured environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::agent::options::AgentOptions;

mod agent;
pub mod defaults;
mod limits;
mod parse;
mod secrets;

use limits::{limits, timing};
pub use parse::{duration, parse_repos};
use parse::{email, log_format, name, name_list, parse_url, pod_name, secret};

/// The variable prefix; `Config` field `poll_interval` is read from `JOURNEYMAN_POLL_INTERVAL`.
pub const PREFIX: &str = "JOURNEYMAN_";

/// A configuration error: one variable, what was wrong, what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The full variable name, e.g. `JOURNEYMAN_POLL_INTERVAL`.
    pub var: String,
    /// What is wrong and what is expected, in one line.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var: format!("{PREFIX}{}", var.to_ascii_uppercase()),
        message: message.into(),
    }
}

/// One entry of the repository allowlist: an OpenProject project and the only repository its work
/// packages may be worked in. A ticket can never name another repository or base branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoMapping {
    /// The OpenProject project: its numeric id or its identifier (resolved to an id at start-up).
    pub project: String,
    /// Git URL (`https://`, `ssh://`, `git@host:path`, `file://` or a local path).
    pub url: String,
    /// Branch new work branches are created from.
    pub base_branch: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Board names (DESIGN section 2). Every name is configurable because every OpenProject instance is
/// configured differently; names are resolved to ids at start-up, never hard-coded ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardNames {
    pub work_types: Vec<String>,
    pub bug_type: String,
    pub epic_type: String,
    pub phase_type: String,
    pub spike_type: String,
    pub story_type: String,
    pub ready_statuses: Vec<String>,
    pub active_status: String,
    pub done_status: String,
    /// `JOURNEYMAN_DONE_STATUS` entries `Type=Status`: the done status of a type whose workflow
    /// does not allow the default one (in OpenProject's standard seed a Task may not go to In
    /// testing).
    pub done_by_type: Vec<(String, String)>,
    pub pod_field: String,
}

impl Default for BoardNames {
    fn default() -> Self {
        BoardNames {
            work_types: strings(defaults::WORK_TYPES),
            bug_type: defaults::BUG_TYPE.into(),
            epic_type: defaults::EPIC_TYPE.into(),
            phase_type: defaults::PHASE_TYPE.into(),
            spike_type: defaults::SPIKE_TYPE.into(),
            story_type: defaults::STORY_TYPE.into(),
            ready_statuses: strings(defaults::READY_STATUSES),
            active_status: defaults::ACTIVE_STATUS.into(),
            done_status: defaults::DONE_STATUS.into(),
            done_by_type: Vec::new(),
            pod_field: defaults::POD_FIELD.into(),
        }
    }
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

/// Budgets and limits; enforced by the worker, not advisory.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub task_timeout: Duration,
    pub max_turns: u32,
    pub task_budget_usd: f64,
    pub hourly_budget_usd: f64,
    pub daily_budget_usd: f64,
    /// After this many failed attempts recorded on a ticket, stop retrying it and escalate.
    pub max_attempts: u32,
    /// How long SIGTERM waits for a running task before stopping it.
    pub shutdown_grace: Duration,
    /// `JOURNEYMAN_ENV_TIMEOUT`: entering the checkout's environment before the agent (a cold
    /// `nix develop` builds the dev shell).
    pub env_timeout: Duration,
    /// `JOURNEYMAN_STALL_TIMEOUT`: a run with no tool call and no change in its checkout for this
    /// long is stopped.
    pub stall_timeout: Duration,
    /// `JOURNEYMAN_PROGRESS_EVERY`: how often, at most, a run's progress comment is edited.
    pub progress_every: Duration,
}

/// The validated configuration of one worker pod.
#[derive(Debug, Clone)]
pub struct Config {
    pub openproject_url: Url,
    pub openproject_token: SecretString,
    pub pod_name: String,
    pub repos: Vec<RepoMapping>,
    pub poll_interval: Duration,
    /// `JOURNEYMAN_FULL_READ_EVERY`: the whole board read again at least this often (jittered
    /// 75-125% per pod); in between, only what changed is read.
    pub full_read_every: Duration,
    pub epic_stale_after: Duration,
    pub http_timeout: Duration,
    /// `JOURNEYMAN_RESUME_SESSIONS`: continue this pod's last agent session on a work package.
    pub resume_sessions: bool,
    /// `JOURNEYMAN_MENTION`: how a human addresses the fleet in a comment (`@journeyman`).
    pub mention: String,
    /// `JOURNEYMAN_NOTIFY`: which writes notify the work package's watchers.
    pub notify: crate::openproject::NotifyPolicy,
    pub limits: Limits,
    pub workdir: PathBuf,
    pub git_token: Option<SecretString>,
    pub git_ssh_key: Option<PathBuf>,
    pub git_author_name: String,
    pub git_author_email: String,
    /// libgit2's timeouts for connecting to a git server and for one that stops sending.
    pub git_connect_timeout: Duration,
    pub git_timeout: Duration,
    /// The agent's command, wrapper, tools, environment and process-group file.
    pub agent: AgentOptions,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub names: BoardNames,
}

/// The raw environment as strings: envy maps `JOURNEYMAN_FOO_BAR` to `foo_bar`. Everything is an
/// `Option<String>` so that parsing (and its error messages) is ours, not serde's.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Raw {
    openproject_url: Option<String>,
    openproject_token: Option<String>,
    openproject_token_file: Option<String>,
    pod_name: Option<String>,
    repos: Option<String>,
    poll_interval: Option<String>,
    full_read_every: Option<String>,
    task_timeout: Option<String>,
    max_turns: Option<String>,
    task_budget_usd: Option<String>,
    hourly_budget_usd: Option<String>,
    daily_budget_usd: Option<String>,
    max_attempts: Option<String>,
    shutdown_grace: Option<String>,
    env_timeout: Option<String>,
    stall_timeout: Option<String>,
    progress_every: Option<String>,
    model_prices: Option<String>,
    epic_stale_after: Option<String>,
    http_timeout: Option<String>,
    notify: Option<String>,
    resume_sessions: Option<String>,
    mention: Option<String>,
    workdir: Option<String>,
    git_token: Option<String>,
    git_token_file: Option<String>,
    git_ssh_key: Option<String>,
    git_author_name: Option<String>,
    git_author_email: Option<String>,
    agent_command: Option<String>,
    env_wrapper: Option<String>,
    allowed_tools: Option<String>,
    disallowed_tools: Option<String>,
    agent_env: Option<String>,
    agent_secret_env: Option<String>,
    git_connect_timeout: Option<String>,
    git_timeout: Option<String>,
    agent_kill_grace: Option<String>,
    listen: Option<String>,
    log_format: Option<String>,
    work_types: Option<String>,
    bug_type: Option<String>,
    epic_type: Option<String>,
    phase_type: Option<String>,
    spike_type: Option<String>,
    story_type: Option<String>,
    ready_statuses: Option<String>,
    active_status: Option<String>,
    done_status: Option<String>,
    pod_field: Option<String>,
}

impl Config {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads and validates the given variables (the whole environment). Non-prefixed ones configure
    /// nothing; those the agent may be given (`agent::env`'s allowlist and `JOURNEYMAN_AGENT_ENV`)
    /// are kept in [`AgentOptions::env`], so the agent's environment is the one read here.
    pub fn from_vars<I>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        // Empty values count as unset: `FOO=` in a ConfigMap should mean "use the default".
        let set = vars.iter().filter(|(_, v)| !v.trim().is_empty()).cloned();
        let raw: Raw = envy::prefixed(PREFIX)
            .from_iter(set)
            .map_err(|e| ConfigError {
                var: PREFIX.to_string() + "*",
                message: e.to_string(),
            })?;
        Self::from_raw(&raw, &vars)
    }

    /// Each group of variables in turn; the first bad value ends it.
    fn from_raw(raw: &Raw, vars: &[(String, String)]) -> Result<Config, ConfigError> {
        let openproject_url = parse_url("openproject_url", raw.openproject_url.as_deref())?;
        let openproject_token = secret(
            "openproject_token",
            raw.openproject_token.as_deref(),
            raw.openproject_token_file.as_deref(),
        )?
        .ok_or_else(|| {
            err("openproject_token", "is required (or JOURNEYMAN_OPENPROJECT_TOKEN_FILE): the API token of the agent user")
        })?;
        let pod_name = pod_name(raw.pod_name.as_deref())?;
        let repos = parse_repos(raw.repos.as_deref())?;
        let limits = limits(raw)?;
        let git_token = secret(
            "git_token",
            raw.git_token.as_deref(),
            raw.git_token_file.as_deref(),
        )?;
        let git_ssh_key = ssh_key(raw.git_ssh_key.as_deref())?;
        let names = board_names(raw)?;
        let workdir = raw
            .workdir
            .as_deref()
            .map_or_else(defaults::workdir, PathBuf::from);
        let agent = agent::options(raw, &workdir, vars)?;
        let (poll_interval, epic_stale_after, http_timeout, full_read_every) = timing(raw)?;
        Ok(Config {
            openproject_url,
            openproject_token,
            pod_name,
            repos,
            poll_interval,
            full_read_every,
            epic_stale_after,
            http_timeout,
            notify: notify_policy(raw.notify.as_deref())?,
            resume_sessions: parse::boolean(
                "resume_sessions",
                raw.resume_sessions.as_deref(),
                true,
            )?,
            mention: name(
                "mention",
                raw.mention.as_deref(),
                crate::board::policy::MENTION,
            )?,
            limits,
            workdir,
            git_token,
            git_ssh_key,
            git_author_name: name(
                "git_author_name",
                raw.git_author_name.as_deref(),
                defaults::GIT_AUTHOR_NAME,
            )?,
            git_author_email: email(
                "git_author_email",
                raw.git_author_email.as_deref(),
                defaults::GIT_AUTHOR_EMAIL,
            )?,
            git_connect_timeout: duration(
                "git_connect_timeout",
                raw.git_connect_timeout.as_deref(),
                defaults::GIT_CONNECT_TIMEOUT,
            )?,
            git_timeout: duration(
                "git_timeout",
                raw.git_timeout.as_deref(),
                defaults::GIT_TIMEOUT,
            )?,
            agent,
            listen: parse::listen(raw.listen.as_deref())?,
            log_format: log_format(raw.log_format.as_deref())?,
            names,
        })
    }

    /// The repository mapping for a project, if the project is configured.
    pub fn repo_for(&self, project: &str) -> Option<&RepoMapping> {
        self.repos.iter().find(|r| r.project == project)
    }
}

fn ssh_key(value: Option<&str>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(key) = value.map(PathBuf::from) else {
        return Ok(None);
    };
    if !key.is_file() {
        return Err(err(
            "git_ssh_key",
            format!(
                "expected a readable private key file, `{}` is not a file",
                key.display()
            ),
        ));
    }
    Ok(Some(key))
}

/// `JOURNEYMAN_NOTIFY`: `needed` (only what a human must act on: Spikes, escalations, refusals,
/// environment problems), `all` or `none`.
fn notify_policy(value: Option<&str>) -> Result<crate::openproject::NotifyPolicy, ConfigError> {
    use crate::openproject::NotifyPolicy;
    match value.map(str::trim) {
        None | Some("needed") => Ok(NotifyPolicy::Needed),
        Some("all") => Ok(NotifyPolicy::All),
        Some("none") => Ok(NotifyPolicy::Never),
        Some(other) => Err(err(
            "notify",
            format!("expected `needed`, `all` or `none`, got `{other}`"),
        )),
    }
}

/// `JOURNEYMAN_DONE_STATUS`: `Status`, or `Status,Type=Status,...` (a default and per-type ones).
fn done_statuses(value: Option<&str>) -> Result<(String, Vec<(String, String)>), ConfigError> {
    let Some(text) = value else {
        return Ok((defaults::DONE_STATUS.into(), Vec::new()));
    };
    let mut default = None;
    let mut by_type = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.split_once('=') {
            Some((ty, status)) if !ty.trim().is_empty() && !status.trim().is_empty() => by_type
                .push((
                    name("done_status", Some(ty), "")?,
                    name("done_status", Some(status), "")?,
                )),
            Some(_) => {
                return Err(err(
                    "done_status",
                    format!("expected `Status` or `Type=Status` entries, got `{entry}`"),
                ));
            }
            None if default.is_none() => default = Some(name("done_status", Some(entry), "")?),
            None => {
                return Err(err(
                    "done_status",
                    format!(
                        "names two default statuses; give the others as `Type=Status`, got `{text}`"
                    ),
                ));
            }
        }
    }
    Ok((
        default.unwrap_or_else(|| defaults::DONE_STATUS.into()),
        by_type,
    ))
}

/// The board's names; work types must be work, and a ready status must not be the active one.
fn board_names(raw: &Raw) -> Result<BoardNames, ConfigError> {
    let names = BoardNames {
        work_types: name_list(
            "work_types",
            raw.work_types.as_deref(),
            defaults::WORK_TYPES,
        )?,
        bug_type: name("bug_type", raw.bug_type.as_deref(), defaults::BUG_TYPE)?,
        epic_type: name("epic_type", raw.epic_type.as_deref(), defaults::EPIC_TYPE)?,
        phase_type: name(
            "phase_type",
            raw.phase_type.as_deref(),
            defaults::PHASE_TYPE,
        )?,
        spike_type: name(
            "spike_type",
            raw.spike_type.as_deref(),
            defaults::SPIKE_TYPE,
        )?,
        story_type: name(
            "story_type",
            raw.story_type.as_deref(),
            defaults::STORY_TYPE,
        )?,
        ready_statuses: name_list(
            "ready_statuses",
            raw.ready_statuses.as_deref(),
            defaults::READY_STATUSES,
        )?,
        active_status: name(
            "active_status",
            raw.active_status.as_deref(),
            defaults::ACTIVE_STATUS,
        )?,
        done_status: String::new(),
        done_by_type: Vec::new(),
        pod_field: name("pod_field", raw.pod_field.as_deref(), defaults::POD_FIELD)?,
    };
    let mut names = names;
    (names.done_status, names.done_by_type) = done_statuses(raw.done_status.as_deref())?;
    for container in [&names.epic_type, &names.phase_type, &names.spike_type] {
        if names.work_types.contains(container) {
            return Err(err(
                "work_types",
                format!(
                    "must not contain `{container}`: it is a container or escalation type, not work"
                ),
            ));
        }
    }
    if names.ready_statuses.contains(&names.active_status) {
        return Err(err(
            "ready_statuses",
            format!(
                "must not contain the active status `{}`",
                names.active_status
            ),
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests;
