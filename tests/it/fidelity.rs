//! Fidelity: the bundled board behaves like a real OpenProject instance where that makes a client's
//! life harder, each behaviour checked over real loopback HTTP against what OpenProject's source
//! does (the sim module docs cite the files): a capped `pageSize`, the relations index, projects the
//! agent cannot see, workflows and their forms, the `notify` flag, comments and re-derived parents,
//! custom field formats and per project and type enablement, and the real work package's size.

use std::time::Duration;

use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{
    self, ADMIN_USER, AGENT_USER, BoardHandle, BoardOptions, CfFormat, JournalAction, POD_FIELD,
    WorkflowPreset, WriteKind,
};
use journeyman::openproject::WorkPackageQuery;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{board, client_with, fast_options};

// ---------------------------------------------------------------------------------------------------
// Over HTTP, as the agent (or another token).

struct Api {
    http: reqwest::Client,
    base: url::Url,
    token: String,
}

impl Api {
    fn agent(b: &BoardHandle) -> Api {
        Api::with_token(b, b.token())
    }

    fn with_token(b: &BoardHandle, token: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            base: b.url().clone(),
            token: token.into(),
        }
    }

    /// The admin, through a token added for it.
    fn admin(b: &BoardHandle) -> Api {
        b.board().tokens.insert("admin-token".into(), ADMIN_USER);
        Api::with_token(b, "admin-token")
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let url = self.base.join(path).expect("a valid path");
        let mut req = self
            .http
            .request(method.clone(), url)
            .basic_auth("apikey", Some(&self.token));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(&body)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&body)).await
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn wp(id: u64) -> String {
    format!("/api/v3/work_packages/{id}")
}

fn status_href(b: &BoardHandle, name: &str) -> Value {
    let id = b.board().status_named(name).expect("status").id;
    json!({ "href": format!("/api/v3/statuses/{id}") })
}

fn lock(b: &BoardHandle, id: u64) -> u64 {
    b.wp(id).lock_version
}

