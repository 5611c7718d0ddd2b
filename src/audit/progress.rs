//! The two comments of a run in progress: the agent's plan as a checklist (posted once, when the
//! agent first writes its todo list), and the run's progress (one comment per run, edited in
//! place as the run goes on). Rendered and parsed here, as every other event is in `event.rs` and
//! `parse.rs`; the fields are typed, so what is read back equals what was written.

use std::fmt::Write as _;

use super::text::{PREFIX, truncate};

/// The longest text kept in a plan item, a command or the current step.
const ITEM_CHARS: usize = 160;
/// Most plan items shown.
pub const MAX_PLAN_ITEMS: usize = 30;

const PLAN: &str =
    "` **plan** (the agent's todo list; progress follows in one comment, edited in place):";
const PROGRESS: &str =
    "` **progress** of the run (edited in place, at most once per update interval):";
const NOW_MARK: &str = "**now:** ";

/// One item of the agent's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    pub text: String,
    pub state: ItemState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    Pending,
    InProgress,
    Done,
}

impl PlanItem {
    /// An item from the agent's todo status (`pending`, `in_progress`, `completed`).
    pub fn new(text: &str, status: &str) -> PlanItem {
        PlanItem {
            text: clean(text),
            state: match status {
                "completed" => ItemState::Done,
                "in_progress" => ItemState::InProgress,
                _ => ItemState::Pending,
            },
        }
    }
}

/// The last test command and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    pub command: String,
    /// `None` when the run did not say (a failure without an exit code, or still running).
    pub exit: Option<i32>,
    pub failed: bool,
}

/// The run so far, as the progress comment shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub pod: String,
    pub minutes: u64,
    pub turns: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Estimated from the stream's usage, at four decimals.
    pub cost_usd: f64,
    pub files_changed: u64,
    pub last_test: Option<TestRun>,
    /// The plan item in progress, and where it is in the plan (`(k, n)`).
    pub now: Option<(String, usize, usize)>,
    /// Human comments on the work package since the run began (the next run reads them).
    pub new_comments: u32,
}

impl Progress {
    /// Rounds the cost and cleans the texts as rendering would, so a value compares equal to what
    /// is read back.
    pub fn normalised(mut self) -> Progress {
        self.cost_usd = if self.cost_usd.is_finite() && self.cost_usd > 0.0 {
            (self.cost_usd * 10_000.0).round() / 10_000.0
        } else {
            0.0
        };
        if let Some(t) = &mut self.last_test {
            t.command = clean(&t.command);
            if let Some(code) = t.exit {
                t.failed = code != 0;
            }
        }
        if let Some((text, _, _)) = &mut self.now {
            *text = clean(text);
        }
        self
    }
}

/// Plan text: one line, no backticks (it is shown in and around code spans), bounded.
fn clean(text: &str) -> String {
    let line = text
        .lines()
        .next()
        .unwrap_or("")
        .replace(['\r', '\t'], " ")
        .replace('`', "'");
    truncate(line.trim(), ITEM_CHARS)
}

pub(super) fn render_plan(pod: &str, items: &[PlanItem]) -> String {
    let mut s = format!("{PREFIX}pod `{pod}{PLAN}");
    for item in items.iter().take(MAX_PLAN_ITEMS) {
        let (mark, now) = match item.state {
            ItemState::Done => ("x", ""),
            ItemState::InProgress => (" ", NOW_MARK),
            ItemState::Pending => (" ", ""),
        };
        let _ = write!(s, "\n- [{mark}] {now}{}", item.text);
    }
    s
}

