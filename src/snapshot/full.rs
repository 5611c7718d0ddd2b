//! The full read of the board: the open work packages of the configured projects (pages of the
//! client's size), the closed ancestors they mention (one request, only if any), and all `blocks`
//! relations. Never one request per work package.
//!
//! One work package too large to read (a pasted 50 MB log) must not stall the fleet: a page that
//! exceeds the client's body limit is read again in smaller pages, down to single work packages,
//! and a work package too large on its own is left out (with everything under it) and named in a
//! warning until it shrinks.

use std::collections::{BTreeMap, BTreeSet};

use super::{BoardReader, item};
use crate::board::{Item, Snapshot};
use crate::openproject::{ApiError, ErrorKind, Filter, WorkPackageQuery};

impl BoardReader {
    /// Reads positions `[start, start + len)` of the open list (`start` a multiple of `len`). A page
    /// too large to read is read again as smaller pages; a single work package too large to read is
    /// recorded in `out.too_large` and left out. Returns the page size the board answered for the
    /// first request: OpenProject caps `pageSize` at its `apiv3_max_page_size` without an error
    /// (API-NOTES section 13), and then the positions read are `[start, start + answered)`.
    async fn read_range(
        &self,
        open: &WorkPackageQuery,
        start: u64,
        len: u64,
        out: &mut OpenList,
    ) -> Result<u64, ApiError> {
        let pod_field = &self.resolved.pod_field;
        let asked = len;
        let mut first_answer = None;
        let mut ranges = vec![(start, len)];
        while let Some((start, len)) = ranges.pop() {
            if start >= out.end() {
                continue;
            }
            let q = WorkPackageQuery {
                page_size: Some(u32::try_from(len).unwrap_or(u32::MAX)),
                ..open.clone()
            };
            match self.client.work_packages_page(&q, start / len + 1).await {
                Ok(page) => {
                    let got = page.embedded.elements.len() as u64;
                    let answered = page.page_size.unwrap_or(len).clamp(1, len);
                    if len == asked {
                        first_answer.get_or_insert(answered);
                    }
                    out.items.extend(
                        page.embedded
                            .elements
                            .iter()
                            .filter_map(|w| item(w, pod_field))
                            .map(|i| (i.id, i)),
                    );
                    // A short page ends the list; so does `total` (the board may change between
                    // pages, so never trust `total` alone to go on).
                    let end = if got < answered {
                        start + got
                    } else {
                        page.total
                    };
                    out.total = Some(end.max(start + got));
                }
                Err(e) if e.kind() == ErrorKind::TooLarge && len > 1 => {
                    let smaller = smaller_page(len);
                    // Pushed last-first, so the positions are read in order.
                    ranges.extend(
                        (0..len / smaller)
                            .rev()
                            .map(|i| (start + i * smaller, smaller)),
                    );
                }
                Err(e) if e.kind() == ErrorKind::TooLarge => out.too_large.push(start),
                Err(e) => return Err(e),
            }
        }
        Ok(first_answer.unwrap_or(asked))
    }

    /// A full read (no probe, no cache).
    pub async fn full(&self) -> Result<Snapshot, ApiError> {
        Ok(self.full_and_partial().await?.0)
    }

    /// A full read, and whether it left work packages out (too large to read).
    pub(super) async fn full_and_partial(&self) -> Result<(Snapshot, bool), ApiError> {
        let (mut items, too_large) = self.open_items().await?;
        let unreadable = self.closed_ancestors(&mut items).await?;
        let partial = !too_large.is_empty() || !unreadable.is_empty();
        if partial {
            self.leave_out(&mut items, &too_large, &unreadable);
        }
        metrics::gauge!("journeyman_work_packages_too_large").set(too_large.len() as f64);
        let blocks: Vec<(u64, u64)> = self
            .client
            .blocks_relations()
            .await?
            .iter()
            .filter_map(|r| Some((r.links.from.id()?, r.links.to.id()?)))
            .collect();
        let outside: BTreeSet<u64> = blocks
            .iter()
            .map(|(from, _)| *from)
            .filter(|b| !items.contains_key(b))
            .collect();
        let (open_outside, unreadable) = self.read_blockers(&outside).await?;
        let mut snapshot = Snapshot::new(items.into_values(), blocks);
        for item in open_outside {
            snapshot.add_outside_blocker(item);
        }
        snapshot.unreadable_blockers.extend(unreadable);
        Ok((snapshot, partial))
    }

