//! Seeding the bundled board by name: from tests (`SeedWp`) and from seed files (`SeedFile`, JSON),
//! which the demo and `journeyman board --seed FILE` load. Names (type, status, priority) are resolved
//! here so that seeds read like a board, not like a database dump.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::{ADMIN_USER, Board, NewWp, POD_FIELD, ProjectDef};

/// A work package to seed, by names.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWp {
    /// A name other entries of a seed file use to refer to this one (parent, blockers).
    #[serde(default)]
    pub key: Option<String>,
    pub subject: String,
    #[serde(default = "task", rename = "type")]
    pub type_: String,
    #[serde(default = "new_status")]
    pub status: String,
    #[serde(default = "normal")]
    pub priority: String,
    #[serde(default)]
    pub description: String,
    /// Project identifier (default: `demo`).
    #[serde(default = "demo")]
    pub project: String,
    /// Parent: an id (from tests) ...
    #[serde(skip)]
    pub parent: Option<u64>,
    /// ... or the key of an earlier entry (from seed files).
    #[serde(default, rename = "parent")]
    pub parent_key: Option<String>,
    /// The "Agent pod" field (pinning).
    #[serde(default)]
    pub pod: Option<String>,
    /// Keys of entries that block this one (seed files only).
    #[serde(default)]
    pub blocked_by: Vec<String>,
}

fn task() -> String {
    "Task".into()
}
fn new_status() -> String {
    "New".into()
}
fn normal() -> String {
    "Normal".into()
}
fn demo() -> String {
    "demo".into()
}

impl SeedWp {
    /// A `New`, `Normal` Task in project `demo`.
    pub fn new(type_: &str, subject: &str) -> SeedWp {
        SeedWp {
            key: None,
            subject: subject.into(),
            type_: type_.into(),
            status: new_status(),
            priority: normal(),
            description: String::new(),
            project: demo(),
            parent: None,
            parent_key: None,
            pod: None,
            blocked_by: vec![],
        }
    }
    pub fn parent(mut self, id: u64) -> Self {
        self.parent = Some(id);
        self
    }
    pub fn status(mut self, s: &str) -> Self {
        self.status = s.into();
        self
    }
    pub fn priority(mut self, p: &str) -> Self {
        self.priority = p.into();
        self
    }
    pub fn pod(mut self, p: &str) -> Self {
        self.pod = Some(p.into());
        self
    }
    pub fn description(mut self, d: &str) -> Self {
        self.description = d.into();
        self
    }
    pub fn project(mut self, p: &str) -> Self {
        self.project = p.into();
        self
    }
}

/// Creates one work package from names, as the admin.
pub fn create(board: &mut Board, seed: &SeedWp) -> Result<u64, String> {
    let type_id = board
        .type_named(&seed.type_)
        .ok_or_else(|| format!("unknown type `{}`", seed.type_))?
        .id;
    let status = board
        .status_named(&seed.status)
        .ok_or_else(|| format!("unknown status `{}`", seed.status))?
        .id;
    let priority = board
        .priority_named(&seed.priority)
        .ok_or_else(|| format!("unknown priority `{}`", seed.priority))?
        .id;
    let project = board
        .project_by_key(&seed.project)
        .ok_or_else(|| format!("unknown project `{}`", seed.project))?
        .id;
    let mut custom = BTreeMap::new();
    if let Some(pod) = &seed.pod
        && board.custom_fields.iter().any(|c| c.id == POD_FIELD)
    {
        custom.insert(POD_FIELD, pod.clone());
    }
    let new = NewWp {
        project,
        type_id: Some(type_id),
        status: Some(status),
        priority: Some(priority),
        subject: seed.subject.clone(),
        description: seed.description.clone(),
        parent: seed.parent,
        assignee: None,
        custom,
    };
    board.create(ADMIN_USER, new).map_err(|e| e.message)
}

/// A seed file: projects and work packages (in order; parents and blockers before their use).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub projects: Vec<SeedProject>,
    pub work_packages: Vec<SeedWp>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProject {
    pub identifier: String,
    pub name: String,
}

impl SeedFile {
    pub fn parse(json: &str) -> Result<SeedFile, String> {
        serde_json::from_str(json).map_err(|e| format!("seed file: {e}"))
    }

    /// Loads the file into the board; returns key -> id.
    pub fn apply(&self, board: &mut Board) -> Result<BTreeMap<String, u64>, String> {
        for p in &self.projects {
            if board.project_by_key(&p.identifier).is_none() {
                let id = board.projects.iter().map(|p| p.id).max().unwrap_or(0) + 1;
                board.projects.push(ProjectDef {
                    id,
                    identifier: p.identifier.clone(),
                    name: p.name.clone(),
                    members: None,
                });
            }
        }
        let mut keys = BTreeMap::new();
        for wp in &self.work_packages {
            let mut wp = wp.clone();
            if let Some(k) = &wp.parent_key {
                wp.parent = Some(*keys.get(k).ok_or_else(|| {
                    format!("`{}`: parent `{k}` is not defined before it", wp.subject)
                })?);
            }
            let id = create(board, &wp).map_err(|e| format!("`{}`: {e}", wp.subject))?;
            for blocker in &wp.blocked_by {
                let b = *keys.get(blocker).ok_or_else(|| {
                    format!(
                        "`{}`: blocker `{blocker}` is not defined before it",
                        wp.subject
                    )
                })?;
                board
                    .relate(ADMIN_USER, b, id, "blocks", None, None)
                    .map_err(|e| format!("`{}`: {}", wp.subject, e.message))?;
            }
            if let Some(k) = &wp.key
                && keys.insert(k.clone(), id).is_some()
            {
                return Err(format!("key `{k}` is used twice"));
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_file_resolves_keys_and_relations() {
        let file = SeedFile::parse(
            r#"{"work_packages": [
                {"key": "e", "type": "Epic", "subject": "Epic"},
                {"key": "a", "subject": "A", "parent": "e"},
                {"subject": "B", "parent": "e", "blocked_by": ["a"], "pod": "pod-2", "priority": "High"}
            ]}"#,
        )
        .unwrap();
        let mut b = Board::seeded("Phase");
        let keys = file.apply(&mut b).unwrap();
        assert_eq!(keys["a"], 2);
        assert_eq!(b.wps[&3].parent, Some(1));
        assert_eq!(
            b.wps[&3].custom.get(&POD_FIELD).map(String::as_str),
            Some("pod-2")
        );
        assert_eq!(
            b.relations.values().next().map(|r| (r.from, r.to)),
            Some((2, 3))
        );
    }

    #[test]
    fn seed_file_errors_name_the_entry() {
        let mut b = Board::seeded("Phase");
        let e = SeedFile::parse(r#"{"work_packages": [{"subject": "X", "parent": "nope"}]}"#)
            .unwrap()
            .apply(&mut b)
            .unwrap_err();
        assert!(e.contains("`X`") && e.contains("nope"), "{e}");
        let e = SeedFile::parse(r#"{"work_packages": [{"subject": "X", "type": "Saga"}]}"#)
            .unwrap()
            .apply(&mut b)
            .unwrap_err();
        assert!(e.contains("unknown type `Saga`"), "{e}");
        assert!(
            SeedFile::parse(r#"{"work_packages": [{"subject": "X", "colour": "red"}]}"#).is_err()
        );
    }
}
