//! The walks of `field_sets` checked against their plain definition: every field inserted
//! by its full path (as structured-merge-diff's `typed` package does), on seeded random
//! pairs of objects of several shapes.

use crate::json::{Map, Value, json};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    Comparison, changed_fields_v1, changes, compare, granular_list, is_empty_container,
    item_element, to_field_set,
};
use crate::fieldpath::{FieldSet, Path, PathElement};
use crate::type_schema::{Shape, root, root_or_custom};

fn with(path: &Path, pe: PathElement) -> Path {
    let mut p = path.clone();
    p.push(pe);
    p
}

fn field(path: &Path, k: &str) -> Path {
    with(path, PathElement::Field(k.to_owned()))
}

/// `to_field_set` by full paths.
fn set_by_paths(v: &Value, shape: Shape<'_>, path: &Path, out: &mut FieldSet) {
    if shape.is_atomic() {
        out.insert(path);
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, cv) in m {
                let cp = field(path, k);
                set_by_paths(cv, shape.field(k), &cp, out);
                let empty = cv.is_null() || cv.as_object().is_some_and(Map::is_empty);
                if empty || !shape.declares(k) {
                    out.insert(&cp);
                }
            }
        }
        Value::Array(items) => match granular_list(shape) {
            Some((kind, item_shape)) => {
                for (i, item) in items.iter().enumerate() {
                    let Ok(pe) = item_element(kind, item, i, path) else {
                        return;
                    };
                    let ip = with(path, pe);
                    set_by_paths(item, item_shape, &ip, out);
                    out.insert(&ip);
                }
            }
            None => out.insert(path),
        },
        _ => out.insert(path),
    }
}

fn leaf(old: Option<&Value>, new: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if a != b => out.modified.insert(path),
        _ => {}
    }
}

/// `compare` by full paths.
fn compare_by_paths(
    old: Option<&Value>,
    new: Option<&Value>,
    shape: Shape<'_>,
    path: &Path,
    out: &mut Comparison,
) {
    if old.is_none() && new.is_none() {
        return;
    }
    let objects = old.is_none_or(|v| v.is_object() || v.is_null())
        && new.is_none_or(|v| v.is_object() || v.is_null());
    let arrays = old.is_none_or(|v| v.is_array() || v.is_null())
        && new.is_none_or(|v| v.is_array() || v.is_null());
    if shape.is_atomic()
        || (is_empty_container(old) && is_empty_container(new))
        || !(objects || arrays)
    {
        return leaf(old, new, path, out);
    }
    if objects {
        let empty = Map::new();
        let om = old.and_then(Value::as_object);
        let nm = new.and_then(Value::as_object);
        let keys: std::collections::BTreeSet<&crate::json::Key> = om
            .unwrap_or(&empty)
            .keys()
            .chain(nm.unwrap_or(&empty).keys())
            .collect();
        for k in keys {
            let (o, n) = (om.and_then(|m| m.get(k)), nm.and_then(|m| m.get(k)));
            compare_by_paths(o, n, shape.field(k), &field(path, k), out);
        }
    } else {
        let Some((kind, item_shape)) = granular_list(shape) else {
            return leaf(old, new, path, out);
        };
        let index = |list: Option<&Value>| -> Vec<(PathElement, Value)> {
            let items = list.and_then(Value::as_array).cloned().unwrap_or_default();
            let pe = |(i, item): (usize, &Value)| {
                item_element(kind, item, i, path).unwrap_or(PathElement::Index(i))
            };
            items
                .iter()
                .enumerate()
                .map(pe)
                .zip(items.clone())
                .collect()
        };
        let (oi, ni) = (index(old), index(new));
        let mut seen: Vec<&PathElement> = Vec::new();
        for (pe, _) in oi.iter().chain(ni.iter()) {
            if seen.contains(&pe) {
                continue;
            }
            seen.push(pe);
            let o: Vec<&Value> = oi.iter().filter(|(p, _)| p == pe).map(|(_, v)| v).collect();
            let n: Vec<&Value> = ni.iter().filter(|(p, _)| p == pe).map(|(_, v)| v).collect();
            let ip = with(path, pe.clone());
            if o.len() > 1 || n.len() > 1 {
                out.modified.insert(&ip);
            } else {
                compare_by_paths(o.first().copied(), n.first().copied(), item_shape, &ip, out);
            }
        }
    }
    if old.is_none() {
        out.added.insert(path);
    } else if new.is_none() {
        out.removed.insert(path);
    }
}

const KEYS: &[&str] = &[
    "metadata",
    "spec",
    "status",
    "labels",
    "finalizers",
    "ownerReferences",
    "uid",
    "containers",
    "initContainers",
    "name",
    "image",
    "ports",
    "containerPort",
    "protocol",
    "env",
    "value",
    "valueFrom",
    "fieldRef",
    "template",
    "conditions",
    "type",
    "nodeSelector",
    "items",
    "a",
    "b",
];

/// A random value; objects use names the shapes know, so lists and structs are hit.
fn value(rng: &mut ChaCha8Rng, depth: u32) -> Value {
    let scalar = |rng: &mut ChaCha8Rng| match rng.random_range(0..5) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => [json!(0), json!(1), json!(2), json!(1.0)][rng.random_range(0..4)].clone(),
        3 => json!(["x", "y", "TCP"][rng.random_range(0..3)]),
        _ => json!(KEYS[rng.random_range(0..KEYS.len())]),
    };
    if depth == 0 {
        return scalar(rng);
    }
    match rng.random_range(0..6) {
        0..=2 => {
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..5) {
                let k = KEYS[rng.random_range(0..KEYS.len())];
                m.insert(k.into(), value(rng, depth - 1));
            }
            Value::Object(m)
        }
        3..=4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| value(rng, depth - 1))
                .collect(),
        ),
        _ => scalar(rng),
    }
}

