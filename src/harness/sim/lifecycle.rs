//! A work package leaving the configured projects without being closed: moved to another project,
//! or deleted. Humans do both; a reader that follows changes must see them.
//!
//! From OpenProject's source:
//!
//! - `app/services/work_packages/update_service.rb`: a work package whose project changes takes
//!   its descendants along (`update_descendants`: each one saved through `SetAttributesService`,
//!   so each gets a new `lockVersion` and `updatedAt`); relations are kept while cross-project
//!   relations are allowed (`delete_relations` only without `cross_project_work_package_relations`).
//! - `app/services/work_packages/delete_service.rb`: deleting a work package destroys its
//!   descendants and re-derives its ancestors (`update_ancestors_all_attributes`); relations of a
//!   destroyed work package go with it (`has_many :relations, dependent: :destroy`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::notify::WriteKind;
use super::state::{Board, JournalAction, SimError};

impl Board {
    /// All descendants of `id`, depth first.
    fn descendants(&self, id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack: Vec<u64> = self.children_of(id).collect();
        while let Some(c) = stack.pop() {
            if !out.contains(&c) {
                out.push(c);
                stack.extend(self.children_of(c));
            }
        }
        out
    }

    /// Moves work package `id` and its descendants to `project`, each saved (new `lockVersion` and
    /// `updatedAt`) and journaled.
    pub fn move_to_project(&mut self, user: u64, id: u64, project: u64) -> Result<(), SimError> {
        self.visible_wp(user, id)?;
        if self.project(project).is_none() {
            return Err(SimError::invalid_link("project"));
        }
        let moved: Vec<u64> = [id].into_iter().chain(self.descendants(id)).collect();
        let now = self.now();
        for wp in &moved {
            let Some(w) = self.wps.get_mut(wp) else {
                continue;
            };
            if w.project == project {
                continue;
            }
            w.project = project;
            w.lock_version += 1;
            w.updated_at = now;
            let lv = w.lock_version;
            self.record_activity(*wp, user, None, vec!["Project changed".into()]);
            let changes = BTreeMap::from([("project".to_string(), Value::from(project))]);
            self.journal(
                user,
                *wp,
                JournalAction::Updated {
                    changes,
                    lock_version: lv,
                },
            );
            self.notification(*wp, user, WriteKind::Update, true);
        }
        if !self.behaviour.cross_project_relations {
            self.relations
                .retain(|_, r| !moved.contains(&r.from) && !moved.contains(&r.to));
        }
        Ok(())
    }

    /// Deletes work package `id`, its descendants and their relations; its ancestors are
    /// re-derived. Returns the ids deleted.
    pub fn delete(&mut self, user: u64, id: u64) -> Result<Vec<u64>, SimError> {
        self.visible_wp(user, id)?;
        self.bump_ancestors(id, user, None);
        let deleted: Vec<u64> = [id].into_iter().chain(self.descendants(id)).collect();
        for wp in &deleted {
            if let Some(w) = self.wps.remove(wp)
                && let Some(p) = w.parent
                && let Some(siblings) = self.children.get_mut(&p)
            {
                siblings.remove(wp);
            }
            self.children.remove(wp);
        }
        self.relations
            .retain(|_, r| !deleted.contains(&r.from) && !deleted.contains(&r.to));
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::tests::board_with;
    use super::super::state::{ADMIN_USER, WpChange};

    #[test]
    fn a_move_takes_the_descendants_along_and_saves_each() {
        let mut b = board_with(3);
        for (child, parent) in [(2, 1), (3, 2)] {
            let lv = b.wps[&child].lock_version;
            let change = WpChange {
                parent: Some(Some(parent)),
                ..Default::default()
            };
            b.update(ADMIN_USER, child, Some(lv), change).unwrap();
        }
        let other = b.projects.iter().map(|p| p.id).max().unwrap() + 1;
        b.projects.push(super::super::state::ProjectDef {
            id: other,
            ..b.projects[0].clone()
        });
        let before: Vec<u64> = (1..=3).map(|i| b.wps[&i].lock_version).collect();
        b.move_to_project(ADMIN_USER, 1, other).unwrap();
        for (i, lv) in (1..=3).zip(before) {
            assert_eq!(b.wps[&i].project, other);
            assert_eq!(b.wps[&i].lock_version, lv + 1, "#{i} saved");
        }
    }

    #[test]
    fn a_delete_takes_the_descendants_and_their_relations() {
        let mut b = board_with(4);
        let lv = b.wps[&2].lock_version;
        let change = WpChange {
            parent: Some(Some(1)),
            ..Default::default()
        };
        b.update(ADMIN_USER, 2, Some(lv), change).unwrap();
        b.relate(ADMIN_USER, 2, 3, "blocks", None, None).unwrap();
        b.relate(ADMIN_USER, 4, 3, "blocks", None, None).unwrap();
        assert_eq!(b.delete(ADMIN_USER, 1).unwrap(), [1, 2]);
        assert!(!b.wps.contains_key(&1) && !b.wps.contains_key(&2));
        assert_eq!(b.relations.len(), 1, "only the relation between survivors");
        assert!(b.children_of(1).next().is_none());
    }
}
