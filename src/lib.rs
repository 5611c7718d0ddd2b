//! journeyman: a stateless worker that turns an OpenProject board into a team of coding agents.
//!
//! See ARCHITECTURE.md for the map of modules and how data flows between them.

pub mod agent;
pub mod board;
pub mod budget;
pub mod config;
pub mod cycle;
pub mod demo;
pub mod doctor;
pub mod execute;
pub mod http;
pub mod openproject;
pub mod run;
pub mod sim;
pub mod snapshot;
pub mod telemetry;
pub mod workspace;
