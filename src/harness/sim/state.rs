//! The bundled board's data and every operation on it, synchronous and free of HTTP.
//!
//! The rules here are OpenProject's where the worker can tell (API-NOTES): `lockVersion` +1 on every
//! change and 409 on a stale or missing one; comments do not bump it but do touch `updatedAt`
//! (`app/services/journals/create_service.rb`, `touch_journable`); a child's status or parent change
//! re-derives its ancestors, former ones included (`app/services/work_packages/update_ancestors_service.rb`:
//! saved with `lockVersion` + 1, a journal note "_Updated automatically by changing values within
//! child work package #N_", never notified); relations are stored in canonical direction, a second
//! relation between the same pair is a 409, and creating or deleting one touches neither end
//! (`app/services/relations/base_service.rb` reschedules only for `follows`). Validation errors are
//! collected and answered together, as `MultipleErrors` when there are several
//! (`lib/api/errors/error_base.rb`, `create_and_merge_errors`), but a conflict wins over all of
//! them. Every write lands in the journal, which tests read to prove properties such as "no work
//! package was claimed twice", and in the notifications with its `notify` flag (`notify.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use super::custom_fields::{CfFormat, CustomFieldDef};
pub use super::notify::{Notification, WriteKind};
use super::workflow_table::Workflows;

/// An error the API would answer with: status, short identifier, message, optional attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub identifier: &'static str,
    pub message: String,
    pub attribute: Option<String>,
    /// The errors a `MultipleErrors` carries (`_embedded.errors`).
    pub errors: Vec<SimError>,
    /// Render `message` as a one-element array, as index endpoints built on
    /// `lib/api/utilities/endpoints/index.rb` do (`InvalidQuery.new(query.errors.full_messages)`).
    pub message_as_list: bool,
}

impl SimError {
    pub fn new(status: u16, identifier: &'static str, message: impl Into<String>) -> SimError {
        SimError {
            status,
            identifier,
            message: message.into(),
            attribute: None,
            errors: Vec::new(),
            message_as_list: false,
        }
    }
    /// `MultipleErrors.create_if_many` (`lib/api/errors/multiple_errors.rb`): the one error, or a
    /// 422 `MultipleErrors` carrying them all; `None` if there are none.
    pub fn create_if_many(mut errors: Vec<SimError>) -> Option<SimError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(SimError {
                errors,
                ..SimError::new(
                    422,
                    "MultipleErrors",
                    "Multiple fields violated their constraints.",
                )
            }),
        }
    }
    /// 422 on `status`: the workflow has no such transition for the user's roles (`workflow.rs`).
    pub fn status_transition() -> SimError {
        SimError::violation(
            "status",
            "Status is invalid because no valid transition exists from old to new status for the current user's roles.",
        )
    }
    pub fn not_found() -> SimError {
        SimError::new(
            404,
            "NotFound",
            "The requested resource could not be found.",
        )
    }
    pub fn conflict() -> SimError {
        SimError::new(
            409,
            "UpdateConflict",
            "Could not update the resource because of conflicting modifications.",
        )
    }
    pub fn forbidden() -> SimError {
        SimError::new(
            403,
            "MissingPermission",
            "You are not authorized to access this resource.",
        )
    }
    pub fn invalid_query(message: impl Into<String>) -> SimError {
        SimError::new(400, "InvalidQuery", message)
    }
    pub fn bad_body(message: impl Into<String>) -> SimError {
        SimError::new(400, "InvalidRequestBody", message)
    }
    pub fn violation(attribute: &str, message: impl Into<String>) -> SimError {
        SimError {
            attribute: Some(attribute.to_string()),
            ..SimError::new(422, "PropertyConstraintViolation", message)
        }
    }
    /// 422 "<Attribute> is invalid.": OpenProject's answer to a link to something it does not have.
    pub fn invalid_link(attribute: &str) -> SimError {
        let mut name = attribute.to_string();
        name[..1].make_ascii_uppercase();
        SimError::violation(attribute, format!("{name} is invalid."))
    }
    pub fn read_only(attribute: &str) -> SimError {
        SimError {
            attribute: Some(attribute.to_string()),
            ..SimError::new(
                422,
                "PropertyIsReadOnly",
                format!("{attribute} was attempted to be written but is not writable."),
            )
        }
    }
}

#[derive(Debug, Clone)]
pub struct StatusDef {
    pub id: u64,
    pub name: String,
    pub is_closed: bool,
    pub is_default: bool,
    pub position: u64,
    pub default_done_ratio: u64,
}

#[derive(Debug, Clone)]
pub struct TypeDef {
    pub id: u64,
    pub name: String,
    pub is_milestone: bool,
    pub is_default: bool,
    pub position: u64,
    pub color: String,
}

#[derive(Debug, Clone)]
pub struct PriorityDef {
    pub id: u64,
    pub name: String,
    pub position: u64,
    pub is_default: bool,
}

#[derive(Debug, Clone)]
pub struct UserDef {
    pub id: u64,
    pub login: String,
    pub name: String,
    pub can_write: bool,
}

#[derive(Debug, Clone)]
pub struct ProjectDef {
    pub id: u64,
    pub identifier: String,
    pub name: String,
    /// The users who are members (and see it); `None`: every user (`visibility.rs`).
    pub members: Option<BTreeSet<u64>>,
}

