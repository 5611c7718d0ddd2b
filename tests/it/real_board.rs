//! The worker against a bundled board configured like a real OpenProject instance (what its source
//! says the worker gets wrong, API-NOTES section 13): a lower page-size cap, blockers in projects
//! the worker does not read, role workflows that refuse a transition (422), notifications, the pod
//! field checked for every project and type, statuses an admin changes, and re-derived parents.
//! Each test fails without the worker's fix for it.

use std::time::Duration;

use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{AGENT_USER, CfFormat, WriteKind};
use journeyman::snapshot::{BoardReader, resolve};

use crate::support::client;
use crate::support::pods::{Fleet, config};

#[tokio::test]
async fn a_lower_page_size_cap_still_reads_the_whole_board_and_blocked_work_stays_unclaimed() {
    let f = Fleet::new().await;
    let b = &f.board;
    b.set_max_page_size(10);
    // 30 held tasks first, then a blocker and what it blocks: both on the fourth page of ten.
    for i in 0..30 {
        b.create(&SeedWp::new("Task", &format!("held {i}")).status("On hold"));
    }
    let blocker = b.create(&SeedWp::new("Task", "blocker").status("On hold"));
    let blocked = b.create(&SeedWp::new("Task", "blocked").priority("High"));
    b.relate(blocker, blocked, "blocks");
    let free = b.create(&SeedWp::new("Task", "free"));
    let c = client(b);
    let resolved = resolve(&c, &config(b, "pod-0", &[])).await.unwrap();
    let mut reader = BoardReader::new(c, resolved, Duration::from_secs(60));
    let (snap, fetch) = reader.snapshot().await.unwrap();
    assert_eq!(
        snap.items.len(),
        33,
        "every open work package, over four capped pages"
    );
    assert!(
        snap.blockers
            .get(&blocked)
            .is_some_and(|bs| bs.contains(&blocker))
    );
    assert!(fetch.cost.requests >= 4, "{:?}", fetch.cost);
    let mut w = f.pod("pod-0").await;
    assert_eq!(
        w.cycle().await.worked,
        Some(free),
        "the blocked one is not claimed"
    );
}

#[tokio::test]
async fn a_blocker_in_a_project_the_worker_does_not_read_blocks_until_it_closes() {
    let f = Fleet::new().await;
    let b = &f.board;
    b.add_project("ops", true);
    let blocker = b.create(&SeedWp::new("Task", "migrate the database").project("ops"));
    let blocked = b.create(&SeedWp::new("Task", "use the new schema"));
    b.relate(blocker, blocked, "blocks");
    let mut w = f.pod("pod-0").await;
    let r = w.cycle().await;
    assert_eq!(
        r.worked, None,
        "blocked by open work in another project: {r:?}"
    );
    assert!(!w.cycle().await.full_snapshot, "nothing changed");
    b.set_status(blocker, "Closed");
    let r = w.cycle().await;
    assert!(
        r.full_snapshot,
        "the probe watches the outside blocker: {r:?}"
    );
    assert_eq!(r.worked, Some(blocked), "{r:?}");
    assert_eq!(
        f.record.count(blocker),
        0,
        "never claims outside the configured projects"
    );
}

#[tokio::test]
async fn a_refused_done_status_parks_pushed_work_for_a_human_and_the_rest_of_the_board_goes_on() {
    let f = Fleet::new().await;
    let b = &f.board;
    b.use_standard_seed_workflows(); // a Task may not go to In testing
    let task = b.create(&SeedWp::new("Task", "a task").priority("High"));
    let bug = b.create(&SeedWp::new("Bug", "a bug"));
    let mut w = f.pod("pod-0").await;
    let r = w.cycle().await;
    assert_eq!(r.worked, Some(bug), "Bugs first");
    assert_eq!(b.status_of(bug), "In testing", "a Bug may");
    let r = w.cycle().await;
    assert_eq!(r.worked, Some(task));
    assert_eq!(
        b.status_of(task),
        "In progress",
        "left as it was: the board refused"
    );
    assert_eq!(
        b.pod_of(task),
        None,
        "parked: no pod resumes or takes it over"
    );
    let comments = b.comments(task);
    let refused = comments
        .iter()
        .find(|c| c.contains("was **refused** by the board"))
        .unwrap_or_else(|| panic!("{comments:?}"));
    assert!(
        refused.contains("set the status to In testing after pushing")
            && refused.contains("type Task")
            && refused.contains("JOURNEYMAN_DONE_STATUS=Task="),
        "what, which type, and the fix: {refused}"
    );
    assert!(
        !comments.iter().any(|c| c.contains("**failed**")),
        "pushed work is never reported as failed"
    );
    assert!(!b.board().children.contains_key(&task), "no Spike");
    let r = w.cycle().await;
    assert_eq!(
        r.worked, None,
        "and it is not resumed, retried or escalated: {r:?}"
    );
    assert_eq!(f.record.count(task), 1);
}

