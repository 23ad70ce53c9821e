//! The scheduler: binds a pod to the first node (by name) that is schedulable, matches the
//! pod's `nodeSelector` and required node affinity, and whose `NoSchedule`/`NoExecute`
//! taints the pod tolerates. Otherwise the pod gets `PodScheduled=False`, reason
//! `Unschedulable`, with the message the real scheduler writes
//! (`0/N nodes are available: <counted reasons>. preemption: ...`), and a `FailedScheduling`
//! Event; it is tried again whenever a node is added or changes. Only pods whose
//! `spec.schedulerName` is `default-scheduler` (the API server's default) are its own; the
//! others wait, unbound and without a PodScheduled condition, for a scheduler of that name.

use std::collections::BTreeMap;

use crate::json::{Value, json};

use super::{Controllers, field};
use crate::resources::well_known;
use crate::selector::at;
use crate::store::meta_str;

/// The name of the one profile this scheduler runs, as the real default scheduler's.
const DEFAULT_SCHEDULER: &str = "default-scheduler";

const AFFINITY_MISMATCH: &str = "node(s) didn't match Pod's node affinity/selector";

fn labels(node: &Value) -> Option<&crate::json::Map> {
    at(node, "/metadata/labels").and_then(Value::as_object)
}

fn label<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    labels(node)
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn expression_matches(node: &Value, expr: &Value, field: bool) -> bool {
    let key = expr["key"].as_str().unwrap_or_default();
    let value = if field {
        (key == "metadata.name")
            .then(|| meta_str(node, "name"))
            .flatten()
    } else {
        label(node, key)
    };
    let values: Vec<&str> = expr["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let num = |s: Option<&str>| s.and_then(|s| s.parse::<i64>().ok());
    match expr["operator"].as_str().unwrap_or_default() {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => matches!((num(value), num(values.first().copied())), (Some(a), Some(b)) if a > b),
        "Lt" => matches!((num(value), num(values.first().copied())), (Some(a), Some(b)) if a < b),
        _ => false,
    }
}

fn affinity_matches(pod: &Value, node: &Value) -> bool {
    let selector_ok = at(pod, "/spec/nodeSelector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(node, k) == v.as_str());
    let terms = at(pod, "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    let affinity_ok = match terms {
        None => true,
        Some(terms) => terms.iter().any(|t| {
            let exprs = t["matchExpressions"].as_array();
            let fields = t["matchFields"].as_array();
            (exprs.is_some() || fields.is_some())
                && exprs
                    .into_iter()
                    .flatten()
                    .all(|e| expression_matches(node, e, false))
                && fields
                    .into_iter()
                    .flatten()
                    .all(|e| expression_matches(node, e, true))
        }),
    };
    selector_ok && affinity_ok
}

fn tolerates(pod: &Value, taint: &Value) -> bool {
    tolerations_of(pod, taint).next().is_some()
}

/// The pod's tolerations that tolerate `taint`.
pub(super) fn tolerations_of<'a>(
    pod: &'a Value,
    taint: &'a Value,
) -> impl Iterator<Item = &'a Value> + 'a {
    at(pod, "/spec/tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |t| {
            let effect_ok = t["effect"]
                .as_str()
                .is_none_or(|e| e.is_empty() || taint["effect"] == e);
            let key = t["key"].as_str().unwrap_or_default();
            match t["operator"].as_str().unwrap_or("Equal") {
                "Exists" => effect_ok && (key.is_empty() || taint["key"] == key),
                _ => {
                    effect_ok
                        && taint["key"] == key
                        && taint["value"].as_str().unwrap_or_default()
                            == t["value"].as_str().unwrap_or_default()
                }
            }
        })
}

/// Why `node` cannot take `pod`, as the scheduler words it; `None` if it can.
fn unfit(pod: &Value, node: &Value) -> Option<String> {
    if at(node, "/spec/unschedulable") == Some(&json!(true)) {
        return Some("node(s) were unschedulable".into());
    }
    if !affinity_matches(pod, node) {
        return Some(AFFINITY_MISMATCH.into());
    }
    at(node, "/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")))
        .find(|t| !tolerates(pod, t))
        .map(|t| {
            format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t["key"].as_str().unwrap_or_default(),
                t["value"].as_str().unwrap_or_default()
            )
        })
}

