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
use crate::board::Snapshot;
use crate::board::StopReason;
use crate::openproject::{ApiError, ErrorKind, NewWorkPackage, Notify, WorkPackagePatch, hal};
use crate::task::{BoardStop, FailureKind, Outcome};

/// The board's reasons for a refusal, in one line.
fn refusal_reason(err: &ApiError) -> String {
    let reasons: Vec<&str> = err.refusals.iter().map(|r| r.message.as_str()).collect();
    if reasons.is_empty() {
        one_line(&err.message)
    } else {
        one_line(&reasons.join(" "))
    }
}

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
                let done = |wp: &hal::WorkPackage| {
                    let ty = wp.links.type_.id().unwrap_or(0);
                    self.r.catalog.done_for(ty)
                };
                let what = |to: &str| {
                    format!("set the status to {to} after pushing `{commit}` to `{branch}`")
                };
                self.set_status(id, done, what, &audit).await
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
                let spike = match self.file_spike(id, cause, reason, evidence).await {
                    Ok(spike) => spike,
                    Err(e) => return self.spike_refused(id, reason, e, &audit).await,
                };
                let reason = one_line(reason);
                audit.post(&Event::Failed { pod, reason, spike }).await;
                self.release_own(id).await
            }
            Outcome::Interrupted { reason } => {
                let reason = one_line(reason);
                audit.post(&Event::Released { pod, reason }).await;
                self.release_own(id).await
            }
            Outcome::Stopped(stop) => self.stopped(id, stop, &audit).await,
        }
    }

    /// A run a human stopped from the board: say what stopped it, whose change it was and what was
    /// kept; leave every value the human set as they set it. Three stops ask for a write on the
    /// work package itself, whose status and pod field were the worker's: `@journeyman stop` and
    /// a human's Spike send it back to the ready status with the pod field kept (it returns to
    /// this pod and its checkout, with the comment in its history or once the Spike is closed); an
    /// Epic taken away (unowned or closed) returns its child to the pool, as a release would.
    async fn stopped(&self, id: u64, stop: &BoardStop, audit: &Audit) -> anyhow::Result<()> {
        let by = stop.by.clone().unwrap_or_else(|| "a human".into());
        let ready = self.r.status_name(self.r.ready_status);
        let after = match stop.reason {
            StopReason::StopComment => format!(
                "; the checkout is kept on this pod, and the work package goes back to {ready} with its pod field kept, so it returns to this pod with the comment in its history."
            ),
            StopReason::Spike { .. } => format!(
                "; the checkout is kept on this pod, and the work package goes back to {ready} with its pod field kept: it waits for the Spike, then returns to this pod."
            ),
            StopReason::EpicUnowned { .. } | StopReason::EpicClosed { .. } => format!(
                "; the checkout is kept on this pod, and the work package goes back to {ready} for any pod, the Epic left as {by} set it."
            ),
            _ => format!(
                "; the checkout is kept on this pod for its next run, and the work package is left as {by} set it."
            ),
        };
        audit
            .post(&Event::Stopped {
                pod: self.pod.to_string(),
                what: self.stop_text(&stop.reason),
                by,
                after,
            })
            .await;
        match stop.reason {
            StopReason::StopComment | StopReason::Spike { .. } => {
                let ready = self.r.ready_status;
                self.update_own(id, |wp| WorkPackagePatch {
                    lock_version: wp.lock_version,
                    status: Some(ready),
                    ..WorkPackagePatch::default()
                })
                .await
                .with_context(|| format!("returning #{id} to this pod's queue after a stop"))
            }
            StopReason::EpicUnowned { .. } | StopReason::EpicClosed { .. } => {
                self.release_own(id).await
            }
            _ => Ok(()),
        }
    }

    /// What a human did, in the words of the stop comment (no ": " in it: the event ends there).
    fn stop_text(&self, reason: &StopReason) -> String {
        match reason {
            StopReason::Status { now } => {
                format!("its status was set to {}", self.r.status_name(*now))
            }
            StopReason::PodField { now: None } => "its pod field was cleared".into(),
            StopReason::PodField { now: Some(p) } => format!("its pod field was set to {p}"),
            StopReason::Deleted => "it was deleted or is no longer visible to the agent".into(),
            StopReason::Moved { project } => {
                format!("it was moved to project {project}, which has no repository")
            }
            StopReason::Spike { id } => format!("Spike #{id} was opened under it"),
            StopReason::StopComment => "a comment asked it to stop".into(),
            StopReason::EpicUnowned { epic } => format!("Epic #{epic} is no longer this pod's"),
            StopReason::EpicClosed { epic } => format!("Epic #{epic} was closed"),
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

    /// The status write a run's report did not get to (`pushed`: the done status; else back to
    /// the pool); its comment is on the trail already.
    pub async fn finish_report(&self, id: u64, pushed: bool) -> anyhow::Result<()> {
        if !pushed {
            return self.release_own(id).await;
        }
        let audit = Audit::new(self.client.clone(), id);
        let done =
            |wp: &hal::WorkPackage| self.r.catalog.done_for(wp.links.type_.id().unwrap_or(0));
        let what = |to: &str| format!("set the status to {to} after the push on the trail");
        self.set_status(id, done, what, &audit).await
    }

    /// Back to the ready status, pod field and assignee cleared.
    async fn release_own(&self, id: u64) -> anyhow::Result<()> {
        let audit = Audit::new(self.client.clone(), id);
        let what = |to: &str| format!("return it to the pool (status {to})");
        let ready = |_: &hal::WorkPackage| self.r.ready_status;
        self.set_status(id, ready, what, &audit).await
    }

    /// Sets the status `to(current)` on a work package this pod holds; for the ready status, also
    /// clears the pod field and assignee. A refusal (422: the workflow does not allow it) parks the
    /// work package for a human instead (see [`Writes::park`]): nothing pushed is ever reported as
    /// failed, and nothing is retried as is.
    async fn set_status(
        &self,
        id: u64,
        to: impl Fn(&hal::WorkPackage) -> u64,
        what: impl Fn(&str) -> String,
        audit: &Audit,
    ) -> anyhow::Result<()> {
        let field = self.r.pod_field.clone();
        let ready = self.r.ready_status;
        let result = self
            .update_own(id, |wp| {
                let status = to(wp);
                let release = status == ready;
                WorkPackagePatch {
                    lock_version: wp.lock_version,
                    status: Some(status),
                    assignee: release.then_some(None),
                    custom_fields: if release {
                        vec![(field.clone(), None)]
                    } else {
                        vec![]
                    },
                    notify: Notify::Routine,
                }
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.is_refusal() => {
                let current = self
                    .client
                    .work_package(id)
                    .await
                    .with_context(|| format!("re-reading #{id}"))?;
                let target = to(&current);
                let what = what(&self.r.status_name(target));
                let refused = self.refused_transition(&current, target, &what, &e);
                self.park(&current, refused, audit).await;
                Ok(())
            }
            Err(e) => Err(anyhow::Error::from(e).context(format!("updating #{id}"))),
        }
    }

    /// The board refused to move a work package this pod holds: say what, why and how to fix it
    /// (`refused`, notifying watchers: a human is needed), and clear the pod field (no status
    /// change), so no pod resumes or takes it over and nothing loops. It waits, In progress, for a
    /// human.
    async fn park(&self, wp: &hal::WorkPackage, refused: Event, audit: &Audit) {
        tracing::warn!(wp = wp.id, "the board refused a write; parked for a human");
        audit.post(&refused).await;
        let patch = WorkPackagePatch {
            lock_version: wp.lock_version,
            custom_fields: vec![(self.r.pod_field.clone(), None)],
            ..WorkPackagePatch::default()
        };
        if let Err(e) = self.client.update_work_package(wp.id, &patch).await {
            tracing::warn!(wp = wp.id, error = %e, "could not clear the pod field of a parked work package");
        }
    }

    /// The refusal of a status change of `wp` to `target`.
    fn refused_transition(
        &self,
        wp: &hal::WorkPackage,
        target: u64,
        what: &str,
        err: &ApiError,
    ) -> Event {
        let from = wp.links.status.id().unwrap_or(0);
        let ty = wp.links.type_.id().unwrap_or(0);
        Event::Refused {
            pod: self.pod.to_string(),
            what: what.to_string(),
            reason: refusal_reason(err),
            fix: self.transition_fix(ty, from, target),
        }
    }

    /// What a human changes so that the transition is allowed.
    fn transition_fix(&self, ty: u64, from: u64, to: u64) -> String {
        let (ty, from, to) = (
            self.r.type_name(ty),
            self.r.status_name(from),
            self.r.status_name(to),
        );
        let mut fix = format!(
            "allow the transition {from} -> {to} for type {ty} in the workflow of the agent user's role (Administration, Work packages, Workflows)"
        );
        if to == self.r.status_name(self.r.catalog.done_status)
            || self
                .r
                .catalog
                .done_by_type
                .values()
                .any(|s| self.r.status_name(*s) == to)
        {
            fix.push_str(&format!(
                ", or set JOURNEYMAN_DONE_STATUS={ty}=<a status the role may set>, then move this work package on by hand"
            ));
        }
        fix
    }

    /// A Spike the board refused (the Spike type not enabled in the project, a required field):
    /// the work package is parked for a human rather than returned to the pool without one (it
    /// would fail again, unseen). Any other error is the report's.
    async fn spike_refused(
        &self,
        id: u64,
        reason: &str,
        err: anyhow::Error,
        audit: &Audit,
    ) -> anyhow::Result<()> {
        let Some(refusal) = err
            .chain()
            .filter_map(|c| c.downcast_ref::<ApiError>())
            .find(|a| a.is_refusal())
            .cloned()
        else {
            return Err(err);
        };
        let current = self
            .client
            .work_package(id)
            .await
            .with_context(|| format!("re-reading #{id}"))?;
        let what = format!("file a Spike for its failure ({})", one_line(reason));
        let ty = self.r.type_name(self.r.spike_type);
        tracing::warn!(wp = id, error = %refusal, "the board refused the Spike");
        let refused = Event::Refused {
            pod: self.pod.to_string(),
            // The event's `what` ends at the first ": ".
            what: what.replace(": ", " - "),
            reason: refusal_reason(&refusal),
            fix: format!(
                "enable the type {ty} in this project for the agent user's role, with no required field it cannot fill"
            ),
        };
        self.park(&current, refused, audit).await;
        Ok(())
    }

    /// Says once on the ticket that the board refused its claim (a human must change the workflow).
    pub async fn refused_claim(
        &self,
        snap: &Snapshot,
        id: u64,
        err: &ApiError,
        history: Arc<History>,
    ) {
        let active = self.r.catalog.active_status;
        let (ty, from) = snap
            .get(id)
            .map(|i| (i.type_id, i.status))
            .unwrap_or((0, 0));
        let event = Event::Refused {
            pod: self.pod.to_string(),
            what: format!(
                "claim it (set the status to {})",
                self.r.status_name(active)
            ),
            reason: refusal_reason(err),
            fix: self.transition_fix(ty, from, active),
        };
        Audit::new(self.client.clone(), id)
            .skipping(history)
            .post(&event)
            .await;
    }

    /// Updates a work package this pod owns: read, PATCH with that lockVersion, and on a 409 (a
    /// human edited it meanwhile) read again, up to three times.
    async fn update_own(
        &self,
        id: u64,
        patch: impl Fn(&hal::WorkPackage) -> WorkPackagePatch,
    ) -> Result<(), ApiError> {
        let mut last = None;
        for _ in 0..3 {
            let current = self.client.work_package(id).await?;
            match self.client.update_work_package(id, &patch(&current)).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Conflict => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        // Three conflicts in a row: the last one says so.
        Err(last.expect("the loop ran three times"))
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
                notify: Notify::Human,
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
