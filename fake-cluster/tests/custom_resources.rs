//! Custom resources through `kube::Client`: definitions served and established, discovery
//! before and after, several versions with one storage version, the `status` and `scale`
//! subresources, schema validation and pruning, cluster scope, types registered in code,
//! and deleting a definition removing its objects.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::json::{Value, json};
use cmdreporter_fake_cluster::resources::well_known;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::core::Status;
use kube::discovery::Discovery;
use kube::runtime::wait::{await_condition, conditions};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A widget, as an operator would declare it.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas"
    ),
    printcolumn(name = "Size", type_ = "integer", json_path = ".spec.size")
)]
pub struct WidgetSpec {
    size: i64,
    #[serde(default)]
    replicas: i32,
}

/// What the widget controller reports.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct WidgetStatus {
    ready: bool,
    #[serde(default)]
    replicas: i32,
}

fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size, replicas: 1 })
}

fn api_error(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("not an API error: {other:?}"),
    }
}

/// A definition of `gadgets.example.com` with versions v1 (storage) and v1beta1, both
/// served, and v1alpha1 not served.
fn gadget_crd(scope: &str) -> Value {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["colour"], "properties": {
            "colour": {"type": "string", "enum": ["red", "blue"]},
            "count": {"type": "integer", "minimum": 0},
            "mode": {"type": "string", "default": "auto"},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": scope,
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"], "categories": ["all"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema},
                 "subresources": {"status": {}}, "selectableFields": [{"jsonPath": ".spec.colour"}]},
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": schema}},
                {"name": "v1alpha1", "served": false, "storage": false, "schema": {"openAPIV3Schema": schema}}]}})
}

fn gadgets(cluster: &FakeCluster, version: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", version, "Gadget"),
        "gadgets",
    );
    match ns {
        Some(ns) => Api::namespaced_with(cluster.client(), ns, &ar),
        None => Api::all_with(cluster.client(), &ar),
    }
}

fn gadget(name: &str, version: &str, spec: Value) -> DynamicObject {
    cmdreporter_fake_cluster::json::from_value(
        json!({"apiVersion": format!("example.com/{version}"), "kind": "Gadget",
        "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap()
}

async fn create_crd(cluster: &FakeCluster, crd: Value) -> CustomResourceDefinition {
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let created = crds
        .create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(crd).unwrap(),
        )
        .await
        .unwrap();
    let name = created.name_any();
    await_condition(crds, &name, conditions::is_crd_established())
        .await
        .unwrap();
    created
}

/// A cluster built with `Widget` registered, and the widget `w` in `default`.
async fn cluster_with_widget() -> (FakeCluster, Api<Widget>) {
    let cluster = FakeCluster::builder()
        .crd::<Widget>()
        .build()
        .await
        .unwrap();
    let widgets: Api<Widget> = Api::default_namespaced(cluster.client());
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    (cluster, widgets)
}

async fn served_groups(cluster: &FakeCluster) -> Vec<String> {
    let d = Discovery::new(cluster.client()).run().await.unwrap();
    d.groups().map(|g| g.name().to_owned()).collect()
}

#[tokio::test]
async fn a_derived_type_registered_in_code_is_served_with_its_status_subresource() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    let crd = cluster.register::<Widget>().unwrap();
    assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
    assert_eq!(crd["status"]["conditions"][1]["status"], "True");
    assert_eq!(crd["status"]["acceptedNames"]["shortNames"], json!(["wd"]));

    let widgets: Api<Widget> = Api::default_namespaced(cluster.client());
    // Status sent on create is dropped: the resource has a status subresource.
    let mut w = widget("w1", 3);
    w.status = Some(WidgetStatus {
        ready: true,
        replicas: 9,
    });
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.spec.size, 3);
    assert_eq!(created.status, None);
    assert_eq!(created.metadata.generation, Some(1));

    // The status subresource writes status only...
    let patched = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 100}, "status": {"ready": true, "replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.status,
        Some(WidgetStatus {
            ready: true,
            replicas: 1
        })
    );
    assert_eq!(patched.spec.size, 3, "/status ignores spec");
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "a status write is no new generation"
    );

    // ...and the main resource ignores status.
    let mut current = widgets.get("w1").await.unwrap();
    current.spec.size = 4;
    current.status = Some(WidgetStatus {
        ready: false,
        replicas: 7,
    });
    let replaced = widgets
        .replace("w1", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(replaced.spec.size, 4);
    assert_eq!(
        replaced.status,
        Some(WidgetStatus {
            ready: true,
            replicas: 1
        })
    );
    assert_eq!(replaced.metadata.generation, Some(2));

    let listed = widgets.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        cluster.register::<Widget>().unwrap_err().code,
        409,
        "the definition exists"
    );
}

