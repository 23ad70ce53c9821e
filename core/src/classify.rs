//! The pod-state classifier: what a pod's status says about the run.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};

use crate::error::Phase;
use crate::job::{INIT_CONTAINER, MAIN_CONTAINER};

/// What a pod's status means for the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSignal {
    /// Still on its way, in this phase.
    Progress(Phase),
    /// An image cannot be pulled; fatal after the pull grace period (`InvalidImageName` at
    /// once).
    ImagePull {
        /// The image.
        image: String,
        /// `ErrImagePull`, `ImagePullBackOff` or `InvalidImageName`.
        reason: String,
        /// The kubelet's message.
        message: String,
    },
    /// The pod cannot be scheduled; fatal after the scheduling grace period.
    Unschedulable {
        /// The scheduler's message.
        message: String,
    },
    /// `CreateContainerConfigError`: fatal.
    ContainerConfig {
        /// The container.
        container: String,
        /// The kubelet's message.
        message: String,
    },
    /// The init container failed: fatal.
    InitFailed {
        /// Its exit code.
        exit_code: i32,
        /// Its termination message or reason.
        message: String,
    },
    /// The main container (the courier) ended.
    CourierEnded {
        /// Its exit code: 0 means it delivered the report.
        exit_code: i32,
        /// Its termination message, or its reason.
        message: String,
    },
    /// The pod failed for another reason (evicted, deleted, deadline).
    PodFailed {
        /// The pod's reason.
        reason: String,
        /// The pod's message.
        message: String,
    },
}

fn find<'a>(list: Option<&'a Vec<ContainerStatus>>, name: &str) -> Option<&'a ContainerStatus> {
    list.into_iter().flatten().find(|c| c.name == name)
}

fn waiting_signal(c: &ContainerStatus) -> Option<PodSignal> {
    let w = c.state.as_ref()?.waiting.as_ref()?;
    let reason = w.reason.clone().unwrap_or_default();
    let message = w.message.clone().unwrap_or_default();
    match reason.as_str() {
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
            Some(PodSignal::ImagePull {
                image: c.image.clone(),
                reason,
                message,
            })
        }
        "CreateContainerConfigError" | "CreateContainerError" => Some(PodSignal::ContainerConfig {
            container: c.name.clone(),
            message,
        }),
        _ => None,
    }
}

/// A terminated container's termination message, or its reason when it wrote none.
fn message_or_reason(t: &ContainerStateTerminated) -> String {
    t.message
        .clone()
        .or_else(|| t.reason.clone())
        .unwrap_or_default()
}

/// Classifies a pod of the run's Job.
pub fn classify(pod: &Pod) -> PodSignal {
    let Some(status) = pod.status.as_ref() else {
        return PodSignal::Progress(Phase::Scheduling);
    };
    let init = find(status.init_container_statuses.as_ref(), INIT_CONTAINER);
    let main = find(status.container_statuses.as_ref(), MAIN_CONTAINER);
    if let Some(t) = main.and_then(|m| m.state.as_ref()?.terminated.as_ref()) {
        return PodSignal::CourierEnded {
            exit_code: t.exit_code,
            message: message_or_reason(t),
        };
    }
    if let Some(t) = init.and_then(|m| m.state.as_ref()?.terminated.as_ref())
        && t.exit_code != 0
    {
        return PodSignal::InitFailed {
            exit_code: t.exit_code,
            message: message_or_reason(t),
        };
    }
    for c in [init, main].into_iter().flatten() {
        if let Some(s) = waiting_signal(c) {
            return s;
        }
    }
    if status.phase.as_deref() == Some("Failed") {
        return PodSignal::PodFailed {
            reason: status.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: status.message.clone().unwrap_or_default(),
        };
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(c) = unschedulable {
        return PodSignal::Unschedulable {
            message: c.message.clone().unwrap_or_default(),
        };
    }
    let scheduled = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    if !scheduled {
        return PodSignal::Progress(Phase::Scheduling);
    }
    if main.is_some_and(|m| m.state.as_ref().is_some_and(|s| s.running.is_some())) {
        return PodSignal::Progress(Phase::Running);
    }
    PodSignal::Progress(Phase::Starting)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reads_the_kubelet_states() {
        let p = pod(
            json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Pending",
            "containerStatuses": [{"name": "cmd", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}}),
        );
        assert!(
            matches!(classify(&p), PodSignal::ImagePull { reason, .. } if reason == "ImagePullBackOff")
        );
        let p = pod(
            json!({"spec": {"containers": []}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}}),
        );
        assert_eq!(
            classify(&p),
            PodSignal::Unschedulable {
                message: "0/1 nodes are available".into()
            }
        );
        let p = pod(
            json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Failed",
            "initContainerStatuses": [{"name": "install-reporter", "image": "r", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 2, "message": "no space"}}}]}}),
        );
        assert_eq!(
            classify(&p),
            PodSignal::InitFailed {
                exit_code: 2,
                message: "no space".into()
            }
        );
        let p = pod(
            json!({"spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Running",
            "containerStatuses": [{"name": "cmd", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {}}}]}}),
        );
        assert_eq!(classify(&p), PodSignal::Progress(Phase::Running));
    }
}
