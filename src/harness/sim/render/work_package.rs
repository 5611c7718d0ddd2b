//! The work package as OpenProject renders it: every link and property the real representer sends,
//! including the many the worker ignores, so that the worker meets real sizes (a single work package
//! is several KiB, a page of 1000 several MiB) and real shapes.
//!
//! Read from OpenProject's source and real payloads:
//!
//! - `lib/api/v3/work_packages/work_package_representer.rb`: the links (`update` is the form,
//!   `updateImmediately` the PATCH, `move`/`copy`/`pdf`/`atom`/`configureForm` HTML pages,
//!   `availableRelationCandidates`, watchers, `addChild` except on milestones, `changeParent`,
//!   `previewMarkup`), `children` only when there are visible children (the link is left out, not
//!   `[]`), `ancestors` only visible ones, `parent` as `{href: null, title: null}` when unset or not
//!   visible; the properties (`spentTime`, `derived*`, `duration` except on milestones, `date` only on
//!   milestones, `readonly`); with `embed_links` (a single work package: GET, PATCH, POST answers) the
//!   `_embedded` resources `attachments`, `relations` (visible ones), `type`, `priority`, `project`,
//!   `status`, `author`, `assignee`/`responsible` when set, `parent` when visible, `customActions`.
//! - `lib/api/v3/work_packages/work_package_collection_representer.rb`: collection elements are
//!   created without `embed_links`: all links and properties, no `_embedded`.
//! - `lib/api/v3/attachments/attachable_representer_mixin.rb`: `attachments`, `addAttachment`.
//! - Modules bundled with every instance add to it (`extend_api_response(:v3, :work_packages,
//!   :work_package)`): costs (`logCosts`, `showCosts`, `costsByType`, `laborCosts`, ...), backlogs
//!   (`storyPoints`, `position`, `remainingTime` on story types,
//!   `modules/backlogs/lib/open_project/backlogs/patches/api/work_package_representer.rb`), storages
//!   (`fileLinks`, `addFileLink`), meetings (`meetings`), GitHub (`github`, `github_pull_requests`).
//!   Link texts follow a payload captured from a 2025 OpenProject SaaS instance (Zulip's webhook
//!   fixtures).
//!
//! Unset dates and durations are left out unless `Behaviour::render_nulls` (the representer renders
//! `null`, which the upstream schema rejects; see the conformance tests).

use serde_json::{Map, Value, json};

use super::{
    formattable, link, null_link, priority, project, relation, status, type_, user, wp_time,
};
use crate::harness::sim::state::{Board, Wp};

/// Types the backlogs module treats as stories (`storyPoints`, `position`) in the standard seed.
const STORY_TYPES: &[&str] = &["Feature", "Epic", "User story", "Bug"];

/// The work package `wp` as `viewer` sees it; `embed` as for a single resource (`embed_links`).
pub fn work_package(board: &Board, wp: &Wp, viewer: u64, embed: bool) -> Value {
    let mut body = properties(board, wp);
    body.insert("_links".into(), Value::Object(links(board, wp, viewer)));
    if embed {
        body.insert(
            "_embedded".into(),
            Value::Object(embedded(board, wp, viewer)),
        );
    }
    Value::Object(body)
}

fn properties(board: &Board, wp: &Wp) -> Map<String, Value> {
    let milestone = board.type_(wp.type_id).is_some_and(|t| t.is_milestone);
    let nulls = board.behaviour.render_nulls;
    let mut body = Map::new();
    let unset = |body: &mut Map<String, Value>, key: &str| {
        if nulls {
            body.insert(key.into(), Value::Null);
        }
    };
    body.insert("_type".into(), json!("WorkPackage"));
    body.insert("id".into(), json!(wp.id));
    body.insert("lockVersion".into(), json!(wp.lock_version));
    body.insert("subject".into(), json!(wp.subject));
    body.insert("description".into(), formattable(&wp.description));
    body.insert("scheduleManually".into(), json!(false));
    let dates: &[&str] = if milestone {
        &["date"]
    } else {
        &["startDate", "dueDate", "derivedStartDate", "derivedDueDate"]
    };
    for key in dates {
        unset(&mut body, key);
    }
    for key in ["estimatedTime", "derivedEstimatedTime"] {
        unset(&mut body, key);
    }
    if !milestone {
        unset(&mut body, "duration");
    }
    // Not in the upstream schema, rendered `null` by the representer (`render_nil: true`).
    body.insert("remainingTime".into(), Value::Null);
    body.insert("derivedRemainingTime".into(), Value::Null);
    body.insert("ignoreNonWorkingDays".into(), json!(false));
    body.insert("spentTime".into(), json!("PT0S"));
    body.insert(
        "percentageDone".into(),
        json!(
            board
                .status(wp.status)
                .map(|s| s.default_done_ratio)
                .unwrap_or(0)
        ),
    );
    body.insert("derivedPercentageDone".into(), Value::Null);
    body.insert("createdAt".into(), json!(wp_time(board, wp.created_at)));
    body.insert("updatedAt".into(), json!(wp_time(board, wp.updated_at)));
    body.insert("readonly".into(), json!(false));
    for costs in ["laborCosts", "materialCosts", "overallCosts"] {
        body.insert(costs.into(), json!("0.00 EUR"));
    }
    let story = board
        .type_(wp.type_id)
        .is_some_and(|t| STORY_TYPES.contains(&t.name.as_str()));
    if story {
        body.insert("storyPoints".into(), Value::Null);
        body.insert("position".into(), Value::Null);
    }
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
    body
}

