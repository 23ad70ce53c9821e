//! The pod status the kubelet writes: each container's status (waiting, running,
//! terminated) and, in the same write, the pod's phase and conditions that follow from it.

use crate::json::{Value, json};

use super::PodRun;
use crate::resources::well_known;
use crate::store::meta_str;

pub(super) fn waiting(name: &str, image: &str, reason: &str, message: Option<&str>) -> Value {
    let mut w = json!({"reason": reason});
    if let Some(m) = message {
        w["message"] = json!(m);
    }
    json!({"name": name, "image": image, "imageID": "", "ready": false, "restartCount": 0,
           "started": false, "state": {"waiting": w}})
}

impl PodRun {
    pub(super) fn update(&self, f: impl FnOnce(&mut Value)) -> bool {
        if self.kubelet.node_lost(&self.node) {
            return false;
        }
        self.kubelet
            .api
            .store
            .modify(well_known::pods(), &self.ns, &self.name, |pod| {
                if meta_str(pod, "uid") != Some(self.uid.as_str()) {
                    return Err(crate::status::ApiError::not_found(well_known::pods(), ""));
                }
                f(&mut pod["status"]);
                Ok(())
            })
            .is_ok()
    }

    pub(super) fn set_container(&self, list: &str, name: &str, status: Value) {
        self.set_container_then(list, name, status, |_| {});
    }

    /// Sets one container's status and, in the same write, what follows from it (`then`):
    /// a real kubelet computes the pod's phase and conditions from its container statuses
    /// in the same sync and writes them together.
    pub(super) fn set_container_then(
        &self,
        list: &str,
        name: &str,
        status: Value,
        then: impl FnOnce(&mut Value),
    ) {
        self.update(|s| {
            if let Some(arr) = s.get_mut(list).and_then(Value::as_array_mut) {
                for c in arr.iter_mut() {
                    if c.get("name").and_then(Value::as_str) == Some(name) {
                        *c = status;
                        break;
                    }
                }
            }
            then(s);
        });
    }

    /// After a container terminated: the pod's phase and conditions once every container of
    /// `list` has terminated (init containers: `Initialized`, or the pod failed at the first
    /// failed one; containers: `Succeeded` or `Failed`).
    pub(super) fn settle(s: &mut Value, list: &str, t: &str) {
        let mut failed = false;
        let mut all_ended = true;
        for c in s[list].as_array().into_iter().flatten() {
            let code = c
                .get("state")
                .and_then(|s| s.get("terminated"))
                .and_then(|t| t.get("exitCode"))
                .and_then(Value::as_i64);
            failed |= code.is_some_and(|c| c != 0);
            all_ended &= code.is_some();
        }
        if list == "initContainerStatuses" {
            if failed {
                s["phase"] = json!("Failed");
                Self::set_condition(s, "Initialized", false, Some("PodFailed"), t);
                Self::set_condition(s, "PodReadyToStartContainers", false, None, t);
                Self::set_terminal_readiness(s, "PodFailed", t);
            } else if all_ended {
                Self::set_condition(s, "Initialized", true, None, t);
            }
        } else if all_ended {
            Self::finish_phase(s, !failed, t);
        }
    }

    /// The phase and conditions of a pod whose containers have all ended.
    pub(super) fn finish_phase(s: &mut Value, ok: bool, t: &str) {
        s["phase"] = json!(if ok { "Succeeded" } else { "Failed" });
        let reason = if ok { "PodCompleted" } else { "PodFailed" };
        Self::set_terminal_readiness(s, reason, t);
        if ok {
            // The real kubelet's Initialized condition of a Succeeded pod (with or without
            // init containers) is True with reason PodCompleted.
            Self::set_terminal_condition(s, "Initialized", true, reason, t);
        }
        Self::set_condition(s, "PodReadyToStartContainers", false, None, t);
    }

    /// Ready and ContainersReady of a pod in a terminal phase: False, with the phase's
    /// reason (PodCompleted or PodFailed).
    pub(super) fn set_terminal_readiness(s: &mut Value, reason: &str, t: &str) {
        for kind in ["Ready", "ContainersReady"] {
            Self::set_terminal_condition(s, kind, false, reason, t);
        }
    }

    /// A condition of a pod in a terminal phase. A real kubelet generates the conditions
    /// afresh in each sync (for a terminal phase with its reason) and keeps only the
    /// lastTransitionTime of an unchanged status; so a condition whose status does not
    /// change still takes the terminal reason (a pod that was never ready ends with
    /// PodCompleted or PodFailed, not with the ContainersNotReady it started with).
    fn set_terminal_condition(s: &mut Value, kind: &str, ok: bool, reason: &str, t: &str) {
        // A condition written afresh already has `reason`: only one kept needs it.
        if let Some(kept) = Self::put_condition(s, kind, ok, Some(reason), t)
            && kept.get("reason").and_then(Value::as_str) != Some(reason)
        {
            kept["reason"] = json!(reason);
        }
    }

    pub(super) fn set_condition(
        s: &mut Value,
        kind: &str,
        ok: bool,
        reason: Option<&str>,
        now: &str,
    ) {
        Self::put_condition(s, kind, ok, reason, now);
    }

    /// [`PodRun::set_condition`]; returns the condition of this type already there when it
    /// is kept (same status), `None` when one was written.
    fn put_condition<'a>(
        s: &'a mut Value,
        kind: &str,
        ok: bool,
        reason: Option<&str>,
        now: &str,
    ) -> Option<&'a mut Value> {
        if !s.get("conditions").is_some_and(Value::is_array) {
            s["conditions"] = json!([]);
        }
        let status = if ok { "True" } else { "False" };
        // The condition is built only when it is written (a condition already in this
        // status keeps its lastTransitionTime and reason).
        let condition = || {
            let mut c = json!({"type": kind, "status": status,
                               "lastProbeTime": null, "lastTransitionTime": now});
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            c
        };
        let arr = s.get_mut("conditions").and_then(Value::as_array_mut)?;
        match arr.iter_mut().position(|x| x["type"] == kind) {
            Some(i) if arr[i]["status"] == status => arr.get_mut(i),
            Some(i) => {
                arr[i] = condition();
                None
            }
            None => {
                arr.push(condition());
                None
            }
        }
    }

    /// Writes a container's running status and, for a main container, the pod's phase
    /// `Running` and, once all its containers run, `Ready`/`ContainersReady`.
    pub(super) fn set_running(&self, list: &str, name: &str, running: Value, started: &str) {
        self.set_container_then(list, name, running, |s| {
            if list == "containerStatuses" {
                s["phase"] = json!("Running");
                let all_running = s["containerStatuses"].as_array().is_some_and(|a| {
                    a.iter()
                        .all(|c| c.get("state").and_then(|s| s.get("running")).is_some())
                });
                if all_running {
                    Self::set_condition(s, "Ready", true, None, started);
                    Self::set_condition(s, "ContainersReady", true, None, started);
                }
            }
        });
    }
}
