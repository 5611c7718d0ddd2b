//! What changed, merged into the cached snapshot. Pure: "the merged snapshot is the one a full read
//! would give" is a property of this one function (its tests here, and against the bundled board
//! in `tests/it/delta.rs`).
//!
//! A snapshot holds the open work packages of the configured projects (the *core*), every
//! ancestor of those (closed ones still gate), and the open blockers outside them. A delta read
//! brings the work packages updated since the last read, in any status and any project, so a
//! close, a move to another project or a new parent is seen on the work package itself. What a
//! change does not touch is derived here instead: a work package whose ancestor moved keeps its
//! own `updatedAt` but not its ancestors (OpenProject re-derives the ancestry, not the
//! descendants), so chains are rebuilt from parents; an ancestor no open work package needs any
//! more leaves; one newly needed, or a blocker of a new relation nobody has seen, is asked for by
//! id ([`Merge::Read`]). A deletion leaves no trace in a delta: the reader finds it from the
//! probe's count of open work packages, which [`core_count`] compares with.

use std::collections::{BTreeMap, BTreeSet};

use crate::board::{Item, Snapshot};

/// What decides which work packages are the snapshot's core.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The configured projects.
    pub projects: &'a BTreeSet<u64>,
    /// Statuses with `isClosed`.
    pub closed: &'a BTreeSet<u64>,
}

impl Scope<'_> {
    /// Open, in a configured project: what the full read lists.
    pub fn core(&self, i: &Item) -> bool {
        !self.closed.contains(&i.status) && self.projects.contains(&i.project)
    }

    fn open(&self, i: &Item) -> bool {
        !self.closed.contains(&i.status)
    }
}

/// What a delta read found.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Work packages updated since the last read (any status, any project), oldest first.
    pub updated: Vec<Item>,
    /// Every `blocks` relation as `(from, to)`, when the relations were read again.
    pub blocks: Option<Vec<(u64, u64)>>,
    /// Work packages read by id because an earlier merge asked for them.
    pub by_id: BTreeMap<u64, Item>,
    /// Ids asked for that could not be read (not visible to the agent user, or too large).
    pub unreadable: BTreeSet<u64>,
}

/// The outcome of a merge.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    Done(Snapshot),
    /// Read these work packages by id (into [`Changes::by_id`]), then merge again.
    Read(BTreeSet<u64>),
    /// An ancestor of open work cannot be read: only a full read leaves out what is under it.
    Full,
}

/// Merges `changes` into `prev`.
pub fn merge(prev: &Snapshot, changes: &Changes, scope: Scope<'_>) -> Merge {
    // The newest version of everything known: the delta's, then what was read by id after it.
    let mut fresh: BTreeMap<u64, &Item> = BTreeMap::new();
    for i in changes.updated.iter().chain(changes.by_id.values()) {
        fresh.insert(i.id, i);
    }
    let mut known: BTreeMap<u64, Item> = prev.items.clone();
    known.extend(fresh.values().map(|i| (i.id, (*i).clone())));
    rederive_chains(&mut known, &fresh);

    let core: BTreeSet<u64> = known
        .values()
        .filter(|i| scope.core(i))
        .map(|i| i.id)
        .collect();
    let needed: BTreeSet<u64> = core
        .iter()
        .flat_map(|id| known[id].ancestors.iter().copied())
        .filter(|a| !core.contains(a))
        .collect();
    if needed.iter().any(|a| changes.unreadable.contains(a)) {
        return Merge::Full;
    }
    let mut missing: BTreeSet<u64> = needed
        .iter()
        .copied()
        .filter(|a| !known.contains_key(a))
        .collect();

    let blocks = changes.blocks.clone().unwrap_or_else(|| pairs(prev));
    let before: BTreeSet<u64> = prev.blockers.values().flatten().copied().collect();
    let mut outside_open = Vec::new();
    let mut unreadable = BTreeSet::new();
    let outside: BTreeSet<u64> = blocks
        .iter()
        .map(|(from, _)| *from)
        .filter(|b| !core.contains(b) && !needed.contains(b))
        .collect();
    for b in outside {
        match blocker_state(b, prev, &fresh, changes, &before, scope) {
            Blocker::Open => outside_open.push(known[&b].clone()),
            Blocker::Closed => {}
            Blocker::Unreadable => {
                unreadable.insert(b);
            }
            Blocker::Unknown => {
                missing.insert(b);
            }
        }
    }
    if !missing.is_empty() {
        return Merge::Read(missing);
    }

    let items = core.iter().chain(&needed).map(|id| known[id].clone());
    let mut snapshot = Snapshot::new(items.collect::<Vec<_>>(), blocks);
    for item in outside_open {
        snapshot.add_outside_blocker(item);
    }
    snapshot.unreadable_blockers = unreadable;
    Merge::Done(snapshot)
}

