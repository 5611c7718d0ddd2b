//! The work cycle of one pod, the imperative shell around `board::decide`: read the snapshot, then
//! ask the decision what to do and do it, until it says sleep.
//!
//! The shell decides nothing. Each [`Action`] is carried out (a trail read, a claim, a release, an
//! escalation, a task) and what it taught (a lost claim, an Epic claimed, a trail's attempts, a
//! finished task) goes back into [`Progress`] for the next decision on the same snapshot. After a
//! task under an Epic the snapshot is read again, so the releases that follow it (the Epic's last
//! work done, or its owner paused) happen in the same cycle.
//!
//! - [`claim`]: the optimistic writes that take work (claims, takeovers, escalation locks) and give
//!   Epics back.
//! - [`report`]: what follows a task or an escalation on the board (status, pod field, Spike).
//!
//! This module never touches git or the agent: it hands a [`Task`] to an [`Execute`]
//! implementation and reports the [`Outcome`].

mod act;
mod claim;
mod context;
mod report;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::audit::{Audit, Event, History};
use crate::board::{
    Paced, Pause, Policy, Progress, Release, Snapshot, decide, eligible_count, target,
};
use crate::openproject::{Client, hal};
use crate::snapshot::{BoardReader, Resolved};
use crate::task::{Execute, FailureKind, Outcome, Start};

use claim::Writes;

/// What one cycle did, for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleReport {
    /// The work package worked on, if any.
    pub worked: Option<u64>,
    pub outcome: Option<Outcome>,
    /// Work packages escalated instead of started.
    pub escalated: Vec<u64>,
    pub released_epic: Option<u64>,
    pub conflicts: u32,
    pub eligible: usize,
    /// API requests this cycle made, and whether the snapshot was read in full.
    pub requests: u64,
    pub full_snapshot: bool,
}

impl CycleReport {
    /// Whether the cycle did something, so that more work may be waiting right away.
    pub fn busy(&self) -> bool {
        self.worked.is_some() || self.released_epic.is_some() || !self.escalated.is_empty()
    }
}

/// One pod's worker: the board reader, the executor, the policy, and the pod's pause.
pub struct Worker<E: Execute> {
    reader: BoardReader,
    exec: Arc<E>,
    pod: String,
    policy: Policy,
    /// After an environment failure: the decision claims nothing until it ends.
    pause: Option<Pause>,
    /// Trails read of work packages waiting behind a Spike, with the `updatedAt` they had: not read
    /// again until they change (pod-local, like the pause; a restarted pod reads them once more).
    trails_read: BTreeMap<u64, chrono::DateTime<Utc>>,
    /// How often a running task's work package is looked at (the poll interval).
    watch_every: std::time::Duration,
}

/// One cycle's working state: the snapshot the decisions are made on, and what they taught.
struct Cycle {
    snap: Arc<Snapshot>,
    progress: Progress,
    histories: BTreeMap<u64, Arc<History>>,
    report: CycleReport,
}

/// Whether the cycle goes on deciding after an action.
enum Flow {
    Decide,
    Done,
}

impl<E: Execute> Worker<E> {
    pub fn new(reader: BoardReader, exec: Arc<E>, pod: String, policy: Policy) -> Worker<E> {
        Worker {
            reader,
            exec,
            pod,
            policy,
            pause: None,
            trails_read: BTreeMap::new(),
            watch_every: watch::WATCH_EVERY,
        }
    }

    /// Looks at a running task's work package this often (the pod's poll interval).
    pub fn with_watch_every(mut self, every: std::time::Duration) -> Worker<E> {
        self.watch_every = every;
        self
    }

    /// Why this pod is not claiming right now, if it is paused after an environment failure.
    pub fn paused(&self) -> Option<String> {
        self.pause
            .as_ref()
            .filter(|p| p.active(Utc::now()))
            .map(|p| p.reason.clone())
    }

    fn client(&self) -> &Client {
        self.reader.client()
    }

    fn resolved(&self) -> &Resolved {
        self.reader.resolved()
    }