fn ids(collection: &Value) -> Vec<u64> {
    collection["_embedded"]["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect()
}

const URN: &str = "urn:openproject-org:api:v3:errors:";

// ---------------------------------------------------------------------------------------------------
// 1. Page-size cap.

#[tokio::test]
async fn a_page_size_above_the_cap_is_silently_capped_and_the_answer_says_so() {
    let b = board().await;
    for i in 0..12 {
        b.create(&SeedWp::new("Task", &format!("t{i}")));
    }
    b.set_max_page_size(5);
    let api = Api::agent(&b);
    let filters = enc("[]");
    for asked in ["100", "-1", "5000"] {
        let page = api
            .get(&format!(
                "/api/v3/work_packages?filters={filters}&pageSize={asked}"
            ))
            .await;
        assert_eq!(page["pageSize"], 5, "asked for {asked}");
        assert_eq!(
            (page["count"].clone(), page["total"].clone()),
            (json!(5), json!(12))
        );
        let next = page["_links"]["nextByOffset"]["href"]
            .as_str()
            .expect("next");
        assert!(
            next.contains("pageSize=5") && next.contains("offset=2"),
            "{next}"
        );
    }
    // Within the cap, the size asked for is kept.
    let page = api
        .get(&format!(
            "/api/v3/work_packages?filters={filters}&pageSize=3"
        ))
        .await;
    assert_eq!(page["pageSize"], 3);

    // Relations are capped too.
    for i in 1..8 {
        b.relate(i, i + 1, "relates");
    }
    let page = api.get("/api/v3/relations?pageSize=1000").await;
    assert_eq!(
        (page["pageSize"].clone(), page["total"].clone()),
        (json!(5), json!(7))
    );
    assert_eq!(ids(&page), [1, 2, 3, 4, 5]);

    // Activities are not paginated at all (an `UnpaginatedCollection`): no pageSize applies.
    let acts = api.get(&format!("{}/activities?pageSize=1", wp(1))).await;
    assert!(acts.get("pageSize").is_none());
}

#[tokio::test]
async fn a_client_that_asks_for_1000_still_reads_everything_from_a_capped_board() {
    let b = sim::start(BoardOptions {
        max_page_size: 4,
        ..BoardOptions::default()
    })
    .await
    .expect("board");
    for i in 0..10 {
        b.create(&SeedWp::new("Task", &format!("t{i}")));
    }
    let mut opts = fast_options();
    opts.page_size = 1000;
    let c = client_with(&b, opts);
    let all = c
        .work_packages(&WorkPackageQuery::default())
        .await
        .expect("list");
    assert_eq!(
        all.iter().map(|w| w.id).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------------
// 2. Relations.

#[tokio::test]
async fn the_relations_index_pages_sorts_by_id_and_filters_by_type_from_to_and_involved() {
    let b = board().await;
    for i in 0..5 {
        b.create(&SeedWp::new("Task", &format!("t{i}")));
    }
    let r1 = b.relate(1, 2, "blocks");
    let r2 = b.relate(3, 2, "blocked"); // stored as 2 blocks 3
    let r3 = b.relate(4, 5, "relates");
    let api = Api::agent(&b);
    let page = api.get("/api/v3/relations?pageSize=2").await;
    assert_eq!(
        (page["total"].clone(), page["count"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(ids(&page), [r1, r2]);
    let page2 = api.get("/api/v3/relations?pageSize=2&offset=2").await;
    assert_eq!(ids(&page2), [r3]);
    let desc = api
        .get(&format!(
            "/api/v3/relations?sortBy={}",
            enc(r#"[["id","desc"]]"#)
        ))
        .await;
    assert_eq!(ids(&desc), [r3, r2, r1]);
    let q = |f: Value| format!("/api/v3/relations?filters={}", enc(&f.to_string()));
    let blocks = api
        .get(&q(
            json!([{ "type": { "operator": "=", "values": ["blocks"] } }]),
        ))
        .await;
    assert_eq!(ids(&blocks), [r1, r2]);
    let to2 = api
        .get(&q(json!([{ "to": { "operator": "=", "values": ["2"] } }])))
        .await;
    assert_eq!(ids(&to2), [r1]);
    let from2 = api
        .get(&q(
            json!([{ "from": { "operator": "=", "values": ["2"] } }]),
        ))
        .await;
    assert_eq!(ids(&from2), [r2]);
    let involved = api
        .get(&q(
            json!([{ "involved": { "operator": "=", "values": ["2"] } }]),
        ))
        .await;
    assert_eq!(ids(&involved), [r1, r2]);
}

#[tokio::test]
async fn creating_or_deleting_a_relation_touches_neither_end() {
    let b = board().await;
    let a = b.create(&SeedWp::new("Task", "blocker"));
    let c = b.create(&SeedWp::new("Task", "blocked"));
    let api = Api::agent(&b);
    let before = (api.get(&wp(a)).await, api.get(&wp(c)).await);
    let (status, rel) = api
        .post(
            &format!("{}/relations", wp(a)),
            json!({ "type": "blocks", "_links": { "to": { "href": wp(c) } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rel}");
    let rid = rel["id"].as_u64().expect("id");
    let (status, _) = api
        .call(Method::DELETE, &format!("/api/v3/relations/{rid}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(b.relations().is_empty());
    // And through the handle.
    let again = b.relate(a, c, "blocks");
    assert_eq!(b.delete_relation(again).id, again);
    let after = (api.get(&wp(a)).await, api.get(&wp(c)).await);
    for (x, y) in [(&before.0, &after.0), (&before.1, &after.1)] {
        assert_eq!(x["lockVersion"], y["lockVersion"]);
        assert_eq!(x["updatedAt"], y["updatedAt"]);
    }
}

// ---------------------------------------------------------------------------------------------------
// 3. Visibility.

#[tokio::test]
async fn work_packages_of_a_project_the_agent_is_no_member_of_are_invisible_404_and_unlisted() {
    let b = board().await;
    let secret = b.add_project("secret", false);
    let hidden = b.create(&SeedWp::new("Epic", "hidden epic").project("secret"));
    let child = b.create(&SeedWp::new("Task", "visible child").parent(hidden));
    let other = b.create(&SeedWp::new("Task", "visible other"));
    b.relate(hidden, other, "blocks");
    let api = Api::agent(&b);

    let (status, body) = api.call(Method::GET, &wp(hidden), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errorIdentifier"], format!("{URN}NotFound"));
    let (status, _) = api
        .call(Method::GET, &format!("/api/v3/projects/{secret}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .patch(&wp(hidden), json!({ "lockVersion": 0, "subject": "x" }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no write either");
    let projects = api.get("/api/v3/projects").await;
    assert_eq!(projects["total"], 1);

    let all = api
        .get(&format!("/api/v3/work_packages?filters={}", enc("[]")))
        .await;
    assert_eq!(ids(&all), [child, other]);
    // The child looks parentless; its blocker's relation is not there.
    let c = api.get(&wp(child)).await;
    assert_eq!(
        c["_links"]["parent"],
        json!({ "href": null, "title": null })
    );
    assert_eq!(c["_links"]["ancestors"], json!([]));
    let rels = api.get("/api/v3/relations").await;
    assert_eq!(rels["total"], 0, "a relation needs both ends visible");
    let rels = api.get(&format!("{}/relations", wp(other))).await;
    assert_eq!(rels["total"], 0);
    // The admin sees it all.
    let admin = Api::admin(&b);
    assert_eq!(admin.get("/api/v3/relations").await["total"], 1);
    assert_eq!(
        admin.get(&wp(child)).await["_links"]["parent"]["href"],
        wp(hidden)
    );
    // Membership makes it visible.
    b.set_member(secret, AGENT_USER, true);
    assert_eq!(api.get("/api/v3/relations").await["total"], 1);
}

#[tokio::test]
async fn an_id_filter_naming_an_invisible_work_package_is_a_400_invalid_query() {
    let b = board().await;
    b.add_project("secret", false);
    let hidden = b.create(&SeedWp::new("Task", "hidden").project("secret"));
    let visible = b.create(&SeedWp::new("Task", "visible"));
    let api = Api::agent(&b);
    let filter = |ids: &[u64]| {
        let values: Vec<String> = ids.iter().map(u64::to_string).collect();
        enc(&json!([{ "id": { "operator": "=", "values": values } }]).to_string())
    };
    let (status, body) = api
        .call(
            Method::GET,
            &format!(
                "/api/v3/work_packages?filters={}",
                filter(&[visible, hidden])
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({
            "_type": "Error",
            "errorIdentifier": format!("{URN}InvalidQuery"),
            "message": "Filters Id filter has invalid values.",
        })
    );
    // So is an id that does not exist, and a parent filter naming the invisible one.
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/api/v3/work_packages?filters={}", filter(&[999])),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let parent = enc(
        &json!([{ "parent": { "operator": "=", "values": [hidden.to_string()] } }]).to_string(),
    );
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/api/v3/work_packages?filters={parent}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Filters Parent filter has invalid values.");
    let ok = api
        .get(&format!(
            "/api/v3/work_packages?filters={}",
            filter(&[visible])
        ))
        .await;
    assert_eq!(ids(&ok), [visible]);
}

#[tokio::test]
async fn relations_across_two_visible_projects_are_allowed() {
    let b = board().await;
    b.add_project("ops", true);
    let here = b.create(&SeedWp::new("Task", "here"));
    let there = b.create(&SeedWp::new("Task", "there").project("ops"));
    let api = Api::agent(&b);
    let (status, body) = api
        .post(
            &format!("{}/relations", wp(there)),
            json!({ "type": "blocks", "_links": { "to": { "href": wp(here) } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    b.board().behaviour.cross_project_relations = false;
    b.delete_relation(body["id"].as_u64().expect("id"));
    let (status, body) = api
        .post(
            &format!("{}/relations", wp(there)),
            json!({ "type": "blocks", "_links": { "to": { "href": wp(here) } } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

// ---------------------------------------------------------------------------------------------------
// 4. Workflows and forms.

const NO_TRANSITION: &str = "Status is invalid because no valid transition exists from old to new status for the current user's roles.";

#[tokio::test]
async fn a_transition_outside_the_workflow_is_a_422_on_status_and_changes_nothing() {
    let b = board().await;
    let t = b.create(&SeedWp::new("Task", "t"));
    b.forbid_transition("Task", "In testing");
    let api = Api::agent(&b);
    let (status, body) = api
        .patch(
            &wp(t),
            json!({ "lockVersion": 0, "_links": { "status": status_href(&b, "In testing") } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({
            "_type": "Error",
            "errorIdentifier": format!("{URN}PropertyConstraintViolation"),
            "message": NO_TRANSITION,
            "_embedded": { "details": { "attribute": "status" } },
        })
    );
    assert_eq!(lock(&b, t), 0);
    // Other types are not affected; allowing it again lets it through.
    let bug = b.create(&SeedWp::new("Bug", "b"));
    let (status, _) = api
        .patch(
            &wp(bug),
            json!({ "lockVersion": 0, "_links": { "status": status_href(&b, "In testing") } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    b.allow_transition("Task", "In testing");
    let (status, _) = api
        .patch(
            &wp(t),
            json!({ "lockVersion": 0, "_links": { "status": status_href(&b, "In testing") } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn several_violations_are_one_multiple_errors_with_each_reason() {
    let b = sim::start(BoardOptions {
        workflows: WorkflowPreset::StandardSeed,
        ..BoardOptions::default()
    })
    .await
    .expect("board");
    let t = b.create(&SeedWp::new("Task", "t"));
    let api = Api::agent(&b);
    let (status, body) = api
        .patch(
            &wp(t),
            json!({ "lockVersion": 0, "subject": "", "_links": { "status": status_href(&b, "In testing") } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errorIdentifier"], format!("{URN}MultipleErrors"));
    assert_eq!(
        body["message"],
        "Multiple fields violated their constraints."
    );
    let errors = body["_embedded"]["errors"].as_array().expect("errors");
    let reasons: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["_embedded"]["details"]["attribute"]
                    .as_str()
                    .unwrap_or(""),
                e["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("subject", "Subject can't be blank."),
            ("status", NO_TRANSITION)
        ]
    );
    for e in errors {
        assert_eq!(
            e["errorIdentifier"],
            format!("{URN}PropertyConstraintViolation")
        );
    }
    // A stale lockVersion wins over every validation error.
    let (status, body) = api
        .patch(&wp(t), json!({ "lockVersion": 7, "subject": "" }))
        .await;
    assert_eq!(
        (status, body["errorIdentifier"].clone()),
        (StatusCode::CONFLICT, json!(format!("{URN}UpdateConflict")))
    );
}

#[tokio::test]
async fn the_standard_seed_keeps_a_task_out_of_in_testing_and_the_form_says_so() {
    let b = board().await;
    b.use_standard_seed_workflows();
    let t = b.create(&SeedWp::new("Task", "t"));
    let api = Api::agent(&b);
    let (status, form) = api
        .post(&format!("{}/form", wp(t)), json!({ "lockVersion": 0 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{form}");
    assert_eq!(form["_type"], "Form");
    let allowed: Vec<&str> = form["_embedded"]["schema"]["status"]["_links"]["allowedValues"]
        .as_array()
        .expect("allowedValues")
        .iter()
        .map(|l| l["title"].as_str().expect("title"))
        .collect();
    assert_eq!(
        allowed,
        ["New", "In progress", "Closed", "On hold", "Rejected"]
    );
    assert_eq!(form["_links"]["commit"]["method"], "patch");
    assert_eq!(form["_embedded"]["validationErrors"], json!({}));

    // A form for a refused change answers 200 with the reason, writes nothing, offers no commit.
    let (status, form) = api
        .post(
            &format!("{}/form", wp(t)),
            json!({ "lockVersion": 0, "_links": { "status": status_href(&b, "In testing") } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        form["_embedded"]["validationErrors"]["status"]["message"],
        NO_TRANSITION
    );
    assert!(form["_links"].get("commit").is_none());
    assert_eq!(lock(&b, t), 0);
    // A stale or missing lockVersion is a 409, as for the PATCH.
    let (status, _) = api.post(&format!("{}/form", wp(t)), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The create form: the statuses a new Bug may take from New.
    let bug = b.board().type_named("Bug").expect("Bug").id;
    let (status, form) = api
        .post(
            "/api/v3/projects/demo/work_packages/form",
            json!({ "subject": "new bug", "_links": { "type": { "href": format!("/api/v3/types/{bug}") } } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{form}");
    let allowed: Vec<&str> = form["_embedded"]["schema"]["status"]["_links"]["allowedValues"]
        .as_array()
        .expect("allowedValues")
        .iter()
        .map(|l| l["title"].as_str().expect("title"))
        .collect();
    assert!(
        allowed.contains(&"In testing") && allowed.contains(&"Confirmed"),
        "{allowed:?}"
    );
    assert_eq!(
        form["_links"]["commit"]["href"],
        "/api/v3/projects/1/work_packages"
    );
    // Without a subject, the create form says why.
    let (_, form) = api
        .post(
            "/api/v3/work_packages/form",
            json!({ "_links": { "project": { "href": "/api/v3/projects/1" } } }),
        )
        .await;
    assert_eq!(
        form["_embedded"]["validationErrors"]["subject"]["message"],
        "Subject can't be blank."
    );
}

#[tokio::test]
async fn a_blocked_work_package_cannot_be_closed_whatever_the_workflow() {
    let b = board().await;
    let blocker = b.create(&SeedWp::new("Task", "blocker"));
    let blocked = b.create(&SeedWp::new("Task", "blocked"));
    b.relate(blocker, blocked, "blocks");
    let api = Api::agent(&b);
    let (status, body) = api
        .patch(
            &wp(blocked),
            json!({ "lockVersion": 0, "_links": { "status": status_href(&b, "Closed") } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["message"], NO_TRANSITION);
    let (_, form) = api
        .post(
            &format!("{}/form", wp(blocked)),
            json!({ "lockVersion": 0 }),
        )
        .await;
    let allowed = form["_embedded"]["schema"]["status"]["_links"]["allowedValues"].to_string();
    assert!(
        !allowed.contains("Closed") && !allowed.contains("Rejected"),
        "{allowed}"
    );
    b.set_status(blocker, "Closed");
    let (status, _) = api
        .patch(
            &wp(blocked),
            json!({ "lockVersion": 0, "_links": { "status": status_href(&b, "Closed") } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "once the blocker is closed");
}

// ---------------------------------------------------------------------------------------------------
// 5. Notifications.

#[tokio::test]
async fn every_write_records_its_notify_flag_which_defaults_to_true() {
    let b = board().await;
    let t = b.create(&SeedWp::new("Task", "t"));
    let api = Api::agent(&b);
    let before = b.notifications().len();
    let (s1, _) = api
        .patch(
            &format!("{}?notify=false", wp(t)),
            json!({ "lockVersion": 0, "subject": "a" }),
        )
        .await;
    let (s2, _) = api
        .patch(&wp(t), json!({ "lockVersion": 1, "subject": "b" }))
        .await;
    let (s3, _) = api
        .post(
            &format!("{}/activities?notify=false", wp(t)),
            json!({ "comment": { "raw": "hi" } }),
        )
        .await;
    let (s4, _) = api
        .post(
            &format!("{}/activities", wp(t)),
            json!({ "comment": { "raw": "hi again" } }),
        )
        .await;
    let (s5, created) = api
        .post(
            "/api/v3/projects/demo/work_packages?notify=false",
            json!({ "subject": "new" }),
        )
        .await;
    let (s6, _) = api
        .post(
            "/api/v3/work_packages?notify=0",
            json!({ "subject": "new 2", "_links": { "project": { "href": "/api/v3/projects/1" } } }),
        )
        .await;
    for s in [s1, s2, s5, s6] {
        assert!(s.is_success(), "{s}");
    }
    assert_eq!((s3, s4), (StatusCode::CREATED, StatusCode::CREATED));
    let new = created["id"].as_u64().expect("id");
    let got: Vec<(u64, u64, WriteKind, bool)> = b.notifications()[before..]
        .iter()
        .map(|n| (n.wp, n.user, n.kind, n.notify))
        .collect();
    assert_eq!(
        got,
        [
            (t, AGENT_USER, WriteKind::Update, false),
            (t, AGENT_USER, WriteKind::Update, true),
            (t, AGENT_USER, WriteKind::Comment, false),
            (t, AGENT_USER, WriteKind::Comment, true),
            (new, AGENT_USER, WriteKind::Create, false),
            (new + 1, AGENT_USER, WriteKind::Create, true),
        ],
        "only the exact text `false` turns it off"
    );
}

// ---------------------------------------------------------------------------------------------------
// 6. Comments and re-derived parents.

#[tokio::test]
async fn a_comment_moves_updated_at_but_not_lock_version() {
    let b = board().await;
    let t = b.create(&SeedWp::new("Task", "t"));
    b.set_updated_at(t, chrono::Utc::now() - chrono::Duration::hours(1));
    let api = Api::agent(&b);
    let before = api.get(&wp(t)).await;
    let (status, _) = api
        .post(
            &format!("{}/activities", wp(t)),
            json!({ "comment": { "raw": "note" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let after = api.get(&wp(t)).await;
    assert_eq!(after["lockVersion"], before["lockVersion"]);
    assert!(after["updatedAt"].as_str() > before["updatedAt"].as_str());
}

#[tokio::test]
async fn a_childs_status_change_re_derives_every_ancestor_so_a_stale_parent_write_conflicts() {
    let b = board().await;
    let epic = b.create(&SeedWp::new("Epic", "epic"));
    let story = b.create(&SeedWp::new("User story", "story").parent(epic));
    let task = b.create(&SeedWp::new("Task", "task").parent(story));
    let api = Api::agent(&b);
    let epic_before = api.get(&wp(epic)).await;
    let story_lock = lock(&b, story);
    let (status, _) = api
        .patch(
            &wp(task),
            json!({ "lockVersion": lock(&b, task), "_links": { "status": status_href(&b, "In progress") } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lock(&b, story), story_lock + 1);
    let epic_after = api.get(&wp(epic)).await;
    assert_eq!(
        epic_after["lockVersion"].as_u64(),
        epic_before["lockVersion"].as_u64().map(|l| l + 1)
    );
    assert_ne!(epic_after["updatedAt"], epic_before["updatedAt"]);
    // The client that read the Epic before touching the child now gets a 409 on the Epic.
    let (status, _) = api
        .patch(
            &wp(epic),
            json!({ "lockVersion": epic_before["lockVersion"], "subject": "renamed" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Journaled as derived, never notified, with OpenProject's journal note.
    let derived: Vec<(u64, u64)> = b
        .journal()
        .iter()
        .filter_map(|e| match e.action {
            JournalAction::Derived { child, .. } => Some((e.wp, child)),
            _ => None,
        })
        .collect();
    assert!(
        derived.ends_with(&[(epic, task), (story, task)]),
        "{derived:?}"
    );
    let n = b.notifications();
    assert!(
        n.iter()
            .any(|n| n.wp == epic && n.kind == WriteKind::Derived && !n.notify)
    );
    assert!(
        b.comments(epic).is_empty(),
        "the handle's comments leave the board's own notes out"
    );
    let acts = api.get(&format!("{}/activities", wp(epic))).await;
    assert!(acts.to_string().contains(&format!(
        "_Updated automatically by changing values within child work package #{task}_"
    )));

    // Moving the task to another parent re-derives the former ancestors too.
    let other = b.create(&SeedWp::new("User story", "other").parent(epic));
    let (story_lock, other_lock) = (lock(&b, story), lock(&b, other));
    let (status, _) = api
        .patch(
            &wp(task),
            json!({ "lockVersion": lock(&b, task), "_links": { "parent": { "href": wp(other) } } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (lock(&b, story), lock(&b, other)),
        (story_lock + 1, other_lock + 1)
    );
}

// ---------------------------------------------------------------------------------------------------
// 7. Custom field formats and schemas per project and type.

#[tokio::test]
async fn a_long_text_pod_field_is_formattable_on_the_wire_and_a_plain_string_write_clears_it() {
    let b = sim::start(BoardOptions {
        pod_field_format: CfFormat::Text,
        ..BoardOptions::default()
    })
    .await
    .expect("board");
    let t = b.create(&SeedWp::new("Task", "t").pod("pod-1"));
    let api = Api::agent(&b);
    let key = format!("customField{POD_FIELD}");
    let got = api.get(&wp(t)).await;
    assert_eq!(got[&key]["raw"], "pod-1");
    assert_eq!(got[&key]["format"], "markdown");
    assert!(got[&key]["html"].as_str().expect("html").contains("pod-1"));
    let schema = api.get("/api/v3/work_packages/schemas/1-1").await;
    assert_eq!(schema[&key]["type"], "Formattable");
    let (status, _) = api
        .patch(
            &wp(t),
            json!({ "lockVersion": 0, key.clone(): { "raw": "pod-2" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b.pod_of(t).as_deref(), Some("pod-2"));
    // A plain string, as a worker built for a string field sends: OpenProject reads
    // `fragment['raw']` from it, finds nothing, and clears the field.
    let (status, _) = api
        .patch(&wp(t), json!({ "lockVersion": 1, key.clone(): "pod-3" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b.pod_of(t), None);
}

#[tokio::test]
async fn a_pod_field_disabled_for_a_project_and_type_is_absent_and_its_writes_are_ignored() {
    let b = board().await;
    b.disable_pod_field_for(1, "Bug");
    let bug = b.create(&SeedWp::new("Bug", "b").pod("pod-1"));
    let task = b.create(&SeedWp::new("Task", "t"));
    let api = Api::agent(&b);
    let key = format!("customField{POD_FIELD}");
    let bug_type = b.board().type_named("Bug").expect("Bug").id;
    let schema = api
        .get(&format!("/api/v3/work_packages/schemas/1-{bug_type}"))
        .await;
    assert!(schema.get(&key).is_none());
    assert!(
        api.get("/api/v3/work_packages/schemas/1-1")
            .await
            .get(&key)
            .is_some()
    );
    assert!(api.get(&wp(bug)).await.get(&key).is_none());
    assert!(api.get(&wp(task)).await.get(&key).is_some());
    let (status, body) = api
        .patch(&wp(bug), json!({ "lockVersion": 0, key.clone(): "pod-2" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        b.pod_of(bug),
        None,
        "ignored, like any property the type does not have"
    );
    assert_eq!(lock(&b, bug), 0, "nothing changed");
    b.enable_pod_field_for(1, "Bug");
    assert!(api.get(&wp(bug)).await.get(&key).is_some());
}

// ---------------------------------------------------------------------------------------------------
// 8. The real work package's size and shape.

#[tokio::test]
async fn a_work_package_is_real_size_with_its_action_links_and_embedded_resources() {
    let b = board().await;
    let epic = b.create(&SeedWp::new("Epic", "epic"));
    let t = b.create(&SeedWp::new("Task", "t").parent(epic));
    let api = Api::agent(&b);
    let single = api.get(&wp(t)).await;
    let size = single.to_string().len();
    assert!(size >= 4096, "a single work package is {size} bytes");
    for link in [
        "update",
        "updateImmediately",
        "delete",
        "logTime",
        "move",
        "copy",
        "pdf",
        "atom",
        "availableRelationCandidates",
        "customFields",
        "configureForm",
        "activities",
        "attachments",
        "addAttachment",
        "fileLinks",
        "watchers",
        "addWatcher",
        "removeWatcher",
        "relations",
        "addRelation",
        "revisions",
        "timeEntries",
        "addComment",
        "previewMarkup",
    ] {
        assert!(single["_links"].get(link).is_some(), "_links.{link}");
    }
    for embedded in [
        "author",
        "project",
        "status",
        "type",
        "priority",
        "attachments",
        "relations",
        "parent",
    ] {
        assert!(
            single["_embedded"].get(embedded).is_some(),
            "_embedded.{embedded}"
        );
    }
    for property in [
        "spentTime",
        "ignoreNonWorkingDays",
        "scheduleManually",
        "percentageDone",
        "derivedPercentageDone",
    ] {
        assert!(single.get(property).is_some(), "{property}");
    }
    // In a collection: the same links and properties, no `_embedded` (no `embed_links`).
    let list = api
        .get(&format!("/api/v3/work_packages?filters={}", enc("[]")))
        .await;
    let element = &list["_embedded"]["elements"][1];
    assert!(element.get("_embedded").is_none());
    assert_eq!(
        element["_links"].as_object().map(|l| l.len()),
        single["_links"].as_object().map(|l| l.len())
    );
    assert!(list["_links"].get("createWorkPackage").is_some());
    // With `render_nulls`, unset dates come as the representer sends them.
    b.board().behaviour.render_nulls = true;
    let nulls = api.get(&wp(t)).await;
    assert_eq!(nulls["startDate"], Value::Null);
    assert!(nulls.as_object().is_some_and(|o| o.contains_key("dueDate")));
}