/// Whether this scheduler is the one the pod asked for, as `responsibleForPod` in
/// `pkg/scheduler/eventhandlers.go` (`profiles.HandlesSchedulerName(pod.Spec.SchedulerName)`)
/// decides before a pod enters the scheduling queue. A pod stored without the field counts as
/// asking for the default, which the API server would have filled in.
fn responsible_for(pod: &Value) -> bool {
    at(pod, "/spec/schedulerName")
        .and_then(Value::as_str)
        .is_none_or(|name| name == DEFAULT_SCHEDULER)
}

/// The scheduler's decision: a node name, or the Unschedulable message.
pub(crate) fn place(pod: &Value, nodes: &[std::sync::Arc<Value>]) -> Result<String, String> {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for node in nodes {
        match unfit(pod, node) {
            None => return Ok(meta_str(node, "name").unwrap_or_default().to_owned()),
            Some(r) => *reasons.entry(r).or_default() += 1,
        }
    }
    let n = nodes.len();
    if n == 0 {
        return Err("no nodes available to schedule pods".into());
    }
    let mut parts: Vec<String> = reasons.iter().map(|(r, c)| format!("{c} {r}")).collect();
    parts.sort();
    Err(format!(
        "0/{n} nodes are available: {}. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling.",
        parts.join(", ")
    ))
}

impl Controllers {
    pub(super) fn schedule(&mut self, ns: &str, name: &str) {
        let Some(pod) = self.api.store.lookup(well_known::pods(), ns, name) else {
            return;
        };
        if field(&pod, &["spec", "nodeName"]).is_some()
            || meta_str(&pod, "deletionTimestamp").is_some()
            || !responsible_for(&pod)
        {
            return;
        }
        let (nodes, _) = self.api.store.list(well_known::nodes(), None);
        let now = self.api.store.clock().now_rfc3339_seconds();
        match place(&pod, &nodes) {
            Ok(node) => {
                self.unschedulable.remove(&(ns.to_owned(), name.to_owned()));
                // As the scheduler's binding: no new generation for the nodeName.
                let _ = self.api.store.modify_as_binding(well_known::pods(), ns, name, |p| {
                    p["spec"]["nodeName"] = json!(node);
                    if !p["status"].is_object() {
                        p["status"] = json!({});
                    }
                    p["status"]["phase"] = json!("Pending");
                    p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True",
                        "lastProbeTime": null, "lastTransitionTime": now}]);
                    Ok(())
                });
            }
            Err(message) => {
                let first = self.unschedulable.insert((ns.to_owned(), name.to_owned()));
                let updated = self.api.store.modify(well_known::pods(), ns, name, |p| {
                    if !p["status"].is_object() {
                        p["status"] = json!({});
                    }
                    p["status"]["phase"] = json!("Pending");
                    let unchanged = at(p, "/status/conditions/0/message")
                        .is_some_and(|m| m == message.as_str());
                    if !unchanged {
                        p["status"]["conditions"] = json!([{"type": "PodScheduled",
                            "status": "False", "reason": "Unschedulable", "message": message,
                            "lastProbeTime": null, "lastTransitionTime": now}]);
                    }
                    Ok(())
                });
                if first && let Ok(p) = updated {
                    self.event(
                        &p,
                        DEFAULT_SCHEDULER,
                        "Warning",
                        "FailedScheduling",
                        &message,
                    );
                }
            }
        }
    }

    pub(super) fn retry_unschedulable(&mut self) {
        let pending: Vec<_> = self.unschedulable.iter().cloned().collect();
        for (ns, name) in pending {
            self.schedule(&ns, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn messages_count_reasons_per_node() {
        let nodes = vec![
            Arc::new(json!({"metadata": {"name": "a", "labels": {"disk": "hdd"}}})),
            Arc::new(json!({"metadata": {"name": "b", "labels": {"disk": "ssd"}},
                "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}})),
        ];
        let pod = json!({"spec": {"nodeSelector": {"disk": "ssd"}}});
        assert_eq!(
            place(&pod, &nodes),
            Err("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {gpu: yes}. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.".into())
        );
        let tolerant = json!({"spec": {"nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}]}});
        assert_eq!(place(&tolerant, &nodes), Ok("b".into()));
    }
}
