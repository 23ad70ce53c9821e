//! The ConfigMap layout of a report.

use std::collections::BTreeMap;

use cmdreporter_core::Error;
use cmdreporter_core::report::{Captured, ExitStatus, Omission, Report, ReportedExit};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;

/// Bytes kept per output stream: together under the 1 MiB ConfigMap limit, with room for
/// the other keys.
pub const BUDGET_PER_STREAM: usize = 512 * 1024 - 8 * 1024;

/// Keys of the ConfigMap.
pub mod keys {
    /// Standard output (in `data` when UTF-8, else in `binaryData`), as Rook writes it.
    pub const STDOUT: &str = "stdout";
    /// Standard error, likewise.
    pub const STDERR: &str = "stderr";
    /// The exit code (128 + N for signal N), as Rook writes it.
    pub const RETCODE: &str = "retcode";
    /// The signal that killed the command, if any.
    pub const SIGNAL: &str = "signal";
    /// Set when the command could not be started: `not-found` or `not-executable`.
    pub const NOT_STARTED: &str = "not-started";
    /// Why the command could not be started.
    pub const ERROR: &str = "error";
    /// The pod the courier ran in.
    pub const POD_UID: &str = "pod-uid";
    /// The run id.
    pub const RUN_ID: &str = "run-id";
    /// The report schema version.
    pub const SCHEMA: &str = "schema-version";
    /// Original size of stdout.
    pub const STDOUT_BYTES: &str = "stdout-total-bytes";
    /// Original size of stderr.
    pub const STDERR_BYTES: &str = "stderr-total-bytes";
    /// `<offset>:<bytes>`: where stdout's kept head ends and how much was left out there.
    pub const STDOUT_OMITTED: &str = "stdout-omitted";
    /// The same for stderr.
    pub const STDERR_OMITTED: &str = "stderr-omitted";
}

/// The name of pod `pod_uid`'s report when another pod of the same Job (Kubernetes may,
/// rarely, start two) took the Job's name first: `<job name>-<pod uid>`, a valid ConfigMap
/// name (at most 63 + 1 + 36 characters).
pub fn pod_report_name(job_name: &str, pod_uid: &str) -> String {
    format!("{job_name}-{pod_uid}")
}

/// The pod uid a report ConfigMap says it was written in, if it says.
pub fn pod_uid_of(cm: &ConfigMap) -> Option<&str> {
    cm.data
        .as_ref()
        .and_then(|d| d.get(keys::POD_UID))
        .map(String::as_str)
}

fn put_stream(
    data: &mut BTreeMap<String, String>,
    binary: &mut BTreeMap<String, ByteString>,
    key: &str,
    bytes_key: &str,
    omitted_key: &str,
    c: &Captured,
) {
    match std::str::from_utf8(&c.data) {
        Ok(s) => {
            data.insert(key.into(), s.to_owned());
        }
        Err(_) => {
            binary.insert(key.into(), ByteString(c.data.clone()));
        }
    }
    data.insert(bytes_key.into(), c.total_bytes.to_string());
    if let Some(o) = c.omitted {
        data.insert(omitted_key.into(), format!("{}:{}", o.at, o.bytes));
    }
}

/// Writes a report into the `data` and `binaryData` of a ConfigMap.
pub fn encode(report: &Report, cm: &mut ConfigMap) {
    let mut data = BTreeMap::new();
    let mut binary = BTreeMap::new();
    put_stream(
        &mut data,
        &mut binary,
        keys::STDOUT,
        keys::STDOUT_BYTES,
        keys::STDOUT_OMITTED,
        &report.stdout,
    );
    put_stream(
        &mut data,
        &mut binary,
        keys::STDERR,
        keys::STDERR_BYTES,
        keys::STDERR_OMITTED,
        &report.stderr,
    );
    match &report.exit {
        ReportedExit::Exited(e) => {
            data.insert(keys::RETCODE.into(), e.shell_code().to_string());
            if let ExitStatus::Signal(s) = e {
                data.insert(keys::SIGNAL.into(), s.to_string());
            }
        }
        ReportedExit::NotStarted { not_found, message } => {
            data.insert(
                keys::RETCODE.into(),
                if *not_found { "127" } else { "126" }.into(),
            );
            data.insert(
                keys::NOT_STARTED.into(),
                if *not_found {
                    "not-found"
                } else {
                    "not-executable"
                }
                .into(),
            );
            data.insert(keys::ERROR.into(), message.clone());
        }
    }
    data.insert(keys::POD_UID.into(), report.pod_uid.clone());
    data.insert(keys::RUN_ID.into(), report.run_id.clone());
    data.insert(keys::SCHEMA.into(), report.schema_version.clone());
    cm.data = Some(data);
    cm.binary_data = (!binary.is_empty()).then_some(binary);
}

