//! Configuration: every `JOURNEYMAN_*` variable, read once at start-up into one validated [`Config`].
//!
//! Why this file exists: a worker that starts with a typo in its configuration burns budget or, worse,
//! works the wrong repository. So every value is parsed and checked here, before any I/O, and every bad
//! value fails with one line that names the variable and says what is expected. Nothing outside this
//! module reads the worker's environment: the variables the agent may be given are captured here too
//! ([`AgentOptions::env`]), and `doctor` looks for tools on that captured `PATH`.
//!
//! Secrets (`OPENPROJECT_TOKEN`, `GIT_TOKEN`) can also come from files (`*_FILE`, as Kubernetes mounts
//! them) and are held as [`SecretString`], whose `Debug` never prints the value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::agent::env::AgentEnv;
use crate::agent::options::{AgentOptions, DEFAULT_COMMAND, EnvWrapper};

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
    pub pod_field: String,
}

impl Default for BoardNames {
    fn default() -> Self {
        BoardNames {
            work_types: ["Bug", "Task", "Feature", "User story"]
                .map(String::from)
                .to_vec(),
            bug_type: "Bug".into(),
            epic_type: "Epic".into(),
            phase_type: "Phase".into(),
            spike_type: "Spike".into(),
            story_type: "User story".into(),
            ready_statuses: ["New", "Confirmed", "Specified"].map(String::from).to_vec(),
            active_status: "In progress".into(),
            done_status: "In testing".into(),
            pod_field: "Agent pod".into(),
        }
    }
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
}

/// The validated configuration of one worker pod.
#[derive(Debug, Clone)]
pub struct Config {
    pub openproject_url: Url,
    pub openproject_token: SecretString,
    pub pod_name: String,
    pub repos: Vec<RepoMapping>,
    pub poll_interval: Duration,
    pub epic_stale_after: Duration,
    pub http_timeout: Duration,
    pub limits: Limits,
    pub workdir: PathBuf,
    pub git_token: Option<SecretString>,
    pub git_ssh_key: Option<PathBuf>,
    pub git_author_name: String,
    pub git_author_email: String,
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
    task_timeout: Option<String>,
    max_turns: Option<String>,
    task_budget_usd: Option<String>,
    hourly_budget_usd: Option<String>,
    daily_budget_usd: Option<String>,
    max_attempts: Option<String>,
    shutdown_grace: Option<String>,
    epic_stale_after: Option<String>,
    http_timeout: Option<String>,
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
        Self::from_raw(raw, &vars)
    }

    fn from_raw(raw: Raw, vars: &[(String, String)]) -> Result<Config, ConfigError> {
        let openproject_url = parse_url("openproject_url", raw.openproject_url.as_deref())?;
        let openproject_token = secret(
            "openproject_token",
            raw.openproject_token,
            raw.openproject_token_file,
        )?
        .ok_or_else(|| {
            err("openproject_token", "is required (or JOURNEYMAN_OPENPROJECT_TOKEN_FILE): the API token of the agent user")
        })?;
        let pod_name = match raw.pod_name {
            Some(name) => validate_pod_name(&name)?,
            None => default_pod_name()?,
        };
        let repos = parse_repos(raw.repos.as_deref())?;
        let limits = Limits {
            task_timeout: duration("task_timeout", raw.task_timeout, "30m")?,
            max_turns: positive_int("max_turns", raw.max_turns, 50)?,
            task_budget_usd: money("task_budget_usd", raw.task_budget_usd, 5.0)?,
            hourly_budget_usd: money("hourly_budget_usd", raw.hourly_budget_usd, 20.0)?,
            daily_budget_usd: money("daily_budget_usd", raw.daily_budget_usd, 100.0)?,
            max_attempts: positive_int("max_attempts", raw.max_attempts, 3)?,
            shutdown_grace: duration("shutdown_grace", raw.shutdown_grace, "5m")?,
        };
        if limits.task_budget_usd > limits.hourly_budget_usd {
            return Err(err(
                "task_budget_usd",
                format!(
                    "must not exceed JOURNEYMAN_HOURLY_BUDGET_USD ({}), or no task could ever run",
                    limits.hourly_budget_usd
                ),
            ));
        }
        if limits.hourly_budget_usd > limits.daily_budget_usd {
            return Err(err(
                "hourly_budget_usd",
                format!(
                    "must not exceed JOURNEYMAN_DAILY_BUDGET_USD ({})",
                    limits.daily_budget_usd
                ),
            ));
        }
        let git_token = secret("git_token", raw.git_token, raw.git_token_file)?;
        let git_ssh_key = raw.git_ssh_key.map(PathBuf::from);
        if let Some(key) = &git_ssh_key
            && !key.is_file()
        {
            return Err(err(
                "git_ssh_key",
                format!(
                    "expected a readable private key file, `{}` is not a file",
                    key.display()
                ),
            ));
        }
        let names = BoardNames {
            work_types: name_list(
                "work_types",
                raw.work_types,
                &BoardNames::default().work_types,
            )?,
            bug_type: name("bug_type", raw.bug_type, "Bug")?,
            epic_type: name("epic_type", raw.epic_type, "Epic")?,
            phase_type: name("phase_type", raw.phase_type, "Phase")?,
            spike_type: name("spike_type", raw.spike_type, "Spike")?,
            story_type: name("story_type", raw.story_type, "User story")?,
            ready_statuses: name_list(
                "ready_statuses",
                raw.ready_statuses,
                &BoardNames::default().ready_statuses,
            )?,
            active_status: name("active_status", raw.active_status, "In progress")?,
            done_status: name("done_status", raw.done_status, "In testing")?,
            pod_field: name("pod_field", raw.pod_field, "Agent pod")?,
        };
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
        let workdir = raw
            .workdir
            .map(PathBuf::from)
            .unwrap_or_else(default_workdir);
        let agent = agent_options(
            raw.agent_command,
            raw.env_wrapper,
            raw.allowed_tools,
            raw.disallowed_tools,
            raw.agent_env,
            raw.agent_kill_grace,
            &workdir,
        )?;
        let agent = AgentOptions {
            env: AgentEnv::capture(vars.iter().cloned(), &agent.extra_env),
            ..agent
        };
        Ok(Config {
            openproject_url,
            openproject_token,
            pod_name,
            repos,
            poll_interval: duration("poll_interval", raw.poll_interval, "60s")?,
            epic_stale_after: duration("epic_stale_after", raw.epic_stale_after, "2h")?,
            http_timeout: duration("http_timeout", raw.http_timeout, "30s")?,
            limits,
            workdir,
            git_token,
            git_ssh_key,
            git_author_name: name("git_author_name", raw.git_author_name, "journeyman")?,
            git_author_email: email("git_author_email", raw.git_author_email)?,
            agent,
            listen: parse_listen(raw.listen.as_deref())?,
            log_format: log_format(raw.log_format.as_deref())?,
            names,
        })
    }

    /// The repository mapping for a project, if the project is configured.
    pub fn repo_for(&self, project: &str) -> Option<&RepoMapping> {
        self.repos.iter().find(|r| r.project == project)
    }
}

