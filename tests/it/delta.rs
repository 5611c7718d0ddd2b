//! Delta reads against the bundled board: a snapshot kept up to date by what changed is the one a
//! full read gives, whatever humans do (status changes, closes, reparenting, new work, deletions,
//! moves to another project, relations added and removed, comments, pods, priorities), with
//! `updatedAt` in whole seconds as OpenProject renders it and the board's clock moving by less
//! than a second, about one, or more between edits (ties, the overlap, beyond it). And at the
//! cycle level: one changed work package costs one request and about its own bytes; what closes,
//! is deleted or moves away leaves.

use std::collections::BTreeSet;
use std::time::Duration;

use journeyman::harness::sim::seed::{self, SeedWp};
use journeyman::harness::sim::{self, ADMIN_USER, Board, BoardHandle, BoardOptions, POD_FIELD};
use journeyman::harness::sim::{WpChange, state::Wp};
use journeyman::snapshot::{BoardReader, Read, Resolved, resolve};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::support::client;
use crate::support::pods::{Fleet, config};

const TYPES: [&str; 7] = [
    "Task",
    "Bug",
    "Feature",
    "User story",
    "Epic",
    "Phase",
    "Spike",
];
const STATUSES: [&str; 7] = [
    "New",
    "Specified",
    "In progress",
    "On hold",
    "In testing",
    "Closed",
    "Rejected",
];
const PRIORITIES: [&str; 4] = ["Low", "Normal", "High", "Immediate"];
/// `demo` is configured; `ops` is visible to the agent but not configured.
const PROJECTS: [&str; 2] = ["demo", "ops"];
const PODS: [Option<&str>; 3] = [None, Some("pod-0"), Some("pod-1")];

/// One work package of the starting board: type, status, priority, project, pod, parent.
type Spec = (usize, usize, usize, usize, usize, Option<Index>);

/// A human's edit, naming work packages by index into those that exist when it is applied.
#[derive(Debug, Clone)]
enum Edit {
    Status(Index, usize),
    Parent(Index, Option<Index>),
    Create(Spec),
    Delete(Index),
    Move(Index, usize),
    Relate(Index, Index),
    Unrelate(Index),
    Comment(Index),
    Pod(Index, usize),
    Priority(Index, usize),
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..TYPES.len(),
        0..STATUSES.len(),
        0..PRIORITIES.len(),
        prop::sample::select(vec![0usize, 0, 0, 1]),
        0..PODS.len(),
        prop::option::weighted(0.5, any::<Index>()),
    )
}

fn edit() -> impl Strategy<Value = Edit> {
    let i = any::<Index>;
    prop_oneof![
        3 => (i(), 0..STATUSES.len()).prop_map(|(w, s)| Edit::Status(w, s)),
        2 => (i(), prop::option::weighted(0.7, i())).prop_map(|(w, p)| Edit::Parent(w, p)),
        2 => spec().prop_map(Edit::Create),
        1 => i().prop_map(Edit::Delete),
        1 => (i(), 0..PROJECTS.len()).prop_map(|(w, p)| Edit::Move(w, p)),
        2 => (i(), i()).prop_map(|(a, b)| Edit::Relate(a, b)),
        1 => i().prop_map(Edit::Unrelate),
        2 => i().prop_map(Edit::Comment),
        1 => (i(), 0..PODS.len()).prop_map(|(w, p)| Edit::Pod(w, p)),
        1 => (i(), 0..PRIORITIES.len()).prop_map(|(w, p)| Edit::Priority(w, p)),
    ]
}

/// A round: edits, each after the board's clock moved by 0-2.5 s.
fn rounds() -> impl Strategy<Value = Vec<Vec<(u16, Edit)>>> {
    prop::collection::vec(prop::collection::vec((0u16..2500, edit()), 1..6), 1..7)
}

/// The `n`-th existing work package, if any.
fn pick(b: &Board, i: &Index) -> Option<u64> {
    let ids: Vec<u64> = b.wps.keys().copied().collect();
    (!ids.is_empty()).then(|| ids[i.index(ids.len())])
}

