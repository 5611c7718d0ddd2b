//! Shared by `benches/fleet.rs` and its smoke test (tests/it/bench_smoke.rs): a synthetic board
//! with the mix of a real one, and the naive way of reading a board that the snapshot is measured
//! against. Nothing in the worker uses this module; it exists so both measure the same thing.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use secrecy::SecretString;
use url::Url;

use crate::config::Config;
use crate::cycle::Worker;
use crate::harness::sim::Board;
use crate::harness::sim::seed::{SeedFile, SeedWp};
use crate::openproject::{ApiError, Auth, Client, ClientOptions, Filter, WorkPackageQuery};
use crate::snapshot::{BoardReader, ReadCounts, Strategy, resolve};
use crate::task::Execute;

/// Pods that own Epics and in-progress work on a synthetic board: `pod-0` .. `pod-7`.
pub const BOARD_PODS: usize = 8;

/// A board of `n` work packages in project `demo`, deterministic for a given `seed`:
/// about 40% in Epics (Epic, a User story, children; some of them closed), 10% under Phases (half
/// active, a quarter closed with open children left), the rest standalone Tasks, Features and Bugs;
/// about 30% closed, ~10% blocked by another work package, ~3% pinned to a pod, half the open Epics
/// owned by a pod, and work In progress or In testing on the pods' names.
pub fn synthetic_board(n: usize, seed: u64) -> SeedFile {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        wps: Vec::with_capacity(n),
        parents: Vec::with_capacity(n),
        n,
    };
    while g.wps.len() < n {
        match g.rng.random_range(0..1000) {
            0..72 => g.epic(),
            72..95 => g.phase(),
            _ => {
                let closed = g.rng.random_range(0..100) < 30;
                g.work(None, closed);
            }
        }
    }
    SeedFile {
        projects: vec![],
        work_packages: g.wps,
    }
}

struct Gen {
    rng: StdRng,
    wps: Vec<SeedWp>,
    /// The parent's index of each entry.
    parents: Vec<Option<usize>>,
    n: usize,
}

impl Gen {
    fn room(&self) -> bool {
        self.wps.len() < self.n
    }

    fn push(&mut self, mut wp: SeedWp, parent: Option<usize>) -> usize {
        let i = self.wps.len();
        wp.key = Some(format!("w{i}"));
        wp.parent_key = parent.map(|p| format!("w{p}"));
        wp.subject = format!("{} #{i}: {}", wp.type_, wp.subject);
        wp.description = format!(
            "Generated work package {i}. Acceptance: the change is covered by a test, the docs say \
             what changed, and nothing else moves. Context lives in the parent and linked tickets."
        );
        wp.priority = match self.rng.random_range(0..100) {
            0..20 => "Low",
            20..70 => "Normal",
            70..90 => "High",
            _ => "Immediate",
        }
        .into();
        // ~10% blocked by a recent work package (closed blockers count as resolved); never by an
        // ancestor, which OpenProject refuses.
        if i > 0 && self.rng.random_range(0..100) < 10 {
            let blocker = self.rng.random_range(i.saturating_sub(200)..i);
            let mut up = parent;
            while let Some(a) = up.filter(|a| *a != blocker) {
                up = self.parents[a];
            }
            if up.is_none() {
                wp.blocked_by = vec![format!("w{blocker}")];
            }
        }
        self.wps.push(wp);
        self.parents.push(parent);
        i
    }

    fn pod(&mut self) -> String {
        format!("pod-{}", self.rng.random_range(0..BOARD_PODS))
    }

    /// One work package: closed, or open in a realistic status (In progress ones carry a pod).
    fn work(&mut self, parent: Option<usize>, closed: bool) {
        let type_ = match self.rng.random_range(0..100) {
            0..55 => "Task",
            55..75 => "Feature",
            _ => "Bug",
        };
        let mut wp = SeedWp::new(type_, "make the thing do what the ticket says");
        let roll = self.rng.random_range(0..100);
        wp.status = match (closed, roll) {
            (true, 0..85) => "Closed",
            (true, _) => "Rejected",
            (false, 0..70) => "New",
            (false, 70..80) => "In progress",
            (false, 80..90) => "In testing",
            (false, 90..95) => "On hold",
            (false, _) => "Specified",
        }
        .into();
        if wp.status == "In progress" || (!closed && self.rng.random_range(0..100) < 3) {
            wp.pod = Some(self.pod());
        }
        self.push(wp, parent);
    }

