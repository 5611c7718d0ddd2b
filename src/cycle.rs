//! The work cycle of one pod, the imperative shell around `board::decide`:
//! snapshot (I/O) -> decide (pure) -> claim (one optimistic PATCH) -> execute -> report.
//!
//! Claims: one PATCH carrying the `lockVersion` the decision saw, setting status, assignee and pod
//! field together. A 409 means another pod (or a human) changed the work package first: the cycle
//! counts the conflict, skips that work package and re-decides on the same snapshot, never retrying
//! the write with a fresh `lockVersion`. An Epic is claimed before its child; if the child is lost
//! and nothing else in the Epic is eligible, the Epic is released at once, so it is never left
//! owned by a pod that gave up on it.
//!
//! This module never touches git or the agent directly: it hands a [`Task`] to an [`Execute`]
//! implementation and reports the [`Outcome`] on the board.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::board::{
    Action, Policy, Release, Rule, Snapshot, decide, eligible_count, ineligibility,
};
use crate::config::RepoMapping;
use crate::openproject::{ApiError, Client, ErrorKind, NewWorkPackage, WorkPackagePatch, hal};
use crate::snapshot::{BoardReader, Resolved};

/// Everything an executor needs to work one work package. Ticket text is data, never configuration:
/// the repository and base branch come from the allowlist, never from the ticket.
#[derive(Debug, Clone)]
pub struct Task {
    pub wp: hal::WorkPackage,
    /// The nearest open Epic above the work package, if any (its branch is shared by its children).
    pub epic: Option<hal::WorkPackage>,
    /// The parent user story, if the parent is one.
    pub story: Option<hal::WorkPackage>,
    pub repo: RepoMapping,
    /// `true` when resuming work this pod had claimed before (rule 1).
    pub resumed: bool,
    pub pod: String,
}

impl Task {
    /// The id and subject the branch is named after: the Epic's, else the work package's own.
    pub fn branch_owner(&self) -> (u64, &str) {
        match &self.epic {
            Some(e) => (e.id, e.subject.as_str()),
            None => (self.wp.id, self.wp.subject.as_str()),
        }
    }
}

/// Why an execution failed, which decides how it is handled (issue: failure classification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The agent failed (error result, crash, timeout, unparsable output, budget): a Spike.
    Agent,
    /// The agent ran and changed nothing: reported and escalated like a failure.
    NoChanges,
    /// Not the ticket's fault (nix, clone, credentials): the ticket is released without a Spike and
    /// this pod pauses claiming, so a broken pod cannot burn the whole pool.
    Environment,
    /// The ticket already failed `MAX_ATTEMPTS` times (across pods and restarts): escalated to a
    /// human with a Spike instead of running the agent again.
    Repeated,
}

/// How a task came to this pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Claimed,
    /// Rule 1: this pod's own claim, after a restart.
    Resumed,
    /// A stale claim of a pod that never came back.
    TookOver,
}

/// Failed attempts recorded on a ticket's comments since its last escalation: failures, and runs
/// that died (a resume or a takeover means the previous attempt never reported). Pure; the audit
/// trail on the board is the memory, so the count holds across pods and restarts.
pub fn failed_attempts<'a>(comments: impl IntoIterator<Item = &'a str>) -> u32 {
    let mut n = 0;
    for c in comments {
        if c.starts_with("journeyman: **escalated**") {
            n = 0;
        } else if c.starts_with("journeyman: **failed** on pod")
            || c.contains("is **resuming** this work package")
            || c.contains("**took over** this work package")
        {
            n += 1;
        }
    }
    n
}

/// The result of executing a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Committed and pushed.
    Pushed {
        branch: String,
        commit: String,
        summary: String,
    },
    /// Failed; the ticket goes back to the pool behind a Spike.
    Failed {
        kind: FailureKind,
        reason: String,
        evidence: String,
    },
    /// Stopped by shutdown before finishing: the claim is released.
    Interrupted { reason: String },
}

