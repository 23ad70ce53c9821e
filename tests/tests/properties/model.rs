//! The model: what a case is.

use cmdreporter_core::ExitStatus;
use cmdreporter_fake_cluster::faults::{Fault, KubeletFault};
use cmdreporter_tests::Transport;

/// The transport, and for the logs transport the courier's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    ConfigMap,
    /// The logs transport with the real courier (about 7.4 MiB: every output here fits).
    Logs,
    /// The logs transport with a courier whose capacity is
    /// [`SMALL_LOG_CAPACITY`](crate::SMALL_LOG_CAPACITY).
    LogsSmall,
}

impl Via {
    pub(crate) fn transport(self) -> Transport {
        match self {
            Via::ConfigMap => Transport::ConfigMap,
            Via::Logs | Via::LogsSmall => Transport::Logs,
        }
    }
}

/// One output stream: empty, or the run's token followed by `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Out {
    pub(crate) len: usize,
    pub(crate) binary: bool,
}

/// What the command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    /// Whether the program exists in the image.
    pub(crate) found: bool,
    pub(crate) stdout: Option<Out>,
    pub(crate) stderr: Option<Out>,
    /// Size of each write.
    pub(crate) chunk: usize,
    pub(crate) exit: ExitStatus,
    /// Seconds it sleeps (0: fast), before or after writing.
    pub(crate) delay: u64,
    pub(crate) sleep_first: bool,
}

/// What the pod meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meets {
    Nothing,
    UnpullableImage,
    Unschedulable,
    AdmissionRejects,
    /// The install step of the reporter image fails with this exit code.
    InitFails(i32),
    /// The pod is evicted (deleted, as the Eviction API does) this long after its command
    /// started.
    Evicted(u64),
    /// A second pod of the same Job appears (as Kubernetes may, rarely, start one).
    SecondPod,
    /// A mutating admission webhook gives the command's container an image reference the
    /// kubelet cannot parse (`InvalidImageName`).
    InvalidImageName,
    /// A mutating admission webhook adds an env var from a Secret that does not exist
    /// (`CreateContainerConfigError`).
    ContainerConfigError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunSpec {
    pub(crate) name: &'static str,
    /// `default`, or another namespace.
    pub(crate) namespace: &'static str,
    pub(crate) command: Command,
    pub(crate) meets: Meets,
    /// Drop the run's future after this many milliseconds.
    pub(crate) cancel_after_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    pub(crate) seed: u64,
    pub(crate) via: Via,
    pub(crate) shared_watches: bool,
    pub(crate) runs: Vec<RunSpec>,
    pub(crate) faults: Vec<FaultRule>,
    /// Kubelet faults: the percentage of pods each befalls.
    pub(crate) kubelet: Vec<(u8, KubeletFault)>,
    /// The runner's bound on runs in flight, if any.
    pub(crate) max_in_flight: Option<usize>,
}

pub(crate) type FaultRule = (Option<&'static str>, Option<&'static str>, u8, Fault);
