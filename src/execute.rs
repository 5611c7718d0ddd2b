//! The real executor: prepares the git workspace, ensures a flake, builds the prompt, runs the agent,
//! then commits and pushes as the orchestrator, writing the audit trail on the ticket as it goes.
//!
//! Idempotent by construction, so a pod killed at any point and restarted resumes without duplicates:
//! every commit carries a `Work-package: #<id>` trailer, and a resumed task first looks for a commit
//! of its own on the branch. Found and pushed: report it. Found but unpushed (killed between commit
//! and push): push it. Not found: run the agent again on a clean tree.
//!
//! Must never: let the agent touch git or credentials (the workspace does), or let ticket text choose
//! the repository or base branch (they come from the allowlist in the task).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::agent::live::Prices;
use crate::agent::prompt::Ticket;
use crate::agent::{Agent, AgentReport};
use crate::audit::{Audit, Event, Question, RunEnd, Usage};
use crate::budget::Budget;
use crate::config::{Config, Limits};
use crate::openproject::hal;
use crate::task::{Execute, FailureKind, Outcome, Task};
use crate::workspace::{BranchStart, Checkout, WorkspaceError, Workspaces, branch_name};

mod live;
mod run;

/// What the agent must check before it finishes, unless configured otherwise.
pub const DEFAULT_VERIFY: &str =
    "Run the project's own tests and checks, if it has any, and make sure they pass.";

/// The trailer that ties a commit to its work package.
pub fn trailer(id: u64) -> String {
    format!("Work-package: #{id}")
}

/// Joins workspace and agent.
pub struct Executor<A: Agent> {
    agent: A,
    workspaces: Workspaces,
    limits: Limits,
    verify: Vec<String>,
    budget: Option<Arc<Mutex<Budget>>>,
    /// `JOURNEYMAN_RESUME_SESSIONS`: continue this pod's last agent session on a work package.
    resume_sessions: bool,
    /// `JOURNEYMAN_MODEL_PRICES`: the run's live spend.
    prices: Prices,
}

impl<A: Agent> Executor<A> {
    pub fn new(agent: A, workspaces: Workspaces, limits: Limits) -> Executor<A> {
        Executor {
            agent,
            workspaces,
            limits,
            verify: vec![DEFAULT_VERIFY.to_string()],
            budget: None,
            resume_sessions: true,
            prices: Prices::default(),
        }
    }

    /// Whether this pod's last agent session on a work package is resumed (default: yes).
    pub fn with_resume_sessions(mut self, resume: bool) -> Executor<A> {
        self.resume_sessions = resume;
        self
    }

    /// Records every run's reported cost in this pod's spend windows.
    pub fn with_budget(mut self, budget: Arc<Mutex<Budget>>) -> Executor<A> {
        self.budget = Some(budget);
        self
    }

    fn record_usage(&self, r: &AgentReport) {
        record_usage(r);
        self.record_spend(r.cost_usd);
    }

    /// Records what a run cost in this pod's spend windows (replacing its live figure).
    fn record_spend(&self, usd: f64) {
        if let Some(b) = &self.budget
            && let Ok(mut b) = b.lock()
        {
            b.record(chrono::Utc::now(), usd);
        }
    }

    pub fn from_config(agent: A, config: &Config) -> Executor<A> {
        Executor::new(
            agent,
            Workspaces::from_config(config),
            config.limits.clone(),
        )
        .with_resume_sessions(config.resume_sessions)
        .with_prices(config.agent.prices.clone())
    }

    /// The price table the run's live spend is estimated with.
    pub fn with_prices(mut self, prices: Prices) -> Executor<A> {
        self.prices = prices;
        self
    }
}

fn ticket(wp: &hal::WorkPackage) -> Ticket {
    Ticket {
        id: wp.id,
        subject: wp.subject.clone(),
        description: wp.description_raw().to_string(),
    }
}

fn workspace_failure(e: &WorkspaceError, what: &str) -> Outcome {
    Outcome::Failed {
        kind: if e.is_environment() {
            FailureKind::Environment(question(e))
        } else {
            FailureKind::Agent
        },
        reason: format!("{what}: {e}"),
        evidence: format!("{e:?}"),
    }
}

