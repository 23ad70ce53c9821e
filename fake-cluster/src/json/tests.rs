#![allow(clippy::unwrap_used)]

use super::*;

fn sample() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}, "resourceVersion": "3"},
        "spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": "K", "value": "V"}]}],
                 "n": 1, "f": 0.5, "neg": -2, "t": true, "z": null},
        "status": {"phase": "Pending", "conditions": []}
    })
}

#[test]
fn a_copy_shares_what_it_does_not_change_and_changes_only_itself() {
    let original = Value::from(sample());
    let mut copy = original.clone();
    copy["status"]["phase"] = json!("Running");
    copy["metadata"]["labels"]["x"] = json!("y");
    assert_eq!(original, sample(), "the original is as it was");
    assert_eq!(copy["status"]["phase"], "Running");
    assert_eq!(copy["metadata"]["labels"]["x"], "y");
    let shared = |v: &Value, k: &str| v[k].as_object().unwrap().clone();
    assert!(
        shared(&copy, "spec").ptr_eq(&shared(&original, "spec")),
        "spec is not copied"
    );
    assert!(!shared(&copy, "status").ptr_eq(&shared(&original, "status")));
    // Removing, retaining, iterating mutably: the original still does not change.
    let mut other = original.clone();
    other["spec"].as_object_mut().unwrap().remove("n");
    other["spec"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "f");
    for (_, v) in other["metadata"].as_object_mut().unwrap().iter_mut() {
        if v.is_string() {
            *v = json!("changed");
        }
    }
    assert_eq!(original, sample());
    assert_eq!(other["spec"].get("n"), None);
    assert_eq!(other["spec"].get("f"), None);
    assert_eq!(other["metadata"]["name"], "changed");
}

#[test]
fn it_reads_writes_and_compares_as_serde_json_does() {
    let theirs = sample();
    let ours = Value::from(theirs.clone());
    assert_eq!(ours.to_string(), theirs.to_string());
    assert_eq!(format!("{ours:#}"), format!("{theirs:#}"));
    assert_eq!(
        serde_json::to_vec(&ours).unwrap(),
        serde_json::to_vec(&theirs).unwrap()
    );
    let text = serde_json::to_string(&theirs).unwrap();
    let read: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(read, ours);
    assert_eq!(serde_json::Value::from(read.clone()), theirs);
    assert_eq!(read, theirs);
    assert_ne!(Value::from(serde_json::json!(1)), serde_json::json!(1.0));
    assert_eq!(ours["spec"]["n"], 1);
    assert_eq!(ours["spec"]["f"], 0.5);
    assert_eq!(ours["spec"]["neg"], -2);
    assert_eq!(ours["spec"]["t"], true);
    assert_eq!(ours["kind"], "Pod");
    assert_eq!(ours["kind"], *"Pod");
    assert_eq!(ours["kind"], String::from("Pod"));
    assert!(ours["spec"]["z"].is_null());
    assert!(
        ours["missing"]["deeper"].is_null(),
        "missing members index as null"
    );
    assert_eq!(ours["spec"]["containers"][0]["name"], "c");
    assert!(ours["spec"]["containers"][7].is_null());
    let m: k8s_openapi::api::core::v1::Pod = from_value(ours.clone()).unwrap();
    assert_eq!(to_value(&m).unwrap()["spec"]["containers"][0]["image"], "i");
}

#[test]
fn pointers_and_index_writes_follow_serde_json() {
    let theirs = serde_json::json!({"a/b": {"~c": [10, {"d": 1}]}, "": 2});
    let ours = Value::from(theirs.clone());
    for p in [
        "",
        "/a~1b",
        "/a~1b/~0c",
        "/a~1b/~0c/1/d",
        "/",
        "/a~1b/~0c/01",
        "/a~1b/~0c/+1",
        "x",
        "/nope",
    ] {
        assert_eq!(
            ours.pointer(p).map(|v| serde_json::Value::from(v.clone())),
            theirs.pointer(p).cloned(),
            "{p}"
        );
    }
    let mut v = Value::Null;
    v["a"]["b"] = json!(1);
    assert_eq!(v, serde_json::json!({"a": {"b": 1}}));
    *v.pointer_mut("/a/b").unwrap() = json!([1, 2]);
    v["a"]["b"][1] = json!(3);
    assert_eq!(v, serde_json::json!({"a": {"b": [1, 3]}}));
    assert_eq!(
        v.get_mut("a")
            .and_then(|a| a.get_mut("b"))
            .map(|b| b.take()),
        Some(json!([1, 3]))
    );
    assert_eq!(v, serde_json::json!({"a": {"b": null}}));
}

#[test]
#[should_panic(expected = "cannot access key")]
fn a_key_of_a_string_panics_as_in_serde_json() {
    let mut v = json!("s");
    v["k"] = json!(1);
}