fn parse_url(var: &str, value: Option<&str>) -> Result<Url, ConfigError> {
    let value = value.ok_or_else(|| {
        err(
            var,
            "is required: the base URL of OpenProject, e.g. https://openproject.example.com",
        )
    })?;
    let url = Url::parse(value.trim()).map_err(|e| {
        err(
            var,
            format!(
                "expected an http(s) URL like https://openproject.example.com, got `{value}` ({e})"
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err(
            var,
            format!(
                "expected an http or https URL, got scheme `{}`",
                url.scheme()
            ),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err(var, "must not carry a query or fragment"));
    }
    Ok(url)
}

/// A secret from `NAME` or `NAME_FILE`, never both.
fn secret(
    var: &str,
    value: Option<String>,
    file: Option<String>,
) -> Result<Option<SecretString>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(err(
            var,
            format!(
                "set either {PREFIX}{0} or {PREFIX}{0}_FILE, not both",
                var.to_ascii_uppercase()
            ),
        )),
        (Some(v), None) => Ok(Some(SecretString::from(v.trim().to_string()))),
        (None, Some(path)) => {
            let file_var = format!("{var}_file");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(&file_var, format!("cannot read secret file `{path}`: {e}")))?;
            let text = text.trim();
            if text.is_empty() {
                return Err(err(&file_var, format!("secret file `{path}` is empty")));
            }
            Ok(Some(SecretString::from(text.to_string())))
        }
        (None, None) => Ok(None),
    }
}