/// `v` with some of its values replaced, dropped or added.
fn mutate(rng: &mut ChaCha8Rng, v: &Value, depth: u32) -> Value {
    if rng.random_range(0..8) == 0 {
        return value(rng, depth);
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, cv) in m {
                if rng.random_range(0..6) != 0 {
                    out.insert(k.clone(), mutate(rng, cv, depth.saturating_sub(1)));
                }
            }
            if rng.random_range(0..4) == 0 {
                let k = KEYS[rng.random_range(0..KEYS.len())];
                out.insert(k.into(), value(rng, depth.saturating_sub(1)));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                if rng.random_range(0..5) != 0 {
                    out.push(mutate(rng, i, depth.saturating_sub(1)));
                }
                // Another item like this one: often the same key, a duplicate.
                if rng.random_range(0..6) == 0 {
                    out.push(mutate(rng, i, depth.saturating_sub(1)));
                }
            }
            Value::Array(out)
        }
        other => other.clone(),
    }
}

/// A custom resource schema with a map list, a set and an atomic map.
pub(crate) fn schema() -> Value {
    json!({"properties": {"spec": {"properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map",
                  "x-kubernetes-list-map-keys": ["name"], "items": {"properties": {
                      "name": {"type": "string"}, "value": {"type": "string", "default": "d"}}}},
        "labels": {"type": "array", "x-kubernetes-list-type": "set"},
        "nodeSelector": {"x-kubernetes-map-type": "atomic"}}}}})
}

/// `n` seeded cases: a shape (Pod, Job, ConfigMap, custom with `schema`, custom without a
/// schema) and an old and a new object, mostly mutations of an object of the fields the
/// shapes know.
pub(crate) fn cases(schema: &Value, n: usize) -> Vec<(Shape<'_>, Value, Value)> {
    let shapes = [
        root("", "Pod"),
        root("batch", "Job"),
        root("", "ConfigMap"),
        Some(root_or_custom("example.com", "Widget", Some(schema))),
        Some(root_or_custom("example.com", "Gadget", None)),
    ];
    let template = json!({
        "apiVersion": "v1", "kind": "K",
        "metadata": {"name": "n", "uid": "u", "labels": {"a": "x"}, "finalizers": ["a", "b"],
                     "ownerReferences": [{"uid": "1", "name": "x"}]},
        "spec": {
            "containers": [{"name": "x", "image": "i",
                "ports": [{"containerPort": 1}, {"containerPort": 1, "protocol": "UDP"}],
                "env": [{"name": "a", "value": "x"}, {"name": "b", "valueFrom": {"fieldRef": {"a": 1}}}]}],
            "nodeSelector": {"a": "x"},
            "template": {"metadata": {"labels": {}}, "spec": {"containers": [{"name": "y"}]}},
            "items": [{"name": "a"}, {"name": "b", "value": "x"}],
            "labels": ["x", "y"],
        },
        "status": {"conditions": [{"type": "a"}, {"type": "b", "a": null}]},
    });
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    (0..n)
        .map(|case| {
            let shape = shapes[case % shapes.len()].unwrap_or(Shape::Plain);
            let old = match case % 3 {
                0 => value(&mut rng, 5),
                _ => mutate(&mut rng, &template, 5),
            };
            let new = mutate(&mut rng, &old, 5);
            (shape, old, new)
        })
        .collect()
}

#[test]
fn level_by_level_walks_equal_the_walks_by_full_paths() {
    let schema = schema();
    let (mut nonempty, mut keyed_items, mut inexact) = (0, 0, 0);
    for (shape, old, new) in cases(&schema, 4000) {
        let mut want = Comparison::default();
        compare_by_paths(Some(&old), Some(&new), shape, &Vec::new(), &mut want);
        let got = compare(Some(&old), Some(&new), shape);
        assert_eq!(got, want, "compare of {old} and {new}");
        let c = changes(Some(&old), Some(&new), shape);
        assert_eq!(
            (&c.changed, &c.removed),
            (&want.changed(), &want.removed),
            "changes of {old} and {new}"
        );
        match changed_fields_v1(Some(&old), Some(&new), shape) {
            Some(v1) => assert_eq!(
                Value::Object(v1),
                c.changed.to_fields_v1(),
                "FieldsV1 of {old} and {new}"
            ),
            None => inexact += 1,
        }
        if !want.is_same() {
            nonempty += 1;
        }
        let keyed = |p: &Path| p.iter().any(|pe| matches!(pe, PathElement::Key(_)));
        if want.changed().paths().iter().any(keyed) {
            keyed_items += 1;
        }
        let mut want_set = FieldSet::new();
        set_by_paths(&new, shape, &Vec::new(), &mut want_set);
        if let Ok(set) = to_field_set(&new, shape) {
            assert_eq!(set, want_set, "fields of {new}");
        }
        // The in-place set operations are the copying ones.
        let (a, b) = (want.changed(), want_set);
        let mut d = a.clone();
        d.subtract(&b);
        assert_eq!(d, a.difference(&b));
        let mut u = a.clone();
        u.extend(b.clone());
        assert_eq!(u, a.union(&b));
    }
    // The generator makes real differences, not only equal pairs, reaches keyed items, and
    // (rarely) items keyed by a float, which leave the FieldsV1 to the set.
    assert!(
        nonempty > 1000 && keyed_items > 200 && (1..100).contains(&inexact),
        "{nonempty} {keyed_items} {inexact}"
    );
}