fn get_stream(
    cm: &ConfigMap,
    key: &str,
    bytes_key: &str,
    omitted_key: &str,
) -> Result<Captured, Error> {
    let corrupt = |m: String| Error::CorruptReport(m);
    let text = cm.data.as_ref().and_then(|d| d.get(key));
    let binary = cm.binary_data.as_ref().and_then(|d| d.get(key));
    let data = match (text, binary) {
        (Some(t), None) => t.as_bytes().to_vec(),
        (None, Some(b)) => b.0.clone(),
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => {
            return Err(corrupt(format!("key {key} is in both data and binaryData")));
        }
    };
    let field = |k: &str| cm.data.as_ref().and_then(|d| d.get(k));
    let total_bytes = match field(bytes_key) {
        Some(v) => v
            .parse()
            .map_err(|_| corrupt(format!("{bytes_key} is not a number: {v:?}")))?,
        None => data.len() as u64,
    };
    let omitted = match field(omitted_key) {
        None => None,
        Some(v) => {
            let (at, bytes) = v
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| corrupt(format!("{omitted_key} is malformed: {v:?}")))?;
            Some(Omission { at, bytes })
        }
    };
    Ok(Captured {
        data,
        total_bytes,
        omitted,
    })
}

/// Reads a report from a ConfigMap (also one written by Rook's courier: `stdout`,
/// `stderr`, `retcode` only).
pub fn decode(cm: &ConfigMap) -> Result<Report, Error> {
    let field = |k: &str| cm.data.as_ref().and_then(|d| d.get(k)).cloned();
    let corrupt = |m: String| Error::CorruptReport(m);
    let schema =
        field(keys::SCHEMA).unwrap_or_else(|| cmdreporter_core::report::SCHEMA_VERSION.into());
    cmdreporter_core::report::check_schema_version(&schema)?;
    let retcode: i32 = field(keys::RETCODE)
        .ok_or_else(|| corrupt("no retcode".into()))?
        .parse()
        .map_err(|_| corrupt("retcode is not a number".into()))?;
    let exit = if let Some(kind) = field(keys::NOT_STARTED) {
        ReportedExit::NotStarted {
            not_found: kind == "not-found",
            message: field(keys::ERROR).unwrap_or_default(),
        }
    } else if let Some(sig) = field(keys::SIGNAL) {
        ReportedExit::Exited(ExitStatus::Signal(
            sig.parse()
                .map_err(|_| corrupt(format!("signal is not a number: {sig:?}")))?,
        ))
    } else {
        ReportedExit::Exited(ExitStatus::Code(retcode))
    };
    Ok(Report {
        schema_version: schema,
        run_id: field(keys::RUN_ID).unwrap_or_default(),
        pod_uid: field(keys::POD_UID).unwrap_or_default(),
        exit,
        stdout: get_stream(cm, keys::STDOUT, keys::STDOUT_BYTES, keys::STDOUT_OMITTED)?,
        stderr: get_stream(cm, keys::STDERR, keys::STDERR_BYTES, keys::STDERR_OMITTED)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stdout: &[u8], exit: ReportedExit) -> Report {
        Report {
            schema_version: "1.0".into(),
            run_id: "r".into(),
            pod_uid: "p".into(),
            exit,
            stdout: Captured::complete(stdout.to_vec()),
            stderr: Captured {
                data: b"ab".to_vec(),
                total_bytes: 10,
                omitted: Some(Omission { at: 1, bytes: 8 }),
            },
        }
    }

    #[test]
    fn round_trips_binary_and_signals() {
        for (out, exit) in [
            (
                &b"\xff\xfe\x00"[..],
                ReportedExit::Exited(ExitStatus::Signal(9)),
            ),
            (b"text", ReportedExit::Exited(ExitStatus::Code(3))),
            (
                b"",
                ReportedExit::NotStarted {
                    not_found: true,
                    message: "nope".into(),
                },
            ),
        ] {
            let r = report(out, exit);
            let mut cm = ConfigMap::default();
            encode(&r, &mut cm);
            assert_eq!(decode(&cm).unwrap(), r);
        }
        let mut cm = ConfigMap::default();
        encode(
            &report(b"\xff", ReportedExit::Exited(ExitStatus::Signal(9))),
            &mut cm,
        );
        assert!(cm.binary_data.unwrap().contains_key("stdout"));
        assert_eq!(cm.data.as_ref().unwrap()["retcode"], "137");
    }

    #[test]
    fn reads_rook_configmaps_and_refuses_other_majors() {
        let mut cm = ConfigMap {
            data: Some(BTreeMap::from([
                ("stdout".to_owned(), "v18".to_owned()),
                ("stderr".to_owned(), String::new()),
                ("retcode".to_owned(), "0".to_owned()),
            ])),
            ..Default::default()
        };
        let r = decode(&cm).unwrap();
        assert_eq!(r.stdout.data, b"v18");
        cm.data
            .as_mut()
            .unwrap()
            .insert("schema-version".into(), "2.0".into());
        assert!(matches!(decode(&cm), Err(Error::UnsupportedReport { .. })));
    }
}
