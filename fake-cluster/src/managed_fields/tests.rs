//! Unit tests of the field manager.

use super::*;
use crate::fieldpath::path_string;
use crate::json::json;
use crate::type_schema::root;

fn write() -> Write<'static> {
    Write {
        shape: root("", "ConfigMap").unwrap(),
        api_version: "v1".into(),
        subresource: String::new(),
        has_status: false,
        now: "2026-01-01T00:00:00Z".into(),
    }
}

#[test]
fn create_then_apply_by_another_manager_conflicts() {
    let w = write();
    let mut cm = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
    update(&w, None, &mut cm, "kubectl-create");
    assert_eq!(
        cm["metadata"]["managedFields"],
        json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}])
    );
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
    let e = apply(&w, Some(&cm), &cfg, "ssa", false).unwrap_err();
    assert_eq!(e.code, 409);
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .data.a"
    );
    let forced = apply(&w, Some(&cm), &cfg, "ssa", true).unwrap();
    assert_eq!(forced["data"]["a"], "2");
    // The updater keeps `data` itself; the applier now owns `data.a`.
    assert_eq!(
        forced["metadata"]["managedFields"],
        json!([
            {"manager": "ssa", "operation": "Apply", "apiVersion": "v1",
             "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
             "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {}}},
        ])
    );
}

#[test]
fn writes_own_no_server_metadata_and_status_only_through_its_subresource() {
    let obj = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "uid": "u", "labels": {"a": "1"}, "managedFields": []},
        "spec": {"x": 1}, "status": {"phase": "Running"}});
    let all = field_sets::to_field_set(&obj, Shape::Plain).unwrap();
    let owned = |subresource: &str, has_status: bool| {
        let mut w = write();
        w.subresource = subresource.into();
        w.has_status = has_status;
        let mut set = all.clone();
        w.filter(&mut set);
        set.paths()
            .iter()
            .map(|p| path_string(p))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        owned("", false),
        [".metadata.labels.a", ".spec.x", ".status.phase"]
    );
    assert_eq!(owned("", true), [".metadata.labels.a", ".spec.x"]);
    assert_eq!(owned("status", true), [".status.phase"]);
}

#[test]
fn a_create_writes_the_entry_the_field_sets_give() {
    let schema = crate::field_sets::reference::schema();
    let mut entries = 0;
    for (shape, _, new) in crate::field_sets::reference::cases(&schema, 2000) {
        for (subresource, has_status) in [("", false), ("", true), ("status", true)] {
            let w = Write {
                shape,
                subresource: subresource.into(),
                has_status,
                ..write()
            };
            let mut got = new.clone();
            update(&w, None, &mut got, "m");
            // The general path: the filtered set of what changed from the baseline.
            let mut want = new.clone();
            let fields = w.changes(&baseline(&new), &new).changed;
            let me = Manager {
                name: "m".into(),
                operation: Operation::Update,
                api_version: w.api_version.clone(),
                subresource: w.subresource.clone(),
                time: Some(w.now.clone()),
                fields,
            };
            encode(&mut want, vec![me]);
            assert_eq!(got, want, "{new}");
            if got.pointer("/metadata/managedFields").is_some() {
                entries += 1;
            }
        }
    }
    assert!(entries > 1000, "{entries}");
}

#[test]
fn a_field_no_longer_applied_goes() {
    let w = write();
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
    let first = apply(&w, None, &cfg, "m", false).unwrap();
    let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let second = apply(&w, Some(&first), &cfg2, "m", false).unwrap();
    assert_eq!(second["data"], json!({"a": "1"}));
    // Shared with another applier: the field stays.
    let both = apply(&w, Some(&first), &cfg, "other", false).unwrap();
    let third = apply(&w, Some(&both), &cfg2, "m", false).unwrap();
    assert_eq!(third["data"], json!({"a": "1", "b": "2"}));
}
