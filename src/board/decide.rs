//! The decision: which work package this pod should act on next. A pure function of the board
//! snapshot, the pod's name and the clock; no I/O, no memory between cycles (so a restarted pod
//! decides exactly as the one that died would have).
//!
//! The seven rules of DESIGN section 1, first match wins:
//! 1. finish my own work (In progress, pod field = me); then take over a claim whose pod never came
//!    back (In progress, no activity for longer than the claim lease: task timeout plus a grace);
//! 2. continue my Epic (pod field = me, In progress) with its best eligible descendant;
//! 3. release a stale Epic (owned, nothing In progress below it, no activity for `epic_stale_after`),
//!    or my finished Epic (every open descendant done): one release per call;
//! 4. the best eligible Bug; 5. the best eligible Task/Feature/User story under an Epic (claiming
//!    the Epic first if nobody owns it); 6. the best eligible standalone work package; 7. sleep.
//!
//! Choices the design leaves open, made here and documented in ARCHITECTURE.md: work under an Epic
//! always requires owning that Epic (Bugs included), so one Epic is never worked by two pods; an
//! Epic pinned to another pod makes everything below it invisible to me; ancestors missing from
//! the snapshot are closed, so a closed Phase gates and a closed Epic is ignored.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::model::{Catalog, Item, Snapshot};

/// What the decision asks the cycle to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Rule 1: resume a work package already claimed by this pod (e.g. after a restart).
    Resume { wp: u64 },
    /// Rule 1b: take over a claim whose pod never came back (In progress, no activity for longer
    /// than the claim lease); `epic` is the Epic above it that the same pod owned, taken over first.
    TakeOver {
        wp: u64,
        epic: Option<u64>,
        from: String,
    },
    /// Rules 2, 4, 5, 6: claim `wp`; if `epic` is set, claim that Epic first.
    Claim {
        wp: u64,
        epic: Option<u64>,
        rule: Rule,
    },
    /// Rule 3: release an Epic.
    ReleaseEpic { epic: u64, reason: Release },
    /// Rule 7.
    Sleep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    MyEpic,
    Bug,
    Task,
    Standalone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// No descendant In progress and no activity for `epic_stale_after`: clear the pod field and
    /// set the ready status, so another pod can take it.
    Stale,
    /// My Epic and every open descendant is done: clear the pod field, leave the status for a human.
    Finished,
}

/// Why a work package is not eligible for this pod (`None` from [`ineligibility`] means eligible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ineligible {
    NotReady,
    NotWork,
    ProjectNotConfigured,
    PinnedElsewhere,
    BlockedBy(u64),
    OpenSpike(u64),
    PhaseNotActive(u64),
    UnderForeignEpic(u64),
    Skipped,
}

/// Inputs that are configuration, not board state.
#[derive(Debug, Clone)]
pub struct Policy {
    pub epic_stale_after: chrono::Duration,
    /// How long a claim stays valid without any activity on the work package: the task timeout
    /// plus a grace. A live pod always writes (a comment, a status) within it.
    pub claim_lease: chrono::Duration,
}

