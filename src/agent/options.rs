//! How the agent is run: its command, the wrapper around it, its tool permissions, the environment
//! it starts from, how it is stopped and where its process group is recorded, with the default of
//! each.
//!
//! Why this file exists: these are the agent's own settings, so the agent module owns them and
//! their defaults. Configuration fills them from `JOURNEYMAN_*` variables (checking each value there,
//! with an error that names the variable); the runner ([`ClaudeCli`](super::ClaudeCli)) is built
//! from them alone, so nothing in `agent/` needs to know the worker's configuration.
//!
//! Plain data: no parsing, no I/O (the environment is captured by configuration, not here).

use std::path::PathBuf;
use std::time::Duration;

use super::env::AgentEnv;
use super::live::Prices;

/// The agent command when `JOURNEYMAN_AGENT_COMMAND` is unset.
pub const DEFAULT_COMMAND: &str = "claude";

/// The wrapper when `JOURNEYMAN_ENV_WRAPPER` is unset: the agent runs in the checkout's Nix dev shell.
pub const DEFAULT_WRAPPER: &[&str] = &["nix", "develop", "--command"];

/// The agent's tool permissions (`--allowedTools`), the default when `JOURNEYMAN_ALLOWED_TOOLS` is unset.
/// `TodoWrite` is the agent's plan, posted on the ticket as a checklist.
pub const DEFAULT_ALLOWED_TOOLS: &[&str] =
    &["Read", "Edit", "Write", "Glob", "Grep", "Bash", "TodoWrite"];

/// The agent's denied tools (`--disallowedTools`), the default when `JOURNEYMAN_DISALLOWED_TOOLS` is
/// unset: no git (the worker commits and pushes), no network tools, no sub-agents.
pub const DEFAULT_DISALLOWED_TOOLS: &[&str] =
    &["Bash(git:*)", "WebFetch", "WebSearch", "Agent", "Task"];

/// Between SIGTERM and SIGKILL to the agent's process group when `JOURNEYMAN_AGENT_KILL_GRACE` is unset.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// How the agent's command is wrapped: `nix develop --command` by default, or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvWrapper {
    /// Run the agent command directly (`JOURNEYMAN_ENV_WRAPPER=none`).
    None,
    /// Prefix the agent command with these words (split on whitespace).
    Command(Vec<String>),
}

impl Default for EnvWrapper {
    fn default() -> Self {
        EnvWrapper::Command(strings(DEFAULT_WRAPPER))
    }
}

/// How the agent is run.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOptions {
    /// `JOURNEYMAN_AGENT_COMMAND`: `claude`, or any stand-in with its command-line interface.
    pub command: String,
    /// `JOURNEYMAN_ENV_WRAPPER`: what the command runs inside.
    pub wrapper: EnvWrapper,
    /// `JOURNEYMAN_ALLOWED_TOOLS`: tool names or patterns like `Bash(cargo test:*)`.
    pub allowed_tools: Vec<String>,
    /// `JOURNEYMAN_DISALLOWED_TOOLS`: denied tools; a denial wins over an allowance.
    pub disallowed_tools: Vec<String>,
    /// `JOURNEYMAN_AGENT_ENV`: names passed to the agent on top of the built-in allowlist. Never a
    /// `JOURNEYMAN_*` variable or a credential (see `agent::env`).
    pub extra_env: Vec<String>,
    /// The worker's variables the agent may be started with, captured at start-up (by
    /// `Config::from_vars`): the allowlist's and `extra_env`'s. Empty by default.
    pub env: AgentEnv,
    /// `JOURNEYMAN_AGENT_KILL_GRACE`: between SIGTERM and SIGKILL to the agent's process group.
    pub kill_grace: Duration,
    /// Where the running agent's process group is recorded, so that a restarted worker can kill
    /// what a killed one left (see `agent::leftovers`); a pod keeps it in its own workdir.
    pub group_file: Option<PathBuf>,
    /// The agent's own `HOME` (Claude Code keeps its sessions and settings there): a directory of
    /// the pod's, never the worker's home. `None` passes the captured `HOME` through.
    pub home: Option<PathBuf>,
    /// `JOURNEYMAN_AGENT_SECRET_ENV`: variables passed to the agent whose values are secrets (on top
    /// of the model credentials): redacted from everything the worker writes.
    pub secret_env: Vec<String>,
    /// `JOURNEYMAN_MODEL_PRICES`: what a run's tokens cost, for its live spend.
    pub prices: Prices,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            command: DEFAULT_COMMAND.into(),
            wrapper: EnvWrapper::default(),
            allowed_tools: strings(DEFAULT_ALLOWED_TOOLS),
            disallowed_tools: strings(DEFAULT_DISALLOWED_TOOLS),
            extra_env: Vec::new(),
            env: AgentEnv::default(),
            kill_grace: DEFAULT_KILL_GRACE,
            group_file: None,
            home: None,
            secret_env: Vec::new(),
            prices: Prices::default(),
        }
    }
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}
