//! What every section shares: the plan (full or quick), boards, a no-op executor, statistics and
//! formatting.

use std::time::Duration;

use anyhow::anyhow;
use journeyman::audit::Audit;
use journeyman::harness::sim::{self, BoardHandle, BoardOptions};
use journeyman::task::{Execute, Outcome, Task};
use tokio_util::sync::CancellationToken;

/// How much to measure: the full run, or `JOURNEYMAN_BENCH_QUICK=1` for a smoke run.
pub struct Plan {
    pub quick: bool,
    /// Board sizes for request costs (section 1).
    pub cost_sizes: Vec<usize>,
    /// Board sizes and runs for `decide` (section 2).
    pub decide_runs: Vec<(usize, usize)>,
    /// Pod counts for the fleet (section 3).
    pub pods: Vec<usize>,
    /// How long work arrives, and how fast (work packages per second).
    pub arrivals_for: Duration,
    pub arrival_rate: f64,
    /// Work packages already on the fleet's board (none of them ready).
    pub fleet_background: usize,
    /// Board sizes for the idle worker's memory (section 4b).
    pub idle_sizes: Vec<usize>,
    /// Board sizes and window per measurement for the board's throughput (section 5).
    pub throughput_boards: Vec<usize>,
    pub throughput_window: Duration,
    pub concurrency: Vec<usize>,
    /// Cold and warm entries into the Nix dev shell (section 6).
    pub nix_cold: usize,
    pub nix_warm: usize,
    /// The fleet at scale (section 6): pods, board size, how long each poll interval is
    /// measured, and how many pods read as before.
    pub scale_pods: usize,
    pub scale_board: usize,
    pub scale_window: Duration,
    pub scale_baseline_cycles: usize,
    /// How many times faster than production time runs in section 7 (the load on the board
    /// grows with it: the in-process board serves a 10,000-work-package fleet only at 1).
    pub scale_compress: u32,
}

impl Plan {
    pub fn from_env() -> Plan {
        let quick =
            std::env::var("JOURNEYMAN_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Plan {
                quick,
                cost_sizes: vec![100, 1_000],
                decide_runs: vec![(100, 200), (1_000, 50), (10_000, 20)],
                pods: vec![1, 10],
                arrivals_for: Duration::from_secs(2),
                arrival_rate: 10.0,
                fleet_background: 100,
                idle_sizes: vec![1_000],
                throughput_boards: vec![100],
                throughput_window: Duration::from_millis(300),
                concurrency: vec![1, 4],
                nix_cold: 2,
                nix_warm: 5,
                scale_pods: 20,
                scale_board: 1_000,
                scale_window: Duration::from_secs(3),
                scale_baseline_cycles: 3,
                scale_compress: 20,
            }
        } else {
            Plan {
                quick,
                cost_sizes: vec![100, 1_000, 10_000],
                decide_runs: vec![(100, 2_000), (1_000, 1_000), (10_000, 300)],
                pods: vec![1, 10, 50],
                arrivals_for: Duration::from_secs(10),
                arrival_rate: 10.0,
                fleet_background: 100,
                idle_sizes: vec![1_000, 10_000],
                throughput_boards: vec![100, 10_000],
                throughput_window: Duration::from_secs(1),
                concurrency: vec![1, 4, 16],
                nix_cold: 5,
                nix_warm: 20,
                scale_pods: 200,
                scale_board: 10_000,
                scale_window: Duration::from_secs(120),
                scale_baseline_cycles: 4,
                scale_compress: 1,
            }
        }
    }
}

/// A bundled board on loopback holding the synthetic board of `n` work packages; with `hold`,
/// nothing on it is ready (see [`journeyman::harness::bench::hold_ready_work`]).
pub async fn board(n: usize, hold: bool) -> anyhow::Result<BoardHandle> {
    let handle = sim::start(BoardOptions::default()).await?;
    {
        let mut b = handle.board();
        journeyman::harness::bench::synthetic_board(n, 42)
            .apply(&mut b)
            .map_err(|e| anyhow!("seeding the synthetic board: {e}"))?;
        if hold {
            journeyman::harness::bench::hold_ready_work(&mut b);
        }
        journeyman::harness::bench::age(&mut b);
    }
    Ok(handle)
}

/// The production poll interval the benchmarks' compressed intervals stand for.
pub const REAL_POLL: Duration = Duration::from_secs(60);

/// `d` of real time on a run whose poll interval `poll` stands for [`REAL_POLL`].
pub fn compressed(d: Duration, poll: Duration) -> Duration {
    d.mul_f64(poll.as_secs_f64() / REAL_POLL.as_secs_f64())
}

/// An executor that does nothing and reports success: the fleet measures the board, not agents.
pub struct NoopExec;

impl Execute for NoopExec {
    async fn execute(&self, task: Task, _audit: Audit, _cancel: CancellationToken) -> Outcome {
        Outcome::Pushed {
            branch: format!("agent/{}", task.wp.id),
            commit: "0".repeat(40),
            summary: "no-op".into(),
        }
    }
}

/// The `p`-th percentile (0..=100) of sorted samples (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub fn bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    }
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `VmRSS` and `VmHWM` of a process, in KiB, from /proc/<pid>/status.
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| anyhow!("reading /proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
