//! Reading the board: the configured names resolved once at start-up ([`resolve`]), and snapshots
//! for the decision built with as few requests as possible ([`BoardReader`]).
//!
//! Between full reads ([`full`](BoardReader::full), in `full.rs`) an idle cycle costs one small
//! probe: the most recently updated work package and the total (`sortBy updatedAt desc, pageSize
//! 1`). If that signature is unchanged, the previous snapshot is reused. Relation changes do not
//! touch work packages (API-NOTES section 3), so a full refresh also happens every
//! `refresh_every`. A probe that is too large to read forces a full read instead of a stall.

mod full;
mod resolve;

pub use resolve::{Resolved, resolve, sanity};

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

/// What identifies the board's state cheaply: total and the most recent update.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    total: u64,
    latest: Option<(u64, u64, DateTime<Utc>)>,
}

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

    async fn signature(&self) -> Result<Signature, ApiError> {
        let q = WorkPackageQuery {
            project: None,
            filters: vec![self.project_filter()],
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
        Ok(Signature {
            total: page.total,
            latest,
        })
    }

    /// The current snapshot: reused if the probe shows no change and the refresh interval has not
    /// passed, read in full otherwise.
    pub async fn snapshot(&mut self) -> Result<(Arc<Snapshot>, Fetch), ApiError> {
        let before = self.client.stats();
        let signature = match self.signature().await {
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
        let snapshot = Arc::new(self.full().await?);
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