/// How many of the snapshot's work packages the full read lists (open, configured projects).
pub fn core_count(s: &Snapshot, scope: Scope<'_>) -> u64 {
    s.items.values().filter(|i| scope.core(i)).count() as u64
}

/// What the merge knows of a blocker outside the core and its ancestors.
enum Blocker {
    Open,
    Closed,
    Unreadable,
    Unknown,
}

fn blocker_state(
    b: u64,
    prev: &Snapshot,
    fresh: &BTreeMap<u64, &Item>,
    changes: &Changes,
    blockers_before: &BTreeSet<u64>,
    scope: Scope<'_>,
) -> Blocker {
    if let Some(i) = fresh.get(&b) {
        // Read this cycle: its status now says it all.
        return if scope.open(i) {
            Blocker::Open
        } else {
            Blocker::Closed
        };
    }
    if changes.unreadable.contains(&b) || prev.unreadable_blockers.contains(&b) {
        return Blocker::Unreadable;
    }
    match prev.items.get(&b) {
        // Unchanged since the last read (a change would be in the delta).
        Some(i) if scope.open(i) => Blocker::Open,
        Some(_) => Blocker::Closed,
        // A blocker the last read found closed (so it was not kept): unchanged since.
        None if blockers_before.contains(&b) => Blocker::Closed,
        None => Blocker::Unknown,
    }
}

/// The `(from, to)` pairs of a snapshot's `blocks` relations.
pub(super) fn pairs(s: &Snapshot) -> Vec<(u64, u64)> {
    s.blockers
        .iter()
        .flat_map(|(to, froms)| froms.iter().map(move |from| (*from, *to)))
        .collect()
}

/// Rebuilds the ancestors of every work package not read this cycle from its parent's: the parent
/// link is the work package's own (a change of it is in the delta), the chain above is not.
fn rederive_chains(known: &mut BTreeMap<u64, Item>, fresh: &BTreeMap<u64, &Item>) {
    let mut chains: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let ids: Vec<u64> = known.keys().copied().collect();
    for id in ids {
        chain(id, known, fresh, &mut chains, 0);
    }
    for (id, c) in chains {
        if let Some(i) = known.get_mut(&id) {
            i.ancestors = c;
        }
    }
}

/// Deeper than any real hierarchy: a stale mix of versions can never make the walk loop.
const MAX_DEPTH: usize = 64;

