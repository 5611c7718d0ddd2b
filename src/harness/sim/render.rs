//! HAL+JSON rendering of the bundled board's resources, in OpenProject's shapes (API-NOTES sections 1,
//! 2, 4, 6, 7, 10). Checked against the upstream schemas by the conformance tests.
//!
//! Optional date properties are omitted rather than rendered `null`: the upstream schema types them as
//! plain strings.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::state::{
    Act, Board, PriorityDef, ProjectDef, Rel, SimError, StatusDef, TypeDef, UserDef, Wp,
    relation_names,
};

pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Minimal Markdown-to-HTML: escape everything, paragraphs per blank line. Enough for `html`.
pub fn html(raw: &str) -> String {
    let escaped = raw
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    escaped
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p class=\"op-uc-p\">{}</p>", p.trim()))
        .collect()
}

fn formattable(raw: &str) -> Value {
    json!({ "format": "markdown", "raw": raw, "html": html(raw) })
}

fn link(href: String, title: Option<&str>) -> Value {
    match title {
        Some(t) => json!({ "href": href, "title": t }),
        None => json!({ "href": href }),
    }
}

fn null_link() -> Value {
    json!({ "href": null })
}

pub fn work_package(board: &Board, wp: &Wp) -> Value {
    let id = wp.id;
    let self_href = format!("/api/v3/work_packages/{id}");
    let wp_link = |i: u64| {
        link(
            format!("/api/v3/work_packages/{i}"),
            board.wps.get(&i).map(|w| w.subject.as_str()),
        )
    };
    let user_link = |u: Option<u64>| match u {
        Some(u) => link(
            format!("/api/v3/users/{u}"),
            board.user(u).map(|x| x.name.as_str()),
        ),
        None => null_link(),
    };
    let mut links = Map::new();
    links.insert("self".into(), link(self_href.clone(), Some(&wp.subject)));
    links.insert(
        "update".into(),
        json!({ "href": format!("{self_href}/form"), "method": "post" }),
    );
    links.insert(
        "schema".into(),
        json!({ "href": format!("/api/v3/work_packages/schemas/{}-{}", wp.project, wp.type_id) }),
    );
    links.insert(
        "updateImmediately".into(),
        json!({ "href": self_href, "method": "patch" }),
    );
    links.insert(
        "delete".into(),
        json!({ "href": self_href, "method": "delete" }),
    );
    links.insert(
        "activities".into(),
        json!({ "href": format!("{self_href}/activities") }),
    );
    links.insert("addComment".into(), json!({ "href": format!("{self_href}/activities"), "method": "post", "title": "Add comment" }));
    links.insert(
        "relations".into(),
        json!({ "href": format!("{self_href}/relations") }),
    );
    links.insert("addRelation".into(), json!({ "href": format!("{self_href}/relations"), "method": "post", "title": "Add relation" }));
    links.insert(
        "attachments".into(),
        json!({ "href": format!("{self_href}/attachments") }),
    );
    links.insert("author".into(), user_link(Some(wp.author)));
    links.insert("assignee".into(), user_link(wp.assignee));
    links.insert("responsible".into(), null_link());
    let priority = board.priority(wp.priority).map(|p| p.name.as_str());
    let project = board.project(wp.project).map(|p| p.name.as_str());
    let status = board.status(wp.status).map(|s| s.name.as_str());
    let type_ = board.type_(wp.type_id).map(|t| t.name.as_str());
    for (rel, collection, target, title) in [
        ("priority", "priorities", wp.priority, priority),
        ("project", "projects", wp.project, project),
        ("status", "statuses", wp.status, status),
        ("type", "types", wp.type_id, type_),
    ] {
        links.insert(
            rel.into(),
            link(format!("/api/v3/{collection}/{target}"), title),
        );
    }
    links.insert("version".into(), null_link());
    links.insert("category".into(), null_link());
    links.insert(
        "parent".into(),
        wp.parent.map(wp_link).unwrap_or_else(null_link),
    );
    links.insert(
        "children".into(),
        Value::Array(board.children_of(id).map(wp_link).collect()),
    );
    links.insert(
        "ancestors".into(),
        Value::Array(board.ancestors(id).into_iter().map(wp_link).collect()),
    );
    links.insert(
        "watchers".into(),
        json!({ "href": format!("{self_href}/watchers") }),
    );
    let mut body = Map::new();
    body.insert("_type".into(), json!("WorkPackage"));
    body.insert("id".into(), json!(id));
    body.insert("lockVersion".into(), json!(wp.lock_version));
    body.insert("subject".into(), json!(wp.subject));
    body.insert("description".into(), formattable(&wp.description));
    body.insert("scheduleManually".into(), json!(false));
    body.insert("ignoreNonWorkingDays".into(), json!(false));
    body.insert(
        "percentageDone".into(),
        json!(
            board
                .status(wp.status)
                .map(|s| s.default_done_ratio)
                .unwrap_or(0)
        ),
    );
    body.insert("createdAt".into(), json!(time(wp.created_at)));
    body.insert("updatedAt".into(), json!(time(wp.updated_at)));
    // String custom fields are properties, not links (API-NOTES section 2).
    for cf in &board.custom_fields {
        body.insert(
            format!("customField{}", cf.id),
            wp.custom
                .get(&cf.id)
                .map(|v| json!(v))
                .unwrap_or(Value::Null),
        );
    }
    body.insert("_links".into(), Value::Object(links));
    Value::Object(body)
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
    json!({
        "_type": "User", "id": u.id, "name": u.name, "login": u.login,
        "firstName": first, "lastName": last, "email": format!("{}@example.invalid", u.login),
        "admin": u.id == super::state::ADMIN_USER, "avatar": "", "status": "active", "language": "en",
        "createdAt": time(created), "updatedAt": time(created),
        "_links": {
            "self": { "href": format!("/api/v3/users/{}", u.id), "title": u.name },
            "showUser": { "href": format!("/users/{}", u.id), "type": "text/html" },
        },
    })
}

