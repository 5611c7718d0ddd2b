//! Section 4: resident memory, read from /proc/<pid>/status of child processes this bench starts
//! and stops: (a) `journeyman board --seed FILE` holding a synthetic board, (b) an idle worker:
//! `journeyman run` if it is implemented, otherwise this bench binary re-executed as a worker
//! loop (`JOURNEYMAN_BENCH_CHILD=idle-worker`), labelled as such.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::common::{self, NoopExec, Plan, memory_kib, mib, thousands};

const BOARD_SIZE: usize = 10_000;
const TOKEN: &str = "journeyman-bench-token";
/// Idle cycles the worker runs before its memory is read.
const IDLE_CYCLES: u64 = 40;
const POLL: Duration = Duration::from_millis(50);

pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    println!("## 4. Resident memory (VmRSS / VmHWM from /proc/<pid>/status)\n");
    board_process().await?;
    idle_worker(plan).await?;
    println!();
    Ok(())
}

/// (a) The bundled board as its own process, empty and holding the synthetic board.
async fn board_process() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("board.json");
    let seed = journeyman::bench::synthetic_board(BOARD_SIZE, 42);
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
            let mut reader = journeyman::bench::reader(&url, TOKEN, "pod-bench").await?;
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

/// (b) An idle worker: a pod with nothing to do, after its first full read and many idle cycles.
async fn idle_worker(plan: &Plan) -> anyhow::Result<()> {
    let run_works = journeyman_run_is_implemented().await?;
    if run_works {
        println!(
            "(b) `journeyman run` (pod `pod-idle`, nothing ready on the board), after {IDLE_CYCLES} poll intervals of {} ms.\n",
            POLL.as_millis()
        );
    } else {
        println!(
            "(b) `journeyman run` prints \"not implemented\" in this build, so this is **not** `journeyman run`: it is this bench binary re-executed as a child process that only runs `Worker::cycle` in a loop (pod `pod-idle`, no-op executor, multi-thread tokio runtime as in `main.rs`, no HTTP server, no tracing subscriber), read after {IDLE_CYCLES} idle cycles {} ms apart. The board runs in the parent; nothing on it is ready.\n",
            POLL.as_millis()
        );
    }
    println!(
        "| idle worker on a board of | eligible (last cycle) | requests (last cycle) | VmRSS | VmHWM |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for &n in &plan.idle_sizes {
        let board = common::board(n, true).await?;
        let mut cmd = if run_works {
            let mut c = Command::new(env!("CARGO_BIN_EXE_journeyman"));
            c.arg("run");
            c
        } else {
            let mut c = Command::new(std::env::current_exe()?);
            c.env("JOURNEYMAN_BENCH_CHILD", "idle-worker");
            c
        };
        let workdir = tempfile::tempdir()?;
        cmd.envs(worker_env(board.url(), board.token()))
            .env("JOURNEYMAN_WORKDIR", workdir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("starting the idle worker")?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("idle worker exited at once"))?;
        let (eligible, last_requests) = if run_works {
            tokio::time::sleep(POLL * IDLE_CYCLES as u32).await;
            ("?".to_string(), "?".to_string())
        } else {
            let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
            let mut last = (String::new(), String::new());
            let mut cycles = 0;
            while cycles < IDLE_CYCLES {
                let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                    .await
                    .context("idle worker silent for 60 s")??
                    .ok_or_else(|| anyhow!("idle worker exited"))?;
                if let Some(rest) = line.strip_prefix("cycle ") {
                    cycles += 1;
                    let mut f = rest.split_whitespace();
                    last = (
                        f.next().unwrap_or("?").to_string(),
                        f.next().unwrap_or("?").to_string(),
                    );
                }
            }
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            last
        };
        let (rss, hwm) = memory_kib(pid)?;
        println!(
            "| {} WPs | {eligible} | {last_requests} | {} | {} |",
            thousands(n as u64),
            mib(rss),
            mib(hwm)
        );
        stop(&mut child, pid).await;
    }
    Ok(())
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
        ("JOURNEYMAN_LISTEN", "127.0.0.1:0".into()),
    ]
}

/// Runs `journeyman run` against an empty board for a moment: `false` if it says "not implemented".
async fn journeyman_run_is_implemented() -> anyhow::Result<bool> {
    let board = common::board(0, true).await?;
    let workdir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_journeyman"))
        .arg("run")
        .envs(worker_env(board.url(), board.token()))
        .env("JOURNEYMAN_WORKDIR", workdir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting journeyman run")?;
    let pid = child.id().unwrap_or(0);
    let mut stderr = BufReader::new(child.stderr.take().context("stderr")?).lines();
    let said_not_implemented = async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if line.contains("not implemented") {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(Duration::from_secs(3), said_not_implemented).await {
        Ok(true) => {
            let _ = child.wait().await;
            Ok(false)
        }
        Ok(false) => Ok(false), // exited without saying: not a usable worker either
        Err(_) => {
            stop(&mut child, pid).await;
            Ok(true) // still running after 3 s: a real worker loop
        }
    }
}

/// The child side of (b): a worker loop and nothing else. Prints one line per cycle.
pub fn idle_worker_child() -> anyhow::Result<()> {
    let url = Url::parse(&std::env::var("JOURNEYMAN_OPENPROJECT_URL")?)?;
    let token = std::env::var("JOURNEYMAN_OPENPROJECT_TOKEN")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut w = journeyman::bench::worker(&url, &token, "pod-idle", Arc::new(NoopExec)).await?;
        let never = CancellationToken::new();
        loop {
            let r = w.cycle(&never, &never).await?;
            println!("cycle {} {}", r.eligible, r.requests);
            tokio::time::sleep(POLL).await;
        }
    })
}