/// Posting audit comments during an execution.
#[derive(Clone)]
pub struct Audit {
    client: Client,
    wp: u64,
    /// Comments already on the ticket: not posted again.
    skip: Arc<Vec<String>>,
}

impl Audit {
    pub fn new(client: Client, wp: u64) -> Audit {
        Audit {
            client,
            wp,
            skip: Arc::default(),
        }
    }

    fn skipping(mut self, existing: Vec<String>) -> Audit {
        self.skip = Arc::new(existing);
        self
    }

    /// Posts a comment; a failure is logged, never fatal (the audit trail must not lose work).
    pub async fn comment(&self, markdown: &str) {
        if self.skip.iter().any(|c| c == markdown) {
            return;
        }
        if let Err(e) = self.client.add_comment(self.wp, markdown).await {
            warn!(wp = self.wp, error = %e, "could not post audit comment");
        }
    }
}

/// The execution port: prepare the workspace, run the agent, commit and push.
pub trait Execute: Send + Sync {
    fn execute(
        &self,
        task: Task,
        audit: Audit,
        cancel: CancellationToken,
    ) -> impl Future<Output = Outcome> + Send;
}

/// What one cycle did, for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleReport {
    /// The work package worked on, if any.
    pub worked: Option<u64>,
    pub outcome: Option<Outcome>,
    pub released_epic: Option<u64>,
    pub conflicts: u32,
    pub eligible: usize,
    /// API requests this cycle made, and whether the snapshot was read in full.
    pub requests: u64,
    pub full_snapshot: bool,
}

/// One pod's worker: holds the board reader and the executor, nothing else between cycles.
pub struct Worker<E: Execute> {
    reader: BoardReader,
    exec: Arc<E>,
    pod: String,
    policy: Policy,
    max_attempts: u32,
    /// After an environment failure: no claims until then (doubling back-off, reset on success).
    paused: Option<(tokio::time::Instant, Duration, String)>,
}

impl<E: Execute> Worker<E> {
    pub fn new(reader: BoardReader, exec: Arc<E>, pod: String, policy: Policy) -> Worker<E> {
        Worker {
            reader,
            exec,
            pod,
            policy,
            max_attempts: 3,
            paused: None,
        }
    }

    /// Failed attempts after which a ticket is escalated instead of retried.
    pub fn with_max_attempts(mut self, n: u32) -> Worker<E> {
        self.max_attempts = n.max(1);
        self
    }

    /// Why this pod is not claiming right now, if it is paused after an environment failure.
    pub fn paused(&self) -> Option<String> {
        self.paused
            .as_ref()
            .filter(|(until, _, _)| tokio::time::Instant::now() < *until)
            .map(|(_, _, why)| why.clone())
    }

    fn client(&self) -> &Client {
        self.reader.client()
    }

    fn resolved(&self) -> &Resolved {
        self.reader.resolved()
    }

    /// One cycle. `cancel` stops claiming new work (SIGTERM); a running task gets its own token.
    pub async fn cycle(
        &mut self,
        cancel: &CancellationToken,
        task_cancel: &CancellationToken,
    ) -> anyhow::Result<CycleReport> {
        let span = info_span!("cycle", pod = %self.pod);
        self.cycle_inner(cancel, task_cancel).instrument(span).await
    }

