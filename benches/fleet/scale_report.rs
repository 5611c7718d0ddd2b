//! Section 7's report: what the fleet-scale run measured, per 100 pods at the real poll, beside
//! the reader before delta reads and the naive one (`scale.rs` runs it).

use std::time::Duration;

use journeyman::harness::bench::Mode;
use journeyman::openproject::StatsSnapshot;
use journeyman::snapshot::REFRESH_EVERY;

use crate::claims::Claims;
use crate::common::{self, Plan, REAL_POLL, mib, ms, thousands};
use crate::scale::{Tally, compress, real};

/// A measured window, per 100 pods at `poll` (simulated), and at the scale it ran.
pub struct Window {
    pub poll: Duration,
    pub pods: usize,
    pub requests_per_s: f64,
    pub mib_per_s: f64,
    pub full_per_hour: f64,
    pub requests_per_cycle: f64,
    pub cycles: u64,
    pub errors: u64,
    pub claims: Claims,
    pub claimed: usize,
}

impl Window {
    pub fn from(
        before: Tally,
        after: Tally,
        wall: Duration,
        pods: usize,
        poll: Duration,
    ) -> Window {
        let simulated = wall.as_secs_f64() * f64::from(compress());
        let per_100 = 100.0 / pods as f64;
        let requests = (after.cost.requests - before.cost.requests) as f64;
        let bytes = (after.cost.bytes - before.cost.bytes) as f64;
        let cycles = after.cycles - before.cycles;
        Window {
            poll,
            pods,
            requests_per_s: requests / simulated * per_100,
            mib_per_s: bytes / simulated / 1024.0 / 1024.0 * per_100,
            full_per_hour: (after.full - before.full) as f64 * 3600.0 / simulated * per_100,
            requests_per_cycle: requests / cycles.max(1) as f64,
            cycles,
            errors: after.errors - before.errors,
            claims: Claims {
                mode: Mode::Current,
                pods,
                conflicts_per_claim: 0.0,
                p50: Duration::ZERO,
                p95: Duration::ZERO,
            },
            claimed: 0,
        }
    }
}

/// Single reads measured on the fleet's board.
pub struct Costs {
    /// One naive read (a cycle of the naive reader).
    pub naive: StatsSnapshot,
    /// One full read (start-up, every 30 min, or a merge that cannot be sure).
    pub full: StatsSnapshot,
}

/// Per cycle of pods working as before: requests, bytes, and the share of full reads.
pub struct Baseline {
    pub pods: usize,
    pub cycles: u64,
    pub requests_per_cycle: f64,
    pub bytes_per_cycle: f64,
    pub full_share: f64,
}

/// Per 100 pods, per second, of `per_cycle` at one cycle per `poll`.
fn per_100(per_cycle: f64, poll: Duration) -> f64 {
    per_cycle * 100.0 / poll.as_secs_f64()
}

fn mib_s(b: f64) -> f64 {
    b / 1024.0 / 1024.0
}

/// The full reads every 30 min (two per pod per hour, jittered), per 100 pods: per second, and
/// their requests and MiB per second.
fn refreshes(costs: &Costs) -> (f64, f64, f64) {
    let per_s = 100.0 * 3600.0 / REFRESH_EVERY.as_secs_f64() / 3600.0;
    (
        per_s,
        costs.full.requests as f64 * per_s,
        mib_s(costs.full.bytes as f64 * per_s),
    )
}

/// The largest run of section 3 in `mode`.
fn largest(section3: &[Claims], mode: Mode) -> Option<&Claims> {
    section3
        .iter()
        .filter(|c| c.mode == mode)
        .max_by_key(|c| c.pods)
}

/// Prints section 7's text, table and the target's paragraph.
pub fn report(
    plan: &Plan,
    startup: Duration,
    windows: &[Window],
    baseline: &Baseline,
    costs: Costs,
    section3: &[Claims],
    idle_rss: Option<(usize, u64)>,
) {
    intro(plan, startup, baseline, &costs);
    let w = &windows[0];
    table(plan, w, baseline, &costs);
    claim_rows(w, section3, idle_rss);
    if let Some(t) = windows.get(1) {
        target(t, baseline, &costs);
    }
}

fn intro(plan: &Plan, startup: Duration, baseline: &Baseline, costs: &Costs) {
    let compress = compress();
    println!(
        "{} pods (the real `Worker`, no-op executor, tokio tasks in this process) on {} work packages of real-size representations (nothing ready at first), started together, four at a time reading their start-up snapshot: the start-up took {:.0} s. Then humans edit a held work package once a (simulated) second (a comment, a priority, or a status between two that are not ready) and a new ready Task arrives every 30 s; time runs {compress}x faster (a 60 s poll is {} ms, jittered 50-150%; 1x is real time). Each poll interval is measured for {} s of wall time ({} simulated minutes). The full read every 30 min is added at its real rate from one full read of this board, measured: {} requests, {} (module docs say why it is not run in the windows). Before: {} pods working as before on the same board under the same edits, polling every 3 s at most, {} cycles measured (every cycle that saw a change read the board in full). Naive: one naive read of the board, per cycle: {} requests, {}. All figures per 100 pods at the default 60 s poll (the fleet's totals / {compress} x 100 / {}).\n",
        plan.scale_pods,
        thousands(plan.scale_board as u64),
        startup.as_secs_f64(),
        real(REAL_POLL).as_millis(),
        plan.scale_window.as_secs(),
        plan.scale_window.as_secs() * u64::from(compress) / 60,
        costs.full.requests,
        common::bytes(costs.full.bytes),
        baseline.pods,
        baseline.cycles,
        thousands(costs.naive.requests),
        common::bytes(costs.naive.bytes),
        plan.scale_pods,
    );
}

