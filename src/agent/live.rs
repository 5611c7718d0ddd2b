//! The run as it happens: the CLI's `stream-json` events in, what the run has done so far out
//! (turns, tokens, cost, files changed, the last test command, the plan), and whether it has
//! crossed one of its budgets.
//!
//! Why this file exists: a budget checked when the run ends is a budget already spent. The CLI
//! prints one JSON object per line as it works (`system` init, `assistant` messages with their
//! `usage`, `user` tool results, the final `result`); reading them as they arrive lets the worker
//! stop a run the moment it crosses its cost, turn or stall budget, and show the run's progress on
//! the ticket. Pure: lines and a clock reading (time since the run began) in, state out; the
//! process and the board are elsewhere. Lenient: unknown events and fields are ignored, a line that
//! is not JSON is counted and skipped.
//!
//! What it must never do: grow without bound (every list and text is capped), or under-count
//! spend: an assistant message is counted once per message id (the CLI repeats a message's usage on
//! each of its content blocks), a model missing from the price table is priced at the table's
//! dearest entry, and sub-agents' messages count too.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

mod lines;
mod prices;

pub use lines::Lines;
pub use prices::{DEFAULT_PRICES, Price, Prices};

/// Longest text kept from the stream (a command, a todo item, a file path).
const MAX_TEXT: usize = 200;
/// Most files and todo items kept (the counts go on).
const MAX_ITEMS: usize = 100;

/// Tokens of one message or of the run so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Tokens {
    fn cost(&self, p: Price) -> f64 {
        let per = |n: u64, usd: f64| n as f64 * usd / 1e6;
        per(self.input, p.input)
            + per(self.output, p.output)
            + per(self.cache_read, p.input * 0.1)
            + per(self.cache_write, p.input * 1.25)
    }

    fn max(self, o: Tokens) -> Tokens {
        Tokens {
            input: self.input.max(o.input),
            output: self.output.max(o.output),
            cache_read: self.cache_read.max(o.cache_read),
            cache_write: self.cache_write.max(o.cache_write),
        }
    }

    fn add(self, o: Tokens) -> Tokens {
        Tokens {
            input: self.input + o.input,
            output: self.output + o.output,
            cache_read: self.cache_read + o.cache_read,
            cache_write: self.cache_write + o.cache_write,
        }
    }
}

/// One item of the agent's todo list (its `TodoWrite` tool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub text: String,
    /// `pending`, `in_progress` or `completed`.
    pub status: String,
}

/// A shell command the agent ran, and how it ended (`None` while it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRun {
    pub command: String,
    /// The exit code when the tool result says it; 0 for a result that is not an error.
    pub exit: Option<i32>,
    pub failed: Option<bool>,
}

/// What one line changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// The agent called a tool: it is doing something.
    pub tool_call: bool,
    /// The todo list changed.
    pub plan: bool,
}

/// The run so far, read from the stream.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Usage per assistant message id (model, tokens), the largest seen for it.
    messages: BTreeMap<String, (String, Tokens)>,
    /// Top-level assistant messages (not a sub-agent's): the turns.
    turns: BTreeSet<String>,
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub tool_calls: u64,
    files: BTreeSet<String>,
    pub files_changed: usize,
    pub todos: Vec<Todo>,
    /// The last command that looks like a test or check, else the last command.
    pub last_test: Option<CommandRun>,
    pending: BTreeMap<String, CommandRun>,
    /// When the agent last called a tool (time since the run began).
    pub last_tool_at: Duration,
    /// Lines that were not JSON (log lines, or cut by the line limit).
    pub skipped_lines: u64,
    /// Whether a final `result` event was seen.
    pub finished: bool,
}

