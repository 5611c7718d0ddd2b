//! Section 1: what reading the board costs per cycle, ours against the naive strategy, with the
//! real client against the bundled board over loopback.

use std::time::{Duration, Instant};

use journeyman::openproject::StatsSnapshot;

use crate::common::{self, Plan, bytes, ms, thousands};

/// Idle cycles measured (and averaged) per board.
const IDLE_CYCLES: u64 = 20;

pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    println!("## 1. Requests and bytes per cycle (real client, bundled board, loopback)\n");
    println!(
        "Ours: an idle cycle is one probe (`pageSize=1`, `sortBy updatedAt desc`); a cycle that sees a change reads the board in full (the probe, open work packages in pages of 1000, closed ancestors, `blocks` relations in pages of 1000). Naive: list the open work packages, then `GET /work_packages/{{id}}` and `GET /work_packages/{{id}}/relations` for each, every cycle (it has no change detection, so an idle cycle costs the same).\n"
    );
    println!(
        "| board | open | ours idle | ours full | naive | naive / ours idle | naive / ours full |"
    );
    println!("|---:|---:|---|---|---|---:|---:|");
    let mut headline = None;
    for &n in &plan.cost_sizes {
        let board = common::board(n, false).await?;
        let project = board
            .board()
            .project_by_key("demo")
            .map(|p| p.id)
            .ok_or_else(|| anyhow::anyhow!("no demo project"))?;
        let mut reader =
            journeyman::harness::bench::reader(board.url(), board.token(), "pod-bench").await?;
        let t = Instant::now();
        let (_, full) = reader.snapshot().await?;
        let full_time = t.elapsed();
        anyhow::ensure!(full.full, "the first snapshot is a full read");
        let mut idle = StatsSnapshot::default();
        let t = Instant::now();
        for _ in 0..IDLE_CYCLES {
            let (_, f) = reader.snapshot().await?;
            anyhow::ensure!(!f.full, "nothing changed: the probe must be enough");
            idle.requests += f.cost.requests;
            idle.bytes += f.cost.bytes;
        }
        let idle_time = t.elapsed() / IDLE_CYCLES as u32;
        let idle = StatsSnapshot {
            requests: idle.requests / IDLE_CYCLES,
            bytes: idle.bytes / IDLE_CYCLES,
            retries: 0,
        };
        let client = reader.client().clone();
        let before = client.stats();
        let t = Instant::now();
        let open = journeyman::harness::bench::naive_read(&client, project).await?;
        let naive_time = t.elapsed();
        let naive = client.stats() - before;
        let cell = |s: StatsSnapshot, d: Duration| {
            format!(
                "{} req, {}, {}",
                thousands(s.requests),
                bytes(s.bytes),
                ms(d)
            )
        };
        let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
        println!(
            "| {} WPs | {} | {} | {} | {} | {:.0}x req, {:.0}x bytes | {:.0}x req, {:.1}x bytes |",
            thousands(n as u64),
            thousands(open as u64),
            cell(idle, idle_time),
            cell(full.cost, full_time),
            cell(naive, naive_time),
            ratio(naive.requests, idle.requests),
            ratio(naive.bytes, idle.bytes),
            ratio(naive.requests, full.cost.requests),
            ratio(naive.bytes, full.cost.bytes),
        );
        headline = Some((n, naive, idle, full.cost));
    }
    if let Some((n, naive, idle, full)) = headline {
        println!(
            "\n**Headline ({} WPs):** the naive strategy makes {} requests per cycle; journeyman makes {} when nothing changed ({:.0}x fewer) and {} when something did ({:.0}x fewer).\n",
            thousands(n as u64),
            thousands(naive.requests),
            idle.requests,
            naive.requests as f64 / idle.requests.max(1) as f64,
            full.requests,
            naive.requests as f64 / full.requests.max(1) as f64,
        );
    }
    Ok(())
}
