//! A scripted stand-in for the `claude` CLI: same arguments, same JSON result, no model.
//!
//! Why this exists: the worker's tests and `journeyman demo` need an agent that behaves like the real
//! one (a child process that edits the checkout and prints a result object) but deterministically, on
//! demand, including the ways a real agent goes wrong. Behaviour is chosen by markers in the ticket
//! text (inside the prompt's work_package block), so a test or a demo board drives it through the
//! same path as real work:
//!
//! | marker | behaviour |
//! |---|---|
//! | (none) | append to `WORK_LOG.md`, write `wp-<id>.txt`, print a success result |
//! | `agent:fail` | result with `is_error: true`, subtype `error_during_execution`, exit 1 |
//! | `agent:fail-once` | like `agent:fail` the first time (marker in `$HOME`), then the default edit |
//! | `agent:needs-answer` | like `agent:fail` until the prompt's history block holds a human's `@journeyman` answer |
//! | `agent:crash` | lines on stderr, exit 3, no result |
//! | `agent:hang` | write `AGENT_PID`, sleep forever |
//! | `agent:hold` | write `AGENT_PID`, wait until `$HOME/.journeyman-release-<wp>` exists, then the default edit |
//! | `agent:hang-once` | like `agent:hang` the first time (marker in `$HOME`), then the default edit |
//! | `agent:fork-hang` | start a child that ignores SIGTERM (`CHILD_PID`), write `AGENT_PID`, hang |
//! | `agent:malformed` | print text that is not JSON, exit 0 |
//! | `agent:noop` | success without changes |
//! | `agent:env-dump` | write its environment to `ENV_DUMP.txt`, success |
//! | `agent:leak` | print its environment on stdout and stderr, write it to `debug-env.txt` and into its result (with `agent:fail`: into the failure) |
//! | `agent:echo-prompt` | write the prompt it received to `PROMPT.txt`, success |
//! | `agent:max-turns` | subtype `error_max_turns` after `--max-turns` turns, exit 1 |
//! | `agent:expensive` | success with `total_cost_usd` 50.0 |
//! | `agent:git` | try `git status`: denied when `--disallowedTools` covers git, else run it |
//! | `agent:plan` | a todo list (`TodoWrite`) worked step by step: a file written, `cargo test` failing then passing; then the default edit |
//! | `agent:spend=USD` | `agent:turns=N` (default 20) turns, each costing USD at the worker's default price; stops at its own `--max-budget-usd` (`error_max_budget_usd`) |
//! | `agent:ignore-max-turns` | five turns more than `--max-turns`, as a CLI that ignored its cap would |
//! | `agent:quiet-edits` | edits `quiet.txt` every 100 ms for `agent:quiet-ms=N` (2000) with nothing on its stream |
//! | `agent:step-ms=N` | N ms between the turns of the runs above |
//! | `agent:chatty` | 16 MiB of noise on stdout and stderr, then a success result |
//!
//! Like the real CLI it keeps its sessions under `$HOME/.claude/projects/` and continues one with
//! `--resume <id>` (an unknown one: `No conversation found with session ID`, exit 1, no result);
//! every prompt it receives is appended to `$HOME/journeyman-prompts.log`, so tests can read what
//! the worker told it.
//!
//! What it must never do: need anything beyond the standard library, `serde_json` and `nix`, or
//! accept arguments the real CLI would reject (it fails on unknown options like the real one).
//!
//! It is reachable two ways: the `journeyman-scripted-agent` binary (tests), and the `journeyman`
//! binary itself when it is invoked under that name (a symlink, as busybox does), so `journeyman
//! demo` works from a single built binary.

mod args;
mod stream;
mod sys;

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use args::{Args, parse_args};
use stream::{Stream, Tool};
use sys::*;

/// The name that selects the scripted agent when `journeyman` is invoked through a symlink.
pub const NAME: &str = "journeyman-scripted-agent";

/// The first argument of the forked child used by `agent:fork-hang`.
pub const CHILD_MODE: &str = "--scripted-agent-child-ignoring-sigterm";

/// Whether this process was started as the scripted agent (by name, or as its forked child).
pub fn invoked() -> bool {
    let mut args = std::env::args_os();
    let by_name = args
        .next()
        .is_some_and(|a0| Path::new(&a0).file_name().is_some_and(|n| n == NAME));
    by_name || args.next().is_some_and(|a1| a1 == CHILD_MODE)
}