impl Live {
    /// Reads one line of the stream, seen at `now` (time since the run began).
    pub fn observe(&mut self, line: &[u8], now: Duration) -> Observed {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            if !line.iter().all(u8::is_ascii_whitespace) {
                self.skipped_lines += 1;
            }
            return Observed::default();
        };
        match v.get("type").and_then(Value::as_str) {
            Some("system") => {
                self.session_id = text(&v, "session_id").or(self.session_id.take());
                self.model = text(&v, "model").or(self.model.take());
                Observed::default()
            }
            Some("assistant") => self.assistant(&v, now),
            Some("user") => {
                self.tool_results(&v);
                Observed::default()
            }
            Some("result") => {
                self.finished = true;
                Observed::default()
            }
            _ => Observed::default(),
        }
    }

    fn assistant(&mut self, v: &Value, now: Duration) -> Observed {
        let Some(m) = v.get("message") else {
            return Observed::default();
        };
        let id = text(m, "id").unwrap_or_else(|| format!("anonymous-{}", self.messages.len()));
        let model = text(m, "model")
            .or_else(|| self.model.clone())
            .unwrap_or_default();
        let tokens = m.get("usage").map(usage).unwrap_or_default();
        let entry = self
            .messages
            .entry(id.clone())
            .or_insert((model, Tokens::default()));
        entry.1 = entry.1.max(tokens);
        let top_level = v.get("parent_tool_use_id").is_none_or(Value::is_null);
        if top_level {
            self.turns.insert(id);
        }
        let mut seen = Observed::default();
        let blocks = m.get("content").and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                seen.tool_call = true;
                seen.plan |= self.tool_use(block);
            }
        }
        if seen.tool_call {
            self.tool_calls += 1;
            self.last_tool_at = now;
        }
        seen
    }

    /// One tool call; true if it changed the todo list.
    fn tool_use(&mut self, block: &Value) -> bool {
        let input = block.get("input").cloned().unwrap_or(Value::Null);
        match block.get("name").and_then(Value::as_str).unwrap_or("") {
            "TodoWrite" => {
                let todos: Vec<Todo> = input
                    .get("todos")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .take(MAX_ITEMS)
                    .map(|t| Todo {
                        text: text(t, "content").unwrap_or_default(),
                        status: text(t, "status").unwrap_or_else(|| "pending".into()),
                    })
                    .collect();
                let changed = todos != self.todos;
                self.todos = todos;
                changed
            }
            "Edit" | "Write" | "MultiEdit" | "NotebookEdit" => {
                if let Some(path) =
                    text(&input, "file_path").or_else(|| text(&input, "notebook_path"))
                    && !self.files.contains(&path)
                {
                    self.files_changed += 1;
                    if self.files.len() < MAX_ITEMS {
                        self.files.insert(path);
                    }
                }
                false
            }
            "Bash" => {
                if let (Some(id), Some(command)) = (text(block, "id"), text(&input, "command")) {
                    let run = CommandRun {
                        command,
                        exit: None,
                        failed: None,
                    };
                    if self.pending.len() < MAX_ITEMS {
                        self.pending.insert(id, run);
                    }
                }
                false
            }
            _ => false,
        }
    }

    fn tool_results(&mut self, v: &Value) {
        let blocks = v
            .get("message")
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            let Some(mut run) = text(block, "tool_use_id").and_then(|id| self.pending.remove(&id))
            else {
                continue;
            };
            let failed = block
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let output = result_text(block.get("content"));
            run.exit = exit_code(&output).or((!failed).then_some(0));
            run.failed = Some(failed);
            let is_test = looks_like_a_test(&run.command);
            let last_is_test = self
                .last_test
                .as_ref()
                .is_some_and(|l| looks_like_a_test(&l.command));
            if is_test || !last_is_test {
                self.last_test = Some(run);
            }
        }
    }

    /// Top-level turns so far.
    pub fn turns(&self) -> u32 {
        u32::try_from(self.turns.len()).unwrap_or(u32::MAX)
    }

    /// Tokens so far, every message counted once.
    pub fn tokens(&self) -> Tokens {
        self.messages
            .values()
            .fold(Tokens::default(), |sum, (_, t)| sum.add(*t))
    }

    /// Estimated spend so far at `prices`.
    pub fn cost_usd(&self, prices: &Prices) -> f64 {
        self.messages
            .values()
            .map(|(model, t)| t.cost(prices.of(model)))
            .sum()
    }

    /// Files the agent edited or wrote so far (up to the first hundred).
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(String::as_str)
    }

    /// The todo item in progress, if any.
    pub fn current_todo(&self) -> Option<&Todo> {
        self.todos.iter().find(|t| t.status == "in_progress")
    }
}

