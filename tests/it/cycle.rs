//! The work cycle against the bundled board over loopback: claims, Epics, Spikes, phase gates, the
//! cost of idle cycles, and many pods on one board.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{AGENT_USER, Fault, FaultRule, JournalAction};
use journeyman::task::Outcome;
use tokio_util::sync::CancellationToken;

use crate::support::pods::Fleet;

#[tokio::test]
async fn one_pod_works_the_board_in_rule_order_and_audits_each_step() {
    let f = Fleet::new().await;
    let b = &f.board;
    let record = &f.record;
    let epic = b.create(&SeedWp::new("Epic", "checkout"));
    let t1 = b.create(&SeedWp::new("Task", "cart").parent(epic));
    let t2 = b.create(&SeedWp::new("Task", "pay").parent(epic).priority("High"));
    let solo = b.create(&SeedWp::new("Feature", "standalone"));
    let bug = b.create(&SeedWp::new("Bug", "crash").priority("Low"));
    let mut w = f.pod("pod-0").await;

    let mut worked = vec![];
    for _ in 0..10 {
        let r = w.cycle().await;
        match r.worked {
            Some(wp) => worked.push(wp),
            None if r.released_epic.is_some() => {}
            None => break,
        }
    }
    assert_eq!(
        worked,
        [bug, t2, t1, solo],
        "bug, then the Epic by priority, then standalone"
    );
    assert!(record.violations().is_empty(), "{:?}", record.violations());
    for wp in [bug, t1, t2, solo] {
        assert_eq!(b.status_of(wp), "In testing");
        assert_eq!(
            b.pod_of(wp).as_deref(),
            Some("pod-0"),
            "the pod field stays set after success"
        );
        let comments = b.comments(wp);
        assert!(
            comments[0].contains("**starting** on pod `pod-0`"),
            "{comments:?}"
        );
        assert!(
            comments.last().unwrap().contains("**pushed**"),
            "{comments:?}"
        );
    }
    assert_eq!(b.pod_of(epic), None, "a finished Epic is released");
    assert_eq!(
        b.status_of(epic),
        "In progress",
        "its status is left for a human"
    );
    assert!(
        b.comments(epic)
            .iter()
            .any(|c| c.contains("every open work package below this Epic is done"))
    );
}

#[tokio::test]
async fn a_failure_files_a_spike_and_returns_the_ticket_until_the_spike_closes() {
    let f = Fleet::new().await;
    let b = &f.board;
    let record = &f.record;
    let wp = b.create(&SeedWp::new("Task", "flaky"));
    record
        .fail
        .lock()
        .unwrap()
        .insert(wp, "the agent said is_error".into());
    let mut w = f.pod("pod-0").await;

    let r = w.cycle().await;
    assert!(matches!(r.outcome, Some(Outcome::Failed { .. })), "{r:?}");
    assert_eq!(b.status_of(wp), "New", "back to the ready status");
    assert_eq!(b.pod_of(wp), None, "pod field cleared");
    assert_eq!(b.wp(wp).assignee, None);
    let spike = *b
        .board()
        .children
        .get(&wp)
        .and_then(|c| c.iter().next())
        .expect("a Spike child");
    let spike_type = b.wp(spike).type_id;
    assert_eq!(b.board().type_(spike_type).unwrap().name, "Spike");
    assert!(
        b.wp(spike).description.contains("stderr: boom"),
        "evidence in the Spike"
    );
    assert!(
        b.comments(wp)
            .last()
            .unwrap()
            .contains(&format!("Filed Spike #{spike}"))
    );

    assert_eq!(
        w.cycle().await.worked,
        None,
        "an open Spike holds the ticket"
    );
    record.fail.lock().unwrap().clear();
    b.set_status(spike, "Closed");
    assert_eq!(
        w.cycle().await.worked,
        Some(wp),
        "closing the Spike returns it to the pool"
    );
    assert_eq!(record.count(wp), 2);
}

