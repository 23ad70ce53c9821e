//! Strategic merge patch (`application/strategic-merge-patch+json`) as the API server
//! applies it (`k8s.io/apimachinery/pkg/util/strategicpatch`, with `MergeParallelList` and
//! `IgnoreUnmatchedNulls`): maps merge key by key and `null` deletes; lists merge by their
//! declared merge key, lists of scalars with `patchStrategy: merge` as sets, every other
//! list is replaced. Directives:
//!
//! - `$patch: replace` in a map replaces it; `$patch: delete` makes it empty; in a list, an
//!   item `{"$patch": "replace"}` replaces the list with the other items, and
//!   `{"$patch": "delete", <key>: v}` removes the item with that key;
//! - `$deleteFromPrimitiveList/<field>: [...]` removes those scalars from a set;
//! - `$setElementOrder/<field>: [...]` gives the order of the merged list (items the server
//!   has and the order does not name keep their place relative to the others);
//! - `$retainKeys: [...]` drops every other field of the map.
//!
//! A list that is not a merging one is replaced; without `$setElementOrder`, items the patch
//! adds to a merging list come before the server's items they are not ordered against,
//! as on the real server.

use crate::json::{Key, Map, Value};

use crate::status::ApiError;
use crate::type_schema::{PatchStrategy, Shape};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// Applies a strategic merge patch to an object of the given shape.
pub fn apply(original: &Value, patch: &Value, shape: Shape<'_>) -> Result<Value, ApiError> {
    let Value::Object(p) = patch else {
        return Err(bad_request(
            "the body of the request was in an unknown format - a strategic merge patch must be a JSON object",
        ));
    };
    let orig = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    merge_map(orig, p.clone(), shape).map(Value::Object)
}

/// Equality as Go compares decoded JSON: numbers by value.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value from a patch placed where the object has nothing: directives and nulls go.
fn fresh(patch: Value, shape: Shape<'_>) -> Result<Value, ApiError> {
    match patch {
        Value::Object(p) => merge_map(Map::new(), p, shape).map(Value::Object),
        Value::Array(items) => {
            let strategy = shape.list().map(|l| l.patch);
            match strategy {
                Some(PatchStrategy::MergeKey(key)) => {
                    let item = shape.list().map_or(Shape::Plain, |l| l.item);
                    merge_slice(Vec::new(), items, Some(key), item).map(Value::Array)
                }
                _ => Ok(Value::Array(items)),
            }
        }
        other => Ok(other),
    }
}

fn merge_map(mut original: Map, mut patch: Map, shape: Shape<'_>) -> Result<Map, ApiError> {
    if let Some(directive) = patch.remove(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => merge_map(Map::new(), patch, shape),
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_request(format!(
                "unknown patch type: {} in map: {}",
                directive_text(&directive),
                Value::Object(patch)
            ))),
        };
    }
    retain_keys(&mut original, &mut patch)?;
    set_element_order(&mut original, &mut patch, shape)?;
    for (k, pv) in patch {
        let (key, delete_list) = match k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(field) => (Key::new(field), true),
            None => (k, false),
        };
        let field_shape = shape.field(&key);
        if delete_list {
            let Value::Array(to_delete) = pv else {
                return Err(bad_request("invalid patch format of primitive list"));
            };
            if let Some(Value::Array(current)) = original.get(&key) {
                let merged = match field_shape.list().map(|l| l.patch) {
                    Some(PatchStrategy::MergePrimitives | PatchStrategy::MergeKey(_)) => current
                        .iter()
                        .filter(|v| !to_delete.iter().any(|d| json_eq(d, v)))
                        .cloned()
                        .collect(),
                    // As the real server: a deletion list on a replaced list replaces it.
                    _ => to_delete,
                };
                original.insert(key, Value::Array(merged));
            }
            continue;
        }
        if pv.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(ov) = original.remove(&key) else {
            original.insert(key, fresh(pv, field_shape)?);
            continue;
        };
        let merged = match (ov, pv) {
            (Value::Object(o), Value::Object(p)) => Value::Object(merge_map(o, p, field_shape)?),
            (Value::Array(o), Value::Array(p)) => match field_shape.list() {
                Some(l) if l.patch != PatchStrategy::Replace => {
                    let key_name = match l.patch {
                        PatchStrategy::MergeKey(k) => Some(k),
                        _ => None,
                    };
                    Value::Array(merge_slice(o, p, key_name, l.item)?)
                }
                _ => Value::Array(p),
            },
            (_, p) => fresh(p, field_shape)?,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

fn directive_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `$retainKeys`: every field of the patch must be listed; fields of the object not listed go.
fn retain_keys(original: &mut Map, patch: &mut Map) -> Result<(), ApiError> {
    let Some(list) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(keep) = list else {
        return Err(bad_request("invalid patch format of retainKeys"));
    };
    let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !keep.contains(&k.as_str()) {
            return Err(bad_request("invalid patch format of retainKeys"));
        }
    }
    original.retain(|k, _| keep.contains(&k.as_str()));
    Ok(())
}

