//! The decision: what this pod should do next. A pure function of the board snapshot, the pod's
//! name, the clock, the policy and what this cycle has learned so far ([`Progress`]); no I/O, and
//! no memory between cycles but the pod's pause, so a restarted pod decides as the one that died.
//!
//! The cycle calls it in a loop and carries out each [`Action`] (a read, a write, a task), feeding
//! what it learned back through [`Progress`], until the answer is `Sleep` or `Paused`. Every rule
//! of the fleet is here, in this order (DESIGN section 1, first match wins):
//!
//! 0. a paused pod (after an environment failure) releases its Epic, then claims nothing;
//! 1. finish my own work (In progress, pod field = me); then take over a claim whose pod never came
//!    back (In progress, no activity for longer than the claim lease);
//! 2. continue my Epic (pod field = me, In progress) with its best eligible descendant; an Epic
//!    this cycle claimed for a child it then lost, with nothing else eligible below it, is given
//!    back at once, so it is never left owned by a pod that gave up on it;
//! 3. release a stale Epic (owned, nothing In progress below it, no activity for
//!    `epic_stale_after`), or my finished Epic (every open descendant done): one per cycle;
//! 4. the best eligible Bug; 5. the best eligible Task/Feature/User story under an Epic (claiming
//!    the Epic first if nobody owns it); 6. the best eligible standalone work package; 7. sleep.
//!    "Best" is the most urgent priority; among the first few of that class, each pod prefers a
//!    different one (`spread.rs`), so that idle pods do not all race for the same.
//!
//! Before any start (resume, takeover, claim) the candidate's audit trail must have been read
//! ([`Action::ReadHistory`]): a ticket whose trail holds `max_attempts` failed attempts (a resume
//! or a takeover counts as one, since the run before it died) is escalated instead of started.
//! After a task, only releases follow in the same cycle.
//!
//! Choices the design leaves open, made here and documented in ARCHITECTURE.md: work under an Epic
//! always requires owning that Epic (Bugs included), so one Epic is never worked by two pods; an
//! Epic pinned to another pod makes everything below it invisible to me; ancestors missing from
//! the snapshot are closed, so a closed Phase gates and a closed Epic is ignored.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::eligible::{Ineligible, ineligibility, is_mine, nearest_epic, order};
use super::model::{Catalog, Item, Snapshot};
use super::policy::{Pause, Policy};
use super::spread;

/// What the decision asks the cycle to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read this work package's audit trail and record its failed attempts in
    /// [`Progress::attempts`]: the decision to start it depends on them.
    ReadHistory { wp: u64 },
    /// Read the `blocks` relations pointing at this candidate, right before claiming it (a relation
    /// added since the snapshot touches neither end: API-NOTES section 13), add what they say to the
    /// snapshot and record it in [`Progress::blockers_checked`].
    CheckBlockers { wp: u64 },
    /// Rule 1: resume a work package already claimed by this pod (e.g. after a restart).
    Resume { wp: u64 },
    /// Rule 1, when the trail shows the last run already reported its outcome and only the
    /// status write that follows it is missing: finish that write (`pushed`: the done status;
    /// else back to the pool), never run it again nor count it as a failed attempt.
    FinishReport { wp: u64, pushed: bool },
    /// Rule 1b: take over a claim whose pod never came back (In progress, no activity for longer
    /// than the claim lease); `epic` is the Epic above it that the same pod owned, taken over first.
    TakeOver {
        wp: u64,
        epic: Option<u64>,
        from: String,
    },
    /// Rules 2, 4, 5, 6: claim `wp`; if `epic` is set, claim that Epic first.
    Claim {
        wp: u64,
        epic: Option<u64>,
        rule: Rule,
    },
    /// The candidate failed `attempts` times: file an escalation Spike and return it to the pool
    /// instead of starting it. `lock`: take it first with one optimistic write (it is not this
    /// pod's claim yet), so that exactly one pod escalates it.
    Escalate { wp: u64, attempts: u32, lock: bool },
    /// A human answered the open Spike that holds `wp` by a comment on `wp` itself (starting with
    /// the worker's mention, `@journeyman`): close the Spike for them, naming who answered; the
    /// work package re-enters the pool with the answer in its history.
    AnswerSpike { wp: u64, spike: u64, by: String },
    /// Rules 0, 2 and 3: release an Epic.
    ReleaseEpic { epic: u64, reason: Release },
    /// Rule 0: paused after an environment failure; nothing to claim until it ends.
    Paused { reason: String },
    /// Rule 7.
    Sleep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    MyEpic,
    Bug,
    Task,
    Standalone,
}