fn create(b: &mut Board, (t, s, p, project, pod, parent): &Spec) {
    let mut wp = SeedWp::new(TYPES[*t], "generated")
        .status(STATUSES[*s])
        .priority(PRIORITIES[*p])
        .project(PROJECTS[*project]);
    wp.pod = PODS[*pod].map(String::from);
    wp.parent = parent.as_ref().and_then(|i| pick(b, i));
    let _ = seed::create(b, &wp);
}

/// Applies an edit as a human would; edits the board refuses (a cycle, a closed work package
/// with an open blocker, a duplicate relation) are simply not made.
fn apply(b: &mut Board, edit: &Edit) {
    let update = |b: &mut Board, id: u64, change: WpChange| {
        let lv = b.wps[&id].lock_version;
        let _ = b.update(ADMIN_USER, id, Some(lv), change);
    };
    match edit {
        Edit::Status(w, s) => {
            if let (Some(id), Some(status)) = (pick(b, w), b.status_named(STATUSES[*s])) {
                let change = WpChange {
                    status: Some(status.id),
                    ..WpChange::default()
                };
                update(b, id, change);
            }
        }
        Edit::Parent(w, p) => {
            if let Some(id) = pick(b, w) {
                let parent = p.as_ref().and_then(|p| pick(b, p));
                let change = WpChange {
                    parent: Some(parent),
                    ..WpChange::default()
                };
                update(b, id, change);
            }
        }
        Edit::Create(spec) => create(b, spec),
        Edit::Delete(w) => {
            if let Some(id) = pick(b, w) {
                let _ = b.delete(ADMIN_USER, id);
            }
        }
        Edit::Move(w, p) => {
            let project = b.project_by_key(PROJECTS[*p]).map(|p| p.id);
            if let (Some(id), Some(project)) = (pick(b, w), project) {
                let _ = b.move_to_project(ADMIN_USER, id, project);
            }
        }
        Edit::Relate(a, c) => {
            if let (Some(from), Some(to)) = (pick(b, a), pick(b, c)) {
                let _ = b.relate(ADMIN_USER, from, to, "blocks", None, None);
            }
        }
        Edit::Unrelate(r) => {
            let ids: Vec<u64> = b.relations.keys().copied().collect();
            if !ids.is_empty() {
                let _ = b.unrelate(ADMIN_USER, ids[r.index(ids.len())]);
            }
        }
        Edit::Comment(w) => {
            if let Some(id) = pick(b, w) {
                let _ = b.comment(ADMIN_USER, id, "a human's remark");
            }
        }
        Edit::Pod(w, p) => {
            if let Some(id) = pick(b, w) {
                let mut change = WpChange::default();
                change.custom.insert(POD_FIELD, PODS[*p].map(String::from));
                update(b, id, change);
            }
        }
        Edit::Priority(w, p) => {
            if let (Some(id), Some(prio)) = (pick(b, w), b.priority_named(PRIORITIES[*p])) {
                let change = WpChange {
                    priority: Some(prio.id),
                    ..WpChange::default()
                };
                update(b, id, change);
            }
        }
    }
}

/// What the reader's probe sees, computed from the board's own state: the open work packages of
/// `demo` (count, newest as rendered in whole seconds), the `blocks` relations (count, newest
/// id), and the outside blockers the snapshot watches. A round that leaves it unchanged is one the
/// probe cannot see (a change to a closed work package alone: documented in `snapshot/probe.rs`).
/// Count and newest (id, lockVersion, whole second) of a list.
type Newest = (usize, Option<(u64, u64, i64)>);
type View = (Newest, usize, Option<u64>, Newest, bool);