/// `$setElementOrder/<field>`: merges that field's list now and orders it.
fn set_element_order(
    original: &mut Map,
    patch: &mut Map,
    shape: Shape<'_>,
) -> Result<(), ApiError> {
    let keys: Vec<Key> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for k in keys {
        let Some(Value::Array(order)) = patch.remove(&k) else {
            return Err(bad_request("invalid patch format of setElementOrder list"));
        };
        let field = k.trim_start_matches(SET_ELEMENT_ORDER).to_owned();
        if field.is_empty() {
            return Err(bad_request("invalid patch format of setElementOrder list"));
        }
        let field_shape = shape.field(&field);
        let (strategy, item) = field_shape
            .list()
            .map_or((PatchStrategy::Replace, Shape::Plain), |l| {
                (l.patch, l.item)
            });
        let merge_key = match strategy {
            PatchStrategy::MergeKey(k) => Some(k),
            _ => None,
        };
        let orig_list = match original.get(&field) {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(_) => return Err(bad_request("invalid patch format of setElementOrder list")),
            None => None,
        };
        let patch_list = match patch.remove(&field) {
            Some(Value::Array(a)) => Some(a),
            Some(Value::Null) => {
                original.remove(&field);
                continue;
            }
            Some(_) => return Err(bad_request("invalid patch format of setElementOrder list")),
            None => None,
        };
        validate_order(patch_list.as_deref().unwrap_or_default(), &order, merge_key)?;
        let merged = match (orig_list.clone(), patch_list.clone()) {
            (Some(o), None) => o,
            (None, Some(p)) => merge_slice(Vec::new(), p, merge_key, item)?,
            (Some(o), Some(p)) if strategy != PatchStrategy::Replace => {
                merge_slice(o, p, merge_key, item)?
            }
            (Some(_), Some(p)) => p,
            (None, None) => continue,
        };
        let (in_order, server_only) = partition(merged, &order, merge_key);
        let server_order = orig_list.unwrap_or_default();
        let both = normalize_order(in_order, server_only, &order, &server_order, merge_key);
        original.insert(field.into(), Value::Array(both));
    }
    Ok(())
}

/// The items of the patch (deletions aside) must appear in the order list, in its order.
fn validate_order(
    patch_list: &[Value],
    order: &[Value],
    key: Option<&str>,
) -> Result<(), ApiError> {
    if patch_list.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = patch_list
        .iter()
        .filter(|v| v.get(DIRECTIVE).is_none())
        .collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if same_item(items[pi], &order[oi], key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(bad_request(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn key_value<'a>(item: &'a Value, key: &str) -> Result<&'a Value, ApiError> {
    item.get(key).ok_or_else(|| {
        bad_request(format!(
            "map: {item} does not contain declared merge key: {key}"
        ))
    })
}

fn same_item(a: &Value, b: &Value, key: Option<&str>) -> Result<bool, ApiError> {
    match key {
        Some(k) if a.is_object() => Ok(json_eq(key_value(a, k)?, key_value(b, k)?)),
        _ => Ok(json_eq(a, b)),
    }
}

fn identity<'a>(item: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(k) if item.is_object() => item.get(k),
        _ => Some(item),
    }
}

fn position(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(item, key)?;
    list.iter()
        .position(|v| identity(v, key).is_some_and(|x| json_eq(x, id)))
}

