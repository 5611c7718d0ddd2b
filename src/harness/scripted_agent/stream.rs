//! The scripted agent's `--output-format stream-json` (with `--verbose`, as the real CLI demands in
//! print mode): one JSON object per line, as `claude` 2.1.330 prints them: a `system` init, an
//! `assistant` event per message (its `usage`, its text or `tool_use` blocks), a `user` event with
//! each tool's result, and the `result` object last. With `json` or `text` only the result is
//! printed, as before.
//!
//! The runs that only show while they happen are scripted here: a plan worked step by step
//! (`agent:plan`), spending by the turn (`agent:spend=USD`), a CLI that ignores its turn cap
//! (`agent:ignore-max-turns`) and a run that edits files without a tool call in its stream
//! (`agent:quiet-edits`). Pacing comes from the ticket: `agent:step-ms=N` between turns.
//!
//! Its model, `claude-scripted-1`, is in no price table: the worker prices it at its dearest
//! entry (Opus: $5/$25 per million tokens by default), while the scripted agent's own cost, like
//! the real CLI's, uses its own prices: $1/$5. So the worker's live estimate is five times the
//! agent's own figure, and a worker budget stops a spending run well before the agent's own
//! `--max-budget-usd` would.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::write_file;

/// The model the scripted agent says it is.
pub(super) const MODEL: &str = "claude-scripted-1";
/// The scripted agent's own price per output token (USD), for its `total_cost_usd`.
const OWN_OUTPUT_PRICE: f64 = 5.0 / 1e6;
/// The worker's default price of an unknown model per output token (its dearest entry).
const WORKER_OUTPUT_PRICE: f64 = 25.0 / 1e6;

/// The stream, and what the run has spent and done so far.
pub(super) struct Stream {
    on: bool,
    session: String,
    turns: u32,
    /// The agent's own cost so far, at its own prices.
    pub(super) cost: f64,
    tool: u32,
}

/// One tool call of a turn and what it returned.
pub(super) struct Tool {
    pub name: &'static str,
    pub input: Value,
    pub result: String,
    pub is_error: bool,
}

impl Stream {
    pub(super) fn new(on: bool, session: &str) -> Stream {
        Stream {
            on,
            session: session.to_string(),
            turns: 0,
            cost: 0.0,
            tool: 0,
        }
    }

    fn print(&self, v: &Value) {
        if self.on {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{v}");
            let _ = out.flush();
        }
    }

    pub(super) fn init(&self, cwd: &str, tools: &[String]) {
        self.print(&json!({
            "type": "system", "subtype": "init", "cwd": cwd, "session_id": self.session,
            "tools": tools, "model": MODEL, "permissionMode": "default",
        }));
    }

    /// One assistant message: `text` and `tools`, using `output_tokens`; then the tools' results.
    pub(super) fn turn(&mut self, text: &str, tools: Vec<Tool>, output_tokens: u64) {
        self.turns += 1;
        self.cost += output_tokens as f64 * OWN_OUTPUT_PRICE;
        let id = format!("msg_scripted_{:04}", self.turns);
        let mut content = vec![];
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        let mut results = vec![];
        for t in tools {
            self.tool += 1;
            let tool_id = format!("toolu_scripted_{:04}", self.tool);
            content
                .push(json!({"type": "tool_use", "id": tool_id, "name": t.name, "input": t.input}));
            results.push(json!({"type": "tool_result", "tool_use_id": tool_id,
                                "content": t.result, "is_error": t.is_error}));
        }
        // The real CLI prints each content block as its own event with the message's usage
        // repeated: so does this, so a reader that adds them up counts a message many times.
        for block in content {
            self.print(&json!({
                "type": "assistant", "parent_tool_use_id": null, "session_id": self.session,
                "message": {"id": id, "type": "message", "role": "assistant", "model": MODEL,
                            "content": [block], "stop_reason": null,
                            "usage": {"input_tokens": 100, "output_tokens": output_tokens}},
            }));
        }
        if !results.is_empty() {
            self.print(&json!({
                "type": "user", "parent_tool_use_id": null, "session_id": self.session,
                "message": {"role": "user", "content": results},
            }));
        }
    }

    pub(super) fn turns(&self) -> u32 {
        self.turns
    }
}

/// Output tokens that cost `usd` at the worker's default price of the scripted model.
pub(super) fn tokens_costing(usd: f64) -> u64 {
    (usd / WORKER_OUTPUT_PRICE).round() as u64
}