/// A work package as the board stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Wp {
    pub id: u64,
    pub project: u64,
    pub type_id: u64,
    pub status: u64,
    pub priority: u64,
    pub subject: String,
    pub description: String,
    pub parent: Option<u64>,
    pub assignee: Option<u64>,
    pub author: u64,
    /// Custom field id -> value (string custom fields only).
    pub custom: BTreeMap<u64, String>,
    pub lock_version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rel {
    pub id: u64,
    /// Canonical type (`blocks`, `follows`, `relates`, ...).
    pub type_: String,
    pub from: u64,
    pub to: u64,
    pub description: Option<String>,
    pub lag: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Act {
    pub id: u64,
    pub wp: u64,
    pub user: u64,
    /// `Some` for a comment (`Activity::Comment`), `None` for a change record (`Activity`).
    pub comment: Option<String>,
    pub details: Vec<String>,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    /// Moves when its author edits the comment (`PATCH /api/v3/activities/{id}`).
    pub updated_at: DateTime<Utc>,
    /// A note the board wrote itself (an ancestor re-derived), not a person's or a pod's comment.
    pub automatic: bool,
}

/// One write (or refused write) against the board, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub user: u64,
    pub wp: u64,
    pub action: JournalAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JournalAction {
    Created {
        subject: String,
        type_id: u64,
        parent: Option<u64>,
    },
    /// A successful PATCH: the changed properties (name -> new value) and the new lockVersion.
    Updated {
        changes: BTreeMap<String, Value>,
        lock_version: u64,
    },
    /// A PATCH refused with 409 (stale or missing lockVersion).
    Conflict {
        sent: Option<u64>,
        current: u64,
    },
    /// Ancestor re-derived because descendant `child` changed (or moved away).
    Derived {
        lock_version: u64,
        child: u64,
    },
    Commented {
        text: String,
    },
    /// Its author edited comment `activity` to `text`.
    EditedComment {
        activity: u64,
        text: String,
    },
    Related {
        type_: String,
        other: u64,
    },
}

/// Knobs for OpenProject behaviours that differ between releases or instances.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// A child's creation, move or status change bumps its ancestors' lockVersion (derived values).
    pub bump_ancestors: bool,
    /// `Setting.apiv3_max_page_size` (default 1000; admins and the environment can lower it): any
    /// larger `pageSize` is silently capped (`lib/api/utilities/url_props_parsing_helper.rb`).
    pub max_page_size: u64,
    /// The smallest of `Setting.per_page_options` (default `20, 100`).
    pub default_page_size: u64,
    /// `Setting.cross_project_work_package_relations` (default on): relations between work packages
    /// of different projects are allowed.
    pub cross_project_relations: bool,
    /// Render unset dates and durations as `null`, as the real representer does (`render_nil`),
    /// instead of leaving them out. Off by default: the upstream schema types them as plain strings
    /// and rejects `null` (see the conformance tests).
    pub render_nulls: bool,
    /// Render a work package's `createdAt` and `updatedAt` in whole seconds, as OpenProject does
    /// (`API::V3::Utilities::DateTimeFormatter.format_datetime`: `datetime.to_datetime.utc.iso8601`,
    /// in `lib/api/v3/utilities/date_time_formatter.rb`), while keeping the full precision for
    /// filters and sorting (the database's). Off by default: the board's own tests stage a human's
    /// answer within milliseconds of a Spike, which real humans never do.
    pub whole_seconds: bool,
    /// How far the board's clock runs ahead of the real one: tests of time windows move it
    /// instead of waiting (`BoardHandle::advance_clock`).
    pub clock_offset: chrono::Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            bump_ancestors: true,
            max_page_size: 1000,
            default_page_size: 20,
            cross_project_relations: true,
            render_nulls: false,
            whole_seconds: false,
            clock_offset: chrono::Duration::zero(),
        }
    }
}

/// The whole board.
#[derive(Debug, Clone)]
pub struct Board {
    pub statuses: Vec<StatusDef>,
    pub types: Vec<TypeDef>,
    pub priorities: Vec<PriorityDef>,
    pub users: Vec<UserDef>,
    pub tokens: HashMap<String, u64>,
    pub projects: Vec<ProjectDef>,
    pub custom_fields: Vec<CustomFieldDef>,
    pub wps: BTreeMap<u64, Wp>,
    /// parent -> children, kept in step with `Wp::parent`.
    pub children: BTreeMap<u64, BTreeSet<u64>>,
    pub relations: BTreeMap<u64, Rel>,
    pub activities: Vec<Act>,
    pub journal: Vec<JournalEntry>,
    /// Every write with its `notify` flag, in order.
    pub notifications: Vec<Notification>,
    pub behaviour: Behaviour,
    /// The agent role's workflows (default: every transition allowed).
    pub workflows: Workflows,
    next_wp: u64,
    next_rel: u64,
    next_act: u64,
    created: DateTime<Utc>,
}

/// The id of the agent bot user the default token belongs to.
pub const AGENT_USER: u64 = 2;
/// The id of the admin user (used for seeding and for "human" edits in tests).
pub const ADMIN_USER: u64 = 1;
/// The id of the seeded "Agent pod" custom field.
pub const POD_FIELD: u64 = 1;

