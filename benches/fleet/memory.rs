//! Section 4: resident memory, read from /proc/<pid>/status of child processes this bench starts
//! and stops: (a) `journeyman board --seed FILE` holding a synthetic board, (b) an idle
//! `journeyman run`.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use url::Url;

use crate::common::{self, Plan, memory_kib, mib, thousands};

const BOARD_SIZE: usize = 10_000;
const TOKEN: &str = "journeyman-bench-token";
/// Idle cycles the worker runs before its memory is read.
const IDLE_CYCLES: u64 = 40;
/// Readings of the idle worker's memory, one per cycle after `IDLE_CYCLES`.
const SAMPLES: u64 = 20;
const POLL: Duration = Duration::from_millis(50);

/// Returns the idle worker's median VmRSS (KiB) on the largest board, for section 6.
pub async fn run(plan: &Plan) -> anyhow::Result<Option<(usize, u64)>> {
    println!("## 4. Resident memory (VmRSS / VmHWM from /proc/<pid>/status)\n");
    board_process().await?;
    let idle = idle_worker(plan).await?;
    println!();
    Ok(idle)
}

/// (a) The bundled board as its own process, empty and holding the synthetic board.
async fn board_process() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("board.json");
    let seed = journeyman::harness::bench::synthetic_board(BOARD_SIZE, 42);
    std::fs::File::create(&path)?.write_all(&serde_json::to_vec(&seed)?)?;
    let seed_size = std::fs::metadata(&path)?.len();
    println!(
        "(a) `journeyman board --listen 127.0.0.1:0 [--seed FILE]`, a separate process (seed file of {} WPs: {}).\n",
        thousands(BOARD_SIZE as u64),
        common::bytes(seed_size)
    );
    println!("| board process | VmRSS | VmHWM |");
    println!("|---|---:|---:|");
    for seeded in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_journeyman"));
        cmd.args(["board", "--listen", "127.0.0.1:0"]);
        if seeded {
            cmd.arg("--seed").arg(&path);
        }
        cmd.env("JOURNEYMAN_BOARD_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("starting journeyman board")?;
        let pid = child.id().ok_or_else(|| anyhow!("board exited at once"))?;
        let mut lines = BufReader::new(child.stdout.take().context("board stdout")?).lines();
        let url = tokio::time::timeout(Duration::from_secs(120), listening(&mut lines))
            .await
            .context("the board did not start within 120 s")??;
        // Keep reading so the board never writes into a closed pipe.
        let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let label = if seeded {
            format!("{} WPs, after seeding", thousands(BOARD_SIZE as u64))
        } else {
            "empty (standard seed only)".to_string()
        };
        let (rss, hwm) = memory_kib(pid)?;
        println!("| {label} | {} | {} |", mib(rss), mib(hwm));
        if seeded {
            let mut reader = journeyman::harness::bench::reader(&url, TOKEN, "pod-bench").await?;
            let (snap, _) = reader.snapshot().await?;
            let (rss, hwm) = memory_kib(pid)?;
            println!(
                "| {} WPs, after serving one full snapshot ({} items) | {} | {} |",
                thousands(BOARD_SIZE as u64),
                thousands(snap.items.len() as u64),
                mib(rss),
                mib(hwm)
            );
        }
        stop(&mut child, pid).await;
        drain.abort();
    }
    println!();
    Ok(())
}

async fn listening(lines: &mut Lines<BufReader<ChildStdout>>) -> anyhow::Result<Url> {
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix("bundled board listening on ") {
            return Ok(Url::parse(rest.trim())?);
        }
    }
    bail!("the board exited before listening")
}

