//! Pods for tests: workers wired to a bundled board, with a recording executor that checks, at the
//! moment it runs, that the board really says the work package is claimed by this pod, and that no
//! other pod is executing it at the same time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use journeyman::audit::{Audit, Question};
use journeyman::config::Config;
use journeyman::cycle::{CycleReport, Worker};
use journeyman::harness::sim::{BoardHandle, POD_FIELD};
use journeyman::snapshot::resolve;
use journeyman::task::{Execute, FailureKind, Outcome, Task};
use tokio_util::sync::CancellationToken;

use super::{board, client};

/// One execution as the recording executor saw it.
#[derive(Debug, Clone)]
pub struct Execution {
    pub pod: String,
    pub wp: u64,
    pub epic: Option<u64>,
    /// Global sequence numbers of start and end (a logical clock across all pods).
    pub start: u64,
    pub end: u64,
}

#[derive(Default)]
pub struct Record {
    pub executions: Mutex<Vec<Execution>>,
    running: Mutex<BTreeMap<u64, String>>,
    pub violations: Mutex<Vec<String>>,
    clock: AtomicU64,
    /// Work packages whose execution should fail (reason given).
    pub fail: Mutex<BTreeMap<u64, String>>,
    /// Work packages whose execution fails for environment reasons.
    pub env_fail: Mutex<BTreeMap<u64, String>>,
}

impl Record {
    pub fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }
    pub fn executions(&self) -> Vec<Execution> {
        self.executions.lock().unwrap().clone()
    }
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }
    pub fn count(&self, wp: u64) -> usize {
        self.executions
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.wp == wp)
            .count()
    }
}

/// An executor that records what it runs instead of running an agent.
pub struct RecordingExec {
    pub record: Arc<Record>,
    pub board: Arc<BoardHandle>,
}

impl Execute for RecordingExec {
    async fn execute(&self, task: Task, _audit: Audit, _cancel: CancellationToken) -> Outcome {
        let wp = task.wp.id;
        let start = self.record.tick();
        {
            let w = self.board.wp(wp);
            let status = self.board.status_of(wp);
            let pod = w.custom.get(&POD_FIELD).cloned();
            if status != "In progress" || pod.as_deref() != Some(task.pod.as_str()) {
                self.record.violations.lock().unwrap().push(format!(
                    "{} executes #{wp} but the board says {status} / {pod:?}",
                    task.pod
                ));
            }
            if let Some(other) = self
                .record
                .running
                .lock()
                .unwrap()
                .insert(wp, task.pod.clone())
            {
                self.record.violations.lock().unwrap().push(format!(
                    "#{wp} executed concurrently by {other} and {}",
                    task.pod
                ));
            }
        }
        // Let other pods run while this one "works", to create interleavings.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.record.running.lock().unwrap().remove(&wp);
        let end = self.record.tick();
        self.record.executions.lock().unwrap().push(Execution {
            pod: task.pod.clone(),
            wp,
            epic: task.epic.as_ref().map(|e| e.id),
            start,
            end,
        });
        if let Some(reason) = self.record.env_fail.lock().unwrap().get(&wp) {
            return Outcome::Failed {
                kind: FailureKind::Environment(Question::ReachRepository),
                reason: reason.clone(),
                evidence: "fatal: cannot clone".into(),
            };
        }
        match self.record.fail.lock().unwrap().get(&wp) {
            Some(reason) => Outcome::Failed {
                kind: FailureKind::Agent,
                reason: reason.clone(),
                evidence: "stderr: boom".into(),
            },
            None => Outcome::Pushed {
                branch: format!("agent/{wp}"),
                commit: format!("{wp:040x}"),
                summary: "done".into(),
            },
        }
    }
}

/// A validated configuration for a pod on this board, with `extra` variables on top.
pub fn config(board: &BoardHandle, pod: &str, extra: &[(&str, &str)]) -> Config {
    let vars = [
        ("JOURNEYMAN_OPENPROJECT_URL", board.url().to_string()),
        ("JOURNEYMAN_OPENPROJECT_TOKEN", board.token().to_string()),
        ("JOURNEYMAN_POD_NAME", pod.to_string()),
        (
            "JOURNEYMAN_REPOS",
            "demo=file:///nonexistent/demo.git".to_string(),
        ),
        ("JOURNEYMAN_ENV_WRAPPER", "none".to_string()),
    ];
    let extra = extra.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::from_vars(
        vars.into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(extra),
    )
    .expect("valid test config")
}

/// A worker for pod `pod` with the given executor, wired by `journeyman::pod` as in production
/// (with the tests' fast client).
pub async fn worker<E: Execute>(
    board: &BoardHandle,
    pod: &str,
    exec: Arc<E>,
    extra: &[(&str, &str)],
) -> Worker<E> {
    let c = client(board);
    let cfg = config(board, pod, extra);
    let resolved = resolve(&c, &cfg).await.expect("board names resolve");
    journeyman::pod::worker(&cfg, c, resolved, exec)
}

/// A board and the pods working it with the recording executor: a cycle test in a few lines.
pub struct Fleet {
    pub board: Arc<BoardHandle>,
    pub record: Arc<Record>,
}

impl Fleet {
    pub async fn new() -> Fleet {
        Fleet {
            board: Arc::new(board().await),
            record: Arc::new(Record::default()),
        }
    }

    /// Pod `name`, configured with the defaults.
    pub async fn pod(&self, name: &str) -> Pod {
        self.pod_with(name, &[]).await
    }

    /// Pod `name`, with `extra` configuration variables.
    pub async fn pod_with(&self, name: &str, extra: &[(&str, &str)]) -> Pod {
        let exec = Arc::new(RecordingExec {
            record: self.record.clone(),
            board: self.board.clone(),
        });
        Pod {
            worker: worker(&self.board, name, exec, extra).await,
        }
    }
}

/// One pod of a [`Fleet`].
pub struct Pod {
    pub worker: Worker<RecordingExec>,
}

impl Pod {
    /// One cycle, never shut down.
    pub async fn cycle(&mut self) -> CycleReport {
        let never = CancellationToken::new();
        self.worker.cycle(&never, &never).await.expect("cycle runs")
    }
}
