//! Section 7: the fleet at scale. 200 pods (tokio tasks running the real `Worker`, no-op
//! executor) on a 10,000-work-package board of real-size representations, humans editing it once
//! a second and new work arriving every 30 seconds. The full plan runs in real time: compressing
//! time multiplies the load on the in-process board, and at 20x (tried) 200 pods on 10,000 work
//! packages measured only the board's queue. The quick plan (20 pods, 1,000 work packages)
//! compresses twentyfold. Measured at the default 60 s poll, then at 30 s (the target's), on the
//! same pods. Then, on the same board under the same edits, pods working as before (a full read
//! whenever the probe moved, no spread) and one naive per-work-package read: every figure is given
//! per 100 pods at the real 60 s poll, beside today's.
//!
//! The periodic full read (every 30 min) is not run inside the windows (they are shorter than its
//! interval). Its cost is measured once (one full read of the same board) and added at its real
//! rate (two per pod per hour), shown apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use journeyman::harness::bench::{self, BenchPod, Mode};
use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{AGENT_USER, BoardHandle, JournalAction, WpChange};
use journeyman::openproject::{Client, StatsSnapshot};
use journeyman::snapshot::{REFRESH_EVERY, ReadCounts};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::claims::Claims;
use crate::common::{self, NoopExec, Plan, REAL_POLL, percentile, thousands};
use crate::scale_report::{Baseline, Costs, Window, report};

/// Time runs this many times faster than in production.
static COMPRESS: AtomicU32 = AtomicU32::new(20);

/// How many times faster than in production time runs in this section (the plan's).
pub fn compress() -> u32 {
    COMPRESS.load(Ordering::Relaxed)
}

/// Pods reading their start-up snapshot at once: 200 full reads of a 10,000-work-package board
/// at once would only measure the bundled board's queue (a real fleet rolls out over minutes).
const STARTING_AT_ONCE: usize = 4;
/// A human edit every simulated second; a new work package every 30.
const EDIT_EVERY: Duration = Duration::from_secs(1);
const ARRIVE_EVERY: Duration = Duration::from_secs(30);
/// The poll intervals measured (simulated): the default, then the target's.
const POLLS: [Duration; 2] = [REAL_POLL, Duration::from_secs(30)];

pub fn real(d: Duration) -> Duration {
    d / compress()
}

/// What a set of pods did, summed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub cost: StatsSnapshot,
    pub cycles: u64,
    pub errors: u64,
    pub full: u64,
    pub changes: u64,
    pub journal: usize,
}

/// One pod's counters the measuring task reads.
#[derive(Default)]
struct Counters {
    cycles: AtomicU64,
    errors: AtomicU64,
}

