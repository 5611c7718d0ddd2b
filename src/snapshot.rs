//! Reading the board: resolving configured names to ids once at start-up, and building snapshots for
//! the decision with as few requests as possible.
//!
//! A full snapshot is: open work packages of the configured projects (pages of 1000), the closed
//! ancestors they mention (one request, only if any), and all `blocks` relations (pages of 1000).
//! Never one request per work package. Between full snapshots an idle cycle costs one small probe:
//! the most recently updated work package and the total (`sortBy updatedAt desc, pageSize 1`). If
//! that signature is unchanged, the previous snapshot is reused. Relation changes do not touch work
//! packages (API-NOTES section 3), so a full refresh also happens every `refresh_every`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::board::{Catalog, Item, Snapshot};
use crate::config::{Config, RepoMapping};
use crate::openproject::{ApiError, Client, Filter, StatsSnapshot, WorkPackageQuery, hal};

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
    /// Shared with the cycle that uses it: an idle pod holds one copy of the board, not two.
    last: Option<(Arc<Snapshot>, Signature, Instant)>,
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
        let signature = self.signature().await?;
        if let Some((snap, sig, at)) = &self.last
            && *sig == signature
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
        let mut items: BTreeMap<u64, Item> = BTreeMap::new();
        let mut offset = 1;
        loop {
            let page = self.client.work_packages_page(&open, offset).await?;
            let got = page.embedded.elements.len() as u64;
            items.extend(
                page.embedded
                    .elements
                    .iter()
                    .filter_map(|w| item(w, pod_field))
                    .map(|i| (i.id, i)),
            );
            let page_size = page.page_size.unwrap_or(got).max(1);
            if got == 0 || got < page_size || offset * page_size >= page.total {
                break;
            }
            offset += 1;
        }
        // Closed ancestors still matter: a closed Phase gates, a closed Epic is not claimable.
        let missing: BTreeSet<u64> = items
            .values()
            .flat_map(|i| i.ancestors.iter().copied())
            .filter(|a| !items.contains_key(a))
            .collect();
        if !missing.is_empty() {
            let q = WorkPackageQuery {
                filters: vec![Filter::new("id", "=", &missing)],
                ..WorkPackageQuery::default()
            };
            for w in self.client.work_packages(&q).await? {
                if let Some(i) = item(&w, pod_field) {
                    items.insert(i.id, i);
                }
            }
        }
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