pub(super) fn render_progress(p: &Progress) -> String {
    let mut s = format!("{PREFIX}pod `{}{PROGRESS}", p.pod);
    let _ = write!(s, "\n- elapsed: {} min", p.minutes);
    let _ = write!(s, "\n- turns: {}", p.turns);
    let _ = write!(
        s,
        "\n- tokens: {} input / {} output",
        p.input_tokens, p.output_tokens
    );
    let _ = write!(s, "\n- cost so far: ${:.4} (estimated)", p.cost_usd);
    let _ = write!(s, "\n- files changed: {}", p.files_changed);
    match &p.last_test {
        Some(t) => {
            let how = match (t.exit, t.failed) {
                (Some(code), _) => format!("exit code {code}"),
                (None, true) => "failed".to_string(),
                (None, false) => "running".to_string(),
            };
            let _ = write!(s, "\n- last test: `{}`, {how}", t.command);
        }
        None => s.push_str("\n- last test: none yet"),
    }
    match &p.now {
        Some((text, k, n)) => {
            let _ = write!(s, "\n- now: step {k} of {n}: {text}");
        }
        None => s.push_str("\n- now: no plan item in progress"),
    }
    let _ = write!(
        s,
        "\n- new comments since the run began: {} (the next run reads them)",
        p.new_comments
    );
    s
}

/// A plan or progress comment's body (after `PREFIX` and "pod `"), or `None`.
pub(super) fn parse_plan(rest: &str) -> Option<(String, Vec<PlanItem>)> {
    let (pod, rest) = rest.split_once(PLAN)?;
    let mut items = Vec::new();
    for line in rest.split('\n').skip(1) {
        let (state, text) = if let Some(t) = line.strip_prefix("- [x] ") {
            (ItemState::Done, t)
        } else if let Some(t) = line.strip_prefix("- [ ] ") {
            match t.strip_prefix(NOW_MARK) {
                Some(t) => (ItemState::InProgress, t),
                None => (ItemState::Pending, t),
            }
        } else {
            return None;
        };
        items.push(PlanItem {
            text: text.to_string(),
            state,
        });
    }
    if !rest.is_empty() && !rest.starts_with('\n') {
        return None;
    }
    Some((word(pod)?, items))
}

pub(super) fn parse_progress(rest: &str) -> Option<Progress> {
    let (pod, rest) = rest.split_once(PROGRESS)?;
    let mut lines = rest.strip_prefix('\n')?.split('\n');
    let mut field = |key: &str| lines.next()?.strip_prefix("- ")?.strip_prefix(key);
    let minutes = field("elapsed: ")?.strip_suffix(" min")?.parse().ok()?;
    let turns = field("turns: ")?.parse().ok()?;
    let (input, output) = field("tokens: ")?.split_once(" input / ")?;
    let cost = field("cost so far: $")?.strip_suffix(" (estimated)")?;
    let files_changed = field("files changed: ")?.parse().ok()?;
    let last_test = match field("last test: ")? {
        "none yet" => None,
        t => {
            let (command, how) = t.strip_prefix('`')?.rsplit_once("`, ")?;
            let (exit, failed) = match how {
                "failed" => (None, true),
                "running" => (None, false),
                code => {
                    let code: i32 = code.strip_prefix("exit code ")?.parse().ok()?;
                    (Some(code), code != 0)
                }
            };
            Some(TestRun {
                command: command.to_string(),
                exit,
                failed,
            })
        }
    };
    let now = match field("now: ")? {
        "no plan item in progress" => None,
        t => {
            let (k, rest) = t.strip_prefix("step ")?.split_once(" of ")?;
            let (n, text) = rest.split_once(": ")?;
            Some((text.to_string(), k.parse().ok()?, n.parse().ok()?))
        }
    };
    let new_comments = field("new comments since the run began: ")?
        .strip_suffix(" (the next run reads them)")?
        .parse()
        .ok()?;
    if lines.next().is_some() {
        return None;
    }
    Some(Progress {
        pod: word(pod)?,
        minutes,
        turns,
        input_tokens: input.parse().ok()?,
        output_tokens: output.strip_suffix(" output")?.parse().ok()?,
        cost_usd: cost.parse().ok()?,
        files_changed,
        last_test,
        now,
        new_comments,
    })
}

fn word(s: &str) -> Option<String> {
    (!s.is_empty() && !s.contains(char::is_whitespace) && !s.contains('`')).then(|| s.to_string())
}
