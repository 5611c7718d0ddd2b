//! The audit trail: every comment the worker writes on the board, and every comment it reads back.
//!
//! Why this module exists: the board is the fleet's memory. Attempt counting, idempotent resumes
//! and the demo's timeline all read the worker's own comments back, so writing and reading them is
//! one protocol with one owner: [`Event`] is what happened, [`Event::render`] is how it reads on the
//! ticket, [`parse`] is the way back, and [`History`] is a ticket's trail as the decision sees it.
//! A comment that is not one of the worker's events is a human's ([`Said::Human`]).
//!
//! What it must never do: format a comment anywhere else, or let a rendered event fail to parse
//! back to itself (round-trip property tests in `tests.rs`).

mod conversation;
mod event;
mod history;
mod parse;
mod post;
mod progress;
mod text;

pub use conversation::{Context, Item, SpikeThread, conversation};
pub use event::{Event, PREFIX, Question, REASON_CHARS, RunEnd, Usage, one_line, truncate};
pub use history::{Entry, History, Said};
pub use parse::parse;
pub use post::{Audit, Posted};
pub use progress::{ItemState, MAX_PLAN_ITEMS, PlanItem, Progress, TestRun};

#[cfg(test)]
mod tests;
