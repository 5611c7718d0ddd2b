//! The worker's comments as typed events, and how each one reads on the ticket.
//!
//! Every comment the worker writes is one [`Event`] rendered by [`Event::render`]; nothing else in
//! the crate formats a `journeyman: ...` comment. [`super::parse`] reads the same text back, so the
//! audit trail (attempt counting, resume markers, the demo's timeline) is one protocol with one
//! owner. The texts are the contract a human reads on the board: change them only together with
//! the parser, and the round-trip tests tell you if the two disagree.
//!
//! Free text (a failure reason) is normalised to one bounded line when the event is made
//! ([`one_line`]), so that a rendered comment always parses back to the same event.

use std::fmt::Write as _;

use super::progress::{self, PlanItem, Progress};

pub use super::text::{PREFIX, REASON_CHARS, one_line, truncate};

/// Something the worker did, as recorded on a work package (or Epic).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A claim won; the agent is about to run. `owner` names the branch (the Epic, or the work
    /// package itself).
    Starting {
        pod: String,
        owner: u64,
        repo: String,
        base: String,
    },
    /// The pod restarted and picks up its own claim (a run died: counts as an attempt).
    Resuming { pod: String },
    /// A human sent done work back (from the done status to a ready one): the pod picks it up
    /// again on the same branch. `first_line` is the first line of their comment, if any.
    Rework {
        pod: String,
        by: String,
        first_line: String,
    },
    /// A claim of a pod that never came back, taken over (on the work package: counts as an
    /// attempt; on its Epic: does not).
    TookOver {
        pod: String,
        from: String,
        lease: String,
        epic: bool,
    },
    /// The branch is ready and the agent starts on it.
    Started {
        pod: String,
        repo: String,
        branch: String,
        base_commit: String,
    },
    /// A resumed run found its own commit unpushed: pushing it instead of running the agent.
    PushingUnpushed { commit: String },
    /// A resumed run found its own commit already pushed: reporting it.
    AlreadyPushed { commit: String, branch: String },
    /// What a run of the agent used.
    Usage(Usage),
    /// The checkout's environment was entered (the dev shell built) before the agent, in `seconds`;
    /// `lock` is the flake.lock's git blob id, or `none`.
    EnvironmentReady { seconds: f64, lock: String },
    /// This pod's last agent session on the work package is resumed with the new history.
    Resumed { session: String },
    /// It could not be: `why` (not on this pod any more, or the agent refused it); a fresh
    /// session starts instead.
    FreshSession { session: String, why: String },
    /// Files the agent wrote that were too large to commit.
    SkippedLarge { files: Vec<String> },
    /// Success: committed and pushed, the status set to done.
    Pushed { commit: String, branch: String },
    /// Not the ticket's fault: released without a Spike; the pod pauses.
    EnvironmentProblem {
        pod: String,
        reason: String,
        question: Question,
    },
    /// A failed attempt: a Spike was filed and the ticket released.
    Failed {
        pod: String,
        reason: String,
        spike: u64,
    },
    /// Too many failed attempts: escalated to a human with a Spike instead of running again.
    Escalated {
        pod: String,
        reason: String,
        spike: u64,
    },
    /// The claim released without an outcome (shutdown).
    Released { pod: String, reason: String },
    /// A stale Epic released so another pod can take it.
    EpicStale {
        pod: String,
        previous: String,
        stale_after: String,
    },
    /// Every open work package below the Epic is done: the pod lets go of it.
    EpicFinished { pod: String },
    /// The pod paused after an environment problem and lets go of its Epic.
    EpicPaused { pod: String },
    /// The pod claimed the Epic for `child`, lost that claim and has nothing else below it.
    EpicGivenBack { pod: String, child: u64 },
    /// The worker closed this Spike for a human who answered it on the work package it holds.
    SpikeAnswered { pod: String, by: String, wp: u64 },
    /// A human's change on the board stopped the run: `what` changed, `by` whom; `after` says
    /// what was kept and where the work package stands.
    Stopped {
        pod: String,
        what: String,
        by: String,
        after: String,
    },
    /// On a work package pinned to a pod that is busy: it waits behind `behind` (said once).
    Queued { pod: String, behind: u64 },
    /// The agent's plan (its todo list) as a checklist, posted once per run.
    Plan { pod: String, items: Vec<PlanItem> },
    /// The run so far: one comment per run, edited in place.
    Progress(Progress),
    /// The board refused a write as invalid (422): `what` the pod tried, the board's `reason`, and
    /// the `fix` a human can make. Never retried as is.
    Refused {
        pod: String,
        what: String,
        reason: String,
        fix: String,
    },
}

