//! The agent's settings: `JOURNEYMAN_AGENT_COMMAND`, `_ENV_WRAPPER`, `_ALLOWED_TOOLS`,
//! `_DISALLOWED_TOOLS`, `_AGENT_ENV`, `_AGENT_SECRET_ENV`, `_AGENT_KILL_GRACE` and `_MODEL_PRICES` into the agent's own
//! [`AgentOptions`], with the agent's defaults (`agent::options`), and the environment the agent
//! will start from, captured from the same variables.
//!
//! What it must never do: accept a tool list that could smuggle a flag onto the command line, or a
//! name in `JOURNEYMAN_AGENT_ENV` that the agent must never see (the filter in `agent::env` drops
//! such names again; rejecting them here tells the operator).

use std::path::Path;

use crate::agent::env::{AgentEnv, is_never_passed, is_valid_name};
use crate::agent::live::{DEFAULT_PRICES, Prices};
use crate::agent::options::{
    AgentOptions, DEFAULT_ALLOWED_TOOLS, DEFAULT_COMMAND, DEFAULT_DISALLOWED_TOOLS,
    DEFAULT_KILL_GRACE, EnvWrapper,
};

use super::parse::{duration, name, name_list};
use super::{ConfigError, Raw, defaults, err};

/// The agent's options; `vars` are all the variables read (the agent's environment is taken from
/// them), `workdir` the pod's (the agent's process group is recorded there).
pub(super) fn options(
    raw: &Raw,
    workdir: &Path,
    vars: &[(String, String)],
) -> Result<AgentOptions, ConfigError> {
    let allowed_tools = tool_list(
        "allowed_tools",
        raw.allowed_tools.as_deref(),
        DEFAULT_ALLOWED_TOOLS,
    )?;
    let disallowed_tools = tool_list(
        "disallowed_tools",
        raw.disallowed_tools.as_deref(),
        DEFAULT_DISALLOWED_TOOLS,
    )?;
    if let Some(both) = allowed_tools.iter().find(|t| disallowed_tools.contains(t)) {
        return Err(err(
            "disallowed_tools",
            format!("`{both}` is also in JOURNEYMAN_ALLOWED_TOOLS; list it in one of them"),
        ));
    }
    let mut extra = env_names("agent_env", raw.agent_env.as_deref())?;
    let secret_env = env_names("agent_secret_env", raw.agent_secret_env.as_deref())?;
    for name in &secret_env {
        if !extra.contains(name) {
            extra.push(name.clone());
        }
    }
    let extra_env = extra;
    Ok(AgentOptions {
        command: name(
            "agent_command",
            raw.agent_command.as_deref(),
            DEFAULT_COMMAND,
        )?,
        wrapper: env_wrapper(raw.env_wrapper.as_deref()),
        env: AgentEnv::capture(vars.iter().cloned(), &extra_env),
        allowed_tools,
        disallowed_tools,
        extra_env,
        kill_grace: duration(
            "agent_kill_grace",
            raw.agent_kill_grace.as_deref(),
            DEFAULT_KILL_GRACE,
        )?,
        group_file: Some(workdir.join(defaults::AGENT_GROUP_FILE)),
        home: Some(workdir.join(defaults::AGENT_HOME)),
        secret_env,
        prices: match raw.model_prices.as_deref().map(str::trim) {
            None | Some("") => Prices::default(),
            Some(text) => Prices::parse(text).map_err(|e| {
                err(
                    "model_prices",
                    format!("{e}; expected `model=input/output,...` in USD per million tokens, like `{DEFAULT_PRICES}`"),
                )
            })?,
        },
    })
}

fn env_wrapper(value: Option<&str>) -> EnvWrapper {
    match value.map(str::trim) {
        Some("none") => EnvWrapper::None,
        Some(words) => EnvWrapper::Command(words.split_whitespace().map(String::from).collect()),
        None => EnvWrapper::default(),
    }
}

/// A comma-separated list of Claude Code tool specs: `Name` or `Name(pattern)`. A spec can never
/// start with `-`, so a list can never smuggle a flag like `--dangerously-skip-permissions`.
fn tool_list(var: &str, value: Option<&str>, default: &[&str]) -> Result<Vec<String>, ConfigError> {
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

/// `JOURNEYMAN_AGENT_ENV` or `_AGENT_SECRET_ENV` (`var`): variable names, none of them one the
/// agent must never see.
fn env_names(var: &str, value: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let names = name_list(var, value, &[])?;
    for name in &names {
        if !is_valid_name(name) {
            return Err(err(
                var,
                format!("`{name}` is not a variable name (letters, digits and `_`)"),
            ));
        }
        if is_never_passed(name) {
            return Err(err(
                var,
                format!(
                    "`{name}` is never passed to the agent: journeyman's own settings and credentials stay with the worker"
                ),
            ));
        }
    }
    Ok(names)
}