impl Board {
    /// A board as a fresh OpenProject (standard seed, API-NOTES section 7) plus what a configured
    /// instance has: a Spike type, the "Agent pod" custom field, an agent bot user and one project.
    /// `phase_type` is "Phase" (older releases) or "Summary task" (newer ones).
    pub fn seeded(phase_type: &str) -> Board {
        let statuses = [
            ("New", false, true, 0),
            ("In specification", false, false, 10),
            ("Specified", false, false, 20),
            ("Confirmed", false, false, 20),
            ("To be scheduled", false, false, 20),
            ("Scheduled", false, false, 20),
            ("In progress", false, false, 40),
            ("Developed", false, false, 70),
            ("In testing", false, false, 80),
            ("Tested", false, false, 90),
            ("Test failed", false, false, 70),
            ("Closed", true, false, 100),
            ("On hold", false, false, 0),
            ("Rejected", true, false, 0),
        ]
        .iter()
        .enumerate()
        .map(|(i, (name, closed, default, ratio))| StatusDef {
            id: i as u64 + 1,
            name: name.to_string(),
            is_closed: *closed,
            is_default: *default,
            position: i as u64 + 1,
            default_done_ratio: *ratio,
        })
        .collect();
        let types = [
            ("Task", false, "#1A67A3"),
            ("Milestone", true, "#35C53F"),
            (phase_type, false, "#FF922B"),
            ("Feature", false, "#5C3DB3"),
            ("Epic", false, "#862E9C"),
            ("User story", false, "#0C8599"),
            ("Bug", false, "#C92A2A"),
            ("Spike", false, "#E67700"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (name, milestone, color))| TypeDef {
            id: i as u64 + 1,
            name: name.to_string(),
            is_milestone: *milestone,
            is_default: i == 0,
            position: i as u64 + 1,
            color: color.to_string(),
        })
        .collect();
        // OpenProject's enumerations share one id space; priorities are not 1..4 on a real instance.
        let priorities = [
            ("Low", false),
            ("Normal", true),
            ("High", false),
            ("Immediate", false),
        ]
        .iter()
        .enumerate()
        .map(|(i, (name, default))| PriorityDef {
            id: i as u64 + 7,
            name: name.to_string(),
            position: i as u64 + 1,
            is_default: *default,
        })
        .collect();
        let users = vec![
            UserDef {
                id: ADMIN_USER,
                login: "admin".into(),
                name: "OpenProject Admin".into(),
                can_write: true,
            },
            UserDef {
                id: AGENT_USER,
                login: "journeyman-bot".into(),
                name: "Journeyman Bot".into(),
                can_write: true,
            },
        ];
        let created = Utc::now();
        Board {
            statuses,
            types,
            priorities,
            users,
            tokens: HashMap::new(),
            projects: vec![ProjectDef {
                id: 1,
                identifier: "demo".into(),
                name: "Demo project".into(),
                members: None,
            }],
            custom_fields: vec![CustomFieldDef::new(
                POD_FIELD,
                "Agent pod",
                CfFormat::String,
            )],
            wps: BTreeMap::new(),
            children: BTreeMap::new(),
            relations: BTreeMap::new(),
            activities: Vec::new(),
            journal: Vec::new(),
            notifications: Vec::new(),
            behaviour: Behaviour::default(),
            workflows: Workflows::default(),
            next_wp: 1,
            next_rel: 1,
            next_act: 1,
            created,
        }
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created
    }

