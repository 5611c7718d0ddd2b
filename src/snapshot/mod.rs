//! Reading the board: the configured names resolved once at start-up ([`resolve`]), and snapshots
//! for the decision built with as few requests as possible ([`BoardReader`]).
//!
//! Between full reads ([`full`](BoardReader::full), in `full.rs`) an idle cycle costs a small
//! probe of two requests: the most recently updated work package and the total (`sortBy updatedAt
//! desc, pageSize 1`), and the newest `blocks` relation and the total (relations touch neither end:
//! API-NOTES section 13); a third while the snapshot holds blockers from other projects. If that
//! signature is unchanged, the previous snapshot is reused; a full refresh also happens every
//! `refresh_every`, and reads the statuses again. A probe that is too large to read forces a full
//! read instead of a stall. Blockers outside the snapshot are read by id (`blockers.rs`).

mod blockers;
mod full;
mod resolve;

pub use blockers::Blockers;
pub use resolve::{Resolved, resolve, sanity};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::board::{Item, Snapshot};
use crate::openproject::{
    ApiError, Client, ErrorKind, Filter, StatsSnapshot, WorkPackageQuery, hal,
};

use full::release_freed_memory;

/// Converts a work package to the decision's [`Item`]; `None` (with a warning) if a required link is
/// missing, so one malformed work package cannot stop the whole board.
pub fn item(wp: &hal::WorkPackage, pod_field: &str) -> Option<Item> {
    let l = &wp.links;
    let (Some(type_id), Some(status), Some(project)) =
        (l.type_.id(), l.status.id(), l.project.id())
    else {
        tracing::warn!(
            wp = wp.id,
            "work package without type, status or project link: ignored"
        );
        return None;
    };
    Some(Item {
        id: wp.id,
        lock_version: wp.lock_version,
        subject: wp.subject.clone(),
        type_id,
        status,
        priority: l.priority.id().unwrap_or(0),
        project,
        ancestors: l.ancestors.iter().filter_map(hal::Link::id).collect(),
        pod: wp.custom_string(pod_field).map(|s| s.trim().to_string()),
        updated_at: wp.updated_at,
    })
}

/// What identifies the board's state cheaply: total and the most recent update of the configured
/// projects' work packages; total and newest id of the `blocks` relations (a relation added or
/// removed touches neither end); and, when the snapshot holds blockers from other projects, how
/// many of them are still open and their latest update.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    total: u64,
    latest: Option<Latest>,
    relations: (u64, Option<u64>),
    external: Option<(u64, Option<Latest>)>,
}

/// The most recently updated work package of a list: id, lockVersion, updatedAt.
type Latest = (u64, u64, DateTime<Utc>);

/// How a snapshot was obtained, for logs, metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    /// `true` for a full read, `false` when the probe showed nothing changed.
    pub full: bool,
    pub cost: StatsSnapshot,
}

/// A reader of snapshots with change detection. Holds the last snapshot; no other state.
pub struct BoardReader {
    client: Client,
    resolved: Resolved,
    refresh_every: Duration,
    /// Shared with the cycle that uses it: an idle pod holds one copy of the board, not two. The
    /// signature is `None` when the probe itself was too large to read: the next cycle reads in full.
    last: Option<(Arc<Snapshot>, Option<Signature>, Instant)>,
}

impl BoardReader {
    pub fn new(client: Client, resolved: Resolved, refresh_every: Duration) -> BoardReader {
        BoardReader {
            client,
            resolved,
            refresh_every,
            last: None,
        }
    }

    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Forgets the cached snapshot: the next read is full (after our own writes, for instance).
    pub fn invalidate(&mut self) {
        self.last = None;
    }

    fn project_filter(&self) -> Filter {
        Filter::new("project", "=", self.resolved.repos.keys())
    }

