//! Unit tests of definitions: served versions, name conflicts, validation.

use super::*;
use crate::json::json;

fn widget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object"}},
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v1alpha1", "served": false, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
}

#[test]
fn a_definition_serves_its_served_versions_with_one_storage_version() {
    let mut crd = widget_crd();
    prepare(
        crate::resources::well_known::crds(),
        &mut crd,
        "2026-01-01T00:00:00Z",
        &[],
    );
    let served = served_versions(&crd);
    let versions: Vec<&str> = served.iter().map(|d| d.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v1beta1"]);
    assert!(
        served
            .iter()
            .all(|d| d.custom.as_ref().unwrap().storage_version == "v1")
    );
    assert!(served[0].has_subresource("scale") && served[0].has_subresource("status"));
    assert!(!served[1].has_subresource("status"));
    assert_eq!(served[0].short_names, ["wd"]);
    assert_eq!(served[0].singular, "widget");
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
}

#[test]
fn a_name_another_definition_of_the_group_accepted_is_a_conflict() {
    let crds = crate::resources::well_known::crds();
    let now = "2026-01-01T00:00:00Z";
    let mut first = widget_crd();
    prepare(crds, &mut first, now, &[]);
    let mut second = widget_crd();
    second["metadata"]["name"] = json!("gizmos.example.com");
    second["spec"]["names"] = json!({"plural": "gizmos", "kind": "Gizmo", "shortNames": ["wd"]});
    prepare(crds, &mut second, now, &[Arc::new(first.clone())]);
    let conds = &second["status"]["conditions"];
    assert_eq!(conds[0]["status"], "False");
    assert_eq!(conds[0]["reason"], "ShortNamesConflict");
    assert_eq!(conds[0]["message"], "\"wd\" is already in use");
    assert_eq!(conds[1]["status"], "False");
    assert!(served_versions(&second).is_empty(), "not served");
    let mut third = widget_crd();
    third["metadata"]["name"] = json!("things.example.com");
    third["spec"]["names"] = json!({"plural": "things", "singular": "thing", "kind": "Widget"});
    prepare(crds, &mut third, now, &[Arc::new(first)]);
    assert_eq!(third["status"]["conditions"][0]["reason"], "KindConflict");
}

#[test]
fn an_invalid_definition_names_each_bad_field() {
    let mut crd = widget_crd();
    crd["metadata"]["name"] = json!("widgets");
    crd["spec"]["scope"] = json!("Galaxy");
    crd["spec"]["versions"][1]["storage"] = json!(true);
    let fields: Vec<String> = validate_definition(&crd)
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, ["metadata.name", "spec.scope", "spec.versions"]);
    assert!(validate_definition(&widget_crd()).is_empty());
}