    async fn cycle_inner(
        &mut self,
        cancel: &CancellationToken,
        task_cancel: &CancellationToken,
    ) -> anyhow::Result<CycleReport> {
        let before = self.client().stats();
        let (mut snap, fetch) = self.reader.snapshot().await.context("reading the board")?;
        let mut report = CycleReport {
            full_snapshot: fetch.full,
            ..CycleReport::default()
        };
        report.eligible = eligible_count(&snap, &self.resolved().catalog, &self.pod);
        metrics::gauge!("journeyman_eligible_work").set(report.eligible as f64);
        if let Some(why) = self.paused() {
            // Paused after an environment failure: read (for metrics and health), claim nothing.
            info!(reason = %why, "paused after an environment failure; not claiming");
            report.requests = (self.client().stats() - before).requests;
            return Ok(report);
        }
        let now = Utc::now();
        let mut skip = BTreeSet::new();
        loop {
            let action = decide(
                &snap,
                &self.resolved().catalog,
                &self.pod,
                now,
                &self.policy,
                &skip,
            );
            match action {
                Action::Sleep => break,
                Action::ReleaseEpic { epic, reason } => {
                    skip.insert(epic);
                    if report.released_epic.is_some() {
                        continue; // one release per cycle
                    }
                    match self.release_epic(&snap, epic, reason).await {
                        Ok(()) => report.released_epic = Some(epic),
                        Err(e) if e.is_conflict() => report.conflicts += 1,
                        Err(e) => warn!(epic, error = %e, "releasing a stale Epic failed"),
                    }
                    self.reader.invalidate();
                }
                Action::TakeOver { wp, epic, from } => {
                    if cancel.is_cancelled() {
                        break;
                    }
                    match self.take_over(&snap, wp, epic, &from).await {
                        Ok(fresh) => {
                            self.reader.invalidate();
                            let outcome = self
                                .execute(&snap, fresh, Start::TookOver, task_cancel)
                                .await?;
                            report.worked = Some(wp);
                            report.outcome = Some(outcome);
                            break;
                        }
                        Err(err) if err.is_conflict() => {
                            self.lost(&mut report, &mut skip, wp, "takeover");
                        }
                        Err(err) => return Err(err).context(format!("taking over #{wp}")),
                    }
                }
                Action::Resume { wp } => {
                    if cancel.is_cancelled() {
                        break;
                    }
                    let fresh = self
                        .client()
                        .work_package(wp)
                        .await
                        .with_context(|| format!("re-reading #{wp} to resume it"))?;
                    info!(wp, "resuming my own work");
                    let outcome = self
                        .execute(&snap, fresh, Start::Resumed, task_cancel)
                        .await?;
                    report.worked = Some(wp);
                    report.outcome = Some(outcome);
                    break;
                }
                Action::Claim { wp, epic, rule } => {
                    if cancel.is_cancelled() {
                        break; // stop claiming at once on shutdown
                    }
                    if let Some(e) = epic {
                        match self.claim(&snap, e).await {
                            Ok(claimed) => {
                                info!(epic = e, "claimed Epic");
                                mark_mine(
                                    std::sync::Arc::make_mut(&mut snap),
                                    &claimed,
                                    &self.pod,
                                    self.resolved().catalog.active_status,
                                );
                            }
                            Err(err) if err.is_conflict() => {
                                self.lost(&mut report, &mut skip, e, "Epic claim");
                                continue;
                            }
                            Err(err) => return Err(err).context(format!("claiming Epic #{e}")),
                        }
                    }
                    match self.claim(&snap, wp).await {
                        Ok(fresh) => {
                            info!(wp, rule = rule_name(rule), "claimed");
                            if let Some(item) = snap.get(wp) {
                                // Queue wait: from the work package's last change (when it became
                                // ready, pinned or unblocked at the latest) to this claim.
                                let waited = (now - item.updated_at).to_std().unwrap_or_default();
                                metrics::histogram!("journeyman_queue_wait_seconds")
                                    .record(waited.as_secs_f64());
                            }
                            self.reader.invalidate();
                            let outcome = self
                                .execute(&snap, fresh, Start::Claimed, task_cancel)
                                .await?;
                            report.worked = Some(wp);
                            report.outcome = Some(outcome);
                            break;
                        }
                        Err(err) if err.is_conflict() => {
                            self.lost(&mut report, &mut skip, wp, "claim");
                            if let Some(e) = epic
                                && !self.epic_has_eligible(&snap, e, &skip)
                            {
                                // Claimed the Epic but lost its only candidate: give the Epic back now.
                                if let Err(err) = self.release_epic(&snap, e, Release::Stale).await
                                {
                                    warn!(epic = e, error = %err, "could not release the Epic after losing its child");
                                }
                                skip.insert(e);
                            }
                        }
                        Err(err) => return Err(err).context(format!("claiming #{wp}")),
                    }
                }
            }
        }
        report.requests = (self.client().stats() - before).requests;
        metrics::counter!("journeyman_cycles_total").increment(1);
        metrics::gauge!("journeyman_cycle_api_requests").set(report.requests as f64);
        Ok(report)
    }

