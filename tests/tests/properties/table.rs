//! The table: what each run must end with, by what its command did and what was injected.

use std::collections::BTreeSet;
use std::time::Duration;

use cmdreporter_configmap::BUDGET_PER_STREAM;
use cmdreporter_core::{Captured, Error, ExitStatus, GracePeriods, Outcome, Phase};
use cmdreporter_fake_cluster::faults::{Fault, InjectedFault, KubeletFault};

use crate::command::Script;
use crate::conditions::{REJECTION, invalid_image_of};
use crate::model::{Command, Meets, RunSpec, Via};
use crate::{META_ROOM, MISSING_SECRET, SLACK, SMALL_LOG_CAPACITY, TIMEOUT};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expect {
    Outcome {
        exit: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    NotFound,
    Timeout,
    ImagePull,
    Unschedulable,
    Rejected,
    InitFailed(i32),
    InvalidImageName,
    ContainerConfig,
}

/// What a run must end with when the API answers every request.
pub(crate) fn expect(run: &RunSpec, script: &Script) -> Expect {
    match run.meets {
        Meets::UnpullableImage => return Expect::ImagePull,
        Meets::Unschedulable => return Expect::Unschedulable,
        Meets::AdmissionRejects => return Expect::Rejected,
        Meets::InitFails(code) => return Expect::InitFailed(code),
        Meets::InvalidImageName => return Expect::InvalidImageName,
        Meets::ContainerConfigError => return Expect::ContainerConfig,
        Meets::Nothing | Meets::Evicted(_) | Meets::SecondPod => {}
    }
    let c = &run.command;
    if !c.found {
        Expect::NotFound
    } else if Duration::from_secs(c.delay) >= TIMEOUT {
        Expect::Timeout
    } else {
        Expect::Outcome {
            exit: c.exit,
            stdout: script.stdout.clone(),
            stderr: script.stderr.clone(),
        }
    }
}

/// Until when (from the start of the run) the error must have come: detection in
/// seconds, not at the timeout.
pub(crate) fn detected_within(e: &Expect) -> Duration {
    match e {
        Expect::ImagePull => GracePeriods::default().image_pull + Duration::from_secs(5),
        Expect::Unschedulable => GracePeriods::default().unschedulable + Duration::from_secs(5),
        Expect::Rejected => GracePeriods::default().pod_creation + Duration::from_secs(5),
        Expect::InitFailed(_)
        | Expect::NotFound
        | Expect::InvalidImageName
        | Expect::ContainerConfig => Duration::from_secs(5),
        Expect::Timeout | Expect::Outcome { .. } => TIMEOUT + SLACK,
    }
}

/// Whether `got` is exactly `src` as the transport delivers it: whole, or head and tail
/// with the omission stated.
pub(crate) fn check_stream(
    what: &str,
    src: &[u8],
    other: usize,
    got: &Captured,
    via: Via,
) -> Result<(), String> {
    let len = src.len();
    if got.total_bytes != len as u64 {
        return Err(format!("{what}: total {} != {len}", got.total_bytes));
    }
    let whole = match via {
        Via::ConfigMap => len <= BUDGET_PER_STREAM,
        Via::Logs => true,
        Via::LogsSmall => len + other + META_ROOM <= SMALL_LOG_CAPACITY as usize,
    };
    if whole || got.omitted.is_none() {
        if got.omitted.is_some() || got.data != src {
            return Err(format!(
                "{what}: {len} bytes must come back whole, got {} bytes, omitted {:?}",
                got.data.len(),
                got.omitted
            ));
        }
        if via == Via::ConfigMap && !whole {
            return Err(format!(
                "{what}: {len} bytes beyond the budget came back whole"
            ));
        }
        return Ok(());
    }
    let gap = got.omitted.unwrap();
    let kept = got.data.len();
    let head = gap.at as usize;
    if head > kept || kept >= len {
        return Err(format!(
            "{what}: gap at {head} of {kept} kept, {len} in all"
        ));
    }
    let tail = kept - head;
    if got.data[..head] != src[..head] || got.data[head..] != src[len - tail..] {
        return Err(format!(
            "{what}: head {head} / tail {tail} are not the stream's"
        ));
    }
    if gap.bytes as usize != len - kept {
        return Err(format!(
            "{what}: gap of {} bytes, {} left out",
            gap.bytes,
            len - kept
        ));
    }
    if via == Via::ConfigMap {
        let h = BUDGET_PER_STREAM / 2;
        if head != h || tail != BUDGET_PER_STREAM - h {
            return Err(format!(
                "{what}: head {head} tail {tail}, budget split is {h}"
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_outcome(
    o: &Outcome,
    run: &RunSpec,
    expected: &Expect,
    via: Via,
) -> Result<(), String> {
    let Expect::Outcome {
        exit,
        stdout,
        stderr,
    } = expected
    else {
        return Err(format!(
            "expected {expected:?}, got outcome exit {:?}",
            o.exit
        ));
    };
    if o.exit != *exit {
        return Err(format!(
            "exit {:?}, the command ended with {exit:?}",
            o.exit
        ));
    }
    check_stream("stdout", stdout, stderr.len(), &o.stdout, via)?;
    check_stream("stderr", stderr, stdout.len(), &o.stderr, via)?;
    if !o.job_name.starts_with(&format!("{}-", run.name)) || !o.job_name.ends_with(&o.run_id) {
        return Err(format!(
            "job {:?} / run {:?} are not this run's",
            o.job_name, o.run_id
        ));
    }
    Ok(())
}

pub(crate) fn error_matches(e: &Error, expected: &Expect, image: &str) -> bool {
    match (expected, e) {
        (
            Expect::NotFound,
            Error::CommandNotStarted {
                command, not_found, ..
            },
        ) => command == "/bin/missing" && *not_found,
        (Expect::Timeout, Error::Timeout { timeout, phase }) => {
            *timeout == TIMEOUT && *phase == Phase::Running
        }
        (Expect::ImagePull, Error::ImagePull { image: i, .. }) => i == image,
        (Expect::Unschedulable, Error::Unschedulable { .. }) => true,
        (Expect::Rejected, Error::PodRejected { message }) => message.contains(REJECTION),
        (
            Expect::InitFailed(code),
            Error::InitContainerFailed {
                exit_code, message, ..
            },
        ) => exit_code == code && message.contains("install failed on purpose"),
        (
            Expect::InvalidImageName,
            Error::ImagePull {
                image: i, reason, ..
            },
        ) => *i == invalid_image_of(image) && reason == "InvalidImageName",
        (Expect::ContainerConfig, Error::ContainerConfig { container, message }) => {
            container == cmdreporter_core::job::MAIN_CONTAINER && message.contains(MISSING_SECRET)
        }
        _ => false,
    }
}

/// Whether the injected faults imply `e`: the API error the server answered (once the
/// retries of transient ones are spent), a courier that could not deliver when its
/// requests were faulted, a log read that failed.
pub(crate) fn fault_allows(e: &Error, injected: &[InjectedFault], via: Via) -> bool {
    let codes: BTreeSet<u16> = injected
        .iter()
        .filter_map(|f| match f.fault {
            Fault::Status(c) => Some(c),
            Fault::Outage(_) => Some(503),
            Fault::LostResponse => Some(504),
            _ => None,
        })
        .collect();
    let touched = |r: &str| injected.iter().any(|f| f.path.contains(r));
    match e {
        // A connection dropped with no answer, as often as the retries allow.
        Error::Api(k) if matches!(**k, kube::Error::Service(_)) => injected
            .iter()
            .any(|f| matches!(f.fault, Fault::Disconnect { .. })),
        Error::Api(k) => cmdreporter_core::error::api_code(k).is_some_and(|c| codes.contains(&c)),
        Error::CourierFailed { message, .. } => {
            via == Via::ConfigMap && touched("/configmaps") && message.contains("cannot deliver")
        }
        Error::Transport { .. } => via != Via::ConfigMap && touched("/log"),
        // A container killed by signal N as it starts: the install step fails with 128 + N.
        Error::InitContainerFailed { exit_code, .. } => injected
            .iter()
            .any(|f| f.fault == Fault::Kubelet(KubeletFault::Signal(exit_code - 128))),
        Error::JobFailed { reason, .. } => {
            reason == "Evicted"
                && injected
                    .iter()
                    .any(|f| f.fault == Fault::Kubelet(KubeletFault::Evict))
        }
        _ => false,
    }
}

/// About how long a run needs, once dispatched, to end as `expected` says (a bound).
pub(crate) fn needs(expected: &Expect, command: &Command) -> Duration {
    match expected {
        Expect::Outcome { .. } => Duration::from_secs(command.delay + 10),
        Expect::Timeout => TIMEOUT,
        e => detected_within(e),
    }
}
