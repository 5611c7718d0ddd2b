//! The decision's settings and the pod's one piece of memory: how long a claim or an Epic stays
//! valid, how many failed attempts a ticket gets, and the pause after an environment failure.
//!
//! Pure data and arithmetic. The lease formula lives here once; the process uses it for the
//! decision and for its health check alike.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Inputs of the decision that are configuration, not board state.
#[derive(Debug, Clone)]
pub struct Policy {
    pub epic_stale_after: chrono::Duration,
    /// How long a claim stays valid without any activity on the work package: the task timeout
    /// plus a grace. A live pod always writes (a comment, a status) within it.
    pub claim_lease: chrono::Duration,
    /// After this many failed attempts on a ticket's trail, it is escalated instead of run.
    pub max_attempts: u32,
    /// A ticket whose claim the board refused (422) is not tried again for this long.
    pub refusal_retry: chrono::Duration,
    /// How a human addresses the fleet in a comment (`@journeyman ...`).
    pub mention: String,
    /// How many of the best equal candidates pods spread their claims over (`spread.rs`); 1 is
    /// the strict order.
    pub spread: usize,
}

/// The mention when `JOURNEYMAN_MENTION` is unset.
pub const MENTION: &str = "@journeyman";

/// Candidates of the best priority class that pods spread their claims over.
pub const SPREAD: usize = 8;

/// How long a refused claim waits before it is tried again.
pub const REFUSAL_RETRY: Duration = Duration::from_secs(3600);

/// Slack on top of the task timeout and the shutdown grace before a claim counts as abandoned.
pub const LEASE_SLACK: Duration = Duration::from_secs(300);

impl Policy {
    /// The claim lease is the task timeout plus the shutdown grace plus [`LEASE_SLACK`]: a live
    /// pod always writes to its work package within it.
    pub fn new(
        epic_stale_after: Duration,
        task_timeout: Duration,
        shutdown_grace: Duration,
        max_attempts: u32,
    ) -> Policy {
        Policy {
            epic_stale_after: chrono_duration(epic_stale_after),
            claim_lease: chrono_duration(task_timeout + shutdown_grace + LEASE_SLACK),
            max_attempts: max_attempts.max(1),
            refusal_retry: chrono_duration(REFUSAL_RETRY),
            mention: MENTION.into(),
            spread: SPREAD,
        }
    }

    /// Spreading claims over `k` candidates (1: every pod goes for the same best one).
    pub fn with_spread(mut self, k: usize) -> Policy {
        self.spread = k.max(1);
        self
    }

    /// With another mention than `@journeyman`.
    pub fn with_mention(mut self, mention: &str) -> Policy {
        self.mention = mention.to_string();
        self
    }

    /// The claim lease as a standard duration (for the health check).
    pub fn claim_lease_std(&self) -> Duration {
        self.claim_lease.to_std().unwrap_or(Duration::MAX)
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The first pause after an environment failure; each further one doubles, up to [`PAUSE_MAX`].
pub const PAUSE_FIRST: Duration = Duration::from_secs(60);
pub const PAUSE_MAX: Duration = Duration::from_secs(3600);

/// A pod that hit an environment failure claims nothing until `until` (its Epic is released), so
/// a broken pod cannot burn the whole pool. Kept by the pod, not the board: a restarted pod tries
/// once more, which is what a human fixing the pod wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub until: DateTime<Utc>,
    pub backoff: Duration,
    pub reason: String,
}

/// What a finished task means for the pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paced {
    /// The environment failed: pause, twice as long as last time.
    Environment,
    /// The task ran (pushed or failed on its own merits): the environment works, no pause.
    Ran,
    /// Shutdown interrupted it: nothing learned.
    Interrupted,
}

impl Pause {
    /// The pause after a task, from the previous one.
    pub fn after(
        previous: Option<Pause>,
        paced: Paced,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Option<Pause> {
        match paced {
            Paced::Environment => {
                let backoff = previous
                    .map(|p| (p.backoff * 2).min(PAUSE_MAX))
                    .unwrap_or(PAUSE_FIRST);
                Some(Pause {
                    until: now + chrono_duration(backoff),
                    backoff,
                    reason: reason.to_string(),
                })
            }
            Paced::Ran => None,
            Paced::Interrupted => previous,
        }
    }

    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }
}