    fn writes(&self) -> Writes<'_> {
        Writes {
            client: self.reader.client(),
            r: self.reader.resolved(),
            pod: &self.pod,
            policy: &self.policy,
        }
    }

    /// One cycle. `claims` stops claiming new work (SIGTERM); a running task stops on `task`.
    pub async fn cycle(
        &mut self,
        claims: &CancellationToken,
        task: &CancellationToken,
    ) -> anyhow::Result<CycleReport> {
        let span = info_span!("cycle", pod = %self.pod);
        self.cycle_inner(claims, task).instrument(span).await
    }

    async fn cycle_inner(
        &mut self,
        claims: &CancellationToken,
        task: &CancellationToken,
    ) -> anyhow::Result<CycleReport> {
        let before = self.client().stats();
        let (snap, fetch) = self.reader.snapshot().await.context("reading the board")?;
        let eligible = eligible_count(&snap, &self.resolved().catalog, &self.pod);
        metrics::gauge!("journeyman_eligible_work").set(eligible as f64);
        let mut progress = Progress::new(self.pause.clone());
        progress.trails_read = self.trails_read.clone();
        let mut cycle = Cycle {
            snap,
            progress,
            histories: BTreeMap::new(),
            report: CycleReport {
                full_snapshot: fetch.full,
                eligible,
                ..CycleReport::default()
            },
        };
        loop {
            let action = decide(
                &cycle.snap,
                &self.resolved().catalog,
                &self.pod,
                Utc::now(),
                &self.policy,
                &cycle.progress,
            );
            match self.act(&mut cycle, action, claims, task).await? {
                Flow::Decide => {}
                Flow::Done => break,
            }
        }
        let mut report = cycle.report;
        report.requests = (self.client().stats() - before).requests;
        metrics::counter!("journeyman_cycles_total").increment(1);
        metrics::gauge!("journeyman_cycle_api_requests").set(report.requests as f64);
        Ok(report)
    }

    /// A trail for the decision; one that cannot be read counts as empty (the task runs, and its
    /// failure, if any, is counted next time).
    async fn history(&self, wp: u64) -> History {
        match self.client().activities(wp).await {
            Ok(acts) => History::from_activities(&acts),
            Err(e) => {
                warn!(wp, error = %e, "cannot read the ticket's history for loop detection");
                History::default()
            }
        }
    }

    /// A write lost to another writer (409): count it, skip that work package for the rest of the
    /// cycle, and read the board afresh next cycle. Never retried with a fresh lockVersion.
    fn lost(&mut self, cycle: &mut Cycle, id: u64, what: &str) {
        info!(
            wp = id,
            what, "lost to another writer (409); skipping it this cycle"
        );
        cycle.report.conflicts += 1;
        metrics::counter!("journeyman_conflicts_total").increment(1);
        cycle.progress.skip.insert(id);
        self.reader.invalidate();
    }

    /// A claim the board refused as invalid (422, e.g. the workflow does not allow the active
    /// status for the type): said once on the ticket, for a human, and passed over; not tried again
    /// until the decision's retry interval has passed. The rest of the board goes on.
    async fn refused_claim(
        &mut self,
        cycle: &mut Cycle,
        id: u64,
        err: &crate::openproject::ApiError,
    ) {
        warn!(wp = id, error = %err, "the board refused the claim; a human must change the workflow");
        cycle.progress.skip.insert(id);
        let history = cycle.histories.get(&id).cloned().unwrap_or_default();
        self.writes()
            .refused_claim(&cycle.snap, id, err, history)
            .await;
    }

    async fn release(&mut self, cycle: &mut Cycle, epic: u64, reason: Release) {
        cycle.progress.skip.insert(epic);
        if matches!(reason, Release::Stale | Release::Finished) {
            cycle.progress.released = true;
        }
        match self.writes().release_epic(&cycle.snap, epic, reason).await {
            Ok(()) => cycle.report.released_epic = Some(epic),
            Err(e) if e.is_conflict() => {
                cycle.report.conflicts += 1;
                metrics::counter!("journeyman_conflicts_total").increment(1);
            }
            Err(e) => warn!(epic, ?reason, error = %e, "releasing an Epic failed"),
        }
        self.reader.invalidate();
    }

    async fn escalate(
        &mut self,
        cycle: &mut Cycle,
        wp: u64,
        attempts: u32,
        lock: bool,
    ) -> anyhow::Result<()> {
        if lock {
            match self.writes().lock(&cycle.snap, wp).await {
                Ok(()) => {}
                Err(e) if e.is_conflict() => {
                    self.lost(cycle, wp, "escalation");
                    return Ok(());
                }
                Err(e) => return Err(e).context(format!("taking #{wp} to escalate it")),
            }
        }
        cycle.progress.skip.insert(wp);
        self.reader.invalidate();
        self.writes()
            .escalate(wp, attempts)
            .await
            .with_context(|| format!("escalating #{wp}"))?;
        metrics::counter!("journeyman_tasks_total", "outcome" => "escalated").increment(1);
        info!(wp, attempts, "escalated instead of run again");
        cycle.report.escalated.push(wp);
        Ok(())
    }

    /// Says on the ticket how the task starts: claimed (and sent back for rework), or resumed.
    async fn announce(&self, task: &crate::task::Task, start: Start, audit: &Audit) {
        let id = task.wp.id;
        match start {
            Start::Claimed | Start::Rework => {
                let (owner, _) = task.branch_owner();
                audit
                    .post(&Event::Starting {
                        pod: self.pod.clone(),
                        owner,
                        repo: task.repo.url.clone(),
                        base: task.repo.base_branch.clone(),
                    })
                    .await;
                if start == Start::Rework {
                    let (by, first_line) = task
                        .history
                        .rework_request()
                        .unwrap_or_else(|| ("a human".into(), "(no comment)".into()));
                    info!(wp = id, %by, "rework requested");
                    audit
                        .post(&Event::Rework {
                            pod: self.pod.clone(),
                            by,
                            first_line,
                        })
                        .await;
                }
            }
            Start::Resumed => {
                audit
                    .post(&Event::Resuming {
                        pod: self.pod.clone(),
                    })
                    .await
            }
            Start::TookOver => {}
        }
    }

    /// Runs the task and reports its outcome; then, for work under an Epic, reads the board again
    /// for the releases that follow.
    async fn run(
        &mut self,
        cycle: &mut Cycle,
        wp: hal::WorkPackage,
        start: Start,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Flow> {
        let id = wp.id;
        self.reader.invalidate();
        let history = cycle.histories.remove(&id).unwrap_or_default();
        let span =
            info_span!("work_package", pod = %self.pod, wp = id, epic = tracing::field::Empty);
        let outcome = self
            .execute(&cycle.snap, wp, start, history, cancel)
            .instrument(span)
            .await?;
        let (paced, reason) = match &outcome {
            Outcome::Failed {
                kind: FailureKind::Environment(_),
                reason,
                ..
            } => (Paced::Environment, crate::audit::one_line(reason)),
            Outcome::Interrupted { .. } | Outcome::Stopped(_) => {
                (Paced::Interrupted, String::new())
            }
            _ => (Paced::Ran, String::new()),
        };
        self.pause = Pause::after(self.pause.take(), paced, &reason, Utc::now());
        if let Some(p) = &self.pause {
            warn!(until = %p.until, reason = %p.reason, "environment failure: pausing claims on this pod");
        }
        metrics::gauge!("journeyman_environment_paused")
            .set(f64::from(u8::from(self.pause.is_some())));
        cycle.report.worked = Some(id);
        cycle.report.outcome = Some(outcome);
        cycle.progress.ran = true;
        cycle.progress.pause = self.pause.clone();
        // Only an Epic can need releasing right after a task (its last work done, or its owner
        // paused); other releases wait for the next cycle's read.
        if target(&cycle.snap, &self.resolved().catalog, id)
            .epic
            .is_none()
        {
            return Ok(Flow::Done);
        }
        match self.reader.snapshot().await {
            Ok((snap, _)) => {
                cycle.snap = snap;
                Ok(Flow::Decide)
            }
            Err(e) => {
                warn!(error = %e, "cannot read the board after the task; the next cycle will");
                Ok(Flow::Done)
            }
        }
    }

    async fn execute(
        &self,
        snap: &Snapshot,
        wp: hal::WorkPackage,
        start: Start,
        history: Arc<History>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Outcome> {
        let id = wp.id;
        let start = match start {
            Start::Claimed if history.last_outcome_pushed() => Start::Rework,
            other => other,
        };
        let task = self.task(snap, wp, start, history).await?;
        if let Some(e) = &task.epic {
            tracing::Span::current().record("epic", e.id);
        }
        let audit = Audit::new(self.client().clone(), id);
        self.announce(&task, start, &audit).await;
        let started = std::time::Instant::now();
        let history = task.history.clone();
        // The run stops on a shutdown (the parent token) or on a human's change (the watcher).
        let run = cancel.child_token();
        let done = CancellationToken::new();
        let w = watch::Watch {
            wp: id,
            epic: task.epic.as_ref().map(|e| e.id),
            children: task
                .wp
                .links
                .children
                .iter()
                .filter_map(hal::Link::id)
                .collect(),
            began: Utc::now(),
            stop: task.stop.clone(),
            new_comments: task.new_comments.clone(),
            run: run.clone(),
            done: done.clone(),
        };
        let (outcome, ()) = tokio::join!(
            async {
                let outcome = self.exec.execute(task, audit, run.clone()).await;
                done.cancel();
                outcome
            },
            self.watch(w)
        );
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("journeyman_task_duration_seconds").record(seconds);
        metrics::counter!("journeyman_tasks_total", "outcome" => outcome.label()).increment(1);
        info!(outcome = outcome.label(), seconds, "task finished");
        let already = if matches!(start, Start::Claimed | Start::Rework) {
            Arc::default()
        } else {
            history
        };
        self.writes()
            .report(id, &outcome, already)
            .await
            .with_context(|| format!("reporting the outcome of #{id}"))?;
        Ok(outcome)
    }
}

/// Queue wait: from the work package's last change (when it became ready, pinned or unblocked at
/// the latest) to this claim.
fn record_queue_wait(snap: &Snapshot, wp: u64) {
    if let Some(item) = snap.get(wp) {
        let waited = (Utc::now() - item.updated_at).to_std().unwrap_or_default();
        metrics::histogram!("journeyman_queue_wait_seconds").record(waited.as_secs_f64());
    }
}
