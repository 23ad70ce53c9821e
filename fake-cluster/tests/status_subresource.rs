//! What a write to the `status` subresource may change besides the status, per resource,
//! through the real `kube::Client` (`Api::replace_status`, `Api::patch_status`), as each
//! real registry's status strategy decides it (Kubernetes 1.33):
//!
//! - Pods (`podStatusStrategy.PrepareForUpdate`): labels, annotations and finalizers change;
//!   spec and ownerReferences stay as stored.
//! - Jobs, Namespaces, Nodes (`jobStatusStrategy`, `namespaceStatusStrategy`,
//!   `nodeStatusStrategy`): all of the metadata may change, ownerReferences included; the
//!   spec stays.
//! - CustomResourceDefinitions: the same (their `ResetObjectMetaForStatus` call is a no-op,
//!   kubernetes#137681).
//! - Custom resources (`customresource` `statusStrategy.PrepareForUpdate`): the status only.
//!
//! On all of them uid, creationTimestamp, generation and the deletion fields stay
//! (`rest.BeforeUpdate`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::json::json;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A custom resource with a status subresource.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Gizmo",
    namespaced,
    status = "GizmoStatus"
)]
pub struct GizmoSpec {
    size: i64,
}

/// The gizmo's status.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct GizmoStatus {
    ready: bool,
}

fn from<T: DeserializeOwned>(v: cmdreporter_fake_cluster::json::Value) -> T {
    cmdreporter_fake_cluster::json::from_value(v).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn cluster() -> FakeCluster {
    let rt = cmdreporter_fake_cluster::ScriptedRuntime::new();
    rt.image("app:1", common::app_image());
    FakeCluster::builder()
        .seed(5)
        .scripted(rt)
        .crd::<Gizmo>()
        .build()
        .await
        .unwrap()
}

/// A ConfigMap to point ownerReferences at.
async fn owner(c: &FakeCluster) -> ConfigMap {
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "owner"}})),
    )
    .await
    .unwrap()
}

fn owner_ref(o: &ConfigMap) -> cmdreporter_fake_cluster::json::Value {
    json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": o.name_any(),
        "uid": o.meta().uid.clone().unwrap()}])
}

#[tokio::test]
async fn a_pod_status_write_changes_labels_annotations_finalizers_not_spec_or_owners() {
    let c = cluster().await;
    let o = owner(&c).await;
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    // For a scheduler that is not running: nothing else writes the pod.
    let created = pods
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "p", "labels": {"a": "1"}},
                "spec": {"schedulerName": "elsewhere",
                    "containers": [{"name": "c", "image": "app:1"}]}})),
        )
        .await
        .unwrap();
    let mut body = created.clone();
    body.metadata.labels = Some(labels(&[("b", "2")]));
    body.metadata.annotations = Some(labels(&[("note", "x")]));
    body.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    body.metadata.owner_references = Some(from(owner_ref(&o)));
    body.metadata.generation = Some(9);
    body.spec.as_mut().unwrap().active_deadline_seconds = Some(5);
    body.status.as_mut().unwrap().message = Some("hello".into());
    let put = pods
        .replace_status("p", &PostParams::default(), &body)
        .await
        .unwrap();
    assert_eq!(
        put.status.as_ref().unwrap().message.as_deref(),
        Some("hello")
    );
    assert_eq!(put.labels(), &labels(&[("b", "2")]));
    assert_eq!(put.annotations(), &labels(&[("note", "x")]));
    assert_eq!(put.finalizers(), ["example.com/hold"]);
    assert_eq!(put.metadata.owner_references, None, "ownerReferences stay");
    assert_eq!(put.spec, created.spec, "the spec stays");
    assert_eq!(put.metadata.uid, created.metadata.uid);
    assert_eq!(put.metadata.generation, created.metadata.generation);
    assert_eq!(
        put.status.as_ref().unwrap().qos_class.as_deref(),
        Some("BestEffort")
    );
    // A merge patch of the status: the same rules.
    let patched = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"c": "3"}},
                "status": {"reason": "Testing"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.labels(), &labels(&[("b", "2"), ("c", "3")]));
    assert_eq!(
        patched.status.as_ref().unwrap().reason.as_deref(),
        Some("Testing")
    );
    // A terminating pod: a status patch adding a finalizer is refused; one removing the
    // last finalizer deletes it, as an update of the main resource would.
    let marked = pods
        .delete("p", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    let err = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}),
            ),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("no new finalizers"),
        "{}",
        status.message
    );
    pods.patch_status(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(pods.get_opt("p").await.unwrap().is_none());
}

