//! Reading the worker's comments back into [`Event`]s: the inverse of [`Event::render`].
//!
//! A comment is the worker's only if it parses as one of its events in full (prefix, fixed
//! phrases and all); anything else is a human's. Free text is matched from the right, against
//! the fixed phrase that follows it, so a reason that happens to contain a fixed phrase cannot
//! shift the fields. Pure and total: any text in, `Some(event)` or `None` out, never a panic.

use super::event::{Event, PREFIX, Question, RunEnd, Usage, phrase::*};
use super::progress;

/// The worker event this comment records, or `None` for anything else (a human's comment).
pub fn parse(markdown: &str) -> Option<Event> {
    let body = markdown.strip_prefix(PREFIX)?;
    if let Some(rest) = body.strip_prefix("pod `") {
        return pod_first(rest);
    }
    run(body).or_else(|| outcome(body)).or_else(|| usage(body))
}

/// The events of a run, from its start to its commit.
fn run(body: &str) -> Option<Event> {
    if let Some(rest) = body.strip_prefix(STARTING) {
        let (pod, rest) = rest.split_once(STARTING_NEXT)?;
        let (owner, rest) = rest.split_once(STARTING_IN)?;
        let rest = rest.strip_suffix(STARTING_END)?;
        let (repo, base) = rest.rsplit_once(STARTING_BASE)?;
        return Some(Event::Starting {
            pod: word(pod)?,
            owner: number(owner)?,
            repo: repo.into(),
            base: base.into(),
        });
    }
    if let Some(rest) = body.strip_prefix(STARTED) {
        let (pod, rest) = rest.split_once("`: repository `")?;
        let rest = rest.strip_suffix("`.")?;
        let (rest, base_commit) = rest.rsplit_once("`, base commit `")?;
        let (repo, branch) = rest.rsplit_once("`, branch `")?;
        return Some(Event::Started {
            pod: word(pod)?,
            repo: repo.into(),
            branch: branch.into(),
            base_commit: base_commit.into(),
        });
    }
    if let Some(rest) = body.strip_prefix("found commit `") {
        return Some(Event::PushingUnpushed {
            commit: word(rest.strip_suffix(UNPUSHED)?)?,
        });
    }
    if let Some(rest) = body.strip_prefix("commit `") {
        let (commit, branch) = rest.strip_suffix(ALREADY_END)?.split_once(ALREADY)?;
        return Some(Event::AlreadyPushed {
            commit: word(commit)?,
            branch: branch.into(),
        });
    }
    if let Some(rest) = body.strip_prefix(ENV_READY) {
        let (seconds, lock) = rest.strip_suffix("`).")?.split_once(ENV_READY_LOCK)?;
        return Some(Event::EnvironmentReady {
            seconds: seconds.parse().ok()?,
            lock: word(lock)?,
        });
    }
    if let Some(rest) = body.strip_prefix(RESUMED) {
        return Some(Event::Resumed {
            session: word(rest.strip_suffix(RESUMED_END)?)?,
        });
    }
    if let Some(rest) = body.strip_prefix(FRESH) {
        let (session, why) = rest.strip_suffix(FRESH_END)?.split_once("` (")?;
        return Some(Event::FreshSession {
            session: word(session)?,
            why: why.strip_suffix(')')?.into(),
        });
    }
    let rest = body.strip_prefix(LARGE)?;
    Some(Event::SkippedLarge {
        files: rest.split(", ").map(String::from).collect(),
    })
}

/// The events of an outcome and of an Epic's release.
fn outcome(body: &str) -> Option<Event> {
    if let Some(rest) = body.strip_prefix(PUSHED) {
        let (commit, branch) = rest.strip_suffix(PUSHED_END)?.split_once("` to branch `")?;
        return Some(Event::Pushed {
            commit: word(commit)?,
            branch: branch.into(),
        });
    }
    if let Some(rest) = body.strip_prefix(ENVIRONMENT) {
        let (pod, rest) = rest.split_once("`: ")?;
        let question = Question::ALL
            .into_iter()
            .find(|q| rest.ends_with(q.text()))?;
        let reason = rest
            .strip_suffix(question.text())?
            .strip_suffix(ENVIRONMENT_MIDDLE)?;
        return Some(Event::EnvironmentProblem {
            pod: word(pod)?,
            reason: reason.into(),
            question,
        });
    }
    if let Some(rest) = body.strip_prefix(FAILED) {
        let (pod, reason, spike) = spike_line(rest)?;
        return Some(Event::Failed { pod, reason, spike });
    }
    if let Some(rest) = body.strip_prefix(ESCALATED) {
        let (pod, reason, spike) = spike_line(rest)?;
        return Some(Event::Escalated { pod, reason, spike });
    }
    if let Some(rest) = body.strip_prefix(EPIC_STALE) {
        let (previous, rest) = rest.split_once(EPIC_STALE_MIDDLE)?;
        let (stale_after, pod) = rest.strip_suffix("`)")?.rsplit_once(EPIC_STALE_END)?;
        return Some(Event::EpicStale {
            pod: word(pod)?,
            previous: word(previous)?,
            stale_after: stale_after.into(),
        });
    }
    let rest = body.strip_prefix(EPIC_FINISHED)?;
    Some(Event::EpicFinished {
        pod: word(rest.strip_suffix(EPIC_FINISHED_END)?)?,
    })
}

