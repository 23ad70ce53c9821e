//! The errors of a run: each variant names what went wrong.

use std::time::Duration;

/// Where a run stood when its timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Waiting for a slot: the runner's bound on in-flight runs is reached.
    Queued,
    /// Creating the Job.
    Dispatching,
    /// The Job exists, no pod yet.
    WaitingForPod,
    /// The pod is not bound to a node yet.
    Scheduling,
    /// The pod's images are being pulled or its init container runs.
    Starting,
    /// The command runs.
    Running,
    /// The command ended; the report is on its way.
    Reporting,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Queued => "queued behind other runs",
            Self::Dispatching => "dispatching the Job",
            Self::WaitingForPod => "waiting for the Job's pod",
            Self::Scheduling => "scheduling the pod",
            Self::Starting => "starting the pod's containers",
            Self::Running => "running the command",
            Self::Reporting => "waiting for the report",
        })
    }
}

/// An input of a [`Request`](crate::Request) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {field}: {problem}")]
pub struct InvalidRequest {
    /// The field, e.g. `name` or `owner_references[0].namespace`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Everything that can go wrong in a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is invalid; nothing was sent to the API server.
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),

    /// An image could not be pulled (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`).
    #[error("image {image:?} cannot be pulled ({reason}): {message}")]
    ImagePull {
        /// The image reference.
        image: String,
        /// The kubelet's reason.
        reason: String,
        /// The kubelet's message.
        message: String,
    },

    /// The pod cannot be scheduled.
    #[error("pod cannot be scheduled: {message}")]
    Unschedulable {
        /// The scheduler's message.
        message: String,
    },

    /// The pod was never created: admission (Pod Security, quota, a missing service
    /// account) rejected it, as the Job's `FailedCreate` events say.
    #[error("pod rejected: {message}")]
    PodRejected {
        /// The event's message (`Error creating: ...`).
        message: String,
    },

    /// A container's configuration is invalid (`CreateContainerConfigError`).
    #[error("container {container:?} cannot be configured: {message}")]
    ContainerConfig {
        /// The container.
        container: String,
        /// The kubelet's message.
        message: String,
    },

    /// The init container (which installs the courier) failed.
    #[error("init container {container:?} failed with exit code {exit_code}: {message}")]
    InitContainerFailed {
        /// The container.
        container: String,
        /// Its exit code.
        exit_code: i32,
        /// Its termination message or reason.
        message: String,
    },

    /// The command could not be started (not found, not executable).
    #[error("command {command:?} could not be started: {message}")]
    CommandNotStarted {
        /// `argv[0]`.
        command: String,
        /// Whether it was not found (exit 127 in a shell) rather than not executable (126).
        not_found: bool,
        /// Why.
        message: String,
    },

    /// The courier ended without delivering a report.
    #[error("the reporter failed without a report (exit code {exit_code}): {message}")]
    CourierFailed {
        /// The courier container's exit code.
        exit_code: i32,
        /// Its termination message.
        message: String,
    },

    /// The Job failed for a reason of its own (deadline, backoff limit) without a report.
    #[error("job failed ({reason}): {message}")]
    JobFailed {
        /// The condition's reason.
        reason: String,
        /// The condition's message.
        message: String,
    },

    /// No result within the request's timeout.
    #[error("timed out after {timeout:?} while {phase}")]
    Timeout {
        /// The timeout.
        timeout: Duration,
        /// Where the run was stuck.
        phase: Phase,
    },

    /// The API server refused a request for good.
    #[error("API request failed: {0}")]
    Api(#[source] Box<kube::Error>),

    /// A report was received but cannot be read.
    #[error("corrupt report: {0}")]
    CorruptReport(String),

    /// The transport could not obtain a report; the source says how (for the logs
    /// transport a `cmdreporter_k8s_logs::ReadError`: no report, truncated, corrupt, too
    /// large, report of another run). Downcast the source to match on it.
    #[error("{transport} transport: {source}")]
    Transport {
        /// The transport's name.
        transport: &'static str,
        /// What went wrong, in the transport's own error type.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The report was written by a courier of an incompatible schema version.
    #[error("report schema {found} is not supported (this reader supports {supported})")]
    UnsupportedReport {
        /// The version the report carries.
        found: String,
        /// The version this reader reads.
        supported: String,
    },
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Self::Api(Box::new(e))
    }
}

impl Error {
    /// The variant's name, e.g. `ImagePull` or `Timeout`: a stable word for a custom
    /// resource's status condition `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "InvalidRequest",
            Self::ImagePull { .. } => "ImagePull",
            Self::Unschedulable { .. } => "Unschedulable",
            Self::PodRejected { .. } => "PodRejected",
            Self::ContainerConfig { .. } => "ContainerConfig",
            Self::InitContainerFailed { .. } => "InitContainerFailed",
            Self::CommandNotStarted { .. } => "CommandNotStarted",
            Self::CourierFailed { .. } => "CourierFailed",
            Self::JobFailed { .. } => "JobFailed",
            Self::Timeout { .. } => "Timeout",
            Self::Api(_) => "Api",
            Self::CorruptReport(_) => "CorruptReport",
            Self::Transport { .. } => "Transport",
            Self::UnsupportedReport { .. } => "UnsupportedReport",
        }
    }

    /// Whether an API error is worth retrying (429, 5xx, connection trouble).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api(e) => is_transient(e),
            _ => false,
        }
    }
}

/// Whether a kube error is worth retrying (429, 500, 502, 503, 504, or no answer at all).
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The HTTP code of an API error, if the server answered.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}