#[tokio::test]
async fn a_job_status_write_changes_its_metadata_owner_references_included() {
    let c = cluster().await;
    let o = owner(&c).await;
    let jobs: Api<Job> = Api::default_namespaced(c.client());
    let created = jobs
        .create(
            &PostParams::default(),
            &common::job("j", "0", json!({"suspend": true})),
        )
        .await
        .unwrap();
    let patched = jobs
        .patch_status(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"},
                "ownerReferences": owner_ref(&o)},
                "spec": {"parallelism": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.labels().get("team").map(String::as_str), Some("a"));
    let refs = patched.owner_references();
    assert_eq!(refs.len(), 1);
    assert_eq!(Some(&refs[0].uid), o.meta().uid.as_ref());
    assert_eq!(
        patched.spec.as_ref().unwrap().parallelism,
        created.spec.as_ref().unwrap().parallelism,
        "the spec stays"
    );
    assert_eq!(patched.metadata.generation, Some(1));
}

#[tokio::test]
async fn namespace_and_node_status_writes_change_their_labels() {
    let c = cluster().await;
    let namespaces: Api<Namespace> = Api::all(c.client());
    let created = namespaces
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "team"}})),
        )
        .await
        .unwrap();
    let mut body = created.clone();
    body.metadata.labels = Some(labels(&[("tier", "gold")]));
    body.spec = Some(from(json!({"finalizers": []})));
    let put = namespaces
        .replace_status("team", &PostParams::default(), &body)
        .await
        .unwrap();
    assert_eq!(put.labels().get("tier").map(String::as_str), Some("gold"));
    assert_eq!(put.spec, created.spec, "spec.finalizers stay");
    // The phase follows the deletionTimestamp (ValidateNamespaceStatusUpdate).
    let mut terminating = put.clone();
    terminating.status.as_mut().unwrap().phase = Some("Terminating".into());
    let err = namespaces
        .replace_status("team", &PostParams::default(), &terminating)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            422,
            "Namespace \"team\" is invalid: status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
        )
    );
    let nodes: Api<Node> = Api::all(c.client());
    let node = nodes.list(&Default::default()).await.unwrap().items[0].name_any();
    let patched = nodes
        .patch_status(
            &node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"zone": "z1"}},
                "spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.labels().get("zone").map(String::as_str), Some("z1"));
    assert_eq!(
        patched.spec.and_then(|s| s.unschedulable),
        None,
        "the spec stays"
    );
}

#[tokio::test]
async fn a_custom_resource_status_write_changes_the_status_only_its_definition_more() {
    let c = cluster().await;
    let gizmos: Api<Gizmo> = Api::default_namespaced(c.client());
    let mut g = Gizmo::new("g", GizmoSpec { size: 1 });
    g.metadata.labels = Some(labels(&[("a", "1")]));
    gizmos.create(&PostParams::default(), &g).await.unwrap();
    let patched = gizmos
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"a": "2"}, "finalizers": ["example.com/x"]},
                "spec": {"size": 7}, "status": {"ready": true}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.status, Some(GizmoStatus { ready: true }));
    assert_eq!(patched.labels(), &labels(&[("a", "1")]), "labels stay");
    assert!(patched.finalizers().is_empty(), "finalizers stay");
    assert_eq!(patched.spec.size, 1);
    // The definition's own /status lets the metadata through.
    let crds: Api<CustomResourceDefinition> = Api::all(c.client());
    let crd = crds
        .patch_status(
            "gizmos.example.com",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"owner": "me"}}})),
        )
        .await
        .unwrap();
    assert_eq!(crd.labels().get("owner").map(String::as_str), Some("me"));
}