fn probe_view(b: &Board, external: &BTreeSet<u64>) -> View {
    let demo = b.project_by_key("demo").map(|p| p.id);
    let latest = |wps: Vec<&Wp>| -> Newest {
        let newest = wps.iter().max_by_key(|w| (w.updated_at, w.id));
        (
            wps.len(),
            newest.map(|w| (w.id, w.lock_version, w.updated_at.timestamp())),
        )
    };
    let open = |w: &&Wp| !b.is_closed(w);
    let core = latest(
        b.wps
            .values()
            .filter(|w| Some(w.project) == demo)
            .filter(open)
            .collect(),
    );
    let blocks: Vec<u64> = b
        .relations
        .values()
        .filter(|r| r.type_ == "blocks")
        .map(|r| r.id)
        .collect();
    let outside = latest(
        external
            .iter()
            .filter_map(|id| b.wps.get(id))
            .filter(open)
            .collect(),
    );
    // A watched blocker deleted makes the probe's `id` filter a 400: "changed".
    let gone = external.iter().any(|id| !b.wps.contains_key(id));
    (
        core,
        blocks.len(),
        blocks.iter().max().copied(),
        outside,
        gone,
    )
}

async fn readers(b: &BoardHandle) -> (BoardReader, BoardReader) {
    let c = client(b);
    let resolved: Resolved = resolve(&c, &config(b, "pod-0", &[])).await.unwrap();
    let hour = Duration::from_secs(3600);
    (
        BoardReader::new(c, resolved.clone(), hour),
        BoardReader::new(client(b), resolved, hour),
    )
}

async fn board_of(specs: &[Spec], relations: &[(Index, Index)]) -> BoardHandle {
    let opts = BoardOptions {
        whole_seconds: true,
        ..BoardOptions::default()
    };
    let b = sim::start(opts).await.unwrap();
    b.add_project("ops", true);
    let mut board = b.board();
    for spec in specs {
        create(&mut board, spec);
    }
    for (from, to) in relations {
        apply(&mut board, &Edit::Relate(*from, *to));
    }
    drop(board);
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_snapshot_kept_up_by_its_changes_is_the_one_a_full_read_gives(
        specs in prop::collection::vec(spec(), 1..25),
        relations in prop::collection::vec((any::<Index>(), any::<Index>()), 0..8),
        rounds in rounds(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let b = board_of(&specs, &relations).await;
            let (mut reader, full) = readers(&b).await;
            let (snap, fetch) = reader.snapshot().await.unwrap();
            prop_assert_eq!(fetch.read, Read::Full);
            let mut external = snap.external_blockers.clone();
            let mut seen = probe_view(&b.board(), &external);
            let mut deleted = false;
            for round in &rounds {
                for (ms, edit) in round {
                    b.advance_clock(chrono::Duration::milliseconds(i64::from(*ms)));
                    deleted |= matches!(edit, Edit::Delete(_));
                    apply(&mut b.board(), edit);
                }
                let view = probe_view(&b.board(), &external);
                let (snap, fetch) = reader.snapshot().await.unwrap();
                if view == seen {
                    // Nothing the probe sees: the cached snapshot, and the next read catches up.
                    prop_assert_eq!(fetch.read, Read::Cached, "after {:?}", round);
                    continue;
                }
                // Only a deletion needs a full read (it leaves no trace in a delta), and a board
                // that had nothing open gets one (nothing to date a delta by; it costs little).
                if !deleted && seen.0.0 > 0 {
                    prop_assert_eq!(fetch.read, Read::Changes, "after {:?}", round);
                }
                let expected = full.full().await.unwrap();
                prop_assert_eq!(&*snap, &expected, "after {:?}", round);
                external = snap.external_blockers.clone();
                seen = probe_view(&b.board(), &external);
                deleted = false;
            }
            Ok(())
        })?;
    }
}

/// `n` held tasks (On hold: not claimable), their `updatedAt` spread over the past hour, so that
/// what changes now stands out.
fn held_tasks(b: &BoardHandle, n: usize) -> Vec<u64> {
    let ids: Vec<u64> = (0..n)
        .map(|i| b.create(&SeedWp::new("Task", &format!("held {i}")).status("On hold")))
        .collect();
    let hour_ago = b.board().now() - chrono::Duration::hours(1);
    for (i, id) in ids.iter().enumerate() {
        b.set_updated_at(*id, hour_ago - chrono::Duration::seconds(i as i64));
    }
    ids
}

