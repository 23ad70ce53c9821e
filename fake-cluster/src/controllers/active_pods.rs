//! Which active pods a controller deletes first when it has too many, after
//! `controller.ActivePods` (`pkg/controller/controller_utils.go`), the order the Job
//! controller's `activePodsForRemoval` sorts by: pods in earlier stages go first.
//!
//! 1. unassigned before assigned;
//! 2. Pending before Unknown before Running;
//! 3. not ready before ready;
//! 4. among ready pods, the one ready for the shortest time (or no time) first;
//! 5. more container restarts first;
//! 6. no creation time, then newer, then older.
//!
//! Ties keep their order (the fake lists a Job's pods by name).

use std::cmp::Ordering;
use std::sync::Arc;

use crate::json::Value;

use crate::selector::at;
use crate::store::meta_str;

fn unassigned(p: &Value) -> bool {
    at(p, "/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
}

fn phase_rank(p: &Value) -> u8 {
    match at(p, "/status/phase").and_then(Value::as_str) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

/// The Ready condition's transition time when the pod is ready.
fn ready_since(p: &Value) -> Option<&str> {
    at(p, "/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .map(|c| c["lastTransitionTime"].as_str().unwrap_or_default())
}

fn max_restarts(p: &Value) -> u64 {
    at(p, "/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["restartCount"].as_u64())
        .max()
        .unwrap_or(0)
}

/// `afterOrZero(a, b)` of the real code, on RFC 3339 times in the same format: `a` is
/// empty or later than `b`. Returns the order with `a` first when that holds.
fn later_or_empty_first(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => b.cmp(a),
    }
}

/// The deletion order of two active pods: `Less` when `a` goes first.
pub(super) fn deletion_order(a: &Value, b: &Value) -> Ordering {
    unassigned(b)
        .cmp(&unassigned(a))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| ready_since(a).is_some().cmp(&ready_since(b).is_some()))
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(x), Some(y)) => later_or_empty_first(x, y),
            _ => Ordering::Equal,
        })
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| {
            later_or_empty_first(
                meta_str(a, "creationTimestamp").unwrap_or_default(),
                meta_str(b, "creationTimestamp").unwrap_or_default(),
            )
        })
}

/// The `n` pods of `active` to delete first.
pub(super) fn for_removal<'a>(active: &[&'a Arc<Value>], n: usize) -> Vec<&'a Arc<Value>> {
    let mut sorted = active.to_vec();
    sorted.sort_by(|a, b| deletion_order(a, b));
    sorted.truncate(n);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    fn pod(node: Option<&str>, phase: &str, ready: Option<&str>, created: &str) -> Value {
        let mut p = json!({"metadata": {"creationTimestamp": created},
            "spec": {}, "status": {"phase": phase, "conditions": []}});
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        if let Some(t) = ready {
            p["status"]["conditions"] =
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        }
        p
    }

    #[test]
    fn earlier_stages_go_first() {
        let t = "2026-01-01T00:00:00Z";
        let unbound = pod(None, "Pending", None, t);
        let pending = pod(Some("n"), "Pending", None, t);
        let running = pod(Some("n"), "Running", None, t);
        let ready_late = pod(Some("n"), "Running", Some("2026-01-01T00:00:09Z"), t);
        let ready_early = pod(Some("n"), "Running", Some("2026-01-01T00:00:01Z"), t);
        let order = [&ready_early, &ready_late, &running, &pending, &unbound];
        let mut v: Vec<&Value> = order.to_vec();
        v.sort_by(|a, b| deletion_order(a, b));
        assert_eq!(v, [&unbound, &pending, &running, &ready_late, &ready_early]);
    }

    #[test]
    fn newer_pods_go_before_older_ones() {
        let old = pod(Some("n"), "Running", None, "2026-01-01T00:00:00Z");
        let new = pod(Some("n"), "Running", None, "2026-01-01T00:00:05Z");
        assert_eq!(deletion_order(&new, &old), Ordering::Less);
        assert_eq!(deletion_order(&old, &new), Ordering::Greater);
    }
}
