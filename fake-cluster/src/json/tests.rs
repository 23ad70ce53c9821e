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
