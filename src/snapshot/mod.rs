//! Reading the board: the configured names resolved once at start-up ([`resolve`]), and snapshots
//! for the decision built with as few requests and bytes as possible ([`BoardReader`]).
//!
//! Every cycle starts with the probe (`probe.rs`): two small requests, a third while the snapshot
//! holds blockers from other projects. If it shows no change, the cached snapshot is reused. If it
//! does, only what changed is read (`delta.rs`: the work packages updated since, often already on
//! the probe's page, the relations if they moved) and merged into the cached snapshot (`merge.rs`,
//! pure). The whole board is read
//! (`full.rs`) at start-up, when a merge cannot be sure (a deletion, too many changes, something
//! too large to read), after a read that left work packages out, and on a long interval jittered
//! per pod ([`REFRESH_EVERY`] by default), which also reads the statuses again. Blockers outside
//! the snapshot are read by id (`blockers.rs`).
//!
//! The snapshot a delta gives is the one a full read would give (tests/it/delta.rs checks it on
//! random edit streams); [`Strategy::FullOnChange`] keeps the reader as it was before delta reads,
//! for the benchmark's baseline.

mod blockers;
mod delta;
mod full;
mod merge;
mod probe;
mod resolve;

pub use blockers::Blockers;
pub use merge::{Changes, Merge, Scope, core_count, merge};
pub use probe::{OVERLAP, window_from, window_start};
pub use resolve::{Resolved, resolve, sanity};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;
use tokio::time::Instant;

use crate::board::{Item, Snapshot};
use crate::openproject::{ApiError, Client, ErrorKind, Filter, StatsSnapshot, hal};

use full::release_freed_memory;
use probe::{PROBE_MIN, Recent, Signature};

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

/// The full re-read interval when nothing asks for one sooner (jittered per pod, 75-125%).
pub const REFRESH_EVERY: Duration = Duration::from_secs(30 * 60);

/// How a reader keeps its snapshot up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Read what changed and merge it; in full only when needed (the worker's).
    #[default]
    Changes,
    /// Read everything whenever the probe moves, and every `refresh_every` on the dot: the reader
    /// before delta reads, kept as the benchmark's baseline.
    FullOnChange,
}

/// How a snapshot was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The probe showed nothing changed: the cached snapshot.
    Cached,
    /// What changed, merged into the cached snapshot.
    Changes,
    /// The whole board.
    Full,
}

/// How a snapshot was obtained, for logs, metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    /// `true` when the snapshot was read from the board this time (in full or by its changes),
    /// `false` when the probe showed nothing changed. Kept under this name for the cycle's
    /// report; [`Fetch::read`] says which read it was.
    pub full: bool,
    pub read: Read,
    pub cost: StatsSnapshot,
}

/// How many snapshots a reader obtained of each kind (for benchmarks and tests; the metric
/// `journeyman_snapshot_reads_total` counts the same for the whole process).
#[derive(Debug, Default)]
pub struct ReadCounts {
    pub cached: AtomicU64,
    pub changes: AtomicU64,
    pub full: AtomicU64,
}