fn validate_pod_name(name: &str) -> Result<String, ConfigError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(err(
            "pod_name",
            format!(
                "expected a pod name of letters, digits, `-`, `.` or `_` (at most 253), got `{name}`"
            ),
        ))
    }
}

fn default_pod_name() -> Result<String, ConfigError> {
    let host = nix::unistd::gethostname().map_err(|e| {
        err(
            "pod_name",
            format!("is unset and the hostname cannot be read ({e}); set it"),
        )
    })?;
    let host = host.to_string_lossy();
    validate_pod_name(&host).map_err(|_| {
        err(
            "pod_name",
            format!("is unset and the hostname `{host}` is not a valid pod name; set it"),
        )
    })
}

/// `JOURNEYMAN_REPOS`: entries `PROJECT=GIT_URL[#BASE_BRANCH]`, separated by commas, semicolons or
/// whitespace. `#` never appears in a git URL, so it is a safe separator for the branch.
pub fn parse_repos(value: Option<&str>) -> Result<Vec<RepoMapping>, ConfigError> {
    const EXPECTED: &str = "expected `PROJECT=GIT_URL[#BASE_BRANCH]` entries separated by commas, e.g. `demo=https://git.example.com/demo.git#main`";
    let value = value.ok_or_else(|| err("repos", format!("is required: {EXPECTED}")))?;
    let mut repos: Vec<RepoMapping> = Vec::new();
    for entry in value
        .split([',', ';', ' ', '\n', '\t'])
        .filter(|s| !s.is_empty())
    {
        let (project, rest) = entry
            .split_once('=')
            .ok_or_else(|| err("repos", format!("{EXPECTED}; got `{entry}`")))?;
        let (url, branch) = match rest.split_once('#') {
            Some((url, branch)) => (url, branch),
            None => (rest, "main"),
        };
        if project.is_empty() || url.is_empty() || branch.is_empty() {
            return Err(err("repos", format!("{EXPECTED}; got `{entry}`")));
        }
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(err(
                "repos",
                format!("`{branch}` in `{entry}` is not a valid branch name"),
            ));
        }
        if url.contains('@') && url.starts_with("http") {
            return Err(err(
                "repos",
                format!(
                    "`{project}`: do not put credentials in the URL; use JOURNEYMAN_GIT_TOKEN(_FILE)"
                ),
            ));
        }
        if repos.iter().any(|r| r.project == project) {
            return Err(err("repos", format!("project `{project}` is listed twice")));
        }
        repos.push(RepoMapping {
            project: project.into(),
            url: url.into(),
            base_branch: branch.into(),
        });
    }
    if repos.is_empty() {
        return Err(err("repos", format!("is empty: {EXPECTED}")));
    }
    Ok(repos)
}

/// A duration like `30s`, `5m`, `2h` or `1h 30m` (humantime).
pub fn duration(var: &str, value: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let text = value.as_deref().unwrap_or(default).trim();
    let d = humantime::parse_duration(text).map_err(|_| {
        err(
            var,
            format!("expected a duration like `30s`, `5m` or `2h`, got `{text}`"),
        )
    })?;
    if d.is_zero() {
        return Err(err(var, format!("must be greater than zero, got `{text}`")));
    }
    Ok(d)
}

fn positive_int(var: &str, value: Option<String>, default: u32) -> Result<u32, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(err(
                var,
                format!("expected a whole number greater than zero, got `{text}`"),
            )),
        },
    }
}

fn money(var: &str, value: Option<String>, default: f64) -> Result<f64, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => match text.trim().trim_start_matches('$').parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
            _ => Err(err(
                var,
                format!(
                    "expected an amount in US dollars greater than zero, like `2.50`, got `{text}`"
                ),
            )),
        },
    }
}

fn name(var: &str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_string());
    let text = text.trim();
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(err(
            var,
            format!("expected a non-empty name without control characters, got `{text}`"),
        ));
    }
    Ok(text.to_string())
}

fn name_list(
    var: &str,
    value: Option<String>,
    default: &[String],
) -> Result<Vec<String>, ConfigError> {
    let Some(text) = value else {
        return Ok(default.to_vec());
    };
    let names: Vec<String> = text
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() || names.iter().any(|n| n.chars().any(char::is_control)) {
        return Err(err(
            var,
            format!("expected a comma-separated list of names, got `{text}`"),
        ));
    }
    let mut seen = BTreeMap::new();
    for n in &names {
        if seen.insert(n.as_str(), ()).is_some() {
            return Err(err(var, format!("`{n}` is listed twice")));
        }
    }
    Ok(names)
}