    fn epic(&mut self) {
        let closed = self.rng.random_range(0..100) < 30;
        let mut epic = SeedWp::new("Epic", "a feature set");
        if closed {
            epic.status = "Closed".into();
        } else if self.rng.random_range(0..2) == 0 {
            epic.status = "In progress".into();
            epic.pod = Some(self.pod());
        }
        let epic = self.push(epic, None);
        let story = SeedWp::new("User story", "as a user I want it").status(if closed {
            "Closed"
        } else {
            "New"
        });
        let story = self.push(story, Some(epic));
        for c in 0..self.rng.random_range(4..12) {
            if !self.room() {
                return;
            }
            let parent = if c % 2 == 0 { epic } else { story };
            let done = closed || self.rng.random_range(0..100) < 25;
            self.work(Some(parent), done);
        }
    }

    fn phase(&mut self) {
        let status = match self.rng.random_range(0..4) {
            0 => "Closed",
            1 => "New",
            _ => "In progress",
        };
        let phase = self.push(SeedWp::new("Phase", "a release phase").status(status), None);
        for _ in 0..self.rng.random_range(5..11) {
            if !self.room() {
                return;
            }
            let done = self.rng.random_range(0..100) < 20;
            self.work(Some(phase), done);
        }
    }
}

/// Puts every open work package in a ready status On hold: a board with realistic content that
/// offers no work (for idle workers, and as the background of a fleet run).
pub fn hold_ready_work(board: &mut Board) {
    let names = crate::config::BoardNames::default();
    let ready: Vec<u64> = names
        .ready_statuses
        .iter()
        .filter_map(|n| board.status_named(n).map(|s| s.id))
        .collect();
    let Some(on_hold) = board.status_named("On hold").map(|s| s.id) else {
        return;
    };
    for wp in board.wps.values_mut() {
        if ready.contains(&wp.status) {
            wp.status = on_hold;
        }
    }
}

/// Dates the board's work packages as if written over time (a board seeded in one instant would
/// make every work package look just changed): work In progress within the last ten minutes, as
/// its pod keeps writing (well inside any claim lease, so nothing looks abandoned), everything
/// else ten seconds apart in id order, older than that.
pub fn age(board: &mut Board) {
    let now = board.now();
    let in_progress = board.status_named("In progress").map(|s| s.id);
    let n = board.wps.len().max(1) as i64;
    for (i, wp) in board.wps.values_mut().enumerate() {
        let back = n - i as i64;
        let at = if Some(wp.status) == in_progress {
            now - chrono::Duration::milliseconds(back * 600_000 / n)
        } else {
            now - chrono::Duration::minutes(15) - chrono::Duration::seconds(10 * back)
        };
        wp.created_at = at;
        wp.updated_at = at;
    }
}

/// The naive strategy of many orchestrators: list the open work packages, then read each one
/// (for its parent and children) and its relations. Returns how many work packages it read.
pub async fn naive_read(client: &Client, project: u64) -> Result<usize, ApiError> {
    let open = WorkPackageQuery {
        filters: vec![
            Filter::new("status", "o", Vec::<String>::new()),
            Filter::new("project", "=", [project]),
        ],
        ..WorkPackageQuery::default()
    };
    let wps = client.work_packages(&open).await?;
    for wp in &wps {
        client.work_package(wp.id).await?;
        client.work_package_relations(wp.id).await?;
    }
    Ok(wps.len())
}

/// A client authenticated with the agent token.
pub fn client(url: &Url, token: &str) -> anyhow::Result<Client> {
    Client::new(
        url,
        Auth::ApiKey(SecretString::from(token.to_string())),
        ClientOptions::default(),
    )
}

/// The configuration of pod `pod` on project `demo` of the board at `url`, with the default names.
pub fn config(url: &Url, token: &str, pod: &str) -> anyhow::Result<Config> {
    let vars = [
        ("JOURNEYMAN_OPENPROJECT_URL", url.to_string()),
        ("JOURNEYMAN_OPENPROJECT_TOKEN", token.to_string()),
        ("JOURNEYMAN_POD_NAME", pod.to_string()),
        (
            "JOURNEYMAN_REPOS",
            "demo=file:///nonexistent/demo.git".into(),
        ),
        ("JOURNEYMAN_ENV_WRAPPER", "none".into()),
    ];
    Ok(Config::from_vars(
        vars.into_iter().map(|(k, v)| (k.to_string(), v)),
    )?)
}

