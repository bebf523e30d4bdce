//! The wray integration suite: one test binary, one module per area.
//!
//! The guests it drives are built by `make guests` (the suite does not build
//! them itself: cargo cannot be run from inside a build of the same target
//! directory). `make test` builds them first.

mod abi;
mod actors;
mod browser;
mod cli;
mod cluster;
mod common;
mod dashboard;
mod errors;
mod examples;
mod faults;
mod hardening;
mod mapping;
mod memo;
mod modules;
mod node;
mod objects;
mod polyglot;
mod tasks;