/// How an agent run ended, for its usage line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Complete,
    Failed,
}

/// The usage of one agent run. Cost and seconds are kept at the precision they are shown with,
/// so what is read back from the board equals what was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub end: RunEnd,
    pub session: String,
    pub turns: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub seconds: f64,
}

impl Usage {
    pub fn new(
        end: RunEnd,
        session: Option<&str>,
        turns: u32,
        tokens: (u64, u64),
        cost_usd: f64,
        seconds: f64,
    ) -> Usage {
        Usage {
            end,
            session: session.unwrap_or("unknown").to_string(),
            turns,
            input_tokens: tokens.0,
            output_tokens: tokens.1,
            cost_usd: round(cost_usd, 10_000.0),
            seconds: round(seconds, 10.0),
        }
    }
}

fn round(x: f64, scale: f64) -> f64 {
    if x.is_finite() {
        (x * scale).round() / scale
    } else {
        0.0
    }
}

/// The smallest question a human can answer to fix an environment problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    GitCredentials,
    BaseBranch,
    ReachRepository,
    DevShell,
    AgentCommand,
    Other,
}

impl Question {
    pub const ALL: [Question; 6] = [
        Question::GitCredentials,
        Question::BaseBranch,
        Question::ReachRepository,
        Question::DevShell,
        Question::AgentCommand,
        Question::Other,
    ];

    pub fn text(self) -> &'static str {
        match self {
            Question::GitCredentials => {
                "are the git credentials of this pod (JOURNEYMAN_GIT_TOKEN or JOURNEYMAN_GIT_SSH_KEY) valid for the repository?"
            }
            Question::BaseBranch => {
                "does the base branch named in JOURNEYMAN_REPOS exist on the remote?"
            }
            Question::ReachRepository => {
                "can this pod reach the repository in JOURNEYMAN_REPOS from its network?"
            }
            Question::DevShell => {
                "does the repository's flake.nix build and enter on this pod (nix develop --command true)?"
            }
            Question::AgentCommand => {
                "is the agent command (JOURNEYMAN_AGENT_COMMAND) and the wrapper (JOURNEYMAN_ENV_WRAPPER, e.g. nix) installed on this pod?"
            }
            Question::Other => {
                "what in this pod's environment must change for the error above to go away?"
            }
        }
    }
}

