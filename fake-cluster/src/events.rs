//! `events.k8s.io/v1` Events, stored as core `v1` Events as the real API server stores them:
//! one object seen through two versions. The conversion follows
//! `pkg/apis/events/v1/conversion.go`: `regarding` is `involvedObject`, `note` is `message`,
//! `reportingController` is `reportingComponent`, and the `deprecated*` fields are the core
//! `source`, `count`, `firstTimestamp` and `lastTimestamp`.

use std::borrow::Cow;

use crate::json::{Map, Value, json};

use crate::resources::{ResourceDef, ResourceRef, well_known};
use crate::status::ApiError;

/// Field renames between `events.k8s.io/v1` (left) and core `v1` (right).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
];

/// Whether objects of `def` are stored as another resource.
pub fn is_converted(def: &ResourceDef) -> bool {
    def == well_known::events_v1()
}

/// The resource whose storage holds objects of `def`.
pub fn storage_def(def: &ResourceRef) -> &ResourceRef {
    if is_converted(def) {
        well_known::events()
    } else {
        def
    }
}

fn rename(obj: &Map, from_wire: bool) -> Map {
    let mut out = Map::with_capacity(obj.len());
    for (k, v) in obj {
        let key = RENAMES
            .iter()
            .find_map(|(wire, core)| {
                if from_wire {
                    (k == wire).then_some(*core)
                } else {
                    (k == core).then_some(*wire)
                }
            })
            .unwrap_or(k);
        out.insert(key.into(), v.clone());
    }
    out
}

/// Converts an object sent as `def` into its stored form.
pub fn to_storage(def: &ResourceDef, obj: Value) -> Value {
    if !is_converted(def) {
        return obj;
    }
    match obj {
        Value::Object(m) => {
            let mut out = rename(&m, true);
            let core = well_known::events();
            out.insert("apiVersion".into(), json!(core.api_version()));
            out.insert("kind".into(), json!(core.kind));
            Value::Object(out)
        }
        other => other,
    }
}

/// Converts a stored object into the form clients of `def` see.
pub fn to_wire<'a>(def: &ResourceDef, obj: &'a Value) -> Cow<'a, Value> {
    if !is_converted(def) {
        return Cow::Borrowed(obj);
    }
    match obj {
        Value::Object(m) => {
            let mut out = rename(m, false);
            out.insert("apiVersion".into(), json!(def.api_version()));
            out.insert("kind".into(), json!(def.kind));
            Cow::Owned(Value::Object(out))
        }
        other => Cow::Borrowed(other),
    }
}

/// Rewrites an error about the stored resource so it names the requested one
/// (`events.events.k8s.io "x" not found`).
pub fn rename_error(def: &ResourceRef, mut e: ApiError) -> ApiError {
    if !is_converted(def) {
        return e;
    }
    let core = storage_def(def).qualified_plural();
    if let Some(rest) = e.message.strip_prefix(&format!("{core} ")) {
        e.message = format!("{} {rest}", def.qualified_plural());
    }
    e.message = e.message.replace(
        &format!("on {core} "),
        &format!("on {} ", def.qualified_plural()),
    );
    if let Some(d) = e.details.as_mut().and_then(Value::as_object_mut)
        && d.get("kind").and_then(Value::as_str) == Some(def.plural.as_str())
    {
        d.insert("group".into(), json!(def.group));
    }
    e
}

/// The stored path of a field selector's field for `events.k8s.io/v1` Events, following
/// the real server's field label conversions; `None` when the field is not supported.
pub fn field_path(field: &str) -> Option<&'static str> {
    Some(match field {
        "metadata.name" => "/metadata/name",
        "metadata.namespace" => "/metadata/namespace",
        "reason" => "/reason",
        "type" => "/type",
        "reportingController" => "/reportingComponent",
        "regarding.kind" => "/involvedObject/kind",
        "regarding.name" => "/involvedObject/name",
        "regarding.namespace" => "/involvedObject/namespace",
        "regarding.uid" => "/involvedObject/uid",
        "regarding.apiVersion" => "/involvedObject/apiVersion",
        "regarding.resourceVersion" => "/involvedObject/resourceVersion",
        "regarding.fieldPath" => "/involvedObject/fieldPath",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_between_versions() {
        let wire = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "p"},
            "note": "hello", "reason": "Started", "reportingController": "me",
            "deprecatedCount": 2});
        let stored = to_storage(well_known::events_v1(), wire.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "hello");
        assert_eq!(stored["reportingComponent"], "me");
        assert_eq!(stored["count"], 2);
        assert!(stored.get("regarding").is_none());
        assert_eq!(*to_wire(well_known::events_v1(), &stored), wire);
    }

    #[test]
    fn errors_name_the_requested_resource() {
        let e = ApiError::not_found(well_known::events(), "x");
        let e = rename_error(well_known::events_v1(), e);
        assert_eq!(e.message, "events.events.k8s.io \"x\" not found");
        assert_eq!(e.details.unwrap()["group"], "events.k8s.io");
    }
}
