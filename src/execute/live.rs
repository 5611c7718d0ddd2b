//! The run on the ticket while it happens: the agent's plan posted once as a checklist, one
//! progress comment edited in place (at most once per `JOURNEYMAN_PROGRESS_EVERY`), and the run's
//! spend so far counted in the pod's hourly and daily windows.
//!
//! What it must never do: notify anyone of a routine update (plan and progress are routine; edits
//! notify nobody on OpenProject), post more than one progress comment per run (a failed edit is
//! retried at the next interval, never replaced by a new comment), or hold the run up: it reads the
//! agent runner's published state and writes to the board; the run goes on whatever the board says.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Executor;
use crate::agent::live::{Live, Prices};
use crate::agent::{Agent, AgentFailure, RunBudget};
use crate::audit::Question;
use crate::audit::{Audit, Event, PlanItem, Posted, Progress, TestRun};
use crate::budget::Budget;
use crate::task::{FailureKind, Outcome};

impl<A: Agent> Executor<A> {
    /// How a failed run ends the task: a shutdown releases it, the environment's failure pauses
    /// the pod, any other is the agent's (a Spike).
    pub(super) fn failed_run(&self, f: AgentFailure) -> Outcome {
        if matches!(f, AgentFailure::Cancelled) {
            return Outcome::Interrupted {
                reason: "the pod is shutting down; the agent was stopped before it finished and nothing was committed".into(),
            };
        }
        let kind = if f.is_environment() {
            FailureKind::Environment(Question::AgentCommand)
        } else {
            FailureKind::Agent
        };
        if let AgentFailure::Budget { breach, .. } = &f {
            metrics::counter!("journeyman_tasks_over_budget_total", "budget" => breach.label())
                .increment(1);
        }
        Outcome::Failed {
            kind,
            reason: f.reason(),
            evidence: f.evidence(),
        }
    }

    /// The run's live budgets: the task's cost budget, or what is left of the pod's hourly or
    /// daily budget if that is less; the stall budget.
    pub(super) fn run_budget(&self) -> RunBudget {
        let task = self.limits.task_budget_usd;
        let mut budget = RunBudget {
            cost_usd: task,
            cost_named: format!("JOURNEYMAN_TASK_BUDGET_USD=${task:.2}"),
            stall: self.limits.stall_timeout,
        };
        if let Some(b) = &self.budget
            && let Ok(b) = b.lock()
        {
            let (hour, day) = b.remaining(chrono::Utc::now());
            if hour < budget.cost_usd {
                budget.cost_usd = hour;
                budget.cost_named =
                    "what was left of JOURNEYMAN_HOURLY_BUDGET_USD when the run began".to_string();
            }
            if day < budget.cost_usd {
                budget.cost_usd = day;
                budget.cost_named =
                    "what was left of JOURNEYMAN_DAILY_BUDGET_USD when the run began".to_string();
            }
        }
        budget
    }
}

/// Turns the runner's published state into the ticket's plan and progress comments.
pub(super) struct Reporter<'a> {
    pub audit: &'a Audit,
    pub pod: &'a str,
    pub every: Duration,
    pub prices: &'a Prices,
    pub budget: Option<&'a Arc<Mutex<Budget>>>,
    pub new_comments: &'a AtomicU32,
}

impl Reporter<'_> {
    /// Until `done`: follows `rx`; returns the last state seen (its spend is what the run cost if
    /// the run ends without a result object).
    pub async fn run(self, mut rx: watch::Receiver<Live>, done: &CancellationToken) -> Live {
        let started = Instant::now();
        let mut plan_posted = false;
        let mut posted: Option<Posted> = None;
        let mut shown: Option<Progress> = None;
        let mut next_at = started + self.every;
        loop {
            tokio::select! {
                () = done.cancelled() => break,
                changed = rx.changed() => if changed.is_err() { break },
            }
            let live = rx.borrow_and_update().clone();
            if let Some(b) = self.budget
                && let Ok(mut b) = b.lock()
            {
                b.running(live.cost_usd(self.prices));
            }
            if !plan_posted && !live.todos.is_empty() {
                plan_posted = true;
                self.audit.post(&self.plan(&live)).await;
            }
            if Instant::now() < next_at {
                continue;
            }
            let progress = self.progress(&live, started.elapsed());
            if shown.as_ref() == Some(&progress) {
                continue;
            }
            next_at = Instant::now() + self.every;
            let event = Event::Progress(progress.clone());
            let ok = match posted {
                None => {
                    posted = self.audit.post_editable(&event).await;
                    posted.is_some()
                }
                Some(p) => self.audit.edit(p, &event).await,
            };
            if ok {
                shown = Some(progress);
            }
        }
        rx.borrow().clone()
    }

    fn plan(&self, live: &Live) -> Event {
        Event::Plan {
            pod: self.pod.to_string(),
            items: live
                .todos
                .iter()
                .map(|t| PlanItem::new(&t.text, &t.status))
                .collect(),
        }
    }

    fn progress(&self, live: &Live, elapsed: Duration) -> Progress {
        let t = live.tokens();
        let now = live.todos.iter().enumerate().find_map(|(i, t)| {
            (t.status == "in_progress").then(|| (t.text.clone(), i + 1, live.todos.len()))
        });
        Progress {
            pod: self.pod.to_string(),
            minutes: elapsed.as_secs() / 60,
            turns: live.turns(),
            input_tokens: t.input + t.cache_read + t.cache_write,
            output_tokens: t.output,
            cost_usd: live.cost_usd(self.prices),
            files_changed: live.files_changed as u64,
            last_test: live.last_test.as_ref().map(|c| TestRun {
                command: c.command.clone(),
                exit: c.exit,
                failed: c.failed.unwrap_or(false),
            }),
            now,
            new_comments: self.new_comments.load(Ordering::Relaxed),
        }
        .normalised()
    }
}
