//! Blockers the configured projects do not hold, and blockers read again right before a claim.
//!
//! Cross-project relations are on by default in OpenProject, so a work package can be blocked by
//! one in a project the worker does not read, and relations never touch their ends, so a blocker
//! added since the snapshot is invisible to it (API-NOTES section 13). Both are read by id here:
//! an open blocker joins the snapshot (it blocks, and is never claimed), a closed one resolves, and
//! one that cannot be read counts as open, with a warning naming it.

use std::collections::BTreeSet;

use super::BoardReader;
use crate::board::{Item, Snapshot};
use crate::openproject::{ApiError, Filter};

/// What reading a set of blockers found.
#[derive(Debug, Default)]
pub struct Blockers {
    /// The blockers' ids (`from` of `blocks` relations).
    pub from: Vec<u64>,
    /// Open blockers that were not in the snapshot.
    pub open_outside: Vec<Item>,
    /// Blockers that could not be read.
    pub unreadable: Vec<u64>,
}

impl BoardReader {
    /// The `blocks` relations pointing at `wp`, as the board has them now (one request; more only
    /// for blockers the snapshot does not hold).
    pub async fn blockers_of(&self, wp: u64, snap: &Snapshot) -> Result<Blockers, ApiError> {
        let relations = self
            .client()
            .relations(&[
                Filter::new("type", "=", ["blocks"]),
                Filter::new("to", "=", [wp]),
            ])
            .await?;
        let from: Vec<u64> = relations
            .iter()
            .filter_map(|r| (r.links.to.id() == Some(wp)).then(|| r.links.from.id())?)
            .collect();
        let outside: BTreeSet<u64> = from
            .iter()
            .copied()
            .filter(|b| snap.get(*b).is_none())
            .collect();
        let (open_outside, unreadable) = self.read_blockers(&outside).await?;
        Ok(Blockers {
            from,
            open_outside,
            unreadable,
        })
    }

    /// Reads blockers outside the snapshot by id: the open ones, and those that could not be read.
    pub(super) async fn read_blockers(
        &self,
        ids: &BTreeSet<u64>,
    ) -> Result<(Vec<Item>, Vec<u64>), ApiError> {
        if ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let read = self.read_by_ids(ids).await?;
        let closed = &self.resolved().catalog.closed_statuses;
        let open: Vec<Item> = read
            .items
            .into_values()
            .filter(|i| !closed.contains(&i.status))
            .collect();
        let unreadable: Vec<u64> = read.invisible.union(&read.too_large).copied().collect();
        if !unreadable.is_empty() {
            tracing::warn!(
                blockers = ?unreadable,
                "blockers that cannot be read count as open: what they block is not claimed"
            );
        }
        Ok((open, unreadable))
    }
}