#[tokio::test]
async fn a_done_status_per_type_follows_the_types_workflow() {
    let f = Fleet::new().await;
    let b = &f.board;
    b.use_standard_seed_workflows();
    let task = b.create(&SeedWp::new("Task", "a task"));
    let mut w = f
        .pod_with(
            "pod-0",
            &[("JOURNEYMAN_DONE_STATUS", "In testing,Task=Closed")],
        )
        .await;
    w.cycle().await;
    assert_eq!(b.status_of(task), "Closed");
}

#[tokio::test]
async fn a_refused_claim_is_said_once_held_and_the_next_candidate_is_taken() {
    let f = Fleet::new().await;
    let b = &f.board;
    b.forbid_transition("Feature", "In progress");
    let feature = b.create(&SeedWp::new("Feature", "a feature").priority("High"));
    let task = b.create(&SeedWp::new("Task", "a task"));
    let mut w = f.pod("pod-0").await;
    let r = w.cycle().await;
    assert_eq!(r.worked, Some(task), "the rest of the board goes on: {r:?}");
    assert_eq!(b.status_of(feature), "New");
    let said = |b: &journeyman::harness::sim::BoardHandle| {
        b.comments(feature)
            .iter()
            .filter(|c| c.contains("was **refused** by the board: it could not claim it"))
            .count()
    };
    assert_eq!(said(b), 1, "{:?}", b.comments(feature));
    let more = b.create(&SeedWp::new("Task", "more work"));
    let r = w.cycle().await;
    assert_eq!(
        r.worked,
        Some(more),
        "the refused one is held, not tried again at once"
    );
    assert_eq!(said(b), 1, "said once");
}

#[tokio::test]
async fn routine_writes_do_not_notify_watchers_and_what_needs_a_human_does() {
    let f = Fleet::new().await;
    let b = &f.board;
    let ok = b.create(&SeedWp::new("Task", "fine"));
    let bad = b.create(&SeedWp::new("Task", "broken"));
    f.record.fail.lock().unwrap().insert(bad, "boom".into());
    let mut w = f.pod("pod-0").await;
    w.cycle().await;
    w.cycle().await;
    let mine: Vec<_> = b
        .notifications()
        .into_iter()
        .filter(|n| n.user == AGENT_USER && n.kind != WriteKind::Derived)
        .collect();
    let spike = *b.board().children.get(&bad).unwrap().iter().next().unwrap();
    for n in &mine {
        let expected = n.kind == WriteKind::Create && n.wp == spike;
        assert_eq!(n.notify, expected, "{n:?}");
    }
    assert!(mine.iter().any(|n| n.wp == ok), "the writes were recorded");
}

#[tokio::test]
async fn the_pod_field_must_be_a_string_field_for_every_project_and_type() {
    let f = Fleet::new().await;
    let b = &f.board;
    let c = client(b);
    b.disable_pod_field_for(1, "Bug");
    let e = resolve(&c, &config(b, "pod-0", &[])).await.unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("project `demo` with type `Bug`"), "{text}");
    b.enable_pod_field_for(1, "Bug");
    b.set_pod_field_format(CfFormat::Text);
    let e = resolve(&c, &config(b, "pod-0", &[])).await.unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("plain string"), "{text}");
}

#[tokio::test]
async fn a_status_an_admin_makes_closed_is_read_again_at_the_next_full_read() {
    let f = Fleet::new().await;
    let b = &f.board;
    let blocker = b.create(&SeedWp::new("Task", "waiting").status("On hold"));
    let blocked = b.create(&SeedWp::new("Task", "after it"));
    b.relate(blocker, blocked, "blocks");
    let c = client(b);
    let resolved = resolve(&c, &config(b, "pod-0", &[])).await.unwrap();
    let catalog = resolved.catalog.clone();
    let mut reader = BoardReader::new(c, resolved, Duration::ZERO);
    let (snap, _) = reader.snapshot().await.unwrap();
    let why = journeyman::board::ineligibility(
        &snap,
        &catalog,
        "pod-0",
        snap.get(blocked).unwrap(),
        &Default::default(),
    );
    assert_eq!(why, Some(journeyman::board::Ineligible::BlockedBy(blocker)));
    let on_hold = b.board().status_named("On hold").unwrap().id;
    b.board()
        .statuses
        .iter_mut()
        .find(|s| s.id == on_hold)
        .unwrap()
        .is_closed = true;
    let (snap, fetch) = reader.snapshot().await.unwrap();
    assert!(fetch.full);
    let catalog = &reader.resolved().catalog;
    assert!(
        catalog.closed_statuses.contains(&on_hold),
        "the catalogue follows the admin"
    );
    assert_eq!(
        journeyman::board::ineligibility(
            &snap,
            catalog,
            "pod-0",
            snap.get(blocked).unwrap(),
            &Default::default()
        ),
        None,
        "a closed blocker no longer blocks"
    );
}