#[tokio::test]
async fn the_builder_serves_derived_types_from_the_start() {
    let (cluster, widgets) = cluster_with_widget().await;
    assert_eq!(widgets.get("w").await.unwrap().spec.size, 1);
    assert!(
        served_groups(&cluster)
            .await
            .contains(&"example.com".to_owned())
    );
    assert_eq!(Widget::crd_name(), "widgets.example.com");
}

#[tokio::test]
async fn discovery_follows_definitions_as_they_come_and_go() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    assert!(
        !served_groups(&cluster)
            .await
            .contains(&"example.com".to_owned())
    );
    let raw = |path: &'static str| {
        let client = cluster.client();
        async move {
            client
                .request::<Value>(http::Request::get(path).body(Vec::new()).unwrap())
                .await
        }
    };
    assert!(raw("/apis/example.com/v1").await.is_err());

    let crd = create_crd(&cluster, gadget_crd("Namespaced")).await;
    let d = Discovery::new(cluster.client()).run().await.unwrap();
    let group = d.get("example.com").expect("group served");
    let versions: Vec<&str> = group.versions().collect();
    assert_eq!(
        versions,
        ["v1", "v1beta1"],
        "served versions, v1alpha1 not served"
    );
    assert_eq!(group.preferred_version_or_latest(), "v1");
    let (ar, caps) = group.recommended_kind("Gadget").unwrap();
    assert_eq!(ar.plural, "gadgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));

    let list = raw("/apis/example.com/v1").await.unwrap();
    let main = &list["resources"][0];
    assert_eq!(main["name"], "gadgets");
    assert_eq!(main["shortNames"], json!(["gd"]));
    assert_eq!(main["categories"], json!(["all"]));
    assert_eq!(main["singularName"], "gadget");
    assert!(raw("/apis/example.com/v1alpha1").await.is_err());

    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    crds.delete("gadgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    await_condition(
        crds,
        "gadgets.example.com",
        conditions::is_deleted(&crd.uid().unwrap()),
    )
    .await
    .unwrap();
    assert!(
        !served_groups(&cluster)
            .await
            .contains(&"example.com".to_owned())
    );
    assert!(raw("/apis/example.com/v1").await.is_err());
}

#[tokio::test]
async fn objects_are_stored_at_the_storage_version_and_read_at_any_served_version() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    create_crd(&cluster, gadget_crd("Namespaced")).await;
    let beta = gadgets(&cluster, "v1beta1", Some("default"));
    let v1 = gadgets(&cluster, "v1", Some("default"));
    let created = beta
        .create(
            &PostParams::default(),
            &gadget("g", "v1beta1", json!({"colour": "red", "count": 2})),
        )
        .await
        .unwrap();
    assert_eq!(
        created.types.as_ref().unwrap().api_version,
        "example.com/v1beta1"
    );
    let stored = cluster
        .store()
        .get(
            &cluster
                .store()
                .resources()
                .find("example.com", "v1", "gadgets")
                .unwrap(),
            "default",
            "g",
        )
        .unwrap();
    assert_eq!(
        stored["apiVersion"], "example.com/v1",
        "kept at the storage version"
    );

    let read = v1.get("g").await.unwrap();
    assert_eq!(read.types.as_ref().unwrap().api_version, "example.com/v1");
    // The schema's default is filled in on the write.
    assert_eq!(
        read.data["spec"],
        json!({"colour": "red", "count": 2, "mode": "auto"})
    );
    assert_eq!(read.metadata.uid, created.metadata.uid);
    let listed = beta.list(&Default::default()).await.unwrap();
    assert_eq!(
        listed.items[0].types.as_ref().unwrap().api_version,
        "example.com/v1beta1"
    );

    // v1beta1 has no status subresource: status is written with the object.
    let mut obj = beta.get("g").await.unwrap();
    obj.data["status"] = serde_json::json!({"phase": "Up"});
    let replaced = beta
        .replace("g", &PostParams::default(), &obj)
        .await
        .unwrap();
    assert_eq!(replaced.data["status"]["phase"], "Up");
    let err = gadgets(&cluster, "v1alpha1", Some("default"))
        .get("g")
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 404);

    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let crd = crds.get("gadgets.example.com").await.unwrap();
    assert_eq!(
        crd.status.unwrap().stored_versions,
        Some(vec!["v1".to_owned()])
    );
}

