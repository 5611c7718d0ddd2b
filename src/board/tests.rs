//! Tests of the decision: a table of named scenarios (one line each through `check`) and property
//! tests over random boards against an independent, deliberately naive oracle of eligibility.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::decide::{Action, Progress, Release, Rule, Target, decide, target};
use super::eligible::{Ineligible, ineligibility};
use super::model::{Catalog, Item, Snapshot};
use super::policy::{Paced, Pause, Policy};

// Ids as a fresh OpenProject seeds them (API-NOTES section 7) plus Spike = 8.
const NEW: u64 = 1;
const SPECIFIED: u64 = 3;
const CONFIRMED: u64 = 4;
const IN_PROGRESS: u64 = 7;
const IN_TESTING: u64 = 9;
const CLOSED: u64 = 12;
const ON_HOLD: u64 = 13;
const REJECTED: u64 = 14;
const TASK: u64 = 1;
const MILESTONE: u64 = 2;
const PHASE: u64 = 3;
const FEATURE: u64 = 4;
const EPIC: u64 = 5;
const STORY: u64 = 6;
const BUG: u64 = 7;
const SPIKE: u64 = 8;
const LOW: u64 = 7;
const NORMAL: u64 = 8;
const HIGH: u64 = 9;
const IMMEDIATE: u64 = 10;
const ME: &str = "pod-1";

fn catalog() -> Catalog {
    Catalog {
        ready_statuses: [NEW, SPECIFIED, CONFIRMED].into(),
        active_status: IN_PROGRESS,
        done_status: IN_TESTING,
        done_by_type: Default::default(),
        closed_statuses: [CLOSED, REJECTED].into(),
        work_types: [BUG, TASK, FEATURE, STORY].into(),
        bug_type: BUG,
        epic_type: EPIC,
        phase_type: PHASE,
        spike_type: SPIKE,
        priority_rank: [(LOW, 1), (NORMAL, 2), (HIGH, 3), (IMMEDIATE, 4)].into(),
        projects: [1].into(),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn policy() -> Policy {
    Policy {
        epic_stale_after: Duration::hours(2),
        claim_lease: Duration::minutes(45),
        max_attempts: 3,
        refusal_retry: Duration::hours(1),
        mention: "@journeyman".into(),
        spread: super::policy::SPREAD,
    }
}

/// A board under construction: items are added in id order, parents before children.
#[derive(Default)]
struct B {
    items: Vec<Item>,
    blocks: Vec<(u64, u64)>,
}

impl B {
    fn add(mut self, id: u64, type_id: u64, status: u64) -> Self {
        self.items.push(Item {
            id,
            lock_version: 0,
            subject: format!("#{id}"),
            type_id,
            status,
            priority: NORMAL,
            project: 1,
            ancestors: vec![],
            pod: None,
            updated_at: now(),
        });
        self
    }
    fn last(&mut self) -> &mut Item {
        self.items.last_mut().unwrap()
    }
    fn under(mut self, parent: u64) -> Self {
        let mut anc = self
            .items
            .iter()
            .find(|i| i.id == parent)
            .expect("parent first")
            .ancestors
            .clone();
        anc.push(parent);
        self.last().ancestors = anc;
        self
    }
    fn pod(mut self, pod: &str) -> Self {
        self.last().pod = Some(pod.into());
        self
    }
    fn prio(mut self, p: u64) -> Self {
        self.last().priority = p;
        self
    }
    fn project(mut self, p: u64) -> Self {
        self.last().project = p;
        self
    }
    fn idle_for(mut self, hours: i64) -> Self {
        self.last().updated_at = now() - Duration::hours(hours);
        self
    }
    fn blocks(mut self, from: u64, to: u64) -> Self {
        self.blocks.push((from, to));
        self
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.items.clone(), self.blocks.clone())
    }
}

/// The decision on a snapshot, with `p` as this cycle's progress, answering every
/// `ReadHistory` with a trail of `attempts[wp]` failed attempts (none if absent) and every
/// `CheckBlockers` with what the snapshot already says, as the cycle does.
fn decide_with(s: &Snapshot, p: &Progress, attempts: &[(u64, u32)]) -> Action {
    let mut p = p.clone();
    loop {
        match decide(s, &catalog(), ME, now(), &policy(), &p) {
            Action::ReadHistory { wp } => {
                assert!(!p.attempts.contains_key(&wp), "read #{wp} twice");
                let n = attempts
                    .iter()
                    .find(|(w, _)| *w == wp)
                    .map_or(0, |(_, n)| *n);
                p.attempts.insert(wp, n);
            }
            // The snapshot's blockers are the board's: the re-check finds nothing new.
            Action::CheckBlockers { wp } => {
                assert!(p.blockers_checked.insert(wp), "checked #{wp} twice");
            }
            action => return action,
        }
    }
}

/// The decision at the start of a cycle, on trails without failures.
fn fresh(s: &Snapshot) -> Action {
    decide_with(s, &Progress::default(), &[])
}

fn check(b: B, expect: Action) {
    assert_eq!(fresh(&b.snapshot()), expect);
}

fn check_with(b: B, p: Progress, attempts: &[(u64, u32)], expect: Action) {
    assert_eq!(decide_with(&b.snapshot(), &p, attempts), expect);
}

fn claim(wp: u64, epic: Option<u64>, rule: Rule) -> Action {
    Action::Claim { wp, epic, rule }
}

#[test]
fn empty_board_sleeps() {
    check(B::default(), Action::Sleep);
}

#[test]
fn rule1_resumes_my_in_progress_work_first() {
    check(
        B::default()
            .add(1, BUG, NEW)
            .prio(IMMEDIATE)
            .add(2, TASK, IN_PROGRESS)
            .pod(ME),
        Action::Resume { wp: 2 },
    );
}

#[test]
fn rule1_ignores_work_in_progress_by_other_pods() {
    check(
        B::default()
            .add(1, TASK, IN_PROGRESS)
            .pod("pod-2")
            .add(2, TASK, NEW),
        claim(2, None, Rule::Standalone),
    );
}

#[test]
fn rule1_does_not_resume_my_epic_as_work() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, TASK, NEW)
            .under(1),
        claim(2, None, Rule::MyEpic),
    );
}

