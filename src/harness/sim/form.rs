//! The work package forms: `POST /api/v3/work_packages/{id}/form` (edit) and
//! `POST /api/v3/projects/{id}/work_packages/form` / `POST /api/v3/work_packages/form` (create).
//!
//! Why they exist: a form is how a client learns, without writing, which statuses it may set from
//! the current one (`_embedded.schema.status._links.allowedValues`) and what a write would be refused
//! for. Read from OpenProject's source:
//!
//! - `lib/api/v3/work_packages/update_form_api.rb` and the `Form` endpoint
//!   (`lib/api/v3/utilities/endpoints/form.rb`): the body is parsed and validated like the write
//!   itself, nothing is saved; if every error is a 422 the answer is 200 with the errors in
//!   `_embedded.validationErrors`, otherwise the error is raised: a stale or missing `lockVersion`
//!   is a 409 here too.
//! - `lib/api/v3/work_packages/form_representer.rb`: `_type: "Form"`, `_embedded.payload`,
//!   `_embedded.schema` (the specific schema, with allowed values), `_embedded.validationErrors` as
//!   an OBJECT keyed by property (several errors on one property become a `MultipleErrors`). The
//!   spec's `work_package_form_model.yml` types `validationErrors` as an array; the source wins.
//! - `lib/api/v3/work_packages/update_form_representer.rb`: links `self` and `validate` (the form,
//!   POST), `previewMarkup`, and `commit` (the PATCH) only when there are no errors.
//! - The schema's statuses are the base contract's `assignable_statuses` (`workflow.rs`): from the
//!   status the work package has before the write, for the type it would have after it.

use serde_json::{Map, Value, json};

use super::render::{self, formattable};
use super::state::{Board, NewWp, SimError, Wp, WpChange};

/// The edit form for work package `id`, as `user` would have `change` applied.
pub fn update_form(
    board: &Board,
    user: u64,
    id: u64,
    lock_version: Option<u64>,
    change: &WpChange,
) -> Result<Value, SimError> {
    let before = board.visible_wp(user, id)?;
    if lock_version != Some(before.lock_version) {
        return Err(SimError::conflict());
    }
    let errors = board.validate_change(user, id, change);
    if let Some(e) = errors.iter().find(|e| e.status != 422) {
        return Err(e.clone());
    }
    let after = projected(before, change);
    let allowed = board.assignable_statuses(user, before, after.type_id, before.status);
    let me = format!("/api/v3/work_packages/{id}");
    let mut links = Map::new();
    links.insert(
        "self".into(),
        json!({ "href": format!("{me}/form"), "method": "post" }),
    );
    links.insert(
        "validate".into(),
        json!({ "href": format!("{me}/form"), "method": "post" }),
    );
    links.insert(
        "previewMarkup".into(),
        json!({ "href": format!("/api/v3/render/markdown?context={me}"), "method": "post" }),
    );
    if errors.is_empty() {
        links.insert("commit".into(), json!({ "href": me, "method": "patch" }));
    }
    Ok(form(
        board,
        &after,
        Some(after.lock_version),
        &allowed,
        errors,
        links,
    ))
}

/// The create form for `new` in its project, as `user` would send it; `scoped` when it was posted
/// to the project's form (`/api/v3/projects/{id}/work_packages/form`).
pub fn create_form(board: &Board, user: u64, new: &NewWp, scoped: bool) -> Result<Value, SimError> {
    let (errors, candidate) = match board.validate_new(user, new) {
        Ok((type_id, status, priority)) => {
            (vec![], candidate(new, type_id, status, priority, user))
        }
        Err(errors) => {
            if let Some(e) = errors.iter().find(|e| e.status != 422) {
                return Err(e.clone());
            }
            let type_id = new
                .type_id
                .filter(|t| board.type_(*t).is_some())
                .unwrap_or(1);
            let status = board
                .statuses
                .iter()
                .find(|s| s.is_default)
                .map_or(1, |s| s.id);
            let priority = board
                .priorities
                .iter()
                .find(|p| p.is_default)
                .map_or(8, |p| p.id);
            (errors, candidate(new, type_id, status, priority, user))
        }
    };
    let allowed = board.assignable_statuses(user, &candidate, candidate.type_id, candidate.status);
    let (form_href, commit_href) = if scoped {
        (
            format!("/api/v3/projects/{}/work_packages/form", new.project),
            format!("/api/v3/projects/{}/work_packages", new.project),
        )
    } else {
        (
            "/api/v3/work_packages/form".to_string(),
            "/api/v3/work_packages".to_string(),
        )
    };
    let mut links = Map::new();
    links.insert(
        "self".into(),
        json!({ "href": form_href, "method": "post" }),
    );
    links.insert(
        "validate".into(),
        json!({ "href": form_href, "method": "post" }),
    );
    links.insert(
        "previewMarkup".into(),
        json!({ "href": "/api/v3/render/markdown", "method": "post" }),
    );
    if errors.is_empty() {
        links.insert(
            "commit".into(),
            json!({ "href": commit_href, "method": "post" }),
        );
    }
    Ok(form(board, &candidate, None, &allowed, errors, links))
}

