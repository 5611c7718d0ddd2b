//! The humans the demo plays, as plain functions on the board (a human's edits need no HTTP):
//! the product owner who opens the Phase once the first work is done and answers the Spike the
//! fleet asks, the reviewer who accepts finished work (and sends one ticket back once, with a
//! comment), and the judgement of when there is nothing left to do.
//!
//! They act only through the board's own write path (`Board::update`, with the current
//! `lockVersion`), so every edit lands in the journal the timeline is built from, and bumps
//! lockVersions exactly as a person's edit in OpenProject would.

use crate::config::BoardNames;
use crate::harness::sim::{self, Board, POD_FIELD, WpChange};

fn status_id(b: &Board, name: &str) -> Option<u64> {
    b.status_named(name).map(|s| s.id)
}

pub(super) fn type_name(b: &Board, wp: &sim::Wp) -> String {
    b.type_(wp.type_id)
        .map(|t| t.name.clone())
        .unwrap_or_default()
}

/// Sets `id` to status `name` as `user` (a human's edit with the current lockVersion).
fn set_status(b: &mut Board, user: u64, id: u64, name: &str) {
    let (Some(status), Some(lv)) = (status_id(b, name), b.wps.get(&id).map(|w| w.lock_version))
    else {
        return;
    };
    let change = WpChange {
        status: Some(status),
        ..Default::default()
    };
    if let Err(e) = b.update(user, id, Some(lv), change) {
        tracing::error!(wp = id, error = %e.message, "the demo could not set the status");
    }
}

/// The product owner: once any work is done, every Phase still waiting opens (In progress).
pub(super) fn open_phases_when_work_is_done(b: &mut Board) {
    let names = BoardNames::default();
    let work_done = b.wps.values().any(|w| {
        names.work_types.contains(&type_name(b, w))
            && b.status(w.status)
                .is_some_and(|s| s.name == names.done_status || s.is_closed)
    });
    if !work_done {
        return;
    }
    let waiting: Vec<u64> = b
        .wps
        .values()
        .filter(|w| type_name(b, w) == names.phase_type)
        .filter(|w| {
            b.status(w.status)
                .is_some_and(|s| !s.is_closed && s.name != names.active_status)
        })
        .map(|w| w.id)
        .collect();
    for id in waiting {
        set_status(b, sim::ADMIN_USER, id, &names.active_status);
    }
}

/// What the reviewer writes when the README task comes in the first time.
pub(super) const SEND_BACK: &str =
    "Please show --shout in the README's usage example too, then it is good to go.";

/// What the product owner answers on a ticket that waits behind the fleet's question.
pub(super) const ANSWER: &str = "@journeyman There are no PyPI credentials on purpose: build the wheel only (python3 -m build) and leave the upload to a human.";

/// Whether `user` already wrote a comment on `id`.
fn wrote(b: &Board, user: u64, id: u64) -> bool {
    b.journal.iter().any(|e| {
        e.wp == id && e.user == user && matches!(e.action, sim::JournalAction::Commented { .. })
    })
}

/// The product owner answers, once, on every work package that waits behind an open Spike.
pub(super) fn answer_spikes(b: &mut Board, owner: u64) {
    let names = BoardNames::default();
    let waiting: Vec<u64> = b
        .wps
        .values()
        .filter(|w| names.work_types.contains(&type_name(b, w)) && !b.is_closed(w))
        .filter(|w| {
            b.children_of(w.id).any(|c| {
                b.wps
                    .get(&c)
                    .is_some_and(|c| type_name(b, c) == names.spike_type && !b.is_closed(c))
            })
        })
        .map(|w| w.id)
        .filter(|id| !wrote(b, owner, *id))
        .collect();
    for id in waiting {
        if let Err(e) = b.comment(owner, id, ANSWER) {
            tracing::error!(wp = id, error = %e.message, "the demo could not answer");
        }
    }
}

/// The reviewer: accepts done work (In testing -> Closed), except the README task the first
/// time, which goes back (to New, with a comment); then closes an Epic once it is released with
/// every child closed, and an open Phase whose children are all closed.
pub(super) fn review(b: &mut Board, reviewer: u64) {
    let names = BoardNames::default();
    let done: Vec<u64> = b
        .wps
        .values()
        .filter(|w| {
            b.status(w.status)
                .is_some_and(|s| s.name == names.done_status)
        })
        .map(|w| w.id)
        .collect();
    for id in done {
        let readme = b.wps.get(&id).is_some_and(|w| w.subject.contains("README"));
        if readme && !wrote(b, reviewer, id) {
            if let Err(e) = b.comment(reviewer, id, SEND_BACK) {
                tracing::error!(wp = id, error = %e.message, "the demo could not comment");
            }
            set_status(b, reviewer, id, "New");
            continue;
        }
        set_status(b, reviewer, id, "Closed");
    }
    let finished: Vec<u64> = b
        .wps
        .values()
        .filter(|w| !b.is_closed(w))
        .filter(|w| {
            let t = type_name(b, w);
            (t == names.epic_type && !w.custom.contains_key(&POD_FIELD))
                || (t == names.phase_type
                    && b.status(w.status)
                        .is_some_and(|s| s.name == names.active_status))
        })
        .filter(|w| {
            let mut children = b.children_of(w.id).peekable();
            children.peek().is_some()
                && children.all(|c| b.wps.get(&c).is_some_and(|c| b.is_closed(c)))
        })
        .map(|w| w.id)
        .collect();
    for id in finished {
        set_status(b, reviewer, id, "Closed");
    }
}