#[tokio::test]
async fn a_cycle_after_one_changed_work_package_reads_only_it() {
    let f = Fleet::new().await;
    let b = &f.board;
    let held = held_tasks(b, 200);
    let mut w = f.pod("pod-0").await;
    let (mut reader, fresh) = readers(b).await;
    assert!(w.cycle().await.full_snapshot);
    let (_, full) = reader.snapshot().await.unwrap();
    assert_eq!(full.read, Read::Full);
    let per_wp = full.cost.bytes / 200;
    // One change, then a minute later another: the probe's page of the newest holds it and, as
    // the overlap, the one seen last (the newest seen is always in the window: its second,
    // inclusive), and one older: the delta needs no request of its own.
    for (minutes, wp) in [(0, held[17]), (1, held[150])] {
        b.advance_clock(chrono::Duration::minutes(minutes));
        b.comment(wp, "a human's remark");
        let r = w.cycle().await;
        assert_eq!(
            (r.requests, r.worked),
            (2, None),
            "the probe (2) holds the change: {r:?}"
        );
        let (snap, fetch) = reader.snapshot().await.unwrap();
        assert_eq!(fetch.read, Read::Changes);
        assert_eq!(fetch.cost.requests, 2);
        assert_eq!(
            snap.items[&wp].updated_at.timestamp(),
            b.wp(wp).updated_at.timestamp()
        );
    }
    let (_, idle) = reader.snapshot().await.unwrap();
    assert_eq!((idle.read, idle.cost.requests), (Read::Cached, 2));
    b.advance_clock(chrono::Duration::minutes(1));
    b.comment(held[99], "one more");
    let (_, changed) = reader.snapshot().await.unwrap();
    assert_eq!(changed.cost.requests, 2);
    assert!(
        idle.cost.bytes < 4 * per_wp && changed.cost.bytes < 5 * per_wp,
        "an idle probe is about three work packages ({} bytes), one with a change about four ({}; one is about {per_wp}), a full read {}",
        idle.cost.bytes,
        changed.cost.bytes,
        full.cost.bytes
    );

    // A burst larger than the probe's page: the delta reads it (one more request), and the next
    // probe's page is large enough for a burst as large.
    b.advance_clock(chrono::Duration::minutes(1));
    for wp in &held[20..30] {
        b.comment(*wp, "a burst");
    }
    let (snap, burst) = reader.snapshot().await.unwrap();
    assert_eq!((burst.read, burst.cost.requests), (Read::Changes, 3));
    assert_eq!(*snap, fresh.full().await.unwrap());
    // The next bursts as large: within a few, the page has grown to hold one (and the overlap).
    let mut requests = Vec::new();
    for burst in 1..=4 {
        b.advance_clock(chrono::Duration::minutes(1));
        for wp in &held[20 + 10 * burst..30 + 10 * burst] {
            b.comment(*wp, "another burst");
        }
        let (snap, fetch) = reader.snapshot().await.unwrap();
        assert_eq!(fetch.read, Read::Changes);
        assert_eq!(*snap, fresh.full().await.unwrap());
        requests.push(fetch.cost.requests);
    }
    assert!(
        requests.iter().all(|r| *r <= 3) && requests.last() == Some(&2),
        "a burst costs the delta's request until the page holds one: {requests:?}"
    );
}

#[tokio::test]
async fn a_closed_ancestor_in_the_snapshot_makes_the_delta_read_its_own_page() {
    let f = Fleet::new().await;
    let b = &f.board;
    let held = held_tasks(b, 10);
    let epic = b.create(&SeedWp::new("Epic", "done already").status("Closed"));
    b.set_parent(held[3], Some(epic));
    let (mut reader, full) = readers(b).await;
    let (snap, _) = reader.snapshot().await.unwrap();
    assert!(
        snap.items.contains_key(&epic),
        "the closed ancestor is held"
    );
    b.advance_clock(chrono::Duration::minutes(1));
    b.set_pod(epic, Some("pod-9"));
    b.comment(held[5], "a remark");
    let (snap, fetch) = reader.snapshot().await.unwrap();
    assert_eq!(
        (fetch.read, fetch.cost.requests),
        (Read::Changes, 3),
        "the probe cannot see the closed Epic: the delta reads every status"
    );
    assert_eq!(*snap, full.full().await.unwrap());
    assert_eq!(snap.items[&epic].pod.as_deref(), Some("pod-9"));
}

