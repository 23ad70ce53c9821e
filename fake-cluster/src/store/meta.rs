//! The metadata of a stored object as the store reads and sets it: `metadata` itself,
//! its string fields, its resourceVersion and its finalizers.

use crate::json::{Map, Value, json};

pub(super) fn meta(obj: &Value) -> Option<&Map> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata.<field>` as a string, if set.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

/// Sets `metadata.resourceVersion` (making `metadata` an object first if it is not one).
pub(crate) fn set_resource_version(obj: &mut Value, rv: String) {
    meta_mut(obj).insert("resourceVersion".into(), Value::String(rv));
}

pub(super) fn meta_mut(obj: &mut Value) -> &mut Map {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

pub(super) fn finalizers(obj: &Value) -> Vec<String> {
    crate::json::strings_at(obj, "/metadata/finalizers")
}