    /// The open work packages of the configured projects, page by page: each page's HAL objects
    /// are dropped as soon as they are converted, so memory holds one page of JSON at a time, not
    /// the whole board. Also says where the ones too large to read were.
    async fn open_items(&self) -> Result<(BTreeMap<u64, Item>, Vec<String>), ApiError> {
        let open = WorkPackageQuery {
            filters: vec![
                Filter::new("status", "o", Vec::<String>::new()),
                self.project_filter(),
            ],
            sort_by: vec![("id".into(), "asc".into())],
            ..WorkPackageQuery::default()
        };
        let mut open_list = OpenList::default();
        let mut page_size = u64::from(self.client.page_size()).max(1);
        let mut start = 0;
        while start < open_list.end() {
            let answered = self
                .read_range(&open, start, page_size, &mut open_list)
                .await?;
            if answered < page_size {
                // The board caps pages lower than asked: go on by its size. Found on the first
                // page, what it answered are positions [0, answered); found later (an admin
                // lowered the cap meanwhile), the positions are unknown: read again from the start.
                tracing::info!(asked = page_size, answered, "the board caps the page size");
                if start != 0 {
                    open_list = OpenList::default();
                    start = 0;
                    page_size = answered;
                    continue;
                }
                page_size = answered;
            }
            start += page_size;
        }
        let OpenList {
            items, too_large, ..
        } = open_list;
        let too_large = if too_large.is_empty() {
            Vec::new()
        } else {
            let ids: Vec<u64> = items.keys().copied().collect();
            too_large_between(&too_large, &ids)
        };
        Ok((items, too_large))
    }

    /// Adds the closed ancestors of open work packages (a closed Phase still gates, a closed Epic
    /// is not claimable); returns the ancestors too large to read.
    async fn closed_ancestors(
        &self,
        items: &mut BTreeMap<u64, Item>,
    ) -> Result<BTreeSet<u64>, ApiError> {
        let missing: BTreeSet<u64> = items
            .values()
            .flat_map(|i| i.ancestors.iter().copied())
            .filter(|a| !items.contains_key(a))
            .collect();
        let read = self.read_by_ids(&missing).await?;
        items.extend(read.items);
        Ok(read.too_large)
    }