    /// The probe: one small request for the work packages, one for the relations, and one for
    /// blockers outside the configured projects if the last snapshot had any.
    async fn signature(&self, external: &BTreeSet<u64>) -> Result<Signature, ApiError> {
        let (total, latest) = self.latest(vec![self.project_filter()]).await?;
        let relations = self
            .client
            .relations_page(
                &[Filter::new("type", "=", ["blocks"])],
                &[("id".into(), "desc".into())],
                1,
                1,
            )
            .await?;
        let newest = relations.embedded.elements.first().map(|r| r.id);
        let external = self.external_signature(external).await?;
        Ok(Signature {
            total,
            latest,
            relations: (relations.total, newest),
            external,
        })
    }

    /// How many of the blockers outside the configured projects are still open, and the latest
    /// update among them (`None` when there are none).
    async fn external_signature(
        &self,
        external: &BTreeSet<u64>,
    ) -> Result<Option<(u64, Option<Latest>)>, ApiError> {
        if external.is_empty() {
            return Ok(None);
        }
        let ids: Vec<u64> = external.iter().copied().take(full::ID_CHUNK).collect();
        let open = vec![
            Filter::new("id", "=", &ids),
            Filter::new("status", "o", Vec::<String>::new()),
        ];
        Ok(Some(self.latest(open).await?))
    }

    /// The total and the most recently updated of the work packages matching `filters`.
    async fn latest(&self, filters: Vec<Filter>) -> Result<(u64, Option<Latest>), ApiError> {
        let q = WorkPackageQuery {
            project: None,
            filters,
            sort_by: vec![
                ("updatedAt".into(), "desc".into()),
                ("id".into(), "desc".into()),
            ],
            page_size: Some(1),
        };
        let page = self.client.work_packages_page(&q, 1).await?;
        let latest = page
            .embedded
            .elements
            .first()
            .map(|w| (w.id, w.lock_version, w.updated_at));
        Ok((page.total, latest))
    }

    /// Statuses again before a full read: an admin may have made one closed (or open) since
    /// start-up, which changes what blocks and what counts as done.
    async fn refresh_statuses(&mut self) -> Result<(), ApiError> {
        let statuses = self.client.statuses().await?;
        let closed: BTreeSet<u64> = statuses
            .iter()
            .filter(|s| s.is_closed)
            .map(|s| s.id)
            .collect();
        if closed != self.resolved.catalog.closed_statuses {
            tracing::warn!(before = ?self.resolved.catalog.closed_statuses, now = ?closed, "the board's closed statuses changed");
            self.resolved.catalog.closed_statuses = closed;
        }
        self.resolved
            .status_names
            .extend(statuses.into_iter().map(|s| (s.id, s.name)));
        Ok(())
    }

    /// The current snapshot: reused if the probe shows no change and the refresh interval has not
    /// passed, read in full otherwise.
    pub async fn snapshot(&mut self) -> Result<(Arc<Snapshot>, Fetch), ApiError> {
        let before = self.client.stats();
        let external = self
            .last
            .as_ref()
            .map(|(snap, _, _)| snap.external_blockers.clone())
            .unwrap_or_default();
        let signature = match self.signature(&external).await {
            Ok(s) => Some(s),
            Err(e) if e.kind() == ErrorKind::TooLarge => {
                tracing::warn!(error = %e, "the most recently updated work package is too large to read: reading the board in full");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some((snap, Some(sig), at)) = &self.last
            && signature.as_ref() == Some(sig)
            && at.elapsed() < self.refresh_every
        {
            metrics::counter!("journeyman_snapshot_reads_total", "kind" => "cached").increment(1);
            return Ok((
                snap.clone(),
                Fetch {
                    full: false,
                    cost: self.client.stats() - before,
                },
            ));
        }
        self.refresh_statuses().await?;
        let snapshot = Arc::new(self.full().await?);
        // The probe watches the outside blockers this read found (one more request, only then).
        let mut signature = signature;
        if let Some(sig) = signature.as_mut()
            && snapshot.external_blockers != external
        {
            sig.external = self.external_signature(&snapshot.external_blockers).await?;
        }
        metrics::counter!("journeyman_snapshot_reads_total", "kind" => "full").increment(1);
        self.last = Some((snapshot.clone(), signature, Instant::now()));
        release_freed_memory();
        Ok((
            snapshot,
            Fetch {
                full: true,
                cost: self.client.stats() - before,
            },
        ))
    }
}
