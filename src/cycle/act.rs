//! Carrying out one action of the decision: reading a trail or blockers, closing an answered
//! Spike, claiming (the Epic first), resuming, taking over, escalating, releasing.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Cycle, Flow, Worker, record_queue_wait};
use crate::board::{Action, Ineligible, ineligibility};
use crate::task::{Execute, Start};

impl<E: Execute> Worker<E> {
    /// Carries out one action of the decision.
    pub(super) async fn act(
        &mut self,
        cycle: &mut Cycle,
        action: Action,
        claims: &CancellationToken,
        task: &CancellationToken,
    ) -> anyhow::Result<Flow> {
        let starts = matches!(
            action,
            Action::Resume { .. }
                | Action::FinishReport { .. }
                | Action::TakeOver { .. }
                | Action::Claim { .. }
                | Action::Escalate { .. }
        );
        if starts && claims.is_cancelled() {
            return Ok(Flow::Done); // stop claiming at once on shutdown
        }
        match action {
            Action::Sleep => return Ok(Flow::Done),
            Action::Paused { reason } => {
                info!(%reason, "paused after an environment failure; not claiming");
                return Ok(Flow::Done);
            }
            Action::ReadHistory { wp } => self.read_history(cycle, wp).await,
            Action::CheckBlockers { wp } => self.check_blockers(cycle, wp).await?,
            Action::AnswerSpike { wp, spike, by } => self.answer_spike(cycle, wp, spike, &by).await,
            Action::ReleaseEpic { epic, reason } => self.release(cycle, epic, reason).await,
            Action::Escalate { wp, attempts, lock } => {
                self.escalate(cycle, wp, attempts, lock).await?
            }
            Action::Resume { wp } => {
                let fresh = self
                    .client()
                    .work_package(wp)
                    .await
                    .with_context(|| format!("re-reading #{wp} to resume it"))?;
                info!(wp, "resuming my own work");
                return self.run(cycle, fresh, Start::Resumed, task).await;
            }
            Action::FinishReport { wp, pushed } => {
                info!(wp, pushed, "finishing the report of my last run");
                cycle.progress.skip.insert(wp);
                self.writes()
                    .finish_report(wp, pushed)
                    .await
                    .with_context(|| format!("finishing the report on #{wp}"))?;
            }
            Action::TakeOver { wp, epic, from } => {
                match self.writes().take_over(&cycle.snap, wp, epic, &from).await {
                    Ok(fresh) => return self.run(cycle, fresh, Start::TookOver, task).await,
                    Err(e) if e.is_conflict() => self.lost(cycle, wp, "takeover"),
                    Err(e) => return Err(e).context(format!("taking over #{wp}")),
                }
            }
            Action::Claim { wp, epic, rule } => {
                return self.claim(cycle, wp, epic, rule, task).await;
            }
        }
        Ok(Flow::Decide)
    }

    /// Reads a candidate's trail: its failed attempts, a refusal, an answer, for the decision.
    async fn read_history(&mut self, cycle: &mut Cycle, wp: u64) {
        let history = self.history(wp).await;
        cycle
            .progress
            .attempts
            .insert(wp, history.failed_attempts());
        if let Some(pushed) = history.reported_outcome() {
            cycle.progress.reported.insert(wp, pushed);
        }
        if let Some(at) = history.last_refusal() {
            cycle.progress.refused_at.insert(wp, at);
        }
        let open = self.open_spike_filed(cycle, wp).await;
        if let Some(by) = history.answer(&self.policy.mention, open) {
            cycle.progress.answers.insert(wp, by);
        }
        if let Some(item) = cycle.snap.get(wp) {
            self.trails_read.insert(wp, item.updated_at);
        }
        cycle.histories.insert(wp, Arc::new(history));
    }

