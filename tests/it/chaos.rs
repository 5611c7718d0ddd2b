//! Chaos: 10 real `journeyman run` processes on one bundled board with 100 work packages, 5% of API
//! requests failing (5xx and dropped connections), pods killed with SIGKILL at random and restarted
//! under the same name, and a scripted agent that fails or hangs some of the time.
//!
//! The end state is asserted from the board and the git remote only: every work package is done or
//! waits behind an open Spike; no work package was held by two pods at once; every pushed commit
//! belongs to exactly one work package and no work package has two; no outcome was reported twice.
//!
//! The seed comes from `JOURNEYMAN_CHAOS_SEED` (default 1); `scripts/chaos` runs ten seeds in a row.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{AGENT_USER, FaultConfig, JournalAction, POD_FIELD};
use nix::sys::signal::{Signal, kill};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::process::{Pod, spawn_in};
use crate::support::board;
use crate::support::git::BareRemote;

const PODS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_work_package_is_done_or_escalated_exactly_once() {
    let seed: u64 = std::env::var("JOURNEYMAN_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    eprintln!("chaos seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let b = board().await;
    let remote = BareRemote::new();

    // 5 Epics with 4 children each, 80 standalone tasks and bugs; some blockers; some agents that
    // fail (-> Spike) or hang once (-> killed by the timeout or by a SIGKILL of their pod).
    let mut work = BTreeSet::new();
    let mut failing = BTreeSet::new();
    for e in 0..5 {
        let epic = b.create(&SeedWp::new("Epic", &format!("epic {e}")));
        for c in 0..4 {
            work.insert(b.create(&SeedWp::new("Task", &format!("e{e} c{c}")).parent(epic)));
        }
    }
    let mut previous = None;
    for i in 0..80 {
        let description = match rng.random_range(0..20) {
            0 | 1 => "agent:fail",
            2 => "agent:hang-once",
            _ => "",
        };
        let kind = if i % 5 == 0 { "Bug" } else { "Task" };
        let id = b.create(&SeedWp::new(kind, &format!("chaos {i}")).description(description));
        if description == "agent:fail" {
            failing.insert(id);
        }
        if i % 7 == 3
            && let Some(p) = previous
        {
            b.relate(p, id, "blocks");
        }
        previous = Some(id);
        work.insert(id);
    }
    assert_eq!(work.len(), 100);
    b.set_faults(FaultConfig {
        error_rate: 0.04,
        drop_rate: 0.01,
        seed,
        ..FaultConfig::default()
    });

    let dirs: Vec<tempfile::TempDir> = (0..PODS).map(|_| tempfile::tempdir().unwrap()).collect();
    let env = |p: usize| {
        vec![
            ("JOURNEYMAN_POD_NAME".to_string(), format!("chaos-{p}")),
            ("JOURNEYMAN_TASK_TIMEOUT".to_string(), "3s".to_string()),
            ("JOURNEYMAN_SHUTDOWN_GRACE".to_string(), "1s".to_string()),
            ("JOURNEYMAN_LOG_FORMAT".to_string(), "json".to_string()),
            ("RUST_LOG".to_string(), "warn".to_string()),
        ]
    };
    let start = |p: usize| -> Pod {
        let e = env(p);
        let extra: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        spawn_in(&b, &remote, dirs[p].path(), &extra)
    };
    let mut pods: Vec<Pod> = (0..PODS).map(start).collect();

    // A reviewer closes finished work so blocked work can proceed; pods are killed at random.
    // Settled: every work package is closed, or waits behind an open Spike or an open blocker.
    let settled = |b: &journeyman::harness::sim::BoardHandle| {
        work.iter().all(|w| {
            let s = b.status_of(*w);
            s == "Closed" || (s == "New" && (has_open_spike(b, *w) || has_open_blocker(b, *w)))
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    let mut kills = 0;
    let mut next_kill =
        tokio::time::Instant::now() + Duration::from_millis(rng.random_range(300..1500));
    while !settled(&b) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chaos did not settle (seed {seed}): {}",
            describe(&b, &work)
        );
        for w in &work {
            if b.status_of(*w) == "In testing" {
                b.set_status(*w, "Closed");
            }
        }
        if kills < 8 && tokio::time::Instant::now() >= next_kill {
            let victim = rng.random_range(0..PODS);
            let _ = kill(pods[victim].pid(), Signal::SIGKILL);
            pods[victim].exit_code(Duration::from_secs(10)).await;
            pods[victim] = start(victim);
            kills += 1;
            next_kill =
                tokio::time::Instant::now() + Duration::from_millis(rng.random_range(300..1500));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pod in &pods {
        let _ = kill(pod.pid(), Signal::SIGTERM);
    }
    for pod in &mut pods {
        pod.exit_code(Duration::from_secs(20)).await;
    }
    b.set_faults(FaultConfig::default());

    // 1. Every work package is done, or waits behind an open Spike; failing agents always escalate.
    for w in &failing {
        assert_ne!(
            b.status_of(*w),
            "Closed",
            "#{w} asked its agent to fail but was closed"
        );
        assert!(
            has_open_spike(&b, *w) || has_open_blocker(&b, *w),
            "#{w} asked its agent to fail but has no open Spike (and was not held by a blocker)"
        );
    }
    // 2. No work package was held by two pods at once (from the board's journal of writes).
    let active = b.board().status_named("In progress").unwrap().id;
    let mut holder: BTreeMap<u64, String> = BTreeMap::new();
    for entry in b.journal() {
        let JournalAction::Updated { changes, .. } = &entry.action else {
            continue;
        };
        if entry.user != AGENT_USER || !work.contains(&entry.wp) {
            continue;
        }
        let pod_change = changes.get(&format!("customField{POD_FIELD}"));
        let status_change = changes.get("status").and_then(|s| s.as_u64());
        if status_change == Some(active) {
            let pod = pod_change
                .and_then(|p| p.as_str())
                .map(String::from)
                .unwrap_or_else(|| b.pod_of(entry.wp).unwrap_or_default());
            if let Some(other) = holder.get(&entry.wp) {
                panic!(
                    "#{} claimed by {pod} while held by {other} (seed {seed})",
                    entry.wp
                );
            }
            holder.insert(entry.wp, pod);
        } else if status_change.is_some() || pod_change.is_some_and(|p| p.is_null()) {
            holder.remove(&entry.wp);
        }
    }
    // 3. Every pushed commit belongs to exactly one work package; none has two.
    let mut commits_per_wp: BTreeMap<u64, usize> = BTreeMap::new();
    for branch in remote_branches(&remote).into_iter().filter(|b| b != "main") {
        for message in branch_only_messages(&remote, &branch) {
            let wps: Vec<&str> = message
                .lines()
                .filter(|l| l.starts_with("Work-package: #"))
                .collect();
            if message.starts_with(journeyman::workspace::STARTER_FLAKE_MESSAGE) {
                assert!(wps.is_empty(), "{message}");
                continue;
            }
            assert_eq!(
                wps.len(),
                1,
                "commit on {branch} without exactly one work package: {message}"
            );
            let id: u64 = wps[0]
                .trim_start_matches("Work-package: #")
                .trim()
                .parse()
                .unwrap();
            *commits_per_wp.entry(id).or_default() += 1;
        }
    }
    for (wp, n) in &commits_per_wp {
        assert_eq!(*n, 1, "#{wp} has {n} commits (seed {seed})");
    }
    for w in &work {
        let closed = b.status_of(*w) == "Closed";
        assert_eq!(
            commits_per_wp.contains_key(w),
            closed,
            "#{w}: closed={closed} but commits={:?}; {}; comments: {:#?}",
            commits_per_wp.get(w),
            describe(&b, &[*w].into()),
            b.comments(*w)
        );
        // 4. No outcome reported twice.
        let comments = b.comments(*w);
        let pushed = comments.iter().filter(|c| c.contains("**pushed**")).count();
        assert!(pushed <= 1, "#{w} reported pushed {pushed} times");
        let open_spikes = spikes(&b, *w)
            .into_iter()
            .filter(|s| !matches!(b.status_of(*s).as_str(), "Closed" | "Rejected"))
            .count();
        assert!(open_spikes <= 1, "#{w} has {open_spikes} open Spikes");
    }
    eprintln!(
        "chaos seed {seed}: settled with {kills} SIGKILLs, {} board requests, {} commits",
        b.requests(),
        commits_per_wp.len()
    );
}

fn spikes(b: &journeyman::harness::sim::BoardHandle, wp: u64) -> Vec<u64> {
    let board = b.board();
    let spike = board.type_named("Spike").unwrap().id;
    board
        .children
        .get(&wp)
        .into_iter()
        .flatten()
        .copied()
        .filter(|c| board.wps[c].type_id == spike)
        .collect()
}

fn has_open_spike(b: &journeyman::harness::sim::BoardHandle, wp: u64) -> bool {
    spikes(b, wp)
        .into_iter()
        .any(|s| !matches!(b.status_of(s).as_str(), "Closed" | "Rejected"))
}

fn has_open_blocker(b: &journeyman::harness::sim::BoardHandle, wp: u64) -> bool {
    let board = b.board();
    board
        .relations
        .values()
        .any(|r| r.type_ == "blocks" && r.to == wp && !board.is_closed(&board.wps[&r.from]))
}

fn describe(b: &journeyman::harness::sim::BoardHandle, work: &BTreeSet<u64>) -> String {
    work.iter()
        .filter(|w| b.status_of(**w) != "Closed")
        .map(|w| {
            let parent = b
                .wp(*w)
                .parent
                .map(|p| format!(" parent #{p} {} pod={:?}", b.status_of(p), b.pod_of(p)))
                .unwrap_or_default();
            let last = b.comments(*w).last().cloned().unwrap_or_default();
            format!(
                "#{w} {} pod={:?} spike={} blocked={}{parent} last={last:?}",
                b.status_of(*w),
                b.pod_of(*w),
                has_open_spike(b, *w),
                has_open_blocker(b, *w)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn remote_branches(remote: &BareRemote) -> Vec<String> {
    remote
        .repo
        .branches(Some(git2::BranchType::Local))
        .unwrap()
        .filter_map(|b| b.ok()?.0.name().ok()?.map(String::from))
        .collect()
}

/// Messages of the commits on `branch` that `main` does not have.
fn branch_only_messages(remote: &BareRemote, branch: &str) -> Vec<String> {
    let repo = &remote.repo;
    let mut walk = repo.revwalk().unwrap();
    walk.push(remote.head(branch).unwrap()).unwrap();
    walk.hide(remote.head("main").unwrap()).unwrap();
    walk.map(|oid| {
        repo.find_commit(oid.unwrap())
            .unwrap()
            .message()
            .unwrap_or("")
            .to_string()
    })
    .collect()
}
