//! The OpenProject API v3 port: the HTTP client, its wire types and its typed errors.
//!
//! Everything the worker knows about OpenProject's wire format lives here; the rest of the program
//! sees work packages, statuses and typed errors. Quirks are documented where they are handled, with
//! a pointer to `shared/openproject/API-NOTES.md`.

pub mod client;
pub mod error;
pub mod hal;

pub use client::{
    Auth, Client, ClientOptions, Filter, NewWorkPackage, RetryPolicy, StatsSnapshot,
    WorkPackagePatch, WorkPackageQuery,
};
pub use error::{ApiError, ErrorKind};
