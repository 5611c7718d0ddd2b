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
//!
//! The work package part is a page of the newest, not only the newest: when every change since the
//! last read is on it (it reaches back past the delta's window), the delta needs no request of its
//! own (`delta.rs`). Its size follows how many the last window held ([`Recent::next_size`]), so an
//! idle board's probe stays a few work packages; it is the newest alone while the snapshot refers
//! to a work package the page cannot show (a closed ancestor or blocker, one in another project),
//! since the delta then reads its own page anyway.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::full::ID_CHUNK;
use super::{BoardReader, item};
use crate::board::Item;
use crate::openproject::{ApiError, ErrorKind, Filter, WorkPackageQuery};

/// How far before the second of the newest `updatedAt` seen a delta starts.
pub const OVERLAP: chrono::Duration = chrono::Duration::seconds(1);

/// The probe's page of newest work packages: never fewer (one change, the newest seen before,
/// which the window's overlap reads again, and one older to show the page reaches past it).
pub(super) const PROBE_MIN: u32 = 3;
/// ... and never more: a burst larger than this is read by the delta itself.
pub(super) const PROBE_MAX: u32 = 64;

/// The newest open work packages of the configured projects, as the probe read them.
#[derive(Debug, Clone, Default)]
pub(super) struct Recent {
    /// Newest first.
    pub items: Vec<Item>,
    /// The oldest `updatedAt` on the page (as rendered), `None` when the page was empty.
    pub oldest: Option<DateTime<Utc>>,
    /// The page held every open work package there is.
    pub complete: bool,
    /// The page size asked for.
    pub size: u32,
}

impl Recent {
    /// Whether every open work package of the configured projects updated at or after `start`
    /// is on the page.
    pub fn covers(&self, start: DateTime<Utc>) -> bool {
        self.complete || self.oldest.is_some_and(|t| t < start)
    }

    /// Those updated at or after `start`, oldest first (what the delta would have read of them).
    pub fn since(&self, start: DateTime<Utc>) -> Vec<Item> {
        let mut items: Vec<Item> = self
            .items
            .iter()
            .filter(|i| i.updated_at >= start)
            .cloned()
            .collect();
        items.reverse();
        items
    }

    /// The page size for the next probe, this one read with the delta's window from `before`
    /// and the next one from `after` (the newest `updatedAt` seen before and after this read):
    /// those the next window reads again, as many new as this window had (at least one), and one
    /// older; twice this size when the page did not reach past its window; within
    /// [`PROBE_MIN`]..=[`PROBE_MAX`].
    pub fn next_size(&self, before: Option<DateTime<Utc>>, after: Option<DateTime<Utc>>) -> u32 {
        let Some(after) = after else {
            return PROBE_MIN;
        };
        if before.is_some_and(|b| !self.covers(window_from(b))) {
            return self.size.saturating_mul(2).clamp(PROBE_MIN, PROBE_MAX);
        }
        let count = |f: &dyn Fn(&Item) -> bool| self.items.iter().filter(|i| f(i)).count() as u32;
        let again = count(&|i| i.updated_at >= window_from(after));
        let new = before.map_or(0, |b| count(&|i| i.updated_at > b));
        (again + new.max(1) + 1).clamp(PROBE_MIN, PROBE_MAX)
    }
}

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

    /// The probe, its work package page `size` long.
    pub(super) async fn signature(
        &self,
        external: &BTreeSet<u64>,
        size: u32,
    ) -> Result<(Signature, Recent), ApiError> {
        let (total, latest, recent) = self.recent(self.probe_filters(), size).await?;
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
        let signature = Signature {
            total,
            latest,
            relations: (relations.total, newest),
            external,
        };
        Ok((signature, recent))
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
        let (total, latest, _) = self.recent(filters, 1).await?;
        Ok((total, latest))
    }

    /// The total, the most recently updated and the `size` most recently updated of the work
    /// packages matching `filters`.
    async fn recent(
        &self,
        filters: Vec<Filter>,
        size: u32,
    ) -> Result<(u64, Option<Latest>, Recent), ApiError> {
        let q = WorkPackageQuery {
            project: None,
            filters,
            sort_by: vec![
                ("updatedAt".into(), "desc".into()),
                ("id".into(), "desc".into()),
            ],
            page_size: Some(size),
        };
        let page = self.client.work_packages_page(&q, 1).await?;
        let elements = &page.embedded.elements;
        let latest = elements
            .first()
            .map(|w| (w.id, w.lock_version, w.updated_at));
        let pod_field = &self.resolved.pod_field;
        let recent = Recent {
            items: elements.iter().filter_map(|w| item(w, pod_field)).collect(),
            oldest: elements.last().map(|w| w.updated_at),
            complete: page.total <= elements.len() as u64,
            size,
        };
        Ok((page.total, latest, recent))
    }
}