    pub fn status(&self, id: u64) -> Option<&StatusDef> {
        self.statuses.iter().find(|s| s.id == id)
    }
    pub fn status_named(&self, name: &str) -> Option<&StatusDef> {
        self.statuses.iter().find(|s| s.name == name)
    }
    pub fn type_(&self, id: u64) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.id == id)
    }
    pub fn type_named(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name == name)
    }
    pub fn priority(&self, id: u64) -> Option<&PriorityDef> {
        self.priorities.iter().find(|p| p.id == id)
    }
    pub fn priority_named(&self, name: &str) -> Option<&PriorityDef> {
        self.priorities.iter().find(|p| p.name == name)
    }
    pub fn user(&self, id: u64) -> Option<&UserDef> {
        self.users.iter().find(|u| u.id == id)
    }
    pub fn project(&self, id: u64) -> Option<&ProjectDef> {
        self.projects.iter().find(|p| p.id == id)
    }
    /// By numeric id or identifier, as OpenProject resolves `/api/v3/projects/{id}`.
    pub fn project_by_key(&self, key: &str) -> Option<&ProjectDef> {
        match key.parse::<u64>() {
            Ok(id) => self.project(id),
            Err(_) => self.projects.iter().find(|p| p.identifier == key),
        }
    }
    pub fn custom_field_named(&self, name: &str) -> Option<&CustomFieldDef> {
        self.custom_fields.iter().find(|c| c.name == name)
    }

    /// The board's clock: every write's `updatedAt`, journal entry and activity is stamped with it.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.behaviour.clock_offset
    }

    pub fn is_closed(&self, wp: &Wp) -> bool {
        self.status(wp.status).is_some_and(|s| s.is_closed)
    }

    /// Ancestors, root first (as `_links.ancestors`).
    pub fn ancestors(&self, id: u64) -> Vec<u64> {
        let mut chain = Vec::new();
        let mut cur = self.wps.get(&id).and_then(|w| w.parent);
        while let Some(p) = cur {
            if chain.contains(&p) {
                break; // defensive: the board refuses cycles, but never loop forever
            }
            chain.push(p);
            cur = self.wps.get(&p).and_then(|w| w.parent);
        }
        chain.reverse();
        chain
    }

    pub fn children_of(&self, id: u64) -> impl Iterator<Item = u64> + '_ {
        self.children.get(&id).into_iter().flatten().copied()
    }

    pub(super) fn journal(&mut self, user: u64, wp: u64, action: JournalAction) {
        let seq = self.journal.len() as u64 + 1;
        self.journal.push(JournalEntry {
            seq,
            at: self.now(),
            user,
            wp,
            action,
        });
    }

    /// Journals a successful PATCH (or an edit like one): what changed, and the new lockVersion.
    fn journal_updated(
        &mut self,
        user: u64,
        wp: u64,
        changes: BTreeMap<String, Value>,
        lock_version: u64,
    ) {
        let action = JournalAction::Updated {
            changes,
            lock_version,
        };
        self.journal(user, wp, action);
    }

    pub(super) fn record_activity(
        &mut self,
        wp: u64,
        user: u64,
        comment: Option<String>,
        details: Vec<String>,
    ) -> u64 {
        let id = self.next_act;
        self.next_act += 1;
        let version = self.activities.iter().filter(|a| a.wp == wp).count() as u64 + 1;
        self.activities.push(Act {
            id,
            wp,
            user,
            comment,
            details,
            version,
            created_at: self.now(),
            updated_at: self.now(),
            automatic: false,
        });
        id
    }

    /// Records a write's `notify` flag (`notify.rs`).
    pub(super) fn notification(&mut self, wp: u64, user: u64, kind: WriteKind, notify: bool) {
        let seq = self.notifications.len() as u64 + 1;
        self.notifications.push(Notification {
            seq,
            wp,
            user,
            kind,
            notify,
        });
    }

    fn can_write(&self, user: u64) -> Result<(), SimError> {
        if self.user(user).is_some_and(|u| u.can_write) {
            Ok(())
        } else {
            Err(SimError::forbidden())
        }
    }

    /// Re-derives the ancestors of `id` after `user` changed its status or parent, and those of its
    /// former parent `former` (which lost a child): each is saved with lockVersion + 1 and a new
    /// `updatedAt`, journaled as derived, with the journal note OpenProject writes
    /// (`work_package.updated_automatically_by_child_changes`), and never notified.
    pub(super) fn bump_ancestors(&mut self, id: u64, user: u64, former: Option<u64>) {
        if !self.behaviour.bump_ancestors {
            return;
        }
        let mut chain = self.ancestors(id);
        if let Some(f) = former {
            for a in self.ancestors(f).into_iter().chain([f]) {
                if !chain.contains(&a) {
                    chain.push(a);
                }
            }
        }
        let now = self.now();
        let note =
            format!("_Updated automatically by changing values within child work package #{id}_");
        for a in chain {
            let Some(w) = self.wps.get_mut(&a) else {
                continue;
            };
            w.lock_version += 1;
            w.updated_at = now;
            let lv = w.lock_version;
            let act = self.record_activity(a, user, Some(note.clone()), vec![]);
            if let Some(last) = self.activities.iter_mut().rfind(|x| x.id == act) {
                last.automatic = true;
            }
            self.journal(
                ADMIN_USER,
                a,
                JournalAction::Derived {
                    lock_version: lv,
                    child: id,
                },
            );
            self.notification(a, user, WriteKind::Derived, false);
        }
    }

    /// Checks a work package to create: its type, status and priority (given or the defaults), or
    /// every reason it is refused (a 404 alone if the project is not there for `user`).
    pub fn validate_new(&self, user: u64, new: &NewWp) -> Result<(u64, u64, u64), Vec<SimError>> {
        if !self.project_visible(user, new.project) {
            return Err(vec![SimError::new(
                404,
                "NotFound",
                "The specified project does not exist.",
            )]);
        }
        let mut errors = Vec::new();
        if new.subject.trim().is_empty() {
            errors.push(SimError::violation("subject", "Subject can't be blank."));
        }
        if new.subject.chars().count() > 255 {
            errors.push(SimError::violation(
                "subject",
                "Subject is too long (maximum is 255 characters).",
            ));
        }
        let type_id = given_or_default(&self.types, |t| (t.id, t.is_default), new.type_id, 1);
        let status = given_or_default(&self.statuses, |s| (s.id, s.is_default), new.status, 1);
        let priority =
            given_or_default(&self.priorities, |p| (p.id, p.is_default), new.priority, 8);
        for (attribute, ok) in [
            ("type", type_id.is_some()),
            ("status", status.is_some()),
            ("priority", priority.is_some()),
            (
                "parent",
                new.parent.is_none_or(|p| self.wp_visible(user, p)),
            ),
            (
                "assignee",
                new.assignee.is_none_or(|a| self.user(a).is_some()),
            ),
        ] {
            if !ok {
                errors.push(SimError::invalid_link(attribute));
            }
        }
        match (type_id, status, priority) {
            (Some(t), Some(s), Some(p)) if errors.is_empty() => Ok((t, s, p)),
            _ => Err(errors),
        }
    }

    /// Creates a work package. Links not given take OpenProject's defaults. Notifies.
    pub fn create(&mut self, user: u64, new: NewWp) -> Result<u64, SimError> {
        self.create_notifying(user, new, true)
    }

    /// [`Board::create`] with the request's `notify` flag.
    pub fn create_notifying(
        &mut self,
        user: u64,
        new: NewWp,
        notify: bool,
    ) -> Result<u64, SimError> {
        self.can_write(user)?;
        let (type_id, status, priority) = self.validate_new(user, &new).map_err(|errors| {
            SimError::create_if_many(errors).unwrap_or_else(SimError::not_found)
        })?;
        let id = self.next_wp;
        self.next_wp += 1;
        let now = self.now();
        let available: Vec<u64> = self
            .custom_fields
            .iter()
            .filter(|c| c.available(new.project, type_id))
            .map(|c| c.id)
            .collect();
        let wp = Wp {
            id,
            project: new.project,
            type_id,
            status,
            priority,
            subject: new.subject.clone(),
            description: new.description,
            parent: new.parent,
            assignee: new.assignee,
            author: user,
            custom: new
                .custom
                .into_iter()
                .filter(|(cf, v)| !v.is_empty() && available.contains(cf))
                .collect(),
            lock_version: 0,
            created_at: now,
            updated_at: now,
        };
        self.wps.insert(id, wp);
        if let Some(p) = new.parent {
            self.children.entry(p).or_default().insert(id);
        }
        self.record_activity(id, user, None, vec![]);
        self.journal(
            user,
            id,
            JournalAction::Created {
                subject: new.subject,
                type_id,
                parent: new.parent,
            },
        );
        self.notification(id, user, WriteKind::Create, notify);
        if new.parent.is_some() {
            self.bump_ancestors(id, user, None);
        }
        Ok(id)
    }

    /// Every reason OpenProject's contract refuses `change` to work package `id` by `user`, in the
    /// order it validates them; empty if the write is valid. Links to something the board does not
    /// have (or `user` cannot see) are "<Attribute> is invalid."; a status outside the workflow is
    /// the workflow's 422 (`workflow.rs`).
    pub fn validate_change(&self, user: u64, id: u64, change: &WpChange) -> Vec<SimError> {
        let mut errors = Vec::new();
        let Some(before) = self.wps.get(&id) else {
            return vec![SimError::not_found()];
        };
        if let Some(subject) = &change.subject {
            if subject.trim().is_empty() {
                errors.push(SimError::violation("subject", "Subject can't be blank."));
            } else if subject.chars().count() > 255 {
                errors.push(SimError::violation(
                    "subject",
                    "Subject is too long (maximum is 255 characters).",
                ));
            }
        }
        let parent_ok =
            |p: u64| p != id && self.wp_visible(user, p) && !self.ancestors(p).contains(&id);
        for (attribute, ok) in [
            (
                "type",
                change.type_id.is_none_or(|t| self.type_(t).is_some()),
            ),
            (
                "status",
                change.status.is_none_or(|s| self.status(s).is_some()),
            ),
            (
                "priority",
                change.priority.is_none_or(|p| self.priority(p).is_some()),
            ),
            ("parent", change.parent.flatten().is_none_or(parent_ok)),
            // Only members of the project can be assigned (`assignable_assignees`).
            (
                "assignee",
                change.assignee.flatten().is_none_or(|a| {
                    self.user(a).is_some() && self.project_visible(a, before.project)
                }),
            ),
        ] {
            if !ok {
                errors.push(SimError::invalid_link(attribute));
            }
        }
        if let Some(to) = change.status {
            let type_changed = change.type_id.is_some_and(|t| t != before.type_id);
            if let Some(e) = self.transition_error(user, before, to, type_changed) {
                errors.push(e);
            }
        }
        errors
    }

    /// Applies a PATCH. `lock_version` is what the client sent (`None` if missing). Notifies.
    pub fn update(
        &mut self,
        user: u64,
        id: u64,
        lock_version: Option<u64>,
        change: WpChange,
    ) -> Result<(), SimError> {
        self.update_notifying(user, id, lock_version, change, true)
    }

    /// [`Board::update`] with the request's `notify` flag.
    pub fn update_notifying(
        &mut self,
        user: u64,
        id: u64,
        lock_version: Option<u64>,
        mut change: WpChange,
        notify: bool,
    ) -> Result<(), SimError> {
        let current = self.visible_wp(user, id)?.lock_version;
        self.can_write(user)?;
        if lock_version != Some(current) {
            self.journal(
                user,
                id,
                JournalAction::Conflict {
                    sent: lock_version,
                    current,
                },
            );
            return Err(SimError::conflict());
        }
        // Validate everything before touching anything: a refused write changes nothing.
        if let Some(e) = SimError::create_if_many(self.validate_change(user, id, &change)) {
            return Err(e);
        }
        let before = self.wps[&id].clone();
        // A field the work package's project and type do not have is not a property of its
        // representer: OpenProject ignores it (`custom_fields.rs`).
        let type_after = change.type_id.unwrap_or(before.type_id);
        change.custom.retain(|cf, _| {
            self.custom_fields
                .iter()
                .any(|c| c.id == *cf && c.available(before.project, type_after))
        });
        let mut after = before.clone();
        let mut changes = BTreeMap::new();
        let mut details = Vec::new();
        if let Some(s) = change.status
            && s != before.status
        {
            after.status = s;
            details.push(format!(
                "Status changed from {} to {}",
                self.status(before.status)
                    .map(|x| x.name.as_str())
                    .unwrap_or("?"),
                self.status(s).map(|x| x.name.as_str()).unwrap_or("?")
            ));
            changes.insert("status".into(), Value::from(s));
        }
        if let Some(a) = change.assignee
            && a != before.assignee
        {
            after.assignee = a;
            details.push(format!(
                "Assignee set to {}",
                a.and_then(|a| self.user(a))
                    .map(|u| u.name.as_str())
                    .unwrap_or("nobody")
            ));
            changes.insert("assignee".into(), a.map(Value::from).unwrap_or(Value::Null));
        }
        set(
            &mut after.priority,
            change.priority,
            "priority",
            &mut changes,
        );
        set(&mut after.type_id, change.type_id, "type", &mut changes);
        set(&mut after.parent, change.parent, "parent", &mut changes);
        set(&mut after.subject, change.subject, "subject", &mut changes);
        if let Some(d) = change.description
            && d != before.description
        {
            after.description = d;
            changes.insert("description".into(), Value::from("(changed)"));
        }
        for (cf, value) in change.custom {
            let old = before.custom.get(&cf).cloned();
            let new = value.filter(|v| !v.is_empty());
            if old != new {
                match &new {
                    Some(v) => after.custom.insert(cf, v.clone()),
                    None => after.custom.remove(&cf),
                };
                let name = self
                    .custom_fields
                    .iter()
                    .find(|c| c.id == cf)
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                details.push(format!(
                    "{name} set to {}",
                    new.as_deref().unwrap_or("(empty)")
                ));
                changes.insert(
                    format!("customField{cf}"),
                    new.map(Value::from).unwrap_or(Value::Null),
                );
            }
        }
        if changes.is_empty() {
            return Ok(()); // no UPDATE, no new lockVersion (API-NOTES section 3)
        }
        after.lock_version += 1;
        after.updated_at = self.now();
        let lv = after.lock_version;
        if before.parent != after.parent {
            if let Some(old) = before.parent
                && let Some(set) = self.children.get_mut(&old)
            {
                set.remove(&id);
            }
            if let Some(new) = after.parent {
                self.children.entry(new).or_default().insert(id);
            }
        }
        let rederive = before.status != after.status || before.parent != after.parent;
        let former = before.parent.filter(|p| Some(*p) != after.parent);
        self.wps.insert(id, after);
        self.record_activity(id, user, None, details);
        self.journal_updated(user, id, changes, lv);
        self.notification(id, user, WriteKind::Update, notify);
        if rederive {
            self.bump_ancestors(id, user, former);
        }
        Ok(())
    }

    /// Activity `id` as `user` may see it: 404 unless its work package is visible.
    pub fn visible_activity(&self, user: u64, id: u64) -> Result<&Act, SimError> {
        let a = self
            .activities
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(SimError::not_found)?;
        self.visible_wp(user, a.wp)?;
        Ok(a)
    }

    /// `PATCH /api/v3/activities/{id}`: the author edits its comment (OpenProject's
    /// `Journals::UpdateContract`: `edit_own_work_package_notes` for one's own notes; the admin may
    /// edit any). The work package is not touched: neither its `lockVersion` nor its `updatedAt`
    /// moves, and nobody is notified (`Journals::UpdateService` sends no mail).
    pub fn edit_comment(&mut self, user: u64, id: u64, text: &str) -> Result<(), SimError> {
        let (author, wp) = {
            let a = self.visible_activity(user, id)?;
            (a.user, a.wp)
        };
        if user != author && user != ADMIN_USER {
            return Err(SimError::new(
                403,
                "MissingPermission",
                "You are not allowed to edit the comment of this journal entry.",
            ));
        }
        if text.trim().is_empty() {
            return Err(SimError::violation("comment", "Comment can't be blank."));
        }
        if let Some(a) = self.activities.iter_mut().find(|a| a.id == id) {
            a.comment = Some(text.to_string());
            a.updated_at = Utc::now();
        }
        self.journal(
            user,
            wp,
            JournalAction::EditedComment {
                activity: id,
                text: text.to_string(),
            },
        );
        Ok(())
    }

    /// A human's edit that changes nothing the worker reads but moves the lockVersion (as editing
    /// any attribute would). Used to stage concurrent writers in tests.
    pub fn touch(&mut self, user: u64, id: u64) {
        let now = self.now();
        if let Some(w) = self.wps.get_mut(&id) {
            w.lock_version += 1;
            w.updated_at = now;
            let lv = w.lock_version;
            let mut changes = BTreeMap::new();
            changes.insert("estimatedTime".to_string(), Value::from("PT1H"));
            self.journal_updated(user, id, changes, lv);
            self.notification(id, user, WriteKind::Update, true);
        }
    }

    /// Adds a comment: touches `updatedAt`, never `lockVersion` (API-NOTES section 3). Notifies.
    pub fn comment(&mut self, user: u64, id: u64, text: &str) -> Result<u64, SimError> {
        self.comment_notifying(user, id, text, true)
    }

    /// [`Board::comment`] with the request's `notify` flag.
    pub fn comment_notifying(
        &mut self,
        user: u64,
        id: u64,
        text: &str,
        notify: bool,
    ) -> Result<u64, SimError> {
        self.visible_wp(user, id)?;
        if !self.user(user).is_some_and(|u| u.can_write) {
            return Err(SimError::new(
                403,
                "MissingPermission",
                "You are not allowed to create a comment here.",
            ));
        }
        if text.trim().is_empty() {
            return Err(SimError::violation("comment", "Comment can't be blank."));
        }
        let act = self.record_activity(id, user, Some(text.to_string()), vec![]);
        let now = self.now();
        if let Some(w) = self.wps.get_mut(&id) {
            w.updated_at = now;
        }
        self.journal(
            user,
            id,
            JournalAction::Commented {
                text: text.to_string(),
            },
        );
        self.notification(id, user, WriteKind::Comment, notify);
        Ok(act)
    }

    /// Creates a relation, stored canonically (API-NOTES section 4). Touches neither end.
    pub fn relate(
        &mut self,
        user: u64,
        from: u64,
        to: u64,
        type_: &str,
        description: Option<String>,
        lag: Option<i64>,
    ) -> Result<u64, SimError> {
        self.can_write(user)?;
        let (canonical, from, to) = canonical_relation(type_, from, to).ok_or_else(|| {
            SimError::violation(
                "type",
                format!("Type is not set to one of the allowed values ({type_})."),
            )
        })?;
        if !self.wp_visible(user, from) || !self.wp_visible(user, to) {
            return Err(SimError::violation(
                "to",
                "Related work package is invalid.",
            ));
        }
        if from == to {
            return Err(SimError::violation(
                "to",
                "Related work package cannot be the work package itself.",
            ));
        }
        if !self.behaviour.cross_project_relations
            && self.wps[&from].project != self.wps[&to].project
        {
            return Err(SimError::violation(
                "to",
                "Related work package doesn't belong to the same project.",
            ));
        }
        if self.ancestors(from).contains(&to) || self.ancestors(to).contains(&from) {
            return Err(SimError::violation(
                "to",
                "Related work package cannot be an ancestor or descendant.",
            ));
        }
        if lag.is_some_and(|l| l < 0) {
            return Err(SimError::violation(
                "lag",
                "Lag must be a number greater than or equal to 0",
            ));
        }
        if self
            .relations
            .values()
            .any(|r| (r.from == from && r.to == to) || (r.from == to && r.to == from))
        {
            return Err(SimError::new(
                409,
                "UpdateConflict",
                "A relation between these work packages already exists.",
            ));
        }
        let id = self.next_rel;
        self.next_rel += 1;
        self.relations.insert(
            id,
            Rel {
                id,
                type_: canonical.to_string(),
                from,
                to,
                description,
                lag,
            },
        );
        self.journal(
            user,
            from,
            JournalAction::Related {
                type_: canonical.to_string(),
                other: to,
            },
        );
        Ok(id)
    }

    /// Deletes relation `id` (`DELETE /api/v3/relations/{id}`): 404 unless `user` sees both ends.
    /// Touches neither end (`app/services/relations/delete_service.rb` reschedules only `follows`).
    pub fn unrelate(&mut self, user: u64, id: u64) -> Result<Rel, SimError> {
        let visible = self
            .relations
            .get(&id)
            .is_some_and(|r| self.relation_visible(user, r));
        if !visible {
            return Err(SimError::not_found());
        }
        self.can_write(user)?;
        self.relations.remove(&id).ok_or_else(SimError::not_found)
    }
}

