//! The board as data and the decision over it: the functional core. Nothing here does I/O.
//!
//! `model` holds the snapshot and the catalog of resolved names; `decide` is the pure decision
//! (DESIGN section 1). The I/O that fills a snapshot lives in `crate::snapshot`.

pub mod decide;
pub mod model;

pub use decide::{
    Action, Ineligible, Policy, Release, Rule, decide, eligible_count, ineligibility,
};
pub use model::{Catalog, Item, Snapshot};

#[cfg(test)]
mod tests;
