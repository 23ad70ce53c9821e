//! Grace periods for stateless polling. A poll cannot remember when it first saw a pod's
//! condition, so it measures each grace period from the pod's own timestamps: when the
//! kubelet started pulling the image (the pod's `startTime`, or the `Initialized`
//! condition for the main container), when the scheduler marked the pod `Unschedulable`,
//! when the courier's container finished. A poll after an operator restart therefore ends
//! a run at the same time as the first runner's poll would have, and as
//! [`run`](crate::Runner::run) does, give or take the watch's latency and a second (the
//! API's timestamps have whole seconds).
//!
//! The timestamps are the cluster's clock and the comparison uses the operator's: a skew
//! between the two shortens or lengthens a grace period by as much. A grace period never
//! starts before the run did (the [`RunKey`](crate::RunKey) keeps its start).

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::classify::PodSignal;
use crate::clock::from_epoch_ms;
use crate::dispatcher::{GracePeriods, signal_error};
use crate::error::{Error, Phase};
use crate::job::{INIT_CONTAINER, MAIN_CONTAINER};

impl GracePeriods {
    /// How long `signal` may last before it ends the run: `None` when it ends nothing
    /// (progress, or a courier that ended well), zero when it ends the run at once.
    pub fn for_signal(&self, signal: &PodSignal) -> Option<Duration> {
        match signal {
            PodSignal::Progress(_) | PodSignal::CourierEnded { exit_code: 0, .. } => None,
            PodSignal::ImagePull { reason, .. } if reason == "InvalidImageName" => {
                Some(Duration::ZERO)
            }
            PodSignal::ImagePull { .. } => Some(self.image_pull),
            PodSignal::Unschedulable { .. } => Some(self.unschedulable),
            PodSignal::CourierEnded { .. } | PodSignal::PodFailed { .. } => {
                Some(self.report_after_exit)
            }
            PodSignal::ContainerConfig { .. } | PodSignal::InitFailed { .. } => {
                Some(Duration::ZERO)
            }
        }
    }
}

/// The end of the whole second a timestamp of the API names (so that a grace period is
/// never cut short by the truncation).
fn end_of(t: &Time) -> Option<SystemTime> {
    let ms = u64::try_from(t.0.as_millisecond()).ok()?;
    Some(from_epoch_ms(ms) + Duration::from_secs(1))
}

fn condition_time(pod: &Pod, kind: &str, status: &str) -> Option<SystemTime> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let c = conditions
        .iter()
        .find(|c| c.type_ == kind && c.status == status)?;
    end_of(c.last_transition_time.as_ref()?)
}

fn start_time(pod: &Pod) -> Option<SystemTime> {
    end_of(pod.status.as_ref()?.start_time.as_ref()?)
}

/// When the main container (or, with `init`, the init container) finished.
fn finished_at(pod: &Pod, init: bool) -> Option<SystemTime> {
    let status = pod.status.as_ref()?;
    let (list, name) = if init {
        (status.init_container_statuses.as_ref(), INIT_CONTAINER)
    } else {
        (status.container_statuses.as_ref(), MAIN_CONTAINER)
    };
    let c = list?.iter().find(|c| c.name == name)?;
    end_of(
        c.state
            .as_ref()?
            .terminated
            .as_ref()?
            .finished_at
            .as_ref()?,
    )
}

fn init_is_waiting_on_pull(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.name == INIT_CONTAINER)
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
        .any(|r| matches!(r, "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull"))
}

/// The latest condition change the pod shows.
fn last_transition(pod: &Pod) -> Option<SystemTime> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .filter_map(|c| end_of(c.last_transition_time.as_ref()?))
        .max()
}

/// When the condition `signal` stands for began, as far as the pod's status says.
pub(crate) fn began(pod: &Pod, signal: &PodSignal) -> Option<SystemTime> {
    match signal {
        PodSignal::ImagePull { .. } if init_is_waiting_on_pull(pod) => start_time(pod),
        PodSignal::ImagePull { .. } => {
            condition_time(pod, "Initialized", "True").or_else(|| start_time(pod))
        }
        PodSignal::Unschedulable { .. } => condition_time(pod, "PodScheduled", "False"),
        PodSignal::CourierEnded { .. } => finished_at(pod, false),
        PodSignal::PodFailed { .. } => finished_at(pod, false)
            .or_else(|| finished_at(pod, true))
            .or_else(|| last_transition(pod)),
        _ => None,
    }
}