/// Maps a relation type to its canonical stored form and direction.
pub fn canonical_relation(type_: &str, from: u64, to: u64) -> Option<(&'static str, u64, u64)> {
    Some(match type_ {
        "relates" => ("relates", from, to),
        "duplicates" => ("duplicates", from, to),
        "duplicated" => ("duplicates", to, from),
        "blocks" => ("blocks", from, to),
        "blocked" => ("blocks", to, from),
        "follows" => ("follows", from, to),
        "precedes" => ("follows", to, from),
        "includes" => ("includes", from, to),
        "partof" => ("includes", to, from),
        "requires" => ("requires", from, to),
        "required" => ("requires", to, from),
        _ => return None,
    })
}

/// The reverse of a canonical type and the localized names (English).
pub fn relation_names(type_: &str) -> (&'static str, &'static str) {
    match type_ {
        "relates" => ("relates", "relates to"),
        "duplicates" => ("duplicated", "duplicates"),
        "blocks" => ("blocked", "blocks"),
        "follows" => ("precedes", "follows"),
        "includes" => ("partof", "includes"),
        "requires" => ("required", "requires"),
        _ => ("relates", "relates to"),
    }
}

/// A work package to create (ids already resolved).
#[derive(Debug, Clone, Default)]
pub struct NewWp {
    pub project: u64,
    pub type_id: Option<u64>,
    pub status: Option<u64>,
    pub priority: Option<u64>,
    pub subject: String,
    pub description: String,
    pub parent: Option<u64>,
    pub assignee: Option<u64>,
    pub custom: BTreeMap<u64, String>,
}