fn table(plan: &Plan, w: &Window, baseline: &Baseline, costs: &Costs) {
    let (refreshes_per_s, refresh_requests, refresh_mib) = refreshes(costs);
    let cycles_per_hour = |poll: Duration| 3600.0 / poll.as_secs_f64();
    println!(
        "| per 100 pods, 60 s poll, {} WPs, a human edit every second | delta reads + spread | before (full reads, no spread) | naive |",
        thousands(plan.scale_board as u64)
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| board requests/s (probe, deltas, claims + full reads every 30 min) | {:.2} + {:.2} = **{:.2}** | {:.1} | {} |",
        w.requests_per_s,
        refresh_requests,
        w.requests_per_s + refresh_requests,
        per_100(baseline.requests_per_cycle, REAL_POLL),
        thousands(per_100(costs.naive.requests as f64, REAL_POLL) as u64),
    );
    println!(
        "| response MiB/s (same) | {:.3} + {:.3} = **{:.3}** | {:.1} | {:.1} |",
        w.mib_per_s,
        refresh_mib,
        w.mib_per_s + refresh_mib,
        mib_s(per_100(baseline.bytes_per_cycle, REAL_POLL)),
        mib_s(per_100(costs.naive.bytes as f64, REAL_POLL)),
    );
    println!(
        "| full reads per hour (merges that fell back + every 30 min) | {:.0} + {:.0} = **{:.0}** | {} | every cycle reads everything |",
        w.full_per_hour,
        refreshes_per_s * 3600.0,
        w.full_per_hour + refreshes_per_s * 3600.0,
        thousands((baseline.full_share * cycles_per_hour(REAL_POLL) * 100.0) as u64),
    );
    println!(
        "| requests per pod cycle | {:.2} | {:.1} | {} |",
        w.requests_per_cycle,
        baseline.requests_per_cycle,
        thousands(costs.naive.requests),
    );
}

fn claim_rows(w: &Window, section3: &[Claims], idle_rss: Option<(usize, u64)>) {
    let fifty = |mode: Mode| largest(section3, mode);
    let claims_cell = |c: Option<&Claims>| {
        c.map_or("-".to_string(), |c| {
            format!("{:.2} ({} pods, section 3)", c.conflicts_per_claim, c.pods)
        })
    };
    println!(
        "| conflicts per successful claim | {:.2} ({} pods, {} claims); {} | {} | - |",
        w.claims.conflicts_per_claim,
        w.pods,
        w.claimed,
        claims_cell(fifty(Mode::Current)),
        claims_cell(fifty(Mode::Baseline)),
    );
    let latency = |c: &Claims| format!("{} / {}", ms(c.p50), ms(c.p95));
    println!(
        "| claim latency p50 / p95 (compressed run) | {} ({} pods); {} (section 3, {} pods) | {} (section 3, {} pods) | - |",
        latency(&w.claims),
        w.pods,
        fifty(Mode::Current).map_or("-".into(), latency),
        fifty(Mode::Current).map_or(0, |c| c.pods),
        fifty(Mode::Baseline).map_or("-".into(), latency),
        fifty(Mode::Baseline).map_or(0, |c| c.pods),
    );
    println!(
        "| idle pod RSS (`journeyman run`, section 4) | {} | not measured (the binary has no switch) | - |",
        idle_rss.map_or("-".into(), |(n, kib)| format!(
            "{} at {} WPs",
            mib(kib),
            thousands(n as u64)
        )),
    );
    println!(
        "| cycle errors | {} in {} cycles | | |",
        w.errors,
        thousands(w.cycles)
    );
}

fn target(t: &Window, baseline: &Baseline, costs: &Costs) {
    let (_, refresh_requests, refresh_mib) = refreshes(costs);
    // 200 pods: twice the per-100 figures.
    let fleet = |per_100_pods: f64| per_100_pods * 2.0;
    println!(
        "\n**The target's fleet, 200 pods at a {} s poll on a board that changes once a second** (the second window, scaled from {} pods): {:.1} requests/s ({:.1} without the 30 min full reads) and {:.2} MiB/s ({:.2} without) on the board (targets: 10 and 2), {:.2} requests per cycle, {} cycle errors in {} cycles; before: {:.0} requests/s and {:.0} MiB/s (every cycle a full read); naive: {} requests/s.\n",
        t.poll.as_secs(),
        t.pods,
        fleet(t.requests_per_s + refresh_requests),
        fleet(t.requests_per_s),
        fleet(t.mib_per_s + refresh_mib),
        fleet(t.mib_per_s),
        t.requests_per_cycle,
        t.errors,
        thousands(t.cycles),
        fleet(per_100(baseline.requests_per_cycle, t.poll)),
        fleet(mib_s(per_100(baseline.bytes_per_cycle, t.poll))),
        thousands(fleet(per_100(costs.naive.requests as f64, t.poll)) as u64),
    );
}
