//! HAL+JSON rendering of the bundled board's resources, in OpenProject's shapes (API-NOTES sections 1,
//! 2, 4, 6, 7, 10). Checked against the upstream schemas by the conformance tests. The work package,
//! the largest of them, has its own file (`render/work_package.rs`).
//!
//! Optional date properties are omitted rather than rendered `null` (unless
//! `Behaviour::render_nulls`): the upstream schema types them as plain strings.

mod work_package;

pub use work_package::work_package;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::state::{
    Act, Board, PriorityDef, ProjectDef, Rel, SimError, StatusDef, TypeDef, UserDef, relation_names,
};

pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) use super::markdown::{formattable, html};

/// A work package's `createdAt` / `updatedAt`: in whole seconds with `Behaviour::whole_seconds`,
/// as OpenProject renders them (`lib/api/v3/utilities/date_time_formatter.rb`).
pub fn wp_time(board: &Board, t: DateTime<Utc>) -> String {
    if board.behaviour.whole_seconds {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        time(t)
    }
}

pub(super) fn link(href: String, title: Option<&str>) -> Value {
    match title {
        Some(t) => json!({ "href": href, "title": t }),
        None => json!({ "href": href }),
    }
}

pub(super) fn null_link() -> Value {
    json!({ "href": null })
}

/// Links of an offset-paginated collection (`offset_paginated_collection.rb`).
fn paging_links(self_path: &str, query: &str, offset: u64, size: u64, total: u64) -> Value {
    let q = |o: &str, s: &str| {
        let mut parts: Vec<String> = vec![];
        if !query.is_empty() {
            parts.push(query.to_string());
        }
        parts.push(format!("offset={o}"));
        parts.push(format!("pageSize={s}"));
        format!("{self_path}?{}", parts.join("&"))
    };
    let mut links = Map::new();
    links.insert(
        "self".into(),
        json!({ "href": q(&offset.to_string(), &size.to_string()) }),
    );
    links.insert(
        "jumpTo".into(),
        json!({ "href": q("%7Boffset%7D", &size.to_string()), "templated": true }),
    );
    links.insert(
        "changeSize".into(),
        json!({ "href": q(&offset.to_string(), "%7Bsize%7D"), "templated": true }),
    );
    if offset > 1 {
        links.insert(
            "previousByOffset".into(),
            json!({ "href": q(&(offset - 1).to_string(), &size.to_string()) }),
        );
    }
    if offset.saturating_mul(size) < total {
        links.insert(
            "nextByOffset".into(),
            json!({ "href": q(&offset.saturating_add(1).to_string(), &size.to_string()) }),
        );
    }
    Value::Object(links)
}

/// A paginated collection: `type_` is `WorkPackageCollection` for work packages, else `Collection`.
pub fn paged_collection(
    type_: &str,
    self_path: &str,
    query: &str,
    elements: Vec<Value>,
    total: u64,
    offset: u64,
    size: u64,
) -> Value {
    json!({
        "_type": type_,
        "total": total,
        "count": elements.len(),
        "pageSize": size,
        "offset": offset,
        "_embedded": { "elements": elements },
        "_links": paging_links(self_path, query, offset, size, total),
    })
}

/// An unpaginated collection (statuses, types, priorities, activities).
pub fn collection(self_path: &str, elements: Vec<Value>) -> Value {
    json!({
        "_type": "Collection",
        "total": elements.len(),
        "count": elements.len(),
        "_embedded": { "elements": elements },
        "_links": { "self": { "href": self_path } },
    })
}

pub fn status(s: &StatusDef) -> Value {
    json!({
        "_type": "Status", "id": s.id, "name": s.name, "position": s.position,
        "isDefault": s.is_default, "isClosed": s.is_closed, "isReadonly": false,
        "excludedFromTotals": false, "color": "#1098AD", "defaultDoneRatio": s.default_done_ratio,
        "_links": { "self": { "href": format!("/api/v3/statuses/{}", s.id), "title": s.name } },
    })
}

pub fn type_(t: &TypeDef, created: DateTime<Utc>) -> Value {
    json!({
        "_type": "Type", "id": t.id, "name": t.name, "ownName": t.name, "color": t.color,
        "position": t.position, "isDefault": t.is_default, "isMilestone": t.is_milestone,
        "createdAt": time(created), "updatedAt": time(created),
        "_links": { "self": { "href": format!("/api/v3/types/{}", t.id), "title": t.name } },
    })
}

