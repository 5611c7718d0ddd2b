//! `journeyman demo`: the whole work cycle in seconds, with nothing configured.
//!
//! Why this exists: journeyman's behaviour is spread over many pods and a board, so it is hard to
//! picture from the docs. The demo runs it for real, in one process, and tells what happened:
//! the bundled board on loopback seeded from `examples/demo-seed.json` (embedded in the binary), a
//! bare git remote holding a tiny Python program, and N pods as tokio tasks, each the real
//! [`Worker`](crate::cycle::Worker) with the real [`Executor`](crate::execute::Executor) and
//! [`ClaudeCli`](crate::agent::ClaudeCli), pointed at the scripted stand-in agent
//! (or the real `claude` when `ANTHROPIC_API_KEY` is set and `claude` is on PATH). The demo plays
//! the humans: a reviewer closes finished work, and the product owner opens the Phase once the
//! first work is done. It ends when every work package is closed or waits behind an open Spike,
//! then prints the timeline (from the board's journal only), the board and the remote's branches.
//!
//! Each pod has its own bot user and token, so the timeline can name the loser of a 409; a real
//! fleet may share one bot user, since the pod field carries the pod's identity.
//!
//! Everything lives in one temporary directory (under `TMPDIR`), removed at the end, also after an
//! error or Ctrl-C. It must never: touch anything outside that directory, listen beyond loopback,
//! or let the pods run past the deadline.

mod humans;
mod pods;
mod remote;
mod timeline;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::harness::sim::{self, BoardHandle, BoardOptions};
use crate::shutdown::{Shutdown, Signals};

/// The demo's board: an Epic, a Phase, a pinned ticket, a failing task and a Bug.
pub const SEED: &str = include_str!("../../../examples/demo-seed.json");

/// How often the demo's humans look at the board.
const HUMAN_EVERY: Duration = Duration::from_millis(150);
/// The stand-in agent's executable, built next to `journeyman`.
const SCRIPTED_AGENT: &str = crate::harness::scripted_agent::NAME;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Keep the board running after the run, until Ctrl-C.
    pub keep: bool,
    pub pods: usize,
}

/// Which agent the pods run.
#[derive(Debug, Clone)]
enum Agent {
    /// The scripted stand-in built into this executable (a symlink under its name).
    Scripted(PathBuf),
    /// The real Claude Code CLI from PATH.
    Claude,
}

impl Agent {
    fn command(&self) -> String {
        match self {
            Agent::Scripted(path) => path.display().to_string(),
            Agent::Claude => "claude".into(),
        }
    }

    /// The whole run's deadline, and one task's.
    fn deadlines(&self) -> (Duration, &'static str) {
        match self {
            Agent::Scripted(_) => (Duration::from_secs(60), "30s"),
            Agent::Claude => (Duration::from_secs(20 * 60), "10m"),
        }
    }
}

/// Runs the demo; all temporary files are removed before it returns.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    if !(1..=16).contains(&opts.pods) {
        bail!("--pods must be between 1 and 16, got {}", opts.pods);
    }
    let mut interrupt = Signals::new()?;
    init_logging();
    let dir = tempfile::Builder::new()
        .prefix("journeyman-demo-")
        .tempdir()
        .context("creating the demo's temporary directory (under TMPDIR)")?;
    let result = match choose_agent(dir.path()) {
        Ok(agent) => run_in(&opts, &agent, dir.path(), &mut interrupt).await,
        Err(e) => Err(e),
    };
    let path = dir.path().display().to_string();
    dir.close()
        .with_context(|| format!("removing the demo's temporary directory {path}"))?;
    result
}

/// Errors only: the timeline tells the story, including the failures the demo provokes on
/// purpose (which the worker logs as warnings). `RUST_LOG` overrides.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn choose_agent(dir: &std::path::Path) -> anyhow::Result<Agent> {
    let has_key = std::env::var("ANTHROPIC_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("claude").is_file()));
    if has_key && on_path {
        return Ok(Agent::Claude);
    }
    // The stand-in is built into this binary: a symlink under its name selects it (busybox style),
    // so the demo needs nothing but `journeyman` itself.
    let exe = std::env::current_exe().context("finding the journeyman executable")?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).context("creating the demo's bin directory")?;
    let scripted = bin.join(SCRIPTED_AGENT);
    std::os::unix::fs::symlink(&exe, &scripted)
        .with_context(|| format!("linking {} to {}", scripted.display(), exe.display()))?;
    Ok(Agent::Scripted(scripted))
}

fn random_token() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Settled,
    Deadline,
    Interrupted,
}

