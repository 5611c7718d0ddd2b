//! Workflows: which status a user may set, per type and role, and the one rule that holds whatever
//! the workflows say (a blocked work package cannot be closed).
//!
//! Why it exists: on a real instance a status change outside the role's workflow for the type is a
//! 422 `PropertyConstraintViolation` on `status`, and a worker that only ever met a permissive board
//! never learns to read it. What the board does, read from OpenProject's source:
//!
//! - `app/contracts/work_packages/base_contract.rb`: `validate_status_transition` adds
//!   `status_transition_invalid` when the status changed, the new status exists, the type did *not*
//!   change in the same write, and the new status is not among `assignable_statuses`;
//!   `assignable_statuses` starts from the status the work package had *before* the write ("do not
//!   allow skipping statuses"), takes the workflow's targets for the type and the user's roles plus
//!   that status itself (`new_statuses_allowed_from`), and drops every closed status while the work
//!   package is `blocked?`.
//! - `app/models/work_package.rb`: `blocked?` is "a `blocks` relation from an open work package",
//!   whoever can see that blocker; a closed work package is never blocked.
//! - The message, as OpenProject's own feature specs expect it (boards spec, bulk import spec):
//!   "Status is invalid because no valid transition exists from old to new status for the current
//!   user's roles."
//! - `app/seeders/standard.yml` (`workflows:`) and `app/seeders/basic_data/workflow_seeder.rb`: the
//!   standard seed gives each type a list of statuses and allows every transition between two of
//!   them, for the roles Member and Project admin. A Task may go to New, In progress, On hold,
//!   Rejected and Closed, so never to In testing.
//!
//! The board's admin stands for seeding and tests (`BoardHandle`), and is not held to workflows. The
//! default is what an instance configured for journeyman has: every transition allowed.

use std::collections::BTreeMap;

use super::state::{ADMIN_USER, Board, SimError, Wp};
pub use super::workflow_table::Workflows;

/// Which workflows a board starts with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkflowPreset {
    /// Every transition allowed for every type (an instance configured for journeyman).
    #[default]
    AllowAll,
    /// OpenProject's standard seed for the agent's role (`app/seeders/standard.yml`); the board's own
    /// Spike type gets the Task's workflow, as an admin who copies it would give it.
    StandardSeed,
}

/// The standard seed's statuses per type (`app/seeders/standard.yml`, `workflows:`), by name.
const STANDARD: &[(&[&str], &[&str])] = &[
    (
        &["Task", "Spike"],
        &["New", "In progress", "On hold", "Rejected", "Closed"],
    ),
    (
        &["Milestone", "Phase", "Summary task"],
        &[
            "New",
            "To be scheduled",
            "Scheduled",
            "In progress",
            "On hold",
            "Rejected",
            "Closed",
        ],
    ),
    (
        &["Feature", "Epic", "User story"],
        &[
            "New",
            "In specification",
            "Specified",
            "In progress",
            "Developed",
            "In testing",
            "Tested",
            "Test failed",
            "On hold",
            "Rejected",
            "Closed",
        ],
    ),
    (
        &["Bug"],
        &[
            "New",
            "Confirmed",
            "In progress",
            "Developed",
            "In testing",
            "Tested",
            "Test failed",
            "On hold",
            "Rejected",
            "Closed",
        ],
    ),
];

impl Board {
    /// The preset's workflows for this board's types and statuses.
    pub fn preset_workflows(&self, preset: WorkflowPreset) -> Workflows {
        match preset {
            WorkflowPreset::AllowAll => Workflows::default(),
            WorkflowPreset::StandardSeed => {
                let mut table = BTreeMap::new();
                for (types, statuses) in STANDARD {
                    let ids: Vec<u64> = statuses
                        .iter()
                        .filter_map(|s| self.status_named(s).map(|s| s.id))
                        .collect();
                    for t in types.iter().filter_map(|t| self.type_named(t)) {
                        let pairs = ids
                            .iter()
                            .flat_map(|&from| ids.iter().map(move |&to| (from, to)))
                            .collect();
                        table.insert(t.id, pairs);
                    }
                }
                Workflows::from_table(table)
            }
        }
    }

    /// Forbids every transition into `to` for `type_id`.
    pub fn forbid_transition(&mut self, type_id: u64, to: u64) {
        let (statuses, types) = self.status_and_type_ids();
        self.workflows.forbid(&statuses, &types, type_id, to);
    }

    /// Allows every transition into `to` for `type_id` again.
    pub fn allow_transition(&mut self, type_id: u64, to: u64) {
        let (statuses, _) = self.status_and_type_ids();
        self.workflows.allow(&statuses, type_id, to);
    }

