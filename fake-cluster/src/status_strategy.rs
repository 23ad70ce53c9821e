//! What a write to the `status` subresource (a PUT or any PATCH of `.../status`) may change,
//! per resource, as each real registry's status strategy (`PrepareForUpdate`) and then the
//! generic `rest.BeforeUpdate` (staging/src/k8s.io/apiserver/pkg/registry/rest/update.go)
//! decide it, in Kubernetes 1.33:
//!
//! | resource | kept from the stored object | the request may change |
//! |---|---|---|
//! | custom resources | everything but `status` (`customresource` `statusStrategy.PrepareForUpdate` copies the old object and sets the new status) | `status` only |
//! | pods | `spec`, `metadata.ownerReferences`, `metadata.deletionTimestamp`, an empty `status.qosClass` backfilled (`podStatusStrategy.PrepareForUpdate`) | `status`, labels, annotations, finalizers |
//! | jobs, namespaces, nodes | `spec` (`jobStatusStrategy`, `namespaceStatusStrategy`, `nodeStatusStrategy`) | `status` and all of the metadata below |
//! | customresourcedefinitions | `spec`: its `ResetObjectMetaForStatus(&newObj.ObjectMeta, &newObj.ObjectMeta)` resets the new metadata to itself, a no-op (kubernetes#137681) | `status` and all of the metadata below |
//! | any other built-in | `spec` and what `metav1.ResetObjectMetaForStatus` resets (labels, annotations, finalizers, ownerReferences, deletionTimestamp, generation) | `status` |
//!
//! On every resource `rest.BeforeUpdate` then keeps the stored `generation`,
//! `creationTimestamp`, `deletionTimestamp`, `deletionGracePeriodSeconds` and `uid`. The
//! request's `managedFields` (the field manager's bookkeeping of the write) are set by the
//! caller. Finalizers that pass are checked as on every update ([`forbid_new_finalizers`]),
//! and removing the last one of a terminating object deletes it, as the store does for any
//! update. A namespace's phase must match its deletionTimestamp ([`validate`]).

use std::collections::BTreeSet;

use crate::json::{Map, Value, strings_at};
use crate::resources::{ResourceDef, well_known};
use crate::status::{ApiError, FieldError};

/// Metadata a write never changes (`rest.BeforeUpdate` and the immutable fields of
/// `ValidateObjectMetaUpdate`); the main endpoint's update keeps the same.
pub(crate) const KEPT_BY_EVERY_UPDATE: [&str; 5] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

/// Sets each of `keys` in the new metadata `meta` as the stored metadata `old` has it
/// (removed where `old` has none).
pub(crate) fn keep_stored(old: Option<&Map>, meta: &mut Map, keys: &[&str]) {
    for key in keys {
        match old.and_then(|m| m.get(key)) {
            Some(v) => meta.insert((*key).into(), v.clone()),
            None => meta.remove(key),
        };
    }
}

/// What `metav1.ResetObjectMetaForStatus` takes from the stored object.
const RESET_FOR_STATUS: [&str; 6] = [
    "deletionTimestamp",
    "generation",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
];

/// How a resource's status strategy treats the request's metadata.
enum Metadata {
    /// None of it: the stored object with the new status (custom resources).
    Ignored,
    /// All of it but these keys, taken from the stored object.
    AllBut(&'static [&'static str]),
}

fn strategy(def: &ResourceDef) -> Metadata {
    if def.custom.is_some() {
        return Metadata::Ignored;
    }
    if def == well_known::pods() {
        return Metadata::AllBut(&["ownerReferences"]);
    }
    let through = [
        well_known::jobs(),
        well_known::namespaces(),
        well_known::nodes(),
        well_known::crds(),
    ];
    if through.iter().any(|r| def == *r) {
        Metadata::AllBut(&[])
    } else {
        Metadata::AllBut(&RESET_FOR_STATUS)
    }
}

/// The object a status write of `request` over `current` stores, less its managedFields
/// (the caller's): `current` with the request's `status` (`null` when the request has none,
/// removed for a custom resource) and the metadata the resource's strategy lets through.
pub(crate) fn prepare(def: &ResourceDef, current: &Value, request: &Value) -> Value {
    let status = request.get("status").cloned().unwrap_or(Value::Null);
    let mut next = current.clone();
    let Some(obj) = next.as_object_mut() else {
        return next;
    };
    if def.custom.is_some() && status.is_null() {
        obj.remove("status");
    } else {
        obj.insert("status".into(), status);
    }
    if let Metadata::AllBut(kept) = strategy(def) {
        let old = current.get("metadata").and_then(Value::as_object);
        let mut meta: Map = request
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        keep_stored(old, &mut meta, kept);
        keep_stored(old, &mut meta, &KEPT_BY_EVERY_UPDATE);
        // Name, namespace and resourceVersion are the stored ones here: the URL names the
        // object and the caller has checked the precondition.
        for key in ["name", "namespace", "resourceVersion"] {
            if let Some(v) = old.and_then(|m| m.get(key)) {
                meta.insert(key.into(), v.clone());
            }
        }
        meta.remove("managedFields");
        if let Some(mf) = old.and_then(|m| m.get("managedFields")) {
            meta.insert("managedFields".into(), mf.clone());
        }
        obj.insert("metadata".into(), Value::Object(meta));
    }
    if def == well_known::pods() {
        backfill_qos_class(current, &mut next);
    }
    next
}

