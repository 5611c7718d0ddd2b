//! The optimistic writes that take work and give Epics back.
//!
//! A claim is one PATCH carrying the `lockVersion` the decision saw, setting status, assignee and
//! pod field together. A 409 means another pod (or a human) changed the work package first: the
//! caller counts the conflict, skips it and re-decides on the same snapshot, never retrying the
//! write with a fresh `lockVersion`.

use std::sync::Arc;

use tracing::info;

use crate::audit::{Audit, Event};
use crate::board::{Policy, Release, Snapshot};
use crate::openproject::{ApiError, Client, Notify, WorkPackagePatch, hal};
use crate::snapshot::Resolved;

/// The board writes of one pod.
pub(super) struct Writes<'a> {
    pub client: &'a Client,
    pub r: &'a Resolved,
    pub pod: &'a str,
    pub policy: &'a Policy,
}

impl Writes<'_> {
    fn lock_version(snap: &Snapshot, id: u64) -> u64 {
        snap.get(id).map(|i| i.lock_version).unwrap_or(0)
    }

    /// The claim: one PATCH with the snapshot's lockVersion.
    pub async fn claim(&self, snap: &Snapshot, id: u64) -> Result<hal::WorkPackage, ApiError> {
        let patch = WorkPackagePatch {
            lock_version: Self::lock_version(snap, id),
            status: Some(self.r.catalog.active_status),
            assignee: Some(Some(self.r.agent_user)),
            custom_fields: vec![(self.r.pod_field.clone(), Some(self.pod.to_string()))],
            notify: Notify::Routine,
        };
        let result = self.client.update_work_package(id, &patch).await;
        let label = match &result {
            Ok(_) => "won",
            Err(e) if e.is_conflict() => "conflict",
            Err(e) if e.is_refusal() => "refused",
            Err(_) => "error",
        };
        metrics::counter!("journeyman_claims_total", "result" => label).increment(1);
        result
    }

    /// Claims an Epic and marks it mine and active in the cycle's snapshot.
    pub async fn claim_epic(&self, snap: &mut Arc<Snapshot>, epic: u64) -> Result<(), ApiError> {
        let claimed = self.claim(snap, epic).await?;
        info!(epic, "claimed Epic");
        if let Some(item) = Arc::make_mut(snap).items.get_mut(&epic) {
            item.pod = Some(self.pod.to_string());
            item.status = self.r.catalog.active_status;
            item.lock_version = claimed.lock_version;
        }
        Ok(())
    }

    /// Takes a work package to escalate it: one optimistic write of the pod field (no status, so
    /// nobody sees it as started), so that exactly one pod escalates it.
    pub async fn lock(&self, snap: &Snapshot, id: u64) -> Result<(), ApiError> {
        let patch = WorkPackagePatch {
            lock_version: Self::lock_version(snap, id),
            custom_fields: vec![(self.r.pod_field.clone(), Some(self.pod.to_string()))],
            ..WorkPackagePatch::default()
        };
        self.client.update_work_package(id, &patch).await.map(drop)
    }

    /// Closes a Spike a human answered on the work package it holds (the Spike's lockVersion from
    /// the snapshot: a change since, by a human, wins), with a comment naming who answered.
    /// Returns the closed status.
    pub async fn close_answered_spike(
        &self,
        snap: &Snapshot,
        spike: u64,
        wp: u64,
        by: &str,
    ) -> Result<u64, ApiError> {
        let closed = self.r.close_status();
        let patch = WorkPackagePatch {
            lock_version: Self::lock_version(snap, spike),
            status: Some(closed),
            ..WorkPackagePatch::default()
        };
        self.client.update_work_package(spike, &patch).await?;
        let event = Event::SpikeAnswered {
            pod: self.pod.to_string(),
            by: by.to_string(),
            wp,
        };
        Audit::new(self.client.clone(), spike).post(&event).await;
        Ok(closed)
    }

    fn lease(&self) -> String {
        humantime::format_duration(self.policy.claim_lease_std()).to_string()
    }

    /// Takes over a claim whose pod never came back: the Epic first (if that pod owned it), then the
    /// work package, each with one optimistic PATCH, and a comment saying so.
    pub async fn take_over(
        &self,
        snap: &Snapshot,
        wp: u64,
        epic: Option<u64>,
        from: &str,
    ) -> Result<hal::WorkPackage, ApiError> {
        let took = |epic| Event::TookOver {
            pod: self.pod.to_string(),
            from: from.to_string(),
            lease: self.lease(),
            epic,
        };
        if let Some(e) = epic {
            self.claim(snap, e).await?;
            Audit::new(self.client.clone(), e).post(&took(true)).await;
        }
        let fresh = self.claim(snap, wp).await?;
        Audit::new(self.client.clone(), wp).post(&took(false)).await;
        metrics::counter!("journeyman_takeovers_total").increment(1);
        info!(wp, from, "took over a stale claim");
        Ok(fresh)
    }

    /// The lockVersion to release an Epic with. A stale Epic of another pod: the snapshot's, so that
    /// any change since cancels the release (409). An Epic this pod owns: read fresh, since a
    /// child's status change re-derives the parent (its lockVersion moves: API-NOTES section 13),
    /// and still this pod's, or it is not released.
    async fn release_lock_version(
        &self,
        snap: &Snapshot,
        epic: u64,
        reason: Release,
    ) -> Result<u64, ApiError> {
        if reason == Release::Stale {
            return Ok(Self::lock_version(snap, epic));
        }
        let current = self.client.work_package(epic).await?;
        if current.custom_string(&self.r.pod_field) != Some(self.pod) {
            return Err(ApiError::local(
                crate::openproject::ErrorKind::Conflict,
                "GET",
                &format!("/api/v3/work_packages/{epic}"),
                "the Epic is no longer this pod's: a human or another pod changed it".into(),
            ));
        }
        Ok(current.lock_version)
    }

    /// Releases an Epic (see [`Writes::release_lock_version`]): pod field and assignee cleared, the
    /// ready status unless it is finished (then a human reviews and closes it).
    pub async fn release_epic(
        &self,
        snap: &Snapshot,
        epic: u64,
        reason: Release,
    ) -> Result<(), ApiError> {
        let previous = snap
            .get(epic)
            .and_then(|i| i.pod.clone())
            .unwrap_or_default();
        let patch = WorkPackagePatch {
            lock_version: self.release_lock_version(snap, epic, reason).await?,
            status: reason.resets_status().then_some(self.r.ready_status),
            assignee: Some(None),
            custom_fields: vec![(self.r.pod_field.clone(), None)],
            notify: Notify::Routine,
        };
        self.client.update_work_package(epic, &patch).await?;
        let pod = self.pod.to_string();
        let event = match reason {
            Release::Stale => Event::EpicStale {
                pod,
                previous,
                stale_after: humantime::format_duration(
                    self.policy.epic_stale_after.to_std().unwrap_or_default(),
                )
                .to_string(),
            },
            Release::Finished => Event::EpicFinished { pod },
            Release::Paused => Event::EpicPaused { pod },
            Release::GivenBack { child } => Event::EpicGivenBack { pod, child },
        };
        Audit::new(self.client.clone(), epic).post(&event).await;
        info!(epic, ?reason, "released Epic");
        Ok(())
    }
}