impl ReadCounts {
    fn count(&self, read: Read) {
        let counter = match read {
            Read::Cached => &self.cached,
            Read::Changes => &self.changes,
            Read::Full => &self.full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(cached, changes, full)` so far.
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.cached.load(Ordering::Relaxed),
            self.changes.load(Ordering::Relaxed),
            self.full.load(Ordering::Relaxed),
        )
    }
}

/// What the reader keeps between cycles: the last snapshot and how to bring it up to date.
struct Cache {
    /// Shared with the cycle that uses it: an idle pod holds one copy of the board, not two.
    snapshot: Arc<Snapshot>,
    /// `None` when the probe itself could not be read: the next cycle reads in full.
    signature: Option<Signature>,
    /// The newest `updatedAt` seen: the next delta reads from here. `None` when the board had
    /// nothing open to date it by: the next change is read in full.
    since: Option<DateTime<Utc>>,
    /// When the next full read is due.
    refresh_at: Instant,
    /// The last read left work packages out (too large to read): only a full read brings them
    /// back with everything under them.
    partial: bool,
    /// Our own writes (or a lost race) since: the changes are read even if the probe looks the same.
    stale: bool,
}

/// A reader of snapshots with change detection. Holds the last snapshot; no other state.
pub struct BoardReader {
    client: Client,
    resolved: Resolved,
    refresh_every: Duration,
    strategy: Strategy,
    last: Option<Cache>,
    counts: Arc<ReadCounts>,
    /// How many of the newest work packages the next probe reads (`probe.rs`).
    probe_size: u32,
}

impl BoardReader {
    /// A reader that reads in full at least every `refresh_every` (jittered per reader, 75-125%,
    /// so a fleet never refreshes at once; [`REFRESH_EVERY`] in production).
    pub fn new(client: Client, resolved: Resolved, refresh_every: Duration) -> BoardReader {
        BoardReader {
            client,
            resolved,
            refresh_every,
            strategy: Strategy::Changes,
            last: None,
            counts: Arc::default(),
            probe_size: PROBE_MIN,
        }
    }

    /// The same reader with another strategy (the benchmark's baseline).
    pub fn with_strategy(mut self, strategy: Strategy) -> BoardReader {
        self.strategy = strategy;
        self
    }

    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The counts of this reader's reads, shared: they keep counting after the reader moves into
    /// a worker.
    pub fn counts(&self) -> Arc<ReadCounts> {
        self.counts.clone()
    }

    fn delta_reads(&self) -> bool {
        self.strategy == Strategy::Changes
    }

    /// After our own writes (or a lost race): the next read does not trust an unchanged probe and
    /// reads what changed (the baseline reader forgets the snapshot and reads in full).
    pub fn invalidate(&mut self) {
        match (&mut self.last, self.strategy) {
            (Some(cache), Strategy::Changes) => cache.stale = true,
            _ => self.last = None,
        }
    }

    fn project_filter(&self) -> Filter {
        Filter::new("project", "=", self.resolved.repos.keys())
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

    /// Whether the probe's page can stand for a delta read of the cached snapshot
    /// (`delta.rs`).
    fn page_can_serve(&self) -> bool {
        let catalog = &self.resolved.catalog;
        let scope = Scope {
            projects: &catalog.projects,
            closed: &catalog.closed_statuses,
        };
        self.last
            .as_ref()
            .is_some_and(|c| delta::probe_sees_all(&c.snapshot, scope))
    }

    /// The probe; `None` when it cannot be read (a work package too large even alone): the
    /// snapshot is then read in full.
    async fn probe(&self) -> Result<Option<(Signature, Recent)>, ApiError> {
        let external = self
            .last
            .as_ref()
            .map(|c| c.snapshot.external_blockers.clone())
            .unwrap_or_default();
        let size = if self.delta_reads() {
            self.probe_size
        } else {
            1
        };
        match self.signature(&external, size).await {
            Ok(s) => Ok(Some(s)),
            // One of the newest too large: the newest alone may not be.
            Err(e) if e.kind() == ErrorKind::TooLarge && size > 1 => {
                match self.signature(&external, 1).await {
                    Ok(s) => Ok(Some(s)),
                    Err(e) if e.kind() == ErrorKind::TooLarge => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Err(e) if e.kind() == ErrorKind::TooLarge => {
                tracing::warn!(error = %e, "the change probe cannot be read: reading the board in full");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Which read this probe calls for.
    fn plan(&self, signature: &Option<Signature>) -> Read {
        let Some(cache) = &self.last else {
            return Read::Full;
        };
        let unchanged = signature.is_some() && *signature == cache.signature;
        if Instant::now() >= cache.refresh_at || signature.is_none() {
            return Read::Full;
        }
        if unchanged && !cache.stale {
            return Read::Cached;
        }
        if self.delta_reads()
            && !cache.partial
            && cache.since.is_some()
            && cache.signature.is_some()
        {
            Read::Changes
        } else {
            Read::Full
        }
    }

    /// The current snapshot: the cached one if the probe shows no change, brought up to date by
    /// what changed if it does, read in full when nothing else can be trusted.
    pub async fn snapshot(&mut self) -> Result<(Arc<Snapshot>, Fetch), ApiError> {
        let before = self.client.stats();
        let probe = self.probe().await?;
        let since = self.last.as_ref().and_then(|c| c.since);
        let (signature, recent) = match probe {
            Some((s, r)) => (Some(s), r),
            None => (None, Recent::default()),
        };
        let fetch = |reader: &mut BoardReader, read| {
            reader.counts.count(read);
            let now = reader.last.as_ref().and_then(|c| c.since);
            // A page larger than the newest pays only while it can stand for the delta.
            reader.probe_size = if reader.page_can_serve() {
                recent.next_size(since, now)
            } else {
                1
            };
            Fetch {
                full: read != Read::Cached,
                read,
                cost: reader.client.stats() - before,
            }
        };
        match self.plan(&signature) {
            Read::Cached => {
                metrics::counter!("journeyman_snapshot_reads_total", "kind" => "cached")
                    .increment(1);
                let snapshot = self.last.as_ref().map(|c| c.snapshot.clone());
                // `plan` answers Cached only with a cache.
                let snapshot = snapshot.unwrap_or_default();
                return Ok((snapshot, fetch(&mut *self, Read::Cached)));
            }
            Read::Changes => {
                if let Some(snapshot) = self.changes(signature.clone(), &recent).await? {
                    metrics::counter!("journeyman_snapshot_reads_total", "kind" => "changes")
                        .increment(1);
                    return Ok((snapshot, fetch(&mut *self, Read::Changes)));
                }
            }
            Read::Full => {}
        }
        let snapshot = self.full_read(signature).await?;
        Ok((snapshot, fetch(&mut *self, Read::Full)))
    }

    /// A delta read into the cache; `None` when it cannot be trusted.
    async fn changes(
        &mut self,
        signature: Option<Signature>,
        recent: &Recent,
    ) -> Result<Option<Arc<Snapshot>>, ApiError> {
        let (Some(cache), Some(now)) = (&self.last, signature) else {
            return Ok(None);
        };
        let (Some(before), Some(since)) = (&cache.signature, cache.since) else {
            return Ok(None);
        };
        let Some(delta) = self
            .read_changes(&cache.snapshot, before, (&now, recent), since)
            .await?
        else {
            return Ok(None);
        };
        let mut now = now;
        self.watch_external(
            &mut now,
            &cache.snapshot.external_blockers.clone(),
            &delta.snapshot,
        )
        .await?;
        tracing::debug!(updated = delta.updated, "read what changed");
        let snapshot = Arc::new(delta.snapshot);
        if let Some(cache) = self.last.as_mut() {
            cache.snapshot = snapshot.clone();
            cache.signature = Some(now);
            cache.since = Some(delta.since);
            cache.stale = false;
        }
        Ok(Some(snapshot))
    }

    /// A full read into the cache.
    async fn full_read(&mut self, signature: Option<Signature>) -> Result<Arc<Snapshot>, ApiError> {
        let external = self
            .last
            .as_ref()
            .map(|c| c.snapshot.external_blockers.clone())
            .unwrap_or_default();
        self.refresh_statuses().await?;
        let (snapshot, partial) = self.full_and_partial().await?;
        let mut signature = signature;
        if let Some(sig) = signature.as_mut() {
            self.watch_external(sig, &external, &snapshot).await?;
        }
        metrics::counter!("journeyman_snapshot_reads_total", "kind" => "full").increment(1);
        // Everything after the probe that preceded this read is newer than its newest work
        // package: the next delta starts there (and reads again what changed during this read).
        let since = signature
            .as_ref()
            .and_then(|s| s.latest)
            .map(|(_, _, at)| at);
        let snapshot = Arc::new(snapshot);
        self.last = Some(Cache {
            snapshot: snapshot.clone(),
            signature,
            since,
            refresh_at: Instant::now() + self.next_refresh(),
            partial,
            stale: false,
        });
        release_freed_memory();
        Ok(snapshot)
    }

    /// The probe watches the outside blockers a read found (one more request, only when they
    /// changed).
    async fn watch_external(
        &self,
        signature: &mut Signature,
        before: &BTreeSet<u64>,
        snapshot: &Snapshot,
    ) -> Result<(), ApiError> {
        if snapshot.external_blockers != *before {
            signature.external = self.external_signature(&snapshot.external_blockers).await?;
        }
        Ok(())
    }

    /// The time to the next full read: `refresh_every`, jittered 75-125% per read for delta
    /// readers so that a fleet started together does not refresh together.
    fn next_refresh(&self) -> Duration {
        if self.delta_reads() {
            self.refresh_every
                .mul_f64(rand::rng().random_range(0.75..1.25))
        } else {
            self.refresh_every
        }
    }
}