/// The scripted agent's entry point.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(CHILD_MODE) {
        return child_ignoring_sigterm(argv.get(1).map(String::as_str).unwrap_or("CHILD_PID"));
    }
    let args = match parse_args(argv) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    let prompt = match args.prompt.clone() {
        Some(p) => p,
        None => {
            let mut p = String::new();
            let _ = std::io::stdin().read_to_string(&mut p);
            p
        }
    };
    if !args.print {
        eprintln!("error: the scripted agent only runs non-interactively (-p)");
        return ExitCode::from(1);
    }
    record_prompt(args.resume.as_deref(), &prompt);
    // A session file that is missing or empty holds no conversation to continue.
    if let Some(id) = &args.resume
        && !session_file(id).is_some_and(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
    {
        eprintln!("No conversation found with session ID: {id}");
        return ExitCode::from(1);
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let session = args.resume.clone().unwrap_or_else(|| {
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            std::process::id(),
            nanos % (1 << 48)
        )
    });
    let stream = Stream::new(args.output_format == "stream-json", &session);
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    stream.init(&cwd, &args.allowed);
    Run {
        started: Instant::now(),
        args,
        prompt,
        session,
        stream: std::cell::RefCell::new(stream),
    }
    .act()
}

struct Run {
    started: Instant,
    args: Args,
    prompt: String,
    session: String,
    stream: std::cell::RefCell<Stream>,
}

impl Run {
    /// The work package block of the prompt (markers count only there), or the whole prompt.
    fn ticket(&self) -> &str {
        let p = &self.prompt;
        match (p.find("<work_package>"), p.find("</work_package>")) {
            (Some(a), Some(b)) if a < b => &p[a..b],
            _ => p,
        }
    }

    /// Whether the prompt's history block holds an answer addressed to the fleet.
    fn answered(&self) -> bool {
        let p = &self.prompt;
        match (p.find("<history>"), p.find("</history>")) {
            (Some(a), Some(b)) if a < b => p[a..b].contains("@journeyman"),
            _ => false,
        }
    }

    fn has(&self, marker: &str) -> bool {
        self.ticket().contains(marker)
    }