fn merge_slice(
    mut original: Vec<Value>,
    mut patch: Vec<Value>,
    key: Option<&str>,
    item_shape: Shape<'_>,
) -> Result<Vec<Value>, ApiError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let maps = original
        .first()
        .or_else(|| patch.first())
        .is_some_and(Value::is_object);
    if [&original, &patch]
        .iter()
        .flat_map(|l| l.iter())
        .any(Value::is_array)
    {
        return Err(ApiError::new(422, "", "lists of lists are not supported"));
    }
    let merged = if !maps {
        let mut out: Vec<Value> = Vec::new();
        for v in original.iter().chain(patch.iter()) {
            if !out.iter().any(|o| json_eq(o, v)) {
                out.push(v.clone());
            }
        }
        out
    } else {
        let Some(k) = key else {
            return Err(bad_request(
                "cannot merge lists without merge key for type map",
            ));
        };
        // Special items: deletions by key, and a replacement of the whole list.
        let mut plain = Vec::new();
        let mut replace = false;
        for item in patch {
            match item.get(DIRECTIVE) {
                None => plain.push(item),
                Some(d) => match d.as_str() {
                    Some("delete") => {
                        let v = key_value(&item, k)?.clone();
                        original.retain(|o| !o.get(k).is_some_and(|x| json_eq(x, &v)));
                    }
                    Some("replace") => replace = true,
                    Some("merge") => {
                        return Err(bad_request(
                            "merging lists cannot yet be specified in the patch",
                        ));
                    }
                    _ => {
                        return Err(bad_request(format!(
                            "unknown patch type: {} in map: {item}",
                            directive_text(d)
                        )));
                    }
                },
            }
        }
        if replace {
            original = plain
                .into_iter()
                .map(|v| fresh(v, item_shape))
                .collect::<Result<_, _>>()?;
            patch = Vec::new();
        } else {
            patch = plain;
        }
        let before = original.clone();
        for item in &patch {
            let v = key_value(item, k)?;
            match original
                .iter()
                .position(|o| o.get(k).is_some_and(|x| json_eq(x, v)))
            {
                Some(i) => {
                    let (Value::Object(o), Value::Object(p)) = (original[i].clone(), item.clone())
                    else {
                        continue;
                    };
                    original[i] = Value::Object(merge_map(o, p, item_shape)?);
                }
                None => original.push(fresh(item.clone(), item_shape)?),
            }
        }
        std::mem::replace(&mut original, before)
    };
    let (from_patch, server_only) = partition(merged, &patch, key);
    Ok(normalize_order(
        from_patch,
        server_only,
        &patch,
        &original,
        key,
    ))
}

/// Splits a list into the items present in `by` and the others, keeping order.
fn partition(list: Vec<Value>, by: &[Value], key: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    list.into_iter()
        .partition(|v| position(by, v, key).is_some())
}

/// Orders the patch's items by `patch_order` and the server's by `server_order`, then
/// interleaves them: a server item goes before a patch item when the server's list has it
/// first; otherwise the patch item comes first.
fn normalize_order(
    mut from_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    from_patch.sort_by_key(|v| position(patch_order, v, key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| position(server_order, v, key).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let li = position(server_order, l, key);
                let ri = position(server_order, r, key);
                match (li, ri) {
                    (Some(a), Some(b)) if a < b => out.extend(left.next()),
                    _ => out.extend(right.next()),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;
    use crate::type_schema::root;

    fn pod() -> Shape<'static> {
        root("", "Pod").unwrap()
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let orig = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "b", "image": "y:1"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}]}]}});
        let out = apply(&orig, &patch, pod()).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [
                {"name": "a", "image": "x:1", "env": [{"name": "B", "value": "3"}]},
                {"name": "b", "image": "y:1"}]}})
        );
    }

    #[test]
    fn new_items_come_first_unless_an_order_is_given() {
        let orig = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [{"name": "c"}]}});
        let out = apply(&orig, &patch, pod()).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c"}, {"name": "a"}, {"name": "b"}])
        );
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            "containers": [{"name": "c"}]}});
        let out = apply(&orig, &patch, pod()).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])
        );
    }

    #[test]
    fn directives_replace_delete_retain_and_primitive_lists() {
        let orig = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
            "spec": {"tolerations": [{"key": "k"}], "containers": [{"name": "a"}, {"name": "b"}],
                     "volumes": [{"name": "v", "emptyDir": {}}]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"],
                "labels": {"$patch": "replace", "z": "3"}},
            "spec": {"tolerations": [{"key": "j"}],
                     "containers": [{"$patch": "replace"}, {"name": "z"}],
                     "volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}});
        let out = apply(&orig, &patch, pod()).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "b"]));
        assert_eq!(out["metadata"]["labels"], json!({"z": "3"}));
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "j"}]));
        assert_eq!(out["spec"]["containers"], json!([{"name": "z"}]));
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "configMap": {"name": "cm"}}])
        );
        let bad = json!({"spec": {"$patch": "merge"}});
        assert_eq!(apply(&orig, &bad, pod()).unwrap_err().code, 400);
        let missing_key = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(
            apply(&orig, &missing_key, pod())
                .unwrap_err()
                .message
                .contains("does not contain declared merge key: name")
        );
    }
}