fn email(var: &str, value: Option<String>) -> Result<String, ConfigError> {
    let text = value.unwrap_or_else(|| "journeyman@localhost".into());
    let text = text.trim();
    let valid = text
        .split_once('@')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>');
    if valid {
        Ok(text.to_string())
    } else {
        Err(err(
            var,
            format!("expected an e-mail address like bot@example.com, got `{text}`"),
        ))
    }
}

fn env_wrapper(value: Option<String>) -> EnvWrapper {
    match value.as_deref().map(str::trim) {
        Some("none") => EnvWrapper::None,
        Some(words) => EnvWrapper::Command(words.split_whitespace().map(String::from).collect()),
        None => EnvWrapper::default(),
    }
}

fn agent_options(
    command: Option<String>,
    wrapper: Option<String>,
    allowed: Option<String>,
    disallowed: Option<String>,
    env: Option<String>,
    kill_grace: Option<String>,
    workdir: &std::path::Path,
) -> Result<AgentOptions, ConfigError> {
    let defaults = AgentOptions::default();
    let allowed_tools = tool_list("allowed_tools", allowed, &defaults.allowed_tools)?;
    let disallowed_tools = tool_list("disallowed_tools", disallowed, &defaults.disallowed_tools)?;
    if let Some(both) = allowed_tools.iter().find(|t| disallowed_tools.contains(t)) {
        return Err(err(
            "disallowed_tools",
            format!("`{both}` is also in JOURNEYMAN_ALLOWED_TOOLS; list it in one of them"),
        ));
    }
    let extra_env = match env {
        None => Vec::new(),
        Some(text) => name_list("agent_env", Some(text), &[])?,
    };
    for name in &extra_env {
        if !crate::agent::env::is_valid_name(name) {
            return Err(err(
                "agent_env",
                format!("`{name}` is not a variable name (letters, digits and `_`)"),
            ));
        }
        if crate::agent::env::is_never_passed(name) {
            return Err(err(
                "agent_env",
                format!(
                    "`{name}` is never passed to the agent: journeyman's own settings and credentials stay with the worker"
                ),
            ));
        }
    }
    Ok(AgentOptions {
        command: name("agent_command", command, DEFAULT_COMMAND)?,
        wrapper: env_wrapper(wrapper),
        allowed_tools,
        disallowed_tools,
        extra_env,
        env: AgentEnv::default(), // captured from all the variables in `from_raw`
        kill_grace: duration("agent_kill_grace", kill_grace, "5s")?,
        group_file: Some(workdir.join("agent.pgid")),
    })
}

/// A comma-separated list of Claude Code tool specs: `Name` or `Name(pattern)`. A spec can never
/// start with `-`, so a list can never smuggle a flag like `--dangerously-skip-permissions`.
fn tool_list(
    var: &str,
    value: Option<String>,
    default: &[String],
) -> Result<Vec<String>, ConfigError> {
    let tools = name_list(var, value, default)?;
    for tool in &tools {
        let (name, pattern) = match tool.split_once('(') {
            Some((name, rest)) => (name, Some(rest)),
            None => (tool.as_str(), None),
        };
        let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let pattern_ok = pattern.is_none_or(|p| p.ends_with(')') && p.len() > 1);
        if !name_ok || !pattern_ok {
            return Err(err(
                var,
                format!(
                    "expected tool names like `Edit` or patterns like `Bash(cargo test:*)`, got `{tool}`"
                ),
            ));
        }
    }
    Ok(tools)
}

fn parse_listen(value: Option<&str>) -> Result<SocketAddr, ConfigError> {
    let text = value.unwrap_or("127.0.0.1:8080").trim();
    text.parse().map_err(|_| {
        err(
            "listen",
            format!("expected an address like `0.0.0.0:8080`, got `{text}`"),
        )
    })
}

fn log_format(value: Option<&str>) -> Result<LogFormat, ConfigError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(err(
            "log_format",
            format!("expected `json` or `text`, got `{other}`"),
        )),
    }
}

fn default_workdir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("journeyman")
}

