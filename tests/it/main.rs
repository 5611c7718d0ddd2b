//! One integration-test binary (links once): every area is a module here.

mod support;

mod agent;
mod bench_smoke;
mod client;
mod conformance;
mod cycle;
mod execution;
mod workspace;
