#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Server-side apply through `kube::Client` (`Patch::Apply`, `PatchParams::apply`): field
//! managers, `metadata.managedFields` as the API server writes them, conflicts, `force`,
//! removal of fields a manager stops applying, and managers of plain writes.

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::json::{Value, json};
use http::Request;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};

async fn cluster() -> FakeCluster {
    FakeCluster::builder().build().await.unwrap()
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data})
}

/// Applies `data` to ConfigMap `cfg` as `manager`.
async fn apply(cms: &Api<ConfigMap>, manager: &str, data: Value) -> kube::Result<ConfigMap> {
    cms.patch("cfg", &PatchParams::apply(manager), &Patch::Apply(cm(data)))
        .await
}

/// The Status of an API error.
fn api_status(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("not an API error: {other:?}"),
    }
}

fn now(cluster: &FakeCluster) -> String {
    cluster.store().clock().now_rfc3339_seconds()
}

fn managed(obj: &impl serde::Serialize) -> Value {
    cmdreporter_fake_cluster::json::to_value(obj).unwrap()["metadata"]["managedFields"].clone()
}

#[tokio::test(start_paused = true)]
async fn two_appliers_share_an_object_with_managed_fields_as_the_server_writes_them() {
    let cluster = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    // The first apply creates the object.
    let t1 = now(&cluster);
    let first = cms
        .patch(
            "cfg",
            &PatchParams::apply("alpha"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cfg", "labels": {"team": "a"}}, "data": {"a": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(first.data.unwrap()["a"], "1");
    tokio::time::advance(Duration::from_secs(90)).await;
    let t2 = now(&cluster);
    assert_ne!(t1, t2);
    let second = apply(&cms, "beta", json!({"b": "2"})).await.unwrap();
    assert_eq!(
        second.data.clone().unwrap().into_iter().collect::<Vec<_>>(),
        [
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned())
        ]
    );
    assert_eq!(
        managed(&second),
        json!([
            {"manager": "alpha", "operation": "Apply", "apiVersion": "v1", "time": t1,
             "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:team": {}}}}},
            {"manager": "beta", "operation": "Apply", "apiVersion": "v1", "time": t2,
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}},
        ])
    );
    // Applying the same again is a no-op: same resourceVersion, same times.
    tokio::time::advance(Duration::from_secs(90)).await;
    let again = apply(&cms, "beta", json!({"b": "2"})).await.unwrap();
    assert_eq!(
        again.metadata.resource_version,
        second.metadata.resource_version
    );
    assert_eq!(managed(&again), managed(&second));
}