/// The writable part of a PATCH (ids already resolved). `Some(None)` clears a link.
/// The id a new work package links to: `given` if one of `defs` has it (`None` if none has), else
/// the one `defs` marks as default, else `fallback`. `key` is a def's `(id, is_default)`.
fn given_or_default<T>(
    defs: &[T],
    key: impl Fn(&T) -> (u64, bool),
    given: Option<u64>,
    fallback: u64,
) -> Option<u64> {
    let mut keys = defs.iter().map(key);
    match given {
        Some(id) => keys.any(|(i, _)| i == id).then_some(id),
        None => Some(
            keys.find(|&(_, default)| default)
                .map_or(fallback, |(i, _)| i),
        ),
    }
}

/// A PATCH's change of one property: `field = new` when `new` is given and differs, journaled in
/// `changes` under `name`.
fn set<T: PartialEq + Clone + Into<Value>>(
    field: &mut T,
    new: Option<T>,
    name: &str,
    changes: &mut BTreeMap<String, Value>,
) {
    if let Some(v) = new.filter(|v| v != field) {
        *field = v.clone();
        changes.insert(name.into(), v.into());
    }
}

#[derive(Debug, Clone, Default)]
pub struct WpChange {
    pub status: Option<u64>,
    pub assignee: Option<Option<u64>>,
    pub priority: Option<u64>,
    pub type_id: Option<u64>,
    pub parent: Option<Option<u64>>,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub custom: BTreeMap<u64, Option<String>>,
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The seeded board with `n` work packages `wp 0`, `wp 1`, ... in project 1 (ids 1..=n).
    pub(in crate::harness::sim) fn board_with(n: usize) -> Board {
        let mut b = Board::seeded("Phase");
        for i in 0..n {
            b.create(
                ADMIN_USER,
                NewWp {
                    project: 1,
                    subject: format!("wp {i}"),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        b
    }

    #[test]
    fn lock_version_moves_on_change_only_and_conflicts_are_journaled() {
        let mut b = board_with(1);
        let change = WpChange {
            status: Some(7),
            ..Default::default()
        };
        assert_eq!(
            b.update(AGENT_USER, 1, None, change.clone()),
            Err(SimError::conflict()),
            "missing lockVersion is a conflict"
        );
        b.update(AGENT_USER, 1, Some(0), change.clone()).unwrap();
        assert_eq!(b.wps[&1].lock_version, 1);
        assert_eq!(
            b.update(AGENT_USER, 1, Some(0), change.clone()),
            Err(SimError::conflict()),
            "stale lockVersion"
        );
        b.update(AGENT_USER, 1, Some(1), change).unwrap();
        assert_eq!(
            b.wps[&1].lock_version, 1,
            "a PATCH that changes nothing keeps the lockVersion"
        );
        let conflicts = b
            .journal
            .iter()
            .filter(|j| matches!(j.action, JournalAction::Conflict { .. }))
            .count();
        assert_eq!(conflicts, 2);
    }

    #[test]
    fn comments_touch_updated_at_but_not_lock_version() {
        let mut b = board_with(1);
        let before = b.wps[&1].clone();
        b.comment(AGENT_USER, 1, "hello").unwrap();
        assert_eq!(b.wps[&1].lock_version, before.lock_version);
        assert!(b.wps[&1].updated_at >= before.updated_at);
    }

    #[test]
    fn child_changes_bump_ancestors() {
        let mut b = board_with(1);
        let child = b
            .create(
                ADMIN_USER,
                NewWp {
                    project: 1,
                    subject: "child".into(),
                    parent: Some(1),
                    ..Default::default()
                },
            )
            .unwrap();
        let grandchild = b
            .create(
                ADMIN_USER,
                NewWp {
                    project: 1,
                    subject: "gc".into(),
                    parent: Some(child),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(b.ancestors(grandchild), vec![1, child]);
        let lv_root = b.wps[&1].lock_version;
        b.update(
            AGENT_USER,
            grandchild,
            Some(0),
            WpChange {
                status: Some(7),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(b.wps[&1].lock_version, lv_root + 1);
    }

    #[test]
    fn relations_are_canonical_and_unique_per_pair() {
        let mut b = board_with(2);
        b.relate(ADMIN_USER, 2, 1, "blocked", None, None).unwrap();
        let r = b.relations.values().next().unwrap();
        assert_eq!((r.type_.as_str(), r.from, r.to), ("blocks", 1, 2));
        assert_eq!(
            b.relate(ADMIN_USER, 1, 2, "relates", None, None)
                .unwrap_err()
                .status,
            409
        );
        assert_eq!(
            b.relate(ADMIN_USER, 1, 1, "blocks", None, None)
                .unwrap_err()
                .status,
            422
        );
    }

    #[test]
    fn invalid_links_change_nothing() {
        let mut b = board_with(1);
        let e = b
            .update(
                AGENT_USER,
                1,
                Some(0),
                WpChange {
                    status: Some(999),
                    subject: Some("x".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!((e.status, e.attribute.as_deref()), (422, Some("status")));
        assert_eq!(b.wps[&1].subject, "wp 0");
        assert_eq!(b.wps[&1].lock_version, 0);
    }
}
