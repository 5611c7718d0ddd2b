//! The OpenProject client against the bundled board over real loopback HTTP.

use std::time::Duration;

use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{Fault, FaultRule, POD_FIELD};
use journeyman::openproject::{
    ErrorKind, Filter, NewWorkPackage, Notify, WorkPackagePatch, WorkPackageQuery,
};

use crate::support::{board, client, client_with, fast_options};

fn all() -> WorkPackageQuery {
    WorkPackageQuery::default()
}

#[tokio::test]
async fn lists_every_page_and_counts_requests() {
    let b = board().await;
    for i in 0..45 {
        b.create(&SeedWp::new("Task", &format!("task {i}")));
    }
    let mut opts = fast_options();
    opts.page_size = 20;
    let c = client_with(&b, opts);
    let before = c.stats();
    let wps = c.work_packages(&all()).await.unwrap();
    assert_eq!(wps.len(), 45);
    assert_eq!(
        wps.iter().map(|w| w.id).collect::<Vec<_>>(),
        (1..=45).collect::<Vec<_>>()
    );
    assert_eq!(
        (c.stats() - before).requests,
        3,
        "45 work packages in pages of 20 is three requests"
    );
}

#[tokio::test]
async fn explicit_empty_filters_include_closed_work_packages() {
    let b = board().await;
    b.create(&SeedWp::new("Task", "open"));
    b.create(&SeedWp::new("Task", "closed").status("Closed"));
    let c = client(&b);
    assert_eq!(
        c.work_packages(&all()).await.unwrap().len(),
        2,
        "the client always sends filters=[]"
    );
    let open = WorkPackageQuery {
        filters: vec![Filter::new("status", "o", Vec::<String>::new())],
        ..all()
    };
    let wps = c.work_packages(&open).await.unwrap();
    assert_eq!(
        wps.iter().map(|w| w.subject.as_str()).collect::<Vec<_>>(),
        ["open"]
    );
}

#[tokio::test]
async fn filters_and_sorting_select_and_order_work() {
    let b = board().await;
    let epic = b.create(&SeedWp::new("Epic", "epic"));
    b.create(&SeedWp::new("Task", "low").parent(epic).priority("Low"));
    b.create(&SeedWp::new("Bug", "urgent bug").priority("Immediate"));
    b.create(&SeedWp::new("Task", "pinned").pod("pod-1"));
    let c = client(&b);
    let bug_type = c
        .types()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "Bug")
        .unwrap()
        .id;
    let q = WorkPackageQuery {
        filters: vec![Filter::new("type", "=", [bug_type])],
        ..all()
    };
    assert_eq!(c.work_packages(&q).await.unwrap()[0].subject, "urgent bug");
    let q = WorkPackageQuery {
        filters: vec![Filter::new("parent", "=", [epic])],
        ..all()
    };
    assert_eq!(c.work_packages(&q).await.unwrap()[0].subject, "low");
    let q = WorkPackageQuery {
        filters: vec![Filter::new(
            &format!("customField{POD_FIELD}"),
            "=",
            ["pod-1"],
        )],
        ..all()
    };
    assert_eq!(c.work_packages(&q).await.unwrap()[0].subject, "pinned");
    let q = WorkPackageQuery {
        sort_by: vec![
            ("priority".into(), "desc".into()),
            ("id".into(), "asc".into()),
        ],
        ..all()
    };
    let order: Vec<String> = c
        .work_packages(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.subject)
        .collect();
    assert_eq!(order, ["urgent bug", "epic", "pinned", "low"]);
}

#[tokio::test]
async fn an_unsupported_filter_is_a_bad_request_not_retried() {
    let b = board().await;
    let c = client(&b);
    let q = WorkPackageQuery {
        filters: vec![Filter::new("nonsense", "=", ["1"])],
        ..all()
    };
    let before = b.requests();
    let e = c.work_packages(&q).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadRequest);
    assert!(e.to_string().contains("InvalidQuery"), "{e}");
    assert_eq!(b.requests() - before, 1);
}

