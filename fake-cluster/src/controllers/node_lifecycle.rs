//! What happens to a node that stops answering, after the node lifecycle controller, the
//! taint-eviction controller and the pod garbage collector of kube-controller-manager
//! (`pkg/controller/nodelifecycle`, `pkg/controller/tainteviction`, `pkg/controller/podgc`):
//!
//! - once its kubelet has posted nothing for the node monitor grace period, the node's
//!   conditions turn `Unknown` (reason `NodeStatusUnknown`, "Kubelet stopped posting node
//!   status.") and it gets the `node.kubernetes.io/unreachable` taints, NoSchedule and
//!   NoExecute (with `timeAdded`);
//! - its pods are marked not ready (`Ready=False`);
//! - each pod is evicted when its toleration of the NoExecute taint runs out (at once
//!   without one; never with one that has no `tolerationSeconds`): a `TaintManagerEviction`
//!   Event, the condition `DisruptionTarget` (reason `DeletionByTaintManager`), then a
//!   graceful delete, which no kubelet finishes;
//! - when the Node object is deleted, the pods bound to it are marked Failed with
//!   `DisruptionTarget` (reason `DeletionByPodGC`) and force-deleted.

use std::time::Duration;

use crate::json::{Value, json};

use super::scheduler::tolerations_of;
use super::{Controllers, Work};
use crate::default_tolerations::UNREACHABLE_TAINT;
use crate::resources::well_known;
use crate::selector::at;
use crate::store::{Change, ChangeType, DeleteOptions, Store, meta_str};

/// How long a node's kubelet may post nothing before the node is marked unreachable
/// (kube-controller-manager's `--node-monitor-grace-period`, 50 s since Kubernetes 1.32).
pub(crate) const NODE_MONITOR_GRACE_PERIOD: Duration = Duration::from_secs(50);