impl Rule {
    /// The rule's name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Rule::MyEpic => "continue my Epic",
            Rule::Bug => "bug",
            Rule::Task => "task under an Epic",
            Rule::Standalone => "standalone",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// No descendant In progress and no activity for `epic_stale_after`: clear the pod field and
    /// set the ready status, so another pod can take it.
    Stale,
    /// My Epic and every open descendant is done: clear the pod field, leave the status for a human.
    Finished,
    /// My Epic, and this pod paused after an environment failure: clear the pod field and set the
    /// ready status, so another pod can continue.
    Paused,
    /// This cycle claimed the Epic for `child`, lost that claim, and nothing else below the Epic is
    /// eligible: give it back (pod field cleared, ready status).
    GivenBack { child: u64 },
}

impl Release {
    /// Whether the release sets the ready status (all but `Finished`, which leaves it to a human).
    pub fn resets_status(self) -> bool {
        self != Release::Finished
    }
}

/// What this cycle has done and learned so far: the decision's memory within one cycle. A new
/// cycle starts from `Progress::new(pause)`.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Passed over for the rest of the cycle, with everything under them: lost to another writer
    /// (409), escalated, or released.
    pub skip: BTreeSet<u64>,
    /// Epics claimed this cycle, with the child each was claimed for.
    pub claimed_epics: BTreeMap<u64, u64>,
    /// A stale or finished Epic was released this cycle (one per cycle).
    pub released: bool,
    /// Failed attempts on the audit trails read this cycle.
    pub attempts: BTreeMap<u64, u32>,
    /// Trails read this cycle whose last run reported its outcome (`true`: pushed) but not the
    /// status that follows it ([`Action::FinishReport`]).
    pub reported: BTreeMap<u64, bool>,
    /// Candidates whose blockers were read again this cycle.
    pub blockers_checked: BTreeSet<u64>,
    /// When the board last refused a write for a candidate (from the trails read this cycle).
    pub refused_at: BTreeMap<u64, DateTime<Utc>>,
    /// Work packages waiting behind an open Spike whose trail holds a human's answer (with the
    /// worker's mention) since the Spike was filed: who answered.
    pub answers: BTreeMap<u64, String>,
    /// The pod's memory of trails it read of work packages waiting behind a Spike: the `updatedAt`
    /// each had then. One that has not changed since is not read again.
    pub trails_read: BTreeMap<u64, DateTime<Utc>>,
    /// A task ran this cycle: only releases follow.
    pub ran: bool,
    /// The pod's pause after an environment failure, if any.
    pub pause: Option<Pause>,
}

impl Progress {
    pub fn new(pause: Option<Pause>) -> Progress {
        Progress {
            pause,
            ..Progress::default()
        }
    }
}

/// The decision.
pub fn decide(
    s: &Snapshot,
    c: &Catalog,
    me: &str,
    now: DateTime<Utc>,
    policy: &Policy,
    p: &Progress,
) -> Action {
    Ctx {
        s,
        c,
        me,
        now,
        policy,
        p,
    }
    .decide()
}

/// Everything one decision looks at.
struct Ctx<'a> {
    s: &'a Snapshot,
    c: &'a Catalog,
    me: &'a str,
    now: DateTime<Utc>,
    policy: &'a Policy,
    p: &'a Progress,
}

impl<'a> Ctx<'a> {
    fn decide(&self) -> Action {
        let p = self.p;
        if let Some(pause) = p.pause.as_ref().filter(|pause| pause.active(self.now)) {
            return match self.my_active_epics().next() {
                Some(epic) => Action::ReleaseEpic {
                    epic: epic.id,
                    reason: Release::Paused,
                },
                None => Action::Paused {
                    reason: pause.reason.clone(),
                },
            };
        }
        if !p.ran
            && let Some(action) = self.own_work()
        {
            return action;
        }
        if !p.released
            && let Some((epic, reason)) = self.epic_to_release()
        {
            return Action::ReleaseEpic { epic, reason };
        }
        if !p.ran
            && let Some(action) = self.answered_spike().or_else(|| self.new_work())
        {
            return action;
        }
        Action::Sleep
    }

    /// Eligible, and not refused by the board recently (a refused claim waits for a human).
    fn eligible(&self, item: &Item) -> bool {
        let refused = self
            .p
            .refused_at
            .get(&item.id)
            .is_some_and(|at| self.now - *at < self.policy.refusal_retry);
        !refused && ineligibility(self.s, self.c, self.me, item, &self.p.skip).is_none()
    }

