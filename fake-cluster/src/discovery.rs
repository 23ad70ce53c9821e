//! Discovery and OpenAPI documents: `/version`, `/api`, `/apis`, the APIResourceLists of each
//! group version, and the OpenAPI v3 documents kubectl reads before `apply`.
//!
//! The OpenAPI v3 documents are small: one path per verb with its
//! `x-kubernetes-group-version-kind`, and the `fieldValidation` query parameter on every
//! write, which tells kubectl (1.27 and later) that the server validates fields itself, so
//! that `kubectl apply` with its default `--validate=strict` needs no client-side schema. They
//! do not advertise strategic merge patch, so kubectl computes apply patches from its
//! compiled-in types.

use crate::json::{Map, Value, json};

use crate::resources::{Registry, ResourceDef, ResourceRef};

/// The Kubernetes version the fake reports at `/version`.
pub const SERVER_VERSION: (&str, &str) = ("1", "33");

/// A stable hash of the OpenAPI documents, for the `serverRelativeURL` of `/openapi/v3`.
const OPENAPI_HASH: &str = "F4C3C1A5E0000000000000000000000000000000000000000000000000000001";

/// The `/version` document.
pub fn version() -> Value {
    let (major, minor) = SERVER_VERSION;
    json!({
        "major": major, "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64",
    })
}

/// The `/api` document (APIVersions).
pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443"}]})
}

/// Served groups (not core) with their versions, the preferred one first: a custom
/// resource's versions in the order the definition's `spec.versions` lists them (the real
/// server sorts them by Kubernetes version priority; definitions usually list them so).
fn group_versions(all: &[ResourceRef]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in all.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => {
                versions.push(r.version.clone());
            }
            Some(_) => {}
            None => groups.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    groups
}

/// The `/apis` document (APIGroupList).
pub fn api_groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = group_versions(&registry.all())
        .into_iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            let preferred = vs.first().cloned().unwrap_or(Value::Null);
            json!({"name": g, "versions": vs, "preferredVersion": preferred})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Whether `gv` (`v1`, `batch/v1`) is served.
pub fn serves_group_version(registry: &Registry, gv: &str) -> bool {
    let (group, version) = gv.rsplit_once('/').unwrap_or(("", gv));
    registry.any(|r| r.group == group && r.version == version)
}

/// The APIResourceList of one group version.
pub fn resource_list(registry: &Registry, gv: &str) -> Value {
    let resources: Vec<Value> = registry
        .all()
        .iter()
        .filter(|r| r.api_version() == gv)
        .flat_map(|r| r.discovery())
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// The path prefix of a group version: `api/v1`, `apis/batch/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The `/openapi/v3` discovery document: one entry per group version.
pub fn openapi_v3_root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for r in registry.all() {
        let p = gv_path(&r.group, &r.version);
        paths.insert(
            p.clone().into(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={OPENAPI_HASH}")}),
        );
    }
    json!({"paths": paths})
}

fn operation(def: &ResourceDef, action: &str, write: bool) -> Value {
    let mut params = vec![json!({"name": "pretty", "in": "query", "schema": {"type": "string"}})];
    if write {
        for name in ["dryRun", "fieldManager", "fieldValidation"] {
            params.push(json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}}));
        }
    }
    let mut op = json!({
        "operationId": format!("{action}{}", def.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{}", schema_name(def))}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": def.group, "version": def.version, "kind": def.kind},
    });
    if action == "patch" {
        op["requestBody"] = json!({"content": {
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}},
        }, "required": true});
    }
    op
}

/// The schema of a kind: a stub for built-in kinds; a custom resource's
/// `openAPIV3Schema` with `apiVersion`, `kind` and `metadata`, as the apiextensions server
/// publishes it (so `kubectl explain` describes its fields).
fn object_schema(def: &ResourceDef) -> Value {
    let gvk = json!([{"group": def.group, "version": def.version, "kind": def.kind}]);
    let Some(custom) = &def.custom else {
        return json!({
            "type": "object",
            "description": format!("{} of the fake cluster", def.kind),
            "x-kubernetes-group-version-kind": gvk,
        });
    };
    let mut schema = custom
        .schema
        .as_deref()
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Some(m) = schema.as_object_mut() {
        m.insert("x-kubernetes-group-version-kind".into(), gvk);
        let props = m.entry("properties").or_insert_with(|| json!({}));
        for (k, v) in [
            (
                "apiVersion",
                json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}),
            ),
            (
                "kind",
                json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}),
            ),
            (
                "metadata",
                json!({"type": "object", "description": "Standard object's metadata."}),
            ),
        ] {
            if let Some(p) = props.as_object_mut() {
                p.entry(k).or_insert(v);
            }
        }
    }
    schema
}

fn schema_name(def: &ResourceDef) -> String {
    if def.custom.is_some() {
        // `com.example.v1.Widget` for `example.com/v1` Widgets.
        let reversed: Vec<&str> = def.group.split('.').rev().collect();
        return format!("{}.{}.{}", reversed.join("."), def.version, def.kind);
    }
    let group = match def.group.as_str() {
        "" => "core",
        "events.k8s.io" => "events",
        g => g,
    };
    format!("io.k8s.api.{group}.{}.{}", def.version, def.kind)
}

/// The OpenAPI v3 document of one group version (`api/v1`, `apis/batch/v1`), or `None` if
/// it is not served.
pub fn openapi_v3_group_version(registry: &Registry, path: &str) -> Option<Value> {
    let defs: Vec<ResourceRef> = registry
        .all()
        .into_iter()
        .filter(|r| gv_path(&r.group, &r.version) == path)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for def in &defs {
        let base = format!("/{path}");
        let collection = if def.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", def.plural)
        } else {
            format!("{base}/{}", def.plural)
        };
        paths.insert(
            collection.clone().into(),
            json!({"get": operation(def, "list", false), "post": operation(def, "post", true)}),
        );
        paths.insert(
            format!("{collection}/{{name}}").into(),
            json!({
                "get": operation(def, "get", false),
                "put": operation(def, "put", true),
                "patch": operation(def, "patch", true),
                "delete": operation(def, "delete", true),
            }),
        );
        schemas.insert(schema_name(def).into(), object_schema(def));
    }
    let (major, minor) = SERVER_VERSION;
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{major}.{minor}.0")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_v3_lists_every_group_version_and_field_validation() {
        let root = openapi_v3_root(&Registry::default());
        for gv in ["api/v1", "apis/batch/v1", "apis/events.k8s.io/v1"] {
            assert!(root["paths"][gv]["serverRelativeURL"].is_string(), "{gv}");
        }
        let doc = openapi_v3_group_version(&Registry::default(), "apis/batch/v1").unwrap();
        let patch = &doc["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Job");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(openapi_v3_group_version(&Registry::default(), "apis/batch/v2").is_none());
    }

    #[test]
    fn groups_list_batch_events_and_rbac() {
        let names: Vec<String> = api_groups(&Registry::default())["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "batch",
                "events.k8s.io",
                "rbac.authorization.k8s.io",
                "apiextensions.k8s.io"
            ]
        );
    }
}