    /// A write lost to another writer (409): count it, skip that work package for the rest of the
    /// cycle, and read the board afresh next cycle. Never retried with a fresh lockVersion.
    fn lost(&mut self, report: &mut CycleReport, skip: &mut BTreeSet<u64>, id: u64, what: &str) {
        info!(
            wp = id,
            what, "lost to another writer (409); skipping it this cycle"
        );
        report.conflicts += 1;
        metrics::counter!("journeyman_conflicts_total").increment(1);
        skip.insert(id);
        self.reader.invalidate();
    }

    fn epic_has_eligible(&self, snap: &Snapshot, epic: u64, skip: &BTreeSet<u64>) -> bool {
        snap.descendants(epic)
            .iter()
            .any(|d| ineligibility(snap, &self.resolved().catalog, &self.pod, d, skip).is_none())
    }

    /// The claim: one PATCH with the snapshot's lockVersion.
    async fn claim(&self, snap: &Snapshot, id: u64) -> Result<hal::WorkPackage, ApiError> {
        let r = self.resolved();
        let lock_version = snap.get(id).map(|i| i.lock_version).unwrap_or(0);
        let patch = WorkPackagePatch {
            lock_version,
            status: Some(r.catalog.active_status),
            assignee: Some(Some(r.agent_user)),
            custom_fields: vec![(r.pod_field.clone(), Some(self.pod.clone()))],
        };
        let result = self.client().update_work_package(id, &patch).await;
        let label = match &result {
            Ok(_) => "won",
            Err(e) if e.is_conflict() => "conflict",
            Err(_) => "error",
        };
        metrics::counter!("journeyman_claims_total", "result" => label).increment(1);
        result
    }

    /// Takes over a claim whose pod never came back: the Epic first (if that pod owned it), then the
    /// work package, each with one optimistic PATCH, and a comment saying so.
    async fn take_over(
        &self,
        snap: &Snapshot,
        wp: u64,
        epic: Option<u64>,
        from: &str,
    ) -> Result<hal::WorkPackage, ApiError> {
        let lease =
            humantime::format_duration(self.policy.claim_lease.to_std().unwrap_or_default());
        if let Some(e) = epic {
            self.claim(snap, e).await?;
            Audit::new(self.client().clone(), e)
                .comment(&format!("journeyman: pod `{}` **took over** this Epic from pod `{from}`, which showed no activity for {lease}.", self.pod))
                .await;
        }
        let fresh = self.claim(snap, wp).await?;
        Audit::new(self.client().clone(), wp)
            .comment(&format!("journeyman: pod `{}` **took over** this work package from pod `{from}`, which showed no activity for {lease} (longer than a task may run).", self.pod))
            .await;
        metrics::counter!("journeyman_takeovers_total").increment(1);
        info!(wp, from, "took over a stale claim");
        Ok(fresh)
    }