/// A not yet created work package, for the create form.
fn candidate(new: &NewWp, type_id: u64, status: u64, priority: u64, user: u64) -> Wp {
    let now = chrono::Utc::now();
    Wp {
        id: 0,
        project: new.project,
        type_id,
        status,
        priority,
        subject: new.subject.clone(),
        description: new.description.clone(),
        parent: new.parent,
        assignee: new.assignee,
        author: user,
        custom: new.custom.clone(),
        lock_version: 0,
        created_at: now,
        updated_at: now,
    }
}

/// `before` with `change` applied (links unchecked: the errors say what is wrong).
fn projected(before: &Wp, change: &WpChange) -> Wp {
    let mut w = before.clone();
    if let Some(s) = change.status {
        w.status = s;
    }
    if let Some(a) = change.assignee {
        w.assignee = a;
    }
    if let Some(p) = change.priority {
        w.priority = p;
    }
    if let Some(t) = change.type_id {
        w.type_id = t;
    }
    if let Some(p) = change.parent {
        w.parent = p;
    }
    if let Some(s) = &change.subject {
        w.subject = s.clone();
    }
    if let Some(d) = &change.description {
        w.description = d.clone();
    }
    for (cf, v) in &change.custom {
        match v {
            Some(v) => w.custom.insert(*cf, v.clone()),
            None => w.custom.remove(cf),
        };
    }
    w
}

fn form(
    board: &Board,
    wp: &Wp,
    lock_version: Option<u64>,
    allowed: &[u64],
    errors: Vec<SimError>,
    links: Map<String, Value>,
) -> Value {
    json!({
        "_type": "Form",
        "_embedded": {
            "payload": payload(board, wp, lock_version),
            "schema": render::schema(board, wp.project, wp.type_id, Some(allowed)),
            "validationErrors": validation_errors(errors),
        },
        "_links": links,
    })
}

/// `validation_errors` of the form representer: one error per property, `MultipleErrors` when a
/// property has several.
fn validation_errors(errors: Vec<SimError>) -> Value {
    let mut by_property: Map<String, Value> = Map::new();
    let mut grouped: Vec<(String, Vec<SimError>)> = Vec::new();
    for e in errors {
        let key = e.attribute.clone().unwrap_or_else(|| "base".into());
        match grouped.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(e),
            None => grouped.push((key, vec![e])),
        }
    }
    for (key, list) in grouped {
        if let Some(e) = SimError::create_if_many(list) {
            by_property.insert(key, render::error(&e));
        }
    }
    Value::Object(by_property)
}

/// The writable part of a work package (`work_package_payload_representer.rb`).
fn payload(board: &Board, wp: &Wp, lock_version: Option<u64>) -> Value {
    let link = |collection: &str, id: Option<u64>, title: Option<String>| match id {
        Some(id) => json!({ "href": format!("/api/v3/{collection}/{id}"), "title": title }),
        None => json!({ "href": null }),
    };
    let mut body = Map::new();
    if let Some(lv) = lock_version {
        body.insert("lockVersion".into(), json!(lv));
    }
    body.insert("subject".into(), json!(wp.subject));
    body.insert("description".into(), formattable(&wp.description));
    body.insert("scheduleManually".into(), json!(false));
    for key in ["startDate", "dueDate", "estimatedTime", "duration"] {
        body.insert(key.into(), Value::Null);
    }
    body.insert("ignoreNonWorkingDays".into(), json!(false));
    for cf in board
        .custom_fields
        .iter()
        .filter(|c| c.available(wp.project, wp.type_id))
    {
        body.insert(
            format!("customField{}", cf.id),
            cf.render(wp.custom.get(&cf.id).map(String::as_str)),
        );
    }
    body.insert(
        "_links".into(),
        json!({
            "category": { "href": null },
            "type": link("types", Some(wp.type_id), board.type_(wp.type_id).map(|t| t.name.clone())),
            "priority": link("priorities", Some(wp.priority), board.priority(wp.priority).map(|p| p.name.clone())),
            "project": link("projects", Some(wp.project), board.project(wp.project).map(|p| p.name.clone())),
            "status": link("statuses", Some(wp.status), board.status(wp.status).map(|s| s.name.clone())),
            "responsible": { "href": null },
            "assignee": link("users", wp.assignee, wp.assignee.and_then(|a| board.user(a)).map(|u| u.name.clone())),
            "version": { "href": null },
            "parent": link("work_packages", wp.parent, wp.parent.and_then(|p| board.wps.get(&p)).map(|w| w.subject.clone())),
        }),
    );
    Value::Object(body)
}