#[tokio::test]
async fn claim_race_between_two_clients_has_exactly_one_winner() {
    let b = board().await;
    let id = b.create(&SeedWp::new("Task", "contended"));
    let (c1, c2) = (client(&b), client(&b));
    let key = c1
        .custom_field_key(1, 1, "Agent pod")
        .await
        .unwrap()
        .expect("pod field exists");
    let seen = c1.work_package(id).await.unwrap().lock_version;
    let claim = |pod: &str| WorkPackagePatch {
        lock_version: seen,
        status: Some(7),
        assignee: Some(Some(2)),
        custom_fields: vec![(key.clone(), Some(pod.to_string()))],
        ..WorkPackagePatch::default()
    };
    let (p1, p2) = (claim("pod-1"), claim("pod-2"));
    let (r1, r2) = tokio::join!(
        c1.update_work_package(id, &p1),
        c2.update_work_package(id, &p2)
    );
    let winners = [&r1, &r2].iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "exactly one claim wins: {r1:?} {r2:?}");
    let (winner_pod, loser) = match (r1, r2) {
        (Ok(_), Err(e)) => ("pod-1", e),
        (Err(e), Ok(_)) => ("pod-2", e),
        _ => unreachable!("exactly one winner was asserted above"),
    };
    assert!(loser.is_conflict(), "{loser}");
    assert_eq!(loser.identifier.as_deref(), Some("UpdateConflict"));
    assert_eq!(b.pod_of(id).as_deref(), Some(winner_pod));
    assert_eq!(
        b.wp(id).lock_version,
        seen + 1,
        "one write, one new lockVersion"
    );
}

#[tokio::test]
async fn transient_errors_on_reads_are_retried() {
    let b = board().await;
    b.create(&SeedWp::new("Task", "t"));
    let c = client(&b);
    b.inject_next(Fault::Status(503));
    b.inject_next(Fault::Status(502));
    let before = b.requests();
    assert_eq!(c.work_packages(&all()).await.unwrap().len(), 1);
    assert_eq!(b.requests() - before, 3, "two failures then a success");
    assert_eq!(c.stats().retries, 2);

    b.inject_next(Fault::Drop);
    assert_eq!(
        c.work_packages(&all()).await.unwrap().len(),
        1,
        "a dropped connection is retried"
    );
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let b = board().await;
    let c = client(&b);
    b.inject_next(Fault::RateLimited {
        retry_after_secs: 1,
    });
    let started = std::time::Instant::now();
    c.me().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}, less than Retry-After",
        started.elapsed()
    );
}

#[tokio::test]
async fn retries_stop_after_the_policy_and_name_the_endpoint() {
    let b = board().await;
    let c = client(&b);
    for _ in 0..10 {
        b.inject_next(Fault::Status(503));
    }
    let e = c.statuses().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(
        e.to_string().starts_with("GET /api/v3/statuses: 503"),
        "{e}"
    );
    assert_eq!(b.requests(), 4, "one try and three retries");
}

