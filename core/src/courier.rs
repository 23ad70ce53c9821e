//! The courier's side of a run, independent of the transport: read the run's identity
//! from the environment, run the command once, hand the report to the transport, and
//! write any failure of its own to the termination message.

use std::io;

use async_trait::async_trait;

use crate::capture::{CaptureLimits, Exec, execute};
use crate::job::env;
use crate::report::{Report, SCHEMA_VERSION};

/// The pod a courier runs in: how it starts commands, reaches the API, and writes files.
#[async_trait]
pub trait CourierHost: Send + Sync {
    /// How commands are started.
    fn exec(&self) -> &dyn Exec;
    /// An environment variable of the courier.
    fn env(&self, name: &str) -> Option<String>;
    /// A client built as a program in a pod builds one.
    async fn client(&self) -> Result<kube::Client, String>;
    /// Writes to the courier's own standard output.
    async fn write_stdout(&self, data: &[u8]) -> io::Result<()>;
    /// Writes to the courier's own standard error (warnings).
    async fn write_stderr(&self, data: &[u8]);
    /// Writes the termination message file.
    fn write_termination_message(&self, path: &str, message: &str) -> io::Result<()>;
    /// Copies the running executable to `dest`, mode 0755.
    fn install(&self, dest: &str) -> io::Result<()>;
}

/// Who the courier works for, from the downward API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourierIdentity {
    /// The run id (from the command line).
    pub run_id: String,
    /// The Job's name.
    pub job_name: String,
    /// The Job's uid.
    pub job_uid: String,
    /// The pod's uid.
    pub pod_uid: String,
    /// The namespace.
    pub namespace: String,
}

impl CourierIdentity {
    /// Reads the identity from the courier's environment.
    pub fn from_host(host: &dyn CourierHost, run_id: &str) -> Result<Self, String> {
        let get = |k: &str| {
            host.env(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("environment variable {k} is not set"))
        };
        Ok(Self {
            run_id: run_id.to_owned(),
            job_name: get(env::JOB_NAME)?,
            job_uid: get(env::JOB_UID)?,
            pod_uid: get(env::POD_UID)?,
            namespace: get(env::NAMESPACE)?,
        })
    }
}

/// The courier side of a transport.
#[async_trait]
pub trait Delivery: Send + Sync {
    /// How much of each output stream to keep.
    fn limits(&self) -> CaptureLimits;
    /// Delivers the report; on failure, the message for the termination log.
    async fn deliver(
        &self,
        host: &dyn CourierHost,
        who: &CourierIdentity,
        report: &Report,
    ) -> Result<(), String>;
}

/// Exit code of a courier that delivered.
pub const EXIT_DELIVERED: i32 = 0;
/// Exit code of a courier that could not deliver.
pub const EXIT_UNDELIVERED: i32 = 1;
/// Exit code of a courier that could not even run (bad environment).
pub const EXIT_MISCONFIGURED: i32 = 2;

/// Runs `argv` once and delivers its report; returns the courier's exit code.
pub async fn report(
    host: &dyn CourierHost,
    delivery: &dyn Delivery,
    run_id: &str,
    argv: &[String],
    termination_log: &str,
) -> i32 {
    let who = match CourierIdentity::from_host(host, run_id) {
        Ok(w) => w,
        Err(e) => {
            let msg = format!("cmdreporter: {e}");
            let _ = host.write_termination_message(termination_log, &msg);
            host.write_stderr(format!("{msg}\n").as_bytes()).await;
            return EXIT_MISCONFIGURED;
        }
    };
    let (exit, stdout, stderr) = execute(host.exec(), argv, delivery.limits()).await;
    let report = Report {
        schema_version: SCHEMA_VERSION.to_owned(),
        run_id: run_id.to_owned(),
        pod_uid: who.pod_uid.clone(),
        exit,
        stdout,
        stderr,
    };
    match delivery.deliver(host, &who, &report).await {
        Ok(()) => EXIT_DELIVERED,
        Err(e) => {
            let msg = format!("cmdreporter: cannot deliver the report: {e}");
            let _ = host.write_termination_message(termination_log, &msg);
            host.write_stderr(format!("{msg}\n").as_bytes()).await;
            EXIT_UNDELIVERED
        }
    }
}
