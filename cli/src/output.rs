//! What `cmdreporter run` prints and how it exits: text (the command's streams and exit
//! status passed through) or one JSON object.

use base64::Engine as _;
use cmdreporter_core::{Captured, Error, ExitStatus};
use serde_json::{Map, Value, json};

use crate::cluster::ClusterError;
use crate::run::{RunError, RunSummary};

/// Exit code of an error of cmdreporter itself (as `docker run` uses it).
pub const EXIT_CMDREPORTER_ERROR: i32 = 125;
/// Exit code of a command that could not be executed (as shells use it).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code of a command that was not found (as shells use it).
pub const EXIT_NOT_FOUND: i32 = 127;

/// The output format of `cmdreporter run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// The command's stdout and stderr on cmdreporter's, its exit status as cmdreporter's.
    #[default]
    Text,
    /// One JSON object on stdout.
    Json,
}

/// What to write and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Bytes for stdout.
    pub stdout: Vec<u8>,
    /// Bytes for stderr.
    pub stderr: Vec<u8>,
    /// The exit code.
    pub code: i32,
}

/// A short, stable name for each kind of error (the `kind` of the JSON error object).
pub fn error_kind(e: &RunError) -> &'static str {
    match e {
        RunError::Transport(_) => "unknown_transport",
        RunError::Cluster(ClusterError::NoConfig(_)) => "no_cluster",
        RunError::Cluster(ClusterError::Unreachable { .. }) => "unreachable_cluster",
        RunError::Cluster(ClusterError::Refused { .. }) => "cluster_refused",
        RunError::Cluster(ClusterError::Fake(_)) => "fake_cluster",
        RunError::Setup(_) => "setup",
        RunError::Interrupted { .. } => "interrupted",
        RunError::Run(e) => match e {
            Error::InvalidRequest(_) => "invalid_request",
            Error::ImagePull { .. } => "image_pull",
            Error::Unschedulable { .. } => "unschedulable",
            Error::PodRejected { .. } => "pod_rejected",
            Error::ContainerConfig { .. } => "container_config",
            Error::InitContainerFailed { .. } => "init_container_failed",
            Error::CommandNotStarted {
                not_found: true, ..
            } => "command_not_found",
            Error::CommandNotStarted { .. } => "command_not_executable",
            Error::CourierFailed { .. } => "courier_failed",
            Error::JobFailed { .. } => "job_failed",
            Error::Timeout { .. } => "timeout",
            Error::Api(e)
                if matches!(**e, kube::Error::HyperError(_) | kube::Error::Service(_)) =>
            {
                "unreachable_cluster"
            }
            Error::Api(_) => "api",
            Error::CorruptReport(_) => "corrupt_report",
            Error::Transport { .. } => "transport",
            Error::UnsupportedReport { .. } => "unsupported_report",
        },
    }
}

/// The error on one line, with its causes.
pub fn error_message(e: &RunError) -> String {
    match e {
        RunError::Run(Error::Timeout { timeout, phase }) => format!(
            "timed out after {} while {phase}",
            crate::duration::format_duration(*timeout)
        ),
        _ => crate::cluster::error_chain(e).replace('\n', " "),
    }
}

/// The exit code for a result.
pub fn exit_code(result: &Result<cmdreporter_core::Outcome, RunError>) -> i32 {
    match result {
        Ok(o) => o.exit.shell_code(),
        Err(RunError::Run(Error::CommandNotStarted { not_found, .. })) => {
            if *not_found {
                EXIT_NOT_FOUND
            } else {
                EXIT_NOT_EXECUTABLE
            }
        }
        Err(RunError::Interrupted { signal }) => 128 + signal,
        Err(_) => EXIT_CMDREPORTER_ERROR,
    }
}

/// The one-line error of cmdreporter itself, as text.
pub fn error_line(message: &str) -> String {
    format!("cmdreporter: {message}\n")
}

/// The JSON error object: `{"error": {"kind": ..., "message": ...}}`.
pub fn error_json(kind: &str, message: &str) -> String {
    format!("{}\n", json!({"error": {"kind": kind, "message": message}}))
}

fn stream(obj: &mut Map<String, Value>, key: &str, c: &Captured) {
    match std::str::from_utf8(&c.data) {
        Ok(s) => obj.insert(key.into(), Value::String(s.to_owned())),
        Err(_) => obj.insert(
            format!("{key}_base64"),
            Value::String(base64::engine::general_purpose::STANDARD.encode(&c.data)),
        ),
    };
    obj.insert(format!("{key}_truncated"), Value::Bool(c.is_truncated()));
}

/// Renders a run's summary in `format`.
pub fn render(summary: &RunSummary, format: Format) -> Rendered {
    let code = exit_code(&summary.result);
    let not_started = match &summary.result {
        Err(RunError::Run(Error::CommandNotStarted {
            command,
            not_found,
            message,
        })) => Some((command, *not_found, message)),
        _ => None,
    };
    match (format, &summary.result) {
        (Format::Text, Ok(o)) => Rendered {
            stdout: o.stdout.data.clone(),
            stderr: o.stderr.data.clone(),
            code,
        },
        (Format::Text, Err(e)) => Rendered {
            stdout: Vec::new(),
            stderr: error_line(&error_message(e)).into_bytes(),
            code,
        },
        (Format::Json, Err(e)) if not_started.is_none() => Rendered {
            stdout: error_json(error_kind(e), &error_message(e)).into_bytes(),
            stderr: Vec::new(),
            code,
        },
        (Format::Json, result) => {
            let mut obj = Map::new();
            let empty = Captured::default();
            let (exit, stdout, stderr) = match result {
                Ok(o) => (Some(o.exit), &o.stdout, &o.stderr),
                Err(_) => (None, &empty, &empty),
            };
            let (exit_code, signal) = match exit {
                Some(ExitStatus::Code(c)) => (json!(c), Value::Null),
                Some(ExitStatus::Signal(s)) => (Value::Null, json!(s)),
                None => (json!(code), Value::Null),
            };
            obj.insert("exit_code".into(), exit_code);
            obj.insert("signal".into(), signal);
            stream(&mut obj, "stdout", stdout);
            stream(&mut obj, "stderr", stderr);
            if let Some((command, not_found, message)) = not_started {
                obj.insert(
                    "not_started".into(),
                    json!({"command": command, "not_found": not_found, "message": message}),
                );
            }
            obj.insert("transport".into(), json!(summary.transport));
            obj.insert("namespace".into(), json!(summary.namespace));
            obj.insert("job".into(), json!(summary.job));
            obj.insert(
                "duration_ms".into(),
                json!(u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX)),
            );
            obj.insert("api_requests".into(), json!(summary.api_requests));
            Rendered {
                stdout: format!("{}\n", Value::Object(obj)).into_bytes(),
                stderr: Vec::new(),
                code,
            }
        }
    }
}
