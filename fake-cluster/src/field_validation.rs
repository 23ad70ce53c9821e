//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`, `Warn` when unset):
//! fields the resource does not have are refused (400, Strict) or reported in a `Warning`
//! header (Warn). The fake knows the top-level fields of each kind and the fields of
//! `metadata`; deeper fields are not checked.

use crate::json::Value;

use crate::query::Query;
use crate::resources::ResourceDef;
use crate::status::ApiError;

const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn top_level(def: &ResourceDef) -> &'static [&'static str] {
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "ConfigMap") => &["data", "binaryData", "immutable"],
        ("", "Secret") => &["data", "stringData", "type", "immutable"],
        ("", "ServiceAccount") => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("", "Event") => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        ("events.k8s.io", "Event") => &[
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ],
        _ => &["spec", "status"],
    }
}

/// The fields of `obj` that objects of `def` do not have, as `unknown field "<path>"`.
pub fn unknown_fields(def: &ResourceDef, obj: &Value) -> Vec<String> {
    if def.custom.as_ref().is_some_and(|c| c.schema.is_some()) {
        // What pruning would drop (`metadata` is checked below).
        let mut pruned = obj.clone();
        let mut out: Vec<String> = crate::crd::prune(def, &mut pruned)
            .into_iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        if let Some(meta) = obj.get("metadata").and_then(Value::as_object) {
            for k in meta.keys().filter(|k| !OBJECT_META.contains(&k.as_str())) {
                out.push(format!("unknown field \"metadata.{k}\""));
            }
        }
        return out;
    }
    let mut out = Vec::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    let known = top_level(def);
    for k in map.keys() {
        if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") && !known.contains(&k.as_str())
        {
            out.push(format!("unknown field \"{k}\""));
        }
    }
    if let Some(meta) = map.get("metadata").and_then(Value::as_object) {
        for k in meta.keys().filter(|k| !OBJECT_META.contains(&k.as_str())) {
            out.push(format!("unknown field \"metadata.{k}\""));
        }
    }
    out
}

/// What the request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Refuse unknown fields.
    Strict,
    /// Accept, with a warning per unknown field.
    Warn,
    /// Accept silently.
    Ignore,
}

/// The request's `fieldValidation` (Warn when unset, as the real server); 400 otherwise.
pub fn directive(q: &Query) -> Result<Directive, ApiError> {
    match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Ok(Directive::Warn),
        Some("Strict") => Ok(Directive::Strict),
        Some("Ignore") => Ok(Directive::Ignore),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
        ))),
    }
}

/// Applies the directive to an object sent as `def`: the warnings to send (Warn), or the
/// 400 the real server answers (Strict).
pub fn check(
    def: &ResourceDef,
    obj: &Value,
    directive: Directive,
) -> Result<Vec<String>, ApiError> {
    if directive == Directive::Ignore {
        return Ok(Vec::new());
    }
    let unknown = unknown_fields(def, obj);
    if unknown.is_empty() || directive == Directive::Warn {
        return Ok(unknown);
    }
    Err(ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
        unknown.join(", "),
        kind = def.kind,
        version = def.version,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;
    use crate::resources::well_known;

    #[test]
    fn strict_refuses_and_warn_reports_unknown_fields() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "lables": {}}, "datta": {}, "data": {}});
        let def = well_known::configmaps();
        let e = check(def, &cm, Directive::Strict).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"datta\", unknown field \"metadata.lables\""
        );
        assert_eq!(check(def, &cm, Directive::Warn).unwrap().len(), 2);
        assert!(check(def, &cm, Directive::Ignore).unwrap().is_empty());
        let job = json!({"metadata": {"name": "j"}, "spec": {}, "status": {}});
        assert!(unknown_fields(well_known::jobs(), &job).is_empty());
    }
}
