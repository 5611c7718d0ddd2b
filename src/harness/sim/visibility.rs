//! Who sees what: projects the agent user is not a member of, and everything in them.
//!
//! Why it exists: a real instance has projects the bot cannot read, and a blocker, a parent or a
//! relation can sit in one of them. A worker tested only against a board where it sees everything
//! never meets the holes this leaves. What the board does, read from OpenProject's source:
//!
//! - `lib/api/v3/work_packages/work_packages_api.rb`: a work package the user may not view answers
//!   404 `NotFound` ("A client without sufficient permissions shall not be able to test for the
//!   existence", API-NOTES section 10), and lists leave it out.
//! - `app/models/relation.rb` (`Relation.visible`) and
//!   `app/models/queries/relations/relation_query.rb`: a relation is listed only when BOTH ends are
//!   visible (the `involved`/`from`/`to` filters check the other end, `visibility_checking.rb`).
//! - `lib/api/v3/work_packages/work_package_representer.rb`: `children` lists only visible children,
//!   `ancestors` only `visible_ancestors`, and the `parent` link is `{href: null}` when the parent is
//!   not visible: such a work package looks parentless.
//! - `app/models/queries/work_packages/filter/filter_for_wp_mixin.rb` with the `HugeList` strategy
//!   (`app/models/queries/filters/strategies/huge_list.rb`): the `id`, `parent`, `blocks` and
//!   `blocked` filters accept only ids of work packages the user can see (inside the project, for a
//!   project's list); any other id is a 400 `InvalidQuery` "Filters Id filter has invalid values.".
//! - Cross-project relations are allowed by default (`cross_project_work_package_relations`,
//!   `config/constants/settings/definition.rb`; checked in `Relation#validate_sanity_of_relation`).
//!
//! The admin sees everything. Membership is per project: `None` means every user is a member (the
//! seeded project of an instance configured for journeyman).

use std::collections::BTreeSet;

use super::state::{ADMIN_USER, Board, ProjectDef, Rel, SimError, Wp};

impl Board {
    /// Whether `user` may see project `id` (and its work packages).
    pub fn project_visible(&self, user: u64, id: u64) -> bool {
        self.project(id).is_some_and(|p| {
            user == ADMIN_USER || p.members.as_ref().is_none_or(|m| m.contains(&user))
        })
    }

    /// Whether `user` may see work package `id`.
    pub fn wp_visible(&self, user: u64, id: u64) -> bool {
        self.wps
            .get(&id)
            .is_some_and(|w| self.project_visible(user, w.project))
    }

    /// The work package, or 404 if `user` cannot see it (or it does not exist).
    pub fn visible_wp(&self, user: u64, id: u64) -> Result<&Wp, SimError> {
        if self.wp_visible(user, id) {
            Ok(&self.wps[&id])
        } else {
            Err(SimError::not_found())
        }
    }

    /// Whether `user` sees both ends of `r`.
    pub fn relation_visible(&self, user: u64, r: &Rel) -> bool {
        self.wp_visible(user, r.from) && self.wp_visible(user, r.to)
    }

    /// The children of `id` that `user` sees.
    pub fn visible_children(&self, user: u64, id: u64) -> Vec<u64> {
        self.children_of(id)
            .filter(|c| self.wp_visible(user, *c))
            .collect()
    }

    /// The ancestors of `id` that `user` sees, root first.
    pub fn visible_ancestors(&self, user: u64, id: u64) -> Vec<u64> {
        self.ancestors(id)
            .into_iter()
            .filter(|a| self.wp_visible(user, *a))
            .collect()
    }

    /// Adds a project; `members: None` lets every user in, else only the admin and `members`.
    pub fn add_project(
        &mut self,
        identifier: &str,
        name: &str,
        members: Option<BTreeSet<u64>>,
    ) -> u64 {
        let id = self.projects.iter().map(|p| p.id).max().unwrap_or(0) + 1;
        self.projects.push(ProjectDef {
            id,
            identifier: identifier.into(),
            name: name.into(),
            members,
        });
        id
    }

    /// The `HugeList` check of a work package filter's values: every id names a work package `user`
    /// sees (inside `project`, for a project's list). `name` is the filter's name as sent.
    pub fn check_wp_filter_ids(
        &self,
        user: u64,
        project: Option<u64>,
        name: &str,
        ids: &BTreeSet<u64>,
    ) -> Result<(), SimError> {
        let ok = ids.iter().all(|id| {
            self.wp_visible(user, *id) && project.is_none_or(|p| self.wps[id].project == p)
        });
        if ok {
            Ok(())
        } else {
            let mut human = name.to_string();
            if let Some(first) = human.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            Err(SimError::invalid_query(format!(
                "Filters {human} filter has invalid values."
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::sim::state::tests::board_with;
    use crate::harness::sim::state::{AGENT_USER, NewWp};

    #[test]
    fn members_only_projects_hide_their_work_packages_relations_and_parents() {
        let mut b = board_with(1);
        let secret = b.add_project("secret", "Secret", Some(BTreeSet::new()));
        let hidden = b
            .create(
                ADMIN_USER,
                NewWp {
                    project: secret,
                    subject: "hidden epic".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        let child = b
            .create(
                ADMIN_USER,
                NewWp {
                    project: 1,
                    subject: "visible child".into(),
                    parent: Some(hidden),
                    ..Default::default()
                },
            )
            .unwrap();
        b.relate(ADMIN_USER, hidden, 1, "blocks", None, None)
            .unwrap();
        assert!(!b.wp_visible(AGENT_USER, hidden));
        assert!(b.wp_visible(ADMIN_USER, hidden));
        assert!(b.wp_visible(AGENT_USER, child));
        assert_eq!(b.visible_ancestors(AGENT_USER, child), Vec::<u64>::new());
        assert_eq!(b.visible_children(ADMIN_USER, hidden), vec![child]);
        let r = b.relations.values().next().unwrap().clone();
        assert!(!b.relation_visible(AGENT_USER, &r));
        let ids = BTreeSet::from([hidden]);
        let e = b
            .check_wp_filter_ids(AGENT_USER, None, "id", &ids)
            .unwrap_err();
        assert_eq!(e.message, "Filters Id filter has invalid values.");
        assert!(b.check_wp_filter_ids(ADMIN_USER, None, "id", &ids).is_ok());
        assert!(
            b.check_wp_filter_ids(ADMIN_USER, Some(1), "id", &ids)
                .is_err(),
            "outside the project's list"
        );
    }
}