pub fn priority(p: &PriorityDef) -> Value {
    json!({
        "_type": "Priority", "id": p.id, "name": p.name, "position": p.position,
        "isDefault": p.is_default, "isActive": true,
        "_links": { "self": { "href": format!("/api/v3/priorities/{}", p.id), "title": p.name } },
    })
}

pub fn user(u: &UserDef, created: DateTime<Utc>) -> Value {
    let (first, last) = u.name.split_once(' ').unwrap_or((u.name.as_str(), ""));
    let memberships = url::form_urlencoded::byte_serialize(
        json!([{ "principal": { "operator": "=", "values": [u.id.to_string()] } }])
            .to_string()
            .as_bytes(),
    )
    .collect::<String>();
    json!({
        "_type": "User", "id": u.id, "name": u.name, "login": u.login,
        "firstName": first, "lastName": last, "email": format!("{}@example.invalid", u.login),
        "admin": u.id == super::state::ADMIN_USER, "avatar": "", "status": "active", "language": "en",
        "identityUrl": null,
        "createdAt": time(created), "updatedAt": time(created),
        "_links": {
            "self": { "href": format!("/api/v3/users/{}", u.id), "title": u.name },
            "memberships": { "href": format!("/api/v3/memberships?filters={memberships}"), "title": "Memberships" },
            "showUser": { "href": format!("/users/{}", u.id), "type": "text/html" },
        },
    })
}

/// A project (links as a 2025 instance renders them; `lib/api/v3/projects/project_representer.rb`).
pub fn project(p: &ProjectDef, created: DateTime<Utc>) -> Value {
    let me = format!("/api/v3/projects/{}", p.id);
    let memberships = url::form_urlencoded::byte_serialize(
        json!([{ "project": { "operator": "=", "values": [p.id.to_string()] } }])
            .to_string()
            .as_bytes(),
    )
    .collect::<String>();
    json!({
        "_type": "Project", "id": p.id, "identifier": p.identifier, "name": p.name,
        "active": true, "public": false, "description": formattable(""),
        "createdAt": time(created), "updatedAt": time(created),
        "statusExplanation": formattable(""),
        "_links": {
            "self": { "href": me, "title": p.name },
            "createWorkPackage": { "href": format!("{me}/work_packages/form"), "method": "post" },
            "createWorkPackageImmediately": { "href": format!("{me}/work_packages"), "method": "post" },
            "workPackages": { "href": format!("{me}/work_packages") },
            "storages": [],
            "categories": { "href": format!("{me}/categories") },
            "versions": { "href": format!("{me}/versions") },
            "memberships": { "href": format!("/api/v3/memberships?filters={memberships}") },
            "types": { "href": format!("{me}/types") },
            "update": { "href": format!("{me}/form"), "method": "post" },
            "updateImmediately": { "href": me, "method": "patch" },
            "delete": { "href": me, "method": "delete" },
            "schema": { "href": "/api/v3/projects/schema" },
            "status": { "href": null },
            "parent": { "href": null, "title": null },
        },
    })
}

pub fn relation(board: &Board, r: &Rel) -> Value {
    let (reverse, name) = relation_names(&r.type_);
    let wp = |id: u64| {
        board
            .wps
            .get(&id)
            .map(|w| w.subject.clone())
            .unwrap_or_default()
    };
    let href = format!("/api/v3/relations/{}", r.id);
    json!({
        "_type": "Relation", "id": r.id, "name": name, "type": r.type_, "reverseType": reverse,
        "lag": r.lag, "description": r.description,
        "_links": {
            "self": { "href": href },
            "updateImmediately": { "href": href, "method": "patch" },
            "delete": { "href": href, "method": "delete", "title": "Remove relation" },
            "from": { "href": format!("/api/v3/work_packages/{}", r.from), "title": wp(r.from) },
            "to": { "href": format!("/api/v3/work_packages/{}", r.to), "title": wp(r.to) },
        },
    })
}