/// The stage the pods play on: the seeded board, the humans' users, the remote.
struct Stage {
    board: BoardHandle,
    reviewer: u64,
    /// The product owner, who answers the fleet's questions.
    owner: u64,
    pods: Vec<String>,
    remote: PathBuf,
    remote_url: String,
    seeded: usize,
}

async fn run_in(
    opts: &DemoOptions,
    agent: &Agent,
    dir: &Path,
    interrupt: &mut Signals,
) -> anyhow::Result<()> {
    let stage = stage(opts, dir).await?;
    print_header(agent, &stage);
    let (deadline, task_timeout) = agent.deadlines();
    let env = pods::PodEnv {
        board_url: stage.board.url(),
        repos: format!("demo={}#{}", stage.remote_url, remote::BASE_BRANCH),
        workdir: &dir.join("pods"),
        agent_command: agent.command(),
        task_timeout,
    };
    let mut pods = Vec::new();
    for name in &stage.pods {
        let token = random_token();
        stage.board.add_user(name, &token, true);
        pods.push(pods::Pod::new(&env, name, &token).await?);
    }

    let t0 = Utc::now();
    let seed_seq = stage.board.board().journal.len() as u64;
    let started = Instant::now();
    let end = run_pods(pods, &stage, started + deadline, interrupt).await;
    let took = started.elapsed();

    print_results(&stage, seed_seq, t0, took, end).await?;
    match end {
        End::Settled => println!(
            "\ndone in {:.1}s: {} pod{}, {} work packages",
            took.as_secs_f64(),
            stage.pods.len(),
            if stage.pods.len() == 1 { "" } else { "s" },
            stage.board.board().wps.len()
        ),
        End::Deadline => bail!(
            "the demo did not settle within {}s; the timeline and board above show how far it got",
            deadline.as_secs()
        ),
        End::Interrupted => bail!("interrupted"),
    }
    if opts.keep {
        let (url, token) = (stage.board.url(), stage.board.token());
        println!("\nThe board keeps running (--keep) at {url}");
        println!("  token: {token}");
        println!("  try:   curl -u apikey:{token} '{url}api/v3/work_packages?filters=[]'");
        println!("Press Ctrl-C to stop it; the temporary directory is removed then.");
        interrupt.recv().await;
    }
    stage.board.shutdown();
    Ok(())
}

/// Starts and seeds the board, adds the reviewer, creates the remote.
async fn stage(opts: &DemoOptions, dir: &Path) -> anyhow::Result<Stage> {
    let board = sim::start(BoardOptions {
        token: random_token(),
        ..BoardOptions::default()
    })
    .await?;
    let file = sim::seed::SeedFile::parse(SEED)
        .map_err(|e| anyhow::anyhow!("examples/demo-seed.json: {e}"))?;
    file.apply(&mut board.board())
        .map_err(|e| anyhow::anyhow!("examples/demo-seed.json: {e}"))?;
    let reviewer = board.add_user("reviewer", &random_token(), true);
    let owner = board.add_user("owner", &random_token(), true);
    let remote = dir.join("greet.git");
    let r = remote.clone();
    tokio::task::spawn_blocking(move || remote::create(&r))
        .await
        .context("creating the demo remote")??;
    Ok(Stage {
        reviewer,
        owner,
        pods: (1..=opts.pods).map(|i| format!("demo-pod-{i}")).collect(),
        remote_url: format!("file://{}", remote.display()),
        remote,
        seeded: file.work_packages.len(),
        board,
    })
}

fn print_header(agent: &Agent, stage: &Stage) {
    match agent {
        Agent::Scripted(path) => println!(
            "agent: the scripted stand-in {} (same interface as the claude CLI; set ANTHROPIC_API_KEY and put claude on PATH for the real one)",
            path.display()
        ),
        Agent::Claude => println!(
            "agent: the real claude CLI (ANTHROPIC_API_KEY is set and claude is on PATH; this costs money and takes minutes; unset ANTHROPIC_API_KEY for the scripted stand-in)"
        ),
    }
    println!("board: the bundled board on {}", stage.board.url());
    println!(
        "remote: {} (greet.py, test_greet.py, README.md on main)",
        stage.remote_url
    );
    println!(
        "seeded {} work packages from examples/demo-seed.json; starting {} pods: {}",
        stage.seeded,
        stage.pods.len(),
        stage.pods.join(", ")
    );
    println!(
        "the demo plays the humans: a reviewer closes work that reaches In testing (and sends the README task back once), the product owner answers the fleet's Spike with @journeyman, and the Phase opens once the first work is done"
    );
    if !stage.pods.iter().any(|p| p == "demo-pod-2") {
        println!("note: demo-pod-2 is not running, so the ticket pinned to it will wait");
    }
    println!();
}