fn unreachable_no_execute(node: &Value) -> Option<&Value> {
    at(node, "/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|t| t["key"] == UNREACHABLE_TAINT && t["effect"] == "NoExecute")
}

fn terminal(p: &Value) -> bool {
    matches!(
        at(p, "/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

fn set_pod_condition(p: &mut Value, kind: &str, status: &str, reason: Option<&str>, now: &str) {
    if !p["status"]["conditions"].is_array() {
        p["status"]["conditions"] = json!([]);
    }
    let mut c = json!({"type": kind, "status": status, "lastProbeTime": null,
        "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(list) = p["status"]["conditions"].as_array_mut() {
        match list.iter_mut().find(|x| x["type"] == kind) {
            Some(existing) if existing["status"] == status => {}
            Some(existing) => *existing = c,
            None => list.push(c),
        }
    }
}

/// Marks `node` unreachable, as the node lifecycle controller does when its kubelet has
/// posted nothing for [`NODE_MONITOR_GRACE_PERIOD`] (idempotent).
pub(crate) fn mark_unreachable(store: &Store, node: &str) {
    let now = store.clock().now_rfc3339_seconds();
    let _ = store.modify(well_known::nodes(), "", node, |n| {
        if !n["status"].is_object() {
            n["status"] = json!({});
        }
        if !n["status"]["conditions"].is_array() {
            n["status"]["conditions"] = json!([]);
        }
        if let Some(list) = n["status"]["conditions"].as_array_mut() {
            if !list.iter().any(|c| c["type"] == "Ready") {
                list.push(json!({"type": "Ready"}));
            }
            for c in list.iter_mut().filter(|c| c["status"] != "Unknown") {
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastTransitionTime"] = json!(now);
            }
        }
        if !n["spec"].is_object() {
            n["spec"] = json!({});
        }
        if !n["spec"]["taints"].is_array() {
            n["spec"]["taints"] = json!([]);
        }
        if let Some(taints) = n["spec"]["taints"].as_array_mut() {
            for effect in ["NoSchedule", "NoExecute"] {
                if !taints
                    .iter()
                    .any(|t| t["key"] == UNREACHABLE_TAINT && t["effect"] == effect)
                {
                    taints.push(
                        json!({"key": UNREACHABLE_TAINT, "effect": effect, "timeAdded": now}),
                    );
                }
            }
        }
        Ok(())
    });
}

/// How long `pod` may stay on a node with `taint` (NoExecute): `None` for ever.
fn eviction_delay(pod: &Value, taint: &Value) -> Option<Duration> {
    let mut least: Option<u64> = None;
    for t in tolerations_of(pod, taint) {
        match t.get("tolerationSeconds").and_then(Value::as_i64) {
            None => return None,
            Some(s) => least = Some(least.map_or(s.max(0) as u64, |l| l.min(s.max(0) as u64))),
        }
    }
    Some(Duration::from_secs(least.unwrap_or(0)))
}

impl Controllers {
    /// A node changed: a new unreachable NoExecute taint stops the node's pods if its
    /// kubelet is lost, marks them not ready and arms their evictions; a deleted node's
    /// pods are collected.
    pub(super) fn node_changed(&mut self, c: &Change) {
        let node = c.name.clone();
        let on_node = |store: &Store| -> Vec<Value> {
            store
                .list(well_known::pods(), None)
                .0
                .iter()
                .filter(|p| at(p, "/spec/nodeName").and_then(Value::as_str) == Some(&node))
                .map(|p| (**p).clone())
                .collect()
        };
        if c.kind == ChangeType::Deleted {
            for p in on_node(&self.api.store) {
                self.collect_orphan(&p);
            }
            return;
        }
        let Some(taint) = unreachable_no_execute(&c.object) else {
            return;
        };
        if c.previous
            .as_ref()
            .is_some_and(|p| unreachable_no_execute(p).is_some())
        {
            return;
        }
        let lost = self.kubelet.node_lost(&node);
        let now = self.api.store.clock().now_rfc3339_seconds();
        for p in on_node(&self.api.store).iter().filter(|p| !terminal(p)) {
            let ns = meta_str(p, "namespace").unwrap_or_default().to_owned();
            let name = meta_str(p, "name").unwrap_or_default().to_owned();
            let uid = meta_str(p, "uid").unwrap_or_default().to_owned();
            if lost && let Some(tx) = self.pods.get(&uid) {
                // Its containers went with the node.
                let _ = tx.send(true);
            }
            let _ = self
                .api
                .store
                .modify(well_known::pods(), &ns, &name, |pod| {
                    set_pod_condition(pod, "Ready", "False", None, &now);
                    Ok(())
                });
            match eviction_delay(p, taint) {
                None => {}
                Some(d) if d.is_zero() => self.taint_evict(&ns, &name, &uid),
                Some(d) => self.requeue_after(d, Work::TaintEvict(ns, name, uid)),
            }
        }
    }

    /// Evicts a pod from a node with the unreachable NoExecute taint, if it is still there.
    pub(super) fn taint_evict(&mut self, ns: &str, name: &str, uid: &str) {
        let store = &self.api.store;
        let Some(pod) = store.lookup(well_known::pods(), ns, name) else {
            return;
        };
        if meta_str(&pod, "uid") != Some(uid)
            || meta_str(&pod, "deletionTimestamp").is_some()
            || terminal(&pod)
        {
            return;
        }
        let node = at(&pod, "/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let tainted = store
            .lookup(well_known::nodes(), "", node)
            .is_some_and(|n| unreachable_no_execute(&n).is_some());
        if !tainted {
            return;
        }
        self.event(
            &pod,
            "taint-eviction-controller",
            "Normal",
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
        );
        let now = store.clock().now_rfc3339_seconds();
        let _ = store.modify(well_known::pods(), ns, name, |p| {
            set_pod_condition(p, "DisruptionTarget", "True", None, &now);
            if let Some(c) = p["status"]["conditions"]
                .as_array_mut()
                .and_then(|l| l.iter_mut().find(|c| c["type"] == "DisruptionTarget"))
            {
                c["reason"] = json!("DeletionByTaintManager");
                c["message"] = json!("Taint manager: deleting due to NoExecute taint");
            }
            Ok(())
        });
        let _ = store.delete(well_known::pods(), ns, name, &DeleteOptions::default());
    }

    /// The pod garbage collector's part for a pod bound to a deleted node: Failed with
    /// `DisruptionTarget`, then force-deleted.
    fn collect_orphan(&self, pod: &Value) {
        let ns = meta_str(pod, "namespace").unwrap_or_default();
        let name = meta_str(pod, "name").unwrap_or_default();
        let now = self.api.store.clock().now_rfc3339_seconds();
        if !terminal(pod) {
            let _ = self.api.store.modify(well_known::pods(), ns, name, |p| {
                p["status"]["phase"] = json!("Failed");
                set_pod_condition(p, "DisruptionTarget", "True", None, &now);
                if let Some(c) = p["status"]["conditions"]
                    .as_array_mut()
                    .and_then(|l| l.iter_mut().find(|c| c["type"] == "DisruptionTarget"))
                {
                    c["reason"] = json!("DeletionByPodGC");
                    c["message"] = json!("PodGC: node no longer exists");
                }
                Ok(())
            });
        }
        let force = DeleteOptions {
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        };
        let _ = self.api.store.delete(well_known::pods(), ns, name, &force);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_toleration_decides_and_none_means_for_ever() {
        let taint = json!({"key": UNREACHABLE_TAINT, "effect": "NoExecute"});
        let t = |tolerations: Value| {
            eviction_delay(&json!({"spec": {"tolerations": tolerations}}), &taint)
        };
        assert_eq!(t(json!([])), Some(Duration::ZERO));
        assert_eq!(
            t(
                json!([{"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                     {"operator": "Exists", "tolerationSeconds": 60}])
            ),
            Some(Duration::from_secs(60))
        );
        assert_eq!(t(json!([{"operator": "Exists"}])), None);
        assert_eq!(
            t(json!([{"key": "other", "operator": "Exists", "tolerationSeconds": 5}])),
            Some(Duration::ZERO)
        );
    }
}
