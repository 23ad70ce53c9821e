//! Run a one-off command inside any container image as a Kubernetes Job, and get back its
//! stdout, stderr and exit status through a pluggable transport.
//!
//! This crate holds what every transport shares: the [`Request`], the [`Outcome`] and the
//! [`Report`] with its versioned wire schema, the [`Error`] enum, the traits
//! [`Dispatcher`], [`ResultChannel`] and [`Runner`], the Job-based dispatcher, the pod-state
//! classifier, and the courier's command execution.

pub mod cache;
pub mod capture;
pub mod channel;
pub mod classify;
pub mod clock;
pub mod courier;
pub mod dispatcher;
pub mod error;
mod grace;
pub mod job;
pub mod lean;
mod lean_json;
pub mod poll;
pub mod rate_limit;
pub mod report;
pub mod reporter_image;
pub mod request;
pub mod runner;
pub mod shared_watch;
pub mod watch;
mod watch_lines;

pub use channel::{PodState, ResultChannel};
pub use courier::{CourierHost, CourierIdentity, Delivery};
pub use dispatcher::{DispatchedJob, Dispatcher, GracePeriods, JobDispatcher, RunContext};
pub use error::{Error, InvalidRequest, Phase};
pub use job::CourierSpec;
pub use poll::{RunKey, RunStatus};
pub use report::{Captured, ExitStatus, Omission, Outcome, Report, ReportedExit};
pub use request::Request;
pub use runner::{JobRunner, Runner};
