//! The agent's part of a task: the checkout's environment entered once, then the agent's run
//! (its session continued where it can be), watched live (`live.rs`), its usage posted and its
//! spend recorded.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Executor, Step, live, prompt_tail, ticket, usage};
use crate::agent::live::Live;
use crate::agent::prompt::{HistoryItem, PromptContext};
use crate::agent::{Agent, AgentFailure, AgentReport, AgentRequest, prompt};
use crate::audit::{Audit, Event, Question, RunEnd};
use crate::task::{FailureKind, Outcome, Task};
use crate::workspace::Checkout;

impl<A: Agent> Executor<A> {
    /// The environment-ready step: the checkout's dev shell entered once, with its own timeout. A
    /// failure here is the pod's environment's (the pod pauses and asks its one question; no Spike
    /// blames the ticket), with the wrapper's own error as evidence.
    pub(super) async fn enter_environment(
        &self,
        co: &Checkout,
        audit: &Audit,
        cancel: &CancellationToken,
    ) -> Step<()> {
        let timeout = self.limits.env_timeout;
        match self
            .agent
            .enter_environment(&co.path, timeout, cancel)
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(took)) => {
                let lock = git2::Oid::hash_file(git2::ObjectType::Blob, co.path.join("flake.lock"))
                    .map_or_else(
                        |_| "none".to_string(),
                        |oid| oid.to_string()[..12].to_string(),
                    );
                metrics::histogram!("journeyman_environment_seconds").record(took.as_secs_f64());
                let seconds = (took.as_secs_f64() * 10.0).round() / 10.0;
                audit.post(&Event::EnvironmentReady { seconds, lock }).await;
                Ok(())
            }
            Err(AgentFailure::Cancelled) => Err(Outcome::Interrupted {
                reason: "the pod is shutting down while entering the environment; nothing was run"
                    .into(),
            }),
            Err(f) => {
                let question = if f.is_environment() {
                    Question::AgentCommand
                } else {
                    Question::DevShell
                };
                Err(Outcome::Failed {
                    kind: FailureKind::Environment(question),
                    reason: format!("entering the environment failed: {}", f.reason()),
                    evidence: f.evidence(),
                })
            }
        }
    }

    /// The agent's run on the checkout, its usage posted and recorded, its budget checked.
    pub(super) async fn run_agent(
        &self,
        task: &Task,
        co: &Checkout,
        audit: &Audit,
        cancel: &CancellationToken,
    ) -> Step<AgentReport> {
        let ctx = PromptContext {
            epic: task.epic.as_ref().map(ticket),
            story: task.story.as_ref().map(ticket),
            work_package: ticket(&task.wp),
            verify: self.verify.clone(),
            history: task
                .conversation
                .iter()
                .map(|i| HistoryItem {
                    heading: i.heading.clone(),
                    body: i.body.clone(),
                })
                .collect(),
        };
        let (tx, rx) = tokio::sync::watch::channel(Live::default());
        let req = AgentRequest {
            workdir: co.path.clone(),
            prompt: prompt::build(&ctx),
            max_turns: self.limits.max_turns,
            timeout: self.limits.task_timeout,
            resume: None,
            budget: Some(self.run_budget()),
            progress: Some(Arc::new(tx)),
        };
        let started = Instant::now();
        let reporter = live::Reporter {
            audit,
            pod: &task.pod,
            every: self.limits.progress_every,
            prices: &self.prices,
            budget: self.budget.as_ref(),
            new_comments: &task.new_comments,
        };
        let done = CancellationToken::new();
        let (result, last) = tokio::join!(
            async {
                let r = self.run_resuming(task, req, audit, cancel).await;
                done.cancel();
                r
            },
            reporter.run(rx, &done)
        );
        let report = match result {
            Ok(r) => r,
            Err(f) if f.report().is_none() => {
                // Stopped, timed out or crashed without a result: what the stream showed it spent.
                self.record_spend(last.cost_usd(&self.prices));
                return Err(self.failed_run(f));
            }
            Err(f) => {
                if let Some(r) = f.report() {
                    audit.post(&usage(RunEnd::Failed, r, started)).await;
                    self.record_usage(r);
                }
                return Err(self.failed_run(f));
            }
        };
        self.record_usage(&report);
        audit.post(&usage(RunEnd::Complete, &report, started)).await;
        if report.cost_usd > self.limits.task_budget_usd {
            return Err(Outcome::Failed {
                kind: FailureKind::Agent,
                reason: format!(
                    "the run cost ${:.2}, over the task budget of ${:.2}; nothing was committed",
                    report.cost_usd, self.limits.task_budget_usd
                ),
                evidence: prompt_tail(&report.result),
            });
        }
        Ok(report)
    }

    /// Runs the agent, continuing this pod's last session on the work package where it still lives
    /// (the prompt then carries the conversation since); a fresh session, said on the ticket, when
    /// it is gone or the agent refuses it.
    async fn run_resuming(
        &self,
        task: &Task,
        req: AgentRequest,
        audit: &Audit,
        cancel: &CancellationToken,
    ) -> Result<AgentReport, AgentFailure> {
        let Some(session) = task.last_session.clone().filter(|_| self.resume_sessions) else {
            return self.agent.run(&req, cancel).await;
        };
        if !self.agent.has_session(&session) {
            let why = "it is not in this pod's agent home any more".to_string();
            audit.post(&Event::FreshSession { session, why }).await;
            return self.agent.run(&req, cancel).await;
        }
        audit
            .post(&Event::Resumed {
                session: session.clone(),
            })
            .await;
        let resumed = AgentRequest {
            resume: Some(session.clone()),
            ..req.clone()
        };
        match self.agent.run(&resumed, cancel).await {
            Err(f) if f.unreported() => {
                let why = format!("the agent refused it: {}", f.reason());
                audit.post(&Event::FreshSession { session, why }).await;
                self.agent.run(&req, cancel).await
            }
            other => other,
        }
    }
}