/// The decision. `skip` holds work packages (or Epics) this cycle already lost a claim on: they and
/// everything under a skipped Epic are passed over, so the cycle can re-decide after a 409 without
/// re-reading the board.
pub fn decide(
    s: &Snapshot,
    c: &Catalog,
    me: &str,
    now: DateTime<Utc>,
    policy: &Policy,
    skip: &BTreeSet<u64>,
) -> Action {
    // 1. Finish my own work.
    if let Some(mine) = s
        .items
        .values()
        .filter(|i| {
            is_mine(i, me) && i.status == c.active_status && c.work_types.contains(&i.type_id)
        })
        .filter(|i| c.projects.contains(&i.project) && !skip.contains(&i.id))
        .min_by_key(|i| order(c, i))
    {
        return Action::Resume { wp: mine.id };
    }

    // 1b. Take over a claim whose pod never came back.
    if let Some((item, from)) = s
        .items
        .values()
        .filter(|i| {
            i.status == c.active_status
                && c.work_types.contains(&i.type_id)
                && c.projects.contains(&i.project)
        })
        .filter(|i| !skip.contains(&i.id) && now - i.updated_at >= policy.claim_lease)
        .filter_map(|i| Some((i, i.pod.as_deref().filter(|p| *p != me)?)))
        .filter(|(i, from)| {
            nearest_epic(s, c, i)
                .is_none_or(|e| e.pod.as_deref().is_none_or(|p| p == *from || p == me))
        })
        .min_by_key(|(i, _)| order(c, i))
    {
        let epic = nearest_epic(s, c, item)
            .filter(|e| e.pod.as_deref() == Some(from))
            .map(|e| e.id);
        return Action::TakeOver {
            wp: item.id,
            epic,
            from: from.to_string(),
        };
    }

    // 2. Continue my Epic.
    let my_epics = s
        .items
        .values()
        .filter(|i| i.type_id == c.epic_type && is_mine(i, me) && i.status == c.active_status);
    let best_in_my_epics = my_epics
        .filter(|e| !skip.contains(&e.id))
        .flat_map(|e| s.descendants(e.id))
        .filter(|i| ineligibility(s, c, me, i, skip).is_none())
        .min_by_key(|i| order(c, i));
    if let Some(item) = best_in_my_epics {
        return Action::Claim {
            wp: item.id,
            epic: epic_to_claim(s, c, me, item),
            rule: Rule::MyEpic,
        };
    }

    // 3. Release a stale Epic, or my finished one.
    if let Some((epic, reason)) = epic_to_release(s, c, me, now, policy, skip) {
        return Action::ReleaseEpic { epic, reason };
    }

    let eligible: Vec<&Item> = s
        .items
        .values()
        .filter(|i| ineligibility(s, c, me, i, skip).is_none())
        .collect();
    // 4. Bugs.
    if let Some(bug) = eligible
        .iter()
        .filter(|i| i.type_id == c.bug_type)
        .min_by_key(|i| order(c, i))
    {
        return Action::Claim {
            wp: bug.id,
            epic: epic_to_claim(s, c, me, bug),
            rule: Rule::Bug,
        };
    }
    // 5. Tasks under an Epic.
    if let Some(task) = eligible
        .iter()
        .filter(|i| nearest_epic(s, c, i).is_some())
        .min_by_key(|i| order(c, i))
    {
        return Action::Claim {
            wp: task.id,
            epic: epic_to_claim(s, c, me, task),
            rule: Rule::Task,
        };
    }
    // 6. Standalone work.
    if let Some(item) = eligible
        .iter()
        .filter(|i| nearest_epic(s, c, i).is_none())
        .min_by_key(|i| order(c, i))
    {
        return Action::Claim {
            wp: item.id,
            epic: None,
            rule: Rule::Standalone,
        };
    }
    // 7. Nothing to do.
    Action::Sleep
}

/// The board's order: priority (most urgent first), then id ascending.
fn order(c: &Catalog, i: &Item) -> (Reverse<u64>, u64) {
    (
        Reverse(c.priority_rank.get(&i.priority).copied().unwrap_or(0)),
        i.id,
    )
}

fn is_mine(item: &Item, me: &str) -> bool {
    item.pod.as_deref() == Some(me)
}

/// The nearest open ancestor Epic. A closed Epic is never claimed (that would reopen it), so work
/// below one is treated as standalone.
pub fn nearest_epic<'a>(s: &'a Snapshot, c: &Catalog, item: &Item) -> Option<&'a Item> {
    item.ancestors
        .iter()
        .rev()
        .filter_map(|a| s.get(*a))
        .find(|a| a.type_id == c.epic_type && !c.closed_statuses.contains(&a.status))
}

