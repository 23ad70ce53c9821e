//! The `cmdreporter` command: `run` an errand, `report` as the courier inside the pod,
//! `install` the courier into a shared volume.
//!
//! The courier's entry point, [`courier_main`], is a library function so that a test can
//! run the very same code in-process on the fake cluster's scripted runtime.

pub mod courier;
pub mod host;
pub mod run;

pub use courier::courier_main;
pub use host::OsHost;

/// Exit code of an error of cmdreporter itself (as `docker run` uses it).
pub const EXIT_CMDREPORTER_ERROR: i32 = 125;
