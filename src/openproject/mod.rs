//! The OpenProject API v3 port: the HTTP client, its wire types and its typed errors.
//!
//! Everything the worker knows about OpenProject's wire format lives here; the rest of the program
//! sees work packages, statuses and typed errors. Quirks are documented where they are handled, with
//! a pointer to `shared/openproject/API-NOTES.md`.
//!
//! Layout: `client.rs` (the client: base URL, decoding) on top of `transport.rs` (send, retry, size
//! limits) and `stats.rs` (request accounting, metrics), set up by `options.rs`; `endpoints.rs` (one
//! method per endpoint) speaks in `query.rs` (list filters, sorting, pages) and `write.rs` (PATCH
//! and POST bodies); `hal.rs` (wire types) and `error.rs` (typed errors).

pub mod client;
mod endpoints;
pub mod error;
pub mod hal;
mod options;
mod query;
mod stats;
mod transport;
mod write;

pub use client::Client;
pub use error::{ApiError, ErrorKind, Refusal};
pub use options::{Auth, ClientOptions, Notify, NotifyPolicy, RetryPolicy};
pub use query::{Filter, WorkPackageQuery};
pub use stats::StatsSnapshot;
pub use write::{NewWorkPackage, WorkPackagePatch};
