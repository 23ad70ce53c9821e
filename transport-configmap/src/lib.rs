//! The ConfigMap transport, as Rook's CmdReporter uses it, without its flaws.
//!
//! The courier creates (only creates) a ConfigMap named like its Job and owned by it, with
//! the keys Rook writes (`stdout`, `stderr`, `retcode`) and more: output that is not UTF-8
//! goes to `binaryData` byte for byte, a signal has its own key, sizes and truncation are
//! recorded, and the run id and pod uid tie the report to its run. When another pod of the
//! same Job (Kubernetes may, rarely, start two) took that name first, the courier writes its
//! report under [`pod_report_name`] instead. The operator watches the run's ConfigMaps (by
//! its run-id label) and accepts only one owned by its Job and written in the pod it
//! watches, whatever its name, reading it from the watch event.

mod format;
mod receive;
mod send;

pub use format::{BUDGET_PER_STREAM, decode, encode, keys, pod_report_name, pod_uid_of};
pub use receive::ConfigMapChannel;
pub use send::ConfigMapDelivery;

/// The transport's name on the courier's command line.
pub const TRANSPORT: &str = "configmap";