    fn status_and_type_ids(&self) -> (Vec<u64>, Vec<u64>) {
        (
            self.statuses.iter().map(|s| s.id).collect(),
            self.types.iter().map(|t| t.id).collect(),
        )
    }

    /// Whether `wp` has an open blocker (`WorkPackage#blocked?`), seen or not by anyone.
    pub fn is_blocked(&self, wp: &Wp) -> bool {
        !self.is_closed(wp)
            && self.relations.values().any(|r| {
                r.type_ == "blocks"
                    && r.to == wp.id
                    && self.wps.get(&r.from).is_some_and(|b| !self.is_closed(b))
            })
    }

    /// The statuses `user` may give `wp` (of type `type_id`) whose status before the write is
    /// `from`, in position order: `assignable_statuses` of the base contract.
    pub fn assignable_statuses(&self, user: u64, wp: &Wp, type_id: u64, from: u64) -> Vec<u64> {
        let blocked = !self.workflows.blocked_may_close && self.is_blocked(wp);
        let mut ids: Vec<&super::state::StatusDef> = self
            .statuses
            .iter()
            .filter(|s| user == ADMIN_USER || self.workflows.allows(type_id, from, s.id))
            .filter(|s| user == ADMIN_USER || !(blocked && s.is_closed))
            .collect();
        ids.sort_by_key(|s| s.position);
        ids.into_iter().map(|s| s.id).collect()
    }

    /// The workflow's verdict on a write of `user` that moves `before` to status `to` (and maybe to a
    /// new type): `None` if allowed, else the 422 OpenProject answers.
    pub fn transition_error(
        &self,
        user: u64,
        before: &Wp,
        to: u64,
        type_changed: bool,
    ) -> Option<SimError> {
        if to == before.status || type_changed || self.status(to).is_none() {
            return None;
        }
        let allowed = self.assignable_statuses(user, before, before.type_id, before.status);
        (!allowed.contains(&to)).then(SimError::status_transition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::sim::state::tests::board_with;
    use crate::harness::sim::state::{AGENT_USER, WpChange};

    fn id(b: &Board, status: &str) -> u64 {
        b.status_named(status).unwrap().id
    }

    #[test]
    fn standard_seed_keeps_a_task_out_of_in_testing_but_lets_it_progress() {
        let mut b = board_with(1);
        b.workflows = b.preset_workflows(WorkflowPreset::StandardSeed);
        let testing = id(&b, "In testing");
        let change = |s| WpChange {
            status: Some(s),
            ..Default::default()
        };
        let e = b
            .update(AGENT_USER, 1, Some(0), change(testing))
            .unwrap_err();
        assert_eq!((e.status, e.attribute.as_deref()), (422, Some("status")));
        assert_eq!(
            e.message,
            "Status is invalid because no valid transition exists from old to new status for the current user's roles."
        );
        assert_eq!(b.wps[&1].lock_version, 0, "a refused write changes nothing");
        b.update(AGENT_USER, 1, Some(0), change(id(&b, "In progress")))
            .unwrap();
        let allowed = b.assignable_statuses(AGENT_USER, &b.wps[&1], 1, b.wps[&1].status);
        let names: Vec<&str> = allowed
            .iter()
            .map(|s| b.status(*s).unwrap().name.as_str())
            .collect();
        assert_eq!(
            names,
            ["New", "In progress", "Closed", "On hold", "Rejected"]
        );
    }

    #[test]
    fn a_blocked_work_package_cannot_be_closed_even_when_every_transition_is_allowed() {
        let mut b = board_with(2);
        b.relate(ADMIN_USER, 1, 2, "blocks", None, None).unwrap();
        let closed = id(&b, "Closed");
        let change = WpChange {
            status: Some(closed),
            ..Default::default()
        };
        let e = b
            .update(AGENT_USER, 2, Some(0), change.clone())
            .unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("status"));
        // Once the blocker is closed, the blocked one may close too.
        b.update(AGENT_USER, 1, Some(0), change.clone()).unwrap();
        b.update(AGENT_USER, 2, Some(0), change).unwrap();
    }

    #[test]
    fn forbid_and_allow_are_counterparts_and_a_type_change_skips_the_check() {
        let mut b = board_with(1);
        let testing = id(&b, "In testing");
        b.forbid_transition(1, testing);
        assert!(!b.workflows.allows(1, 1, testing));
        assert!(b.workflows.allows(2, 1, testing), "other types untouched");
        let before = b.wps[&1].clone();
        assert!(
            b.transition_error(AGENT_USER, &before, testing, true)
                .is_none()
        );
        assert!(
            b.transition_error(ADMIN_USER, &before, testing, false)
                .is_none()
        );
        b.allow_transition(1, testing);
        assert!(b.workflows.allows(1, 1, testing));
    }
}
