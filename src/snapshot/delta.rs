//! The delta read: after the first full read, a cycle whose probe moved reads only what changed.
//!
//! - The work packages updated since the newest `updatedAt` the reader has seen, in every status
//!   and every project the agent user sees (so a close, a move away, a new parent are seen on the
//!   work package itself): one page of `updatedAt <>d [since, ""]` (the one datetime operator that
//!   takes a precise instant; API-NOTES section 13), oldest first. No request at all when the
//!   probe's page of newest open work packages already holds them: it reaches back past the
//!   window, the snapshot refers to nothing the probe cannot see (no closed ancestor or blocker,
//!   nothing from another project), and the merged count of open work packages is the probe's (nothing closed,
//!   moved away or deleted); otherwise the page above is read. OpenProject renders `updatedAt`
//!   in whole seconds and compares at full precision, so the window starts at the second of the
//!   newest seen, minus [`OVERLAP`](super::OVERLAP) for writes committed out of order: what was already read comes
//!   back and merges as a no-op, what came later in the same second is not lost.
//!   Read whatever part of the probe moved, so that a change the probe cannot see alone (to a
//!   closed ancestor, or to one in another project) is caught up by the next read.
//! - The `blocks` relations, only when the relation part of the probe moved: just the new ones
//!   when it shows additions only (relation ids only grow), all of them again otherwise.
//! - Ancestors and blockers the snapshot never held, by id, only when the merge asks for them.
//!
//! The merge itself is pure (`merge.rs`). Whenever it cannot be sure, the answer is `None` and the
//! reader reads in full: more changes than one page holds, a work package too large to read, an
//! ancestor it cannot read, or a count of open work packages that disagrees with the probe's
//! (a deletion leaves no other trace).

use chrono::{DateTime, Utc};

use super::merge::{self, Changes, Merge, Scope, core_count, merge};
use super::probe::{Recent, Signature, window_from, window_start};
use super::{BoardReader, item};
use crate::board::{Item, Snapshot};
use crate::openproject::{ApiError, ErrorKind, Filter, WorkPackageQuery, hal};

/// Rounds of by-id reads a merge may ask for before the reader gives up and reads in full (one is
/// enough: every ancestor of a work package is on its own chain).
const READ_ROUNDS: usize = 2;

/// What one merge of a delta read came to.
enum Merged {
    Done(Delta),
    /// Only a full read can say.
    Full,
    /// The probe's page was not enough.
    Short,
}

/// What a delta read produced.
pub(super) struct Delta {
    pub snapshot: Snapshot,
    /// The newest `updatedAt` seen, for the next delta.
    pub since: DateTime<Utc>,
    /// Work packages the delta read.
    pub updated: usize,
}

impl BoardReader {
    /// The snapshot `prev` brought up to date, or `None` when only a full read can say.
    pub(super) async fn read_changes(
        &self,
        prev: &Snapshot,
        before: &Signature,
        (now, recent): (&Signature, &Recent),
        since: DateTime<Utc>,
    ) -> Result<Option<Delta>, ApiError> {
        let catalog = &self.resolved.catalog;
        let scope = Scope {
            projects: &catalog.projects,
            closed: &catalog.closed_statuses,
        };
        let start = window_from(since);
        // The work packages are read even when only the relations moved: a change the probe
        // cannot see alone (to a closed ancestor, a blocker in another project, a closed blocker
        // that moves there and reopens) is caught up by whichever read comes next. The probe's
        // page is enough only when the snapshot refers to nothing of the kind.
        let mut from_probe = recent.covers(start) && probe_sees_all(prev, scope);
        let blocks = if now.relations != before.relations {
            Some(
                self.blocks_now(prev, before.relations, now.relations)
                    .await?,
            )
        } else {
            None
        };
        loop {
            let updated = if from_probe {
                recent.since(start)
            } else {
                match self.updated_since(since).await? {
                    Some(updated) => updated,
                    None => return Ok(None),
                }
            };
            let changes = Changes {
                updated,
                blocks: blocks.clone(),
                ..Changes::default()
            };
            match self
                .merge_changes(prev, changes, now, scope, from_probe)
                .await?
            {
                Merged::Done(delta) => {
                    return Ok(Some(Delta {
                        since: delta.since.max(since),
                        ..delta
                    }));
                }
                Merged::Full => return Ok(None),
                // Something left the probe's view (closed, moved away, deleted): read the delta.
                Merged::Short => from_probe = false,
            }
        }
    }

