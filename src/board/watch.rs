//! While the agent runs, the board is still the control surface: a human who takes the work away
//! stops the run. This is the pure verdict: what the pod's own work package (and the Epic it owns)
//! look like now, against what the claim made them, in; whether to stop and why, out.
//!
//! Taken away means: the status moved out of the active status (to anything), the pod field
//! cleared or set to another pod, the work package deleted or moved to a project without a
//! repository, an open Spike added under it, a `@journeyman stop` comment, or the Epic above it
//! unowned (pod field cleared or another pod's) or closed. A comment alone changes nothing.

use super::model::Catalog;

/// The pod's work package as the board has it now (`None` fields: deleted or unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub status: u64,
    pub pod: Option<String>,
    pub project: u64,
    /// Open Spike children added since the claim (only a human adds them during a run).
    pub new_open_spikes: Vec<u64>,
}

/// The Epic above it, as the board has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEpic {
    pub id: u64,
    pub status: u64,
    pub pod: Option<String>,
}

/// Why a run was stopped from the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The status is no longer the active one.
    Status { now: u64 },
    /// The pod field was cleared or names another pod.
    PodField { now: Option<String> },
    /// The work package is gone (deleted, or no longer visible to the agent user).
    Deleted,
    /// Moved to a project without a repository.
    Moved { project: u64 },
    /// A human opened a Spike under it.
    Spike { id: u64 },
    /// A human wrote `@journeyman stop`.
    StopComment,
    /// The Epic above it is no longer this pod's (pod field cleared or another pod's).
    EpicUnowned { epic: u64 },
    /// The Epic above it was closed.
    EpicClosed { epic: u64 },
}

impl StopReason {
    /// The label of the reason in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            StopReason::Status { .. } => "status",
            StopReason::PodField { .. } => "pod_field",
            StopReason::Deleted => "deleted",
            StopReason::Moved { .. } => "moved",
            StopReason::Spike { .. } => "spike",
            StopReason::StopComment => "stop_comment",
            StopReason::EpicUnowned { .. } => "epic_unowned",
            StopReason::EpicClosed { .. } => "epic_closed",
        }
    }
}

/// Whether the run of pod `me` on this work package must stop. `wp` is `None` when it is gone;
/// `stop_comment` says a human wrote the stop mention since the run began.
pub fn verdict(
    c: &Catalog,
    me: &str,
    wp: Option<&Watched>,
    epic: Option<&WatchedEpic>,
    stop_comment: bool,
) -> Option<StopReason> {
    let Some(wp) = wp else {
        return Some(StopReason::Deleted);
    };
    if wp.status != c.active_status {
        return Some(StopReason::Status { now: wp.status });
    }
    if wp.pod.as_deref() != Some(me) {
        return Some(StopReason::PodField {
            now: wp.pod.clone(),
        });
    }
    if !c.projects.contains(&wp.project) {
        return Some(StopReason::Moved {
            project: wp.project,
        });
    }
    if let Some(&id) = wp.new_open_spikes.first() {
        return Some(StopReason::Spike { id });
    }
    if stop_comment {
        return Some(StopReason::StopComment);
    }
    let epic = epic?;
    if c.closed_statuses.contains(&epic.status) {
        return Some(StopReason::EpicClosed { epic: epic.id });
    }
    (epic.pod.as_deref() != Some(me)).then_some(StopReason::EpicUnowned { epic: epic.id })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVE: u64 = 7;
    const NEW: u64 = 1;
    const CLOSED: u64 = 12;
    const ON_HOLD: u64 = 13;

    fn catalog() -> Catalog {
        Catalog {
            active_status: ACTIVE,
            closed_statuses: [CLOSED].into(),
            projects: [1].into(),
            ..Catalog::default()
        }
    }

    fn mine() -> Watched {
        Watched {
            status: ACTIVE,
            pod: Some("pod-1".into()),
            project: 1,
            new_open_spikes: vec![],
        }
    }

    fn epic(status: u64, pod: Option<&str>) -> WatchedEpic {
        WatchedEpic {
            id: 5,
            status,
            pod: pod.map(String::from),
        }
    }

    fn check(wp: Option<Watched>, e: Option<WatchedEpic>, stop: bool, expect: Option<StopReason>) {
        assert_eq!(
            verdict(&catalog(), "pod-1", wp.as_ref(), e.as_ref(), stop),
            expect
        );
    }

    #[test]
    fn a_run_goes_on_while_the_work_is_still_this_pods() {
        check(Some(mine()), None, false, None);
        check(Some(mine()), Some(epic(ACTIVE, Some("pod-1"))), false, None);
    }

    #[test]
    fn every_human_change_that_takes_the_work_away_stops_the_run() {
        let with = |f: &dyn Fn(&mut Watched)| {
            let mut w = mine();
            f(&mut w);
            Some(w)
        };
        check(
            with(&|w| w.status = ON_HOLD),
            None,
            false,
            Some(StopReason::Status { now: ON_HOLD }),
        );
        check(
            with(&|w| w.status = NEW),
            None,
            false,
            Some(StopReason::Status { now: NEW }),
        );
        check(
            with(&|w| w.status = CLOSED),
            None,
            false,
            Some(StopReason::Status { now: CLOSED }),
        );
        check(
            with(&|w| w.pod = None),
            None,
            false,
            Some(StopReason::PodField { now: None }),
        );
        check(
            with(&|w| w.pod = Some("pod-2".into())),
            None,
            false,
            Some(StopReason::PodField {
                now: Some("pod-2".into()),
            }),
        );
        check(None, None, false, Some(StopReason::Deleted));
        check(
            with(&|w| w.project = 9),
            None,
            false,
            Some(StopReason::Moved { project: 9 }),
        );
        check(
            with(&|w| w.new_open_spikes = vec![42]),
            None,
            false,
            Some(StopReason::Spike { id: 42 }),
        );
        check(Some(mine()), None, true, Some(StopReason::StopComment));
        check(
            Some(mine()),
            Some(epic(ACTIVE, None)),
            false,
            Some(StopReason::EpicUnowned { epic: 5 }),
        );
        check(
            Some(mine()),
            Some(epic(ACTIVE, Some("pod-2"))),
            false,
            Some(StopReason::EpicUnowned { epic: 5 }),
        );
        check(
            Some(mine()),
            Some(epic(CLOSED, Some("pod-1"))),
            false,
            Some(StopReason::EpicClosed { epic: 5 }),
        );
    }
}