/// The comments that begin with "pod `NAME`".
fn pod_first(rest: &str) -> Option<Event> {
    during_run(rest).or_else(|| pod_event(rest))
}

/// What the pod says while a run goes on: its plan, its progress, work queued behind it.
fn during_run(rest: &str) -> Option<Event> {
    if let Some((pod, items)) = progress::parse_plan(rest) {
        return Some(Event::Plan { pod, items });
    }
    if let Some(p) = progress::parse_progress(rest) {
        return Some(Event::Progress(p));
    }
    let (pod, tail) = rest.split_once('`')?;
    let behind = tail.strip_prefix(QUEUED.trim_start_matches('`'))?;
    Some(Event::Queued {
        pod: word(pod)?,
        behind: number(behind.strip_suffix(QUEUED_END)?)?,
    })
}

fn pod_event(rest: &str) -> Option<Event> {
    let (pod, _) = rest.split_once('`')?;
    let pod = word(pod)?;
    let tail = &rest[pod.len()..];
    if tail == RESUMING {
        return Some(Event::Resuming { pod });
    }
    if let Some(rest) = tail.strip_prefix(REWORK) {
        let (by, first_line) = rest.split_once(": ")?;
        return Some(Event::Rework {
            pod,
            by: by.into(),
            first_line: first_line.into(),
        });
    }
    if tail == EPIC_PAUSED {
        return Some(Event::EpicPaused { pod });
    }
    if let Some(reason) = tail.strip_prefix(RELEASED) {
        return Some(Event::Released {
            pod,
            reason: reason.strip_suffix('.')?.into(),
        });
    }
    if let Some(rest) = tail.strip_prefix(STOPPED) {
        let (what, rest) = rest.split_once(STOPPED_BY)?;
        let (by, after) = rest.split_once(STOPPED_AFTER)?;
        return Some(Event::Stopped {
            pod,
            what: what.into(),
            by: by.into(),
            after: after.into(),
        });
    }
    if let Some(rest) = tail.strip_prefix(ANSWERED) {
        let (by, wp) = rest.strip_suffix(ANSWERED_END)?.rsplit_once(ANSWERED_ON)?;
        return Some(Event::SpikeAnswered {
            pod,
            by: by.into(),
            wp: number(wp)?,
        });
    }
    if let Some(rest) = tail.strip_prefix(REFUSED) {
        let (what, rest) = rest.split_once(": ")?;
        let (reason, fix) = rest.strip_suffix(REFUSED_END)?.rsplit_once(REFUSED_FIX)?;
        return Some(Event::Refused {
            pod,
            what: what.into(),
            reason: reason.into(),
            fix: fix.into(),
        });
    }
    if let Some(child) = tail.strip_prefix(EPIC_GIVEN_BACK) {
        return Some(Event::EpicGivenBack {
            pod,
            child: number(child.strip_suffix(EPIC_GIVEN_BACK_END)?)?,
        });
    }
    let took = tail.strip_prefix(TOOK_OVER)?;
    let (epic, took) = match (
        took.strip_prefix("Epic from pod `"),
        took.strip_prefix("work package from pod `"),
    ) {
        (Some(t), _) => (true, t.strip_suffix('.')?),
        (None, Some(t)) => (false, t.strip_suffix(TOOK_OVER_WP_END)?),
        (None, None) => return None,
    };
    let (from, lease) = took.split_once("`, which showed no activity for ")?;
    Some(Event::TookOver {
        pod,
        from: word(from)?,
        lease: lease.into(),
        epic,
    })
}

/// `POD`: REASON. Filed Spike #N; ...
fn spike_line(rest: &str) -> Option<(String, String, u64)> {
    let (pod, rest) = rest.split_once("`: ")?;
    let (reason, spike) = rest.strip_suffix(SPIKE_END)?.rsplit_once(SPIKE)?;
    Some((word(pod)?, reason.into(), number(spike)?))
}

fn usage(body: &str) -> Option<Event> {
    let (end, rest) = if let Some(r) = body.strip_prefix("execution **complete**: session `") {
        (RunEnd::Complete, r)
    } else {
        (
            RunEnd::Failed,
            body.strip_prefix("agent run **failed**: session `")?,
        )
    };
    let (session, rest) = rest.split_once("`, ")?;
    let (turns, rest) = rest.split_once(" turns, ")?;
    let (input, rest) = rest.split_once(" input / ")?;
    let (output, rest) = rest.split_once(" output tokens, $")?;
    let (cost, seconds) = rest.strip_suffix("s.")?.split_once(", ")?;
    Some(Event::Usage(Usage {
        end,
        session: word(session)?,
        turns: turns.parse().ok()?,
        input_tokens: number(input)?,
        output_tokens: number(output)?,
        cost_usd: cost.parse().ok()?,
        seconds: seconds.parse().ok()?,
    }))
}

/// A name without backticks or spaces (pod names, commits, session ids).
fn word(text: &str) -> Option<String> {
    (!text.is_empty() && !text.contains(['`', ' ', '\n'])).then(|| text.to_string())
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