#[test]
fn a_claim_older_than_the_lease_is_taken_over() {
    check(
        B::default()
            .add(1, BUG, NEW)
            .add(2, TASK, IN_PROGRESS)
            .pod("pod-9")
            .idle_for(1),
        Action::TakeOver {
            wp: 2,
            epic: None,
            from: "pod-9".into(),
        },
    );
}

#[test]
fn a_fresh_claim_of_another_pod_is_left_alone() {
    let mut b = B::default().add(1, TASK, IN_PROGRESS).pod("pod-9");
    b.last().updated_at = now() - Duration::minutes(44);
    check(b, Action::Sleep);
}

#[test]
fn a_takeover_takes_the_dead_pods_epic_too() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod("pod-9")
            .idle_for(5)
            .add(2, TASK, IN_PROGRESS)
            .under(1)
            .pod("pod-9")
            .idle_for(5),
        Action::TakeOver {
            wp: 2,
            epic: Some(1),
            from: "pod-9".into(),
        },
    );
}

#[test]
fn no_takeover_under_an_epic_owned_by_a_third_pod() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod("pod-8")
            .add(2, TASK, IN_PROGRESS)
            .under(1)
            .pod("pod-9")
            .idle_for(5),
        Action::Sleep,
    );
}

#[test]
fn my_own_work_is_resumed_before_any_takeover() {
    check(
        B::default()
            .add(1, TASK, IN_PROGRESS)
            .pod("pod-9")
            .idle_for(5)
            .add(2, TASK, IN_PROGRESS)
            .pod(ME),
        Action::Resume { wp: 2 },
    );
}

#[test]
fn rule2_continues_my_epic_before_bugs() {
    check(
        B::default()
            .add(1, BUG, NEW)
            .prio(IMMEDIATE)
            .add(2, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(3, TASK, NEW)
            .under(2)
            .prio(LOW),
        claim(3, None, Rule::MyEpic),
    );
}

#[test]
fn rule2_reaches_grandchildren_through_a_story() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, STORY, IN_PROGRESS)
            .under(1)
            .pod("pod-9")
            .add(3, TASK, NEW)
            .under(2),
        claim(3, None, Rule::MyEpic),
    );
}

#[test]
fn rule2_skips_a_blocked_child_of_my_epic() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, TASK, NEW)
            .under(1)
            .prio(HIGH)
            .add(3, TASK, NEW)
            .under(1)
            .blocks(3, 2),
        claim(3, None, Rule::MyEpic),
    );
}

#[test]
fn rule2_claims_my_pinned_epic_that_is_not_yet_in_progress() {
    check(
        B::default()
            .add(1, EPIC, NEW)
            .pod(ME)
            .add(2, TASK, NEW)
            .under(1),
        claim(2, Some(1), Rule::Task),
    );
}

#[test]
fn rule3_releases_a_stale_epic_of_another_pod() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod("pod-2")
            .idle_for(3)
            .add(2, TASK, NEW)
            .under(1)
            .idle_for(3),
        Action::ReleaseEpic {
            epic: 1,
            reason: Release::Stale,
        },
    );
}

#[test]
fn rule3_keeps_an_epic_with_recent_activity_below_it() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod("pod-2")
            .idle_for(3)
            .add(2, TASK, NEW)
            .under(1)
            .idle_for(1)
            .add(3, TASK, NEW),
        claim(3, None, Rule::Standalone),
    );
}

#[test]
fn rule3_keeps_an_epic_with_work_in_progress_below_it() {
    let b = B::default()
        .add(1, EPIC, IN_PROGRESS)
        .pod("pod-2")
        .idle_for(9)
        .add(2, TASK, IN_PROGRESS)
        .under(1)
        .pod("pod-2")
        .idle_for(9);
    let long_lease = Policy {
        claim_lease: Duration::hours(24),
        ..policy()
    };
    assert_eq!(
        decide(
            &b.snapshot(),
            &catalog(),
            ME,
            now(),
            &long_lease,
            &Progress::default()
        ),
        Action::Sleep
    );
}

#[test]
fn rule3_releases_my_finished_epic() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, TASK, IN_TESTING)
            .under(1)
            .pod(ME)
            .add(3, BUG, NEW),
        Action::ReleaseEpic {
            epic: 1,
            reason: Release::Finished,
        },
    );
}

#[test]
fn rule3_work_parked_for_a_human_neither_keeps_an_epic_busy_nor_unfinished() {
    // In progress with the pod field cleared: the board refused its done status after the push.
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, TASK, IN_PROGRESS)
            .under(1)
            .add(3, TASK, IN_TESTING)
            .under(1),
        Action::ReleaseEpic {
            epic: 1,
            reason: Release::Finished,
        },
    );
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod("pod-2")
            .idle_for(3)
            .add(2, TASK, IN_PROGRESS)
            .under(1)
            .idle_for(3),
        Action::ReleaseEpic {
            epic: 1,
            reason: Release::Stale,
        },
    );
}

