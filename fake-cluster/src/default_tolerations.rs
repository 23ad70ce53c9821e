//! The DefaultTolerationSeconds admission plugin
//! (`plugin/pkg/admission/defaulttolerationseconds`), on by default in a real cluster: every
//! pod created gets tolerations of the `node.kubernetes.io/not-ready` and
//! `node.kubernetes.io/unreachable` NoExecute taints for 300 seconds, unless it already
//! tolerates them (a toleration with that key, or no key, and effect NoExecute or none). So
//! a pod on a node that stops answering is evicted five minutes after the node is tainted.

use crate::json::{Value, json};

use crate::api::AdmissionCheck;
use crate::resources::{ResourceDef, well_known};
use crate::status::ApiError;

/// The taint of a node whose Ready condition is False.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The taint of a node whose Ready condition is Unknown (its kubelet stopped posting).
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// The default `tolerationSeconds` the plugin adds.
pub const DEFAULT_TOLERATION_SECONDS: u64 = 300;

/// The DefaultTolerationSeconds admission plugin.
#[derive(Debug, Default)]
pub struct DefaultTolerationSeconds;

fn covers(toleration: &Value, key: &str) -> bool {
    let k = toleration.get("key").and_then(Value::as_str).unwrap_or("");
    let effect = toleration
        .get("effect")
        .and_then(Value::as_str)
        .unwrap_or("");
    (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
}

impl AdmissionCheck for DefaultTolerationSeconds {
    fn admit(&self, def: &ResourceDef, _namespace: &str, obj: &mut Value) -> Result<(), ApiError> {
        if def != well_known::pods() || !obj["spec"].is_object() {
            return Ok(());
        }
        let spec = &mut obj["spec"];
        if !spec["tolerations"].is_array() {
            spec["tolerations"] = json!([]);
        }
        if let Some(list) = spec["tolerations"].as_array_mut() {
            for key in [NOT_READY_TAINT, UNREACHABLE_TAINT] {
                if !list.iter().any(|t| covers(t, key)) {
                    list.push(
                        json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                        "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tolerations_are_added_unless_present() {
        let mut pod = json!({"spec": {"containers": []}});
        DefaultTolerationSeconds
            .admit(well_known::pods(), "ns", &mut pod)
            .unwrap_or_default();
        let keys: Vec<&str> = pod["spec"]["tolerations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["key"].as_str())
            .collect();
        assert_eq!(keys, [NOT_READY_TAINT, UNREACHABLE_TAINT]);
        assert_eq!(pod["spec"]["tolerations"][1]["tolerationSeconds"], 300);
        let mut own = json!({"spec": {"tolerations": [
            {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}});
        DefaultTolerationSeconds
            .admit(well_known::pods(), "ns", &mut own)
            .unwrap_or_default();
        let t = own["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 5);
        assert_eq!(t[1]["key"], NOT_READY_TAINT);
        // An Exists toleration with no key covers both.
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        DefaultTolerationSeconds
            .admit(well_known::pods(), "ns", &mut all)
            .unwrap_or_default();
        assert_eq!(all["spec"]["tolerations"].as_array().map(Vec::len), Some(1));
    }
}