#[tokio::test]
async fn the_schema_validates_types_and_required_fields_and_prunes_unknown_ones() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    create_crd(&cluster, gadget_crd("Namespaced")).await;
    let api = gadgets(&cluster, "v1", Some("default"));
    let err = api
        .create(
            &PostParams::default(),
            &gadget("bad", "v1", json!({"count": "many"})),
        )
        .await
        .unwrap_err();
    let e = api_error(err);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "Gadget \"bad\" is invalid: [spec.colour: Required value, spec.count: Invalid value: \"string\": spec.count in body must be of type integer: \"many\"]"
    );
    let err = api
        .create(
            &PostParams::default(),
            &gadget("bad", "v1", json!({"colour": "green", "count": -1})),
        )
        .await
        .unwrap_err();
    let e = api_error(err);
    assert!(
        e.message.contains(
            "spec.colour: Unsupported value: \"green\": supported values: \"red\", \"blue\""
        ),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("spec.count in body should be greater than or equal to 0"),
        "{}",
        e.message
    );

    // Unknown fields are pruned; under x-kubernetes-preserve-unknown-fields they stay.
    let created = api
        .create(
            &PostParams::default(),
            &gadget(
                "g",
                "v1",
                json!({"colour": "blue", "shade": "dark", "extra": {"any": {"thing": 1}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"],
        json!({"colour": "blue", "extra": {"any": {"thing": 1}}, "mode": "auto"})
    );

    // Strict field validation refuses what pruning would drop.
    let err = api
        .create(
            &PostParams {
                field_manager: None,
                dry_run: false,
            },
            &gadget("h", "v1", json!({"colour": "blue", "shade": "dark"})),
        )
        .await;
    assert!(err.is_ok(), "Warn by default");
    let raw = http::Request::post(
        "/apis/example.com/v1/namespaces/default/gadgets?fieldValidation=Strict",
    )
    .header("content-type", "application/json")
    .body(
        serde_json::to_vec(&gadget(
            "i",
            "v1",
            json!({"colour": "blue", "shade": "dark"}),
        ))
        .unwrap(),
    )
    .unwrap();
    let e = api_error(cluster.client().request::<Value>(raw).await.unwrap_err());
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("unknown field \"spec.shade\""),
        "{}",
        e.message
    );

    // An update is validated too.
    let mut g = api.get("g").await.unwrap();
    g.data["spec"]["count"] = serde_json::json!(true);
    let e = api_error(
        api.replace("g", &PostParams::default(), &g)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "Gadget \"g\" is invalid: spec.count: Invalid value: \"boolean\": spec.count in body must be of type integer: true"
    );
}

#[tokio::test]
async fn the_scale_subresource_reads_and_writes_the_replicas_paths() {
    let (_cluster, widgets) = cluster_with_widget().await;
    widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true, "replicas": 1}})),
        )
        .await
        .unwrap();
    let scale = widgets.get_scale("w").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    assert_eq!(scale.status.unwrap().replicas, 1);
    assert_eq!(scale.metadata.name.as_deref(), Some("w"));

    let scaled = widgets
        .patch_scale(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    let w = widgets.get("w").await.unwrap();
    assert_eq!(w.spec.replicas, 5);
    assert_eq!(w.metadata.generation, Some(2));

    let mut scale = widgets.get_scale("w").await.unwrap();
    scale.spec.as_mut().unwrap().replicas = Some(2);
    let replaced = widgets
        .replace_scale("w", &PostParams::default(), &scale)
        .await
        .unwrap();
    assert_eq!(replaced.spec.unwrap().replicas, Some(2));
    assert_eq!(widgets.get("w").await.unwrap().spec.replicas, 2);
    // A stale resourceVersion in the Scale is a conflict.
    let e = api_error(
        widgets
            .replace_scale("w", &PostParams::default(), &scale)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
}

#[tokio::test]
async fn a_cluster_scoped_resource_has_no_namespace() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    create_crd(&cluster, gadget_crd("Cluster")).await;
    let api = gadgets(&cluster, "v1", None);
    let created = api
        .create(
            &PostParams::default(),
            &gadget("g", "v1", json!({"colour": "red"})),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.namespace, None);
    let namespaced = gadgets(&cluster, "v1", Some("default"));
    assert_eq!(api_error(namespaced.get("g").await.unwrap_err()).code, 404);
    assert_eq!(api.get("g").await.unwrap().data["spec"]["colour"], "red");
}

