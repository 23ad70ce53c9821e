//! A pod's `status` read from its text as k8s-openapi's `PodStatus` reads it: in every type,
//! a member given twice keeps its last value, `null` is `None` (or the default of a
//! required member), an unknown member is skipped. The members it does not read itself
//! (resource claims and quantities, rare in a pod's status) leave the whole text to
//! serde_json.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus, VolumeMountStatus,
};

use super::meta::{Times, opt_string};
use super::scan::Scan;

/// Members of `PodStatus` (in k8s-openapi 0.29, Kubernetes 1.33 to 1.37) this reader leaves
/// to serde_json.
pub(super) const STATUS_LEFT: &[&str] = &[
    "allocatedResources",
    "extendedResourceClaimStatus",
    "nodeAllocatableResourceClaimStatuses",
    "resourceClaimStatuses",
    "resources",
    "volumeHealth",
];

/// The members of `PodStatus` this reader reads.
pub(super) const STATUS_READ: &[&str] = &[
    "conditions",
    "containerStatuses",
    "ephemeralContainerStatuses",
    "hostIP",
    "hostIPs",
    "initContainerStatuses",
    "message",
    "nominatedNodeName",
    "observedGeneration",
    "phase",
    "podIP",
    "podIPs",
    "qosClass",
    "reason",
    "resize",
    "startTime",
];

/// Members of `ContainerStatus` left to serde_json.
pub(super) const CONTAINER_LEFT: &[&str] = &[
    "allocatedResources",
    "allocatedResourcesStatus",
    "resources",
    "user",
];

/// The members of `ContainerStatus` this reader reads.
pub(super) const CONTAINER_READ: &[&str] = &[
    "containerID",
    "image",
    "imageID",
    "lastState",
    "name",
    "ready",
    "restartCount",
    "started",
    "state",
    "stopSignal",
    "volumeMounts",
];

/// Members of `VolumeMountStatus` left to serde_json.
pub(super) const MOUNT_LEFT: &[&str] = &["volumeStatus"];

/// The members of `VolumeMountStatus` this reader reads.
pub(super) const MOUNT_READ: &[&str] = &["mountPath", "name", "readOnly", "recursiveReadOnly"];

/// The members of `PodCondition`.
pub(super) const CONDITION: &[&str] = &[
    "lastProbeTime",
    "lastTransitionTime",
    "message",
    "observedGeneration",
    "reason",
    "status",
    "type",
];

/// The members of `ContainerState`.
pub(super) const STATE: &[&str] = &["running", "terminated", "waiting"];

/// The members of `ContainerStateRunning`.
pub(super) const RUNNING: &[&str] = &["startedAt"];

/// The members of `ContainerStateTerminated`.
pub(super) const TERMINATED: &[&str] = &[
    "containerID",
    "exitCode",
    "finishedAt",
    "message",
    "reason",
    "signal",
    "startedAt",
];

/// The members of `ContainerStateWaiting`.
pub(super) const WAITING: &[&str] = &["message", "reason"];

/// The members of `HostIP` and `PodIP`.
pub(super) const IP: &[&str] = &["ip"];

/// What a reader does with a member it does not read: `None` (serde_json reads the whole
/// text) for one of `left`, else skips it.
fn other(s: &mut Scan<'_>, key: &str, left: &[&str]) -> Option<()> {
    if left.contains(&key) {
        return None;
    }
    s.skip()
}

/// A required string: `null` is the empty string.
fn string(s: &mut Scan<'_>) -> Option<String> {
    Some(opt_string(s)?.unwrap_or_default())
}

/// `HostIP` and `PodIP`: one member, `ip`.
fn ip(s: &mut Scan<'_>) -> Option<String> {
    let mut ip = String::new();
    s.object(|s, key| match key {
        "ip" => {
            ip = string(s)?;
            Some(())
        }
        _ => s.skip(),
    })?;
    Some(ip)
}

fn condition(s: &mut Scan<'_>, t: &mut Times) -> Option<PodCondition> {
    let mut c = PodCondition::default();
    s.object(|s, key| {
        match key {
            "lastProbeTime" => c.last_probe_time = t.opt_time(s)?,
            "lastTransitionTime" => c.last_transition_time = t.opt_time(s)?,
            "message" => c.message = opt_string(s)?,
            "observedGeneration" => c.observed_generation = s.opt(Scan::int)?,
            "reason" => c.reason = opt_string(s)?,
            "status" => c.status = string(s)?,
            "type" => c.type_ = string(s)?,
            _ => s.skip()?,
        }
        Some(())
    })?;
    Some(c)
}

