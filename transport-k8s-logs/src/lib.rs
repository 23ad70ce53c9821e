//! The pod-logs transport, for clusters where pods cannot reach the API server: no egress
//! from the pod, no right to create ConfigMaps, no service account token in the pod.
//!
//! **Courier** ([`LogsDelivery`]): after the command ends, the courier prints the report
//! on its own stdout as one [`frame`]: a newline, a versioned header line with the
//! run id, the pod uid, the payload's length, encoding and SHA-256, the payload as base64
//! lines of at most 4 KiB (under the 8 KiB and 16 KiB at which container runtimes split
//! lines), and an end line with the line count. The command's own output is captured by
//! the courier and never reaches the log raw. The pod runs with
//! `automountServiceAccountToken: false` and needs no RBAC.
//!
//! **Operator** ([`LogsChannel`]): waits (through the runner's pod watch) for the main
//! container `cmd` to terminate, so the log is complete, then makes one GET of that
//! container's log (no follow, no timestamps) and [reads](reader::read_report) it as a
//! stream in bounded memory: foreign lines before, between and after frames are skipped.
//! It needs `watch` on pods and `get` on `pods/log`. Distinct [`ReadError`]s: no report,
//! truncated (a header without its end, or an end without its header after log rotation),
//! corrupt (checksum, sequence, lengths), too large (over [`ReadLimits`]), report of
//! another run or pod (refused).
//!
//! # Capacity
//!
//! The kubelet rotates a container's log at `containerLogMaxSize` (10 Mi by default) and
//! serves only the current file, and base64 grows the payload by a third: a frame holds
//! at most [`payload_capacity`]`(10 MiB)` = 7,766,304 transmitted bytes, about 7.4 MiB
//! (64 KiB of the log are left for the courier's own warnings). The courier keeps up to
//! 8 MiB of each stream (head and tail); output that compresses well (a sample shrinks by
//! a tenth) is sent deflated, which raises the capacity for compressible output, and
//! output that still does not fit is trimmed, head and tail kept, with the gap stated in
//! the report (`Captured::omitted`), never silently. The reader refuses frames that
//! declare more than [`ReadLimits::max_payload`] transmitted or
//! [`ReadLimits::max_inflated`] inflated bytes (64 MiB each by default), and stops
//! inflating at the declared size.
//!
//! # Threat model
//!
//! The run id (a fresh random nonce per run, also in the Job's name) and the pod uid in
//! the header tie a frame to its run: a stale report, one of another run, or one of
//! another pod of the Job is refused. The SHA-256 and the sequence numbers catch broken
//! logs: a rotated, cut, reordered or altered line. They are no defence against a hostile
//! command in the same pod: it knows the run id and pod uid (from its argv and
//! environment), can write to the container's stdout through `/proc/1/fd/1` or a
//! descendant, and can print a well-formed frame with a valid checksum of its own. The
//! checksum is not a signature; the report is as trustworthy as the image it ran in. A
//! reader of the pod's logs (`get pods/log`) can read the report.
//!
//! ```
//! # use cmdreporter_core::{Captured, ExitStatus, Report, ReportedExit};
//! use cmdreporter_k8s_logs::{ReadError, encode_frame, reader};
//! # futures::executor::block_on(async {
//! let report = Report {
//!     schema_version: "1.0".into(),
//!     run_id: "abc".into(),
//!     pod_uid: "uid-1".into(),
//!     exit: ReportedExit::Exited(ExitStatus::Code(0)),
//!     stdout: Captured::complete(b"\xff\xfe\x00".to_vec()),
//!     stderr: Captured::default(),
//! };
//! let log = encode_frame(&report, &Default::default()).unwrap().to_bytes();
//! let limits = reader::ReadLimits::default();
//! let ours = reader::Expected { run_id: "abc".into(), pod_uid: None };
//! assert_eq!(reader::read_report(&log[..], &ours, &limits).await.unwrap(), report);
//! let theirs = reader::Expected { run_id: "xyz".into(), pod_uid: None };
//! let refused = reader::read_report(&log[..], &theirs, &limits).await;
//! assert!(matches!(refused, Err(ReadError::OtherRun { .. })));
//! # });
//! ```

mod error;
pub mod frame;
mod payload;
pub mod reader;
mod receive;
pub mod send;

pub use error::ReadError;
pub use reader::{ReadLimits, read_report};
pub use receive::LogsChannel;
pub use send::{EncodeOptions, LogsDelivery, encode_frame, payload_capacity};

/// The transport's name on the courier's command line (`--transport logs`).
pub const TRANSPORT: &str = "logs";
