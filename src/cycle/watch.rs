//! The board is the off switch: while the agent runs, the pod watches its own work package and the
//! Epic above it, one small read each per poll interval (with the client's usual retries and
//! backoff), and stops the run when a human takes the work away (`board::watch::verdict`).
//!
//! A stop cancels the run's token (the agent's whole process group is stopped, nothing is
//! committed or pushed) and records who changed what in the task's [`StopFlag`]; the executor keeps
//! the checkout and reports [`Outcome::Stopped`](crate::task::Outcome::Stopped). The trail is read
//! only when the work package changed, to find a stop comment and whose change it was. On the same
//! tick, ready work pinned to this pod is told once that it is queued behind this run.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Worker;
use crate::audit::{Audit, Event};
use crate::board::{StopReason, Watched, WatchedEpic, verdict};
use crate::openproject::{ApiError, ErrorKind, Filter, WorkPackageQuery, hal};
use crate::task::{BoardStop, Execute, StopFlag};

/// What the watcher keeps between its reads.
pub(super) struct Watch {
    pub wp: u64,
    pub epic: Option<u64>,
    /// The work package's children when the run began: a new open Spike among them is a human's.
    pub children: BTreeSet<u64>,
    pub began: DateTime<Utc>,
    pub stop: StopFlag,
    /// Human comments since the run began, as last counted.
    pub new_comments: Arc<AtomicU32>,
    /// Cancelled to stop the run.
    pub run: CancellationToken,
    /// Cancelled when the run is over.
    pub done: CancellationToken,
}

impl<E: Execute> Worker<E> {
    /// Watches until the run is over or a human's change stops it.
    pub(super) async fn watch(&self, w: Watch) {
        let mut seen: Option<DateTime<Utc>> = None;
        let mut said = BTreeSet::new();
        loop {
            tokio::select! {
                _ = w.done.cancelled() => return,
                _ = tokio::time::sleep(self.watch_every) => {}
            }
            if let Err(e) = self.say_queued(&w, &mut said).await {
                warn!(wp = w.wp, error = %e, "cannot read the work pinned to this pod; trying again");
            }
            match self.look(&w, &mut seen).await {
                Ok(Some(stop)) => {
                    let (reason, by) = (stop.reason.label(), stop.by.clone());
                    // The flag first: whatever ends the run from here on (a SIGTERM too), it
                    // ends as stopped, and the human's values are never written over.
                    w.stop.set(stop);
                    w.run.cancel();
                    metrics::counter!("journeyman_runs_stopped_total", "reason" => reason)
                        .increment(1);
                    info!(wp = w.wp, reason, by = ?by, "a human's change on the board stops the run");
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(wp = w.wp, error = %e, "cannot read the work package while its run goes on; trying again")
                }
            }
        }
    }

    /// One look at the board: the verdict, with whose change it was.
    async fn look(
        &self,
        w: &Watch,
        seen: &mut Option<DateTime<Utc>>,
    ) -> Result<Option<BoardStop>, ApiError> {
        let r = self.resolved();
        let wp = match self.client().work_package(w.wp).await {
            Ok(wp) => Some(wp),
            Err(e) if gone(&e) => None,
            Err(e) => return Err(e),
        };
        let epic = match w.epic {
            Some(id) => Some(match self.client().work_package(id).await {
                Ok(e) => watched_epic(&e, &r.pod_field),
                Err(e) if gone(&e) => WatchedEpic {
                    id,
                    status: *r.catalog.closed_statuses.iter().next().unwrap_or(&0),
                    pod: None,
                },
                Err(e) => return Err(e),
            }),
            None => None,
        };
        let Some(wp) = wp else {
            return Ok(Some(BoardStop {
                reason: StopReason::Deleted,
                by: None,
            }));
        };
        let changed = *seen != Some(wp.updated_at);
        *seen = Some(wp.updated_at);
        let (stop_comment, by) = if changed {
            let trail = self.trail_since(w.wp, w.began).await?;
            w.new_comments.store(trail.comments, Ordering::Relaxed);
            (trail.stop_comment, trail.by)
        } else {
            (false, None)
        };
        let watched = Watched {
            status: wp.links.status.id().unwrap_or(0),
            pod: wp.custom_string(&r.pod_field).map(|s| s.trim().to_string()),
            project: wp.links.project.id().unwrap_or(0),
            new_open_spikes: self.new_open_spikes(&wp, &w.children).await?,
        };
        let reason = verdict(
            &r.catalog,
            &self.pod,
            Some(&watched),
            epic.as_ref(),
            stop_comment,
        );
        Ok(reason.map(|reason| BoardStop { reason, by }))
    }