/// Nothing left to do: no work In progress, and every work package other than a Spike is closed,
/// waits behind an open Spike that was filed after the product owner's answer (the answer did not
/// help: a human must look), or is pinned to a pod that is not running. A Spike the owner has not
/// answered yet, or one answered but not yet closed by the fleet, is still to be played out.
pub(super) fn settled(b: &Board, pods: &[String], owner: u64) -> bool {
    let names = BoardNames::default();
    let answered_at = |id: u64| {
        b.journal
            .iter()
            .filter(|e| {
                e.wp == id
                    && e.user == owner
                    && matches!(e.action, sim::JournalAction::Commented { .. })
            })
            .map(|e| e.seq)
            .max()
    };
    let filed_at = |id: u64| {
        b.journal
            .iter()
            .find(|e| e.wp == id && matches!(e.action, sim::JournalAction::Created { .. }))
            .map_or(0, |e| e.seq)
    };
    let waits_for_a_human = |w: &sim::Wp| {
        let answer = answered_at(w.id);
        b.children_of(w.id).any(|c| {
            b.wps.get(&c).is_some_and(|s| {
                type_name(b, s) == names.spike_type
                    && !b.is_closed(s)
                    && answer.is_some_and(|a| filed_at(c) > a)
            })
        })
    };
    b.wps
        .values()
        .filter(|w| type_name(b, w) != names.spike_type)
        .all(|w| {
            let in_progress = names.work_types.contains(&type_name(b, w))
                && b.status(w.status)
                    .is_some_and(|s| s.name == names.active_status);
            let pinned_away = w.custom.get(&POD_FIELD).is_some_and(|p| !pods.contains(p))
                && names.work_types.contains(&type_name(b, w));
            !in_progress && (b.is_closed(w) || waits_for_a_human(w) || pinned_away)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::demo::tests::seeded;
    use crate::harness::sim::{ADMIN_USER, AGENT_USER};

    fn status(b: &Board, id: u64) -> String {
        b.status(b.wps[&id].status).unwrap().name.clone()
    }

    #[test]
    fn the_phase_opens_only_after_the_first_work_is_done() {
        let (mut b, k) = seeded();
        open_phases_when_work_is_done(&mut b);
        assert_eq!(status(&b, k["release"]), "New");
        set_status(&mut b, AGENT_USER, k["bug"], "In testing");
        open_phases_when_work_is_done(&mut b);
        assert_eq!(status(&b, k["release"]), "In progress");
    }

    #[test]
    fn the_reviewer_closes_done_work_then_finished_containers() {
        let (mut b, k) = seeded();
        set_status(&mut b, ADMIN_USER, k["release"], "In progress");
        for key in ["version", "changelog", "options"] {
            set_status(&mut b, AGENT_USER, k[key], "In testing");
        }
        review(&mut b, ADMIN_USER);
        assert_eq!(status(&b, k["options"]), "Closed");
        assert_eq!(
            status(&b, k["release"]),
            "Closed",
            "all its children closed"
        );
        assert_eq!(status(&b, k["epic"]), "New", "two children still open");
        assert_eq!(status(&b, k["shout"]), "New");
    }

    #[test]
    fn settled_means_closed_or_behind_an_open_spike() {
        let (mut b, k) = seeded();
        let pods = ["demo-pod-1".to_string(), "demo-pod-2".to_string()];
        assert!(!settled(&b, &pods, ADMIN_USER));
        let ids: Vec<u64> = b.wps.keys().copied().collect();
        for id in ids.into_iter().filter(|id| *id != k["fails"]) {
            set_status(&mut b, ADMIN_USER, id, "Closed");
        }
        assert!(
            !settled(&b, &pods, ADMIN_USER),
            "the failing task is still open, no Spike yet"
        );
        let mut spike = sim::seed::SeedWp::new("Spike", "Spike: agent failed");
        spike.parent = Some(k["fails"]);
        sim::seed::create(&mut b, &spike).unwrap();
        assert!(
            !settled(&b, &pods, ADMIN_USER),
            "the owner has not answered the Spike yet"
        );
        answer_spikes(&mut b, ADMIN_USER);
        assert!(
            !settled(&b, &pods, ADMIN_USER),
            "answered: the fleet closes the Spike and tries again"
        );
        let mut again = sim::seed::SeedWp::new("Spike", "Spike: still failing");
        again.parent = Some(k["fails"]);
        sim::seed::create(&mut b, &again).unwrap();
        let first = b.children_of(k["fails"]).next().unwrap();
        set_status(&mut b, ADMIN_USER, first, "Closed");
        assert!(
            settled(&b, &pods, ADMIN_USER),
            "a Spike filed after the answer waits for a human"
        );
        set_status(&mut b, AGENT_USER, k["fails"], "In progress");
        assert!(
            !settled(&b, &pods, ADMIN_USER),
            "work In progress is never settled"
        );
    }

    #[test]
    fn a_ticket_pinned_to_a_pod_that_is_not_running_does_not_hold_the_demo() {
        let (mut b, k) = seeded();
        let ids: Vec<u64> = b.wps.keys().copied().collect();
        for id in ids.into_iter().filter(|id| *id != k["pinned"]) {
            set_status(&mut b, ADMIN_USER, id, "Closed");
        }
        assert!(settled(&b, &["demo-pod-1".to_string()], ADMIN_USER));
        assert!(!settled(
            &b,
            &["demo-pod-1".to_string(), "demo-pod-2".to_string()],
            ADMIN_USER
        ));
    }
}