    /// The open Spike that alone holds `wp` back, and when it was filed (an answer counts from
    /// then); `None` for a candidate not waiting behind a Spike, or if the Spike cannot be read.
    async fn open_spike_filed(&self, cycle: &Cycle, wp: u64) -> Option<(u64, DateTime<Utc>)> {
        let item = cycle.snap.get(wp)?;
        let catalog = &self.resolved().catalog;
        let skip = &cycle.progress.skip;
        let Some(Ineligible::OpenSpike(spike)) =
            ineligibility(&cycle.snap, catalog, &self.pod, item, skip)
        else {
            return None;
        };
        match self.client().work_package(spike).await {
            Ok(s) => Some((spike, s.created_at?)),
            Err(e) => {
                warn!(wp, spike, error = %e, "cannot read the Spike; an answer counts from the failure comment");
                None
            }
        }
    }

    /// Reads a candidate's blockers before claiming it (those outside the snapshot included).
    async fn check_blockers(&mut self, cycle: &mut Cycle, wp: u64) -> anyhow::Result<()> {
        let found = self
            .reader
            .blockers_of(wp, &cycle.snap)
            .await
            .with_context(|| format!("reading the blockers of #{wp} before claiming it"))?;
        cycle.progress.blockers_checked.insert(wp);
        if !found.from.is_empty() {
            Arc::make_mut(&mut cycle.snap).add_blockers(
                wp,
                found.from,
                found.open_outside,
                found.unreadable,
            );
        }
        Ok(())
    }

    /// Closes a Spike a human answered on the work package it holds.
    async fn answer_spike(&mut self, cycle: &mut Cycle, wp: u64, spike: u64, by: &str) {
        cycle.progress.answers.remove(&wp);
        match self
            .writes()
            .close_answered_spike(&cycle.snap, spike, wp, by)
            .await
        {
            Ok(closed) => {
                info!(wp, spike, %by, "closed an answered Spike");
                let snap = Arc::make_mut(&mut cycle.snap);
                if let Some(item) = snap.items.get_mut(&spike) {
                    item.status = closed;
                }
                // A child's status change re-derives its parent (a new lockVersion:
                // API-NOTES section 13): read it again before the claim.
                let fresh = self.client().work_package(wp).await;
                if let (Ok(fresh), Some(item)) = (fresh, snap.items.get_mut(&wp)) {
                    item.lock_version = fresh.lock_version;
                    item.updated_at = fresh.updated_at;
                }
                self.reader.invalidate();
            }
            Err(e) => {
                warn!(wp, spike, error = %e, "could not close the answered Spike; trying again next cycle");
                self.trails_read.remove(&wp);
                cycle.progress.skip.insert(wp);
            }
        }
    }

    /// Claims the work package (and its Epic first, if this pod does not own it yet) and runs it.
    async fn claim(
        &mut self,
        cycle: &mut Cycle,
        wp: u64,
        epic: Option<u64>,
        rule: crate::board::Rule,
        task: &CancellationToken,
    ) -> anyhow::Result<Flow> {
        if let Some(e) = epic {
            match self.writes().claim_epic(&mut cycle.snap, e).await {
                Ok(()) => {
                    cycle.progress.claimed_epics.insert(e, wp);
                }
                Err(err) if err.is_conflict() => {
                    self.lost(cycle, e, "Epic claim");
                    return Ok(Flow::Decide);
                }
                Err(err) if err.is_refusal() => {
                    self.refused_claim(cycle, e, &err).await;
                    return Ok(Flow::Decide);
                }
                Err(err) => return Err(err).context(format!("claiming Epic #{e}")),
            }
        }
        match self.writes().claim(&cycle.snap, wp).await {
            Ok(fresh) => {
                info!(wp, rule = rule.name(), "claimed");
                record_queue_wait(&cycle.snap, wp);
                return self.run(cycle, fresh, Start::Claimed, task).await;
            }
            Err(err) if err.is_conflict() => self.lost(cycle, wp, "claim"),
            Err(err) if err.is_refusal() => self.refused_claim(cycle, wp, &err).await,
            Err(err) => return Err(err).context(format!("claiming #{wp}")),
        }
        Ok(Flow::Decide)
    }
}
