//! The board as data and the decision over it: the functional core. Nothing here does I/O.
//!
//! `model` holds the snapshot and the catalog of resolved names; `eligible` says which work
//! packages a pod may claim; `decide` is every rule of the fleet (DESIGN section 1); `spread`
//! ranks equal candidates per pod so that pods do not race for the same one; `policy` holds the
//! decision's settings and the pod's pause. The I/O that fills a snapshot lives in
//! `crate::snapshot`; the shell that carries out the actions lives in `crate::cycle`.

pub mod decide;
pub mod eligible;
pub mod model;
pub mod policy;
pub mod spread;
pub mod watch;

pub use decide::{Action, Progress, Release, Rule, Target, decide, target};
pub use eligible::{Ineligible, eligible_count, ineligibility, nearest_epic};
pub use model::{Catalog, Item, Snapshot};
pub use policy::{Paced, Pause, Policy};
pub use watch::{StopReason, Watched, WatchedEpic, verdict};

#[cfg(test)]
mod tests;