#[tokio::test(start_paused = true)]
async fn a_conflict_is_a_409_with_the_real_message_and_force_takes_the_field() {
    let cluster = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    apply(&cms, "alpha", json!({"a": "1", "b": "1"}))
        .await
        .unwrap();
    // An Update manager too: a merge patch by "editor" (the fieldManager parameter).
    cms.patch(
        "cfg",
        &PatchParams {
            field_manager: Some("editor".into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"c": "1"}})),
    )
    .await
    .unwrap();
    let err = apply(&cms, "beta", json!({"a": "2"})).await.unwrap_err();
    let status = api_status(err);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"alpha\": .data.a"
    );
    let causes = cmdreporter_fake_cluster::json::to_value(&status.details.unwrap().causes).unwrap();
    assert_eq!(
        causes,
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"alpha\"", "field": ".data.a"}])
    );
    // Two managers at once: grouped per manager, updaters named with their version.
    let err = apply(&cms, "beta", json!({"a": "2", "b": "2", "c": "2"}))
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!(
        status.message,
        "Apply failed with 3 conflicts: conflicts with \"alpha\":\n- .data.a\n- .data.b\nconflicts with \"editor\" using v1:\n- .data.c"
    );
    assert_eq!(status.details.unwrap().causes.len(), 3);
    let unchanged = cms.get("cfg").await.unwrap();
    assert_eq!(unchanged.data.unwrap()["a"], "1");

    // force: beta takes `a`; alpha keeps `b`.
    let forced = cms
        .patch(
            "cfg",
            &PatchParams::apply("beta").force(),
            &Patch::Apply(cm(json!({"a": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.clone().unwrap()["a"], "2");
    let by_manager =
        common::fields_by_manager(&cmdreporter_fake_cluster::json::to_value(&forced).unwrap());
    assert_eq!(
        by_manager,
        [
            ("alpha".to_owned(), json!({"f:data": {"f:b": {}}})),
            ("beta".to_owned(), json!({"f:data": {"f:a": {}}})),
            ("editor".to_owned(), json!({"f:data": {"f:c": {}}})),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_field_a_manager_stops_applying_goes_unless_another_owns_it() {
    let cluster = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let pp = PatchParams::apply("alpha");
    cms.patch(
        "cfg",
        &pp,
        &Patch::Apply(cm(json!({"a": "1", "b": "1", "c": "1"}))),
    )
    .await
    .unwrap();
    // beta applies `c` with the same value: shared, no conflict.
    apply(&cms, "beta", json!({"c": "1"})).await.unwrap();
    let after = cms
        .patch("cfg", &pp, &Patch::Apply(cm(json!({"a": "1"}))))
        .await
        .unwrap();
    // `b` was only alpha's: removed. `c` is still beta's: kept.
    assert_eq!(
        after.data.unwrap().into_iter().collect::<Vec<_>>(),
        [
            ("a".to_owned(), "1".to_owned()),
            ("c".to_owned(), "1".to_owned())
        ]
    );
    // An empty configuration gives up every field; the entry goes.
    let empty = cms
        .patch(
            "cfg",
            &pp,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        empty.data.clone().unwrap().keys().collect::<Vec<_>>(),
        ["c"]
    );
    let managers: Vec<Value> = managed(&empty)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].clone())
        .collect();
    assert_eq!(managers, [json!("beta")]);
}

#[tokio::test(start_paused = true)]
async fn apply_on_pods_and_jobs_merges_lists_by_key() {
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let job = |containers: Value| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": containers}}}})
    };
    let applied = jobs
        .patch(
            "j",
            &PatchParams::apply("ops"),
            &Patch::Apply(job(json!([{"name": "main", "image": "app:1",
                "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}]))),
        )
        .await
        .unwrap();
    let mf = managed(&applied);
    assert_eq!(mf.as_array().unwrap().len(), 1);
    assert_eq!(
        mf[0]["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {
            "f:restartPolicy": {},
            "f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:name": {}, "f:image": {},
                "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}},
                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
    );
    // A second manager adds an env var to the same container: no conflict, both kept.
    let two = jobs
        .patch(
            "j",
            &PatchParams::apply("sidecar-injector"),
            &Patch::Apply(job(
                json!([{"name": "main", "env": [{"name": "B", "value": "2"}]}]),
            )),
        )
        .await
        .unwrap();
    let c = &two.spec.unwrap().template.spec.unwrap().containers[0];
    let env: Vec<&str> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["A", "B"]);
    assert_eq!(c.image.as_deref(), Some("app:1"));
    // The second manager changing the image conflicts, with the item's key in the path.
    let err = jobs
        .patch(
            "j",
            &PatchParams::apply("sidecar-injector"),
            &Patch::Apply(job(
                json!([{"name": "main", "image": "app:2", "env": [{"name": "B", "value": "2"}]}]),
            )),
        )
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"ops\": .spec.template.spec.containers[name=\"main\"].image"
    );

    // Pods: tolerations are atomic, so a second applier's list conflicts as a whole.
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let pod = |tolerations: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "app:1"}], "tolerations": tolerations}})
    };
    pods.patch(
        "p",
        &PatchParams::apply("ops"),
        &Patch::Apply(pod(json!([{"key": "a", "operator": "Exists"}]))),
    )
    .await
    .unwrap();
    let err = pods
        .patch(
            "p",
            &PatchParams::apply("other"),
            &Patch::Apply(pod(json!([{"key": "b", "operator": "Exists"}]))),
        )
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"ops\": .spec.tolerations"
    );
}

#[tokio::test(start_paused = true)]
async fn plain_writes_are_updates_by_their_field_manager_or_user_agent() {
    let cluster = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let t = now(&cluster);
    let created = cms
        .create(
            &PostParams {
                field_manager: Some("creator".into()),
                ..Default::default()
            },
            &cmdreporter_fake_cluster::json::from_value(cm(json!({"a": "1"}))).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        managed(&created),
        json!([{"manager": "creator", "operation": "Update", "apiVersion": "v1", "time": t,
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}])
    );
    // A request without fieldManager: the manager is the user agent's program name.
    let req = Request::patch("/api/v1/namespaces/default/configmaps/cfg")
        .header("content-type", "application/merge-patch+json")
        .header("user-agent", "my-operator/1.2.3 (linux/amd64) abc")
        .body(serde_json::to_vec(&json!({"data": {"b": "2"}})).unwrap())
        .unwrap();
    let patched: ConfigMap = cluster.client().request(req).await.unwrap();
    let mf = managed(&patched);
    assert_eq!(mf[1]["manager"], "my-operator");
    assert_eq!(mf[1]["fieldsV1"], json!({"f:data": {"f:b": {}}}));
    // `managedFields: []` clears them; the next update then records nothing.
    let cleared = cms
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"managedFields": []}})),
        )
        .await
        .unwrap();
    assert!(cleared.metadata.managed_fields.is_none());
    let later = cms
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"c": "3"}})),
        )
        .await
        .unwrap();
    assert!(later.metadata.managed_fields.is_none());
}

