//! Every default of the configuration, written once: the value a variable takes when it is unset
//! (or empty). The parser and the `Default` impls both read them from here, so a default cannot
//! differ between the two. The agent's own defaults (command, wrapper, tool lists, kill grace) are
//! the agent's: see `agent::options`.

use std::path::PathBuf;
use std::time::Duration;

use super::LogFormat;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

/// `JOURNEYMAN_POLL_INTERVAL`.
pub const POLL_INTERVAL: Duration = Duration::from_secs(MINUTE);
/// `JOURNEYMAN_FULL_READ_EVERY`: the whole board read again at least this often (jittered per
/// pod); in between, cycles read only what changed.
pub const FULL_READ_EVERY: Duration = Duration::from_secs(30 * MINUTE);
/// `JOURNEYMAN_EPIC_STALE_AFTER`.
pub const EPIC_STALE_AFTER: Duration = Duration::from_secs(2 * HOUR);
/// `JOURNEYMAN_HTTP_TIMEOUT`.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// `JOURNEYMAN_TASK_TIMEOUT`.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(30 * MINUTE);
/// `JOURNEYMAN_MAX_TURNS`.
pub const MAX_TURNS: u32 = 50;
/// `JOURNEYMAN_TASK_BUDGET_USD`.
pub const TASK_BUDGET_USD: f64 = 5.0;
/// `JOURNEYMAN_HOURLY_BUDGET_USD`.
pub const HOURLY_BUDGET_USD: f64 = 20.0;
/// `JOURNEYMAN_DAILY_BUDGET_USD`.
pub const DAILY_BUDGET_USD: f64 = 100.0;
/// `JOURNEYMAN_MAX_ATTEMPTS`.
pub const MAX_ATTEMPTS: u32 = 3;
/// `JOURNEYMAN_ENV_TIMEOUT`: a cold dev shell builds its inputs.
pub const ENV_TIMEOUT: Duration = Duration::from_secs(10 * MINUTE);
/// `JOURNEYMAN_STALL_TIMEOUT`: no tool call and no change in the checkout for this long.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10 * MINUTE);
/// `JOURNEYMAN_PROGRESS_EVERY`: the progress comment is edited at most this often.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(MINUTE);
/// `JOURNEYMAN_SHUTDOWN_GRACE`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5 * MINUTE);

/// The base branch of a `JOURNEYMAN_REPOS` entry without `#BRANCH`.
pub const BASE_BRANCH: &str = "main";
/// `JOURNEYMAN_GIT_AUTHOR_NAME`.
pub const GIT_AUTHOR_NAME: &str = "journeyman";
/// `JOURNEYMAN_GIT_AUTHOR_EMAIL`.
pub const GIT_AUTHOR_EMAIL: &str = "journeyman@localhost";
/// `JOURNEYMAN_LISTEN`.
pub const LISTEN: &str = "127.0.0.1:8080";
/// `JOURNEYMAN_LOG_FORMAT`.
pub const LOG_FORMAT: LogFormat = LogFormat::Text;

/// `JOURNEYMAN_GIT_CONNECT_TIMEOUT`: connecting to a git server.
pub const GIT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// `JOURNEYMAN_GIT_TIMEOUT`: a git server that stops sending.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(2 * MINUTE);

/// The agent's own home: this directory in the pod's workdir.
pub const AGENT_HOME: &str = "agent-home";

/// Where a pod records its running agent's process group: this file in its workdir.
pub const AGENT_GROUP_FILE: &str = "agent.pgid";

/// `JOURNEYMAN_WORK_TYPES`.
pub const WORK_TYPES: &[&str] = &["Bug", "Task", "Feature", "User story"];
/// `JOURNEYMAN_BUG_TYPE`.
pub const BUG_TYPE: &str = "Bug";
/// `JOURNEYMAN_EPIC_TYPE`.
pub const EPIC_TYPE: &str = "Epic";
/// `JOURNEYMAN_PHASE_TYPE`.
pub const PHASE_TYPE: &str = "Phase";
/// `JOURNEYMAN_SPIKE_TYPE`.
pub const SPIKE_TYPE: &str = "Spike";
/// `JOURNEYMAN_STORY_TYPE`.
pub const STORY_TYPE: &str = "User story";
/// `JOURNEYMAN_READY_STATUSES`.
pub const READY_STATUSES: &[&str] = &["New", "Confirmed", "Specified"];
/// `JOURNEYMAN_ACTIVE_STATUS`.
pub const ACTIVE_STATUS: &str = "In progress";
/// `JOURNEYMAN_DONE_STATUS`.
pub const DONE_STATUS: &str = "In testing";
/// `JOURNEYMAN_POD_FIELD`.
pub const POD_FIELD: &str = "Agent pod";

/// `JOURNEYMAN_WORKDIR`: `$XDG_CACHE_HOME/journeyman`, else `$HOME/.cache/journeyman`, else
/// `journeyman` in the temporary directory.
pub fn workdir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("journeyman")
}
