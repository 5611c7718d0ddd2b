//! Section 1: what reading the board costs per cycle (idle, after k changes, in full), ours
//! against the naive strategy, with the real client against the bundled board over loopback.

use std::time::{Duration, Instant};

use journeyman::harness::sim::BoardHandle;
use journeyman::openproject::StatsSnapshot;
use journeyman::snapshot::{BoardReader, Read};

use crate::common::{self, Plan, bytes, ms, thousands};

/// Idle cycles measured (and averaged) per board.
const IDLE_CYCLES: u64 = 20;

pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    println!("## 1. Requests and bytes per cycle (real client, bundled board, loopback)\n");
    println!(
        "Ours: an idle cycle is the probe (open work packages: `pageSize=1`, `sortBy updatedAt desc`; `blocks` relations: `pageSize=1`, `sortBy id desc`). A cycle after k work packages changed (here: a human's comment on each) reads only those: `updatedAt <>d [since, \"\"]`, every status, one page (no page of its own when the probe's page of the newest holds them and the snapshot refers only to open work of the configured projects; this board has closed ancestors and blockers, so it does not); the newest one seen before comes back too (the window starts at its second, minus one; merged as a no-op). A full read (start-up, every 30 min jittered, or when a merge cannot be sure) is the probe, the statuses, open work packages in pages of 1000, closed ancestors, `blocks` relations in pages of 1000. Before delta reads, every cycle that saw any change was a full read. Naive: list the open work packages, then `GET /work_packages/{{id}}` and `GET /work_packages/{{id}}/relations` for each, every cycle (it has no change detection, so an idle cycle costs the same).\n"
    );
    println!(
        "| board | open | ours idle | ours, 1 changed | ours, 10 changed | ours full (before: every changed cycle) | naive | naive / ours idle | before / ours, 1 changed |"
    );
    println!("|---:|---:|---|---|---|---|---|---:|---:|");
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
        let (snap, full) = reader.snapshot().await?;
        let full_time = t.elapsed();
        anyhow::ensure!(full.read == Read::Full, "the first snapshot is a full read");
        let (idle, idle_time) = idle_cost(&mut reader).await?;
        let open: Vec<u64> = snap.items.keys().copied().collect();
        let changed = changed_cost(&board, &mut reader, &open).await?;
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
            "| {} WPs | {} | {} | {} | {} | {} | {} | {:.0}x req, {:.0}x bytes | {:.1}x req, {:.0}x bytes |",
            thousands(n as u64),
            thousands(open as u64),
            cell(idle, idle_time),
            cell(changed[0].0, changed[0].1),
            cell(changed[1].0, changed[1].1),
            cell(full.cost, full_time),
            cell(naive, naive_time),
            ratio(naive.requests, idle.requests),
            ratio(naive.bytes, idle.bytes),
            ratio(full.cost.requests, changed[0].0.requests),
            ratio(full.cost.bytes, changed[0].0.bytes),
        );
        headline = Some((n, naive, idle, full.cost, changed[0].0));
    }
    if let Some((n, naive, idle, full, one)) = headline {
        println!(
            "\n**Headline ({} WPs):** the naive strategy makes {} requests per cycle; journeyman makes {} when nothing changed and {} ({}) when one work package did, where it used to read the whole board ({} requests, {}).\n",
            thousands(n as u64),
            thousands(naive.requests),
            idle.requests,
            one.requests,
            bytes(one.bytes),
            full.requests,
            bytes(full.bytes),
        );
    }
    Ok(())
}

/// The mean cost of an idle cycle.
async fn idle_cost(reader: &mut BoardReader) -> anyhow::Result<(StatsSnapshot, Duration)> {
    let mut idle = StatsSnapshot::default();
    let t = Instant::now();
    for _ in 0..IDLE_CYCLES {
        let (_, f) = reader.snapshot().await?;
        anyhow::ensure!(
            f.read == Read::Cached,
            "nothing changed: the probe must be enough"
        );
        idle.requests += f.cost.requests;
        idle.bytes += f.cost.bytes;
    }
    let idle = StatsSnapshot {
        requests: idle.requests / IDLE_CYCLES,
        bytes: idle.bytes / IDLE_CYCLES,
        retries: 0,
    };
    Ok((idle, t.elapsed() / IDLE_CYCLES as u32))
}

/// The cost of a cycle after 1, then 10 of the `open` work packages got a comment.
async fn changed_cost(
    board: &BoardHandle,
    reader: &mut BoardReader,
    open: &[u64],
) -> anyhow::Result<Vec<(StatsSnapshot, Duration)>> {
    let mut changed = Vec::new();
    for k in [1, 10] {
        board.advance_clock(chrono::Duration::minutes(1));
        for i in 0..k {
            board.comment(open[(i * 37 + k) % open.len()], "a human's remark");
        }
        let t = Instant::now();
        let (_, f) = reader.snapshot().await?;
        anyhow::ensure!(f.read == Read::Changes, "{k} changed: read by its changes");
        changed.push((f.cost, t.elapsed()));
    }
    Ok(changed)
}