    fn best<'i>(&self, items: impl Iterator<Item = &'i Item>) -> Option<&'i Item> {
        items.min_by_key(|i| order(self.c, i))
    }

    /// The candidate this pod prefers among the first [`Policy::spread`] of the best priority
    /// class, keyed by what a claim takes first (the Epic, if one is to be claimed).
    fn preferred<'i>(&self, items: impl Iterator<Item = &'i Item>) -> Option<&'i Item> {
        let mut candidates: Vec<&Item> = items.collect();
        candidates.sort_by_key(|i| order(self.c, i));
        let i = spread::prefer(
            self.me,
            &candidates,
            |i| order(self.c, i).0.0,
            |i| self.epic_to_claim(i).unwrap_or(i.id),
            |i| i.id,
            self.policy.spread,
        )?;
        Some(candidates[i])
    }

    /// Rules 1, 1b and 2 (with its give-back), each start gated by the candidate's trail.
    fn own_work(&self) -> Option<Action> {
        let (s, p) = (self.s, self.p);
        let mine = s
            .items
            .values()
            .filter(|i| self.is_own_claim(i) && !p.skip.contains(&i.id));
        if let Some(mine) = self.best(mine) {
            return Some(self.gated(mine.id, true, Action::Resume { wp: mine.id }));
        }
        if let Some((wp, takeover)) = self.takeover() {
            return Some(self.gated(wp, true, takeover));
        }
        // 2. Continue my Epic; give back one this cycle claimed for a child it lost.
        let in_my_epics = self
            .my_active_epics()
            .flat_map(|e| s.descendants(e.id))
            .filter(|i| self.eligible(i));
        if let Some(item) = self.best(in_my_epics) {
            return Some(self.claim(item, Rule::MyEpic));
        }
        p.claimed_epics
            .iter()
            .find(|(e, _)| !p.skip.contains(e))
            .map(|(&epic, &child)| Action::ReleaseEpic {
                epic,
                reason: Release::GivenBack { child },
            })
    }

    /// A ready work package held only by an open Spike may have been answered on its own ticket:
    /// one whose trail was not read since it last changed (after the Spike) is read; one answered
    /// has its Spike closed for the human who answered.
    fn answered_spike(&self) -> Option<Action> {
        let (s, c, p) = (self.s, self.c, self.p);
        for item in s.items.values() {
            let Some(Ineligible::OpenSpike(spike)) = ineligibility(s, c, self.me, item, &p.skip)
            else {
                continue;
            };
            if let Some(by) = p.answers.get(&item.id) {
                return Some(Action::AnswerSpike {
                    wp: item.id,
                    spike,
                    by: by.clone(),
                });
            }
            let changed_after_spike = s
                .get(spike)
                .is_some_and(|sp| item.updated_at > sp.updated_at);
            let unread = !p.attempts.contains_key(&item.id)
                && p.trails_read.get(&item.id) != Some(&item.updated_at);
            if changed_after_spike && unread {
                return Some(Action::ReadHistory { wp: item.id });
            }
        }
        None
    }

    /// Rules 4, 5 and 6: Bugs, then work under an Epic, then standalone work; within the best
    /// priority class of the rule, the candidate this pod prefers (`spread.rs`).
    fn new_work(&self) -> Option<Action> {
        let (s, c) = (self.s, self.c);
        let eligible: Vec<&Item> = s.items.values().filter(|i| self.eligible(i)).collect();
        let best =
            |f: &dyn Fn(&Item) -> bool| self.preferred(eligible.iter().copied().filter(|i| f(i)));
        let (item, rule) = if let Some(bug) = best(&|i| i.type_id == c.bug_type) {
            (bug, Rule::Bug)
        } else if let Some(task) = best(&|i| nearest_epic(s, c, i).is_some()) {
            (task, Rule::Task)
        } else {
            (
                best(&|i| nearest_epic(s, c, i).is_none())?,
                Rule::Standalone,
            )
        };
        Some(self.claim(item, rule))
    }

    /// The claim of `item` (with its Epic first if nobody owns it), gated by its blockers read
    /// afresh and by its trail.
    fn claim(&self, item: &Item, rule: Rule) -> Action {
        if !self.p.blockers_checked.contains(&item.id) {
            return Action::CheckBlockers { wp: item.id };
        }
        let epic = self.epic_to_claim(item);
        let claim = Action::Claim {
            wp: item.id,
            epic,
            rule,
        };
        self.gated(item.id, false, claim)
    }

    /// `start` if the candidate's trail allows it, else the read of its trail or its escalation.
    /// `dead_run`: starting it means the run before died (a resume or a takeover), one more
    /// attempt.
    fn gated(&self, wp: u64, dead_run: bool, start: Action) -> Action {
        let Some(&attempts) = self.p.attempts.get(&wp) else {
            return Action::ReadHistory { wp };
        };
        if let (Action::Resume { .. }, Some(&pushed)) = (&start, self.p.reported.get(&wp)) {
            return Action::FinishReport { wp, pushed };
        }
        let attempts = attempts + u32::from(dead_run);
        if attempts >= self.policy.max_attempts {
            let lock = !matches!(start, Action::Resume { .. });
            return Action::Escalate { wp, attempts, lock };
        }
        start
    }

    /// Work this pod claimed and works (In progress, pod field = me, in a configured project).
    fn is_own_claim(&self, i: &Item) -> bool {
        is_mine(i, self.me) && self.is_claimed_work(i)
    }

    /// Work In progress in a configured project.
    fn is_claimed_work(&self, i: &Item) -> bool {
        let c = self.c;
        i.status == c.active_status
            && c.work_types.contains(&i.type_id)
            && c.projects.contains(&i.project)
    }

    /// Epics this pod owns In progress, not passed over this cycle.
    fn my_active_epics(&self) -> impl Iterator<Item = &'a Item> + '_ {
        let c = self.c;
        self.s.items.values().filter(move |i| {
            i.type_id == c.epic_type
                && is_mine(i, self.me)
                && i.status == c.active_status
                && !self.p.skip.contains(&i.id)
        })
    }

    /// Rule 1b: the best claim of another pod older than the lease, unless an Epic above it
    /// belongs to a third pod.
    fn takeover(&self) -> Option<(u64, Action)> {
        let (s, c, me) = (self.s, self.c, self.me);
        let (item, from) = s
            .items
            .values()
            .filter(|i| self.is_claimed_work(i) && !self.p.skip.contains(&i.id))
            .filter(|i| self.now - i.updated_at >= self.policy.claim_lease)
            .filter_map(|i| Some((i, i.pod.as_deref().filter(|p| *p != me)?)))
            .filter(|(i, from)| {
                nearest_epic(s, c, i)
                    .is_none_or(|e| e.pod.as_deref().is_none_or(|p| p == *from || p == me))
            })
            .min_by_key(|(i, _)| order(c, i))?;
        let epic = nearest_epic(s, c, item)
            .filter(|e| e.pod.as_deref() == Some(from))
            .map(|e| e.id);
        let from = from.to_string();
        Some((
            item.id,
            Action::TakeOver {
                wp: item.id,
                epic,
                from,
            },
        ))
    }

    /// The Epic to claim before `item`: its nearest Epic, unless I already own it In progress.
    fn epic_to_claim(&self, item: &Item) -> Option<u64> {
        nearest_epic(self.s, self.c, item)
            .filter(|e| !(is_mine(e, self.me) && e.status == self.c.active_status))
            .map(|e| e.id)
    }

    /// Rule 3: the first Epic (by id) to release, if any.
    fn epic_to_release(&self) -> Option<(u64, Release)> {
        let (s, c) = (self.s, self.c);
        let owned = |i: &&Item| {
            i.type_id == c.epic_type
                && i.pod.is_some()
                && !c.closed_statuses.contains(&i.status)
                && !self.p.skip.contains(&i.id)
        };
        for epic in s.items.values().filter(owned) {
            let descendants = s.descendants(epic.id);
            // Work the board refused to move on is parked for a human (In progress, pod field
            // cleared): nothing for a pod to do, so it neither keeps the Epic busy nor unfinished.
            let parked = |d: &&Item| d.status == c.active_status && d.pod.is_none();
            let finished = |d: &&Item| {
                c.is_done(d.status) || c.closed_statuses.contains(&d.status) || parked(d)
            };
            let active = epic.status == c.active_status;
            if is_mine(epic, self.me) && active && descendants.iter().all(finished) {
                return Some((epic.id, Release::Finished));
            }
            let busy = descendants
                .iter()
                .any(|d| d.status == c.active_status && !parked(d));
            let last_activity = descendants
                .iter()
                .map(|d| d.updated_at)
                .chain([epic.updated_at])
                .max()
                .unwrap_or(epic.updated_at);
            if active && !busy && self.now - last_activity >= self.policy.epic_stale_after {
                return Some((epic.id, Release::Stale));
            }
        }
        None
    }
}

/// The context of a work package the cycle starts: the nearest open Epic above it (its branch is
/// shared by the Epic's children) and its parent user story, if the parent is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub wp: u64,
    pub epic: Option<u64>,
    pub story: Option<u64>,
}

/// The [`Target`] of `wp` in this snapshot.
pub fn target(s: &Snapshot, c: &Catalog, wp: u64) -> Target {
    let item = s.get(wp);
    let epic = item.and_then(|i| nearest_epic(s, c, i)).map(|e| e.id);
    let story = item
        .and_then(Item::parent)
        .and_then(|p| s.get(p))
        .filter(|p| Some(p.id) != epic && c.work_types.contains(&p.type_id))
        .map(|p| p.id);
    Target { wp, epic, story }
}