#[test]
fn rule3_does_not_release_my_epic_with_open_work() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, TASK, ON_HOLD)
            .under(1)
            .add(3, BUG, NEW),
        claim(3, None, Rule::Bug),
    );
}

#[test]
fn rule4_bugs_before_tasks_even_at_lower_priority() {
    check(
        B::default()
            .add(1, TASK, NEW)
            .prio(IMMEDIATE)
            .add(2, BUG, NEW)
            .prio(LOW),
        claim(2, None, Rule::Bug),
    );
}

#[test]
fn rule4_a_bug_under_an_unowned_epic_claims_the_epic() {
    check(
        B::default()
            .add(1, EPIC, NEW)
            .add(2, BUG, CONFIRMED)
            .under(1),
        claim(2, Some(1), Rule::Bug),
    );
}

#[test]
fn rule4_a_pinned_bug_beats_an_owned_epics_idle_tasks_of_another_pod() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod("pod-2")
            .add(2, TASK, NEW)
            .under(1)
            .prio(IMMEDIATE)
            .add(3, BUG, NEW)
            .pod(ME),
        claim(3, None, Rule::Bug),
    );
}

#[test]
fn rule5_claims_the_unowned_parent_epic_first() {
    check(
        B::default().add(1, EPIC, NEW).add(2, TASK, NEW).under(1),
        claim(2, Some(1), Rule::Task),
    );
}

#[test]
fn rule5_claims_the_epic_through_a_user_story() {
    check(
        B::default()
            .add(1, EPIC, NEW)
            .add(2, STORY, IN_PROGRESS)
            .under(1)
            .add(3, TASK, NEW)
            .under(2),
        claim(3, Some(1), Rule::Task),
    );
}

#[test]
fn rule5_work_under_an_epic_of_another_pod_is_invisible() {
    check(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod("pod-2")
            .add(2, TASK, NEW)
            .under(1),
        Action::Sleep,
    );
}

#[test]
fn rule5_an_epic_pinned_to_another_pod_hides_its_work() {
    check(
        B::default()
            .add(1, EPIC, NEW)
            .pod("pod-2")
            .add(2, TASK, NEW)
            .under(1),
        Action::Sleep,
    );
}

#[test]
fn rule5_before_rule6_regardless_of_priority() {
    check(
        B::default()
            .add(1, TASK, NEW)
            .prio(IMMEDIATE)
            .add(2, EPIC, NEW)
            .add(3, FEATURE, NEW)
            .under(2)
            .prio(LOW),
        claim(3, Some(2), Rule::Task),
    );
}

#[test]
fn rule6_standalone_by_priority_first() {
    // Was "by priority then id" with 2 and 3 both High: among equals each pod now has its own
    // preference (the spread tests below); the most urgent still comes first.
    check(
        B::default()
            .add(1, TASK, NEW)
            .add(2, FEATURE, NEW)
            .prio(HIGH)
            .add(3, STORY, NEW),
        claim(2, None, Rule::Standalone),
    );
}

#[test]
fn work_below_a_closed_epic_is_standalone() {
    check(
        B::default().add(1, EPIC, CLOSED).add(2, TASK, NEW).under(1),
        claim(2, None, Rule::Standalone),
    );
}

#[test]
fn pinned_to_another_pod_is_not_mine() {
    check(B::default().add(1, TASK, NEW).pod("pod-2"), Action::Sleep);
}

#[test]
fn pinned_to_me_is_mine() {
    check(
        B::default().add(1, TASK, NEW).pod(ME),
        claim(1, None, Rule::Standalone),
    );
}

#[test]
fn only_ready_statuses_are_claimed() {
    check(
        B::default()
            .add(1, TASK, ON_HOLD)
            .add(2, TASK, IN_TESTING)
            .add(3, TASK, SPECIFIED),
        claim(3, None, Rule::Standalone),
    );
}

#[test]
fn containers_and_milestones_are_not_work() {
    check(
        B::default()
            .add(1, EPIC, NEW)
            .add(2, PHASE, NEW)
            .add(3, SPIKE, NEW)
            .add(4, MILESTONE, NEW),
        Action::Sleep,
    );
}

#[test]
fn unconfigured_projects_are_ignored() {
    check(B::default().add(1, BUG, NEW).project(2), Action::Sleep);
}

#[test]
fn open_blocker_blocks() {
    check(
        B::default()
            .add(1, TASK, ON_HOLD)
            .add(2, TASK, NEW)
            .blocks(1, 2),
        Action::Sleep,
    );
}

#[test]
fn a_rejected_blocker_no_longer_blocks() {
    check(
        B::default()
            .add(1, TASK, REJECTED)
            .add(2, TASK, NEW)
            .blocks(1, 2),
        claim(2, None, Rule::Standalone),
    );
}

#[test]
fn a_blocker_absent_from_the_snapshot_is_closed() {
    check(
        B::default().add(2, TASK, NEW).blocks(1, 2),
        claim(2, None, Rule::Standalone),
    );
}

#[test]
fn the_blocker_is_taken_before_what_it_blocks() {
    check(
        B::default()
            .add(1, TASK, NEW)
            .add(2, TASK, NEW)
            .prio(IMMEDIATE)
            .blocks(1, 2),
        claim(1, None, Rule::Standalone),
    );
}

