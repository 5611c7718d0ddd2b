//! The change probe: what identifies the board's state in two small requests (a third while the
//! snapshot holds blockers from other projects), so that an idle cycle costs almost nothing.
//!
//! - The open work packages of the configured projects: how many, and the most recently updated
//!   (`sortBy updatedAt desc, pageSize 1`). Any write to an open work package makes it the newest
//!   (a comment too: it moves `updatedAt`, API-NOTES section 13); a close, a move away or a
//!   deletion changes the count, and the count is what a merge is checked against.
//! - The `blocks` relations: how many, and the newest id (relations touch neither end).
//! - The blockers outside the configured projects the snapshot holds: how many are still open,
//!   and the newest update among them.
//!
//! What it cannot see alone is a change to a work package outside that count that the snapshot
//! holds: a closed ancestor (given a pod, moved, renamed while closed) or an open ancestor in a
//! project the worker does not read. The next read of any kind catches it up (a delta reads every
//! status and project), and so does the periodic full read.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::BoardReader;
use super::full::ID_CHUNK;
use crate::openproject::{ApiError, ErrorKind, Filter, WorkPackageQuery};

/// What identifies the board's state cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Signature {
    /// How many work packages the probe counts (open ones of the configured projects; every
    /// status for the baseline reader), and the most recently updated of them.
    pub total: u64,
    pub latest: Option<Latest>,
    /// Total and newest id of the `blocks` relations.
    pub relations: (u64, Option<u64>),
    /// Open blockers outside the configured projects that the snapshot holds: how many are still
    /// open and the latest update among them.
    pub external: Option<(u64, Option<Latest>)>,
}

/// The external part of a probe that named a blocker no longer there: never equal to a real one.
const GONE: (u64, Option<Latest>) = (u64::MAX, None);

/// The most recently updated work package of a list: id, lockVersion, updatedAt.
pub(super) type Latest = (u64, u64, DateTime<Utc>);

impl BoardReader {
    /// The probe's filters: the configured projects, open work packages only (the baseline reader
    /// counts every status, as the reader before delta reads did).
    fn probe_filters(&self) -> Vec<Filter> {
        let mut filters = vec![self.project_filter()];
        if self.delta_reads() {
            filters.insert(0, Filter::new("status", "o", Vec::<String>::new()));
        }
        filters
    }

    /// The probe.
    pub(super) async fn signature(&self, external: &BTreeSet<u64>) -> Result<Signature, ApiError> {
        let (total, latest) = self.latest(self.probe_filters()).await?;
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

    /// The work package part of the probe again (one request): after a merge whose count did not
    /// match, whether the board moved on meanwhile.
    pub(super) async fn count_now(&self) -> Result<u64, ApiError> {
        Ok(self.latest(self.probe_filters()).await?.0)
    }

    /// How many of the blockers outside the configured projects are still open, and the latest
    /// update among them (`None` when there are none).
    pub(super) async fn external_signature(
        &self,
        external: &BTreeSet<u64>,
    ) -> Result<Option<(u64, Option<Latest>)>, ApiError> {
        if external.is_empty() {
            return Ok(None);
        }
        let ids: Vec<u64> = external.iter().copied().take(ID_CHUNK).collect();
        let open = vec![
            Filter::new("id", "=", &ids),
            Filter::new("status", "o", Vec::<String>::new()),
        ];
        match self.latest(open).await {
            Ok(latest) => Ok(Some(latest)),
            // An `id` filter naming a work package that is gone (deleted, or no longer visible) is
            // a 400 (API-NOTES section 13): the blockers changed, and the read that follows finds
            // out how (its relations went with it).
            Err(e) if e.kind() == ErrorKind::BadRequest => Ok(Some(GONE)),
            Err(e) => Err(e),
        }
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
}
