//! The transitions the agent's role may make, per type: the data of the board's workflows, and
//! the one question asked of it. Knows nothing of the board's other state (`workflow.rs` builds it
//! from the board's types and statuses).

use std::collections::{BTreeMap, BTreeSet};

/// The transitions the agent's role may make, per type.
#[derive(Debug, Clone, Default)]
pub struct Workflows {
    /// `None`: every transition allowed. `Some`: type id -> allowed `(from, to)` status pairs.
    transitions: Option<BTreeMap<u64, BTreeSet<(u64, u64)>>>,
    /// OpenProject refuses closed statuses for a blocked work package (`new_statuses_allowed_from`).
    /// `true` lifts that rule (no real instance can).
    pub blocked_may_close: bool,
}

impl Workflows {
    /// An explicit table: type id -> allowed `(from, to)` status pairs.
    pub fn from_table(table: BTreeMap<u64, BTreeSet<(u64, u64)>>) -> Workflows {
        Workflows {
            transitions: Some(table),
            blocked_may_close: false,
        }
    }

    /// Whether the workflow lets the agent's role move a work package of `type_id` from `from` to
    /// `to` (staying is always allowed).
    pub fn allows(&self, type_id: u64, from: u64, to: u64) -> bool {
        from == to
            || self.transitions.as_ref().is_none_or(|t| {
                t.get(&type_id)
                    .is_some_and(|pairs| pairs.contains(&(from, to)))
            })
    }

    /// Forbids every transition into `to` for `type_id` (`statuses` and `types`: the board's ids).
    pub fn forbid(&mut self, statuses: &[u64], types: &[u64], type_id: u64, to: u64) {
        let table = self.transitions.get_or_insert_with(|| {
            types
                .iter()
                .map(|&t| {
                    let pairs = statuses
                        .iter()
                        .flat_map(|&a| statuses.iter().map(move |&b| (a, b)))
                        .collect();
                    (t, pairs)
                })
                .collect()
        });
        if let Some(pairs) = table.get_mut(&type_id) {
            pairs.retain(|&(_, t)| t != to);
        }
    }

    /// Allows every transition into `to` for `type_id` (the counterpart of [`Workflows::forbid`]).
    pub fn allow(&mut self, statuses: &[u64], type_id: u64, to: u64) {
        if let Some(table) = self.transitions.as_mut() {
            let pairs = table.entry(type_id).or_default();
            for &s in statuses {
                pairs.insert((s, to));
            }
        }
    }
}