#[test]
fn an_open_spike_child_holds_its_parent() {
    check(
        B::default().add(1, TASK, NEW).add(2, SPIKE, NEW).under(1),
        Action::Sleep,
    );
}

#[test]
fn a_closed_spike_releases_its_parent() {
    check(
        B::default()
            .add(1, TASK, NEW)
            .add(2, SPIKE, CLOSED)
            .under(1),
        claim(1, None, Rule::Standalone),
    );
}

#[test]
fn a_phase_not_active_gates_its_children() {
    check(
        B::default().add(1, PHASE, NEW).add(2, TASK, NEW).under(1),
        Action::Sleep,
    );
}

#[test]
fn an_active_phase_opens_its_children() {
    check(
        B::default()
            .add(1, PHASE, IN_PROGRESS)
            .add(2, TASK, NEW)
            .under(1),
        claim(2, None, Rule::Standalone),
    );
}

#[test]
fn a_closed_phase_gates() {
    check(
        B::default()
            .add(1, PHASE, CLOSED)
            .add(2, TASK, NEW)
            .under(1),
        Action::Sleep,
    );
}

#[test]
fn a_phase_inside_a_phase_gates_unless_both_are_active() {
    let b = || {
        B::default()
            .add(1, PHASE, IN_PROGRESS)
            .add(2, PHASE, NEW)
            .under(1)
            .add(3, TASK, NEW)
            .under(2)
    };
    check(b(), Action::Sleep);
    let outer_closed = B::default()
        .add(1, PHASE, NEW)
        .add(2, PHASE, IN_PROGRESS)
        .under(1)
        .add(3, TASK, NEW)
        .under(2);
    check(outer_closed, Action::Sleep);
    let both = B::default()
        .add(1, PHASE, IN_PROGRESS)
        .add(2, PHASE, IN_PROGRESS)
        .under(1)
        .add(3, TASK, NEW)
        .under(2);
    check(both, claim(3, None, Rule::Standalone));
}

#[test]
fn a_phase_above_an_epic_gates_the_epics_work() {
    check(
        B::default()
            .add(1, PHASE, NEW)
            .add(2, EPIC, NEW)
            .under(1)
            .add(3, TASK, NEW)
            .under(2),
        Action::Sleep,
    );
}

#[test]
fn skipped_items_and_items_under_a_skipped_epic_are_passed_over() {
    let b = B::default()
        .add(1, EPIC, NEW)
        .add(2, TASK, NEW)
        .under(1)
        .add(3, TASK, NEW)
        // Low, so that 3 is the only one of its class: the order after a skip stays pinned.
        .add(4, TASK, NEW)
        .prio(LOW);
    let s = b.snapshot();
    let d = |skip: &[u64]| {
        let p = Progress {
            skip: skip.iter().copied().collect(),
            ..Progress::default()
        };
        decide_with(&s, &p, &[])
    };
    assert_eq!(d(&[]), claim(2, Some(1), Rule::Task));
    assert_eq!(
        d(&[1]),
        claim(3, None, Rule::Standalone),
        "a lost Epic claim hides its children"
    );
    assert_eq!(d(&[1, 3]), claim(4, None, Rule::Standalone));
}

#[test]
fn ineligibility_reasons_are_specific() {
    let b = B::default()
        .add(1, PHASE, NEW)
        .add(2, TASK, NEW)
        .under(1)
        .add(3, TASK, NEW)
        .blocks(2, 3)
        .add(4, TASK, NEW)
        .pod("x");
    let s = b.snapshot();
    let why = |id| ineligibility(&s, &catalog(), ME, s.get(id).unwrap(), &BTreeSet::new());
    assert_eq!(why(1), Some(Ineligible::NotWork));
    assert_eq!(why(2), Some(Ineligible::PhaseNotActive(1)));
    assert_eq!(why(3), Some(Ineligible::BlockedBy(2)));
    assert_eq!(why(4), Some(Ineligible::PinnedElsewhere));
}

// ---------------------------------------------------------------------------------------------
// The policy rules: trails, escalation, pause, give-back, one release per cycle, after a task.

#[test]
fn a_claim_waits_for_its_blockers_read_afresh_then_its_trail() {
    let s = B::default().add(1, TASK, NEW).snapshot();
    assert_eq!(
        decide(&s, &catalog(), ME, now(), &policy(), &Progress::default()),
        Action::CheckBlockers { wp: 1 },
        "a blocker added since the snapshot is seen before the claim"
    );
    let checked = Progress {
        blockers_checked: [1].into(),
        ..Progress::default()
    };
    assert_eq!(
        decide(&s, &catalog(), ME, now(), &policy(), &checked),
        Action::ReadHistory { wp: 1 },
        "the trail is read before the claim, never after"
    );
    // What the re-check found goes into the snapshot; the decision moves on.
    let mut s = B::default().add(1, TASK, NEW).add(2, TASK, NEW).snapshot();
    s.add_blockers(1, [99], [], [99]);
    assert_eq!(
        decide_with(&s, &checked, &[]),
        claim(2, None, Rule::Standalone),
        "an unreadable blocker counts as open"
    );
    let resume = B::default().add(1, TASK, IN_PROGRESS).pod(ME).snapshot();
    assert_eq!(
        decide(
            &resume,
            &catalog(),
            ME,
            now(),
            &policy(),
            &Progress::default()
        ),
        Action::ReadHistory { wp: 1 }
    );
}

