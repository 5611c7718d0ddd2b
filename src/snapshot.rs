//! Reading the board: resolving configured names to ids once at start-up, and building snapshots for
//! the decision with as few requests as possible.
//!
//! A full snapshot is: open work packages of the configured projects (pages of 1000), the closed
//! ancestors they mention (one request, only if any), and all `blocks` relations (pages of 1000).
//! Never one request per work package. Between full snapshots an idle cycle costs one small probe:
//! the most recently updated work package and the total (`sortBy updatedAt desc, pageSize 1`). If
//! that signature is unchanged, the previous snapshot is reused. Relation changes do not touch work
//! packages (API-NOTES section 3), so a full refresh also happens every `refresh_every`.
//!
//! One work package too large to read (a pasted 50 MB log) must not stall the fleet: a page that
//! exceeds the client's body limit is read again in smaller pages, down to single work packages,
//! and a work package too large on its own is left out (with everything under it) and named in a
//! warning until it shrinks. A probe that is too large forces a full read instead of a stall.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::board::{Catalog, Item, Snapshot};
use crate::config::{Config, RepoMapping};
use crate::openproject::{
    ApiError, Client, ErrorKind, Filter, StatsSnapshot, WorkPackageQuery, hal,
};

/// Everything resolved from the board at start-up.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub catalog: Catalog,
    /// The property key of the pod field, e.g. `customField3`.
    pub pod_field: String,
    /// The agent user (`users/me`), set as assignee on claims.
    pub agent_user: u64,
    pub agent_name: String,
    /// Project id -> its repository mapping (the allowlist).
    pub repos: BTreeMap<u64, RepoMapping>,
    pub ready_status: u64,
    pub spike_type: u64,
}