pub fn activity(board: &Board, a: &Act) -> Value {
    let subject = board
        .wps
        .get(&a.wp)
        .map(|w| w.subject.clone())
        .unwrap_or_default();
    let mut body = json!({
        "_type": if a.comment.is_some() { "Activity::Comment" } else { "Activity" },
        "id": a.id,
        "details": a.details.iter().map(|d| json!({ "format": "custom", "raw": d, "html": html(d) })).collect::<Vec<_>>(),
        "version": a.version,
        "internal": false,
        "createdAt": time(a.created_at),
        "updatedAt": time(a.updated_at),
        "_links": {
            "self": { "href": format!("/api/v3/activities/{}", a.id) },
            "workPackage": { "href": format!("/api/v3/work_packages/{}", a.wp), "title": subject },
            "user": { "href": format!("/api/v3/users/{}", a.user), "title": board.user(a.user).map(|u| u.name.clone()).unwrap_or_default() },
            "update": { "href": format!("/api/v3/activities/{}", a.id), "method": "patch" },
        },
    });
    body["comment"] = formattable(a.comment.as_deref().unwrap_or(""));
    body
}

/// The work package schema of one project and type, with the custom fields enabled there and their
/// human names. `allowed_statuses` fills `status._links.allowedValues` (and the embedded statuses),
/// which only a form's schema has (`lib/api/v3/work_packages/schema/work_package_schema_representer.rb`:
/// `defines_assignable_values?`).
pub fn schema(
    board: &Board,
    project: u64,
    type_id: u64,
    allowed_statuses: Option<&[u64]>,
) -> Value {
    let field = |type_: &str, name: &str, required: bool, writable: bool| json!({ "type": type_, "name": name, "required": required, "hasDefault": false, "writable": writable, "options": {} });
    let mut body = Map::new();
    body.insert("_type".into(), json!("Schema"));
    body.insert("_dependencies".into(), json!([]));
    body.insert("_attributeGroups".into(), json!([]));
    body.insert(
        "lockVersion".into(),
        field("Integer", "Lock Version", true, false),
    );
    body.insert("id".into(), field("Integer", "ID", true, false));
    body.insert("subject".into(), json!({ "type": "String", "name": "Subject", "required": true, "hasDefault": false, "writable": true, "minLength": 1, "maxLength": 255, "options": {} }));
    body.insert(
        "description".into(),
        field("Formattable", "Description", false, true),
    );
    body.insert(
        "createdAt".into(),
        field("DateTime", "Created on", true, false),
    );
    body.insert(
        "updatedAt".into(),
        field("DateTime", "Updated on", true, false),
    );
    body.insert("author".into(), field("User", "Author", true, false));
    body.insert("project".into(), field("Project", "Project", true, true));
    body.insert("parent".into(), field("WorkPackage", "Parent", false, true));
    body.insert("assignee".into(), field("User", "Assignee", false, true));
    body.insert(
        "responsible".into(),
        field("User", "Accountable", false, true),
    );
    body.insert("type".into(), field("Type", "Type", true, true));
    body.insert("priority".into(), field("Priority", "Priority", true, true));
    let mut status_field = field("Status", "Status", true, true);
    status_field["hasDefault"] = json!(true);
    if let Some(allowed) = allowed_statuses {
        let statuses: Vec<&StatusDef> = allowed.iter().filter_map(|s| board.status(*s)).collect();
        status_field["_embedded"] =
            json!({ "allowedValues": statuses.iter().map(|s| status(s)).collect::<Vec<_>>() });
        status_field["_links"] = json!({
            "allowedValues": statuses
                .iter()
                .map(|s| json!({ "href": format!("/api/v3/statuses/{}", s.id), "title": s.name }))
                .collect::<Vec<_>>()
        });
    } else {
        status_field["_links"] = json!({});
    }
    body.insert("status".into(), status_field);
    for cf in board
        .custom_fields
        .iter()
        .filter(|c| c.available(project, type_id))
    {
        body.insert(format!("customField{}", cf.id), cf.schema());
    }
    body.insert(
        "_links".into(),
        json!({ "self": { "href": format!("/api/v3/work_packages/schemas/{project}-{type_id}") } }),
    );
    Value::Object(body)
}

/// An error body (`lib/api/v3/errors/error_representer.rb`): `_embedded.details.attribute` for a
/// property's error, `_embedded.errors` for `MultipleErrors`.
pub fn error(e: &SimError) -> Value {
    let message = if e.message_as_list {
        json!([e.message])
    } else {
        json!(e.message)
    };
    let mut body = json!({
        "_type": "Error",
        "errorIdentifier": format!("urn:openproject-org:api:v3:errors:{}", e.identifier),
        "message": message,
    });
    if let Some(attr) = &e.attribute {
        body["_embedded"] = json!({ "details": { "attribute": attr } });
    }
    if !e.errors.is_empty() {
        body["_embedded"] = json!({ "errors": e.errors.iter().map(error).collect::<Vec<_>>() });
    }
    body
}
