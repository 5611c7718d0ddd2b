//! A work package's audit trail as the worker reads it: its comments, oldest first, each either a
//! worker [`Event`] or a human's words.
//!
//! The trail is the fleet's memory: it holds across pods and restarts, so everything the worker
//! must remember about a ticket (how often it failed, what an interrupted report already posted)
//! is computed from it here, purely. Read once per candidate, before the decision to claim it.

use chrono::{DateTime, Utc};

use super::event::Event;
use super::parse::parse;
use crate::openproject::hal;

/// Who said what on the ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    Worker(Event),
    Human(String),
    /// A note OpenProject writes itself: a parent re-derived from a child's change carries
    /// "_Updated automatically by changing values within child work package #N_" as its journal
    /// note, authored by whoever changed the child (API-NOTES section 13). Nobody said it.
    Board(String),
}

/// One comment of the trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at: Option<DateTime<Utc>>,
    /// The author's name as the board gives it (`_links.user.title`).
    pub author: Option<String>,
    pub said: Said,
}

/// The comments of one work package, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub entries: Vec<Entry>,
}

impl History {
    /// From the board's activities (journal entries without a comment are left out).
    pub fn from_activities(activities: &[hal::Activity]) -> History {
        History {
            entries: activities
                .iter()
                .filter(|a| !a.comment_raw().trim().is_empty())
                .map(|a| Entry {
                    at: a.created_at,
                    author: a.links.user.as_ref().and_then(|u| u.title.clone()),
                    said: said(a.comment_raw()),
                })
                .collect(),
        }
    }

    /// From bare comment texts (tests, and callers that have nothing else).
    pub fn from_comments<'a>(comments: impl IntoIterator<Item = &'a str>) -> History {
        History {
            entries: comments
                .into_iter()
                .map(|c| Entry {
                    at: None,
                    author: None,
                    said: said(c),
                })
                .collect(),
        }
    }

    /// The worker's events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.entries.iter().filter_map(|e| match &e.said {
            Said::Worker(ev) => Some(ev),
            Said::Human(_) | Said::Board(_) => None,
        })
    }

    /// Failed attempts since the last escalation: failures, and runs that died (a resume or a
    /// takeover of the work package means the previous attempt never reported).
    pub fn failed_attempts(&self) -> u32 {
        self.events().fold(0, |n, e| match e {
            Event::Escalated { .. } => 0,
            e if e.is_failed_attempt() => n + 1,
            _ => n,
        })
    }

    /// The agent session of the last attempt that ran on pod `pod`, if it reported one.
    pub fn last_session_of(&self, pod: &str) -> Option<String> {
        let mut on: Option<&str> = None;
        let mut session = None;
        for e in self.events() {
            match e {
                Event::Starting { pod: p, .. }
                | Event::Resuming { pod: p }
                | Event::Rework { pod: p, .. }
                | Event::TookOver {
                    pod: p,
                    epic: false,
                    ..
                } => on = Some(p),
                Event::Usage(u) if on == Some(pod) && u.session != "unknown" => {
                    session = Some(u.session.clone())
                }
                _ => {}
            }
        }
        session
    }

    /// The outcome the last run on the trail already reported, when its report did not finish
    /// (the pod died, or a write failed, between the outcome's comment and the status): `true`
    /// for a push, `false` for a return to the pool (failed, released, escalated, an environment
    /// problem). `None` when no outcome follows the last start.
    pub fn reported_outcome(&self) -> Option<bool> {
        let mut outcome = None;
        for e in self.events() {
            match e {
                Event::Starting { .. }
                | Event::Resuming { .. }
                | Event::Rework { .. }
                | Event::TookOver { epic: false, .. } => outcome = None,
                Event::Pushed { .. } => outcome = Some(true),
                Event::Failed { .. }
                | Event::Released { .. }
                | Event::Escalated { .. }
                | Event::EnvironmentProblem { .. } => outcome = Some(false),
                _ => {}
            }
        }
        outcome
    }

    /// Whether the last outcome on the trail is a push: the work was done, and a human moving it
    /// back to a ready status asks for rework.
    pub fn last_outcome_pushed(&self) -> bool {
        self.events()
            .filter(|e| {
                matches!(
                    e,
                    Event::Pushed { .. }
                        | Event::Failed { .. }
                        | Event::Escalated { .. }
                        | Event::EnvironmentProblem { .. }
                        | Event::Released { .. }
                )
            })
            .last()
            .is_some_and(|e| matches!(e, Event::Pushed { .. }))
    }

    /// The first human comment after the last push: who asked for rework, and its first line.
    pub fn rework_request(&self) -> Option<(String, String)> {
        let from = self
            .entries
            .iter()
            .rposition(|e| matches!(e.said, Said::Worker(Event::Pushed { .. })))?;
        self.entries[from + 1..].iter().find_map(|e| match &e.said {
            Said::Human(text) => Some((
                e.author.clone().unwrap_or_else(|| "someone".into()),
                super::one_line(text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")),
            )),
            Said::Worker(_) | Said::Board(_) => None,
        })
    }

    /// Who answered the Spike the worker filed last, by a comment on this ticket that begins with
    /// `mention` (`@journeyman`), if anyone did since.
    ///
    /// `open` is the open Spike holding the ticket and when it was filed, if known. The worker
    /// files the Spike before it says so on the ticket, and a human notified of the Spike may
    /// answer in between: when the last failure names that Spike, an answer counts from the
    /// moment it was filed, not only from the comment that names it. (OpenProject gives a work
    /// package's `createdAt` in whole seconds: a mention written in the same second just before
    /// the Spike counts too, which is the safe side: a real answer is never missed.)
    pub fn answer(&self, mention: &str, open: Option<(u64, DateTime<Utc>)>) -> Option<String> {
        let named = self.entries.iter().rposition(|e| {
            matches!(
                e.said,
                Said::Worker(Event::Failed { .. } | Event::Escalated { .. })
            )
        })?;
        let filed = match (&self.entries[named].said, open) {
            (
                Said::Worker(Event::Failed { spike, .. } | Event::Escalated { spike, .. }),
                Some((id, at)),
            ) if *spike == id => self.entries[..named]
                .iter()
                .position(|e| e.at.is_some_and(|t| t >= at)),
            _ => None,
        };
        self.entries[filed.unwrap_or(named + 1)..]
            .iter()
            .find_map(|e| match &e.said {
                Said::Human(text) if text.trim_start().starts_with(mention) => {
                    Some(e.author.clone().unwrap_or_else(|| "someone".into()))
                }
                _ => None,
            })
    }

    /// When the board last refused a write for this ticket (a refused claim is not tried again
    /// until the decision's retry interval has passed).
    pub fn last_refusal(&self) -> Option<DateTime<Utc>> {
        self.entries
            .iter()
            .rev()
            .find(|e| matches!(e.said, Said::Worker(Event::Refused { .. })))
            .and_then(|e| e.at)
    }

    /// Whether this exact event is already on the ticket (an interrupted report posted it).
    pub fn has(&self, event: &Event) -> bool {
        self.events().any(|e| e == event)
    }
}

fn said(text: &str) -> Said {
    if let Some(e) = parse(text) {
        return Said::Worker(e);
    }
    let t = text.trim();
    if t.starts_with("_Updated automatically by ") && t.ends_with('_') && !t.contains('\n') {
        return Said::Board(text.to_string());
    }
    Said::Human(text.to_string())
}
