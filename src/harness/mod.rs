//! The harness: everything that stands in for the outside world or shows the worker at work, kept
//! apart so that `src/` shows the worker's own modules first.
//!
//! - [`sim`]: the bundled OpenProject-compatible board (the stand-in for OpenProject itself).
//! - [`scripted_agent`]: the stand-in for the `claude` CLI, with the same interface.
//! - [`demo`]: `journeyman demo`, the whole work cycle on the embedded default.
//! - [`bench`]: synthetic boards and the naive reader shared by `cargo bench --bench fleet`.
//!
//! What it must never do: be a dependency of the worker's own modules. The worker reaches the
//! stand-ins only the way it reaches the real things: over HTTP, or as a child process.

pub mod bench;
pub mod demo;
pub mod scripted_agent;
pub mod sim;