/// What a resource's status validation refuses in the object a status write would store:
/// for a namespace, a phase out of step with its deletionTimestamp
/// (`ValidateNamespaceStatusUpdate`).
pub(crate) fn validate(def: &ResourceDef, next: &Value) -> Vec<FieldError> {
    if def != well_known::namespaces() {
        return Vec::new();
    }
    let phase = next
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (wanted, detail) = if next.pointer("/metadata/deletionTimestamp").is_some() {
        (
            "Terminating",
            "may only be 'Terminating' if `deletionTimestamp` is not empty",
        )
    } else {
        (
            "Active",
            "may only be 'Active' if `deletionTimestamp` is empty",
        )
    };
    if phase == wanted {
        Vec::new()
    } else {
        vec![FieldError::invalid("status.Phase", phase, detail)]
    }
}

/// 422 for an update (of the object or its status) that adds finalizers to an object being
/// deleted, as `ValidateObjectMetaUpdate` (apimachinery `ValidateNoNewFinalizers`) refuses
/// it: the new ones named once each, in sorted order (`sets.NewString(...).Difference`,
/// then `List()`).
pub(crate) fn forbid_new_finalizers(
    def: &ResourceDef,
    name: &str,
    current: &Value,
    next: &Value,
) -> Result<(), ApiError> {
    if current.pointer("/metadata/deletionTimestamp").is_none() {
        return Ok(());
    }
    let old = strings_at(current, "/metadata/finalizers");
    let added: Vec<String> = strings_at(next, "/metadata/finalizers")
        .into_iter()
        .filter(|f| !old.contains(f))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|f| format!("{f:?}"))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        def,
        name,
        vec![FieldError::forbidden(
            "metadata.finalizers",
            format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                added.join(", ")
            ),
        )],
    ))
}

/// `podStatusStrategy.PrepareForUpdate`: the QoS class is set at creation and an update
/// that leaves it empty keeps the stored one.
fn backfill_qos_class(current: &Value, next: &mut Value) {
    let empty = next
        .pointer("/status/qosClass")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if let (true, Some(qos)) = (empty, current.pointer("/status/qosClass"))
        && let Some(status) = next.get_mut("status").and_then(Value::as_object_mut)
    {
        status.insert("qosClass".into(), qos.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    fn stored() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "generation": 1,
                "resourceVersion": "5", "labels": {"a": "1"},
                "ownerReferences": [{"uid": "o"}]},
            "spec": {"nodeName": "n"}, "status": {"phase": "Running", "qosClass": "BestEffort"}})
    }

    fn request() -> Value {
        json!({"metadata": {"name": "p", "uid": "other", "generation": 9,
                "labels": {"b": "2"}, "finalizers": ["x/y"], "ownerReferences": []},
            "spec": {"nodeName": "elsewhere"}, "status": {"phase": "Failed"}})
    }

    #[test]
    fn a_pod_takes_labels_and_finalizers_but_not_spec_owners_or_identity() {
        let next = prepare(well_known::pods(), &stored(), &request());
        assert_eq!(next["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(next["metadata"]["finalizers"], json!(["x/y"]));
        assert_eq!(next["metadata"]["ownerReferences"], json!([{"uid": "o"}]));
        assert_eq!(next["metadata"]["uid"], "u");
        assert_eq!(next["metadata"]["generation"], 1);
        assert_eq!(next["metadata"]["namespace"], "ns");
        assert_eq!(next["spec"], json!({"nodeName": "n"}));
        assert_eq!(
            next["status"],
            json!({"phase": "Failed", "qosClass": "BestEffort"})
        );
    }

    #[test]
    fn a_job_takes_its_owners_too_and_other_builtins_reset_the_metadata() {
        let next = prepare(well_known::jobs(), &stored(), &request());
        assert_eq!(next["metadata"]["ownerReferences"], json!([]));
        assert_eq!(next["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(next["spec"], json!({"nodeName": "n"}));
        let cm = prepare(well_known::configmaps(), &stored(), &request());
        assert_eq!(cm["metadata"]["labels"], json!({"a": "1"}));
        assert_eq!(cm["metadata"].get("finalizers"), None);
        assert_eq!(cm["status"], json!({"phase": "Failed"}));
    }

    #[test]
    fn new_finalizers_on_a_deleted_object_are_named_once_each_in_sorted_order() {
        let current = json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": ["example.com/kept"]}});
        let next = json!({"metadata": {"name": "p", "finalizers":
            ["example.com/kept", "z.example.com/b", "a.example.com/c", "z.example.com/b"]}});
        let Err(e) = forbid_new_finalizers(well_known::pods(), "p", &current, &next) else {
            panic!("new finalizers on a deleted object pass");
        };
        let status = e.to_status();
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.ends_with(
                r#"found new finalizers []string{"a.example.com/c", "z.example.com/b"}"#
            ),
            "{message}"
        );
        assert!(forbid_new_finalizers(well_known::pods(), "p", &current, &current).is_ok());
    }
}