#[test]
fn debug_text_is_serde_json_s() {
    let theirs = serde_json::json!({"a": [1, -2, 0.5, "s\"", true, null, {}], "b": {"c": []}});
    let ours = Value::from(theirs.clone());
    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
    assert_eq!(format!("{ours:#?}"), format!("{theirs:#?}"));
    let (Value::Object(m), serde_json::Value::Object(n)) = (&ours, &theirs) else {
        unreachable!()
    };
    assert_eq!(format!("{m:?}"), format!("{n:?}"));
}

#[test]
fn maps_are_read_as_serde_json_reads_them() {
    for text in [r#"{"b": 1, "a": {"x": 2}, "b": 3}"#, "{}"] {
        let theirs: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).unwrap();
        let ours: Map = serde_json::from_str(text).unwrap();
        assert_eq!(
            Value::Object(ours),
            serde_json::Value::Object(theirs),
            "{text}"
        );
    }
    for text in ["[1]", "\"s\"", "1", "true", "null"] {
        let theirs = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
            .unwrap_err()
            .to_string();
        let ours = serde_json::from_str::<Map>(text).unwrap_err().to_string();
        assert_eq!(ours, theirs, "{text}");
    }
}

#[test]
fn numbers_compare_and_read_as_in_serde_json() {
    let theirs = serde_json::json!([0.1, 16_777_217_u64, -16_777_217_i64, 1, 1.0]);
    let ours = Value::from(theirs.clone());
    for (o, t) in ours
        .as_array()
        .unwrap()
        .iter()
        .zip(theirs.as_array().unwrap())
    {
        for f in [0.1_f32, 16_777_216.0, -16_777_216.0, 1.0] {
            assert_eq!(*o == f, *t == f, "{t} == {f}_f32");
        }
        for f in [0.1_f64, 16_777_217.0, 1.0] {
            assert_eq!(*o == f, *t == f, "{t} == {f}_f64");
        }
        for i in [1_i64, -16_777_217] {
            assert_eq!(*o == i, *t == i, "{t} == {i}");
        }
    }
    // Wide integers from a deserializer that hands them as 128 bits: in range, a number;
    // out of range, serde_json's error.
    use serde::Deserialize;
    use serde::de::IntoDeserializer;
    for n in [5_i128, -5, i128::from(u64::MAX), i128::MAX] {
        let d: serde::de::value::I128Deserializer<serde::de::value::Error> = n.into_deserializer();
        let theirs = serde_json::Value::deserialize(d).map_err(|e| e.to_string());
        let ours = Value::deserialize(d).map_err(|e| e.to_string());
        assert_eq!(ours.map(serde_json::Value::from), theirs, "{n}");
    }
    let d: serde::de::value::U128Deserializer<serde::de::value::Error> =
        u128::MAX.into_deserializer();
    assert_eq!(
        Value::deserialize(d).map_err(|e| e.to_string()),
        serde_json::Value::deserialize(d)
            .map(Value::from)
            .map_err(|e| e.to_string())
    );
}

// ---- the same random operations on a serde_json::Value and on a Value ----

use crate::encoding::tests::{random_document, random_string};
use rand::{Rng, SeedableRng};

type Theirs = serde_json::Value;