fn links(board: &Board, wp: &Wp, viewer: u64) -> Map<String, Value> {
    let id = wp.id;
    let me = format!("/api/v3/work_packages/{id}");
    let subject = wp.subject.as_str();
    let project = board.project(wp.project);
    let identifier = project.map(|p| p.identifier.as_str()).unwrap_or("");
    let milestone = board.type_(wp.type_id).is_some_and(|t| t.is_milestone);
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
    let time_entries = url::form_urlencoded::byte_serialize(
        json!([{ "work_package_id": { "operator": "=", "values": [id.to_string()] } }])
            .to_string()
            .as_bytes(),
    )
    .collect::<String>();
    let mut l = Map::new();
    let mut put = |k: &str, v: Value| {
        l.insert(k.into(), v);
    };
    put(
        "attachments",
        json!({ "href": format!("{me}/attachments") }),
    );
    put(
        "addAttachment",
        json!({ "href": format!("{me}/attachments"), "method": "post" }),
    );
    put("fileLinks", json!({ "href": format!("{me}/file_links") }));
    put(
        "addFileLink",
        json!({ "href": format!("{me}/file_links"), "method": "post" }),
    );
    put("self", link(me.clone(), Some(subject)));
    put(
        "update",
        json!({ "href": format!("{me}/form"), "method": "post" }),
    );
    put(
        "schema",
        json!({ "href": format!("/api/v3/work_packages/schemas/{}-{}", wp.project, wp.type_id) }),
    );
    put(
        "updateImmediately",
        json!({ "href": me, "method": "patch" }),
    );
    put("delete", json!({ "href": me, "method": "delete" }));
    put(
        "logTime",
        json!({ "href": "/api/v3/time_entries", "title": format!("Log time on work package '{subject}'") }),
    );
    put(
        "move",
        json!({ "href": format!("/work_packages/{id}/move/new"), "type": "text/html", "title": format!("Move work package '{subject}'") }),
    );
    put(
        "copy",
        json!({ "href": format!("/work_packages/{id}/copy"), "type": "text/html", "title": format!("Copy work package '{subject}'") }),
    );
    put(
        "pdf",
        json!({ "href": format!("/work_packages/{id}.pdf"), "type": "application/pdf", "title": "Export as PDF" }),
    );
    put(
        "generate_pdf",
        json!({ "href": format!("/work_packages/{id}/generate_pdf_dialog"), "type": "text/vnd.turbo-stream.html", "title": "Generate PDF" }),
    );
    put(
        "atom",
        json!({ "href": format!("/work_packages/{id}.atom"), "type": "application/rss+xml", "title": "Atom feed" }),
    );
    put(
        "availableRelationCandidates",
        json!({ "href": format!("{me}/available_relation_candidates"), "title": "Potential work packages to relate to" }),
    );
    put(
        "customFields",
        json!({ "href": format!("/projects/{identifier}/settings/custom_fields"), "type": "text/html", "title": "Custom fields" }),
    );
    put(
        "configureForm",
        json!({ "href": format!("/types/{}/edit?tab=form_configuration", wp.type_id), "type": "text/html", "title": "Configure form" }),
    );
    put("activities", json!({ "href": format!("{me}/activities") }));
    put(
        "availableWatchers",
        json!({ "href": format!("{me}/available_watchers") }),
    );
    put("relations", json!({ "href": format!("{me}/relations") }));
    put("revisions", json!({ "href": format!("{me}/revisions") }));
    put("watchers", json!({ "href": format!("{me}/watchers") }));
    put(
        "addWatcher",
        json!({ "href": format!("{me}/watchers"), "method": "post", "payload": { "user": { "href": "/api/v3/users/{user_id}" } }, "templated": true }),
    );
    put(
        "removeWatcher",
        json!({ "href": format!("{me}/watchers/{{user_id}}"), "method": "delete", "templated": true }),
    );
    put(
        "watch",
        json!({ "href": format!("{me}/watchers"), "method": "post", "payload": { "user": { "href": format!("/api/v3/users/{viewer}") } } }),
    );
    put(
        "addRelation",
        json!({ "href": format!("{me}/relations"), "method": "post", "title": "Add relation" }),
    );
    if !milestone {
        put(
            "addChild",
            json!({ "href": format!("/api/v3/projects/{identifier}/work_packages"), "method": "post", "title": format!("Add child of {subject}") }),
        );
    }
    put(
        "changeParent",
        json!({ "href": me, "method": "patch", "title": format!("Change parent of {subject}") }),
    );
    put(
        "addComment",
        json!({ "href": format!("{me}/activities"), "method": "post", "title": "Add comment" }),
    );
    put(
        "previewMarkup",
        json!({ "href": format!("/api/v3/render/markdown?context={me}"), "method": "post" }),
    );
    put(
        "timeEntries",
        json!({ "href": format!("/api/v3/time_entries?filters={time_entries}"), "title": "Time entries" }),
    );
    put(
        "ancestors",
        Value::Array(
            board
                .visible_ancestors(viewer, id)
                .into_iter()
                .map(wp_link)
                .collect(),
        ),
    );
    let children = board.visible_children(viewer, id);
    if !children.is_empty() {
        put(
            "children",
            Value::Array(children.into_iter().map(wp_link).collect()),
        );
    }
    put("category", null_link());
    let titled = |collection: &str, target: u64, title: Option<&str>| {
        link(format!("/api/v3/{collection}/{target}"), title)
    };
    put(
        "type",
        titled(
            "types",
            wp.type_id,
            board.type_(wp.type_id).map(|t| t.name.as_str()),
        ),
    );
    put(
        "priority",
        titled(
            "priorities",
            wp.priority,
            board.priority(wp.priority).map(|p| p.name.as_str()),
        ),
    );
    put(
        "project",
        titled("projects", wp.project, project.map(|p| p.name.as_str())),
    );
    put(
        "status",
        titled(
            "statuses",
            wp.status,
            board.status(wp.status).map(|s| s.name.as_str()),
        ),
    );
    put("author", user_link(Some(wp.author)));
    put("responsible", null_link());
    put("assignee", user_link(wp.assignee));
    put("version", null_link());
    put(
        "parent",
        match wp.parent.filter(|p| board.wp_visible(viewer, *p)) {
            Some(p) => wp_link(p),
            None => json!({ "href": null, "title": null }),
        },
    );
    put("customActions", json!([]));
    put(
        "logCosts",
        json!({ "href": format!("/work_packages/{id}/cost_entries/new"), "type": "text/html", "title": format!("Log costs on {subject}") }),
    );
    put(
        "showCosts",
        json!({ "href": format!("/projects/{}/cost_reports?fields%5B%5D=WorkPackageId&operators%5BWorkPackageId%5D=%3D&set_filter=1&values%5BWorkPackageId%5D={id}", wp.project), "type": "text/html", "title": "Show cost entries" }),
    );
    put(
        "costsByType",
        json!({ "href": format!("{me}/summarized_costs_by_type") }),
    );
    put(
        "meetings",
        json!({ "href": format!("/work_packages/{id}/tabs/meetings"), "title": "meetings" }),
    );
    put(
        "github",
        json!({ "href": format!("/work_packages/{id}/tabs/github"), "title": "github" }),
    );
    put(
        "github_pull_requests",
        json!({ "href": format!("{me}/github_pull_requests"), "title": "GitHub pull requests" }),
    );
    l
}

