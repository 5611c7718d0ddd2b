//! The agent port: run a coding agent on a checkout with a prompt, get back a report or a failure.
//!
//! Why this module exists: it is the boundary to the one outside system that acts on its own (Claude
//! Code), and the worker must stay in control of it: what it may see (environment allowlist), what it
//! may do (tool lists), how long it may run (timeout, cancellation that kills its whole process
//! group), and what counts as success (a parsed result object, never an exit code alone). The trait
//! [`Agent`] has one real implementation, [`ClaudeCli`], which also runs any stand-in that speaks the
//! CLI's interface (the scripted agent `journeyman-scripted-agent`, or the real CLI against a stand-in
//! Messages API in tests).
//!
//! What it must never do: give the agent the board token or git credentials, leave a process of a
//! run behind, or report success without the CLI's own result object saying so.
//!
//! - [`prompt`]: the prompt from the ticket hierarchy (pure).
//! - [`result`]: the CLI's JSON result to a report or failure (pure).
//! - `report`: what a finished run leaves ([`AgentReport`], [`Exit`]); `failure`: why a run failed
//!   ([`AgentFailure`]). `result` builds both; `failure` holds a report; neither imports the other back.
//! - [`env`](mod@env): the environment allowlist, and [`AgentEnv`], the variables configuration
//!   captured for the agent at start-up (pure).
//! - [`process`]: spawn, capture, timeout, kill the group.
//! - [`live`]: the `stream-json` events read as they come, and the budgets they cross (pure);
//!   [`monitor`]: the process watched with them, stopped on a crossed budget.
//! - [`options`]: how the agent is run (command, wrapper, tools, kill grace) and the defaults.
//! - [`claude`]: the command line and the [`Agent`] implementation, built from [`AgentOptions`].

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub mod claude;
pub mod env;
mod failure;
pub mod leftovers;
pub mod live;
pub mod monitor;
pub mod options;
pub mod process;
pub mod prompt;
mod report;
pub mod result;

pub use claude::ClaudeCli;
pub use env::AgentEnv;
pub use failure::{AgentFailure, EVIDENCE_BYTES, EVIDENCE_LINES, nix_error, tail_lines};
pub use monitor::LiveSender;
pub use options::{AgentOptions, EnvWrapper};
pub use report::{AgentReport, Exit};

/// One run of the agent.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    /// The checkout to work in (the agent's current directory).
    pub workdir: PathBuf,
    /// The whole prompt (see [`prompt::build`]).
    pub prompt: String,
    /// `--max-turns`.
    pub max_turns: u32,
    /// Wall-clock limit for the whole run.
    pub timeout: Duration,
    /// An earlier session to continue (`--resume`): the prompt then carries what happened since.
    pub resume: Option<String>,
    /// The budgets held while the run goes on (`None`: the turn cap and the timeout only).
    pub budget: Option<RunBudget>,
    /// Where the run's progress is published while it goes on.
    pub progress: Option<monitor::LiveSender>,
}

/// The live budgets of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunBudget {
    /// Stop the run once its estimated spend is over this.
    pub cost_usd: f64,
    /// What that figure is, for the Spike (`JOURNEYMAN_TASK_BUDGET_USD=$5.00`).
    pub cost_named: String,
    /// Stop the run after this long without a tool call or a change in the checkout.
    pub stall: Duration,
}

/// Runs a coding agent. Implementations must stop everything they started when `cancel` fires or
/// the request's timeout passes, before returning.
pub trait Agent: Send + Sync {
    fn run(
        &self,
        req: &AgentRequest,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<AgentReport, AgentFailure>> + Send;

    /// Enters the checkout's environment once, before the agent runs (`nix develop --command true`
    /// for the default wrapper), within `timeout`: an environment that cannot build fails here,
    /// as the environment's failure, never as the agent's. `Ok(None)` when there is no wrapper.
    fn enter_environment(
        &self,
        workdir: &std::path::Path,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<Option<Duration>, AgentFailure>> + Send {
        let _ = (workdir, timeout, cancel);
        async { Ok(None) }
    }

    /// Whether session `id` is still where this agent keeps its sessions (so it can be resumed).
    fn has_session(&self, id: &str) -> bool {
        let _ = id;
        false
    }
}
