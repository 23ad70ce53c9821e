//! What the real registry's strategies (Kubernetes 1.33) do to a namespace and a pod, seen
//! through the real `kube::Client`:
//!
//! - A namespace's `PrepareForCreate` sets `status.phase: Active` (whatever the request
//!   gave) and appends the `kubernetes` finalizer to `spec.finalizers`; its
//!   `PrepareForUpdate` keeps the stored `spec.finalizers` (only `finalize` changes them).
//!   Its delete sets the deletionTimestamp (no grace period) and `Terminating`, and the
//!   namespace stays until its content is gone.
//! - A pod's `PrepareForCreate` sets `metadata.generation` to 1 (KEP-5067; the API
//!   server's part is not behind `PodObservedGenerationTracking`, which is off in 1.33),
//!   `PrepareForUpdate` adds one for a change of the spec, `rest.BeforeDelete` one for
//!   the first graceful marking; the binding and status writes add none.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::json::json;
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::{FakeCluster, ScriptedRuntime};
use common::{app_image, wait_until};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde::de::DeserializeOwned;

const LIMIT: Duration = Duration::from_secs(3600);

fn from<T: DeserializeOwned>(v: cmdreporter_fake_cluster::json::Value) -> T {
    cmdreporter_fake_cluster::json::from_value(v).unwrap()
}

fn finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec.clone().unwrap().finalizers.unwrap_or_default()
}

fn phase(ns: &Namespace) -> Option<String> {
    ns.status.clone().unwrap().phase
}

#[tokio::test]
async fn a_namespace_created_through_the_api_is_active_and_held_by_the_kubernetes_finalizer() {
    let c = FakeCluster::builder().seed(5).build().await.unwrap();
    let nss: Api<Namespace> = Api::all(c.client());
    let pp = PostParams::default();
    let plain = nss
        .create(&pp, &from(json!({"metadata": {"name": "plain"}})))
        .await
        .unwrap();
    assert_eq!(finalizers(&plain), ["kubernetes"]);
    assert_eq!(phase(&plain).as_deref(), Some("Active"));
    // The cluster's own namespaces are made the same way.
    let default = nss.get("default").await.unwrap();
    assert_eq!(finalizers(&default), ["kubernetes"]);
    assert_eq!(phase(&default).as_deref(), Some("Active"));
    // A finalizer given stays, `kubernetes` after it; a status given is replaced.
    let given = nss
        .create(
            &pp,
            &from(json!({"metadata": {"name": "given"},
                "spec": {"finalizers": ["example.com/x"]}, "status": {"phase": "Terminating"}})),
        )
        .await
        .unwrap();
    assert_eq!(finalizers(&given), ["example.com/x", "kubernetes"]);
    assert_eq!(phase(&given).as_deref(), Some("Active"));
    // An update of the namespace itself does not change `spec.finalizers`.
    let patched = nss
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}, "spec": {"finalizers": []}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.as_ref().unwrap()["a"], "b");
    assert_eq!(finalizers(&patched), ["kubernetes"]);

    // Deleted, it is Terminating while an object in it is held by a finalizer.
    let cms: Api<ConfigMap> = Api::namespaced(c.client(), "plain");
    cms.create(
        &pp,
        &from(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    let marked = nss
        .delete("plain", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("a namespace being deleted is answered");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, None);
    assert_eq!(phase(&marked).as_deref(), Some("Terminating"));
    assert_eq!(finalizers(&marked), ["kubernetes"]);
    // Nor can a patch of a Terminating namespace remove the finalizer: it stays.
    nss.patch(
        "plain",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let still = nss.get("plain").await.unwrap();
    assert_eq!(finalizers(&still), ["kubernetes"]);
    assert_eq!(phase(&still).as_deref(), Some("Terminating"));
    // The content gone, the namespace goes.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_until(&c, LIMIT, || {
        c.store()
            .get(well_known::namespaces(), "", "plain")
            .is_err()
    })
    .await;
}

fn generation(p: &Pod) -> Option<i64> {
    p.metadata.generation
}

#[tokio::test(start_paused = true)]
async fn a_pod_generation_starts_at_one_and_moves_with_its_spec_and_its_deletion() {
    let rt = ScriptedRuntime::new();
    rt.image("app:1", app_image());
    let c = FakeCluster::builder()
        .seed(5)
        .scripted(rt)
        .build()
        .await
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    // A generation the client sets is not kept.
    let created = pods
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "g", "generation": 7},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
                "containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", "sleep"]}]}})),
        )
        .await
        .unwrap();
    assert_eq!(generation(&created), Some(1));
    // Bound by the scheduler, its status written by the kubelet: still the first.
    wait_until(&c, LIMIT, || {
        c.store()
            .get(well_known::pods(), "default", "g")
            .is_ok_and(|p| p.pointer("/status/phase").and_then(|v| v.as_str()) == Some("Running"))
    })
    .await;
    let running = pods.get("g").await.unwrap();
    assert!(running.spec.as_ref().unwrap().node_name.is_some());
    assert_eq!(generation(&running), Some(1));
    let labelled = pods
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(generation(&labelled), Some(1), "metadata is not spec");
    let status = pods
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"message": "hello"}})),
        )
        .await
        .unwrap();
    assert_eq!(generation(&status), Some(1), "status is not spec");
    // A new image is a new generation.
    let image = pods
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "main", "image": "app:2"}]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        image.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("app:2")
    );
    assert_eq!(generation(&image), Some(2));
    // The graceful delete's first marking is one more; the kubelet's delete that ends
    // it (a shorter grace period, zero) none.
    let marked = pods
        .delete("g", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    assert_eq!(generation(&marked), Some(3));
    let mut w = pods
        .watch(
            &WatchParams::default().fields("metadata.name=g"),
            marked.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    let mut last_grace = None;
    loop {
        let e = tokio::time::timeout(LIMIT, w.next())
            .await
            .expect("no event in time")
            .expect("stream ended")
            .unwrap();
        match e {
            WatchEvent::Modified(p) => {
                assert_eq!(generation(&p), Some(3));
                last_grace = p.metadata.deletion_grace_period_seconds;
            }
            WatchEvent::Deleted(p) => {
                assert_eq!(generation(&p), Some(3));
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(last_grace, Some(0), "the kubelet's delete was seen");
}
