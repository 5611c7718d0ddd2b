//! Why an agent run failed, in the words the worker needs: one line for the Spike's title and the
//! log, bounded evidence for the Spike's description, the report (cost!) when there was one, and
//! whether the environment rather than the agent is to blame.
//!
//! What it must never do: produce an unbounded or multi-line `reason()`, or evidence that could
//! flood a ticket (both are posted to the board).

use std::time::Duration;

use super::live::Breach;
use super::report::AgentReport;

/// A failed agent run.
#[derive(Debug, thiserror::Error)]
pub enum AgentFailure {
    /// The command (or its wrapper, e.g. `nix`) could not be started.
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The wall-clock limit passed; the process group was stopped.
    #[error("timed out after {}", humantime::format_duration(*after))]
    Timeout {
        after: Duration,
        stderr_tail: String,
    },
    /// The process exited non-zero or was killed by a signal. A result object printed before
    /// exiting is kept (its cost was spent).
    #[error("{}", exited_reason(*code, *signal, report.as_ref()))]
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        stderr_tail: String,
        report: Option<AgentReport>,
    },
    /// The result object says the run failed (`is_error`, or a subtype other than `success`).
    #[error("{message}")]
    Reported {
        subtype: String,
        message: String,
        report: AgentReport,
    },
    /// Exit 0 but no usable result object on stdout.
    #[error("unparsable agent output: {reason}")]
    Unparsable {
        reason: String,
        stdout_tail: String,
        stderr_tail: String,
    },
    /// The run crossed a live budget (cost, turns, stall) and its process group was stopped; what
    /// it had spent, from its stream, is the report.
    #[error("{breach}")]
    Budget {
        breach: Breach,
        report: AgentReport,
        stderr_tail: String,
    },
    /// Entering the environment (`<wrapper> true`) failed: the command, how it ended, and the
    /// first error line it printed (Nix's `error: ...`), if any.
    #[error("`{command}` exited with code {}{}", code.map_or("none".into(), |c| c.to_string()), error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    EnvironmentFailed {
        command: String,
        code: Option<i32>,
        error: Option<String>,
        stderr_tail: String,
    },
    /// The run was cancelled (shutdown); the process group was stopped.
    #[error("cancelled")]
    Cancelled,
}

/// At most this many lines of each stream go into [`AgentFailure::evidence`].
pub const EVIDENCE_LINES: usize = 40;
/// At most this many bytes of each stream go into [`AgentFailure::evidence`].
pub const EVIDENCE_BYTES: usize = 4 * 1024;
/// `reason()` is cut to this many characters.
const REASON_CHARS: usize = 300;

fn exited_reason(code: Option<i32>, signal: Option<i32>, report: Option<&AgentReport>) -> String {
    let how = match (code, signal) {
        (Some(c), _) => format!("the agent exited with code {c}"),
        (None, Some(s)) => format!("the agent was killed by signal {s}"),
        (None, None) => "the agent exited without a status".to_string(),
    };
    match report {
        Some(r) => format!("{how} (result subtype `{}`)", r.subtype),
        None => how,
    }
}

impl AgentFailure {
    /// One line: why the run failed.
    pub fn reason(&self) -> String {
        let text = self.to_string();
        let mut line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(REASON_CHARS)
            .collect();
        if text.chars().count() > REASON_CHARS {
            line.push_str("...");
        }
        line
    }

    /// The last lines of stderr (and of stdout, where it matters), bounded by [`EVIDENCE_LINES`]
    /// and [`EVIDENCE_BYTES`] per stream. Empty when there is nothing to show.
    pub fn evidence(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |label: &str, text: &str| {
            let tail = tail_lines(text, EVIDENCE_LINES, EVIDENCE_BYTES);
            if !tail.trim().is_empty() {
                parts.push(format!("{label}:\n{tail}"));
            }
        };
        match self {
            AgentFailure::Timeout { stderr_tail, .. }
            | AgentFailure::Exited { stderr_tail, .. }
            | AgentFailure::EnvironmentFailed { stderr_tail, .. } => add("stderr", stderr_tail),
            AgentFailure::Budget {
                report,
                stderr_tail,
                ..
            } => {
                let spent = format!(
                    "{} turns, {} input and {} output tokens, ${:.4} estimated",
                    report.num_turns, report.input_tokens, report.output_tokens, report.cost_usd
                );
                add("spent before the stop", &spent);
                add("stderr", stderr_tail);
            }
            AgentFailure::Unparsable {
                stdout_tail,
                stderr_tail,
                ..
            } => {
                add("stdout", stdout_tail);
                add("stderr", stderr_tail);
            }
            AgentFailure::Reported { report, .. } => add("result", &report.result),
            AgentFailure::Spawn { .. } | AgentFailure::Cancelled => {}
        }
        parts.join("\n")
    }