/// Runs the pods until the board settles (or the deadline, or Ctrl-C), then stops them: claims at
/// once, a running agent only if the run did not settle.
async fn run_pods(
    pods: Vec<pods::Pod>,
    stage: &Stage,
    deadline: Instant,
    interrupt: &mut Signals,
) -> End {
    let shutdown = Shutdown::new();
    let mut set = JoinSet::new();
    for pod in pods {
        set.spawn(pod.run(shutdown.clone()));
    }
    let end = supervise(stage, deadline, interrupt).await;
    if end == End::Settled {
        shutdown.stop_claiming();
    } else {
        shutdown.stop_now();
    }
    let stopped = tokio::time::timeout(Duration::from_secs(15), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    if stopped.is_err() {
        tracing::error!("a pod did not stop within 15s; aborting it");
        set.abort_all();
    }
    end
}

async fn print_results(
    stage: &Stage,
    seed_seq: u64,
    t0: chrono::DateTime<Utc>,
    took: Duration,
    end: End,
) -> anyhow::Result<()> {
    let replace = [(stage.remote_url.clone(), "the remote".to_string())];
    println!("Timeline (from the board's journal)");
    for line in timeline::timeline(&stage.board.board(), seed_seq, t0, &replace) {
        println!("{line}");
    }
    println!(
        "{:>8}  {:<10}  {}",
        format!("+{:.2}s", took.as_secs_f64()),
        "demo",
        match end {
            End::Settled =>
                "nothing left to do (every work package is closed, waits behind an open Spike, or is pinned to a pod that is not running): the pods stop",
            End::Deadline => "deadline reached: the pods stop",
            End::Interrupted => "interrupted: the pods stop",
        }
    );
    println!();
    println!("Board");
    for line in timeline::board_table(&stage.board.board()) {
        println!("{line}");
    }
    println!();
    print_remote(&stage.remote).await
}

/// Plays the humans until the board settles, the deadline passes, or Ctrl-C.
async fn supervise(stage: &Stage, deadline: Instant, interrupt: &mut Signals) -> End {
    let mut tick = tokio::time::interval(HUMAN_EVERY);
    loop {
        tokio::select! {
            _ = interrupt.recv() => return End::Interrupted,
            _ = tokio::time::sleep_until(deadline) => return End::Deadline,
            _ = tick.tick() => {}
        }
        let mut b = stage.board.board();
        humans::open_phases_when_work_is_done(&mut b);
        humans::answer_spikes(&mut b, stage.owner);
        humans::review(&mut b, stage.reviewer);
        if humans::settled(&b, &stage.pods, stage.owner) {
            return End::Settled;
        }
    }
}

async fn print_remote(path: &Path) -> anyhow::Result<()> {
    let p = path.to_path_buf();
    let branches = tokio::task::spawn_blocking(move || remote::branches(&p))
        .await
        .context("reading the demo remote")??;
    println!("Remote greet.git: {} branches", branches.len());
    for b in branches {
        let n = b.commits.len();
        let commits = if n == 1 { "commit" } else { "commits" };
        if b.name == remote::BASE_BRANCH {
            println!("  {}: {n} {commits}, untouched by the pods", b.name);
        } else {
            println!("  {}: {n} new {commits}", b.name);
        }
        for (id, summary) in b.commits {
            println!("    {id} {summary}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::sim::seed::SeedFile;
    use crate::harness::sim::{Board, POD_FIELD};

    /// The demo's seed on a fresh board, and the ids of its keys.
    pub(super) fn seeded() -> (Board, std::collections::BTreeMap<String, u64>) {
        let mut b = Board::seeded("Phase");
        let keys = SeedFile::parse(SEED).unwrap().apply(&mut b).unwrap();
        (b, keys)
    }

    #[test]
    fn the_seed_has_every_situation_the_demo_shows() {
        let (b, k) = seeded();
        let ty = |key: &str| humans::type_name(&b, &b.wps[&k[key]]);
        assert_eq!(ty("epic"), "Epic");
        assert_eq!(b.children_of(k["epic"]).count(), 3);
        assert!(
            b.relations
                .values()
                .any(|r| r.type_ == "blocks" && r.from == k["options"] && r.to == k["shout"])
        );
        assert_eq!(ty("release"), "Phase");
        assert_eq!(b.children_of(k["release"]).count(), 2);
        assert_eq!(
            b.wps[&k["pinned"]]
                .custom
                .get(&POD_FIELD)
                .map(String::as_str),
            Some("demo-pod-2")
        );
        assert!(
            b.wps[&k["fails"]]
                .description
                .contains("agent:needs-answer")
        );
        assert_eq!(ty("bug"), "Bug");
        assert_eq!(
            k["bug"],
            *k.values().max().unwrap(),
            "the Bug is filed last"
        );
    }
}