    async fn release_epic(
        &self,
        snap: &Snapshot,
        epic: u64,
        reason: Release,
    ) -> Result<(), ApiError> {
        let r = self.resolved();
        let item = snap.get(epic);
        let lock_version = item.map(|i| i.lock_version).unwrap_or(0);
        let previous = item.and_then(|i| i.pod.clone()).unwrap_or_default();
        let patch = WorkPackagePatch {
            lock_version,
            status: (reason == Release::Stale).then_some(r.ready_status),
            assignee: Some(None),
            custom_fields: vec![(r.pod_field.clone(), None)],
        };
        self.client().update_work_package(epic, &patch).await?;
        let text = match reason {
            Release::Stale => format!(
                "journeyman: **released** this Epic (was owned by pod `{previous}`): nothing below it is In progress and it saw no activity for {}. Any pod may take it now. (pod `{}`)",
                humantime::format_duration(
                    self.policy.epic_stale_after.to_std().unwrap_or_default()
                ),
                self.pod
            ),
            Release::Finished => format!(
                "journeyman: every open work package below this Epic is done; pod `{}` releases it. The status is left for a human to review and close.",
                self.pod
            ),
        };
        Audit::new(self.client().clone(), epic).comment(&text).await;
        info!(epic, ?reason, "released Epic");
        Ok(())
    }

    /// Runs the task and reports its outcome on the board.
    async fn execute(
        &mut self,
        snap: &Snapshot,
        wp: hal::WorkPackage,
        start: Start,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Outcome> {
        let id = wp.id;
        let span =
            info_span!("work_package", pod = %self.pod, wp = id, epic = tracing::field::Empty);
        let outcome = async {
            let task = self.task(snap, wp, start != Start::Claimed).await?;
            let epic = task.epic.as_ref().map(|e| e.id);
            if let Some(e) = &task.epic {
                tracing::Span::current().record("epic", e.id);
            }
            let audit = Audit::new(self.client().clone(), id);
            match start {
                Start::Claimed => {
                    let (owner, _) = task.branch_owner();
                    audit
                        .comment(&format!(
                            "journeyman: **starting** on pod `{}`. Next: prepare a branch for #{owner} in `{}` (base `{}`), run the agent, then commit and push.",
                            self.pod, task.repo.url, task.repo.base_branch
                        ))
                        .await;
                }
                Start::Resumed => audit.comment(&format!("journeyman: pod `{}` restarted and is **resuming** this work package.", self.pod)).await,
                Start::TookOver => {}
            }
            let started = std::time::Instant::now();
            let outcome = match self.attempts(id).await {
                Some(n) if n >= self.max_attempts => Outcome::Failed {
                    kind: FailureKind::Repeated,
                    reason: format!("this work package failed {n} times (JOURNEYMAN_MAX_ATTEMPTS={}); not retrying", self.max_attempts),
                    evidence: "See the earlier **failed** comments and Spikes on this work package.".into(),
                },
                _ => self.exec.execute(task, audit.clone(), cancel.clone()).await,
            };
            metrics::histogram!("journeyman_task_duration_seconds").record(started.elapsed().as_secs_f64());
            let label = match &outcome {
                Outcome::Pushed { .. } => "pushed",
                Outcome::Failed { kind: FailureKind::Agent, .. } => "failed",
                Outcome::Failed { kind: FailureKind::NoChanges, .. } => "no_changes",
                Outcome::Failed { kind: FailureKind::Environment, .. } => "environment",
                Outcome::Failed { kind: FailureKind::Repeated, .. } => "escalated",
                Outcome::Interrupted { .. } => "interrupted",
            };
            metrics::counter!("journeyman_tasks_total", "outcome" => label).increment(1);
            info!(outcome = label, seconds = started.elapsed().as_secs_f64(), "task finished");
            self.report(id, &outcome, start != Start::Claimed).await.with_context(|| format!("reporting the outcome of #{id}"))?;
            if let (Outcome::Failed { kind: FailureKind::Environment, .. }, Some(e)) = (&outcome, epic) {
                // A pausing pod must not hold its Epic's work hostage.
                self.release_own_epic(e).await;
            }
            anyhow::Ok(outcome)
        }
        .instrument(span)
        .await?;
        self.pace(&outcome);
        Ok(outcome)
    }

    /// Failed attempts recorded on the ticket (one request); `None` if the history cannot be read,
    /// in which case the task runs (the next failure will be counted).
    async fn attempts(&self, id: u64) -> Option<u32> {
        match self.client().activities(id).await {
            Ok(acts) => Some(failed_attempts(acts.iter().map(|a| a.comment_raw()))),
            Err(e) => {
                warn!(wp = id, error = %e, "cannot read the ticket's history for loop detection");
                None
            }
        }
    }

    /// After an environment failure, pause claiming with a doubling back-off (1 min .. 1 h);
    /// any other outcome ends the pause.
    fn pace(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Failed {
                kind: FailureKind::Environment,
                reason,
                ..
            } => {
                let next = self
                    .paused
                    .as_ref()
                    .map(|(_, d, _)| (*d * 2).min(Duration::from_secs(3600)))
                    .unwrap_or(Duration::from_secs(60));
                warn!(pause = ?next, reason = %reason, "environment failure: pausing claims on this pod");
                self.paused = Some((tokio::time::Instant::now() + next, next, one_line(reason)));
                metrics::gauge!("journeyman_environment_paused").set(1.0);
            }
            Outcome::Pushed { .. } | Outcome::Failed { .. } => {
                self.paused = None;
                metrics::gauge!("journeyman_environment_paused").set(0.0);
            }
            Outcome::Interrupted { .. } => {}
        }
    }