/// SIGTERM, a short grace, then SIGKILL.
async fn stop(child: &mut Child, pid: u32) {
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// (b) An idle `journeyman run`: a pod with nothing to do, read after its first full snapshot and
/// many idle cycles. Cycles are counted from its own `/metrics`, so the reading is taken after the
/// same amount of work on every board size, however slow the machine.
async fn idle_worker(plan: &Plan) -> anyhow::Result<Option<(usize, u64)>> {
    println!(
        "(b) `journeyman run` (pod `pod-idle`, nothing ready on the board, polling every {} ms; `JOURNEYMAN_FULL_READ_EVERY` set to ten poll intervals, jittered 75-125%, so that full reads happen many times over), VmRSS read once after each of cycles {IDLE_CYCLES} to {}; eligible, requests and full reads from its own `/metrics`.\n",
        POLL.as_millis(),
        IDLE_CYCLES + SAMPLES - 1
    );
    println!(
        "| idle worker on a board of | eligible | requests (last cycle) | full reads | VmRSS median | VmRSS max | VmHWM |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut result = None;
    for &n in &plan.idle_sizes {
        let board = common::board(n, true).await?;
        let workdir = tempfile::tempdir()?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_journeyman"))
            .arg("run")
            .envs(worker_env(board.url(), board.token()))
            .env("JOURNEYMAN_WORKDIR", workdir.path())
            .env("JOURNEYMAN_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting journeyman run")?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("journeyman run exited at once"))?;
        let stderr = child.stderr.take().context("stderr")?;
        let metrics = tokio::time::timeout(Duration::from_secs(60), metrics_url(stderr))
            .await
            .context("journeyman run did not serve /metrics within 60 s")??;
        // One reading after each of the last SAMPLES cycles: a reading may fall during a full
        // read (every tenth cycle), so the median is the idle figure and the maximum is shown.
        let mut rss = Vec::new();
        let mut last = (String::new(), String::new(), 0);
        for cycle in IDLE_CYCLES..IDLE_CYCLES + SAMPLES {
            last = tokio::time::timeout(Duration::from_secs(120), after_cycles(&metrics, cycle))
                .await
                .with_context(|| format!("{cycle} idle cycles took over 120 s"))??;
            rss.push(memory_kib(pid)?.0);
        }
        let (eligible, requests, full_reads) = last;
        let hwm = memory_kib(pid)?.1;
        rss.sort_unstable();
        println!(
            "| {} WPs | {eligible} | {requests} | {full_reads} | {} | {} | {} |",
            thousands(n as u64),
            mib(rss[rss.len() / 2]),
            mib(*rss.last().expect("samples")),
            mib(hwm)
        );
        stop(&mut child, pid).await;
        result = Some((n, rss[rss.len() / 2]));
    }
    Ok(result)
}

/// Reads the worker's JSON log until it says where it serves, and keeps draining it afterwards.
async fn metrics_url(stderr: ChildStderr) -> anyhow::Result<Url> {
    let mut lines = BufReader::new(stderr).lines();
    while let Some(line) = lines.next_line().await? {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let addr = v.get("addr").or_else(|| v.pointer("/fields/addr"));
        if let Some(addr) = addr.and_then(|a| a.as_str()) {
            let url = Url::parse(&format!("http://{addr}/metrics"))?;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(url);
        }
    }
    bail!("journeyman run exited before serving /metrics")
}

/// Polls `/metrics` until `journeyman_cycles_total` reaches `cycles`; returns the eligible-work
/// gauge, the last cycle's request count and the number of full reads so far.
async fn after_cycles(metrics: &Url, cycles: u64) -> anyhow::Result<(String, String, u64)> {
    let http = reqwest::Client::new();
    loop {
        let text = http.get(metrics.clone()).send().await?.text().await?;
        let value = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string)
        };
        let number = |name: &str| value(name).and_then(|v| v.parse::<f64>().ok());
        if number("journeyman_cycles_total").is_some_and(|v| v >= cycles as f64) {
            return Ok((
                value("journeyman_eligible_work").unwrap_or_else(|| "?".into()),
                value("journeyman_cycle_api_requests").unwrap_or_else(|| "?".into()),
                number("journeyman_snapshot_reads_total{kind=\"full\"}").unwrap_or(0.0) as u64,
            ));
        }
        tokio::time::sleep(POLL / 5).await;
    }
}

fn worker_env(url: &Url, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("JOURNEYMAN_OPENPROJECT_URL", url.to_string()),
        ("JOURNEYMAN_OPENPROJECT_TOKEN", token.to_string()),
        ("JOURNEYMAN_POD_NAME", "pod-idle".into()),
        (
            "JOURNEYMAN_REPOS",
            "demo=file:///nonexistent/demo.git".into(),
        ),
        ("JOURNEYMAN_ENV_WRAPPER", "none".into()),
        (
            "JOURNEYMAN_POLL_INTERVAL",
            format!("{}ms", POLL.as_millis()),
        ),
        // A full read every ten polls: the worst case for memory, measured many times over.
        (
            "JOURNEYMAN_FULL_READ_EVERY",
            format!("{}ms", POLL.as_millis() * 10),
        ),
        ("JOURNEYMAN_LISTEN", "127.0.0.1:0".into()),
    ]
}
