//! Section 2: the time `decide` takes, on a snapshot built directly from the synthetic board's
//! work packages (no HTTP): the open ones, their closed ancestors and the `blocks` relations, as
//! `BoardReader` would have read them.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use chrono::Utc;
use journeyman::board::{
    Action, Catalog, Item, Policy, Progress, Snapshot, decide, eligible_count,
};
use journeyman::config::BoardNames;
use journeyman::harness::sim::{Board, POD_FIELD};

use crate::common::{Plan, ms, percentile, thousands};

/// A pod that owns nothing: every rule is evaluated before one matches.
const ME: &str = "pod-bench";

pub fn run(plan: &Plan) -> anyhow::Result<()> {
    println!("## 2. `decide` time (pure, no I/O; snapshot built from generated items)\n");
    println!(
        "Pod `{ME}` owns nothing, so rules 1-3 find nothing and the eligibility of every item is computed. `eligible_count` runs once per cycle too (for the gauge). Target: `decide` under 5 ms at 10,000.\n"
    );
    println!(
        "| board | items in snapshot | eligible | action | runs | decide median | decide p95 | eligible_count median | Snapshot::new median |"
    );
    println!("|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for &(n, runs) in &plan.decide_runs {
        let mut board = Board::seeded("Phase");
        journeyman::harness::bench::synthetic_board(n, 42)
            .apply(&mut board)
            .map_err(|e| anyhow!("seeding: {e}"))?;
        let catalog = catalog(&board)?;
        let (items, blocks) = items(&board);
        let snap = Snapshot::new(items.clone(), blocks.clone());
        let policy = Policy {
            epic_stale_after: chrono::Duration::hours(2),
            claim_lease: chrono::Duration::minutes(40),
            max_attempts: 3,
            refusal_retry: chrono::Duration::hours(1),
            mention: "@journeyman".into(),
            spread: journeyman::board::policy::SPREAD,
        };
        // Every trail read and clean, every blocker read again: the decision goes all the way
        // to its claim.
        let progress = Progress {
            attempts: snap.items.keys().map(|id| (*id, 0)).collect(),
            blockers_checked: snap.items.keys().copied().collect(),
            ..Progress::default()
        };
        let now = Utc::now();
        let mut decide_t = Vec::with_capacity(runs);
        let mut count_t = Vec::with_capacity(runs);
        let mut action = Action::Sleep;
        let mut eligible = 0;
        for _ in 0..runs {
            let t = Instant::now();
            action = black_box(decide(
                black_box(&snap),
                &catalog,
                ME,
                now,
                &policy,
                &progress,
            ));
            decide_t.push(t.elapsed());
            let t = Instant::now();
            eligible = black_box(eligible_count(black_box(&snap), &catalog, ME));
            count_t.push(t.elapsed());
        }
        let builds = (runs / 10).max(5);
        let mut build_t: Vec<Duration> = (0..builds)
            .map(|_| {
                let (i, b) = (items.clone(), blocks.clone());
                let t = Instant::now();
                black_box(Snapshot::new(i, b));
                t.elapsed()
            })
            .collect();
        decide_t.sort();
        count_t.sort();
        build_t.sort();
        println!(
            "| {} WPs | {} | {} | {} | {} | {} | {} | {} | {} |",
            thousands(n as u64),
            thousands(snap.items.len() as u64),
            thousands(eligible as u64),
            describe(&action),
            runs,
            ms(percentile(&decide_t, 50.0)),
            ms(percentile(&decide_t, 95.0)),
            ms(percentile(&count_t, 50.0)),
            ms(percentile(&build_t, 50.0)),
        );
    }
    println!();
    Ok(())
}

fn describe(a: &Action) -> String {
    match a {
        Action::Claim { wp, epic, rule } => match epic {
            Some(e) => format!("claim #{wp} ({rule:?}, Epic #{e} first)"),
            None => format!("claim #{wp} ({rule:?})"),
        },
        other => format!("{other:?}"),
    }
}

/// The catalog `snapshot::resolve` would build from the default board names.
fn catalog(b: &Board) -> anyhow::Result<Catalog> {
    let names = BoardNames::default();
    let status = |n: &str| {
        b.status_named(n)
            .map(|s| s.id)
            .ok_or_else(|| anyhow!("status {n}"))
    };
    let type_ = |n: &str| {
        b.type_named(n)
            .map(|t| t.id)
            .ok_or_else(|| anyhow!("type {n}"))
    };
    let all = |names: &[String], one: &dyn Fn(&str) -> anyhow::Result<u64>| {
        names.iter().map(|n| one(n)).collect::<anyhow::Result<_>>()
    };
    Ok(Catalog {
        ready_statuses: all(&names.ready_statuses, &status)?,
        active_status: status(&names.active_status)?,
        done_status: status(&names.done_status)?,
        done_by_type: Default::default(),
        closed_statuses: b
            .statuses
            .iter()
            .filter(|s| s.is_closed)
            .map(|s| s.id)
            .collect(),
        work_types: all(&names.work_types, &type_)?,
        bug_type: type_(&names.bug_type)?,
        epic_type: type_(&names.epic_type)?,
        phase_type: type_(&names.phase_type)?,
        spike_type: type_(&names.spike_type)?,
        priority_rank: b.priorities.iter().map(|p| (p.id, p.position)).collect(),
        projects: b.projects.iter().map(|p| p.id).collect(),
    })
}

/// Open work packages plus the closed ancestors they mention, and `blocks` pairs: what a full
/// snapshot holds.
fn items(b: &Board) -> (Vec<Item>, Vec<(u64, u64)>) {
    let mut ids: HashSet<u64> = HashSet::new();
    for w in b.wps.values().filter(|w| !b.is_closed(w)) {
        ids.insert(w.id);
        ids.extend(b.ancestors(w.id));
    }
    let items = b
        .wps
        .values()
        .filter(|w| ids.contains(&w.id))
        .map(|w| Item {
            id: w.id,
            lock_version: w.lock_version,
            subject: w.subject.clone(),
            type_id: w.type_id,
            status: w.status,
            priority: w.priority,
            project: w.project,
            ancestors: b.ancestors(w.id),
            pod: w.custom.get(&POD_FIELD).cloned(),
            updated_at: w.updated_at,
        })
        .collect();
    let blocks = b
        .relations
        .values()
        .filter(|r| r.type_ == "blocks")
        .map(|r| (r.from, r.to))
        .collect();
    (items, blocks)
}