fn embedded(board: &Board, wp: &Wp, viewer: u64) -> Map<String, Value> {
    let me = format!("/api/v3/work_packages/{}", wp.id);
    let created = board.created_at();
    let mut e = Map::new();
    e.insert(
        "attachments".into(),
        super::collection(&format!("{me}/attachments"), vec![]),
    );
    let relations = board
        .relations
        .values()
        .filter(|r| (r.from == wp.id || r.to == wp.id) && board.relation_visible(viewer, r))
        .map(|r| relation(board, r))
        .collect();
    e.insert(
        "relations".into(),
        super::collection(&format!("{me}/relations"), relations),
    );
    if let Some(t) = board.type_(wp.type_id) {
        e.insert("type".into(), type_(t, created));
    }
    if let Some(p) = board.priority(wp.priority) {
        e.insert("priority".into(), priority(p));
    }
    if let Some(p) = board.project(wp.project) {
        e.insert("project".into(), project(p, created));
    }
    if let Some(s) = board.status(wp.status) {
        e.insert("status".into(), status(s));
    }
    if let Some(u) = board.user(wp.author) {
        e.insert("author".into(), user(u, created));
    }
    if let Some(u) = wp.assignee.and_then(|a| board.user(a)) {
        e.insert("assignee".into(), user(u, created));
    }
    if let Some(parent) = wp
        .parent
        .filter(|p| board.wp_visible(viewer, *p))
        .and_then(|p| board.wps.get(&p))
    {
        e.insert("parent".into(), work_package(board, parent, viewer, false));
    }
    e.insert("customActions".into(), json!([]));
    e
}