#[tokio::test]
async fn deleting_a_definition_deletes_its_objects_first() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    let crd = create_crd(&cluster, gadget_crd("Namespaced")).await;
    cluster.create_namespace("other");
    for ns in ["default", "other"] {
        gadgets(&cluster, "v1", Some(ns))
            .create(
                &PostParams::default(),
                &gadget("g", "v1", json!({"colour": "red"})),
            )
            .await
            .unwrap();
    }
    // One object holds the definition with a finalizer of its own.
    gadgets(&cluster, "v1", Some("other"))
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["test/hold"]}})),
        )
        .await
        .unwrap();
    // A watch on the resource, open across the deletion.
    let mut watch = gadgets(&cluster, "v1", None)
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let deleting = crds
        .delete("gadgets.example.com", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the definition stays while its objects go");
    assert!(
        deleting
            .finalizers()
            .iter()
            .any(|f| f == "customresourcecleanup.apiextensions.k8s.io")
    );
    let held = cluster
        .store()
        .resources()
        .find("example.com", "v1", "gadgets")
        .unwrap();
    await_condition(
        gadgets(&cluster, "v1", Some("default")),
        "g",
        conditions::is_deleted(""),
    )
    .await
    .unwrap();
    // No new objects while the definition is terminating.
    let e = api_error(
        gadgets(&cluster, "v1", Some("default"))
            .create(
                &PostParams::default(),
                &gadget("late", "v1", json!({"colour": "red"})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            405,
            "create not allowed while custom resource definition is terminating"
        )
    );
    let terminating = crds.get("gadgets.example.com").await.unwrap();
    let conds = terminating.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Terminating" && c.status == "True")
    );
    assert!(
        cluster.store().get(&held, "other", "g").is_ok(),
        "held by its finalizer"
    );

    gadgets(&cluster, "v1", Some("other"))
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    await_condition(
        crds,
        "gadgets.example.com",
        conditions::is_deleted(&crd.uid().unwrap()),
    )
    .await
    .unwrap();
    // The watch saw the objects go, then ended with the definition.
    let events = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut events = Vec::new();
        while let Some(e) = watch.try_next().await.unwrap() {
            events.push(e);
        }
        events
    })
    .await
    .expect("the watch ends when the definition goes");
    let deleted = events
        .iter()
        .filter(|e| matches!(e, kube::api::WatchEvent::Deleted(_)))
        .count();
    assert_eq!(deleted, 2, "{events:?}");
    assert!(cluster.store().list(&held, None).0.is_empty());
    assert!(
        cluster
            .store()
            .resources()
            .find("example.com", "v1", "gadgets")
            .is_none()
    );
    assert!(
        cluster
            .store()
            .get(well_known::crds(), "", "gadgets.example.com")
            .is_err()
    );
}

