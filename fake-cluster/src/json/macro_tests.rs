//! `json!` against `serde_json::json!`: the same input, the same value.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{Map, Value, json};

/// Both macros on the same tokens give the same value (and the same text).
macro_rules! same {
    ($($tt:tt)+) => {{
        let ours: Value = json!($($tt)+);
        let theirs: serde_json::Value = serde_json::json!($($tt)+);
        assert_eq!(ours, theirs, "{}", stringify!($($tt)+));
        assert_eq!(ours.to_string(), theirs.to_string(), "{}", stringify!($($tt)+));
        ours
    }};
}

#[test]
fn literals_arrays_and_objects_are_serde_json_s() {
    same!(null);
    same!(true);
    same!(false);
    same!("text");
    same!("");
    same!([]);
    same!({});
    same!([null, true, false, "a", 1, -1, 0.5, [], {}]);
    same!([1, 2, 3,]);
    same!([[1, [2, [3, []]]], {"a": [{}]}]);
    same!({"a": 1, "b": [true, null], "c": {"d": {"e": "f"}},});
    same!({"a": null, "b": true, "c": false, "d": [], "e": {},});
    same!({"z": 1, "a": 2, "m": 3});
    same!({"dup": 1, "dup": 2});
    same!({"nested": {"dup": {"x": 1}, "dup": [2]}});
    same!({"": "", "a\"b": {"\n": []}, "ü": "☃"});
    // Values and elements that are expressions, among literal forms.
    same!([
        1 + 2,
        "a".len(),
        if true { "yes" } else { "no" },
        -(3_i64),
        null
    ]);
    same!({"sum": 1 + 2, "neg": -5, "cmp": 3 > 2, "last": "x".to_owned() + "y"});
    let values = [1, 2, 3];
    same!([values[0], values[1..].len(), values]);
}

#[test]
fn keys_may_be_any_expression_that_becomes_a_string() {
    let name = "n";
    let owned = String::from("owned");
    let keys = ["k0", "k1"];
    let v = same!({
        name: 1,
        owned.clone(): 2,
        &owned: 3,
        format!("{name}-{}", 7): 4,
        keys[1]: 5,
        owned.as_str().to_uppercase(): {"inner": name},
        'c': 6,
        Cow::Borrowed("cow"): 7,
        "lit": 8,
    });
    assert_eq!(v["n-7"], 4);
    assert_eq!(v["OWNED"]["inner"], "n");
    assert_eq!(v["c"], 6);
    // The key variable is borrowed or copied, never moved out of by a literal use.
    assert_eq!(owned, "owned");
}

#[test]
fn numbers_of_every_width_are_serde_json_s() {
    same!([
        i8::MIN,
        i8::MAX,
        i16::MIN,
        i16::MAX,
        i32::MIN,
        i32::MAX,
        i64::MIN,
        i64::MAX
    ]);
    same!([
        u8::MAX,
        u16::MAX,
        u32::MAX,
        u64::MAX,
        usize::MAX,
        isize::MIN,
        0_u8,
        0_i64
    ]);
    same!([
        0.0,
        -0.0,
        1.5_f32,
        0.1_f32,
        1e300,
        f64::MIN_POSITIVE,
        f64::MAX
    ]);
    same!([f64::NAN, f64::INFINITY, f32::NEG_INFINITY]);
    same!([
        1,
        1.0,
        100_000_000_000_i64,
        -1_i128,
        u128::from(u64::MAX),
        5_u128
    ]);
    same!({"i": 1_i32, "u": 2_u64, "f": 2.5, "n": serde_json::Number::from(9)});
    // A number read as one of ours is the same number as serde_json's.
    let n = same!(7_u16);
    assert!(n.is_u64() && n.is_i64());
    assert!(same!(-7_i16).is_i64());
    assert!(same!(7.0).is_f64());
}

#[test]
fn strings_options_collections_and_values_interpolate_as_serde_json_s() {
    let s: &str = "borrowed";
    let owned = String::from("owned");
    let cow: Cow<'_, str> = Cow::Owned("cow".into());
    let some: Option<&str> = Some("x");
    let none: Option<u32> = None;
    let nested: Option<Option<String>> = Some(None);
    let list = vec!["a".to_owned(), "b".to_owned()];
    let slice: &[u8] = &[1, 2];
    let options = vec![Some(1), None];
    let labels = BTreeMap::from([("b".to_owned(), "2"), ("a".to_owned(), "1")]);
    let unit = ();
    let c = 'c';
    same!([
        s, &s, owned, &owned, cow, some, none, nested, list, slice, options, labels
    ]);
    same!({"s": s, "o": owned, "c": c, "unit": unit, "tuple": (1, "two"), "ref": &&&s});
    // A value of ours (and a map, and serde_json's own value) interpolated.
    let ours = json!({"a": [1, {"b": null}]});
    let theirs = serde_json::json!({"a": [1, {"b": null}]});
    let map = ours.as_object().unwrap().clone();
    let v: Value = json!({"ours": ours, "map": map, "theirs": theirs, "list": [ours, ours]});
    assert_eq!(
        v,
        serde_json::json!({"ours": theirs, "map": theirs, "theirs": theirs,
                           "list": [theirs, theirs]})
    );
    // The interpolated value's objects are shared, not copied.
    assert!(v["ours"].as_object().unwrap().ptr_eq(&map));
    // Interpolation borrows: everything is still usable.
    assert_eq!(
        (owned.len(), list.len(), ours["a"][0].as_u64()),
        (5, 2, Some(1))
    );
}

#[derive(serde::Serialize)]
struct Custom {
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<u8>,
    tags: Vec<&'static str>,
    kind: Kind,
}

#[derive(serde::Serialize)]
enum Kind {
    Unit,
    Tuple(u8, u8),
}

#[test]
fn other_types_go_through_serialize_as_in_serde_json() {
    let c = Custom {
        name: "c",
        missing: None,
        tags: vec!["x"],
        kind: Kind::Unit,
    };
    let d = Custom {
        name: "d",
        missing: Some(1),
        tags: vec![],
        kind: Kind::Tuple(1, 2),
    };
    same!({"c": c, "d": d, "both": [c, d]});
    let meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some("m".into()),
        labels: Some(BTreeMap::from([("a".into(), "b".into())])),
        ..Default::default()
    };
    same!({"metadata": meta, "time": jiff::Timestamp::UNIX_EPOCH});
    fn generic<T: serde::Serialize>(t: &T) -> Value {
        json!({"t": t})
    }
    assert_eq!(generic(&3_u8), serde_json::json!({"t": 3}));
    assert_eq!(generic(&"s"), serde_json::json!({"t": "s"}));
}

#[test]
#[should_panic(expected = "key must be a string")]
fn a_map_with_keys_that_are_not_strings_panics_as_in_serde_json() {
    let m = BTreeMap::from([(vec![1], 2)]);
    let _ = json!({"m": m});
}

#[test]
fn a_built_object_is_an_ordinary_map() {
    let mut v = json!({"b": 1, "a": {"c": 2}});
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    let copy = v.clone();
    v["a"]["c"] = json!(3);
    assert_eq!(
        copy["a"]["c"], 2,
        "a change to one copy does not show in the other"
    );
    assert_eq!(json!({}), Value::Object(Map::new()));
    assert_eq!(json!([]), Value::Array(Vec::new()));
}