    async fn task(
        &self,
        snap: &Snapshot,
        wp: hal::WorkPackage,
        resumed: bool,
    ) -> anyhow::Result<Task> {
        let r = self.resolved();
        let project = wp
            .links
            .project
            .id()
            .context("work package without a project link")?;
        let repo =
            r.repos.get(&project).cloned().with_context(|| {
                format!("project {project} is not configured in JOURNEYMAN_REPOS")
            })?;
        let item = crate::snapshot::item(&wp, &r.pod_field);
        let epic_id = item
            .as_ref()
            .and_then(|i| crate::board::decide::nearest_epic(snap, &r.catalog, i))
            .map(|e| e.id);
        let epic = match epic_id {
            Some(e) => Some(
                self.client()
                    .work_package(e)
                    .await
                    .with_context(|| format!("reading Epic #{e}"))?,
            ),
            None => None,
        };
        let parent = wp.links.parent.as_ref().and_then(hal::Link::id);
        let story = match parent
            .and_then(|p| snap.get(p))
            .filter(|p| Some(p.id) != epic_id && r.catalog.work_types.contains(&p.type_id))
        {
            Some(p) => Some(
                self.client()
                    .work_package(p.id)
                    .await
                    .with_context(|| format!("reading parent #{}", p.id))?,
            ),
            None => None,
        };
        Ok(Task {
            wp,
            epic,
            story,
            repo,
            resumed,
            pod: self.pod.clone(),
        })
    }

    /// Writes the outcome: status, pod field, comments and, on failure, a Spike.
    /// On a resumed task, comments already on the ticket (an earlier report that posted its comment
    /// but failed to write the status) are not posted again.
    async fn report(&self, id: u64, outcome: &Outcome, resumed: bool) -> anyhow::Result<()> {
        let r = self.resolved().clone();
        let already: Vec<String> = if resumed {
            match self.client().activities(id).await {
                Ok(acts) => acts.iter().map(|a| a.comment_raw().to_string()).collect(),
                Err(e) => {
                    warn!(wp = id, error = %e, "cannot read earlier comments; a report may repeat");
                    vec![]
                }
            }
        } else {
            vec![]
        };
        let audit = Audit::new(self.client().clone(), id).skipping(already);
        match outcome {
            Outcome::Pushed { branch, commit, .. } => {
                audit.comment(&format!("journeyman: **pushed** `{commit}` to branch `{branch}`. Status set to done for review.")).await;
                self.update_own(id, |lv| WorkPackagePatch {
                    lock_version: lv,
                    status: Some(r.catalog.done_status),
                    ..Default::default()
                })
                .await?;
            }
            Outcome::Failed {
                kind: FailureKind::Environment,
                reason,
                ..
            } => {
                audit
                    .comment(&format!(
                        "journeyman: **environment problem** on pod `{}`: {}. This is not the ticket's fault: it goes back to the pool without a Spike, and this pod pauses claiming. Question for a human: {}",
                        self.pod,
                        one_line(reason),
                        question(reason)
                    ))
                    .await;
                self.release_own(id).await?;
            }
            Outcome::Failed {
                kind,
                reason,
                evidence,
            } => {
                let spike = self.file_spike(id, *kind, reason, evidence).await?;
                let verb = if *kind == FailureKind::Repeated {
                    "**escalated**"
                } else {
                    "**failed**"
                };
                audit
                    .comment(&format!(
                        "journeyman: {verb} on pod `{}`: {}. Filed Spike #{spike}; this work package returns to the pool once the Spike is closed.",
                        self.pod,
                        one_line(reason)
                    ))
                    .await;
                self.release_own(id).await?;
            }
            Outcome::Interrupted { reason } => {
                audit
                    .comment(&format!(
                        "journeyman: pod `{}` **released** this work package: {}.",
                        self.pod,
                        one_line(reason)
                    ))
                    .await;
                self.release_own(id).await?;
            }
        }
        Ok(())
    }