#[test]
fn a_candidate_with_max_failed_attempts_is_escalated_not_claimed() {
    // 2 is Low so that 1 is the candidate for every pod (not a preference among equals).
    let b = || B::default().add(1, TASK, NEW).add(2, TASK, NEW).prio(LOW);
    check_with(
        b(),
        Progress::default(),
        &[(1, 2)],
        claim(1, None, Rule::Standalone),
    );
    check_with(
        b(),
        Progress::default(),
        &[(1, 3)],
        Action::Escalate {
            wp: 1,
            attempts: 3,
            lock: true,
        },
    );
}

#[test]
fn a_resume_or_takeover_counts_the_dead_run_as_one_more_attempt() {
    check_with(
        B::default().add(1, TASK, IN_PROGRESS).pod(ME),
        Progress::default(),
        &[(1, 1)],
        Action::Resume { wp: 1 },
    );
    check_with(
        B::default().add(1, TASK, IN_PROGRESS).pod(ME),
        Progress::default(),
        &[(1, 2)],
        Action::Escalate {
            wp: 1,
            attempts: 3,
            lock: false,
        },
    );
    check_with(
        B::default()
            .add(1, TASK, IN_PROGRESS)
            .pod("pod-9")
            .idle_for(5),
        Progress::default(),
        &[(1, 2)],
        Action::Escalate {
            wp: 1,
            attempts: 3,
            lock: true,
        },
    );
}

#[test]
fn a_resume_whose_last_run_already_reported_finishes_the_report_instead_of_running_or_escalating() {
    let reported = |pushed| Progress {
        reported: [(1, pushed)].into(),
        ..Progress::default()
    };
    for pushed in [true, false] {
        // Even at the attempt limit: the run reported, it did not die.
        check_with(
            B::default().add(1, TASK, IN_PROGRESS).pod(ME),
            reported(pushed),
            &[(1, 2)],
            Action::FinishReport { wp: 1, pushed },
        );
    }
    // Another pod's dead claim is taken over as before.
    check_with(
        B::default()
            .add(1, TASK, IN_PROGRESS)
            .pod("pod-9")
            .idle_for(5),
        reported(true),
        &[(1, 0)],
        Action::TakeOver {
            wp: 1,
            epic: None,
            from: "pod-9".into(),
        },
    );
}

#[test]
fn a_candidate_the_board_refused_recently_waits_and_is_tried_again_later() {
    let b = || B::default().add(1, TASK, NEW).prio(HIGH).add(2, TASK, NEW);
    let refused = |minutes: i64| Progress {
        refused_at: [(1, now() - Duration::minutes(minutes))].into(),
        ..Progress::default()
    };
    check_with(b(), refused(10), &[], claim(2, None, Rule::Standalone));
    check_with(b(), refused(61), &[], claim(1, None, Rule::Standalone));
}

#[test]
fn an_escalated_candidate_is_passed_over_for_the_next() {
    let p = Progress {
        skip: [1].into(),
        ..Progress::default()
    };
    check_with(
        B::default().add(1, TASK, NEW).add(2, TASK, NEW),
        p,
        &[(1, 3)],
        claim(2, None, Rule::Standalone),
    );
}

fn paused() -> Progress {
    Progress::new(Pause::after(
        None,
        Paced::Environment,
        "cannot clone",
        now(),
    ))
}

#[test]
fn a_paused_pod_releases_its_epic_then_claims_nothing() {
    let b = || {
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, TASK, NEW)
            .under(1)
            .add(3, BUG, NEW)
    };
    check_with(
        b(),
        paused(),
        &[],
        Action::ReleaseEpic {
            epic: 1,
            reason: Release::Paused,
        },
    );
    let mut p = paused();
    p.skip.insert(1);
    check_with(
        b(),
        p,
        &[],
        Action::Paused {
            reason: "cannot clone".into(),
        },
    );
}

#[test]
fn a_pause_ends_at_its_time_and_doubles_each_time_up_to_an_hour() {
    let first = Pause::after(None, Paced::Environment, "x", now()).unwrap();
    assert_eq!(first.until, now() + Duration::minutes(1));
    assert!(first.active(now()) && !first.active(first.until));
    let second = Pause::after(Some(first.clone()), Paced::Environment, "y", now()).unwrap();
    assert_eq!(second.until, now() + Duration::minutes(2));
    let mut p = Some(second);
    for _ in 0..20 {
        p = Pause::after(p, Paced::Environment, "z", now());
    }
    assert_eq!(p.as_ref().unwrap().until, now() + Duration::hours(1));
    assert_eq!(Pause::after(p.clone(), Paced::Interrupted, "", now()), p);
    assert_eq!(Pause::after(p, Paced::Ran, "", now()), None);
    let mut expired = paused();
    expired.pause.as_mut().unwrap().until = now();
    check_with(
        B::default().add(1, TASK, NEW),
        expired,
        &[],
        claim(1, None, Rule::Standalone),
    );
}

#[test]
fn an_epic_claimed_for_a_lost_child_is_given_back_when_nothing_else_is_eligible() {
    // The cycle claimed Epic 1 (now mine) for child 2 and lost 2.
    let b = || {
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, TASK, NEW)
            .under(1)
            .add(3, TASK, NEW)
    };
    let lost = |extra: &[u64]| Progress {
        skip: [2].into_iter().chain(extra.iter().copied()).collect(),
        claimed_epics: [(1, 2)].into(),
        ..Progress::default()
    };
    check_with(
        b(),
        lost(&[]),
        &[],
        Action::ReleaseEpic {
            epic: 1,
            reason: Release::GivenBack { child: 2 },
        },
    );
    check_with(b(), lost(&[1]), &[], claim(3, None, Rule::Standalone));
    check_with(
        b().add(4, TASK, NEW).under(1),
        lost(&[]),
        &[],
        claim(4, None, Rule::MyEpic),
    );
}