    /// Merges `changes` into `prev`, reading by id what the merge asks for. `from_probe`: the
    /// changes are the probe's page, and a count that disagrees asks for the delta read instead.
    async fn merge_changes(
        &self,
        prev: &Snapshot,
        mut changes: Changes,
        now: &Signature,
        scope: Scope<'_>,
        from_probe: bool,
    ) -> Result<Merged, ApiError> {
        let newest = changes
            .updated
            .iter()
            .map(|i| i.updated_at)
            .max()
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        for _ in 0..=READ_ROUNDS {
            match merge(prev, &changes, scope) {
                Merge::Done(snapshot) => {
                    let count = core_count(&snapshot, scope);
                    if count != now.total && from_probe {
                        return Ok(Merged::Short);
                    }
                    // The probe came before the delta: a mismatch may be a change in between
                    // (asked again) or a deletion (then only a full read can find which).
                    if count != now.total && count != self.count_now().await? {
                        tracing::info!(
                            merged = count,
                            board = now.total,
                            "the merged snapshot and the board count different open work packages: reading in full"
                        );
                        return Ok(Merged::Full);
                    }
                    return Ok(Merged::Done(Delta {
                        snapshot,
                        since: newest,
                        updated: changes.updated.len(),
                    }));
                }
                Merge::Read(ids) => {
                    let read = self.read_by_ids(&ids).await?;
                    changes.by_id.extend(read.items);
                    changes.unreadable.extend(read.invisible);
                    changes.unreadable.extend(read.too_large);
                }
                Merge::Full => return Ok(Merged::Full),
            }
        }
        Ok(Merged::Full)
    }

    /// The `blocks` relations now: when the probe shows only additions (the total grew by as
    /// many as there are ids above the newest seen), just the new ones are read (one small
    /// request); otherwise all of them again.
    async fn blocks_now(
        &self,
        prev: &Snapshot,
        (total_before, newest_before): (u64, Option<u64>),
        (total_now, _): (u64, Option<u64>),
    ) -> Result<Vec<(u64, u64)>, ApiError> {
        let pair = |r: &hal::Relation| Some((r.links.from.id()?, r.links.to.id()?));
        let added = total_now.saturating_sub(total_before);
        let newest_before = newest_before.unwrap_or(0);
        if added > 0 && added < u64::from(self.client.page_size()) {
            // One more than were added: the extra one, if any, must be one seen before.
            let page = self
                .client
                .relations_page(
                    &[Filter::new("type", "=", ["blocks"])],
                    &[("id".into(), "desc".into())],
                    u32::try_from(added + 1).unwrap_or(u32::MAX),
                    1,
                )
                .await?;
            let new: Vec<&hal::Relation> = page
                .embedded
                .elements
                .iter()
                .filter(|r| r.id > newest_before)
                .collect();
            if new.len() as u64 == added && page.total == total_now {
                let mut blocks = merge::pairs(prev);
                blocks.extend(new.into_iter().filter_map(pair));
                return Ok(blocks);
            }
        }
        let all = self.client.blocks_relations().await?;
        Ok(all.iter().filter_map(pair).collect())
    }

    /// The work packages updated since `since` (minus the overlap), oldest first; `None` if they
    /// do not fit one page or one of them is too large to read.
    async fn updated_since(&self, since: DateTime<Utc>) -> Result<Option<Vec<Item>>, ApiError> {
        let q = WorkPackageQuery {
            project: None,
            filters: vec![Filter::new(
                "updatedAt",
                "<>d",
                [window_start(since), String::new()],
            )],
            sort_by: vec![
                ("updatedAt".into(), "asc".into()),
                ("id".into(), "asc".into()),
            ],
            page_size: None,
        };
        let page = match self.client.work_packages_page(&q, 1).await {
            Ok(page) => page,
            Err(e) if e.kind() == ErrorKind::TooLarge => return Ok(None),
            Err(e) => return Err(e),
        };
        let elements = page.embedded.elements;
        if page.total > elements.len() as u64 {
            tracing::info!(
                changed = page.total,
                page = elements.len(),
                "more changes than one page: reading in full"
            );
            return Ok(None);
        }
        let pod_field = &self.resolved.pod_field;
        Ok(Some(
            elements.iter().filter_map(|w| item(w, pod_field)).collect(),
        ))
    }
}

/// Whether every work package `snap` refers to is an open one of the configured projects, which
/// the probe's page shows when it changes: every item, and every blocker of a relation.
pub(super) fn probe_sees_all(snap: &Snapshot, scope: Scope<'_>) -> bool {
    snap.items.values().all(|i| scope.core(i))
        && snap
            .blockers
            .values()
            .flatten()
            .all(|b| snap.items.contains_key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_starts_a_second_before_the_whole_second_of_the_newest_seen() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            window_start(t("2026-11-23T12:00:05.900Z")),
            "2026-11-23T12:00:04Z"
        );
        assert_eq!(
            window_start(t("2026-11-23T12:00:05Z")),
            "2026-11-23T12:00:04Z"
        );
        assert_eq!(
            window_start(t("2026-11-23T00:00:00.100Z")),
            "2026-11-22T23:59:59Z"
        );
    }
}
