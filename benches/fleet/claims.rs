//! Section 3: claim latency and conflicts with 1, 10 and 50 pods on one board, for the worker as it
//! is (delta reads, claims spread) and as it was (full reads, every pod going for the same best
//! candidate), in the same run. Pods are tokio tasks running the real `Worker` with a no-op
//! executor; work arrives at a steady rate; latency is read from the board's journal: the work
//! package's `Created` entry to the agent's claim (the PATCH that set it In progress).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use journeyman::harness::bench::{BenchPod, Mode};
use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{AGENT_USER, BoardHandle, JournalAction, JournalEntry};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::common::{self, NoopExec, Plan, compressed, ms, percentile, thousands};

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

pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Claims>> {
    println!("## 3. Claim latency and conflicts, pods on one board\n");
    println!(
        "Each pod is a tokio task running `Worker::cycle` with a no-op executor (claim, starting comment, execute = nothing, pushed comment, status to In testing), polling every {} ms with 50-150% jitter when idle. The board starts with {} work packages of which none is ready; standalone Tasks then arrive at {}/s for {} s. Latency: from the board's journal entry creating a work package to the journal entry of the claim. Conflicts: 409s the board journaled for the agent user, per successful claim. All in one process on this machine (board and pods share the cores).\n",
        POLL.as_millis(),
        plan.fleet_background,
        plan.arrival_rate,
        plan.arrivals_for.as_secs(),
    );
    println!(
        "Two ways of working, in the same run: **{}** (the worker: a full read every 30 min, time-compressed with the poll interval: {} ms here), and **{}** (the reader and decision before this change: every cycle that saw a change read the whole board; a full read every ten poll intervals; every pod decided on the same best work package).\n",
        Mode::Current.name(),
        current_refresh().as_millis(),
        Mode::Baseline.name(),
    );
    println!(
        "| worker | pods | claimed | latency median | p95 | max | conflicts / claim | cycles | full reads | API requests / claim | board req/s | cycle errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut out = Vec::new();
    for &pods in &plan.pods {
        for mode in [Mode::Baseline, Mode::Current] {
            out.push(fleet(plan, pods, mode, Arrivals::Steady).await?);
        }
    }
    println!(
        "\nThe same, with work arriving in bursts of {BURST} equal Tasks (Normal) every {} ms instead: equals are what claims spread over.\n",
        (BURST as f64 / plan.arrival_rate * 1000.0) as u64
    );
    println!(
        "| worker | pods | claimed | latency median | p95 | max | conflicts / claim | cycles | full reads | API requests / claim | board req/s | cycle errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    if let Some(&pods) = plan.pods.iter().max() {
        for mode in [Mode::Baseline, Mode::Current] {
            fleet(plan, pods, mode, Arrivals::Bursts).await?;
        }
    }
    println!();
    Ok(out)
}

/// How work arrives: one at a time at the plan's rate, priorities taking turns; or [`BURST`] equal
/// ones at a time, at the same average rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrivals {
    Steady,
    Bursts,
}

/// Work packages per burst.
const BURST: usize = 10;

/// What one run measured, for the fleet section's table.
#[derive(Debug, Clone, Copy)]
pub struct Claims {
    pub mode: Mode,
    pub pods: usize,
    pub conflicts_per_claim: f64,
    pub p50: Duration,
    pub p95: Duration,
}

/// The full-read interval of the worker, compressed like the poll interval.
fn current_refresh() -> Duration {
    compressed(journeyman::snapshot::REFRESH_EVERY, POLL)
}

async fn fleet(plan: &Plan, pods: usize, mode: Mode, arrivals: Arrivals) -> anyhow::Result<Claims> {
    let board = Arc::new(common::board(plan.fleet_background, true).await?);
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(pods);
    let mut tasks = Vec::new();
    let refresh = match mode {
        Mode::Current => current_refresh(),
        Mode::Baseline => POLL * 10,
    };
    for p in 0..pods {
        let w = journeyman::harness::bench::pod(
            board.url(),
            board.token(),
            &format!("fleet-{p}"),
            Arc::new(NoopExec),
            mode,
            refresh,
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
    let arrived = arrive(&board, plan, arrivals).await;
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
        "| {} | {pods} | {}/{} | {} | {} | {} | {:.2} | {} | {} | {:.1} | {:.0} | {} |",
        mode.name(),
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
    Ok(Claims {
        mode,
        pods,
        conflicts_per_claim: conflicts as f64 / n,
        p50: percentile(&latency, 50.0),
        p95: percentile(&latency, 95.0),
    })
}

/// One pod: cycles until `stop`, at once after a cycle that worked, else after a jittered poll
/// interval. Says on `ready` when its first cycle (the first full read) is done.
async fn pod(
    bench: BenchPod<NoopExec>,
    p: usize,
    stop: CancellationToken,
    ready: tokio::sync::mpsc::Sender<()>,
) -> PodTotals {
    let BenchPod {
        worker: mut w,
        reads,
        ..
    } = bench;
    let full_before = reads.get().2;
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
    t.full = reads.get().2 - full_before;
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

/// Creates standalone Tasks at the plan's rate, one at a time or in bursts; returns their ids.
async fn arrive(board: &BoardHandle, plan: &Plan, arrivals: Arrivals) -> BTreeSet<u64> {
    let per_tick = match arrivals {
        Arrivals::Steady => 1,
        Arrivals::Bursts => BURST,
    };
    let mut tick =
        tokio::time::interval(Duration::from_secs_f64(per_tick as f64 / plan.arrival_rate));
    let total = (plan.arrival_rate * plan.arrivals_for.as_secs_f64()).round() as usize;
    let prios = ["Low", "Normal", "High", "Immediate"];
    let mut ids = BTreeSet::new();
    for i in 0..total {
        if i % per_tick == 0 {
            tick.tick().await;
        }
        let prio = match arrivals {
            Arrivals::Steady => prios[i % prios.len()],
            Arrivals::Bursts => "Normal",
        };
        ids.insert(board.create(&SeedWp::new("Task", &format!("arrival {i}")).priority(prio)));
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