#[cfg(test)]
mod tests {
    use super::*;
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
        ]))
        .unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(30));
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
        check_err(
            &[("JOURNEYMAN_OPENPROJECT_URL", "not a url")],
            "JOURNEYMAN_OPENPROJECT_URL",
            "expected an http(s) URL",
        );
        check_err(
            &[("JOURNEYMAN_OPENPROJECT_URL", "ftp://x")],
            "JOURNEYMAN_OPENPROJECT_URL",
            "scheme `ftp`",
        );
        check_err(
            &[("JOURNEYMAN_POLL_INTERVAL", "soon")],
            "JOURNEYMAN_POLL_INTERVAL",
            "like `30s`",
        );
        check_err(
            &[("JOURNEYMAN_POLL_INTERVAL", "0s")],
            "JOURNEYMAN_POLL_INTERVAL",
            "greater than zero",
        );
        check_err(
            &[("JOURNEYMAN_TASK_TIMEOUT", "10")],
            "JOURNEYMAN_TASK_TIMEOUT",
            "like `30s`",
        );
        check_err(
            &[("JOURNEYMAN_MAX_TURNS", "-3")],
            "JOURNEYMAN_MAX_TURNS",
            "whole number",
        );
        check_err(
            &[("JOURNEYMAN_MAX_TURNS", "0")],
            "JOURNEYMAN_MAX_TURNS",
            "whole number",
        );
        check_err(
            &[("JOURNEYMAN_TASK_BUDGET_USD", "five")],
            "JOURNEYMAN_TASK_BUDGET_USD",
            "US dollars",
        );
        check_err(
            &[("JOURNEYMAN_TASK_BUDGET_USD", "NaN")],
            "JOURNEYMAN_TASK_BUDGET_USD",
            "US dollars",
        );
        check_err(
            &[("JOURNEYMAN_TASK_BUDGET_USD", "50")],
            "JOURNEYMAN_TASK_BUDGET_USD",
            "HOURLY_BUDGET_USD",
        );
        check_err(
            &[("JOURNEYMAN_HOURLY_BUDGET_USD", "500")],
            "JOURNEYMAN_HOURLY_BUDGET_USD",
            "DAILY_BUDGET_USD",
        );
        check_err(
            &[("JOURNEYMAN_POD_NAME", "pod 1")],
            "JOURNEYMAN_POD_NAME",
            "letters, digits",
        );
        check_err(
            &[("JOURNEYMAN_REPOS", "justaurl")],
            "JOURNEYMAN_REPOS",
            "PROJECT=GIT_URL",
        );
        check_err(
            &[("JOURNEYMAN_REPOS", "a=x,a=y")],
            "JOURNEYMAN_REPOS",
            "listed twice",
        );
        check_err(
            &[("JOURNEYMAN_REPOS", "a=x#bad..branch")],
            "JOURNEYMAN_REPOS",
            "not a valid branch",
        );
        check_err(
            &[("JOURNEYMAN_REPOS", "a=https://u:p@host/r.git")],
            "JOURNEYMAN_REPOS",
            "credentials",
        );
        check_err(
            &[("JOURNEYMAN_LISTEN", "everywhere")],
            "JOURNEYMAN_LISTEN",
            "0.0.0.0:8080",
        );
        check_err(
            &[("JOURNEYMAN_LOG_FORMAT", "xml")],
            "JOURNEYMAN_LOG_FORMAT",
            "`json` or `text`",
        );
        check_err(
            &[("JOURNEYMAN_GIT_AUTHOR_EMAIL", "nobody")],
            "JOURNEYMAN_GIT_AUTHOR_EMAIL",
            "e-mail",
        );
        check_err(
            &[("JOURNEYMAN_WORK_TYPES", "Task,Epic")],
            "JOURNEYMAN_WORK_TYPES",
            "container",
        );
        check_err(
            &[("JOURNEYMAN_READY_STATUSES", "New,In progress")],
            "JOURNEYMAN_READY_STATUSES",
            "active status",
        );
        check_err(
            &[("JOURNEYMAN_READY_STATUSES", "New,New")],
            "JOURNEYMAN_READY_STATUSES",
            "twice",
        );
        check_err(
            &[("JOURNEYMAN_GIT_SSH_KEY", "/nonexistent/key")],
            "JOURNEYMAN_GIT_SSH_KEY",
            "not a file",
        );
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
    fn agent_tools_and_env_have_tested_defaults() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(
            c.agent.allowed_tools,
            ["Read", "Edit", "Write", "Glob", "Grep", "Bash"]
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
}