    /// Releases an Epic this pod owns (after an environment failure), read fresh for its lockVersion.
    async fn release_own_epic(&self, epic: u64) {
        let r = self.resolved().clone();
        let result = async {
            let current = self.client().work_package(epic).await?;
            if current.custom_string(&r.pod_field) != Some(self.pod.as_str()) {
                return Ok(());
            }
            let patch = WorkPackagePatch {
                lock_version: current.lock_version,
                status: Some(r.ready_status),
                assignee: Some(None),
                custom_fields: vec![(r.pod_field.clone(), None)],
            };
            self.client().update_work_package(epic, &patch).await?;
            Audit::new(self.client().clone(), epic)
                .comment(&format!("journeyman: pod `{}` **released** this Epic: it paused after an environment problem, and another pod may continue.", self.pod))
                .await;
            Ok::<(), ApiError>(())
        }
        .await;
        if let Err(e) = result {
            warn!(epic, error = %e, "could not release the Epic while pausing; it is released when it goes stale");
        }
    }

    /// Back to the ready status, pod field and assignee cleared.
    async fn release_own(&self, id: u64) -> anyhow::Result<()> {
        let r = self.resolved().clone();
        self.update_own(id, |lv| WorkPackagePatch {
            lock_version: lv,
            status: Some(r.ready_status),
            assignee: Some(None),
            custom_fields: vec![(r.pod_field.clone(), None)],
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
                .client()
                .work_package(id)
                .await
                .with_context(|| format!("re-reading #{id}"))?;
            match self
                .client()
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

    async fn file_spike(
        &self,
        id: u64,
        kind: FailureKind,
        reason: &str,
        evidence: &str,
    ) -> anyhow::Result<u64> {
        let r = self.resolved();
        let wp = self
            .client()
            .work_package(id)
            .await
            .with_context(|| format!("re-reading #{id}"))?;
        // Idempotent: the work package had no open Spike when it was claimed (that is eligibility),
        // so an open Spike child now is this attempt's, filed before a report that did not finish.
        for child in wp.links.children.iter().filter_map(hal::Link::id) {
            let c = self
                .client()
                .work_package(child)
                .await
                .with_context(|| format!("reading child #{child}"))?;
            let open = c
                .links
                .status
                .id()
                .is_some_and(|s| !r.catalog.closed_statuses.contains(&s));
            if c.links.type_.id() == Some(r.spike_type) && open {
                info!(
                    wp = id,
                    spike = child,
                    "an open Spike from this attempt already exists; not filing another"
                );
                return Ok(child);
            }
        }
        let project = wp
            .links
            .project
            .id()
            .context("work package without project")?;
        let what = match kind {
            FailureKind::Agent => "the agent failed",
            FailureKind::NoChanges => "the agent made no changes",
            FailureKind::Environment => "the environment failed (not the ticket's fault)",
            FailureKind::Repeated => "it failed too many times; journeyman stopped retrying it",
        };
        let description = format!(
            "Filed by journeyman pod `{}` for #{id}: {what}.\n\n**Reason:** {}\n\n**Evidence** (last lines):\n\n```text\n{}\n```\n\nClose this Spike when the cause is understood; #{id} then returns to the pool.",
            self.pod,
            one_line(reason),
            evidence.replace("```", "ʼʼʼ")
        );
        let spike = self
            .client()
            .create_work_package(&NewWorkPackage {
                project,
                type_id: r.spike_type,
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
}

/// Marks an Epic as mine and active in the local snapshot after a successful claim.
fn mark_mine(snap: &mut Snapshot, claimed: &hal::WorkPackage, pod: &str, active: u64) {
    if let Some(item) = snap.items.get_mut(&claimed.id) {
        item.pod = Some(pod.to_string());
        item.status = active;
        item.lock_version = claimed.lock_version;
    }
}

/// The smallest question a human can answer for an environment failure.
fn question(reason: &str) -> &'static str {
    let r = reason.to_lowercase();
    if r.contains("credential") || r.contains("auth") {
        "are the git credentials of this pod (JOURNEYMAN_GIT_TOKEN or JOURNEYMAN_GIT_SSH_KEY) valid for the repository?"
    } else if r.contains("base branch") {
        "does the base branch named in JOURNEYMAN_REPOS exist on the remote?"
    } else if r.contains("workspace") || r.contains("clone") || r.contains("fetch") {
        "can this pod reach the repository in JOURNEYMAN_REPOS from its network?"
    } else if r.contains("not found") || r.contains("spawn") || r.contains("no such file") {
        "is the agent command (JOURNEYMAN_AGENT_COMMAND) and the wrapper (JOURNEYMAN_ENV_WRAPPER, e.g. nix) installed on this pod?"
    } else {
        "what in this pod's environment must change for the error above to go away?"
    }
}

fn one_line(text: &str) -> String {
    truncate(
        &text.lines().next().unwrap_or("").replace(['\r', '\t'], " "),
        300,
    )
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        text.chars().take(max).collect::<String>() + "..."
    }
}

/// A rule's name for logs.
pub fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::MyEpic => "continue my Epic",
        Rule::Bug => "bug",
        Rule::Task => "task under an Epic",
        Rule::Standalone => "standalone",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_attempts_count_failures_and_dead_runs_since_the_last_escalation() {
        let c = |v: &[&str]| failed_attempts(v.iter().copied());
        assert_eq!(c(&[]), 0);
        assert_eq!(
            c(&[
                "journeyman: **failed** on pod `a`: x",
                "a human comment",
                "journeyman: **failed** on pod `b`: y"
            ]),
            2
        );
        assert_eq!(
            c(&["journeyman: pod `a` restarted and is **resuming** this work package."]),
            1,
            "a resume means a run died"
        );
        assert_eq!(
            c(&["journeyman: pod `b` **took over** this work package from pod `a`"]),
            1
        );
        assert_eq!(
            c(&["journeyman: agent run **failed**: session x"]),
            0,
            "the usage line of a failed run is not an attempt"
        );
        assert_eq!(
            c(&[
                "journeyman: **failed** on pod `a`: x",
                "journeyman: **escalated** on pod `a`: y",
                "journeyman: **failed** on pod `a`: z"
            ]),
            1
        );
        assert_eq!(
            c(&["I think journeyman: **failed** on pod `a` is wrong"]),
            0,
            "only the worker's own comments count"
        );
    }

    #[test]
    fn environment_questions_name_what_to_check() {
        assert!(
            question("preparing the workspace failed: cannot clone")
                .contains("reach the repository")
        );
        assert!(
            question("the agent command `claude` was not found")
                .contains("JOURNEYMAN_AGENT_COMMAND")
        );
        assert!(question("authentication failed for the remote").contains("JOURNEYMAN_GIT_TOKEN"));
    }
}