fn escaped(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The pointer of every node of `v`.
fn nodes(v: &Theirs, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match v {
        Theirs::Object(m) => {
            for (k, x) in m {
                nodes(x, &format!("{at}/{}", escaped(k)), out);
            }
        }
        Theirs::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                nodes(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A key of `m` (half the time, when it has one) or another, escapes included.
fn some_key(rng: &mut impl Rng, m: Option<&serde_json::Map<String, Theirs>>) -> String {
    if let Some(m) = m.filter(|m| !m.is_empty())
        && rng.random_bool(0.5)
    {
        return m
            .keys()
            .nth(rng.random_range(0..m.len()))
            .cloned()
            .unwrap_or_default();
    }
    const ODD: &[&str] = &["", "a/b", "~", "~1", "~0/", "0", "01"];
    if rng.random_bool(0.3) {
        ODD[rng.random_range(0..ODD.len())].to_owned()
    } else {
        random_string(rng)
    }
}

/// A random value, as ours and as theirs.
fn some_value(rng: &mut impl Rng) -> (Value, Theirs) {
    let v = random_document(rng, 3, true);
    let t = Theirs::from(v.clone());
    (v, t)
}

/// Pointers to read: every node, and some that are not there or not valid.
fn some_pointer(rng: &mut impl Rng, all: &[String]) -> String {
    let base = &all[rng.random_range(0..all.len())];
    const SUFFIX: &[&str] = &["", "", "/0", "/01", "/+1", "/-", "/~", "/~2", "/", "/a~1b"];
    let p = format!("{base}{}", SUFFIX[rng.random_range(0..SUFFIX.len())]);
    if rng.random_bool(0.05) {
        p.trim_start_matches('/').to_owned()
    } else {
        p
    }
}

/// Applies one random operation to both at the same node; asserts both answer the same.
#[allow(clippy::too_many_lines)]
fn step(rng: &mut impl Rng, ours: &mut Value, theirs: &mut Theirs) -> &'static str {
    let mut all = Vec::new();
    nodes(theirs, "", &mut all);
    // Mostly an object or an array: most operations change one.
    let containers: Vec<&String> = all
        .iter()
        .filter(|p| {
            theirs
                .pointer(p)
                .is_some_and(|v| v.is_object() || v.is_array())
        })
        .collect();
    let at = if rng.random_bool(0.8) && !containers.is_empty() {
        containers[rng.random_range(0..containers.len())].clone()
    } else {
        all[rng.random_range(0..all.len())].clone()
    };
    let (Some(o), Some(t)) = (ours.pointer_mut(&at), theirs.pointer_mut(&at)) else {
        panic!("{at} is in both");
    };
    let (vo, vt) = some_value(rng);
    let op = rng.random_range(0..13);
    match (t, op) {
        (Theirs::Object(tm), 0) => {
            let k = some_key(rng, Some(tm));
            let om = o.as_object_mut().unwrap();
            assert_eq!(
                om.insert(k.clone().into(), vo).map(Theirs::from),
                tm.insert(k, vt)
            );
            "insert"
        }
        (Theirs::Object(tm), 1) => {
            let k = some_key(rng, Some(tm));
            let om = o.as_object_mut().unwrap();
            if rng.random_bool(0.5) {
                assert_eq!(om.remove(&k).map(Theirs::from), tm.remove(&k));
            } else {
                assert_eq!(
                    om.remove_entry(&k)
                        .map(|(k, v)| (String::from(k), Theirs::from(v))),
                    tm.remove_entry(&k)
                );
            }
            "remove"
        }
        (t @ (Theirs::Object(_) | Theirs::Null), 2) => {
            // Index writes: a missing member is inserted, a null one becomes an object.
            let k = some_key(rng, t.as_object());
            let deeper = t.get(&k).is_none_or(|x| x.is_object() || x.is_null());
            if deeper && rng.random_bool(0.5) {
                let k2 = some_key(rng, t.get(&k).and_then(Theirs::as_object));
                t[&k][&k2] = vt;
                o[&k][&k2] = vo;
            } else {
                t[&k] = vt;
                o[k] = vo;
            }
            "index"
        }
        (Theirs::Array(ta), 2 | 1) if !ta.is_empty() => {
            let i = rng.random_range(0..ta.len());
            if op == 2 {
                ta[i] = vt;
                o[i] = vo;
            } else {
                assert_eq!(o.as_array_mut().unwrap().remove(i), ta.remove(i));
            }
            "array"
        }
        (Theirs::Array(ta), 0) => {
            ta.push(vt);
            o.as_array_mut().unwrap().push(vo);
            "push"
        }
        (t, 3) => {
            *t = vt;
            *o = vo;
            "pointer_mut"
        }
        (Theirs::Object(tm), 4) => {
            let n = rng.random_range(1..4);
            tm.retain(|k, v| {
                if k.len() % 3 == 0 {
                    *v = Theirs::from(k.len());
                }
                k.len() % (n + 1) != 0
            });
            o.as_object_mut().unwrap().retain(|k, v| {
                if k.len() % 3 == 0 {
                    *v = Value::from(k.len());
                }
                k.len() % (n + 1) != 0
            });
            "retain"
        }
        (Theirs::Object(tm), 5) => {
            let k = some_key(rng, Some(tm));
            let om = o.as_object_mut().unwrap();
            if rng.random_bool(0.5) {
                let a = tm.entry(k.clone()).or_insert(vt).clone();
                let b = om.entry(k).or_insert(vo).clone();
                assert_eq!(b, a);
            } else {
                tm.entry(k.clone())
                    .and_modify(|v| *v = Theirs::from("modified"))
                    .or_insert(vt);
                om.entry(k)
                    .and_modify(|v| *v = Value::from("modified"))
                    .or_insert(vo);
            }
            "entry"
        }
        (t, 6) => {
            assert_eq!(o.take(), t.take());
            "take"
        }
        (Theirs::Object(tm), 7) => {
            let (mut more_o, mut more_t) = (Map::new(), serde_json::Map::new());
            for _ in 0..rng.random_range(0..4) {
                let k = some_key(rng, Some(tm));
                let (vo, vt) = some_value(rng);
                more_o.insert(k.clone().into(), vo);
                more_t.insert(k, vt);
            }
            o.as_object_mut().unwrap().append(&mut more_o);
            tm.append(&mut more_t);
            assert!(more_o.is_empty());
            "append"
        }
        (Theirs::Object(tm), 8) => {
            for (k, v) in tm.iter_mut() {
                if v.is_string() || k.len() % 2 == 0 {
                    *v = Theirs::from(k.as_str());
                }
            }
            for (k, v) in o.as_object_mut().unwrap().iter_mut() {
                if v.is_string() || k.len() % 2 == 0 {
                    *v = Value::from(k.as_str());
                }
            }
            "iter_mut"
        }
        (Theirs::Object(tm), 9) => {
            // A copy of another node of the document placed here: both places share it
            // in ours, and later writes to either must not show in the other.
            let from = all[rng.random_range(0..all.len())].clone();
            let k = some_key(rng, Some(tm));
            let copy_t = theirs.pointer(&from).cloned().unwrap();
            let copy_o = ours.pointer(&from).cloned().unwrap();
            ours.pointer_mut(&at)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(k.clone().into(), copy_o);
            theirs
                .pointer_mut(&at)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(k, copy_t);
            "share"
        }
        (Theirs::Object(tm), 10) => {
            // A shared map taken apart: its members, in order; the original stays.
            let shared = o.as_object().unwrap().clone();
            let pairs: Vec<(String, Theirs)> = shared
                .into_iter()
                .map(|(k, v)| (String::from(k), Theirs::from(v)))
                .collect();
            assert_eq!(pairs, tm.clone().into_iter().collect::<Vec<_>>());
            let k = some_key(rng, Some(tm));
            let om = o.as_object_mut().unwrap();
            assert_eq!(
                om.get_key_value(&k)
                    .map(|(k, v)| (String::from(k), Theirs::from(v))),
                tm.get_key_value(&k).map(|(k, v)| (k.clone(), v.clone()))
            );
            if let (Some(a), Some(b)) = (om.get_mut(&k), tm.get_mut(&k)) {
                *a = vo;
                *b = vt;
            }
            "into_iter/get_mut"
        }
        (Theirs::Object(tm), 11) => {
            if rng.random_bool(0.2) {
                tm.clear();
                o.as_object_mut().unwrap().clear();
            } else {
                let k = some_key(rng, Some(tm));
                if let (Some(a), Some(b)) = (o.get_mut(&k), tm.get_mut(&k)) {
                    *a = vo;
                    *b = vt;
                }
            }
            "clear/get_mut"
        }
        _ => "none",
    }
}

/// Both are the same value, read every way the code reads them.
fn same(ours: &Value, theirs: &Theirs, rng: &mut impl Rng) {
    assert_eq!(*ours, *theirs);
    assert_eq!(Theirs::from(ours.clone()), *theirs);
    assert_eq!(ours.to_string(), theirs.to_string());
    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
    let mut all = Vec::new();
    nodes(theirs, "", &mut all);
    for _ in 0..4 {
        let p = some_pointer(rng, &all);
        assert_eq!(
            ours.pointer(&p).map(Theirs::from),
            theirs.pointer(&p).cloned(),
            "{p}"
        );
    }
}

#[test]
fn random_operations_change_a_value_as_they_change_serde_json_s_and_never_a_copy() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6901);
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for _ in 0..150 {
        let mut ours = Value::Object(Map::new());
        for _ in 0..rng.random_range(1..6) {
            ours[random_string(&mut rng)] = random_document(&mut rng, 1, true);
        }
        let mut theirs = Theirs::from(ours.clone());
        let steps = 60;
        let mut frozen: Option<(Value, Theirs)> = None;
        for i in 0..steps {
            if i == steps / 2 {
                frozen = Some((ours.clone(), theirs.clone()));
            }
            let op = step(&mut rng, &mut ours, &mut theirs);
            *counts.entry(op).or_default() += 1;
            same(&ours, &theirs, &mut rng);
            if let Some((copy, as_taken)) = &frozen {
                assert_eq!(
                    *copy,
                    *as_taken,
                    "the copy taken at step {} changed",
                    steps / 2
                );
                assert_eq!(copy.to_string(), as_taken.to_string());
            }
        }
    }
    // Every operation ran many times (the seed is fixed: this guards the generator).
    for op in [
        "insert",
        "remove",
        "index",
        "array",
        "push",
        "pointer_mut",
        "retain",
        "entry",
        "take",
        "append",
        "iter_mut",
        "share",
        "into_iter/get_mut",
        "clear/get_mut",
    ] {
        assert!(
            counts.get(op).copied().unwrap_or(0) > 50,
            "{op}: {counts:?}"
        );
    }
}