#[tokio::test]
async fn an_idle_cycle_on_an_unchanged_board_costs_the_two_request_probe() {
    let f = Fleet::new().await;
    let b = &f.board;
    for i in 0..30 {
        b.create(&SeedWp::new("Task", &format!("held {i}")).status("On hold"));
    }
    let mut w = f.pod("pod-0").await;
    let first = w.cycle().await;
    assert!(first.full_snapshot);
    let idle = w.cycle().await;
    assert!(!idle.full_snapshot, "nothing changed: the probe is enough");
    assert_eq!(idle.requests, 2, "work packages and relations: {idle:?}");
    b.create(&SeedWp::new("Task", "new work"));
    let busy = w.cycle().await;
    assert!(busy.full_snapshot, "a change is seen by the probe");
    assert!(busy.worked.is_some());
}

#[tokio::test]
async fn a_blocker_added_or_removed_is_seen_by_the_next_cycle_though_no_work_package_changed() {
    let f = Fleet::new().await;
    let b = &f.board;
    let blocker = b.create(&SeedWp::new("Task", "blocker").status("On hold"));
    let blocked = b.create(&SeedWp::new("Task", "blocked").status("On hold"));
    let mut w = f.pod("pod-0").await;
    assert!(w.cycle().await.full_snapshot);
    let before = (b.wp(blocked).lock_version, b.wp(blocked).updated_at);
    let rel = b.relate(blocker, blocked, "blocks");
    assert_eq!(
        (b.wp(blocked).lock_version, b.wp(blocked).updated_at),
        before,
        "a relation touches neither end (API-NOTES section 13)"
    );
    assert!(
        w.cycle().await.full_snapshot,
        "the relation probe saw the new blocker"
    );
    assert!(!w.cycle().await.full_snapshot, "and nothing since");
    b.board().relations.remove(&rel);
    assert!(
        w.cycle().await.full_snapshot,
        "a removed blocker is seen too"
    );
}

#[tokio::test]
async fn the_candidates_blockers_are_read_again_right_before_the_claim() {
    use journeyman::board::{Policy, Progress, decide};
    let f = Fleet::new().await;
    let b = &f.board;
    let blocker = b.create(&SeedWp::new("Task", "blocker").status("On hold"));
    let first = b.create(&SeedWp::new("Task", "first").priority("High"));
    let second = b.create(&SeedWp::new("Task", "second"));
    let client = crate::support::client(b);
    let cfg = crate::support::pods::config(b, "pod-0", &[]);
    let resolved = journeyman::snapshot::resolve(&client, &cfg).await.unwrap();
    let catalog = resolved.catalog.clone();
    let mut reader = journeyman::snapshot::BoardReader::new(
        client,
        resolved,
        std::time::Duration::from_secs(60),
    );
    let (snap, _) = reader.snapshot().await.unwrap();
    // Between the snapshot and the claim, a human says `first` waits for the blocker.
    b.relate(blocker, first, "blocks");
    let policy = Policy::new(
        std::time::Duration::from_secs(7200),
        std::time::Duration::from_secs(1800),
        std::time::Duration::from_secs(300),
        3,
    );
    let now = chrono::Utc::now();
    let p = Progress::default();
    assert_eq!(
        decide(&snap, &catalog, "pod-0", now, &policy, &p),
        journeyman::board::Action::CheckBlockers { wp: first }
    );
    let found = reader.blockers_of(first, &snap).await.unwrap();
    assert_eq!(found.from, [blocker], "the new relation is read");
    let mut snap = (*snap).clone();
    snap.add_blockers(first, found.from, found.open_outside, found.unreadable);
    let p = Progress {
        blockers_checked: [first].into(),
        ..Progress::default()
    };
    assert_eq!(
        decide(&snap, &catalog, "pod-0", now, &policy, &p),
        journeyman::board::Action::CheckBlockers { wp: second },
        "the blocked one is passed over; the next candidate is checked in turn"
    );
}

fn edit_before_patch(b: &journeyman::harness::sim::BoardHandle, wp: u64) {
    b.inject(FaultRule {
        method: Some("PATCH".into()),
        path_contains: Some(format!("/work_packages/{wp}")),
        fault: Fault::ConcurrentEdit,
    });
}