    /// Since the run began: whether a human wrote the stop mention, who made the latest change
    /// that was not the worker's own comment, and how many comments humans wrote.
    async fn trail_since(&self, wp: u64, began: DateTime<Utc>) -> Result<Trail, ApiError> {
        let acts = self.client().activities(wp).await?;
        let stop = format!("{} stop", self.policy.mention);
        let recent = acts
            .iter()
            .filter(|a| a.created_at.is_none_or(|at| at >= began));
        let mut trail = Trail::default();
        for a in recent {
            let text = a.comment_raw();
            if crate::audit::parse(text).is_some() {
                continue; // the worker's own comment
            }
            if text.trim_start().starts_with(&stop) {
                trail.stop_comment = true;
            }
            if !text.trim().is_empty() {
                trail.comments += 1;
            }
            trail.by = a
                .links
                .user
                .as_ref()
                .and_then(|u| u.title.clone())
                .or(trail.by);
        }
        Ok(trail)
    }

    /// Work pinned to this pod and ready while it is busy: said once on each ("queued behind #N"),
    /// so a human who pinned it knows why nothing happens; the count is a metric.
    async fn say_queued(&self, w: &Watch, said: &mut BTreeSet<u64>) -> Result<(), ApiError> {
        let r = self.resolved();
        let query = WorkPackageQuery {
            filters: vec![
                Filter::new("status", "=", &r.catalog.ready_statuses),
                Filter::new(&r.pod_field, "~", [self.pod.as_str()]),
            ],
            ..WorkPackageQuery::default()
        };
        let pinned: Vec<_> = self
            .client()
            .work_packages(&query)
            .await?
            .into_iter()
            .filter(|wp| wp.id != w.wp)
            .filter(|wp| wp.custom_string(&r.pod_field).map(str::trim) == Some(self.pod.as_str()))
            .collect();
        metrics::gauge!("journeyman_pinned_queued").set(pinned.len() as f64);
        let event = Event::Queued {
            pod: self.pod.to_string(),
            behind: w.wp,
        };
        for wp in &pinned {
            if !said.insert(wp.id) {
                continue;
            }
            // Said once per run it waits behind, also across a restart of this pod.
            let trail = self.client().activities(wp.id).await?;
            let already = trail
                .iter()
                .any(|a| crate::audit::parse(a.comment_raw()).as_ref() == Some(&event));
            if !already {
                Audit::new(self.client().clone(), wp.id).post(&event).await;
                info!(
                    wp = wp.id,
                    behind = w.wp,
                    "pinned work queued behind this pod's run"
                );
            }
        }
        Ok(())
    }

    /// Open Spikes among the children the work package did not have when the run began.
    async fn new_open_spikes(
        &self,
        wp: &hal::WorkPackage,
        at_start: &BTreeSet<u64>,
    ) -> Result<Vec<u64>, ApiError> {
        let r = self.resolved();
        let mut out = Vec::new();
        for child in wp.links.children.iter().filter_map(hal::Link::id) {
            if at_start.contains(&child) {
                continue;
            }
            let c = self.client().work_package(child).await?;
            let open = c
                .links
                .status
                .id()
                .is_some_and(|s| !r.catalog.closed_statuses.contains(&s));
            if c.links.type_.id() == Some(r.spike_type) && open {
                out.push(child);
            }
        }
        Ok(out)
    }
}

/// What the trail since the run began holds.
#[derive(Debug, Default)]
struct Trail {
    stop_comment: bool,
    by: Option<String>,
    comments: u32,
}

fn gone(e: &ApiError) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Forbidden)
}

fn watched_epic(e: &hal::WorkPackage, pod_field: &str) -> WatchedEpic {
    WatchedEpic {
        id: e.id,
        status: e.links.status.id().unwrap_or(0),
        pod: e.custom_string(pod_field).map(|s| s.trim().to_string()),
    }
}

/// How often a running task's work package is looked at when nothing else says: the default
/// poll interval.
pub(super) const WATCH_EVERY: Duration = Duration::from_secs(60);
