//! One integration-test binary (links once): every area is a module here.

mod support;

mod agent;
mod bench_smoke;
mod chaos;
mod client;
mod conformance;
mod conversation;
mod cycle;
mod delta;
mod demo;
mod doctor;
mod environment;
mod examples;
mod execution;
mod fidelity;
mod fuzz;
mod limits;
mod live;
mod nix;
mod process;
mod real_board;
mod secrets;
mod spread;
mod stop;
mod workspace;