/// The commit message: subject and id, a short summary, and trailers.
pub fn commit_message(task: &Task, report: &AgentReport) -> String {
    let summary: String = report
        .result
        .lines()
        .take(20)
        .collect::<Vec<_>>()
        .join("\n");
    let summary: String = summary.chars().take(2000).collect();
    format!(
        "{} (#{})\n\n{}\n\n{}\nAgent-session: {}\nAgent-pod: {}\n",
        task.wp
            .subject
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>(),
        task.wp.id,
        summary.trim(),
        trailer(task.wp.id),
        report.session_id.as_deref().unwrap_or("unknown"),
        task.pod
    )
}

fn mentions(message: &str, id: u64) -> bool {
    let t = trailer(id);
    message.lines().any(|l| l.trim() == t)
}

/// A step of the execution either goes on with its value or ends the task with an outcome.
type Step<T> = Result<T, Outcome>;

impl<A: Agent> Execute for Executor<A> {
    async fn execute(&self, task: Task, audit: Audit, cancel: CancellationToken) -> Outcome {
        let outcome = match self.steps(&task, &audit, &cancel).await {
            Ok(outcome) | Err(outcome) => outcome,
        };
        // Stopped from the board rather than by a shutdown: keep what the agent did for this pod's
        // next run; nothing is committed to the branch or pushed.
        match (outcome, task.stop.get()) {
            (Outcome::Interrupted { .. }, Some(stop)) => {
                let (owner, subject) = task.branch_owner();
                let branch = branch_name(owner, subject);
                let repo = task.repo.clone();
                if let Err(e) = self
                    .workspaces
                    .run(move |ws| ws.keep_stopped(&repo, &branch))
                    .await
                {
                    tracing::warn!(error = %e, "could not keep the stopped run's checkout");
                }
                Outcome::Stopped(stop)
            }
            (outcome, _) => outcome,
        }
    }
}

impl<A: Agent> Executor<A> {
    /// Prepare, resume or run the agent, commit, push.
    async fn steps(&self, task: &Task, audit: &Audit, cancel: &CancellationToken) -> Step<Outcome> {
        let (owner, subject) = task.branch_owner();
        let branch = branch_name(owner, subject);
        let repo = task.repo.clone();
        let co: Checkout = self
            .git(
                cancel,
                move |ws| ws.prepare(&repo, &branch),
                "preparing the workspace failed",
            )
            .await?;
        if (task.resumed() || co.start == BranchStart::KeptUnpushed)
            && let Some(done) = self.resume(task.wp.id, &co, audit, cancel).await?
        {
            return Ok(done);
        }
        audit
            .post(&Event::Started {
                pod: task.pod.clone(),
                repo: co.repo_url.clone(),
                branch: co.branch.clone(),
                base_commit: co.base_commit.clone(),
            })
            .await;
        let c = co.clone();
        self.git(
            cancel,
            move |ws| ws.ensure_flake(&c),
            "committing the starter flake.nix failed",
        )
        .await?;
        self.enter_environment(&co, audit, cancel).await?;
        let report = self.run_agent(task, &co, audit, cancel).await?;
        self.commit_and_push(task, &co, &report, audit, cancel)
            .await
    }

    /// Runs a workspace operation on the blocking pool; a failure ends the task, and so does a
    /// shutdown: a blocking git thread cannot be stopped (it ends at git's network timeout), so the
    /// task does not wait for it.
    async fn git<T, F>(&self, cancel: &CancellationToken, op: F, what: &str) -> Step<T>
    where
        T: Send + 'static,
        F: FnOnce(&Workspaces) -> Result<T, WorkspaceError> + Send + 'static,
    {
        tokio::select! {
            done = self.workspaces.run(op) => done.map_err(|e| workspace_failure(&e, what)),
            _ = cancel.cancelled() => Err(Outcome::Interrupted {
                reason: "the pod is shutting down during a git operation; the claim is released and nothing more is done".into(),
            }),
        }
    }

