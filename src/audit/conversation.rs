//! The conversation so far on a work package, as the agent reads it: earlier attempts (from the
//! worker's own events), the Spikes filed for it with what humans wrote on them and how they were
//! closed, and what humans wrote on the work package (and on its Epic and story since the work
//! began). Pure: trails in, an ordered list of items out; the prompt escapes and bounds them.
//!
//! Order is importance: on rework, the reviewer's words first; then the Spikes, newest first (a
//! question and its answer); then the attempts, newest first; then every other human comment,
//! oldest first. The worker's own comments are shown as attempts, never repeated as human text.

use chrono::{DateTime, Utc};

use super::event::Event;
use super::history::{Entry, History, Said};

/// One item of the conversation: a heading line and its text (both data, escaped by the prompt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub heading: String,
    pub body: String,
}

/// A Spike filed for the work package, as the board has it now.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeThread {
    pub id: u64,
    pub subject: String,
    /// Its description now (a human may have edited the worker's text, or answered in it).
    pub description: String,
    /// Its status name, and whether that status is closed.
    pub status: String,
    pub closed: bool,
    pub history: History,
}

/// Another ticket whose comments belong to the conversation (the Epic, the parent story).
#[derive(Debug, Clone, PartialEq)]
pub struct Context<'a> {
    /// How the item names it, e.g. `Epic #3`.
    pub label: String,
    pub history: &'a History,
}

/// The conversation for work package `wp` with trail `history`.
pub fn conversation(
    wp: u64,
    history: &History,
    spikes: &[SpikeThread],
    context: &[Context<'_>],
    rework: bool,
) -> Vec<Item> {
    let mut items = Vec::new();
    let last_push = history
        .entries
        .iter()
        .rposition(|e| matches!(e.said, Said::Worker(Event::Pushed { .. })));
    let rework_from = if rework { last_push } else { None };
    if let Some(from) = rework_from {
        for e in &history.entries[from + 1..] {
            if let Said::Human(text) = &e.said {
                items.push(Item {
                    heading: format!("REWORK requested by {} ({}) on #{wp}", who(e), when(e.at)),
                    body: text.clone(),
                });
            }
        }
    }
    for s in spikes.iter().rev() {
        items.push(spike_item(s));
    }
    let mut attempts = attempts(history);
    attempts.reverse();
    items.extend(attempts);
    let reworked = |i: usize| rework_from.is_some_and(|from| i > from);
    for (i, e) in history.entries.iter().enumerate() {
        if let Said::Human(text) = &e.said
            && !reworked(i)
        {
            items.push(Item {
                heading: format!("{} wrote on #{wp} ({})", who(e), when(e.at)),
                body: text.clone(),
            });
        }
    }
    let began = first_start(history);
    for c in context {
        for e in &c.history.entries {
            if let Said::Human(text) = &e.said
                && began.is_none_or(|b| e.at.is_none_or(|at| at >= b))
            {
                items.push(Item {
                    heading: format!("{} wrote on {} ({})", who(e), c.label, when(e.at)),
                    body: text.clone(),
                });
            }
        }
    }
    items
}

/// Who wrote a comment, as the board names them.
fn who(e: &Entry) -> String {
    e.author.clone().unwrap_or_else(|| "someone".into())
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "time unknown".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// When the work on the package began: its first start.
fn first_start(history: &History) -> Option<DateTime<Utc>> {
    history
        .entries
        .iter()
        .find(|e| matches!(e.said, Said::Worker(Event::Starting { .. })))
        .and_then(|e| e.at)
}

/// The attempts on the trail, oldest first: each begins with a start (claim, resume or takeover)
/// and ends with its outcome.
fn attempts(history: &History) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    let mut current: Option<(String, Option<String>)> = None;
    for e in &history.entries {
        let Said::Worker(event) = &e.said else {
            continue;
        };
        let start = match event {
            Event::Starting { pod, .. } => Some(format!("claimed by pod {pod}")),
            Event::Resuming { pod } => Some(format!("resumed by pod {pod} after a restart")),
            Event::TookOver {
                pod,
                from,
                epic: false,
                ..
            } => Some(format!("taken over by pod {pod} from pod {from}")),
            _ => None,
        };
        if let Some(how) = start {
            if let Some((h, _)) = current.take() {
                out.push(attempt_item(
                    out.len() + 1,
                    &h,
                    "ended without a report (the run died)",
                    None,
                ));
            }
            current = Some((format!("{} {how}", when(e.at)), None));
            continue;
        }
        if let (Event::Usage(u), Some((_, session))) = (event, current.as_mut()) {
            *session = Some(u.session.clone());
            continue;
        }
        if let Some(outcome) = outcome(event)
            && let Some((h, session)) = current.take()
        {
            out.push(attempt_item(
                out.len() + 1,
                &h,
                &outcome,
                session.as_deref(),
            ));
        }
    }
    if let Some((h, session)) = current {
        out.push(attempt_item(
            out.len() + 1,
            &h,
            "still running or died",
            session.as_deref(),
        ));
    }
    out
}

fn attempt_item(n: usize, heading: &str, outcome: &str, session: Option<&str>) -> Item {
    let session = session.map_or(String::new(), |s| format!(" (agent session {s})"));
    Item {
        heading: format!("attempt {n}: {heading}{session}"),
        body: outcome.to_string(),
    }
}

/// What an outcome event says about its attempt.
fn outcome(event: &Event) -> Option<String> {
    Some(match event {
        Event::Pushed { commit, branch } => {
            format!("pushed commit {commit} to branch {branch}; set to done for review")
        }
        Event::Failed { reason, spike, .. } => format!("failed: {reason} (Spike #{spike})"),
        Event::Escalated { reason, spike, .. } => format!("escalated: {reason} (Spike #{spike})"),
        Event::EnvironmentProblem { reason, .. } => {
            format!("the pod's environment failed (not the ticket's fault): {reason}")
        }
        Event::Released { reason, .. } => format!("released: {reason}"),
        Event::Refused { what, reason, .. } => {
            format!("the board refused to {what}: {reason}")
        }
        _ => return None,
    })
}

fn spike_item(s: &SpikeThread) -> Item {
    let state = if s.closed {
        format!("closed ({})", s.status)
    } else {
        format!("open ({})", s.status)
    };
    let mut body = format!("{}\n\n{}", s.subject, s.description);
    for e in &s.history.entries {
        match &e.said {
            Said::Human(text) => body.push_str(&format!(
                "\n\n{} answered ({}):\n{text}",
                who(e),
                when(e.at)
            )),
            Said::Worker(ev) => body.push_str(&format!(
                "\n\n(journeyman: {})",
                ev.render().trim_start_matches(super::PREFIX)
            )),
            Said::Board(_) => {}
        }
    }
    Item {
        heading: format!(
            "Spike #{} (a question journeyman asked a human), {state}",
            s.id
        ),
        body,
    }
}