#[tokio::test]
async fn an_invalid_definition_is_refused_with_its_causes() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    let mut crd = gadget_crd("Namespaced");
    crd["metadata"]["name"] = json!("gadgets");
    crd["spec"]["versions"][1]["storage"] = json!(true);
    crd["spec"]["versions"][0]
        .as_object_mut()
        .unwrap()
        .remove("schema");
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let e = api_error(
        crds.create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(crd).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .starts_with("CustomResourceDefinition.apiextensions.k8s.io \"gadgets\" is invalid")
            || e.message
                .starts_with("CustomResourceDefinition \"gadgets\" is invalid"),
        "{}",
        e.message
    );
    for field in [
        "metadata.name",
        "spec.versions",
        "spec.versions[0].schema.openAPIV3Schema",
    ] {
        assert!(
            e.message.contains(&format!("{field}: ")),
            "{field} in {}",
            e.message
        );
    }
    assert!(
        cluster
            .store()
            .resources()
            .find("example.com", "v1", "gadgets")
            .is_none()
    );

    // Scope may not change.
    create_crd(&cluster, gadget_crd("Namespaced")).await;
    let e = api_error(
        crds.patch(
            "gadgets.example.com",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"scope": "Cluster"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("spec.scope: Invalid value: \"Cluster\": field is immutable"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_table_is_served_when_asked_for_and_plain_json_otherwise() {
    let (cluster, _widgets) = cluster_with_widget().await;
    let get = |accept: Option<&'static str>, query: &'static str| {
        let client = cluster.client();
        async move {
            let mut req = http::Request::get(format!(
                "/apis/example.com/v1/namespaces/default/widgets{query}"
            ));
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            client
                .request::<Value>(req.body(Vec::new()).unwrap())
                .await
                .unwrap()
        }
    };
    let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let table = get(Some(kubectl), "").await;
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Size"], "the derived type's printcolumn");
    assert_eq!(table["columnDefinitions"][0]["format"], "name");
    assert_eq!(table["rows"][0]["cells"], json!(["w", 1]));
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(table["rows"][0]["object"]["metadata"]["name"], "w");
    assert!(table["metadata"]["resourceVersion"].is_string());

    let with_object = get(Some(kubectl), "?includeObject=Object").await;
    assert_eq!(with_object["rows"][0]["object"]["spec"]["size"], 1);
    let without = get(Some(kubectl), "?includeObject=None").await;
    assert!(without["rows"][0].get("object").is_none());
    let one = get(Some(kubectl), "/w").await;
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);

    assert_eq!(get(None, "").await["kind"], "WidgetList");
    assert_eq!(get(Some("application/json"), "/w").await["kind"], "Widget");
}

#[tokio::test]
async fn any_static_resource_type_can_be_served_with_a_schema_given_in_code() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "maximum": 10}, "replicas": {"type": "integer"}}}}});
    let crd = cluster.register_resource::<Widget>(false, schema).unwrap();
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(crd["metadata"]["name"], "widgets.example.com");
    let widgets: Api<Widget> = Api::all(cluster.client());
    widgets
        .create(&PostParams::default(), &widget("small", 2))
        .await
        .unwrap();
    let e = api_error(
        widgets
            .create(&PostParams::default(), &widget("big", 11))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("spec.size in body should be less than or equal to 10"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn field_selectors_may_name_the_selectable_fields_of_a_definition() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    create_crd(&cluster, gadget_crd("Namespaced")).await;
    let api = gadgets(&cluster, "v1", Some("default"));
    for (name, colour) in [("a", "red"), ("b", "blue"), ("c", "red")] {
        api.create(
            &PostParams::default(),
            &gadget(name, "v1", json!({"colour": colour})),
        )
        .await
        .unwrap();
    }
    let red = api
        .list(&kube::api::ListParams::default().fields("spec.colour=red"))
        .await
        .unwrap();
    let names: Vec<String> = red.items.iter().map(|g| g.name_any()).collect();
    assert_eq!(names, ["a", "c"]);
    let not_red = api
        .list(&kube::api::ListParams::default().fields("spec.colour!=red,metadata.name!=x"))
        .await
        .unwrap();
    assert_eq!(not_red.items.len(), 1);
    // v1beta1 declares no selectable fields.
    let e = api_error(
        gadgets(&cluster, "v1beta1", Some("default"))
            .list(&kube::api::ListParams::default().fields("spec.colour=red"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: spec.colour")
    );
}

#[tokio::test]
async fn a_definition_whose_names_are_taken_in_its_group_is_not_established() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    create_crd(&cluster, gadget_crd("Namespaced")).await;
    let mut doodads = gadget_crd("Namespaced");
    doodads["metadata"]["name"] = json!("doodads.example.com");
    doodads["spec"]["names"] = json!({"plural": "doodads", "kind": "Doodad", "shortNames": ["gd"]});
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let created = crds
        .create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(doodads).unwrap(),
        )
        .await
        .unwrap();
    let status = created.status.unwrap();
    let conds = status.conditions.unwrap();
    let names = conds.iter().find(|c| c.type_ == "NamesAccepted").unwrap();
    assert_eq!(
        (
            names.status.as_str(),
            names.reason.as_deref(),
            names.message.as_deref()
        ),
        (
            "False",
            Some("ShortNamesConflict"),
            Some("\"gd\" is already in use")
        )
    );
    let established = conds.iter().find(|c| c.type_ == "Established").unwrap();
    assert_eq!(established.status, "False");
    assert!(status.accepted_names.unwrap().plural.is_empty());
    assert!(
        cluster
            .store()
            .resources()
            .find("example.com", "v1", "doodads")
            .is_none()
    );
    let list: Value = cluster
        .client()
        .request(
            http::Request::get("/apis/example.com/v1")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "doodads")
    );
}
