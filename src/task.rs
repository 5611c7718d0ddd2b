//! The seam between claiming and executing: what a claimed work package hands to the executor
//! ([`Task`]), what comes back ([`Outcome`]), and the port between the two ([`Execute`]).
//!
//! Why this file exists on its own: the cycle (which claims and reports) and the executor (which
//! runs git and the agent) both depend on these types and on nothing of each other, so the claim
//! logic is tested with many pods and a recording executor, and the real executor end to end.
//!
//! Ticket text is data, never configuration: the repository and base branch come from the
//! allowlist, never from the ticket.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::audit::{Audit, History, Item, Question};
use crate::board::StopReason;
use crate::config::RepoMapping;
use crate::openproject::hal;

/// Everything an executor needs to work one work package.
#[derive(Debug, Clone)]
pub struct Task {
    pub wp: hal::WorkPackage,
    /// The nearest open Epic above the work package, if any (its branch is shared by its children).
    pub epic: Option<hal::WorkPackage>,
    /// The parent user story, if the parent is one.
    pub story: Option<hal::WorkPackage>,
    pub repo: RepoMapping,
    pub start: Start,
    pub pod: String,
    /// The work package's audit trail, read before the decision to start it.
    pub history: Arc<History>,
    /// The conversation so far (attempts, Spikes and their answers, human comments), most
    /// important first: the prompt's history block.
    pub conversation: Vec<Item>,
    /// The agent session of this pod's last attempt on the work package, if any (it may be resumed).
    pub last_session: Option<String>,
    /// Set when a human's change on the board stops the run (the run's cancel token fires too).
    pub stop: StopFlag,
    /// Human comments on the work package since the run began, as the watcher last counted them
    /// (the progress comment says so; the next run reads them).
    pub new_comments: Arc<std::sync::atomic::AtomicU32>,
}

/// Why a human's change on the board stopped a run, once it did. Shared between the watcher that
/// sees the change and the executor that reports how the run ended.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<std::sync::Mutex<Option<BoardStop>>>);

/// A stop from the board: what the human did, and who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardStop {
    pub reason: StopReason,
    /// The user whose change it was, as the board names them.
    pub by: Option<String>,
}

impl StopFlag {
    pub fn set(&self, stop: BoardStop) {
        if let Ok(mut s) = self.0.lock() {
            s.get_or_insert(stop);
        }
    }

    pub fn get(&self) -> Option<BoardStop> {
        self.0.lock().ok().and_then(|s| s.clone())
    }
}

impl Task {
    /// The id and subject the branch is named after: the Epic's, else the work package's own.
    pub fn branch_owner(&self) -> (u64, &str) {
        match &self.epic {
            Some(e) => (e.id, e.subject.as_str()),
            None => (self.wp.id, self.wp.subject.as_str()),
        }
    }

    /// `true` when an earlier run of this claim may have left work behind (a resume or a takeover).
    pub fn resumed(&self) -> bool {
        matches!(self.start, Start::Resumed | Start::TookOver)
    }
}

/// How a task came to this pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Claimed,
    /// Claimed again after a human sent done work back: continues the same branch.
    Rework,
    /// Rule 1: this pod's own claim, after a restart.
    Resumed,
    /// A stale claim of a pod that never came back.
    TookOver,
}

/// Why an execution failed, which decides how it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The agent failed (error result, crash, timeout, unparsable output, budget): a Spike.
    Agent,
    /// The agent ran and changed nothing: reported and escalated like a failure.
    NoChanges,
    /// Not the ticket's fault (nix, clone, credentials): the ticket is released without a Spike,
    /// this pod pauses claiming, and the question is what a human must answer to fix the pod.
    Environment(Question),
}

/// The result of executing a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Committed and pushed.
    Pushed {
        branch: String,
        commit: String,
        summary: String,
    },
    /// Failed; the ticket goes back to the pool (behind a Spike unless the environment failed).
    Failed {
        kind: FailureKind,
        reason: String,
        evidence: String,
    },
    /// Stopped by shutdown before finishing: the claim is released.
    Interrupted { reason: String },
    /// Stopped by a human's change on the board: nothing committed or pushed, the checkout kept
    /// for this pod's next run, the human's values left as they set them.
    Stopped(BoardStop),
}

impl Outcome {
    /// The label of the outcome in metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pushed { .. } => "pushed",
            Outcome::Failed {
                kind: FailureKind::Agent,
                ..
            } => "failed",
            Outcome::Failed {
                kind: FailureKind::NoChanges,
                ..
            } => "no_changes",
            Outcome::Failed {
                kind: FailureKind::Environment(_),
                ..
            } => "environment",
            Outcome::Interrupted { .. } => "interrupted",
            Outcome::Stopped(_) => "stopped",
        }
    }
}

/// The execution port: prepare the workspace, run the agent, commit and push. `audit` posts the
/// run's own events on the work package as it goes.
pub trait Execute: Send + Sync {
    fn execute(
        &self,
        task: Task,
        audit: Audit,
        cancel: CancellationToken,
    ) -> impl Future<Output = Outcome> + Send;
}