#[tokio::test]
async fn writes_are_never_retried_on_server_errors() {
    let b = board().await;
    let id = b.create(&SeedWp::new("Task", "t"));
    let c = client(&b);
    b.inject(FaultRule {
        method: Some("PATCH".into()),
        path_contains: None,
        fault: Fault::Status(503),
    });
    let before = b.requests();
    let e = c
        .update_work_package(
            id,
            &WorkPackagePatch {
                lock_version: 0,
                status: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(b.requests() - before, 1, "a PATCH is not retried blindly");
    assert_eq!(b.status_of(id), "New");
}

#[tokio::test]
async fn validation_errors_are_not_retried() {
    let b = board().await;
    let id = b.create(&SeedWp::new("Task", "t"));
    let c = client(&b);
    let before = b.requests();
    let e = c
        .update_work_package(
            id,
            &WorkPackagePatch {
                lock_version: 0,
                status: Some(999),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(e.status, Some(422));
    assert!(e.to_string().contains("PropertyConstraintViolation"), "{e}");
    assert_eq!(b.requests() - before, 1);
}

#[tokio::test]
async fn malformed_json_names_the_endpoint() {
    let b = board().await;
    let c = client(&b);
    b.inject_next(Fault::Malformed);
    let e = c.work_packages(&all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    let text = e.to_string();
    assert!(
        text.starts_with("GET /api/v3/work_packages: malformed response body"),
        "{text}"
    );
    assert!(text.contains("body starts with"), "{text}");
}

#[tokio::test]
async fn stalls_time_out_and_are_retried() {
    let b = board().await;
    let mut opts = fast_options();
    opts.timeout = Duration::from_millis(300);
    let c = client_with(&b, opts);
    b.inject_next(Fault::Stall(Duration::from_secs(5)));
    c.me().await.expect("the retry after the timeout succeeds");
    assert_eq!(c.stats().retries, 1);
}

#[tokio::test]
async fn auth_failures_are_typed_and_not_retried() {
    let b = board().await;
    let bad = journeyman::openproject::Client::new(
        b.url(),
        journeyman::openproject::Auth::Bearer(secrecy::SecretString::from("wrong".to_string())),
        fast_options(),
    )
    .unwrap();
    let e = bad.me().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(b.requests(), 1);
    let good = journeyman::openproject::Client::new(
        b.url(),
        journeyman::openproject::Auth::Bearer(secrecy::SecretString::from(b.token().to_string())),
        fast_options(),
    )
    .unwrap();
    assert_eq!(
        good.me().await.unwrap().name,
        "Journeyman Bot",
        "Bearer auth works too"
    );
}

#[tokio::test]
async fn missing_resources_are_not_found() {
    let b = board().await;
    let e = client(&b).work_package(404).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn read_only_users_get_forbidden_on_writes() {
    let b = board().await;
    let id = b.create(&SeedWp::new("Task", "t"));
    b.add_user("viewer", "viewer-token", false);
    let c = journeyman::openproject::Client::new(
        b.url(),
        journeyman::openproject::Auth::ApiKey(secrecy::SecretString::from(
            "viewer-token".to_string(),
        )),
        fast_options(),
    )
    .unwrap();
    let e = c
        .update_work_package(
            id,
            &WorkPackagePatch {
                lock_version: 0,
                status: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    assert_eq!(e.identifier.as_deref(), Some("MissingPermission"));
}

#[tokio::test]
async fn spikes_comments_and_reference_data() {
    let b = board().await;
    let parent = b.create(&SeedWp::new("Task", "failing work"));
    let c = client(&b);
    let me = c.me().await.unwrap();
    assert_eq!(me.id, 2);
    let statuses = c.statuses().await.unwrap();
    let closed: Vec<&str> = statuses
        .iter()
        .filter(|s| s.is_closed)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(closed, ["Closed", "Rejected"]);
    let types = c.types().await.unwrap();
    let spike = types
        .iter()
        .find(|t| t.name == "Spike")
        .expect("configured instance has Spike")
        .id;
    let prios = c.priorities().await.unwrap();
    assert_eq!(
        prios.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Low", "Normal", "High", "Immediate"]
    );
    assert_eq!(c.project("demo").await.unwrap().id, 1);

    let lv = c.work_package(parent).await.unwrap().lock_version;
    let created = c
        .create_work_package(&NewWorkPackage {
            project: 1,
            type_id: spike,
            subject: "Spike: agent failed".into(),
            description: "evidence".into(),
            parent: Some(parent),
            status: None,
            priority: None,
            notify: Notify::Human,
        })
        .await
        .unwrap();
    assert_eq!(
        created.links.parent.as_ref().and_then(|p| p.id()),
        Some(parent)
    );
    assert_eq!(created.links.type_.title.as_deref(), Some("Spike"));
    let after_child = c.work_package(parent).await.unwrap();
    assert!(
        after_child.lock_version > lv,
        "a new child re-derives the parent"
    );
    assert_eq!(after_child.links.children.len(), 1);

    let before = c.work_package(parent).await.unwrap();
    c.add_comment(parent, "**started** by pod-0", Notify::Routine)
        .await
        .unwrap();
    let after = c.work_package(parent).await.unwrap();
    assert_eq!(
        after.lock_version, before.lock_version,
        "comments do not bump lockVersion"
    );
    assert!(after.updated_at >= before.updated_at);
    let acts = c.activities(parent).await.unwrap();
    assert!(
        acts.iter()
            .any(|a| a.type_ == "Activity::Comment" && a.comment_raw() == "**started** by pod-0")
    );
}

#[tokio::test]
async fn blocks_relations_come_back_canonical() {
    let b = board().await;
    let a = b.create(&SeedWp::new("Task", "a"));
    let z = b.create(&SeedWp::new("Task", "z"));
    b.relate(z, a, "blocked");
    let rels = client(&b).blocks_relations().await.unwrap();
    assert_eq!(rels.len(), 1);
    assert_eq!(
        (
            rels[0].type_.as_str(),
            rels[0].links.from.id(),
            rels[0].links.to.id()
        ),
        ("blocks", Some(a), Some(z))
    );
}

#[tokio::test]
async fn a_patch_without_lock_version_is_a_conflict() {
    let b = board().await;
    let id = b.create(&SeedWp::new("Task", "t"));
    let resp = reqwest::Client::new()
        .patch(b.url().join(&format!("api/v3/work_packages/{id}")).unwrap())
        .basic_auth("apikey", Some(b.token()))
        .header("content-type", "application/json")
        .body(r#"{"subject": "changed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["errorIdentifier"],
        "urn:openproject-org:api:v3:errors:UpdateConflict"
    );
    assert_eq!(b.wp(id).subject, "t");
}