/// The Epic to claim before `item`: its nearest Epic, unless I already own it In progress.
fn epic_to_claim(s: &Snapshot, c: &Catalog, me: &str, item: &Item) -> Option<u64> {
    nearest_epic(s, c, item)
        .filter(|e| !(is_mine(e, me) && e.status == c.active_status))
        .map(|e| e.id)
}

/// Why `item` cannot be claimed by pod `me`, or `None` if it can.
pub fn ineligibility(
    s: &Snapshot,
    c: &Catalog,
    me: &str,
    item: &Item,
    skip: &BTreeSet<u64>,
) -> Option<Ineligible> {
    if skip.contains(&item.id) {
        return Some(Ineligible::Skipped);
    }
    if !c.work_types.contains(&item.type_id) {
        return Some(Ineligible::NotWork);
    }
    if !c.ready_statuses.contains(&item.status) {
        return Some(Ineligible::NotReady);
    }
    if !c.projects.contains(&item.project) {
        return Some(Ineligible::ProjectNotConfigured);
    }
    if item.pod.as_deref().is_some_and(|p| p != me) {
        return Some(Ineligible::PinnedElsewhere);
    }
    if let Some(blocker) = s.blockers.get(&item.id).into_iter().flatten().find(|b| {
        s.get(**b)
            .is_some_and(|b| !c.closed_statuses.contains(&b.status))
    }) {
        return Some(Ineligible::BlockedBy(*blocker));
    }
    if let Some(spike) = s
        .children
        .get(&item.id)
        .into_iter()
        .flatten()
        .filter_map(|id| s.get(*id))
        .find(|ch| ch.type_id == c.spike_type && !c.closed_statuses.contains(&ch.status))
    {
        return Some(Ineligible::OpenSpike(spike.id));
    }
    for a in &item.ancestors {
        match s.get(*a) {
            // A Phase gates everything below it until it is active; a missing ancestor is closed.
            Some(anc) if anc.type_id == c.phase_type && anc.status != c.active_status => {
                return Some(Ineligible::PhaseNotActive(*a));
            }
            Some(anc)
                if anc.type_id == c.epic_type && anc.pod.as_deref().is_some_and(|p| p != me) =>
            {
                return Some(Ineligible::UnderForeignEpic(*a));
            }
            Some(anc) if anc.type_id == c.epic_type && skip.contains(a) => {
                return Some(Ineligible::Skipped);
            }
            _ => {}
        }
    }
    None
}

/// Rule 3: the first Epic (by id) to release, if any.
fn epic_to_release(
    s: &Snapshot,
    c: &Catalog,
    me: &str,
    now: DateTime<Utc>,
    policy: &Policy,
    skip: &BTreeSet<u64>,
) -> Option<(u64, Release)> {
    let owned = |i: &&Item| {
        i.type_id == c.epic_type && i.pod.is_some() && !c.closed_statuses.contains(&i.status)
    };
    for epic in s
        .items
        .values()
        .filter(owned)
        .filter(|i| !skip.contains(&i.id))
    {
        let descendants = s.descendants(epic.id);
        let finished =
            |d: &&Item| d.status == c.done_status || c.closed_statuses.contains(&d.status);
        if is_mine(epic, me) && epic.status == c.active_status && descendants.iter().all(finished) {
            return Some((epic.id, Release::Finished));
        }
        let busy = descendants.iter().any(|d| d.status == c.active_status);
        let last_activity = descendants
            .iter()
            .map(|d| d.updated_at)
            .chain([epic.updated_at])
            .max()
            .unwrap_or(epic.updated_at);
        if epic.status == c.active_status && !busy && now - last_activity >= policy.epic_stale_after
        {
            return Some((epic.id, Release::Stale));
        }
    }
    None
}

/// How many work packages this pod could claim right now (the "eligible work visible" gauge).
pub fn eligible_count(s: &Snapshot, c: &Catalog, me: &str) -> usize {
    let none = BTreeSet::new();
    s.items
        .values()
        .filter(|i| ineligibility(s, c, me, i, &none).is_none())
        .count()
}
