//! The ConfigMap transport, as Rook's CmdReporter uses it, without its flaws.
//!
//! The courier creates (only creates) a ConfigMap named like its Job and owned by it, with
//! the keys Rook writes (`stdout`, `stderr`, `retcode`) and more: output that is not UTF-8
//! goes to `binaryData` byte for byte, a signal has its own key, sizes and truncation are
//! recorded, and the run id and pod uid tie the report to its run. The operator watches that
//! one name and accepts only the ConfigMap owned by its Job, reading it from the watch
//! event.

mod format;
mod receive;
mod send;

pub use format::{BUDGET_PER_STREAM, decode, encode, keys};
pub use receive::ConfigMapChannel;
pub use send::ConfigMapDelivery;

/// The transport's name on the courier's command line.
pub const TRANSPORT: &str = "configmap";