#[tokio::test]
async fn a_lost_claim_moves_on_to_the_next_candidate_in_the_same_cycle() {
    let f = Fleet::new().await;
    let b = &f.board;
    let record = &f.record;
    let first = b.create(&SeedWp::new("Task", "first").priority("High"));
    let second = b.create(&SeedWp::new("Task", "second"));
    let mut w = f.pod("pod-0").await;
    edit_before_patch(b, first);
    let r = w.cycle().await;
    assert_eq!(r.conflicts, 1, "{r:?}");
    assert_eq!(
        r.worked,
        Some(second),
        "skipped the lost one and took the next"
    );
    assert_eq!(
        b.status_of(first),
        "New",
        "the lost work package is untouched by us"
    );
    assert_eq!(record.count(first), 0);
    assert_eq!(
        w.cycle().await.worked,
        Some(first),
        "re-decided on a fresh read next cycle"
    );
}

#[tokio::test]
async fn losing_the_only_child_after_claiming_its_epic_releases_the_epic() {
    let f = Fleet::new().await;
    let b = &f.board;
    let epic = b.create(&SeedWp::new("Epic", "e"));
    let child = b.create(&SeedWp::new("Task", "only child").parent(epic));
    let mut w = f.pod("pod-0").await;
    edit_before_patch(b, child);
    let r = w.cycle().await;
    assert_eq!((r.conflicts, r.worked), (1, None), "{r:?}");
    assert_eq!(b.pod_of(epic), None, "the Epic is not left half-owned");
    assert_eq!(b.status_of(epic), "New");
    assert!(b.comments(epic).iter().any(|c| c.contains("**released**")));
}

#[tokio::test]
async fn losing_one_child_keeps_the_epic_and_takes_its_sibling() {
    let f = Fleet::new().await;
    let b = &f.board;
    let epic = b.create(&SeedWp::new("Epic", "e"));
    let a = b.create(&SeedWp::new("Task", "a").parent(epic).priority("High"));
    let z = b.create(&SeedWp::new("Task", "z").parent(epic));
    let mut w = f.pod("pod-0").await;
    edit_before_patch(b, a);
    let r = w.cycle().await;
    assert_eq!((r.conflicts, r.worked), (1, Some(z)), "{r:?}");
    assert_eq!(
        b.pod_of(epic).as_deref(),
        Some("pod-0"),
        "the Epic stays mine"
    );
}

#[tokio::test]
async fn losing_the_epic_claim_skips_everything_under_it() {
    let f = Fleet::new().await;
    let b = &f.board;
    let epic = b.create(&SeedWp::new("Epic", "e"));
    let child = b.create(&SeedWp::new("Task", "c").parent(epic));
    let solo = b.create(&SeedWp::new("Task", "solo"));
    let mut w = f.pod("pod-0").await;
    edit_before_patch(b, epic);
    let r = w.cycle().await;
    assert_eq!((r.conflicts, r.worked), (1, Some(solo)), "{r:?}");
    assert_eq!(b.status_of(child), "New");
}

#[tokio::test]
async fn nothing_under_a_closed_phase_is_touched_until_it_opens() {
    let f = Fleet::new().await;
    let b = &f.board;
    let phase = b.create(&SeedWp::new("Phase", "phase 2"));
    let gated = b.create(&SeedWp::new("Task", "later").parent(phase));
    let mut w = f.pod("pod-0").await;
    let lv = b.wp(gated).lock_version;
    assert_eq!(w.cycle().await.worked, None);
    assert_eq!(b.wp(gated).lock_version, lv, "untouched");
    b.set_status(phase, "In progress");
    assert_eq!(w.cycle().await.worked, Some(gated));
}

