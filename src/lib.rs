//! journeyman: a stateless worker that turns an OpenProject board into a team of coding agents.
//!
//! See ARCHITECTURE.md for the map of modules and how data flows between them.

pub mod agent;
pub mod audit;
pub mod board;
pub mod budget;
pub mod config;
pub mod cycle;
pub mod doctor;
pub mod execute;
pub mod http;
pub mod openproject;
pub mod pod;
pub mod redact;
pub mod run;
pub mod shutdown;
pub mod snapshot;
pub mod task;
pub mod telemetry;
pub mod workspace;

// The stand-ins and tools around the worker: the bundled board, the demo, the bench support and the
// scripted agent. Nothing in the worker's own modules above depends on them.
pub mod harness;

/// Proptest settings of the fuzz tests (`mod fuzz` in a module, and `tests/it/fuzz.rs`): `cases` by
/// default, sized so the whole suite stays fast in CI; `PROPTEST_CASES=N` runs longer
/// (docs/fuzzing.md).
#[cfg(test)]
pub(crate) fn fuzz_config(cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    proptest::test_runner::Config {
        cases,
        ..proptest::test_runner::Config::default()
    }
}