    fn wp_id(&self) -> String {
        self.ticket()
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .map(|id| id.trim().chars().filter(char::is_ascii_digit).collect())
            .filter(|id: &String| !id.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }

    fn subject(&self) -> String {
        self.ticket()
            .lines()
            .find_map(|l| l.strip_prefix("subject: "))
            .unwrap_or("")
            .to_string()
    }

    fn act(self) -> ExitCode {
        if let Some(code) = self.misbehave() {
            return code;
        }
        if let Some(code) = self.fail() {
            return code;
        }
        if let Some(code) = self.live() {
            return code;
        }
        if self.has("agent:chatty") {
            chatter();
        }
        let (summary, denials) = self.work();
        let spent = self.stream.borrow().cost;
        let cost = if self.has("agent:expensive") {
            50.0
        } else {
            0.01 + spent
        };
        let turns = {
            let mut s = self.stream.borrow_mut();
            let id = self.wp_id();
            s.turn(
                "",
                vec![Tool {
                    name: "Write",
                    input: json!({"file_path": format!("wp-{id}.txt")}),
                    result: format!("File created successfully at: wp-{id}.txt"),
                    is_error: false,
                }],
                20,
            );
            s.turn(&summary, vec![], 20);
            s.turns().max(2)
        };
        self.finish("success", false, &summary, cost, denials, turns)
    }

    /// The ways of going wrong without a result object: crash, print garbage, or hang (hanging
    /// never returns).
    fn misbehave(&self) -> Option<ExitCode> {
        if self.has("agent:crash") {
            eprintln!("scripted agent: starting");
            eprintln!("scripted agent: crashing as the ticket asked (agent:crash)");
            return Some(ExitCode::from(3));
        }
        if self.has("agent:malformed") {
            println!("scripted agent: this is not a JSON result {{\"type\": \"result\", ");
            return Some(ExitCode::SUCCESS);
        }
        if self.has("agent:fork-hang") {
            if let Err(e) = start_child_ignoring_sigterm() {
                eprintln!("scripted agent: cannot start the child: {e}");
                return Some(ExitCode::from(2));
            }
            hang();
        }
        if self.has("agent:hang-once") {
            // Hangs the first time only (a marker under $HOME survives the checkout being cleaned),
            // so a test can kill the worker mid-run and watch the restarted one finish the task.
            let marker = home().join(format!(".journeyman-hang-once-{}", self.wp_id()));
            if !marker.exists() {
                let _ = std::fs::write(&marker, "hung once\n");
                hang();
            }
        } else if self.has("agent:hang") {
            hang();
        }
        if self.has("agent:hold") {
            // Runs until the test releases it: a long run that ends well, on the test's signal.
            write_atomically(Path::new("AGENT_PID"), &std::process::id().to_string());
            let release = home().join(format!(".journeyman-release-{}", self.wp_id()));
            while !release.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        None
    }

    /// The failures reported in a result object: an execution error, or running out of turns.
    fn fail(&self) -> Option<ExitCode> {
        let once = self.has("agent:fail-once") && {
            let marker = home().join(format!(".journeyman-fail-once-{}", self.wp_id()));
            !marker.exists() && std::fs::write(&marker, "failed once\n").is_ok()
        };
        let unanswered = self.has("agent:needs-answer") && !self.answered();
        if once || unanswered || (self.has("agent:fail") && !self.has("agent:fail-once")) {
            eprintln!("scripted agent: failing as the ticket asked (agent:fail)");
            let mut message = "Scripted failure: the ticket asked for agent:fail.".to_string();
            if self.has("agent:leak") {
                let env = environment();
                eprintln!("{env}");
                message.push_str(&format!(" My environment:\n{env}"));
            }
            return Some(self.finish("error_during_execution", true, &message, 0.01, json!([]), 1));
        }
        if self.has("agent:max-turns") {
            return Some(self.finish(
                "error_max_turns",
                true,
                "",
                0.02,
                json!([]),
                self.args.max_turns,
            ));
        }
        None
    }

    /// The work of a successful run: the files the markers ask for, or the default edit unless a
    /// marker says to change nothing. Returns the summary and the permission denials.
    fn work(&self) -> (String, Value) {
        let mut denials = json!([]);
        let mut summary = String::new();
        if self.has("agent:env-dump") {
            write_file("ENV_DUMP.txt", &(environment() + "\n"));
            summary.push_str("Wrote ENV_DUMP.txt. ");
        }
        if self.has("agent:leak") {
            // What a prompt-injected model does when a ticket asks it to print its environment.
            let env = environment();
            println!("{env}");
            eprintln!("{env}");
            write_file("debug-env.txt", &env);
            summary.push_str(&format!("Saved my environment to debug-env.txt:\n{env}\n"));
        }
        if self.has("agent:echo-prompt") {
            write_file("PROMPT.txt", &self.prompt);
            summary.push_str("Wrote PROMPT.txt. ");
        }
        if self.has("agent:git") {
            let (denied, text) = self.try_git();
            if denied {
                denials = json!([{"tool_name": "Bash", "tool_use_id": "toolu_scripted_git",
                    "tool_input": {"command": "git status --porcelain"}}]);
            }
            summary.push_str(&text);
        }
        if !self.changes_nothing() {
            let id = self.wp_id();
            append_file(
                "WORK_LOG.md",
                &format!("- work package {id}: {}\n", self.subject()),
            );
            write_file(
                &format!("wp-{id}.txt"),
                &format!("work package {id} done by the scripted agent\n"),
            );
            summary.push_str(&format!(
                "Appended to WORK_LOG.md and wrote wp-{id}.txt. Verified: the files exist."
            ));
        } else if summary.is_empty() {
            summary.push_str("Nothing to change.");
        }
        (summary, denials)
    }

    /// Markers whose run leaves the checkout as it was.
    ///
    /// (`agent:leak` changes the checkout: its file is the point.)
    fn changes_nothing(&self) -> bool {
        [
            "agent:noop",
            "agent:env-dump",
            "agent:echo-prompt",
            "agent:git",
        ]
        .iter()
        .any(|m| self.has(m))
    }

    /// Runs `git status` unless the disallowed tools cover git (as the real CLI's permission check
    /// would): `(denied, what happened)`.
    fn try_git(&self) -> (bool, String) {
        let denied = self
            .args
            .disallowed
            .iter()
            .any(|t| t == "Bash" || t.starts_with("Bash(git") || t.starts_with("Bash(git:"));
        if denied {
            return (
                true,
                "git status was denied by --disallowedTools. ".to_string(),
            );
        }
        match std::process::Command::new("git")
            .args(["status", "--porcelain"])
            .output()
        {
            Ok(out) => (
                false,
                format!(
                    "git status exited with {}: {} ",
                    out.status,
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            ),
            Err(e) => (false, format!("git could not run: {e}. ")),
        }
    }

    fn finish(
        &self,
        subtype: &str,
        is_error: bool,
        result: &str,
        cost: f64,
        denials: Value,
        turns: u32,
    ) -> ExitCode {
        self.finish_with(subtype, is_error, result, cost, denials, turns, None)
    }

    // The result object's fields, as the real CLI's.
    #[allow(clippy::too_many_arguments)]
    fn finish_with(
        &self,
        subtype: &str,
        is_error: bool,
        result: &str,
        cost: f64,
        denials: Value,
        turns: u32,
        errors: Option<Value>,
    ) -> ExitCode {
        let session = self.session.clone();
        if let Some(file) = session_file(&session) {
            let line = json!({ "type": "user", "prompt": self.prompt }).to_string() + "\n";
            let _ = file.parent().map(std::fs::create_dir_all);
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .and_then(|mut f| f.write_all(line.as_bytes()));
        }
        let duration = self.started.elapsed().as_millis() as u64;
        let mut object = json!({
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": duration,
            "duration_api_ms": 0,
            "num_turns": turns,
            "session_id": session,
            "total_cost_usd": cost,
            "usage": {
                "input_tokens": 100 * u64::from(turns),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 50,
                "output_tokens": 20 * u64::from(turns),
            },
            "permission_denials": denials,
            "terminal_reason": if is_error { "error" } else { "completed" },
            "uuid": session,
        });
        if !result.is_empty() {
            object["result"] = Value::from(result);
        }
        if let Some(errors) = errors {
            object["errors"] = errors;
        }
        if self.args.output_format != "text" {
            println!("{object}");
        } else {
            println!("{result}");
        }
        if is_error {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}