pub fn project(p: &ProjectDef, created: DateTime<Utc>) -> Value {
    json!({
        "_type": "Project", "id": p.id, "identifier": p.identifier, "name": p.name,
        "active": true, "public": false, "description": formattable(""),
        "createdAt": time(created), "updatedAt": time(created),
        "_links": {
            "self": { "href": format!("/api/v3/projects/{}", p.id), "title": p.name },
            "workPackages": { "href": format!("/api/v3/projects/{}/work_packages", p.id) },
            "types": { "href": format!("/api/v3/projects/{}/types", p.id) },
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
        "updatedAt": time(a.created_at),
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

/// The work package schema of one project and type, with the custom fields' human names.
pub fn schema(board: &Board, project: u64, type_id: u64) -> Value {
    let mut body = Map::new();
    body.insert("_type".into(), json!("Schema"));
    body.insert("_dependencies".into(), json!([]));
    body.insert("lockVersion".into(), json!({ "type": "Integer", "name": "Lock Version", "required": true, "hasDefault": false, "writable": false }));
    body.insert("subject".into(), json!({ "type": "String", "name": "Subject", "required": true, "hasDefault": false, "writable": true, "minLength": 1, "maxLength": 255 }));
    for cf in &board.custom_fields {
        body.insert(
            format!("customField{}", cf.id),
            json!({ "type": "String", "name": cf.name, "required": false, "hasDefault": false, "writable": true, "options": { "rtl": null } }),
        );
    }
    body.insert(
        "_links".into(),
        json!({ "self": { "href": format!("/api/v3/work_packages/schemas/{project}-{type_id}") } }),
    );
    Value::Object(body)
}

pub fn error(e: &SimError) -> Value {
    let mut body = json!({
        "_type": "Error",
        "errorIdentifier": format!("urn:openproject-org:api:v3:errors:{}", e.identifier),
        "message": e.message,
    });
    if let Some(attr) = &e.attribute {
        body["_embedded"] = json!({ "details": { "attribute": attr } });
    }
    body
}