#[test]
fn one_stale_or_finished_release_per_cycle() {
    let b = B::default()
        .add(1, EPIC, IN_PROGRESS)
        .pod("pod-2")
        .idle_for(3)
        .add(2, EPIC, IN_PROGRESS)
        .pod("pod-3")
        .idle_for(3);
    let p = Progress {
        released: true,
        skip: [1].into(),
        ..Progress::default()
    };
    check_with(b, p, &[], Action::Sleep);
}

#[test]
fn after_a_task_only_releases_follow() {
    let p = Progress {
        ran: true,
        ..Progress::default()
    };
    check_with(
        B::default().add(1, TASK, NEW),
        p.clone(),
        &[],
        Action::Sleep,
    );
    check_with(
        B::default()
            .add(1, EPIC, IN_PROGRESS)
            .pod(ME)
            .add(2, TASK, IN_TESTING)
            .under(1)
            .add(3, TASK, NEW),
        p,
        &[],
        Action::ReleaseEpic {
            epic: 1,
            reason: Release::Finished,
        },
    );
}

#[test]
fn the_target_names_the_nearest_open_epic_and_the_parent_story() {
    let s = B::default()
        .add(1, EPIC, IN_PROGRESS)
        .add(2, STORY, NEW)
        .under(1)
        .add(3, TASK, NEW)
        .under(2)
        .add(4, EPIC, CLOSED)
        .add(5, TASK, NEW)
        .under(4)
        .snapshot();
    let c = catalog();
    assert_eq!(
        target(&s, &c, 3),
        Target {
            wp: 3,
            epic: Some(1),
            story: Some(2)
        }
    );
    assert_eq!(
        target(&s, &c, 2),
        Target {
            wp: 2,
            epic: Some(1),
            story: None
        }
    );
    assert_eq!(
        target(&s, &c, 5),
        Target {
            wp: 5,
            epic: None,
            story: None
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Claims that spread: among the first few of the best class, each pod has its own preference.

/// The decision of pod `pod` at the start of a cycle (trails clean), with `spread`.
fn decide_as(s: &Snapshot, pod: &str, spread: usize, skip: &[u64]) -> Action {
    let policy = Policy { spread, ..policy() };
    let mut p = Progress {
        skip: skip.iter().copied().collect(),
        ..Progress::default()
    };
    loop {
        match decide(s, &catalog(), pod, now(), &policy, &p) {
            Action::ReadHistory { wp } => {
                p.attempts.insert(wp, 0);
            }
            Action::CheckBlockers { wp } => {
                p.blockers_checked.insert(wp);
            }
            action => return action,
        }
    }
}

/// Eight equal standalone Tasks, #1..#8.
fn eight_equal() -> B {
    (1..=8).fold(B::default(), |b, id| b.add(id, TASK, NEW))
}

fn claimed(a: Action) -> u64 {
    match a {
        Action::Claim { wp, .. } => wp,
        other => panic!("expected a claim, got {other:?}"),
    }
}

#[test]
fn equal_candidates_are_spread_over_pods() {
    // Rendezvous ranks of #1..#8: pod-1 prefers 2 then 7; pod-2 prefers 8 then 4 (spread.rs).
    let s = eight_equal().snapshot();
    for (pod, expect) in [("pod-1", 2), ("pod-2", 8), ("pod-3", 4)] {
        assert_eq!(claimed(decide_as(&s, pod, 8, &[])), expect, "{pod}");
    }
    // Without spread (the baseline), every pod goes for the same one.
    for pod in ["pod-1", "pod-2", "pod-3"] {
        assert_eq!(claimed(decide_as(&s, pod, 1, &[])), 1, "{pod}");
    }
}

#[test]
fn a_pod_that_loses_a_race_moves_to_its_own_next_choice() {
    let s = eight_equal().snapshot();
    assert_eq!(claimed(decide_as(&s, "pod-1", 8, &[2])), 7);
    assert_eq!(claimed(decide_as(&s, "pod-2", 8, &[8])), 4);
}

#[test]
fn urgency_still_comes_first_across_priorities_and_rules() {
    let urgent = eight_equal().add(9, TASK, NEW).prio(HIGH).snapshot();
    let bug = eight_equal().add(9, BUG, NEW).prio(LOW).snapshot();
    for p in 0..50 {
        let pod = format!("pod-{p}");
        assert_eq!(claimed(decide_as(&urgent, &pod, 8, &[])), 9, "{pod}");
        assert_eq!(
            claimed(decide_as(&bug, &pod, 8, &[])),
            9,
            "a Bug first: {pod}"
        );
    }
}

#[test]
fn work_under_one_unowned_epic_is_one_choice_taken_in_order() {
    // Two Epics: a pod that prefers #1 takes its first task, #2, never #3 (its Epic is what the
    // claim takes first, so pods spread over Epics, not over the tasks of one Epic).
    let s = B::default()
        .add(1, EPIC, NEW)
        .add(2, TASK, NEW)
        .under(1)
        .add(3, TASK, NEW)
        .under(1)
        .add(4, EPIC, NEW)
        .add(5, TASK, NEW)
        .under(4)
        .snapshot();
    let mut firsts = BTreeSet::new();
    for p in 0..50 {
        let a = decide_as(&s, &format!("pod-{p}"), 8, &[]);
        assert!(
            a == claim(2, Some(1), Rule::Task) || a == claim(5, Some(4), Rule::Task),
            "{a:?}"
        );
        firsts.insert(claimed(a));
    }
    assert_eq!(
        firsts,
        [2, 5].into(),
        "both Epics are someone's first choice"
    );
}

#[test]
fn first_choices_spread_across_the_top_eight_of_many() {
    let s = (1..=12)
        .fold(B::default(), |b, id| b.add(id, TASK, NEW))
        .snapshot();
    let mut firsts = std::collections::BTreeMap::<u64, usize>::new();
    for p in 0..800 {
        *firsts
            .entry(claimed(decide_as(&s, &format!("pod-{p}"), 8, &[])))
            .or_default() += 1;
    }
    assert_eq!(
        firsts.keys().copied().collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert!(
        firsts.values().all(|n| (60..=140).contains(n)),
        "{firsts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests against a naive oracle written straight from DESIGN section 1.

const PODS: [&str; 3] = [ME, "pod-2", "pod-3"];

fn oracle_eligible(s: &Snapshot, c: &Catalog, item: &Item) -> bool {
    let ready = [NEW, SPECIFIED, CONFIRMED].contains(&item.status);
    let work = [BUG, TASK, FEATURE, STORY].contains(&item.type_id);
    let pinned_ok = item.pod.is_none() || item.pod.as_deref() == Some(ME);
    let unblocked = s
        .blockers
        .get(&item.id)
        .map(|bs| {
            bs.iter().all(|b| {
                s.get(*b)
                    .is_none_or(|b| [CLOSED, REJECTED].contains(&b.status))
            })
        })
        .unwrap_or(true);
    let no_spike = s.items.values().all(|ch| {
        !(ch.parent() == Some(item.id)
            && ch.type_id == SPIKE
            && ![CLOSED, REJECTED].contains(&ch.status))
    });
    let phases_open = item.ancestors.iter().all(|a| {
        s.get(*a)
            .is_none_or(|a| a.type_id != PHASE || a.status == IN_PROGRESS)
    });
    let no_foreign_epic = item.ancestors.iter().all(|a| {
        s.get(*a)
            .is_none_or(|a| a.type_id != EPIC || a.pod.is_none() || a.pod.as_deref() == Some(ME))
    });
    ready
        && work
        && pinned_ok
        && unblocked
        && no_spike
        && phases_open
        && no_foreign_epic
        && c.projects.contains(&item.project)
}

fn arb_board() -> impl Strategy<Value = Snapshot> {
    let item = (
        prop::sample::select(vec![
            BUG, TASK, FEATURE, STORY, EPIC, PHASE, SPIKE, MILESTONE,
        ]),
        prop::sample::select(vec![
            NEW,
            SPECIFIED,
            CONFIRMED,
            IN_PROGRESS,
            IN_TESTING,
            CLOSED,
            ON_HOLD,
            REJECTED,
        ]),
        prop::sample::select(vec![LOW, NORMAL, HIGH, IMMEDIATE]),
        prop::option::weighted(0.3, prop::sample::select(PODS.to_vec())),
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.6),
        0i64..6,
        prop::bool::weighted(0.9),
    );
    (
        prop::collection::vec(item, 1..30),
        prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            0..10,
        ),
    )
        .prop_map(|(specs, rels)| {
            let mut items: Vec<Item> = Vec::new();
            for (i, (type_id, status, priority, pod, parent_pick, has_parent, idle, in_project)) in
                specs.into_iter().enumerate()
            {
                let id = i as u64 + 1;
                let ancestors = if has_parent && !items.is_empty() {
                    let p = &items[parent_pick.index(items.len())];
                    let mut a = p.ancestors.clone();
                    a.push(p.id);
                    a
                } else {
                    vec![]
                };
                items.push(Item {
                    id,
                    lock_version: 0,
                    subject: format!("#{id}"),
                    type_id,
                    status,
                    priority,
                    project: if in_project { 1 } else { 2 },
                    ancestors,
                    pod: pod.map(String::from),
                    updated_at: now() - Duration::hours(idle),
                });
            }
            let n = items.len();
            let blocks: Vec<(u64, u64)> = rels
                .into_iter()
                .map(|(a, b)| (a.index(n) as u64 + 1, b.index(n) as u64 + 1))
                .filter(|(a, b)| a != b)
                .collect();
            Snapshot::new(items, blocks)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn claims_only_eligible_work_never_pinned_elsewhere_never_under_a_foreign_epic(s in arb_board()) {
        let c = catalog();
        let action = fresh(&s);
        if let Action::Claim { wp, epic, .. } = action {
            let item = s.get(wp).unwrap();
            prop_assert!(oracle_eligible(&s, &c, item), "claimed ineligible #{wp}: {item:?}");
            prop_assert!(item.pod.is_none() || item.pod.as_deref() == Some(ME));
            for a in &item.ancestors {
                if let Some(anc) = s.get(*a) {
                    prop_assert!(!(anc.type_id == EPIC && anc.pod.as_deref().is_some_and(|p| p != ME)), "under a foreign Epic #{a}");
                }
            }
            if let Some(e) = epic {
                let epic = s.get(e).unwrap();
                prop_assert_eq!(epic.type_id, EPIC);
                prop_assert!(item.ancestors.contains(&e));
                prop_assert!(epic.pod.is_none() || epic.pod.as_deref() == Some(ME));
            }
        }
    }

    #[test]
    fn never_sleeps_while_eligible_work_exists(s in arb_board()) {
        let c = catalog();
        let any_eligible = s.items.values().any(|i| oracle_eligible(&s, &c, i));
        let action = fresh(&s);
        if any_eligible {
            prop_assert_ne!(action, Action::Sleep);
        }
    }

    #[test]
    fn an_idle_pod_reaches_work_after_releases(s in arb_board()) {
        // Apply releases as the cycle would, then the pod must claim if anything is eligible.
        let c = catalog();
        let mut s = s;
        let mut p = Progress::default();
        let idle = !s.items.values().any(|i| i.pod.as_deref() == Some(ME) && i.status == IN_PROGRESS && c.work_types.contains(&i.type_id));
        for _ in 0..s.items.len() + 1 {
            match decide_with(&s, &p, &[]) {
                Action::ReleaseEpic { epic, reason } => {
                    let e = s.items.get_mut(&epic).unwrap();
                    e.pod = None;
                    if reason.resets_status() { e.status = NEW; }
                    p.skip.insert(epic);
                    p.released = true;
                    s = Snapshot::new(s.items.values().cloned(), s.blockers.iter().flat_map(|(to, fs)| fs.iter().map(move |f| (*f, *to))));
                }
                Action::Sleep => {
                    // Work under an Epic released (skipped) this cycle is taken next cycle.
                    let any = s.items.values().any(|i| {
                        oracle_eligible(&s, &c, i) && !p.skip.contains(&i.id) && !i.ancestors.iter().any(|a| p.skip.contains(a))
                    });
                    prop_assert!(!(idle && any), "slept with eligible work");
                    break;
                }
                _ => break,
            }
        }
    }

    #[test]
    fn a_claim_of_new_work_is_of_the_best_priority_of_its_rule(s in arb_board(), pod in prop::sample::select(vec!["pod-1", "pod-2", "pod-3", "pod-x", "pod-y"])) {
        let c = catalog();
        if let Action::Claim { wp, rule, .. } = decide_as(&s, pod, 8, &[]) {
            let rank = |i: &Item| c.priority_rank.get(&i.priority).copied().unwrap_or(0);
            let claimed = rank(s.get(wp).unwrap());
            let none = BTreeSet::new();
            let in_rule = |i: &Item| match rule {
                Rule::Bug => i.type_id == BUG,
                Rule::Task => i.type_id != BUG && super::eligible::nearest_epic(&s, &c, i).is_some(),
                Rule::Standalone => i.type_id != BUG && super::eligible::nearest_epic(&s, &c, i).is_none(),
                Rule::MyEpic => false,
            };
            for other in s.items.values().filter(|i| ineligibility(&s, &c, pod, i, &none).is_none() && in_rule(i)) {
                prop_assert!(rank(other) <= claimed, "#{} is more urgent than the claimed #{}", other.id, wp);
            }
        }
    }

    #[test]
    fn the_same_snapshot_gives_the_same_answer(s in arb_board()) {
        let a = fresh(&s);
        let b = fresh(&s.clone());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn takeovers_only_of_claims_older_than_the_lease(s in arb_board()) {
        if let Action::TakeOver { wp, epic, from } = fresh(&s) {
            let item = s.get(wp).unwrap();
            prop_assert_eq!(item.status, IN_PROGRESS);
            prop_assert_eq!(item.pod.as_deref(), Some(from.as_str()));
            prop_assert_ne!(from.as_str(), ME);
            prop_assert!(now() - item.updated_at >= policy().claim_lease);
            if let Some(e) = epic {
                prop_assert_eq!(s.get(e).unwrap().pod.as_deref(), Some(from.as_str()));
            }
        }
    }

    #[test]
    fn resume_is_always_my_own_in_progress_work(s in arb_board()) {
        if let Action::Resume { wp } = fresh(&s) {
            let item = s.get(wp).unwrap();
            prop_assert_eq!(item.pod.as_deref(), Some(ME));
            prop_assert_eq!(item.status, IN_PROGRESS);
        }
    }

    #[test]
    fn releases_only_owned_epics_that_are_stale_or_mine_and_finished(s in arb_board()) {
        if let Action::ReleaseEpic { epic, reason } = fresh(&s) {
            let e = s.get(epic).unwrap();
            prop_assert_eq!(e.type_id, EPIC);
            prop_assert!(e.pod.is_some());
            let desc = s.descendants(epic);
            match reason {
                // Parked work (In progress, pod field cleared) waits for a human, not for a pod.
                Release::Finished => prop_assert!(e.pod.as_deref() == Some(ME) && desc.iter().all(|d| d.status == IN_TESTING || d.status == CLOSED || d.status == REJECTED || (d.status == IN_PROGRESS && d.pod.is_none()))),
                Release::Stale => prop_assert!(desc.iter().all(|d| d.status != IN_PROGRESS || d.pod.is_none())),
                Release::Paused | Release::GivenBack { .. } => prop_assert!(false, "no pause and no claim at the start of a cycle"),
            }
        }
    }
}

#[test]
fn the_oracle_can_disagree() {
    // Guards the property tests: the oracle must reject what decide rejects for real reasons.
    let s = B::default().add(1, TASK, NEW).pod("pod-2").snapshot();
    assert!(!oracle_eligible(&s, &catalog(), s.get(1).unwrap()));
}