fn terminated(s: &mut Scan<'_>, t: &mut Times) -> Option<ContainerStateTerminated> {
    let mut c = ContainerStateTerminated::default();
    s.object(|s, key| {
        match key {
            "containerID" => c.container_id = opt_string(s)?,
            "exitCode" => c.exit_code = s.opt(Scan::i32)?.unwrap_or_default(),
            "finishedAt" => c.finished_at = t.opt_time(s)?,
            "message" => c.message = opt_string(s)?,
            "reason" => c.reason = opt_string(s)?,
            "signal" => c.signal = s.opt(Scan::i32)?,
            "startedAt" => c.started_at = t.opt_time(s)?,
            _ => s.skip()?,
        }
        Some(())
    })?;
    Some(c)
}

fn state(s: &mut Scan<'_>, t: &mut Times) -> Option<ContainerState> {
    let mut c = ContainerState::default();
    s.object(|s, key| {
        match key {
            "running" => {
                c.running = s.opt(|s| {
                    let mut r = ContainerStateRunning::default();
                    s.object(|s, key| match key {
                        "startedAt" => {
                            r.started_at = t.opt_time(s)?;
                            Some(())
                        }
                        _ => s.skip(),
                    })?;
                    Some(r)
                })?;
            }
            "terminated" => c.terminated = s.opt(|s| terminated(s, t))?,
            "waiting" => {
                c.waiting = s.opt(|s| {
                    let mut w = ContainerStateWaiting::default();
                    s.object(|s, key| {
                        match key {
                            "message" => w.message = opt_string(s)?,
                            "reason" => w.reason = opt_string(s)?,
                            _ => s.skip()?,
                        }
                        Some(())
                    })?;
                    Some(w)
                })?;
            }
            _ => s.skip()?,
        }
        Some(())
    })?;
    Some(c)
}

fn mount(s: &mut Scan<'_>) -> Option<VolumeMountStatus> {
    let mut m = VolumeMountStatus::default();
    s.object(|s, key| {
        match key {
            "mountPath" => m.mount_path = string(s)?,
            "name" => m.name = string(s)?,
            "readOnly" => m.read_only = s.opt(Scan::bool)?,
            "recursiveReadOnly" => m.recursive_read_only = opt_string(s)?,
            _ => other(s, key, MOUNT_LEFT)?,
        }
        Some(())
    })?;
    Some(m)
}

fn container(s: &mut Scan<'_>, t: &mut Times) -> Option<ContainerStatus> {
    let mut c = ContainerStatus::default();
    s.object(|s, key| {
        match key {
            "containerID" => c.container_id = opt_string(s)?,
            "image" => c.image = string(s)?,
            "imageID" => c.image_id = string(s)?,
            "lastState" => c.last_state = s.opt(|s| state(s, t))?,
            "name" => c.name = string(s)?,
            "ready" => c.ready = s.opt(Scan::bool)?.unwrap_or_default(),
            "restartCount" => c.restart_count = s.opt(Scan::i32)?.unwrap_or_default(),
            "started" => c.started = s.opt(Scan::bool)?,
            "state" => c.state = s.opt(|s| state(s, t))?,
            "stopSignal" => c.stop_signal = opt_string(s)?,
            "volumeMounts" => c.volume_mounts = s.opt(|s| s.vec(mount))?,
            _ => other(s, key, CONTAINER_LEFT)?,
        }
        Some(())
    })?;
    Some(c)
}

fn containers(s: &mut Scan<'_>, t: &mut Times) -> Option<Option<Vec<ContainerStatus>>> {
    s.opt(|s| s.vec(|s| container(s, t)))
}

/// `status` as `Option<PodStatus>` reads it.
pub(super) fn status(s: &mut Scan<'_>, t: &mut Times) -> Option<Option<PodStatus>> {
    s.opt(|s| {
        let mut p = PodStatus::default();
        s.object(|s, key| {
            match key {
                "conditions" => p.conditions = s.opt(|s| s.vec(|s| condition(s, t)))?,
                "containerStatuses" => p.container_statuses = containers(s, t)?,
                "ephemeralContainerStatuses" => p.ephemeral_container_statuses = containers(s, t)?,
                "hostIP" => p.host_ip = opt_string(s)?,
                "hostIPs" => p.host_ips = s.opt(|s| s.vec(|s| Some(HostIP { ip: ip(s)? })))?,
                "initContainerStatuses" => p.init_container_statuses = containers(s, t)?,
                "message" => p.message = opt_string(s)?,
                "nominatedNodeName" => p.nominated_node_name = opt_string(s)?,
                "observedGeneration" => p.observed_generation = s.opt(Scan::int)?,
                "phase" => p.phase = opt_string(s)?,
                "podIP" => p.pod_ip = opt_string(s)?,
                "podIPs" => p.pod_ips = s.opt(|s| s.vec(|s| Some(PodIP { ip: ip(s)? })))?,
                "qosClass" => p.qos_class = opt_string(s)?,
                "reason" => p.reason = opt_string(s)?,
                "resize" => p.resize = opt_string(s)?,
                "startTime" => p.start_time = t.opt_time(s)?,
                _ => other(s, key, STATUS_LEFT)?,
            }
            Some(())
        })?;
        Some(p)
    })
}
