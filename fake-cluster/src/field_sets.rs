//! Objects seen as sets of fields, by their [`Shape`]: the fields an applied configuration
//! sets, what changed between two versions of an object, the merge of an applied
//! configuration into the live object, and the removal of one field (structured-merge-diff's
//! `typed` package: `ToFieldSet`, `Compare`, `Merge`, `RemoveItems`).

use crate::json::{Map, Value};

mod compare;

pub use compare::{Changes, Comparison, changed_fields_v1, changes, compare};

use crate::fieldpath::{FieldSet, Path, PathElement};
use crate::type_schema::{ListType, Shape};

/// Why a list item has no path element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// An item of a map list lacks a key field that has no default.
    #[error(
        "{path}: element {index}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
    )]
    MissingKey {
        /// The list, as `.spec.containers`.
        path: String,
        /// The item's index.
        index: usize,
        /// The key field.
        key: String,
    },
    /// An item of a set is not a scalar.
    #[error("{path}: element {index}: sets may only contain scalars")]
    NotScalar {
        /// The list.
        path: String,
        /// The item's index.
        index: usize,
    },
}

/// The path element of item `index` of a list with semantics `kind`.
pub fn item_element(
    kind: ListType<'_>,
    item: &Value,
    index: usize,
    path: &[PathElement],
) -> Result<PathElement, ItemError> {
    let missing = |key: &str| ItemError::MissingKey {
        path: crate::fieldpath::path_string(path),
        index,
        key: key.to_owned(),
    };
    match kind {
        ListType::Map(keys) => {
            let mut fields = Vec::with_capacity(keys.len());
            for (k, default) in keys {
                let v = match (item.get(*k), default) {
                    (Some(v), _) => v.clone(),
                    (None, Some(d)) => Value::String((*d).to_owned()),
                    (None, None) => return Err(missing(k)),
                };
                fields.push(((*k).to_owned(), v));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListType::SchemaMap { .. } => {
            let keys = kind.keys();
            let mut fields = Vec::with_capacity(keys.len());
            for (k, default) in keys {
                let v = match (item.get(&k), default) {
                    (Some(v), _) => v.clone(),
                    (None, Some(d)) => d,
                    (None, None) => return Err(missing(&k)),
                };
                fields.push((k, v));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListType::Set => {
            if item.is_object() || item.is_array() {
                return Err(ItemError::NotScalar {
                    path: crate::fieldpath::path_string(path),
                    index,
                });
            }
            Ok(PathElement::Value(item.clone()))
        }
        ListType::Atomic => Ok(PathElement::Index(index)),
    }
}

/// The list semantics for apply of a value of this shape, `None` when atomic.
fn granular_list(shape: Shape<'_>) -> Option<(ListType<'_>, Shape<'_>)> {
    shape
        .list()
        .filter(|l| l.apply != ListType::Atomic)
        .map(|l| (l.apply, l.item))
}

/// The fields an applied configuration sets: every scalar, every empty or null object,
/// every atomic value, and every item of a granular list.
pub fn to_field_set(v: &Value, shape: Shape<'_>) -> Result<FieldSet, ItemError> {
    let mut out = FieldSet::new();
    walk_set(v, shape, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// Adds to `out` (the subtree of `v`, at `path`) the fields below `v`; whether `v` itself
/// is one. The set is built level by level, so no path is copied per field; `path` is kept
/// only to name a list in an error.
fn walk_set(
    v: &Value,
    shape: Shape<'_>,
    path: &mut Path,
    out: &mut FieldSet,
) -> Result<bool, ItemError> {
    if shape.is_atomic() {
        return Ok(true);
    }
    match v {
        Value::Object(m) => {
            for (k, cv) in m {
                let pe = PathElement::Field(String::from(k));
                path.push(pe);
                let mut sub = FieldSet::new();
                let itself = walk_set(cv, shape.field(k), path, &mut sub);
                let pe = path.pop().unwrap_or(PathElement::Index(0));
                let itself = itself?
                    || cv.is_null()
                    || cv.as_object().is_some_and(Map::is_empty)
                    || !shape.declares(k);
                if itself {
                    out.insert_member(pe.clone());
                }
                out.insert_child(pe, sub);
            }
            Ok(false)
        }
        Value::Array(items) => match granular_list(shape) {
            Some((kind, item_shape)) => {
                for (i, item) in items.iter().enumerate() {
                    let pe = item_element(kind, item, i, path)?;
                    path.push(pe);
                    let mut sub = FieldSet::new();
                    let r = walk_set(item, item_shape, path, &mut sub);
                    let pe = path.pop().unwrap_or(PathElement::Index(i));
                    r?;
                    out.insert_member(pe.clone());
                    out.insert_child(pe, sub);
                }
                Ok(false)
            }
            None => Ok(true),
        },
        _ => Ok(true),
    }
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// Merges an applied configuration into the live object: the configuration's values win,
/// fields it does not set stay, granular lists merge item by item.
pub fn merge(live: Option<&Value>, config: &Value, shape: Shape<'_>) -> Value {
    if shape.is_atomic() {
        return config.clone();
    }
    match (live, config) {
        (_, Value::Object(cm)) => {
            let mut out = match live {
                Some(Value::Object(lm)) => lm.clone(),
                _ => Map::new(),
            };
            for (k, cv) in cm {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = merge(out.get(k), cv, shape.field(k));
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(la)), Value::Array(ca)) => match granular_list(shape) {
            Some((kind, item_shape)) => Value::Array(merge_lists(la, ca, kind, item_shape)),
            None => config.clone(),
        },
        (_, Value::Array(ca)) => match granular_list(shape) {
            Some((kind, item_shape)) => Value::Array(merge_lists(&[], ca, kind, item_shape)),
            None => config.clone(),
        },
        _ => config.clone(),
    }
}

/// Merges two granular lists: the configuration's order for the items it names, items only
/// the live list has staying where they were relative to those.
fn merge_lists(
    live: &[Value],
    config: &[Value],
    kind: ListType<'_>,
    item_shape: Shape<'_>,
) -> Vec<Value> {
    let pe = |v: &Value, i: usize| item_element(kind, v, i, &[]).unwrap_or(PathElement::Index(i));
    let lpe: Vec<PathElement> = live.iter().enumerate().map(|(i, v)| pe(v, i)).collect();
    let rpe: Vec<PathElement> = config.iter().enumerate().map(|(i, v)| pe(v, i)).collect();
    let find = |pes: &[PathElement], p: &PathElement| pes.iter().position(|x| x == p);
    let mut shared: std::collections::VecDeque<&PathElement> =
        rpe.iter().filter(|p| lpe.contains(p)).collect();
    let mut merged_rhs: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(live.len().max(config.len()));
    let (mut li, mut ri) = (0, 0);
    let merge_item = |p: &PathElement, ri: usize| {
        let l = find(&lpe, p).map(|i| &live[i]);
        merge(l, &config[ri], item_shape)
    };
    while li < lpe.len() || ri < rpe.len() {
        if li < lpe.len() && ri < rpe.len() {
            if lpe[li] == rpe[ri] {
                merged_rhs.push(&rpe[ri]);
                out.push(merge_item(&rpe[ri], ri));
                li += 1;
                ri += 1;
                if shared.front() == Some(&&lpe[li - 1]) {
                    shared.pop_front();
                }
                continue;
            }
            if rpe.contains(&lpe[li]) && shared.front().is_some_and(|s| **s != lpe[li]) {
                li += 1;
                continue;
            }
        }
        if li < lpe.len() {
            if !rpe.contains(&lpe[li]) {
                out.push(live[li].clone());
                li += 1;
                continue;
            }
            if merged_rhs.contains(&&lpe[li]) {
                li += 1;
                continue;
            }
        }
        if ri < rpe.len() {
            merged_rhs.push(&rpe[ri]);
            out.push(merge_item(&rpe[ri], ri));
            if shared.front() == Some(&&rpe[ri]) {
                shared.pop_front();
            }
            ri += 1;
        } else {
            li += 1;
        }
    }
    out
}

/// Removes the value at `path` (a field, a list item by key or value) from `obj`; whether
/// there was one.
pub fn remove(v: &mut Value, path: &[PathElement], shape: Shape<'_>) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match (first, v) {
        (PathElement::Field(name), Value::Object(m)) => {
            if rest.is_empty() {
                return m.remove(name).is_some();
            }
            m.get_mut(name)
                .is_some_and(|c| remove(c, rest, shape.field(name)))
        }
        (pe, Value::Array(items)) => {
            let Some((kind, item_shape)) = granular_list(shape) else {
                return false;
            };
            let pos = items
                .iter()
                .enumerate()
                .position(|(i, item)| item_element(kind, item, i, &[]).is_ok_and(|p| &p == pe));
            let Some(i) = pos else {
                return false;
            };
            if rest.is_empty() {
                items.remove(i);
                return true;
            }
            remove(&mut items[i], rest, item_shape)
        }
        _ => false,
    }
}

/// Drops objects and lists left empty under `path`'s parents, deepest first, unless `keep`
/// holds them; the object's own top-level fields stay.
pub fn collapse_empty(
    obj: &mut Value,
    path: &[PathElement],
    shape: Shape<'_>,
    keep: &dyn Fn(&[PathElement]) -> bool,
) {
    for n in (2..path.len()).rev() {
        let parent = &path[..n];
        if keep(parent) {
            continue;
        }
        if lookup(obj, parent, shape).is_some_and(|v| is_empty_container(Some(v))) {
            remove(obj, parent, shape);
        }
    }
}

/// The value at `path`.
pub fn lookup<'a>(v: &'a Value, path: &[PathElement], shape: Shape<'_>) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    match (first, v) {
        (PathElement::Field(name), Value::Object(m)) => {
            lookup(m.get(name)?, rest, shape.field(name))
        }
        (pe, Value::Array(items)) => {
            let (kind, item_shape) = granular_list(shape)?;
            let item = items
                .iter()
                .enumerate()
                .find(|(i, item)| item_element(kind, item, *i, &[]).is_ok_and(|p| &p == pe))?;
            lookup(item.1, rest, item_shape)
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod reference;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::path_string;
    use crate::json::json;
    use crate::type_schema::root;

    #[test]
    fn applied_fields_of_a_pod() {
        let pod = root("", "Pod").unwrap();
        let cfg = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [
            {"name": "c", "image": "x", "ports": [{"containerPort": 80}], "securityContext": {}}]}});
        let set = to_field_set(&cfg, pod).unwrap();
        let paths: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
        assert_eq!(
            paths,
            [
                ".metadata.labels.a",
                ".spec.containers[name=\"c\"]",
                ".spec.containers[name=\"c\"].image",
                ".spec.containers[name=\"c\"].name",
                ".spec.containers[name=\"c\"].securityContext",
                ".spec.containers[name=\"c\"].ports[containerPort=80,protocol=\"TCP\"]",
                ".spec.containers[name=\"c\"].ports[containerPort=80,protocol=\"TCP\"].containerPort",
            ]
        );
    }

    #[test]
    fn compare_marks_new_maps_and_items_themselves() {
        let pod = root("", "Pod").unwrap();
        // As the server's empty Pod: `containers` is always serialized, as null.
        let old = json!({"metadata": {}, "spec": {"containers": null}});
        let new =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c"}]}});
        let c = compare(Some(&old), Some(&new), pod);
        let added: Vec<String> = c.added.paths().iter().map(|p| path_string(p)).collect();
        assert_eq!(
            added,
            [
                ".metadata.labels",
                ".metadata.labels.a",
                ".spec.containers[name=\"c\"]",
                ".spec.containers[name=\"c\"].name"
            ]
        );
        assert!(c.removed.is_empty() && c.modified.is_empty());
        let c = compare(Some(&new), Some(&old), pod);
        assert_eq!(c.removed.paths().len(), 4);
        assert!(
            !c.removed
                .has(&crate::fieldpath::fields(&["spec", "containers"]))
        );
    }

    #[test]
    fn merge_keeps_live_items_and_orders_by_config() {
        let pod = root("", "Pod").unwrap();
        let live = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "x"}, {"name": "b"}]}});
        let cfg = json!({"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a"}]}});
        let out = merge(Some(&live), &cfg, pod);
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "x"}, {"name": "b", "image": "2"}, {"name": "a", "image": "1"}])
        );
    }
}