/// Resolves every configured name against the board; each missing name is a clear error naming the
/// variable that holds it.
pub async fn resolve(client: &Client, config: &Config) -> anyhow::Result<Resolved> {
    let names = &config.names;
    let me = client
        .me()
        .await
        .context("reading the agent user (GET /api/v3/users/me)")?;
    let statuses = client.statuses().await.context("reading statuses")?;
    let types = client.types().await.context("reading types")?;
    let priorities = client.priorities().await.context("reading priorities")?;

    let status = |name: &str, var: &str| {
        statuses
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.id)
            .ok_or_else(|| {
                anyhow!(
                    "status `{name}` ({var}) does not exist on the board; statuses are: {}",
                    list(statuses.iter().map(|s| &s.name))
                )
            })
    };
    let type_ = |name: &str, var: &str| {
        types
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.id)
            .ok_or_else(|| {
                anyhow!(
                    "type `{name}` ({var}) does not exist on the board; types are: {}",
                    list(types.iter().map(|t| &t.name))
                )
            })
    };
    let mut ready_statuses = BTreeSet::new();
    for n in &names.ready_statuses {
        ready_statuses.insert(status(n, "JOURNEYMAN_READY_STATUSES")?);
    }
    let mut work_types = BTreeSet::new();
    for n in &names.work_types {
        work_types.insert(type_(n, "JOURNEYMAN_WORK_TYPES")?);
    }
    let mut repos = BTreeMap::new();
    for r in &config.repos {
        let p = client
            .project(&r.project)
            .await
            .with_context(|| format!("project `{}` from JOURNEYMAN_REPOS", r.project))?;
        repos.insert(p.id, r.clone());
    }
    let first_project = *repos
        .keys()
        .next()
        .ok_or_else(|| anyhow!("JOURNEYMAN_REPOS names no project"))?;
    let first_work_type = *work_types
        .iter()
        .next()
        .ok_or_else(|| anyhow!("JOURNEYMAN_WORK_TYPES is empty"))?;
    let pod_field = client
        .custom_field_key(first_project, first_work_type, &names.pod_field)
        .await
        .context("reading the work package schema")?
        .ok_or_else(|| {
            anyhow!(
                "custom field `{}` (JOURNEYMAN_POD_FIELD) is not active for project {first_project}: create a string custom field with that name and enable it for the project and work types",
                names.pod_field
            )
        })?;
    let ready_status = status(&names.ready_statuses[0], "JOURNEYMAN_READY_STATUSES")?;
    let catalog = Catalog {
        ready_statuses,
        active_status: status(&names.active_status, "JOURNEYMAN_ACTIVE_STATUS")?,
        done_status: status(&names.done_status, "JOURNEYMAN_DONE_STATUS")?,
        closed_statuses: statuses
            .iter()
            .filter(|s| s.is_closed)
            .map(|s| s.id)
            .collect(),
        work_types,
        bug_type: type_(&names.bug_type, "JOURNEYMAN_BUG_TYPE")?,
        epic_type: type_(&names.epic_type, "JOURNEYMAN_EPIC_TYPE")?,
        phase_type: type_(&names.phase_type, "JOURNEYMAN_PHASE_TYPE")?,
        spike_type: type_(&names.spike_type, "JOURNEYMAN_SPIKE_TYPE")?,
        priority_rank: priorities.iter().map(|p| (p.id, p.position)).collect(),
        projects: repos.keys().copied().collect(),
    };
    Ok(Resolved {
        spike_type: catalog.spike_type,
        catalog,
        pod_field,
        agent_user: me.id,
        agent_name: me.name,
        repos,
        ready_status,
    })
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

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

    /// Reads positions `[start, start + len)` of the open list (`start` a multiple of `len`). A page
    /// too large to read is read again as smaller pages; a single work package too large to read is
    /// recorded in `out.too_large` and left out.
    async fn read_range(
        &self,
        open: &WorkPackageQuery,
        start: u64,
        len: u64,
        out: &mut OpenList,
    ) -> Result<(), ApiError> {
        let pod_field = &self.resolved.pod_field;
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
                    out.items.extend(
                        page.embedded
                            .elements
                            .iter()
                            .filter_map(|w| item(w, pod_field))
                            .map(|i| (i.id, i)),
                    );
                    // A short page ends the list; so does `total` (the board may change between
                    // pages, so never trust `total` alone to go on).
                    let end = if got < len { start + got } else { page.total };
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
        Ok(())
    }

    /// A full read (no probe, no cache).
    pub async fn full(&self) -> Result<Snapshot, ApiError> {
        let pod_field = &self.resolved.pod_field;
        let open = WorkPackageQuery {
            filters: vec![
                Filter::new("status", "o", Vec::<String>::new()),
                self.project_filter(),
            ],
            sort_by: vec![("id".into(), "asc".into())],
            ..WorkPackageQuery::default()
        };
        // Page by page: each page's HAL objects are dropped as soon as they are converted, so memory
        // holds one page of JSON at a time, not the whole board.
        let mut open_list = OpenList::default();
        let page_size = u64::from(self.client.page_size()).max(1);
        let mut start = 0;
        while start < open_list.end() {
            self.read_range(&open, start, page_size, &mut open_list)
                .await?;
            start += page_size;
        }
        let OpenList {
            mut items,
            too_large,
            ..
        } = open_list;
        let too_large = if too_large.is_empty() {
            Vec::new()
        } else {
            let ids: Vec<u64> = items.keys().copied().collect();
            too_large_between(&too_large, &ids)
        };
        // Closed ancestors still matter: a closed Phase gates, a closed Epic is not claimable.
        let missing: BTreeSet<u64> = items
            .values()
            .flat_map(|i| i.ancestors.iter().copied())
            .filter(|a| !items.contains_key(a))
            .collect();
        let mut unreadable = BTreeSet::new();
        if !missing.is_empty() {
            let q = WorkPackageQuery {
                filters: vec![Filter::new("id", "=", &missing)],
                ..WorkPackageQuery::default()
            };
            match self.client.work_packages(&q).await {
                Ok(found) => items.extend(
                    found
                        .iter()
                        .filter_map(|w| item(w, pod_field))
                        .map(|i| (i.id, i)),
                ),
                // One of them is too large (an open one left out above, or a closed one): read them
                // one by one to learn which, and leave out everything under it.
                Err(e) if e.kind() == ErrorKind::TooLarge => {
                    for &id in &missing {
                        match self.client.work_package(id).await {
                            Ok(w) => items.extend(item(&w, pod_field).map(|i| (i.id, i))),
                            Err(e) if e.kind() == ErrorKind::TooLarge => {
                                unreadable.insert(id);
                            }
                            Err(e) if e.kind() == ErrorKind::NotFound => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if !too_large.is_empty() || !unreadable.is_empty() {
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
        metrics::gauge!("journeyman_work_packages_too_large").set(too_large.len() as f64);
        let blocks: Vec<(u64, u64)> = self
            .client
            .blocks_relations()
            .await?
            .iter()
            .filter_map(|r| Some((r.links.from.id()?, r.links.to.id()?)))
            .collect();
        Ok(Snapshot::new(items.into_values(), blocks))
    }
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

/// Checks a resolved configuration for contradictions the board reveals (used by `doctor` too).
pub fn sanity(resolved: &Resolved) -> anyhow::Result<()> {
    let c = &resolved.catalog;
    if c.closed_statuses.contains(&c.active_status) {
        bail!(
            "the active status is a closed status on the board: work would look finished when claimed"
        );
    }
    if c.ready_statuses
        .iter()
        .any(|s| c.closed_statuses.contains(s))
    {
        bail!("a ready status is a closed status on the board (JOURNEYMAN_READY_STATUSES)");
    }
    Ok(())
}

/// A full read parses megabytes of JSON that are freed right after conversion; glibc keeps freed
/// heap pages by default, so an idle pod would sit at the peak of its last read. Hand them back.
fn release_freed_memory() {
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