/// A board reader for pod `pod` (see [`config`]); it never refreshes on a timer.
pub async fn reader(url: &Url, token: &str, pod: &str) -> anyhow::Result<BoardReader> {
    let config = config(url, token, pod)?;
    let c = client(url, token)?;
    let resolved = resolve(&c, &config).await?;
    Ok(BoardReader::new(c, resolved, Duration::from_secs(3600)))
}

/// How a benchmarked pod reads the board and picks among equal candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The worker's: delta reads, claims spread over the best candidates.
    Current,
    /// The worker before delta reads and spreading: a full read whenever the probe moves, every
    /// pod going for the same best candidate. Kept only as the benchmark's baseline.
    Baseline,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Current => "delta reads + spread",
            Mode::Baseline => "before (full reads, no spread)",
        }
    }
}

/// A benchmarked pod: its worker, a handle on its client's counters and its reads.
pub struct BenchPod<E: Execute> {
    pub worker: Worker<E>,
    pub client: Client,
    pub reads: Arc<ReadCounts>,
}

/// A worker for pod `pod` wired as in production (`pod::worker`), except for how it reads and
/// spreads (`mode`) and how often it reads in full (`refresh_every`: production passes ten poll
/// intervals today; `snapshot::REFRESH_EVERY` is the interval delta reads are meant for).
pub async fn pod<E: Execute>(
    url: &Url,
    token: &str,
    pod: &str,
    exec: Arc<E>,
    mode: Mode,
    refresh_every: Duration,
) -> anyhow::Result<BenchPod<E>> {
    let config = config(url, token, pod)?;
    let (client, resolved) = crate::pod::connect(&config, None)
        .await?
        .ok_or_else(|| anyhow::anyhow!("connect without a shutdown always answers"))?;
    let client = client.with_redactor(config.redactor());
    let (strategy, spread) = match mode {
        Mode::Current => (Strategy::Changes, crate::board::policy::SPREAD),
        Mode::Baseline => (Strategy::FullOnChange, 1),
    };
    let reader = BoardReader::new(client.clone(), resolved, refresh_every).with_strategy(strategy);
    let reads = reader.counts();
    let policy = crate::pod::policy(&config).with_spread(spread);
    Ok(BenchPod {
        worker: Worker::new(reader, exec, config.pod_name.clone(), policy),
        client,
        reads,
    })
}

/// A board reader as [`pod`] would build it, without the worker.
pub async fn reader_with(
    url: &Url,
    token: &str,
    pod: &str,
    mode: Mode,
    refresh_every: Duration,
) -> anyhow::Result<BoardReader> {
    let config = config(url, token, pod)?;
    let c = client(url, token)?;
    let resolved = resolve(&c, &config).await?;
    let strategy = match mode {
        Mode::Current => Strategy::Changes,
        Mode::Baseline => Strategy::FullOnChange,
    };
    Ok(BoardReader::new(c, resolved, refresh_every).with_strategy(strategy))
}

/// A worker for pod `pod` (see [`config`]) with the given executor, wired as in production.
pub async fn worker<E: Execute>(
    url: &Url,
    token: &str,
    pod: &str,
    exec: Arc<E>,
) -> anyhow::Result<Worker<E>> {
    let config = config(url, token, pod)?;
    let (client, resolved) = crate::pod::connect(&config, None)
        .await?
        .ok_or_else(|| anyhow::anyhow!("connect without a shutdown always answers"))?;
    Ok(crate::pod::worker(&config, client, resolved, exec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_board_has_the_documented_mix() {
        let n = 5_000;
        let wps = synthetic_board(n, 1).work_packages;
        assert_eq!(wps.len(), n);
        let share =
            |f: &dyn Fn(&SeedWp) -> bool| wps.iter().filter(|w| f(w)).count() as f64 / n as f64;
        let closed = share(&|w| w.status == "Closed" || w.status == "Rejected");
        let blocked = share(&|w| !w.blocked_by.is_empty());
        let in_epics = share(&|w| w.type_ == "Epic");
        let pinned_ready = share(&|w| w.pod.is_some() && w.status == "New");
        assert!((0.25..0.35).contains(&closed), "closed {closed}");
        assert!((0.08..0.12).contains(&blocked), "blocked {blocked}");
        assert!((0.02..0.08).contains(&in_epics), "epics {in_epics}");
        assert!(
            (0.005..0.05).contains(&pinned_ready),
            "pinned {pinned_ready}"
        );
        assert!(
            wps.iter()
                .any(|w| w.type_ == "Phase" && w.status == "Closed")
        );
    }
}
