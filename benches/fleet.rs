//! `cargo bench --bench fleet`: what journeyman costs a board and a machine, printed as Markdown
//! tables (a report, not a timing harness). Every number comes from this run; the machine and the
//! command are printed first so a table can be pasted into docs/performance.md as it is.
//!
//! 1. requests and bytes per cycle (idle, after k changes, in full), ours against a naive
//!    per-work-package reader (cost.rs);
//! 2. `decide` time (decide.rs); 3. claim latency and conflicts with many pods (claims.rs);
//! 4. resident memory of the board and an idle worker (memory.rs); 5. the board's own throughput
//!    (throughput.rs); 6. entering a Nix dev shell, cold and warm (nix.rs; skipped without Nix);
//! 7. a fleet at scale, 200 pods on 10,000 work packages, beside the worker before delta reads
//!    and the naive reader (scale.rs).
//!
//! `JOURNEYMAN_BENCH_QUICK=1` runs a smaller plan as a smoke test (CI).

#[path = "fleet/claims.rs"]
mod claims;
#[path = "fleet/common.rs"]
mod common;
#[path = "fleet/cost.rs"]
mod cost;
#[path = "fleet/decide.rs"]
mod decide;
#[path = "fleet/memory.rs"]
mod memory;
#[path = "fleet/nix.rs"]
mod nix_shell;
#[path = "fleet/scale.rs"]
mod scale;
#[path = "fleet/scale_report.rs"]
mod scale_report;
#[path = "fleet/throughput.rs"]
mod throughput;

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let plan = common::Plan::from_env();
    let started = Instant::now();
    header(&plan);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        cost::run(&plan).await?;
        decide::run(&plan)?;
        let claims = claims::run(&plan).await?;
        let idle = memory::run(&plan).await?;
        throughput::run(&plan).await?;
        nix_shell::run(&plan).await?;
        scale::run(&plan, &claims, idle).await
    })?;
    println!(
        "Total bench time: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn header(plan: &common::Plan) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let command = if plan.quick {
        "JOURNEYMAN_BENCH_QUICK=1 cargo bench --bench fleet"
    } else {
        "cargo bench --bench fleet"
    };
    println!("# journeyman fleet benchmark\n");
    println!(
        "- date: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!("- command: `{command}` (profile `bench`: optimised)");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "- machine: nproc {nproc}, {model}, {mem} RAM, Linux {}; load average at start: {} (other builds may share the cores)",
        kernel.trim(),
        load.join(" ")
    );
    println!(
        "- journeyman {} ({})\n",
        env!("CARGO_PKG_VERSION"),
        if plan.quick {
            "quick plan"
        } else {
            "full plan"
        }
    );
}
