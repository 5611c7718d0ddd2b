//! What follows a task or an escalation on the board: the status, the pod field, the comment and,
//! on failure, a Spike.
//!
//! Success: done status, pod field kept (follow-up work returns to this pod). Failure: a Spike
//! child with the reason and evidence, ready status, pod field cleared. An environment failure:
//! released without a Spike (not the ticket's fault), with the question a human must answer.
//! Interrupted: released with a comment. Every write here is idempotent on a resumed task: an
//! event already on the trail is not posted again, and an open Spike child is this attempt's.

use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use super::claim::Writes;
use crate::audit::{Audit, Event, History, one_line, truncate};
use crate::openproject::{ErrorKind, NewWorkPackage, WorkPackagePatch, hal};
use crate::task::{FailureKind, Outcome};

/// Why a Spike is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpikeCause {
    Agent,
    NoChanges,
    Repeated,
}

impl SpikeCause {
    fn what(self) -> &'static str {
        match self {
            SpikeCause::Agent => "the agent failed",
            SpikeCause::NoChanges => "the agent made no changes",
            SpikeCause::Repeated => "it failed too many times; journeyman stopped retrying it",
        }
    }
}

impl Writes<'_> {
    /// Writes the outcome. `already` is the trail before the run: its events are not posted again.
    pub async fn report(
        &self,
        id: u64,
        outcome: &Outcome,
        already: Arc<History>,
    ) -> anyhow::Result<()> {
        let audit = Audit::new(self.client.clone(), id).skipping(already);
        let pod = self.pod.to_string();
        match outcome {
            Outcome::Pushed { branch, commit, .. } => {
                audit
                    .post(&Event::Pushed {
                        commit: commit.clone(),
                        branch: branch.clone(),
                    })
                    .await;
                let done = self.r.catalog.done_status;
                self.update_own(id, |lv| WorkPackagePatch {
                    lock_version: lv,
                    status: Some(done),
                    ..WorkPackagePatch::default()
                })
                .await
            }
            Outcome::Failed {
                kind: FailureKind::Environment(question),
                reason,
                ..
            } => {
                let reason = one_line(reason);
                let question = *question;
                audit
                    .post(&Event::EnvironmentProblem {
                        pod,
                        reason,
                        question,
                    })
                    .await;
                self.release_own(id).await
            }
            Outcome::Failed {
                kind,
                reason,
                evidence,
            } => {
                let cause = if *kind == FailureKind::NoChanges {
                    SpikeCause::NoChanges
                } else {
                    SpikeCause::Agent
                };
                let spike = self.file_spike(id, cause, reason, evidence).await?;
                let reason = one_line(reason);
                audit.post(&Event::Failed { pod, reason, spike }).await;
                self.release_own(id).await
            }
            Outcome::Interrupted { reason } => {
                let reason = one_line(reason);
                audit.post(&Event::Released { pod, reason }).await;
                self.release_own(id).await
            }
        }
    }

    /// Escalates a work package this pod holds: an escalation Spike, the comment, released.
    pub async fn escalate(&self, id: u64, attempts: u32) -> anyhow::Result<()> {
        let reason = format!(
            "this work package failed {attempts} times (JOURNEYMAN_MAX_ATTEMPTS={}); not retrying",
            self.policy.max_attempts
        );
        let evidence = "See the earlier **failed** comments and Spikes on this work package.";
        let spike = self
            .file_spike(id, SpikeCause::Repeated, &reason, evidence)
            .await?;
        Audit::new(self.client.clone(), id)
            .post(&Event::Escalated {
                pod: self.pod.to_string(),
                reason: one_line(&reason),
                spike,
            })
            .await;
        self.release_own(id).await
    }

    /// Back to the ready status, pod field and assignee cleared.
    async fn release_own(&self, id: u64) -> anyhow::Result<()> {
        let (ready, field) = (self.r.ready_status, self.r.pod_field.clone());
        self.update_own(id, |lv| WorkPackagePatch {
            lock_version: lv,
            status: Some(ready),
            assignee: Some(None),
            custom_fields: vec![(field.clone(), None)],
        })
        .await
    }

    /// Updates a work package this pod owns: read, PATCH with that lockVersion, and on a 409 (a
    /// human edited it meanwhile) read again, up to three times.
    async fn update_own(
        &self,
        id: u64,
        patch: impl Fn(u64) -> WorkPackagePatch,
    ) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..3 {
            let current = self
                .client
                .work_package(id)
                .await
                .with_context(|| format!("re-reading #{id}"))?;
            match self
                .client
                .update_work_package(id, &patch(current.lock_version))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Conflict => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last
            .map(anyhow::Error::from)
            .unwrap_or_else(|| anyhow::anyhow!("updating #{id} failed")))
    }

    /// Files a Spike child for `id`, or returns the open one this attempt already filed.
    async fn file_spike(
        &self,
        id: u64,
        cause: SpikeCause,
        reason: &str,
        evidence: &str,
    ) -> anyhow::Result<u64> {
        let wp = self
            .client
            .work_package(id)
            .await
            .with_context(|| format!("re-reading #{id}"))?;
        if let Some(open) = self.open_spike(&wp).await? {
            info!(
                wp = id,
                spike = open,
                "an open Spike from this attempt already exists; not filing another"
            );
            return Ok(open);
        }
        let project = wp
            .links
            .project
            .id()
            .context("work package without project")?;
        let description = format!(
            "Filed by journeyman pod `{}` for #{id}: {}.\n\n**Reason:** {}\n\n**Evidence** (last lines):\n\n```text\n{}\n```\n\nClose this Spike when the cause is understood; #{id} then returns to the pool.",
            self.pod,
            cause.what(),
            one_line(reason),
            evidence.replace("```", "ʼʼʼ")
        );
        let spike = self
            .client
            .create_work_package(&NewWorkPackage {
                project,
                type_id: self.r.spike_type,
                subject: truncate(&format!("Spike: {} (#{id})", one_line(reason)), 250),
                description,
                parent: Some(id),
                status: None,
                priority: None,
            })
            .await
            .with_context(|| format!("filing a Spike for #{id}"))?;
        Ok(spike.id)
    }

    /// Idempotent Spikes: the work package had no open Spike when it was claimed (that is
    /// eligibility), so an open Spike child now is this attempt's, filed before a report that did
    /// not finish.
    async fn open_spike(&self, wp: &hal::WorkPackage) -> anyhow::Result<Option<u64>> {
        for child in wp.links.children.iter().filter_map(hal::Link::id) {
            let c = self
                .client
                .work_package(child)
                .await
                .with_context(|| format!("reading child #{child}"))?;
            let open = c
                .links
                .status
                .id()
                .is_some_and(|s| !self.r.catalog.closed_statuses.contains(&s));
            if c.links.type_.id() == Some(self.r.spike_type) && open {
                return Ok(Some(child));
            }
        }
        Ok(None)
    }
}