/// Fixed phrases shared by [`Event::render`] and the parser.
pub(super) mod phrase {
    pub const STARTING: &str = "**starting** on pod `";
    pub const STARTING_NEXT: &str = "`. Next: prepare a branch for #";
    pub const STARTING_IN: &str = " in `";
    pub const STARTING_BASE: &str = "` (base `";
    pub const STARTING_END: &str = "`), run the agent, then commit and push.";
    pub const RESUMING: &str = "` restarted and is **resuming** this work package.";
    pub const REWORK: &str = "` picks up **rework** requested by ";
    pub const TOOK_OVER: &str = "` **took over** this ";
    pub const TOOK_OVER_WP_END: &str = " (longer than a task may run).";
    pub const STARTED: &str = "**started** on pod `";
    pub const UNPUSHED: &str = "` for this work package from an interrupted run; pushing it instead of running the agent again.";
    pub const ALREADY: &str = "` for this work package is already on `";
    pub const ALREADY_END: &str = "`; reporting it instead of running the agent again.";
    pub const LARGE: &str = "left out files over the size limit: ";
    pub const ENV_READY: &str = "**environment ready** in ";
    pub const ENV_READY_LOCK: &str = "s (flake.lock `";
    pub const RESUMED: &str = "resuming agent session `";
    pub const RESUMED_END: &str = "` with the conversation since.";
    pub const FRESH: &str = "could not resume agent session `";
    pub const FRESH_END: &str = "; starting a fresh session.";
    pub const PUSHED: &str = "**pushed** `";
    pub const PUSHED_END: &str = "`. Status set to done for review.";
    pub const ENVIRONMENT: &str = "**environment problem** on pod `";
    pub const ENVIRONMENT_MIDDLE: &str = ". This is not the ticket's fault: it goes back to the pool without a Spike, and this pod pauses claiming. Question for a human: ";
    pub const FAILED: &str = "**failed** on pod `";
    pub const ESCALATED: &str = "**escalated** on pod `";
    pub const SPIKE: &str = ". Filed Spike #";
    pub const SPIKE_END: &str = "; this work package returns to the pool once the Spike is closed.";
    pub const RELEASED: &str = "` **released** this work package: ";
    pub const EPIC_STALE: &str = "**released** this Epic (was owned by pod `";
    pub const EPIC_STALE_MIDDLE: &str =
        "`): nothing below it is In progress and it saw no activity for ";
    pub const EPIC_STALE_END: &str = ". Any pod may take it now. (pod `";
    pub const EPIC_FINISHED: &str = "every open work package below this Epic is done; pod `";
    pub const EPIC_FINISHED_END: &str =
        "` releases it. The status is left for a human to review and close.";
    pub const EPIC_PAUSED: &str = "` **released** this Epic: it paused after an environment problem, and another pod may continue.";
    pub const EPIC_GIVEN_BACK: &str = "` **released** this Epic again: it lost the claim on #";
    pub const EPIC_GIVEN_BACK_END: &str =
        " to another pod, and nothing else below it is eligible for this pod.";
    pub const ANSWERED: &str = "` **closed** this Spike: ";
    pub const ANSWERED_ON: &str = " answered it on #";
    pub const ANSWERED_END: &str = ", which returns to the pool with the answer in its history.";
    pub const STOPPED: &str = "` **stopped** its run: ";
    pub const STOPPED_BY: &str = ", by ";
    pub const STOPPED_AFTER: &str = ". Nothing was committed or pushed";
    pub const QUEUED: &str = "` is busy with #";
    pub const QUEUED_END: &str =
        ": this work package, pinned to it, is **queued** behind it and starts when that is done.";
    pub const REFUSED: &str = "` was **refused** by the board: it could not ";
    pub const REFUSED_FIX: &str = ". To fix: ";
    pub const REFUSED_END: &str = ". journeyman does not retry this as is.";
}

impl Event {
    /// The comment's Markdown, exactly as posted on the board.
    pub fn render(&self) -> String {
        match self {
            Event::Plan { pod, items } => return progress::render_plan(pod, items),
            Event::Progress(p) => return progress::render_progress(p),
            _ => {}
        }
        let mut s = String::from(PREFIX);
        if !self.render_run(&mut s) {
            self.render_outcome(&mut s);
        }
        s
    }

    /// The events of a run (start to commit); `false` for the others.
    fn render_run(&self, s: &mut String) -> bool {
        use phrase::*;
        // Writing to a String cannot fail.
        let _ = match self {
            Event::Starting {
                pod,
                owner,
                repo,
                base,
            } => write!(
                s,
                "{STARTING}{pod}{STARTING_NEXT}{owner}{STARTING_IN}{repo}{STARTING_BASE}{base}{STARTING_END}"
            ),
            Event::Resuming { pod } => write!(s, "pod `{pod}{RESUMING}"),
            Event::Rework {
                pod,
                by,
                first_line,
            } => write!(s, "pod `{pod}{REWORK}{by}: {first_line}"),
            Event::TookOver {
                pod,
                from,
                lease,
                epic,
            } => {
                let (what, end) = if *epic {
                    ("Epic", ".")
                } else {
                    ("work package", TOOK_OVER_WP_END)
                };
                write!(
                    s,
                    "pod `{pod}{TOOK_OVER}{what} from pod `{from}`, which showed no activity for {lease}{end}"
                )
            }
            Event::Started {
                pod,
                repo,
                branch,
                base_commit,
            } => write!(
                s,
                "{STARTED}{pod}`: repository `{repo}`, branch `{branch}`, base commit `{base_commit}`."
            ),
            Event::PushingUnpushed { commit } => write!(s, "found commit `{commit}{UNPUSHED}"),
            Event::AlreadyPushed { commit, branch } => {
                write!(s, "commit `{commit}{ALREADY}{branch}{ALREADY_END}")
            }
            Event::Usage(u) => {
                let what = match u.end {
                    RunEnd::Complete => "execution **complete**",
                    RunEnd::Failed => "agent run **failed**",
                };
                write!(
                    s,
                    "{what}: session `{}`, {} turns, {} input / {} output tokens, ${:.4}, {:.1}s.",
                    u.session, u.turns, u.input_tokens, u.output_tokens, u.cost_usd, u.seconds
                )
            }
            Event::SkippedLarge { files } => write!(s, "{LARGE}{}", files.join(", ")),
            Event::Resumed { session } => write!(s, "{RESUMED}{session}{RESUMED_END}"),
            Event::EnvironmentReady { seconds, lock } => {
                write!(s, "{ENV_READY}{seconds:.1}{ENV_READY_LOCK}{lock}`).")
            }
            Event::FreshSession { session, why } => {
                write!(s, "{FRESH}{session}` ({why}){FRESH_END}")
            }
            _ => return false,
        };
        true
    }