/// The lower bound of a delta: the whole second of `since`, minus [`OVERLAP`], in the ISO 8601
/// form OpenProject's `DateTime.parse` takes.
pub fn window_start(since: DateTime<Utc>) -> String {
    window_from(since).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The lower bound of a delta as an instant: the whole second of `since`, minus [`OVERLAP`].
pub fn window_from(since: DateTime<Utc>) -> DateTime<Utc> {
    let start = since - OVERLAP;
    DateTime::from_timestamp(start.timestamp(), 0).unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + i64::from(s), 0).unwrap()
    }

    /// A page of work packages updated at these seconds, newest first.
    fn page(seconds: &[u32], size: u32, complete: bool) -> Recent {
        let items: Vec<Item> = seconds
            .iter()
            .enumerate()
            .map(|(n, s)| Item {
                id: n as u64 + 1,
                lock_version: 0,
                subject: String::new(),
                type_id: 1,
                status: 1,
                priority: 1,
                project: 1,
                ancestors: Vec::new(),
                pod: None,
                updated_at: at(*s),
            })
            .collect();
        Recent {
            oldest: items.last().map(|i| i.updated_at),
            items,
            complete,
            size,
        }
    }

    #[test]
    fn a_page_covers_a_window_only_when_it_reaches_past_it_or_holds_everything() {
        let p = page(&[100, 90, 50], 3, false);
        assert!(p.covers(at(60)) && p.covers(at(51)));
        assert!(
            !p.covers(at(50)),
            "the oldest is in the window: more may be below it"
        );
        assert!(page(&[100, 90, 50], 3, true).covers(at(50)));
        assert!(
            !page(&[], 3, false).covers(at(0)),
            "an empty page proves nothing"
        );
        assert!(
            page(&[], 3, true).covers(at(0)),
            "an empty board has nothing to miss"
        );
        let ids: Vec<u64> = p.since(at(90)).iter().map(|i| i.id).collect();
        assert_eq!(ids, [2, 1], "oldest first, the window's bound inclusive");
    }

    #[test]
    fn the_next_page_holds_the_overlap_as_many_new_as_this_window_and_one_older() {
        // Seen up to 50; three new since (100, 90, 80): the next window starts at 99 (100's
        // second minus the overlap), holding one again, and may hold three new.
        let p = page(&[100, 90, 80, 50, 40], 5, false);
        assert_eq!(p.next_size(Some(at(50)), Some(at(100))), 1 + 3 + 1);
        // Nothing new: the overlap, one expected change, one older.
        let idle = page(&[100, 99, 40], 3, false);
        assert_eq!(idle.next_size(Some(at(100)), Some(at(100))), PROBE_MIN + 1);
        // A page that did not reach past its window doubles.
        let short = page(&[100, 99, 98], 3, false);
        assert_eq!(short.next_size(Some(at(50)), Some(at(100))), 6);
        let long = page(&[100; 64], 64, false);
        assert_eq!(long.next_size(Some(at(50)), Some(at(100))), PROBE_MAX);
        // No date yet (an empty board): the smallest page.
        assert_eq!(page(&[], 3, true).next_size(None, None), PROBE_MIN);
    }
}