struct Pods {
    clients: Vec<Client>,
    reads: Vec<Arc<ReadCounts>>,
    counters: Vec<Arc<Counters>>,
    poll: Arc<AtomicU64>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pods {
    fn tally(&self, board: &BoardHandle) -> Tally {
        let mut t = Tally {
            journal: board.journal().len(),
            ..Tally::default()
        };
        for c in &self.clients {
            let s = c.stats();
            t.cost.requests += s.requests;
            t.cost.bytes += s.bytes;
        }
        for r in &self.reads {
            let (_, changes, full) = r.get();
            t.changes += changes;
            t.full += full;
        }
        for c in &self.counters {
            t.cycles += c.cycles.load(Ordering::Relaxed);
            t.errors += c.errors.load(Ordering::Relaxed);
        }
        t
    }

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts `n` pods in `mode` polling every `poll` (real), each after its first cycle says so.
async fn start(
    board: &BoardHandle,
    n: usize,
    mode: Mode,
    name: &str,
    poll: Duration,
) -> anyhow::Result<Pods> {
    let refresh = match mode {
        // Added at its real rate instead (module docs).
        Mode::Current => Duration::from_secs(24 * 3600),
        Mode::Baseline => real(REAL_POLL * 10),
    };
    let poll = Arc::new(AtomicU64::new(poll.as_millis() as u64));
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(n.max(1));
    let starting = Arc::new(tokio::sync::Semaphore::new(STARTING_AT_ONCE));
    let mut pods = Pods {
        clients: Vec::new(),
        reads: Vec::new(),
        counters: Vec::new(),
        poll: poll.clone(),
        stop: stop.clone(),
        tasks: Vec::new(),
    };
    for p in 0..n {
        let pod = bench::pod(
            board.url(),
            board.token(),
            &format!("{name}-{p}"),
            Arc::new(NoopExec),
            mode,
            refresh,
        )
        .await?;
        let counters = Arc::new(Counters::default());
        pods.clients.push(pod.client.clone());
        pods.reads.push(pod.reads.clone());
        pods.counters.push(counters.clone());
        pods.tasks.push(tokio::spawn(run_pod(
            pod,
            p as u64,
            poll.clone(),
            stop.clone(),
            counters,
            (ready_tx.clone(), starting.clone()),
        )));
    }
    drop(ready_tx);
    for _ in 0..n {
        ready_rx.recv().await;
    }
    Ok(pods)
}

/// One pod: cycles until `stop`; again at once after a cycle that worked, else after a poll
/// interval jittered 50-150%.
async fn run_pod(
    pod: BenchPod<NoopExec>,
    seed: u64,
    poll: Arc<AtomicU64>,
    stop: CancellationToken,
    counters: Arc<Counters>,
    (ready, starting): (tokio::sync::mpsc::Sender<()>, Arc<tokio::sync::Semaphore>),
) {
    let mut w = pod.worker;
    let never = CancellationToken::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut first = true;
    while !stop.is_cancelled() {
        let permit = if first {
            starting.clone().acquire_owned().await.ok()
        } else {
            None
        };
        let result = w.cycle(&stop, &never).await;
        drop(permit);
        if std::mem::take(&mut first) {
            let _ = ready.send(()).await;
        }
        match result {
            Ok(r) => {
                counters.cycles.fetch_add(1, Ordering::Relaxed);
                if r.worked.is_some() {
                    continue;
                }
            }
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let interval = Duration::from_millis(poll.load(Ordering::Relaxed));
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(interval.mul_f64(rng.random_range(0.5..1.5))) => {}
        }
    }
}

/// The humans: an edit every [`EDIT_EVERY`] (a comment, a priority, a status between two that are
/// not ready) on held work, and a new ready Task every [`ARRIVE_EVERY`], until `stop`.
async fn humans(board: Arc<BoardHandle>, held: Vec<u64>, stop: CancellationToken) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut tick = tokio::time::interval(real(EDIT_EVERY));
    let per_arrival = (ARRIVE_EVERY.as_secs() / EDIT_EVERY.as_secs()).max(1);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        n += 1;
        if n.is_multiple_of(per_arrival) {
            board.create(&SeedWp::new("Task", &format!("arrival {n}")));
            continue;
        }
        let wp = held[rng.random_range(0..held.len())];
        let roll = rng.random_range(0..100);
        let mut b = board.board();
        let Some(w) = b.wps.get(&wp).cloned() else {
            continue;
        };
        let id_of = |b: &journeyman::harness::sim::Board, s: &str| b.status_named(s).map(|s| s.id);
        let change = match roll {
            0..60 => {
                let _ = b.comment(1, wp, "a human's remark");
                continue;
            }
            60..85 => WpChange {
                priority: b
                    .priority_named(["Low", "Normal", "High"][rng.random_range(0..3)])
                    .map(|p| p.id),
                ..WpChange::default()
            },
            _ => {
                let (hold, spec) = (id_of(&b, "On hold"), id_of(&b, "In specification"));
                WpChange {
                    status: if Some(w.status) == hold { spec } else { hold },
                    ..WpChange::default()
                }
            }
        };
        let _ = b.update(1, wp, Some(w.lock_version), change);
    }
}

/// Claims of work packages created after journal entry `from`: conflicts per claim and latency.
fn claims_since(board: &BoardHandle, from: usize, mode: Mode, pods: usize) -> Claims {
    let journal = board.journal();
    let b = board.board();
    let in_progress = b.status_named("In progress").map(|s| s.id);
    drop(b);
    let mut created = BTreeMap::new();
    let mut claimed: BTreeMap<u64, _> = BTreeMap::new();
    let mut conflicts = 0;
    for e in journal.iter().skip(from) {
        match &e.action {
            JournalAction::Created { .. } => {
                created.insert(e.wp, e.at);
            }
            JournalAction::Updated { changes, .. }
                if e.user == AGENT_USER
                    && created.contains_key(&e.wp)
                    && changes.get("status").and_then(|s| s.as_u64()) == in_progress =>
            {
                claimed.entry(e.wp).or_insert(e.at);
            }
            JournalAction::Conflict { .. } if e.user == AGENT_USER => conflicts += 1,
            _ => {}
        }
    }
    let mut latency: Vec<Duration> = claimed
        .iter()
        .filter_map(|(wp, at)| (*at - created[wp]).to_std().ok())
        .collect();
    latency.sort();
    Claims {
        mode,
        pods,
        conflicts_per_claim: conflicts as f64 / claimed.len().max(1) as f64,
        p50: percentile(&latency, 50.0),
        p95: percentile(&latency, 95.0),
    }
}