    /// The events of an outcome and of the Epic's ownership.
    fn render_outcome(&self, s: &mut String) {
        use phrase::*;
        let _ = match self {
            Event::Pushed { commit, branch } => {
                write!(s, "{PUSHED}{commit}` to branch `{branch}{PUSHED_END}")
            }
            Event::EnvironmentProblem {
                pod,
                reason,
                question,
            } => write!(
                s,
                "{ENVIRONMENT}{pod}`: {reason}{ENVIRONMENT_MIDDLE}{}",
                question.text()
            ),
            Event::Failed { pod, reason, spike } => {
                write!(s, "{FAILED}{pod}`: {reason}{SPIKE}{spike}{SPIKE_END}")
            }
            Event::Escalated { pod, reason, spike } => {
                write!(s, "{ESCALATED}{pod}`: {reason}{SPIKE}{spike}{SPIKE_END}")
            }
            Event::Released { pod, reason } => write!(s, "pod `{pod}{RELEASED}{reason}."),
            Event::EpicStale {
                pod,
                previous,
                stale_after,
            } => write!(
                s,
                "{EPIC_STALE}{previous}{EPIC_STALE_MIDDLE}{stale_after}{EPIC_STALE_END}{pod}`)"
            ),
            Event::EpicFinished { pod } => write!(s, "{EPIC_FINISHED}{pod}{EPIC_FINISHED_END}"),
            Event::EpicPaused { pod } => write!(s, "pod `{pod}{EPIC_PAUSED}"),
            Event::EpicGivenBack { pod, child } => {
                write!(s, "pod `{pod}{EPIC_GIVEN_BACK}{child}{EPIC_GIVEN_BACK_END}")
            }
            Event::Stopped {
                pod,
                what,
                by,
                after,
            } => write!(
                s,
                "pod `{pod}{STOPPED}{what}{STOPPED_BY}{by}{STOPPED_AFTER}{after}"
            ),
            Event::SpikeAnswered { pod, by, wp } => {
                write!(s, "pod `{pod}{ANSWERED}{by}{ANSWERED_ON}{wp}{ANSWERED_END}")
            }
            Event::Queued { pod, behind } => write!(s, "pod `{pod}{QUEUED}{behind}{QUEUED_END}"),
            Event::Refused {
                pod,
                what,
                reason,
                fix,
            } => write!(
                s,
                "pod `{pod}{REFUSED}{what}: {reason}{REFUSED_FIX}{fix}{REFUSED_END}"
            ),
            _ => Ok(()),
        };
    }

    /// Whether a human must act on this event (watchers are notified of it; of routine events not).
    pub fn needs_human(&self) -> bool {
        matches!(
            self,
            Event::EnvironmentProblem { .. } | Event::Escalated { .. } | Event::Refused { .. }
        )
    }

    /// Whether this event means an attempt at the work package failed or died: failures, and
    /// runs that never reported (a resume or a takeover of the work package).
    pub fn is_failed_attempt(&self) -> bool {
        matches!(
            self,
            Event::Failed { .. } | Event::Resuming { .. } | Event::TookOver { epic: false, .. }
        )
    }
}