    /// Whether the run ended without a result object (exited or printed garbage): nothing was
    /// reported, so nothing of it can be judged (an agent refusing `--resume` ends this way).
    pub fn unreported(&self) -> bool {
        matches!(
            self,
            AgentFailure::Exited { report: None, .. } | AgentFailure::Unparsable { .. }
        )
    }

    /// The result object, when the run printed one (its cost counts against the budget).
    pub fn report(&self) -> Option<&AgentReport> {
        match self {
            AgentFailure::Reported { report, .. } | AgentFailure::Budget { report, .. } => {
                Some(report)
            }
            AgentFailure::Exited { report, .. } => report.as_ref(),
            _ => None,
        }
    }

    /// True when the environment, not the agent or the ticket, is at fault: the command or its
    /// wrapper is missing or not executable. Retrying the ticket elsewhere will not help; fix the pod.
    pub fn is_environment(&self) -> bool {
        match self {
            AgentFailure::Spawn { .. } => true,
            // 126/127: the shell convention (and `nix develop --command`'s) for "cannot execute" and
            // "command not found", i.e. the wrapper started but the agent command is missing.
            AgentFailure::Exited {
                code: Some(126 | 127),
                report: None,
                ..
            }
            | AgentFailure::EnvironmentFailed {
                code: Some(126 | 127),
                ..
            } => true,
            _ => false,
        }
    }
}

/// Nix's error in one line: its first `error:` line (errors it ignored left out), with the last
/// line of a failed builder's log when there is one.
pub fn nix_error(stderr: &str) -> Option<String> {
    let error = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("error:"))?;
    let log = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("> "))
        .next_back();
    Some(match log {
        Some(last) => format!("{error} last log line: {last}"),
        None => error.to_string(),
    })
}

/// The last `max_lines` lines of `text`, at most `max_bytes` (cut at a character boundary, marked).
pub fn tail_lines(text: &str, max_lines: usize, max_bytes: usize) -> String {
    let text = text.trim_end();
    let start = text
        .rmatch_indices('\n')
        .nth(max_lines.saturating_sub(1))
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    let mut tail = &text[start..];
    let mut cut = start > 0;
    if tail.len() > max_bytes {
        let mut from = tail.len() - max_bytes;
        while !tail.is_char_boundary(from) {
            from += 1;
        }
        tail = &tail[from..];
        cut = true;
    }
    if cut {
        format!("[...]\n{tail}")
    } else {
        tail.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_lines_is_bounded_by_lines_and_bytes() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = tail_lines(&text, 3, 1000);
        assert_eq!(tail, "[...]\nline 97\nline 98\nline 99");
        let long = "é".repeat(10_000);
        let tail = tail_lines(&long, 3, 101);
        assert!(tail.len() <= 101 + "[...]\n".len());
        assert!(tail.starts_with("[...]\n"));
        assert_eq!(tail_lines("short", 3, 100), "short");
    }

    #[test]
    fn reason_is_one_bounded_line_and_evidence_is_bounded() {
        let e = AgentFailure::Reported {
            subtype: "error_during_execution".into(),
            message: format!("line one\nline two {}", "x".repeat(10_000)),
            report: AgentReport {
                result: "r\n".repeat(100_000),
                ..AgentReport::default()
            },
        };
        assert!(!e.reason().contains('\n'));
        assert!(e.reason().chars().count() <= REASON_CHARS + 3);
        assert!(e.evidence().len() <= 2 * EVIDENCE_BYTES);
        let e = AgentFailure::Timeout {
            after: Duration::from_secs(90),
            stderr_tail: "x\n".repeat(1000),
        };
        assert_eq!(e.reason(), "timed out after 1m 30s");
        assert_eq!(e.evidence().lines().count(), EVIDENCE_LINES + 2);
    }

    #[test]
    fn environment_failures_are_spawn_errors_and_command_not_found() {
        let spawn = AgentFailure::Spawn {
            program: "nix".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(spawn.is_environment());
        assert!(spawn.reason().starts_with("could not start `nix`"));
        let exited = |code| AgentFailure::Exited {
            code: Some(code),
            signal: None,
            stderr_tail: String::new(),
            report: None,
        };
        assert!(exited(127).is_environment());
        assert!(exited(126).is_environment());
        assert!(!exited(1).is_environment());
        assert!(!AgentFailure::Cancelled.is_environment());
    }
}