#[tokio::test(start_paused = true)]
async fn apply_needs_a_field_manager_and_the_right_version() {
    let cluster = cluster().await;
    let send = |query: &str, body: Value| {
        Request::patch(format!("/api/v1/namespaces/default/configmaps/cfg{query}"))
            .header("content-type", "application/apply-patch+yaml")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap()
    };
    let err = cluster
        .client()
        .request::<ConfigMap>(send("", cm(json!({"a": "1"}))))
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let wrong = json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "cfg"}});
    let err = cluster
        .client()
        .request::<ConfigMap>(send("?fieldManager=m", wrong))
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            400,
            "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1"
        )
    );
    // force on a non-apply patch is refused.
    let req = Request::patch("/api/v1/namespaces/default/configmaps/cfg?force=true")
        .header("content-type", "application/merge-patch+json")
        .body(b"{}".to_vec())
        .unwrap();
    let err = cluster
        .client()
        .request::<ConfigMap>(req)
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!(
        status.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    // A YAML body is accepted and creates the object.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  k: v\n";
    let req = Request::patch("/api/v1/namespaces/default/configmaps/cfg?fieldManager=m")
        .header("content-type", "application/apply-patch+yaml")
        .body(yaml.as_bytes().to_vec())
        .unwrap();
    let created: ConfigMap = cluster.client().request(req).await.unwrap();
    assert_eq!(created.data.unwrap()["k"], "v");
    let journal = cluster.journal().entries();
    assert_eq!(journal.last().unwrap().status, 201);
}

#[tokio::test(start_paused = true)]
async fn the_first_apply_to_an_unmanaged_object_conflicts_with_before_first_apply() {
    let cluster = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    // `managedFields: []` on a create leaves the object without managed fields.
    let mut unmanaged = cm(json!({"a": "1"}));
    unmanaged["metadata"]["managedFields"] = json!([]);
    let created = cms
        .create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(unmanaged).unwrap(),
        )
        .await
        .unwrap();
    assert!(created.metadata.managed_fields.is_none());
    let err = apply(&cms, "m", json!({"a": "2"})).await.unwrap_err();
    let status = api_status(err);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.a"
    );
    // Applying the value it has shares it; the object's other fields stay before-first-apply's.
    let shared = apply(&cms, "m", json!({"a": "1"})).await.unwrap();
    let managers: Vec<String> =
        common::fields_by_manager(&cmdreporter_fake_cluster::json::to_value(&shared).unwrap())
            .into_iter()
            .map(|(m, _)| m)
            .collect();
    assert_eq!(managers, ["m", "before-first-apply"]);
}

#[tokio::test]
async fn custom_resources_merge_lists_as_their_schema_says() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    use kube::runtime::wait::{await_condition, conditions};
    let cluster = cluster().await;
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "rules": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "port": {"type": "integer"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "hosts": {"type": "array", "items": {"type": "string"}}}}}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "routes.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "routes", "singular": "route", "kind": "Route"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema}}]}});
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    crds.create(
        &PostParams::default(),
        &cmdreporter_fake_cluster::json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();
    await_condition(crds, "routes.example.com", conditions::is_crd_established())
        .await
        .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Route"),
        "routes",
    );
    let routes: Api<DynamicObject> = Api::namespaced_with(cluster.client(), "default", &ar);
    let route = |spec: Value| {
        Patch::Apply(
            json!({"apiVersion": "example.com/v1", "kind": "Route", "metadata": {"name": "r"}, "spec": spec}),
        )
    };
    let first = routes
        .patch(
            "r",
            &PatchParams::apply("alpha"),
            &route(json!({"rules": [{"name": "a", "port": 1}], "tags": ["t1"], "hosts": ["x"]})),
        )
        .await
        .unwrap();
    assert_eq!(
        managed(&first)[0]["fieldsV1"],
        json!({"f:spec": {"f:hosts": {}, "f:rules": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:tags": {"v:\"t1\"": {}}}})
    );
    // A map list and a set merge item by item; another manager's items stay.
    let second = routes
        .patch(
            "r",
            &PatchParams::apply("beta"),
            &route(json!({"rules": [{"name": "b", "port": 2}], "tags": ["t2"]})),
        )
        .await
        .unwrap();
    assert_eq!(
        second.data["spec"],
        json!({"rules": [{"name": "a", "port": 1}, {"name": "b", "port": 2}], "tags": ["t1", "t2"], "hosts": ["x"]})
    );
    // A list without a list type is atomic: replacing it conflicts with its owner.
    let err = routes
        .patch(
            "r",
            &PatchParams::apply("beta"),
            &route(json!({"rules": [{"name": "b", "port": 2}], "tags": ["t2"], "hosts": ["y"]})),
        )
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"alpha\": .spec.hosts"
    );
    // Strategic merge patch is not served for custom resources, as on a real server.
    let err = routes
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"hosts": ["z"]}})),
        )
        .await
        .unwrap_err();
    let status = api_status(err);
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            415,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        )
    );
}