#[tokio::test]
async fn an_update_in_the_same_second_as_the_newest_seen_is_not_lost() {
    let opts = BoardOptions {
        whole_seconds: true,
        ..BoardOptions::default()
    };
    let b = sim::start(opts).await.unwrap();
    let held = held_tasks(&b, 5);
    let (mut reader, full) = readers(&b).await;
    b.comment(held[0], "first");
    reader.snapshot().await.unwrap();
    // Rendered in the same whole second as the comment just read, with the same lockVersion.
    b.comment(held[1], "second");
    b.set_status(held[2], "New");
    let (snap, fetch) = reader.snapshot().await.unwrap();
    assert_eq!(fetch.read, Read::Changes);
    assert_eq!(*snap, full.full().await.unwrap());
    assert_eq!(snap.items[&held[2]].status, b.wp(held[2]).status);
}

#[tokio::test]
async fn closed_moved_and_deleted_work_leaves_the_snapshot_and_is_never_claimed() {
    let f = Fleet::new().await;
    let b = &f.board;
    b.add_project("ops", true);
    let gate = b.create(&SeedWp::new("Task", "migrate first").status("On hold"));
    let [closed, moved, deleted, last] =
        ["closed", "moved", "deleted", "left"].map(|s| b.create(&SeedWp::new("Task", s)));
    for wp in [closed, moved, deleted, last] {
        b.relate(gate, wp, "blocks");
    }
    let mut w = f.pod("pod-0").await;
    let (mut reader, _) = readers(b).await;
    let first = w.cycle().await;
    assert_eq!((first.eligible, first.worked), (0, None), "all blocked");
    reader.snapshot().await.unwrap();

    b.set_status(closed, "Closed");
    b.move_to_project(moved, "ops");
    let (snap, fetch) = reader.snapshot().await.unwrap();
    assert_eq!(fetch.read, Read::Changes);
    assert!(!snap.items.contains_key(&closed) && !snap.items.contains_key(&moved));
    b.delete_wp(deleted);
    let (snap, fetch) = reader.snapshot().await.unwrap();
    assert_eq!(
        fetch.read,
        Read::Full,
        "a deletion is found by the count, and read in full"
    );
    assert!(!snap.items.contains_key(&deleted));

    b.set_status(gate, "Closed");
    let r = w.cycle().await;
    assert_eq!(
        (r.eligible, r.worked),
        (1, Some(last)),
        "only the one left: {r:?}"
    );
    for wp in [closed, moved, deleted] {
        assert_eq!(f.record.count(wp), 0, "#{wp} never claimed");
    }
}

#[tokio::test]
async fn a_blocker_added_reads_only_the_new_relation_and_a_removed_one_reads_them_again() {
    let f = Fleet::new().await;
    let b = &f.board;
    let held = held_tasks(b, 60);
    for pair in held.chunks(2).take(25) {
        b.relate(pair[0], pair[1], "blocks");
    }
    let (mut reader, full) = readers(b).await;
    reader.snapshot().await.unwrap();
    let (_, idle) = reader.snapshot().await.unwrap();
    let rel = b.relate(held[55], held[56], "blocks");
    let (snap, added) = reader.snapshot().await.unwrap();
    assert_eq!(added.read, Read::Changes);
    assert_eq!(
        added.cost.requests, 3,
        "the probe (its page shows no work package changed) and the new relation"
    );
    assert!(snap.blockers[&held[56]].contains(&held[55]));
    b.delete_relation(rel);
    let (snap, removed) = reader.snapshot().await.unwrap();
    assert_eq!(*snap, full.full().await.unwrap());
    // The same probe and delta either way; then a page of two relations against all 25 again
    // (a relation is about 400 bytes).
    assert!(
        removed.cost.bytes > added.cost.bytes + 20 * 300,
        "the new relation ({:?}) against all 25 again ({:?}), idle {:?}",
        added.cost,
        removed.cost,
        idle.cost
    );
}