/// The phase a pod showing `signal` is in while its grace period runs.
pub(crate) fn phase_of(signal: &PodSignal) -> Phase {
    match signal {
        PodSignal::Progress(phase) => *phase,
        PodSignal::Unschedulable { .. } => Phase::Scheduling,
        PodSignal::ImagePull { .. } | PodSignal::ContainerConfig { .. } => Phase::Starting,
        PodSignal::InitFailed { .. }
        | PodSignal::CourierEnded { .. }
        | PodSignal::PodFailed { .. } => Phase::Reporting,
    }
}

/// The error that ends a polled run showing `signal` at `now`, once its grace period,
/// counted from when the signal began (never before `run_started`), is over.
pub(crate) fn polled_error(
    pod: &Pod,
    signal: PodSignal,
    graces: &GracePeriods,
    run_started: SystemTime,
    now: SystemTime,
) -> Option<Error> {
    let grace = graces.for_signal(&signal)?;
    let since = began(pod, &signal).map_or(run_started, |t| t.max(run_started));
    if now >= since + grace {
        signal_error(signal)
    } else {
        tracing::trace!(
            ?grace,
            "a polled run's condition is within its grace period"
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::epoch_ms;
    use serde_json::json;

    const T0: &str = "2026-01-01T00:00:00Z";
    const T0_MS: u64 = 1_767_225_600_000;

    fn at(secs: u64) -> SystemTime {
        from_epoch_ms(T0_MS + secs * 1000)
    }

    fn pull_failing_main() -> Pod {
        serde_json::from_value(json!({
            "spec": {"nodeName": "n", "containers": []},
            "status": {"phase": "Pending", "startTime": "2025-12-31T23:59:50Z",
                "conditions": [{"type": "Initialized", "status": "True", "lastTransitionTime": T0}],
                "containerStatuses": [{"name": MAIN_CONTAINER, "image": "x", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "m"}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn an_image_pull_failure_counts_from_the_main_containers_start() {
        let pod = pull_failing_main();
        let signal = crate::classify::classify(&pod);
        assert_eq!(epoch_ms(began(&pod, &signal).unwrap()), T0_MS + 1000);
        let graces = GracePeriods::default();
        let started = at(0) - Duration::from_secs(30);
        assert!(polled_error(&pod, signal.clone(), &graces, started, at(10)).is_none());
        let err = polled_error(&pod, signal, &graces, started, at(11)).unwrap();
        assert!(matches!(err, Error::ImagePull { .. }), "{err:?}");
    }

    #[test]
    fn a_grace_period_never_starts_before_the_run() {
        let pod = pull_failing_main();
        let signal = crate::classify::classify(&pod);
        let graces = GracePeriods::default();
        // Pod timestamps from before the run (a skewed cluster clock) do not shorten it.
        assert!(polled_error(&pod, signal.clone(), &graces, at(100), at(105)).is_none());
        assert!(polled_error(&pod, signal, &graces, at(100), at(110)).is_some());
    }

    #[test]
    fn signals_without_grace_end_at_once_and_progress_never() {
        let graces = GracePeriods::default();
        assert_eq!(
            graces.for_signal(&PodSignal::Progress(Phase::Running)),
            None
        );
        let ended = PodSignal::CourierEnded {
            exit_code: 0,
            message: String::new(),
        };
        assert_eq!(graces.for_signal(&ended), None);
        let invalid = PodSignal::ImagePull {
            image: "x".into(),
            reason: "InvalidImageName".into(),
            message: String::new(),
        };
        assert_eq!(graces.for_signal(&invalid), Some(Duration::ZERO));
        let unschedulable = PodSignal::Unschedulable {
            message: String::new(),
        };
        assert_eq!(
            graces.for_signal(&unschedulable),
            Some(graces.unschedulable)
        );
    }
}