/// The work packages On hold: what the humans edit.
fn held(board: &BoardHandle) -> Vec<u64> {
    let b = board.board();
    let hold = b.status_named("On hold").map(|s| s.id);
    b.wps
        .values()
        .filter(|w| Some(w.status) == hold)
        .map(|w| w.id)
        .collect()
}

pub async fn run(
    plan: &Plan,
    section3: &[Claims],
    idle_rss: Option<(usize, u64)>,
) -> anyhow::Result<()> {
    let n = plan.scale_board;
    println!(
        "## 7. Fleet scale: {} pods on {} work packages, time compressed {}x\n",
        plan.scale_pods,
        thousands(n as u64),
        plan.scale_compress
    );
    COMPRESS.store(plan.scale_compress, Ordering::Relaxed);
    let board = Arc::new(common::board(n, true).await?);
    let held = held(&board);
    let started = Instant::now();
    let pods = start(
        &board,
        plan.scale_pods,
        Mode::Current,
        "pod",
        real(POLLS[0]),
    )
    .await?;
    let startup = started.elapsed();
    let stop_humans = CancellationToken::new();
    let humans = tokio::spawn(humans(board.clone(), held, stop_humans.clone()));

    let mut windows = Vec::new();
    for poll in POLLS {
        pods.poll
            .store(real(poll).as_millis() as u64, Ordering::Relaxed);
        // One interval at the new pace before measuring.
        tokio::time::sleep(real(poll)).await;
        let before = pods.tally(&board);
        let t = Instant::now();
        tokio::time::sleep(plan.scale_window).await;
        let after = pods.tally(&board);
        let mut w = Window::from(before, after, t.elapsed(), plan.scale_pods, poll);
        w.claims = claims_since(&board, before.journal, Mode::Current, plan.scale_pods);
        w.claimed = count_claims(&board, before.journal);
        windows.push(w);
    }
    pods.stop().await;

    // Today's strategy on the same board under the same edits: a few pods, every cycle counted.
    let baseline = baseline(&board, plan).await?;
    stop_humans.cancel();
    let _ = humans.await;
    let naive = naive(&board).await?;
    let mut reader = bench::reader_with(
        board.url(),
        board.token(),
        "pod-full",
        Mode::Current,
        REFRESH_EVERY,
    )
    .await?;
    let (_, full) = reader.snapshot().await?;
    report(
        plan,
        startup,
        &windows,
        &baseline,
        Costs {
            naive,
            full: full.cost,
        },
        section3,
        idle_rss,
    );
    Ok(())
}

fn count_claims(board: &BoardHandle, from: usize) -> usize {
    let b = board.board();
    let in_progress = b.status_named("In progress").map(|s| s.id);
    let journal = &b.journal;
    let created: BTreeSet<u64> = journal
        .iter()
        .skip(from)
        .filter(|e| matches!(e.action, JournalAction::Created { .. }))
        .map(|e| e.wp)
        .collect();
    journal
        .iter()
        .skip(from)
        .filter(|e| e.user == AGENT_USER && created.contains(&e.wp))
        .filter(|e| {
            matches!(&e.action, JournalAction::Updated { changes, .. }
                if changes.get("status").and_then(|s| s.as_u64()) == in_progress)
        })
        .map(|e| e.wp)
        .collect::<BTreeSet<_>>()
        .len()
}

async fn baseline(board: &BoardHandle, plan: &Plan) -> anyhow::Result<Baseline> {
    let n = 2;
    // Every cycle of theirs reads the board in full: what a cycle costs does not depend on the
    // interval, so they poll often enough to be measured quickly.
    let poll = real(POLLS[0]).min(Duration::from_secs(3));
    let pods = start(board, n, Mode::Baseline, "before", poll).await?;
    let before = pods.tally(board);
    while pods.tally(board).cycles - before.cycles < (plan.scale_baseline_cycles * n) as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = pods.tally(board);
    pods.stop().await;
    let cycles = (after.cycles - before.cycles).max(1);
    Ok(Baseline {
        pods: n,
        cycles,
        requests_per_cycle: (after.cost.requests - before.cost.requests) as f64 / cycles as f64,
        bytes_per_cycle: (after.cost.bytes - before.cost.bytes) as f64 / cycles as f64,
        full_share: (after.full - before.full) as f64 / cycles as f64,
    })
}

/// One naive read of the board: requests and bytes of one cycle.
async fn naive(board: &BoardHandle) -> anyhow::Result<StatsSnapshot> {
    let project = board
        .board()
        .project_by_key("demo")
        .map(|p| p.id)
        .ok_or_else(|| anyhow::anyhow!("no demo project"))?;
    let client = bench::client(board.url(), board.token())?;
    let before = client.stats();
    bench::naive_read(&client, project).await?;
    Ok(client.stats() - before)
}