    /// Work packages by id, in chunks of [`ID_CHUNK`] (an `id` filter makes the URL long). A chunk
    /// that answers 400 (an `id` filter naming a work package this user cannot see is an
    /// InvalidQuery: API-NOTES section 13) or is too large to read is read one by one, to learn
    /// which: a work package that answers 404 is invisible, one too large is unreadable.
    pub(super) async fn read_by_ids(&self, ids: &BTreeSet<u64>) -> Result<ById, ApiError> {
        let pod_field = &self.resolved().pod_field;
        let mut out = ById::default();
        let ids: Vec<u64> = ids.iter().copied().collect();
        for chunk in ids.chunks(ID_CHUNK) {
            let q = WorkPackageQuery {
                filters: vec![Filter::new("id", "=", chunk)],
                ..WorkPackageQuery::default()
            };
            match self.client.work_packages(&q).await {
                Ok(found) => out.items.extend(
                    found
                        .iter()
                        .filter_map(|w| item(w, pod_field))
                        .map(|i| (i.id, i)),
                ),
                Err(e) if matches!(e.kind(), ErrorKind::TooLarge | ErrorKind::BadRequest) => {
                    for &id in chunk {
                        match self.client.work_package(id).await {
                            Ok(w) => out.items.extend(item(&w, pod_field).map(|i| (i.id, i))),
                            Err(e) if e.kind() == ErrorKind::TooLarge => {
                                out.too_large.insert(id);
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    ErrorKind::NotFound | ErrorKind::Forbidden
                                ) =>
                            {
                                out.invisible.insert(id);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Leaves out everything below an unreadable ancestor, and says so.
    fn leave_out(
        &self,
        items: &mut BTreeMap<u64, Item>,
        too_large: &[String],
        unreadable: &BTreeSet<u64>,
    ) {
        let below: Vec<u64> = items
            .values()
            .filter(|i| i.ancestors.iter().any(|a| unreadable.contains(a)))
            .map(|i| i.id)
            .collect();
        for id in &below {
            items.remove(id);
        }
        tracing::warn!(
            open_too_large = ?too_large,
            ancestors_too_large = ?unreadable,
            left_out_below_them = below.len(),
            limit_bytes = self.client.max_body_bytes(),
            "work packages too large to read are left out of the board until they shrink"
        );
    }
}

/// Ids per `id` filter request.
pub(super) const ID_CHUNK: usize = 50;

/// What [`BoardReader::read_by_ids`] found.
#[derive(Default)]
pub(super) struct ById {
    pub items: BTreeMap<u64, Item>,
    pub too_large: BTreeSet<u64>,
    /// Not visible to the agent user (404).
    pub invisible: BTreeSet<u64>,
}

/// What a full read of the open list has gathered so far.
#[derive(Default)]
struct OpenList {
    items: BTreeMap<u64, Item>,
    /// Positions (0-based, in id order) of work packages too large to read even on their own.
    too_large: Vec<u64>,
    /// The list's length once a short page or a `total` has shown it.
    total: Option<u64>,
}

impl OpenList {
    fn end(&self) -> u64 {
        self.total.unwrap_or(u64::MAX)
    }
}

/// The next smaller page size for a page that was too large: a divisor of `len` (so the smaller
/// pages tile the same positions), about an eighth of it, at least 1.
fn smaller_page(len: u64) -> u64 {
    (1..=(len / 8).max(1))
        .rev()
        .find(|d| len.is_multiple_of(*d))
        .unwrap_or(1)
}

/// For each left-out position, the ids read on either side of it: where a human finds the ticket.
fn too_large_between(positions: &[u64], ids: &[u64]) -> Vec<String> {
    positions
        .iter()
        .enumerate()
        .map(|(skipped_before, &p)| {
            let at = (p as usize).saturating_sub(skipped_before).min(ids.len());
            let after = at.checked_sub(1).map(|i| format!("#{}", ids[i]));
            let before = ids.get(at).map(|id| format!("#{id}"));
            match (after, before) {
                (Some(a), Some(b)) => format!("between {a} and {b}"),
                (Some(a), None) => format!("after {a}"),
                (None, Some(b)) => format!("before {b}"),
                (None, None) => "the only one".to_string(),
            }
        })
        .collect()
}

/// A full read parses megabytes of JSON that are freed right after conversion; glibc keeps freed
/// heap pages by default, so an idle pod would sit at the peak of its last read. Hand them back.
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaller_pages_tile_the_page_and_shrink_fast() {
        // The client's page of 1000 goes 1000 -> 125 -> 5 -> 1: 8 + 25 + 5 requests per work
        // package too large to read, instead of 1000.
        assert_eq!(smaller_page(1000), 125);
        assert_eq!(smaller_page(125), 5);
        assert_eq!(smaller_page(5), 1);
        assert_eq!(smaller_page(16), 2);
        for len in 2..=1000 {
            let s = smaller_page(len);
            assert!(s < len && len % s == 0, "{len} -> {s}");
        }
    }

    #[test]
    fn a_left_out_position_is_named_by_the_ids_around_it() {
        let ids = [10, 11, 13, 14];
        assert_eq!(too_large_between(&[2], &ids), ["between #11 and #13"]);
        assert_eq!(too_large_between(&[0], &ids), ["before #10"]);
        assert_eq!(too_large_between(&[4], &ids), ["after #14"]);
        // Two left out in a row: both between the same neighbours.
        assert_eq!(
            too_large_between(&[2, 3], &ids),
            ["between #11 and #13", "between #11 and #13"]
        );
        assert_eq!(too_large_between(&[0], &[]), ["the only one"]);
    }
}