#[tokio::test]
async fn shutdown_stops_claiming_at_once() {
    let f = Fleet::new().await;
    let b = &f.board;
    let wp = b.create(&SeedWp::new("Task", "t"));
    let mut w = f.pod("pod-0").await;
    let stop = CancellationToken::new();
    stop.cancel();
    let r = w
        .worker
        .cycle(&stop, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(r.worked, None);
    assert_eq!(b.status_of(wp), "New");
}

/// Seeds the 20-pod board: Epics with children, Phases, pinned tickets, bugs and blocker chains.
struct Seeded {
    epics: BTreeMap<u64, Vec<u64>>,
    phase_children: Vec<u64>,
    phases: Vec<u64>,
    pinned: BTreeMap<u64, String>,
    blocked_by: Vec<(u64, u64)>,
    work: BTreeSet<u64>,
}

fn seed_fleet(b: &journeyman::harness::sim::BoardHandle, pods: usize) -> Seeded {
    let mut f = Seeded {
        epics: BTreeMap::new(),
        phase_children: vec![],
        phases: vec![],
        pinned: BTreeMap::new(),
        blocked_by: vec![],
        work: BTreeSet::new(),
    };
    let prios = ["Low", "Normal", "High", "Immediate"];
    for e in 0..10 {
        let epic = b.create(&SeedWp::new("Epic", &format!("epic {e}")));
        let story = b.create(
            &SeedWp::new("User story", &format!("story {e}"))
                .parent(epic)
                .status("On hold"),
        );
        let mut children = vec![];
        for t in 0..8 {
            let parent = if t % 2 == 0 { epic } else { story };
            let id = b.create(
                &SeedWp::new(if t == 7 { "Bug" } else { "Task" }, &format!("e{e} t{t}"))
                    .parent(parent)
                    .priority(prios[t % 4]),
            );
            children.push(id);
        }
        f.work.extend(&children);
        f.epics.insert(epic, children);
    }
    for p in 0..2 {
        let phase = b.create(&SeedWp::new("Phase", &format!("phase {p}")));
        f.phases.push(phase);
        for t in 0..10 {
            let id = b.create(&SeedWp::new("Task", &format!("p{p} t{t}")).parent(phase));
            f.phase_children.push(id);
        }
    }
    f.work.extend(&f.phase_children);
    let mut previous = None;
    for t in 0..60 {
        let id = b.create(&SeedWp::new("Task", &format!("solo {t}")).priority(prios[t % 4]));
        f.work.insert(id);
        if t % 3 != 0
            && let Some(prev) = previous
        {
            b.relate(prev, id, "blocks");
            f.blocked_by.push((id, prev));
        }
        previous = Some(id);
    }
    for t in 0..20 {
        let id = b.create(&SeedWp::new("Bug", &format!("bug {t}")).priority(prios[t % 4]));
        f.work.insert(id);
    }
    for t in 0..20 {
        let pod = format!("pod-{}", t % pods);
        let id = b.create(&SeedWp::new("Task", &format!("pinned {t}")).pod(&pod));
        f.work.insert(id);
        f.pinned.insert(id, pod);
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_pods_execute_every_work_package_exactly_once() {
    const PODS: usize = 20;
    let f = Fleet::new().await;
    let b = &f.board;
    let record = &f.record;
    let fleet = seed_fleet(b, PODS);
    assert!(
        b.board().wps.len() >= 200,
        "a board of at least 200 work packages"
    );
    let stop = CancellationToken::new();
    let mut handles = vec![];
    for p in 0..PODS {
        let mut pod = f.pod(&format!("pod-{p}")).await;
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let never = CancellationToken::new();
            let mut conflicts = 0;
            while !stop.is_cancelled() {
                let r = pod.worker.cycle(&stop, &never).await.expect("cycle");
                conflicts += r.conflicts;
                if r.worked.is_none() {
                    // The production loop's poll timer, shortened; not a synchronisation point.
                    tokio::select! { _ = stop.cancelled() => {}, _ = tokio::time::sleep(Duration::from_millis(5)) => {} }
                }
            }
            conflicts
        }));
    }
    // A human reviewer closes finished work; a blocker counts as resolved only once closed.
    let mut closed_at: BTreeMap<u64, u64> = BTreeMap::new();
    let review = |scope: &BTreeSet<u64>, closed_at: &mut BTreeMap<u64, u64>| -> bool {
        for w in scope {
            if !closed_at.contains_key(w) && b.status_of(*w) == "In testing" {
                b.set_status(*w, "Closed");
                closed_at.insert(*w, record.tick());
            }
        }
        scope.iter().all(|w| closed_at.contains_key(w))
    };
    let outside_phase: BTreeSet<u64> = fleet
        .work
        .iter()
        .copied()
        .filter(|w| !fleet.phase_children.contains(w))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !review(&outside_phase, &mut closed_at) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; open: {:?}",
            outside_phase
                .iter()
                .filter(|w| !closed_at.contains_key(w))
                .map(|w| (w, b.status_of(*w)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let opened_at = record.tick();
    // Nothing under a closed Phase was touched by the agent user before the test opened it.
    for entry in b.journal() {
        if fleet.phase_children.contains(&entry.wp) && entry.user == AGENT_USER {
            panic!(
                "phase child #{} touched before the phase opened: {entry:?}",
                entry.wp
            );
        }
    }
    for phase in &fleet.phases {
        b.set_status(*phase, "In progress");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !review(&fleet.work, &mut closed_at) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; open: {:?}",
            fleet
                .work
                .iter()
                .filter(|w| !closed_at.contains_key(w))
                .map(|w| (w, b.status_of(*w)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    let mut conflicts = 0;
    for h in handles {
        conflicts += h.await.unwrap();
    }

    let execs = record.executions();
    assert!(record.violations().is_empty(), "{:#?}", record.violations());
    for wp in &fleet.work {
        assert_eq!(
            record.count(*wp),
            1,
            "#{wp} executed {} times",
            record.count(*wp)
        );
    }
    assert_eq!(
        execs.len(),
        fleet.work.len(),
        "nothing but work packages was executed"
    );
    let by_wp: BTreeMap<u64, _> = execs.iter().map(|e| (e.wp, e)).collect();
    for (epic, children) in &fleet.epics {
        let pods: BTreeSet<&str> = children.iter().map(|c| by_wp[c].pod.as_str()).collect();
        assert_eq!(pods.len(), 1, "Epic #{epic} was worked by {pods:?}");
    }
    for (wp, pod) in &fleet.pinned {
        assert_eq!(&by_wp[wp].pod, pod, "pinned #{wp}");
    }
    for (blocked, blocker) in &fleet.blocked_by {
        assert!(
            by_wp[blocked].start > closed_at[blocker],
            "#{blocked} ran before its blocker #{blocker} was closed"
        );
    }
    for wp in &fleet.phase_children {
        assert!(
            by_wp[wp].start > opened_at,
            "phase child #{wp} ran before the phase opened"
        );
    }
    // The journal: exactly one successful claim per work package (status -> In progress by the agent).
    let in_progress = b.board().status_named("In progress").unwrap().id;
    let mut claims: BTreeMap<u64, usize> = BTreeMap::new();
    for entry in b.journal() {
        if let JournalAction::Updated { changes, .. } = &entry.action
            && entry.user == AGENT_USER
            && changes.get("status").and_then(|s| s.as_u64()) == Some(in_progress)
        {
            *claims.entry(entry.wp).or_default() += 1;
        }
    }
    for wp in &fleet.work {
        assert_eq!(
            claims.get(wp).copied().unwrap_or(0),
            1,
            "#{wp} claimed {:?} times",
            claims.get(wp)
        );
    }
    eprintln!(
        "20 pods, {} work packages, {} executions, {conflicts} conflicts",
        fleet.work.len(),
        execs.len()
    );
}

#[tokio::test]
async fn repeated_failures_are_escalated_instead_of_retried_and_the_count_resets_after() {
    let f = Fleet::new().await;
    let (b, record) = (&f.board, &f.record);
    let wp = b.create(&SeedWp::new("Task", "cursed"));
    record
        .fail
        .lock()
        .unwrap()
        .insert(wp, "the agent said is_error".into());
    let mut w = f
        .pod_with("pod-0", &[("JOURNEYMAN_MAX_ATTEMPTS", "2")])
        .await;
    let close_spikes = |b: &journeyman::harness::sim::BoardHandle| {
        let open: Vec<u64> = b
            .board()
            .children
            .get(&wp)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for s in open {
            if b.status_of(s) != "Closed" {
                b.set_status(s, "Closed");
            }
        }
    };
    for attempt in 1..=2 {
        let r = w.cycle().await;
        assert!(
            matches!(r.outcome, Some(Outcome::Failed { .. })),
            "attempt {attempt}: {r:?}"
        );
        close_spikes(b);
    }
    assert_eq!(record.count(wp), 2);
    let r = w.cycle().await;
    assert_eq!(r.escalated, [wp], "escalated instead of claimed: {r:?}");
    assert_eq!(r.worked, None, "{r:?}");
    assert_eq!(record.count(wp), 2, "the agent did not run a third time");
    let starts = b
        .comments(wp)
        .iter()
        .filter(|c| c.contains("**starting**"))
        .count();
    assert_eq!(
        starts,
        2,
        "an escalation is never announced as a start: {:?}",
        b.comments(wp)
    );
    assert!(
        b.comments(wp)
            .last()
            .unwrap()
            .starts_with("journeyman: **escalated**"),
        "{:?}",
        b.comments(wp)
    );
    assert_eq!(b.status_of(wp), "New");
    assert_eq!(w.cycle().await.worked, None, "held by the escalation Spike");
    close_spikes(b);
    w.cycle().await;
    assert_eq!(
        record.count(wp),
        3,
        "a human closing the escalation Spike allows new attempts"
    );
}

#[tokio::test]
async fn an_environment_failure_releases_without_a_spike_and_pauses_the_pod() {
    let f = Fleet::new().await;
    let b = &f.board;
    let record = &f.record;
    let wp = b.create(&SeedWp::new("Task", "first").priority("High"));
    let other = b.create(&SeedWp::new("Task", "second"));
    record
        .env_fail
        .lock()
        .unwrap()
        .insert(wp, "preparing the workspace failed: cannot clone".into());
    let mut w = f.pod("pod-0").await;
    let r = w.cycle().await;
    assert_eq!(r.worked, Some(wp));
    assert_eq!(b.status_of(wp), "New", "released");
    assert_eq!(b.pod_of(wp), None);
    assert!(
        !b.board().children.contains_key(&wp),
        "no Spike: not the ticket's fault"
    );
    let last = b.comments(wp).last().unwrap().clone();
    assert!(
        last.contains("**environment problem**") && last.contains("Question for a human"),
        "{last}"
    );
    assert!(w.worker.paused().is_some());
    let r = w.cycle().await;
    assert_eq!(r.worked, None, "a paused pod claims nothing");
    assert_eq!(b.status_of(other), "New", "the pool is not burned");
}

#[tokio::test]
async fn a_claim_whose_pod_never_came_back_is_taken_over_with_a_comment() {
    let f = Fleet::new().await;
    let b = &f.board;
    let record = &f.record;
    let epic = b.create(
        &SeedWp::new("Epic", "orphaned epic")
            .status("In progress")
            .pod("pod-dead"),
    );
    let wp = b.create(
        &SeedWp::new("Task", "orphaned")
            .parent(epic)
            .status("In progress")
            .pod("pod-dead"),
    );
    let fresh = b.create(
        &SeedWp::new("Task", "alive")
            .status("In progress")
            .pod("pod-alive"),
    );
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(3);
    b.set_updated_at(wp, long_ago);
    b.set_updated_at(epic, long_ago);
    let mut w = f.pod("pod-0").await;
    let r = w.cycle().await;
    assert_eq!(r.worked, Some(wp), "{r:?}");
    assert!(record.violations().is_empty(), "{:?}", record.violations());
    let epic_comments = b.comments(epic);
    assert!(
        epic_comments
            .iter()
            .any(|c| c.contains("**took over** this Epic from pod `pod-dead`")),
        "the dead pod's Epic came along: {epic_comments:?}"
    );
    assert!(
        epic_comments
            .last()
            .is_some_and(|c| c.contains("every open work package below this Epic is done")),
        "and, its only work done, was released in the same cycle: {epic_comments:?}"
    );
    assert!(
        b.comments(wp)
            .iter()
            .any(|c| c.contains("**took over** this work package from pod `pod-dead`"))
    );
    assert_eq!(b.status_of(wp), "In testing");
    assert_eq!(
        b.pod_of(fresh).as_deref(),
        Some("pod-alive"),
        "a fresh claim is never taken"
    );
}

#[tokio::test]
async fn a_pod_pausing_after_an_environment_failure_releases_its_epic() {
    let f = Fleet::new().await;
    let b = &f.board;
    let record = &f.record;
    let epic = b.create(&SeedWp::new("Epic", "e"));
    let a = b.create(&SeedWp::new("Task", "a").parent(epic).priority("High"));
    b.create(&SeedWp::new("Task", "z").parent(epic));
    record
        .env_fail
        .lock()
        .unwrap()
        .insert(a, "preparing the workspace failed: cannot fetch".into());
    let mut sick = f.pod("pod-sick").await;
    assert_eq!(sick.cycle().await.worked, Some(a));
    assert_eq!(
        b.pod_of(epic),
        None,
        "the Epic is not held while its owner is paused"
    );
    record.env_fail.lock().unwrap().clear(); // the problem was pod-sick's environment, not the ticket
    let mut healthy = f.pod("pod-ok").await;
    assert_eq!(
        healthy.cycle().await.worked,
        Some(a),
        "another pod takes the Epic and the released ticket"
    );
    assert_eq!(b.pod_of(epic).as_deref(), Some("pod-ok"));
    assert_eq!(b.status_of(a), "In testing");
}

/// A pod that died (or whose status write failed) after the outcome's comment but before the
/// status that follows it: on its restart it finishes that write; it does not run the agent
/// again, does not count a failed attempt, does not escalate pushed work.
#[tokio::test]
async fn a_run_that_reported_its_outcome_before_the_pod_died_is_finished_not_run_again() {
    use journeyman::audit::Event;
    let f = Fleet::new().await;
    let b = &f.board;
    let starting = Event::Starting {
        pod: "pod-0".into(),
        owner: 0,
        repo: "file:///r.git".into(),
        base: "main".into(),
    };
    let pushed = b.create(
        &SeedWp::new("Task", "pushed, then the pod died")
            .status("In progress")
            .pod("pod-0"),
    );
    let failed = b.create(
        &SeedWp::new("Task", "failed, then the pod died")
            .status("In progress")
            .pod("pod-0"),
    );
    // Two failed attempts already: a third (a resume counted as a dead run) would escalate.
    let earlier = |spike| Event::Failed {
        pod: "pod-0".into(),
        reason: "x".into(),
        spike,
    };
    for (wp, last) in [
        (
            pushed,
            Event::Pushed {
                commit: "c".repeat(40),
                branch: format!("agent/{pushed}-x"),
            },
        ),
        (failed, earlier(901)),
    ] {
        for e in [&starting, &earlier(900), &starting, &last] {
            b.comment(wp, &e.render());
        }
    }
    let mut w = f.pod("pod-0").await;
    let r = w.cycle().await;
    assert_eq!(
        r.worked, None,
        "one cycle finishes both reports and runs nothing: {r:?}"
    );
    assert_eq!(b.status_of(pushed), "In testing");
    assert_eq!(
        (b.status_of(failed).as_str(), b.pod_of(failed)),
        ("New", None),
        "back to the pool: {:#?}",
        b.comments(failed)
    );
    for wp in [pushed, failed] {
        assert_eq!(f.record.count(wp), 0, "#{wp}: the agent never ran again");
        let comments = b.comments(wp);
        assert!(
            !comments
                .iter()
                .any(|c| c.contains("**resuming**") || c.contains("**escalated**")),
            "#{wp}: {comments:#?}"
        );
    }
}