/// The todo list with item `current` (0-based) in progress and those before it done.
pub(super) fn todos(items: &[&str], current: usize) -> Tool {
    let todos: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let status = match i.cmp(&current) {
                std::cmp::Ordering::Less => "completed",
                std::cmp::Ordering::Equal => "in_progress",
                std::cmp::Ordering::Greater => "pending",
            };
            json!({"content": t, "status": status, "activeForm": t})
        })
        .collect();
    Tool {
        name: "TodoWrite",
        input: json!({"todos": todos}),
        result: "Todos have been modified successfully.".into(),
        is_error: false,
    }
}

/// A `Write` of `path` with `content` (the file is written for real).
pub(super) fn write(path: &str, content: &str) -> Tool {
    super::write_file(path, content);
    Tool {
        name: "Write",
        input: json!({"file_path": path, "content": content}),
        result: format!("File created successfully at: {path}"),
        is_error: false,
    }
}

/// A `Bash` call and the result the real tool would give (`Exit code N` first on a failure).
pub(super) fn bash(command: &str, exit: i32, output: &str) -> Tool {
    Tool {
        name: "Bash",
        input: json!({"command": command, "description": command}),
        result: if exit == 0 {
            output.to_string()
        } else {
            format!("Exit code {exit}\n{output}")
        },
        is_error: exit != 0,
    }
}

pub(super) fn pause(ms: u64) {
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

impl super::Run {
    /// The number after `agent:<key>=` in the ticket, if any.
    fn param(&self, key: &str) -> Option<f64> {
        let at = self.ticket().find(&format!("agent:{key}="))?;
        let rest = &self.ticket()[at + key.len() + 7..];
        let value: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        value.parse().ok()
    }

    /// The runs that show while they happen (see `stream`): a plan, spending, an ignored turn
    /// cap, quiet edits. `Some` ends the run (the agent's own budget stopped it).
    pub(super) fn live(&self) -> Option<ExitCode> {
        let step = self.param("step-ms").unwrap_or(0.0) as u64;
        let mut s = self.stream.borrow_mut();
        if self.has("agent:plan") {
            let items = ["Read the code", "Make the change", "Run the tests"];
            s.turn("I will plan first.", vec![todos(&items, 0)], 50);
            pause(step);
            s.turn("", vec![bash("cat README.md", 0, "# demo")], 50);
            pause(step);
            s.turn(
                "",
                vec![todos(&items, 1), write("plan-step.txt", "changed\n")],
                80,
            );
            pause(step);
            s.turn(
                "",
                vec![todos(&items, 2), bash("cargo test", 101, "1 test failed")],
                60,
            );
            pause(step);
            s.turn(
                "",
                vec![bash("cargo test", 0, "test result: ok. 1 passed")],
                60,
            );
            pause(step);
        }
        if let Some(usd) = self.param("spend") {
            let turns = self.param("turns").unwrap_or(20.0) as u32;
            for i in 0..turns {
                s.turn(
                    "",
                    vec![write(&format!("spend-{i}.txt"), "x\n")],
                    tokens_costing(usd),
                );
                if let Some(max) = self.args.max_budget_usd
                    && s.cost > max
                {
                    let turns = s.turns();
                    let spent = s.cost;
                    drop(s);
                    return Some(self.finish_over_budget(max, spent, turns));
                }
                pause(step);
            }
        }
        if self.has("agent:ignore-max-turns") {
            for _ in 0..self.args.max_turns + 5 {
                s.turn("", vec![bash("true", 0, "")], 10);
                pause(step);
            }
        }
        if self.has("agent:quiet-edits") {
            // Edits the checkout for a while without a word on its stream.
            let ms = self.param("quiet-ms").unwrap_or(2000.0) as u64;
            let until = Instant::now() + Duration::from_millis(ms);
            let mut n = 0u64;
            while Instant::now() < until {
                n += 1;
                write_file("quiet.txt", &"x".repeat(n as usize % 4096));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        None
    }

    /// The real CLI's end at its own `--max-budget-usd`: subtype `error_max_budget_usd`, exit 1.
    fn finish_over_budget(&self, max: f64, spent: f64, turns: u32) -> ExitCode {
        eprintln!("scripted agent: reached the maximum budget (${max})");
        self.finish_with(
            "error_max_budget_usd",
            true,
            "",
            spent,
            json!([]),
            turns,
            Some(json!([format!("Reached maximum budget (${max})")])),
        )
    }
}
