//! The board as the decision sees it: a snapshot of open work packages with ids already resolved,
//! and the catalog that says which ids mean "ready", "Bug", "Epic", and so on.
//!
//! Pure data. Built by `board::snapshot` from API responses; read by `board::decide`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

/// Board names resolved to ids (DESIGN section 2), once at start-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub ready_statuses: BTreeSet<u64>,
    pub active_status: u64,
    pub done_status: u64,
    /// Type id -> its own done status, where it differs from `done_status`.
    pub done_by_type: BTreeMap<u64, u64>,
    /// Statuses with `isClosed`.
    pub closed_statuses: BTreeSet<u64>,
    pub work_types: BTreeSet<u64>,
    pub bug_type: u64,
    pub epic_type: u64,
    pub phase_type: u64,
    pub spike_type: u64,
    /// Priority id -> rank (higher is more urgent): OpenProject's `position`.
    pub priority_rank: BTreeMap<u64, u64>,
    /// Projects configured with a repository (the allowlist).
    pub projects: BTreeSet<u64>,
}

impl Catalog {
    /// The status a work package of `type_id` goes to after a successful push.
    pub fn done_for(&self, type_id: u64) -> u64 {
        self.done_by_type
            .get(&type_id)
            .copied()
            .unwrap_or(self.done_status)
    }

    /// Whether `status` is a done status (of any type).
    pub fn is_done(&self, status: u64) -> bool {
        status == self.done_status || self.done_by_type.values().any(|s| *s == status)
    }
}

/// One open work package.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: u64,
    pub lock_version: u64,
    pub subject: String,
    pub type_id: u64,
    pub status: u64,
    pub priority: u64,
    pub project: u64,
    /// Ancestors, root first (`_links.ancestors`); the last one is the parent.
    pub ancestors: Vec<u64>,
    /// The pod field: who owns (Epic) or is pinned to / working on (work) this item.
    pub pod: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl Item {
    pub fn parent(&self) -> Option<u64> {
        self.ancestors.last().copied()
    }
}

/// Open work packages, the (possibly closed) ancestors of open work packages, and `blocks`
/// relations. Any other work package absent from the snapshot is closed or invisible to the agent
/// user: a missing blocker is resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub items: BTreeMap<u64, Item>,
    /// Blocked id -> ids of the work packages that block it (canonical `from` blocks `to`).
    pub blockers: BTreeMap<u64, BTreeSet<u64>>,
    /// Parent id -> child ids (only open children, as the snapshot holds).
    pub children: BTreeMap<u64, BTreeSet<u64>>,
    /// Open blockers outside the configured projects (cross-project relations are on by default):
    /// in `items` so that they block, never claimed; watched by the change probe.
    pub external_blockers: BTreeSet<u64>,
    /// Blockers that could not be read (not visible to the agent user, or too large): they count
    /// as open, so what they block is never claimed on a guess.
    pub unreadable_blockers: BTreeSet<u64>,
}

impl Snapshot {
    /// Builds the indexes from items and `(from, to)` pairs of `blocks` relations.
    pub fn new(
        items: impl IntoIterator<Item = Item>,
        blocks: impl IntoIterator<Item = (u64, u64)>,
    ) -> Snapshot {
        let items: BTreeMap<u64, Item> = items.into_iter().map(|i| (i.id, i)).collect();
        let mut children: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for item in items.values() {
            if let Some(p) = item.parent() {
                children.entry(p).or_default().insert(item.id);
            }
        }
        let mut blockers: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for (from, to) in blocks {
            blockers.entry(to).or_default().insert(from);
        }
        Snapshot {
            items,
            blockers,
            children,
            external_blockers: BTreeSet::new(),
            unreadable_blockers: BTreeSet::new(),
        }
    }

    /// Adds what a re-check of `wp`'s blockers found: the `blocks` relations pointing at it, the
    /// open blockers read from outside the snapshot, and those that could not be read.
    pub fn add_blockers(
        &mut self,
        wp: u64,
        from: impl IntoIterator<Item = u64>,
        open_outside: impl IntoIterator<Item = Item>,
        unreadable: impl IntoIterator<Item = u64>,
    ) {
        self.blockers.entry(wp).or_default().extend(from);
        for item in open_outside {
            self.add_outside_blocker(item);
        }
        self.unreadable_blockers.extend(unreadable);
    }

    /// An open blocker from outside the configured projects: it blocks, and is never claimed.
    pub fn add_outside_blocker(&mut self, item: Item) {
        if !self.items.contains_key(&item.id) {
            self.external_blockers.insert(item.id);
            self.items.insert(item.id, item);
        }
    }

    /// Whether `blocker` blocks: open in the snapshot, or unreadable.
    pub fn blocks(&self, blocker: u64, closed: &BTreeSet<u64>) -> bool {
        self.unreadable_blockers.contains(&blocker)
            || self
                .get(blocker)
                .is_some_and(|b| !closed.contains(&b.status))
    }

    pub fn get(&self, id: u64) -> Option<&Item> {
        self.items.get(&id)
    }

    /// All open descendants of `id`, depth first.
    pub fn descendants(&self, id: u64) -> Vec<&Item> {
        let mut out = Vec::new();
        let mut stack: Vec<u64> = self
            .children
            .get(&id)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        while let Some(c) = stack.pop() {
            if let Some(item) = self.items.get(&c) {
                out.push(item);
                stack.extend(self.children.get(&c).into_iter().flatten().copied());
            }
        }
        out
    }
}
