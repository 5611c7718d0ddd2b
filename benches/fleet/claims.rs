//! Section 3: claim latency and conflicts with 1, 10 and 50 pods on one board. Pods are tokio tasks
//! running the real `Worker` with a no-op executor; work arrives at a steady rate; latency is read
//! from the board's journal: the work package's `Created` entry to the agent's claim (the PATCH
//! that set it In progress).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use journeyman::cycle::Worker;
use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{AGENT_USER, BoardHandle, JournalAction, JournalEntry};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::common::{self, NoopExec, Plan, ms, percentile, thousands};

/// The production loop's poll interval, shortened; each sleep is jittered to 50..150% of it.
const POLL: Duration = Duration::from_millis(50);
/// How long to wait for the last arrivals to be claimed after arrivals stop.
const DRAIN: Duration = Duration::from_secs(10);

/// What the pods did, summed over the pods.
#[derive(Default)]
struct PodTotals {
    cycles: u64,
    full: u64,
    requests: u64,
    errors: u64,
}

impl std::ops::AddAssign for PodTotals {
    fn add_assign(&mut self, t: PodTotals) {
        self.cycles += t.cycles;
        self.full += t.full;
        self.requests += t.requests;
        self.errors += t.errors;
    }
}

pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    println!("## 3. Claim latency and conflicts, pods on one board\n");
    println!(
        "Each pod is a tokio task running `Worker::cycle` with a no-op executor (claim, starting comment, execute = nothing, pushed comment, status to In testing), polling every {} ms with 50-150% jitter when idle. The board starts with {} work packages of which none is ready; standalone Tasks then arrive at {}/s for {} s. Latency: from the board's journal entry creating a work package to the journal entry of the claim. Conflicts: 409s the board journaled for the agent user, per successful claim. All in one process on this machine (board and pods share the cores).\n",
        POLL.as_millis(),
        plan.fleet_background,
        plan.arrival_rate,
        plan.arrivals_for.as_secs(),
    );
    println!(
        "| pods | claimed | latency median | p95 | max | conflicts / claim | cycles | full reads | API requests / claim | board req/s | cycle errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &pods in &plan.pods {
        fleet(plan, pods).await?;
    }
    println!();
    Ok(())
}

async fn fleet(plan: &Plan, pods: usize) -> anyhow::Result<()> {
    let board = Arc::new(common::board(plan.fleet_background, true).await?);
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(pods);
    let mut tasks = Vec::new();
    for p in 0..pods {
        let w = journeyman::harness::bench::worker(
            board.url(),
            board.token(),
            &format!("fleet-{p}"),
            Arc::new(NoopExec),
        )
        .await?;
        tasks.push(tokio::spawn(pod(w, p, stop.clone(), ready_tx.clone())));
    }
    // Every pod has read the background board once before work arrives.
    drop(ready_tx);
    for _ in 0..pods {
        ready_rx.recv().await;
    }
    let seq0 = board.journal().len() as u64;
    let requests0 = board.requests();
    let started = Instant::now();
    let arrived = arrive(&board, plan).await;
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline && claims(&board, &arrived).len() < arrived.len() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let board_requests = board.requests() - requests0;
    stop.cancel();
    let mut totals = PodTotals::default();
    for t in tasks {
        totals += t.await?;
    }

    let journal = board.journal();
    let claimed = claims(&board, &arrived);
    let latency = latencies(&journal, &arrived, &claimed);
    let conflicts = journal
        .iter()
        .filter(|e| e.seq > seq0 && e.user == AGENT_USER)
        .filter(|e| matches!(e.action, JournalAction::Conflict { .. }))
        .count();
    let n = claimed.len().max(1) as f64;
    println!(
        "| {pods} | {}/{} | {} | {} | {} | {:.2} | {} | {} | {:.1} | {:.0} | {} |",
        claimed.len(),
        arrived.len(),
        ms(percentile(&latency, 50.0)),
        ms(percentile(&latency, 95.0)),
        ms(latency.last().copied().unwrap_or_default()),
        conflicts as f64 / n,
        thousands(totals.cycles),
        thousands(totals.full),
        totals.requests as f64 / n,
        board_requests as f64 / elapsed.as_secs_f64(),
        totals.errors,
    );
    Ok(())
}

/// One pod: cycles until `stop`, at once after a cycle that worked, else after a jittered poll
/// interval. Says on `ready` when its first cycle (the first full read) is done.
async fn pod(
    mut w: Worker<NoopExec>,
    p: usize,
    stop: CancellationToken,
    ready: tokio::sync::mpsc::Sender<()>,
) -> PodTotals {
    let never = CancellationToken::new();
    let mut rng = StdRng::seed_from_u64(p as u64);
    let mut t = PodTotals::default();
    while !stop.is_cancelled() {
        let result = w.cycle(&stop, &never).await;
        if t.cycles + t.errors == 0 {
            let _ = ready.send(()).await;
        }
        match result {
            Ok(r) => {
                t.cycles += 1;
                t.full += r.full_snapshot as u64;
                t.requests += r.requests;
                if r.worked.is_some() {
                    continue; // more work may be waiting: cycle again at once
                }
            }
            Err(_) => t.errors += 1,
        }
        let jitter = POLL.mul_f64(rng.random_range(0.5..1.5));
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(jitter) => {}
        }
    }
    t
}

/// From each arrived work package's `Created` journal entry to its claim, sorted.
fn latencies(
    journal: &[JournalEntry],
    arrived: &BTreeSet<u64>,
    claimed: &BTreeMap<u64, chrono::DateTime<chrono::Utc>>,
) -> Vec<Duration> {
    let created: BTreeMap<u64, _> = journal
        .iter()
        .filter(|e| matches!(e.action, JournalAction::Created { .. }) && arrived.contains(&e.wp))
        .map(|e| (e.wp, e.at))
        .collect();
    let mut latency: Vec<Duration> = claimed
        .iter()
        .filter_map(|(wp, at)| (*at - created[wp]).to_std().ok())
        .collect();
    latency.sort();
    latency
}

/// Creates standalone Tasks at the plan's rate; returns their ids.
async fn arrive(board: &BoardHandle, plan: &Plan) -> BTreeSet<u64> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.arrival_rate));
    let total = (plan.arrival_rate * plan.arrivals_for.as_secs_f64()).round() as usize;
    let prios = ["Low", "Normal", "High", "Immediate"];
    let mut ids = BTreeSet::new();
    for i in 0..total {
        tick.tick().await;
        ids.insert(board.create(
            &SeedWp::new("Task", &format!("arrival {i}")).priority(prios[i % prios.len()]),
        ));
    }
    ids
}

/// The first claim by the agent user (a PATCH setting In progress) of each arrived work package.
fn claims(
    board: &BoardHandle,
    arrived: &BTreeSet<u64>,
) -> BTreeMap<u64, chrono::DateTime<chrono::Utc>> {
    let b = board.board();
    let Some(in_progress) = b.status_named("In progress").map(|s| s.id) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for e in &b.journal {
        if let JournalAction::Updated { changes, .. } = &e.action
            && e.user == AGENT_USER
            && arrived.contains(&e.wp)
            && changes.get("status").and_then(|s| s.as_u64()) == Some(in_progress)
        {
            out.entry(e.wp).or_insert(e.at);
        }
    }
    out
}
