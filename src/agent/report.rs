//! What a finished agent run leaves behind: how its process ended ([`Exit`]) and what its result
//! object reported ([`AgentReport`]: turns, tokens, cost, the verdict).
//!
//! Why this file exists: both [`result`](super::result) (which reads a report from the CLI's
//! output) and [`failure`](super::failure) (which keeps the report of a failed run, because its
//! cost was spent) speak of these values; they live here, below both, so that neither has to
//! import the other's types back. Plain data: no parsing, no I/O.

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Exit {
    pub fn success(self) -> bool {
        self.code == Some(0)
    }
}

/// What a finished run reported: the fields of the CLI's result object that the worker uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentReport {
    pub session_id: Option<String>,
    pub num_turns: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    /// `total_cost_usd` (older releases: `cost_usd`); 0 when absent.
    pub cost_usd: f64,
    pub duration_ms: u64,
    /// `success`, `error_max_turns`, `error_during_execution`, or whatever a newer release says.
    pub subtype: String,
    pub is_error: bool,
    /// The agent's final text (on success: its summary of what it did).
    pub result: String,
}