fn chain(
    id: u64,
    known: &BTreeMap<u64, Item>,
    fresh: &BTreeMap<u64, &Item>,
    chains: &mut BTreeMap<u64, Vec<u64>>,
    depth: usize,
) -> Vec<u64> {
    if let Some(c) = chains.get(&id) {
        return c.clone();
    }
    let item = &known[&id];
    let c = match item.parent() {
        _ if fresh.contains_key(&id) || depth > MAX_DEPTH => item.ancestors.clone(),
        Some(p) if known.contains_key(&p) => {
            let mut c = chain(p, known, fresh, chains, depth + 1);
            c.push(p);
            c
        }
        // A parent the snapshot does not hold (above an outside blocker): its own chain.
        _ => item.ancestors.clone(),
    };
    chains.insert(id, c.clone());
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    const OPEN: u64 = 1;
    const CLOSED: u64 = 12;
    const HERE: u64 = 1;
    const ELSEWHERE: u64 = 2;

    fn item(id: u64, status: u64, project: u64, ancestors: &[u64]) -> Item {
        Item {
            id,
            lock_version: 0,
            subject: format!("#{id}"),
            type_id: 1,
            status,
            priority: 8,
            project,
            ancestors: ancestors.to_vec(),
            pod: None,
            updated_at: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
        }
    }

    /// Merges `changes` into the snapshot of `items` and `blocks` and returns the outcome.
    fn check(items: Vec<Item>, blocks: &[(u64, u64)], changes: Changes) -> Merge {
        let (projects, closed) = ([HERE].into(), [CLOSED].into());
        let scope = Scope {
            projects: &projects,
            closed: &closed,
        };
        merge(&Snapshot::new(items, blocks.to_vec()), &changes, scope)
    }

    fn updated(items: Vec<Item>) -> Changes {
        Changes {
            updated: items,
            ..Changes::default()
        }
    }

    fn done(m: Merge) -> Snapshot {
        match m {
            Merge::Done(s) => s,
            other => panic!("expected a merged snapshot, got {other:?}"),
        }
    }

    #[test]
    fn nothing_changed_gives_the_same_snapshot() {
        let items = vec![item(1, CLOSED, HERE, &[]), item(2, OPEN, HERE, &[1])];
        let before = Snapshot::new(items.clone(), [(2, 3)]);
        let after = done(check(
            items.clone(),
            &[(2, 3)],
            updated(vec![items[1].clone()]),
        ));
        assert_eq!(after, before);
    }

    #[test]
    fn a_closed_work_package_leaves_and_takes_its_unneeded_closed_ancestor_along() {
        let items = vec![item(1, CLOSED, HERE, &[]), item(2, OPEN, HERE, &[1])];
        let s = done(check(
            items,
            &[],
            updated(vec![item(2, CLOSED, HERE, &[1])]),
        ));
        assert!(s.items.is_empty(), "{s:?}");
        assert!(s.children.is_empty());
    }

    #[test]
    fn a_moved_ancestor_rebuilds_the_chains_below_it() {
        // 3 under 2 under 1; then 2 moves under 4: 3 is not in the delta (OpenProject re-derives
        // ancestors, not descendants), yet its chain is [4, 2].
        let items = vec![
            item(1, OPEN, HERE, &[]),
            item(2, OPEN, HERE, &[1]),
            item(3, OPEN, HERE, &[1, 2]),
            item(4, OPEN, HERE, &[]),
        ];
        let s = done(check(items, &[], updated(vec![item(2, OPEN, HERE, &[4])])));
        assert_eq!(s.items[&3].ancestors, [4, 2]);
        assert_eq!(s.children[&4], [2].into());
        assert!(!s.children.contains_key(&1));
    }

    #[test]
    fn work_moved_to_another_project_leaves_but_still_blocks() {
        let items = vec![item(1, OPEN, HERE, &[]), item(2, OPEN, HERE, &[])];
        let s = done(check(
            items,
            &[(1, 2)],
            updated(vec![item(1, OPEN, ELSEWHERE, &[])]),
        ));
        assert_eq!(s.external_blockers, [1].into());
        assert_eq!(s.items[&1].project, ELSEWHERE);
    }

    #[test]
    fn a_new_parent_the_snapshot_never_held_is_read_by_id() {
        let items = vec![item(2, OPEN, HERE, &[])];
        let m = check(items.clone(), &[], updated(vec![item(2, OPEN, HERE, &[9])]));
        assert_eq!(m, Merge::Read([9].into()));
        let mut changes = updated(vec![item(2, OPEN, HERE, &[9])]);
        changes.by_id.insert(9, item(9, CLOSED, HERE, &[]));
        let s = done(check(items.clone(), &[], changes.clone()));
        assert_eq!(
            s.items[&9].status, CLOSED,
            "a closed ancestor is kept: it gates"
        );
        changes.by_id.clear();
        changes.unreadable.insert(9);
        assert_eq!(check(items, &[], changes), Merge::Full);
    }

    #[test]
    fn a_new_relation_from_an_unknown_work_package_asks_for_it_and_a_known_closed_one_does_not() {
        let items = vec![item(2, OPEN, HERE, &[])];
        // 5 blocked 2 before and was left out: the last read found it closed.
        let relations = Changes {
            blocks: Some(vec![(5, 2), (7, 2)]),
            ..Changes::default()
        };
        let m = check(items.clone(), &[(5, 2)], relations.clone());
        assert_eq!(m, Merge::Read([7].into()));
        let mut read = relations.clone();
        read.by_id.insert(7, item(7, OPEN, ELSEWHERE, &[]));
        let s = done(check(items.clone(), &[(5, 2)], read));
        assert_eq!(s.external_blockers, [7].into());
        let mut invisible = relations;
        invisible.unreadable.insert(7);
        let s = done(check(items, &[(5, 2)], invisible));
        assert_eq!(s.unreadable_blockers, [7].into());
    }

    #[test]
    fn an_outside_blocker_that_closed_leaves_and_a_removed_relation_drops_it() {
        let items = vec![item(2, OPEN, HERE, &[])];
        let mut prev = Snapshot::new(items.clone(), [(7, 2)]);
        prev.add_outside_blocker(item(7, OPEN, ELSEWHERE, &[]));
        let (projects, closed) = ([HERE].into(), [CLOSED].into());
        let scope = Scope {
            projects: &projects,
            closed: &closed,
        };
        let s = done(merge(
            &prev,
            &updated(vec![item(7, CLOSED, ELSEWHERE, &[])]),
            scope,
        ));
        assert!(s.external_blockers.is_empty() && !s.items.contains_key(&7));
        let gone = Changes {
            blocks: Some(vec![]),
            ..Changes::default()
        };
        let s = done(merge(&prev, &gone, scope));
        assert!(s.external_blockers.is_empty() && s.blockers.is_empty());
    }

    #[test]
    fn the_core_count_is_open_work_of_the_configured_projects() {
        let mut s = Snapshot::new(
            vec![
                item(1, CLOSED, HERE, &[]),
                item(2, OPEN, HERE, &[1]),
                item(3, OPEN, ELSEWHERE, &[]),
            ],
            [],
        );
        s.add_outside_blocker(item(4, OPEN, ELSEWHERE, &[]));
        let (projects, closed) = ([HERE].into(), [CLOSED].into());
        let scope = Scope {
            projects: &projects,
            closed: &closed,
        };
        assert_eq!(core_count(&s, scope), 1);
    }
}
