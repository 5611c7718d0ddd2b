//! Eligibility (DESIGN section 1): whether a work package may be claimed by a pod, and why not.
//!
//! Pure, like everything in `board/`: a function of the snapshot, the catalog, the pod's name and
//! the work packages this cycle already passed over.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::model::{Catalog, Item, Snapshot};

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

/// Why `item` cannot be claimed by pod `me`, or `None` if it can. `skip` holds what this cycle
/// already passed over (lost, escalated, released): they and everything under a skipped Epic.
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
    if let Some(blocker) = s
        .blockers
        .get(&item.id)
        .into_iter()
        .flatten()
        .find(|b| s.blocks(**b, &c.closed_statuses))
    {
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
    // The gates of the ancestors: a Phase gates everything below it until it is active (a missing
    // ancestor is closed, so a closed Phase gates too); an Epic of another pod hides its work.
    for a in &item.ancestors {
        match s.get(*a) {
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

/// How many work packages this pod could claim right now (the "eligible work visible" gauge).
pub fn eligible_count(s: &Snapshot, c: &Catalog, me: &str) -> usize {
    let none = BTreeSet::new();
    s.items
        .values()
        .filter(|i| ineligibility(s, c, me, i, &none).is_none())
        .count()
}

/// The board's order: priority (most urgent first), then id ascending.
pub(super) fn order(c: &Catalog, i: &Item) -> (Reverse<u64>, u64) {
    (
        Reverse(c.priority_rank.get(&i.priority).copied().unwrap_or(0)),
        i.id,
    )
}

pub(super) fn is_mine(item: &Item, me: &str) -> bool {
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
