//! journeyman: a stateless worker that turns an OpenProject board into a team of coding agents.
//!
//! See ARCHITECTURE.md for the map of modules and how data flows between them.

pub mod agent;
pub mod bench;
pub mod board;
pub mod config;
pub mod cycle;
pub mod execute;
pub mod openproject;
pub mod sim;
pub mod snapshot;
pub mod telemetry;
pub mod workspace;
