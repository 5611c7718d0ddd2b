//! Posting events on a work package: the audit trail's one writer.
//!
//! A failed post is logged and never fatal: the audit trail must not lose the work it describes.
//! An event already on the ticket (posted by an interrupted report before a restart) is not
//! posted again, so a resumed task reports once.

use std::sync::Arc;

use tracing::warn;

use super::event::Event;
use super::history::History;
use crate::openproject::{Client, Notify};

/// A comment the worker posted and may edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    pub activity: u64,
}

/// Posts the worker's events on one work package.
#[derive(Clone)]
pub struct Audit {
    client: Client,
    wp: u64,
    /// The ticket's trail before this run: events in it are not posted again.
    before: Arc<History>,
}

impl Audit {
    pub fn new(client: Client, wp: u64) -> Audit {
        Audit {
            client,
            wp,
            before: Arc::default(),
        }
    }

    /// Skips events already in `history`.
    pub fn skipping(mut self, history: Arc<History>) -> Audit {
        self.before = history;
        self
    }

    pub fn wp(&self) -> u64 {
        self.wp
    }

    /// Posts `event` and returns its activity, so it can be edited in place (the run's progress).
    /// `None` when the post failed (logged; never fatal).
    pub async fn post_editable(&self, event: &Event) -> Option<Posted> {
        match self
            .client
            .add_comment(self.wp, &event.render(), Notify::Routine)
            .await
        {
            Ok(a) => Some(Posted { activity: a.id }),
            Err(e) => {
                warn!(wp = self.wp, error = %e, "could not post audit comment");
                None
            }
        }
    }

    /// Replaces the text of a comment posted by [`post_editable`](Self::post_editable) with
    /// `event` (`PATCH /api/v3/activities/{id}`: nobody is notified). False when the board refused.
    pub async fn edit(&self, posted: Posted, event: &Event) -> bool {
        match self
            .client
            .edit_comment(posted.activity, &event.render())
            .await
        {
            Ok(_) => true,
            Err(e) => {
                warn!(wp = self.wp, activity = posted.activity, error = %e, "could not edit the progress comment");
                false
            }
        }
    }

    /// Posts the event as a comment, unless it is already on the ticket.
    pub async fn post(&self, event: &Event) {
        if self.before.has(event) {
            return;
        }
        let notify = if event.needs_human() {
            Notify::Human
        } else {
            Notify::Routine
        };
        if let Err(e) = self
            .client
            .add_comment(self.wp, &event.render(), notify)
            .await
        {
            warn!(wp = self.wp, error = %e, "could not post audit comment");
        }
    }
}