/// The budgets a run is held to while it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Budgets {
    pub cost_usd: f64,
    /// What the cost budget is, for the Spike: `JOURNEYMAN_TASK_BUDGET_USD=$5.00`, or what was left
    /// of the pod's hourly or daily budget when the run began.
    pub cost_named: String,
    pub max_turns: u32,
    /// No tool call and no change in the checkout for this long.
    pub stall: Duration,
}

/// Which budget a run crossed, with the figures.
#[derive(Debug, Clone, PartialEq)]
pub enum Breach {
    Cost {
        spent_usd: f64,
        budget_usd: f64,
        named: String,
    },
    Turns {
        turns: u32,
        max: u32,
    },
    Stall {
        quiet: Duration,
        limit: Duration,
    },
}

impl Breach {
    /// The metric label of the budget.
    pub fn label(&self) -> &'static str {
        match self {
            Breach::Cost { .. } => "cost",
            Breach::Turns { .. } => "turns",
            Breach::Stall { .. } => "stall",
        }
    }
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Cost {
                spent_usd,
                budget_usd,
                named,
            } => write!(
                f,
                "the run crossed its cost budget: ${spent_usd:.4} spent (estimated from the stream's usage) against ${budget_usd:.2} ({named})"
            ),
            Breach::Turns { turns, max } => write!(
                f,
                "the run crossed its turn budget: {turns} turns against JOURNEYMAN_MAX_TURNS={max}"
            ),
            Breach::Stall { quiet, limit } => write!(
                f,
                "the run stalled: no tool call and no change in the checkout for {}s (JOURNEYMAN_STALL_TIMEOUT={}s)",
                quiet.as_secs(),
                limit.as_secs()
            ),
        }
    }
}

/// Whether the run has crossed a budget. `quiet` is how long since the last sign of work (a tool
/// call, or a change in the checkout), as the caller measured it.
pub fn breach(live: &Live, prices: &Prices, b: &Budgets, quiet: Duration) -> Option<Breach> {
    let spent = live.cost_usd(prices);
    if spent > b.cost_usd {
        return Some(Breach::Cost {
            spent_usd: spent,
            budget_usd: b.cost_usd,
            named: b.cost_named.clone(),
        });
    }
    if live.turns() > b.max_turns {
        return Some(Breach::Turns {
            turns: live.turns(),
            max: b.max_turns,
        });
    }
    (quiet >= b.stall).then_some(Breach::Stall {
        quiet,
        limit: b.stall,
    })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(cut)
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
}

fn usage(u: &Value) -> Tokens {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Tokens {
        input: n("input_tokens"),
        output: n("output_tokens"),
        cache_read: n("cache_read_input_tokens"),
        cache_write: n("cache_creation_input_tokens"),
    }
}

/// A tool result's content: a string, or a list of text blocks.
fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.chars().take(MAX_TEXT).collect(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<String>()
            .chars()
            .take(MAX_TEXT)
            .collect(),
        _ => String::new(),
    }
}

/// Claude Code's Bash tool starts a failed command's result with `Exit code N`.
fn exit_code(output: &str) -> Option<i32> {
    let rest = output.trim_start().strip_prefix("Exit code ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn looks_like_a_test(command: &str) -> bool {
    const WORDS: [&str; 10] = [
        "test", "tests", "pytest", "nextest", "check", "jest", "vitest", "spec", "clippy", "lint",
    ];
    command
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| WORDS.contains(&w))
}

#[cfg(test)]
mod tests;
