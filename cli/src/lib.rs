//! The `cmdreporter` command: `run` an errand, `report` as the courier inside the pod,
//! `install` the courier into a shared volume, print the `rbac` a run needs, and serve the
//! fake cluster (`fake-cluster serve`).
//!
//! The courier's entry point, [`courier_main`], is a library function so that a test can
//! run the very same code in-process on the fake cluster's scripted runtime
//! ([`scripted`]). Nothing here prints: the binary's `main` writes what these functions
//! return.

pub mod cluster;
pub mod courier;
pub mod duration;
pub mod host;
pub mod output;
pub mod progress;
pub mod rbac;
pub mod run;
pub mod scripted;
pub mod serve;
pub mod transport;

pub use courier::courier_main;
pub use host::OsHost;
pub use output::EXIT_CMDREPORTER_ERROR;

/// The README's Rust blocks, compiled (and run) as doctests so that they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