    /// Resume: work a killed run already committed is reported or pushed, never redone.
    async fn resume(
        &self,
        id: u64,
        co: &Checkout,
        audit: &Audit,
        cancel: &CancellationToken,
    ) -> Step<Option<Outcome>> {
        let c = co.clone();
        let unpushed = self
            .git(
                cancel,
                move |ws| ws.unpushed_commits(&c),
                "reading unpushed commits failed",
            )
            .await?;
        let c = co.clone();
        let on_branch = self
            .git(
                cancel,
                move |ws| ws.branch_commits(&c),
                "reading the branch failed",
            )
            .await?;
        let Some((commit, _)) = on_branch.iter().rev().find(|(_, m)| mentions(m, id)) else {
            return Ok(None);
        };
        let commit = commit.clone();
        if !unpushed.iter().any(|(c, _)| *c == commit) {
            audit
                .post(&Event::AlreadyPushed {
                    commit: commit.clone(),
                    branch: co.branch.clone(),
                })
                .await;
            return Ok(Some(Outcome::Pushed {
                branch: co.branch.clone(),
                commit,
                summary: "resumed: already pushed by an interrupted run".into(),
            }));
        }
        audit.post(&Event::PushingUnpushed { commit }).await;
        let c = co.clone();
        let pushed = self
            .git(cancel, move |ws| ws.push(&c), "pushing failed")
            .await?;
        Ok(Some(Outcome::Pushed {
            branch: co.branch.clone(),
            commit: pushed.commit,
            summary: "resumed: pushed the commit of an interrupted run".into(),
        }))
    }

    /// Commits everything the agent changed (as the orchestrator, with the trailer) and pushes.
    async fn commit_and_push(
        &self,
        task: &Task,
        co: &Checkout,
        report: &AgentReport,
        audit: &Audit,
        cancel: &CancellationToken,
    ) -> Step<Outcome> {
        let message = commit_message(task, report);
        let c = co.clone();
        let committed = self
            .git(
                cancel,
                move |ws| ws.commit_all(&c, &message),
                "committing failed",
            )
            .await?;
        let Some(committed) = committed else {
            return Err(Outcome::Failed {
                kind: FailureKind::NoChanges,
                reason: "the agent finished but changed nothing in the repository".into(),
                evidence: prompt_tail(&report.result),
            });
        };
        if !committed.skipped_large.is_empty() {
            audit
                .post(&Event::SkippedLarge {
                    files: committed.skipped_large.clone(),
                })
                .await;
        }
        let c = co.clone();
        let pushed = self
            .git(cancel, move |ws| ws.push(&c), "pushing failed")
            .await?;
        Ok(Outcome::Pushed {
            branch: co.branch.clone(),
            commit: pushed.commit,
            summary: report.result.lines().next().unwrap_or("").to_string(),
        })
    }
}

fn usage(end: RunEnd, r: &AgentReport, started: Instant) -> Event {
    Event::Usage(Usage::new(
        end,
        r.session_id.as_deref(),
        r.num_turns,
        (r.input_tokens, r.output_tokens),
        r.cost_usd,
        started.elapsed().as_secs_f64(),
    ))
}

/// The smallest question a human can answer for a workspace failure of the pod's surroundings.
fn question(e: &WorkspaceError) -> Question {
    match e {
        WorkspaceError::Auth { .. } => Question::GitCredentials,
        WorkspaceError::BaseBranchMissing { .. } => Question::BaseBranch,
        WorkspaceError::Network { .. } => Question::ReachRepository,
        _ => Question::Other,
    }
}

fn record_usage(r: &AgentReport) {
    metrics::counter!("journeyman_tokens_total", "direction" => "input").increment(r.input_tokens);
    metrics::counter!("journeyman_tokens_total", "direction" => "output")
        .increment(r.output_tokens);
    // A histogram of cost per run: its `_sum` is the total spend in US dollars.
    metrics::histogram!("journeyman_task_cost_usd").record(r.cost_usd.max(0.0));
}

fn prompt_tail(text: &str) -> String {
    crate::agent::tail_lines(text, 20, 4000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_matched_exactly() {
        assert!(mentions("Fix (#12)\n\nbody\n\nWork-package: #12\n", 12));
        assert!(!mentions("Fix (#123)\n\nWork-package: #123\n", 12));
        assert!(!mentions("mentions Work-package: #12 inline", 12));
    }
}
