//! The report a courier sends back, its versioned wire schema, and the [`Outcome`] a run
//! returns.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The schema version this crate writes. Readers accept the same major version and refuse
/// another with [`Error::UnsupportedReport`].
pub const SCHEMA_VERSION: &str = "1.0";

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// The code a shell would report: the exit code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            Self::Code(c) => c,
            Self::Signal(s) => 128 + s,
        }
    }

    /// Whether the command exited with code 0.
    pub fn success(self) -> bool {
        self == Self::Code(0)
    }
}

/// How the courier saw the command end, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ReportedExit {
    /// The command ran and ended.
    Exited(ExitStatus),
    /// The command could not be started.
    NotStarted {
        /// Not found (rather than found but not executable).
        not_found: bool,
        /// The operating system's message.
        message: String,
    },
}

/// Bytes left out of a captured stream that outgrew its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Omission {
    /// Offset in the kept bytes where the gap is (the head's length).
    pub at: u64,
    /// How many bytes were left out there.
    pub bytes: u64,
}

/// One captured output stream: the bytes kept, the original size, what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Captured {
    /// The bytes kept (the whole stream, or its head followed by its tail).
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
    /// The stream's original size in bytes.
    pub total_bytes: u64,
    /// The gap, when the stream was truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<Omission>,
}

impl Captured {
    /// A complete (untruncated) capture.
    pub fn complete(data: Vec<u8>) -> Self {
        let total_bytes = data.len() as u64;
        Self {
            data,
            total_bytes,
            omitted: None,
        }
    }

    /// Whether bytes were left out.
    pub fn is_truncated(&self) -> bool {
        self.omitted.is_some()
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// What the courier reports for one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Schema version, `major.minor`.
    pub schema_version: String,
    /// The run id the courier was started with.
    pub run_id: String,
    /// The uid of the pod the courier ran in.
    pub pod_uid: String,
    /// How the command ended.
    pub exit: ReportedExit,
    /// Its standard output.
    pub stdout: Captured,
    /// Its standard error.
    pub stderr: Captured,
}

impl Report {
    /// Checks that the schema version is one this reader understands: same major version.
    pub fn check_version(&self) -> Result<(), Error> {
        check_schema_version(&self.schema_version)
    }
}

/// Accepts `found` when its major version equals this crate's.
pub fn check_schema_version(found: &str) -> Result<(), Error> {
    let major = |v: &str| v.split('.').next().map(str::to_owned);
    if major(found) == major(SCHEMA_VERSION) && !found.is_empty() {
        Ok(())
    } else {
        Err(Error::UnsupportedReport {
            found: found.to_owned(),
            supported: SCHEMA_VERSION.to_owned(),
        })
    }
}

/// The result of a run whose command ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the command ended.
    pub exit: ExitStatus,
    /// Its standard output.
    pub stdout: Captured,
    /// Its standard error.
    pub stderr: Captured,
    /// The run id.
    pub run_id: String,
    /// The Job that ran it.
    pub job_name: String,
    /// The image ID the pod ran, when the pod's status showed it.
    pub image_id: Option<String>,
    /// Time from the start of the run to the report.
    pub elapsed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as a courier of schema 1.0 writes it, with a field this reader does not
    /// know (as a newer minor version may add).
    const V1_0_WITH_EXTRA: &str = r#"{
        "schemaVersion": "1.0", "runId": "r1", "podUid": "p1",
        "exit": {"exited": {"code": 3}},
        "stdout": {"data": "b3V0", "totalBytes": 3},
        "stderr": {"data": "", "totalBytes": 0},
        "durationMs": 12
    }"#;

    #[test]
    fn reads_its_own_and_other_minor_versions_ignoring_unknown_fields() {
        let r: Report = serde_json::from_str(V1_0_WITH_EXTRA).unwrap();
        r.check_version().unwrap();
        assert_eq!(r.exit, ReportedExit::Exited(ExitStatus::Code(3)));
        assert_eq!(r.stdout.data, b"out");
        let newer = V1_0_WITH_EXTRA.replace("\"1.0\"", "\"1.7\"");
        let r: Report = serde_json::from_str(&newer).unwrap();
        r.check_version().unwrap();
    }

    #[test]
    fn refuses_another_major_version_naming_both() {
        let v2 = V1_0_WITH_EXTRA.replace("\"1.0\"", "\"2.0\"");
        let r: Report = serde_json::from_str(&v2).unwrap();
        match r.check_version() {
            Err(Error::UnsupportedReport { found, supported }) => {
                assert_eq!(found, "2.0");
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_started_fields_are_camel_case_on_the_wire() {
        let exit = ReportedExit::NotStarted {
            not_found: true,
            message: "x".into(),
        };
        let json = serde_json::to_string(&exit).unwrap();
        assert_eq!(json, r#"{"notStarted":{"notFound":true,"message":"x"}}"#);
    }
}
