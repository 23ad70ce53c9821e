//! The garbage collector through `kube::Client`: background, foreground and orphan
//! propagation, blockOwnerDeletion, and owners in another namespace.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::json::json;
use cmdreporter_fake_cluster::resources::well_known;
use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

const LIMIT: Duration = Duration::from_secs(600);

async fn cm(
    cluster: &FakeCluster,
    ns: &str,
    name: &str,
    owner: Option<(&ConfigMap, bool)>,
    finalizer: bool,
) -> ConfigMap {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), ns);
    let mut obj = json!({"metadata": {"name": name}});
    if let Some((o, block)) = owner {
        obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
            "name": o.metadata.name, "uid": o.metadata.uid, "blockOwnerDeletion": block}]);
    }
    if finalizer {
        obj["metadata"]["finalizers"] = json!(["test/hold"]);
    }
    api.create(
        &PostParams::default(),
        &cmdreporter_fake_cluster::json::from_value(obj).unwrap(),
    )
    .await
    .unwrap()
}

fn exists(cluster: &FakeCluster, ns: &str, name: &str) -> bool {
    cluster
        .store()
        .get(well_known::configmaps(), ns, name)
        .is_ok()
}

async fn release(cluster: &FakeCluster, name: &str) {
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn background_deletes_dependents_after_the_owner() {
    let cluster = cluster().await;
    let owner = cm(&cluster, "default", "owner", None, false).await;
    cm(&cluster, "default", "dep", Some((&owner, false)), false).await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert!(!exists(&cluster, "default", "owner"));
    wait_until(&cluster, LIMIT, || !exists(&cluster, "default", "dep")).await;
}

#[tokio::test(start_paused = true)]
async fn orphan_keeps_dependents_without_the_reference() {
    let cluster = cluster().await;
    let owner = cm(&cluster, "default", "owner", None, false).await;
    cm(&cluster, "default", "dep", Some((&owner, true)), false).await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    wait_until(&cluster, LIMIT, || !exists(&cluster, "default", "owner")).await;
    let dep = api.get("dep").await.unwrap();
    assert!(dep.metadata.owner_references.is_none());
}

#[tokio::test(start_paused = true)]
async fn foreground_waits_for_blocking_dependents_only() {
    let cluster = cluster().await;
    let owner = cm(&cluster, "default", "owner", None, false).await;
    // A blocking dependent held by a finalizer, and a non-blocking one held the same way.
    cm(&cluster, "default", "blocking", Some((&owner, true)), true).await;
    cm(&cluster, "default", "loose", Some((&owner, false)), true).await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    api.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || {
        cluster
            .store()
            .get(well_known::configmaps(), "default", "blocking")
            .is_ok_and(|d| d.pointer("/metadata/deletionTimestamp").is_some())
    })
    .await;
    let o = api.get("owner").await.unwrap();
    assert!(o.metadata.deletion_timestamp.is_some());
    assert_eq!(
        o.metadata.finalizers.unwrap(),
        vec!["foregroundDeletion".to_owned()]
    );
    // Only the blocking dependent holds the owner back.
    release(&cluster, "blocking").await;
    wait_until(&cluster, LIMIT, || !exists(&cluster, "default", "owner")).await;
    assert!(exists(&cluster, "default", "loose"));
    release(&cluster, "loose").await;
    assert!(!exists(&cluster, "default", "loose"));
}

#[tokio::test(start_paused = true)]
async fn an_owner_in_another_namespace_reads_as_absent() {
    let cluster = cluster().await;
    cluster.create_namespace("other");
    let owner = cm(&cluster, "default", "owner", None, false).await;
    cm(&cluster, "other", "stray", Some((&owner, false)), false).await;
    cm(&cluster, "default", "kept", Some((&owner, false)), false).await;
    wait_until(&cluster, LIMIT, || !exists(&cluster, "other", "stray")).await;
    assert!(exists(&cluster, "default", "kept"));
    assert!(exists(&cluster, "default", "owner"));
}

#[tokio::test(start_paused = true)]
async fn deleting_a_job_in_the_background_leaves_no_pod() {
    use k8s_openapi::api::batch::v1::Job;
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    jobs.create(&PostParams::default(), &job("j", "sleep", json!({})))
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || count(&cluster, well_known::pods()) == 1).await;
    jobs.delete("j", &DeleteParams::background()).await.unwrap();
    wait_until(&cluster, LIMIT, || {
        count(&cluster, well_known::pods()) == 0 && count(&cluster, well_known::jobs()) == 0
    })
    .await;
}
