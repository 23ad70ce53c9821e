//! Helpers shared by the fake cluster's integration tests.
#![allow(dead_code)]

pub mod kubectl;

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_fake_cluster::json::json;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage, ScriptedRuntime};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};

/// An image whose `/bin/app` exits with the code given as its first argument, after
/// printing its arguments; `sleep` as the first argument waits for an hour instead.
pub fn app_image() -> ScriptedImage {
    ScriptedImage::new().program("/bin/app", |ctx: ProgramContext| async move {
        let arg = ctx.argv.get(1).cloned().unwrap_or_default();
        ctx.write_stdout(format!("app {arg}\n").as_bytes()).await;
        if arg == "sleep" {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Exit::Code(0);
        }
        Exit::Code(arg.parse().unwrap_or(0))
    })
}

/// A cluster on the scripted runtime with `app:1` registered.
pub async fn cluster() -> FakeCluster {
    let rt = ScriptedRuntime::new();
    rt.image("app:1", app_image());
    FakeCluster::builder().scripted(rt).build().await.unwrap()
}

/// A cluster on `rt`.
pub async fn cluster_on(rt: Arc<ScriptedRuntime>) -> FakeCluster {
    FakeCluster::builder().scripted(rt).build().await.unwrap()
}

/// A Job running `/bin/app <arg>` in `app:1`, with extra spec fields merged in.
pub fn job(name: &str, arg: &str, extra: cmdreporter_fake_cluster::json::Value) -> Job {
    let mut j = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", arg]}]}}}
    });
    if let (Some(spec), Some(extra)) = (j["spec"].as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    cmdreporter_fake_cluster::json::from_value(j).unwrap()
}

/// Waits (without polling) until `cond` holds on the store, re-checking after each change.
/// Fails after `limit` of (virtual) time.
pub async fn wait_until(cluster: &FakeCluster, limit: Duration, mut cond: impl FnMut() -> bool) {
    let mut changes = cluster.store().subscribe_controller();
    let wait = async {
        while !cond() {
            if changes.recv().await.is_none() {
                return;
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .expect("condition not reached in time");
}

/// The Job as the API returns it.
pub async fn get_job(cluster: &FakeCluster, name: &str) -> Option<Job> {
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    jobs.get_opt(name).await.unwrap()
}

/// Whether the Job has a True condition of this type (read from the store).
pub fn job_has(cluster: &FakeCluster, name: &str, kind: &str) -> bool {
    use cmdreporter_fake_cluster::resources::well_known;
    cluster
        .store()
        .get(well_known::jobs(), "default", name)
        .ok()
        .and_then(|j| j.pointer("/status/conditions").cloned())
        .and_then(|c| c.as_array().cloned())
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

/// Pods of a Job, through the API.
pub async fn job_pods(cluster: &FakeCluster, name: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
        .await
        .unwrap()
        .items
}

/// Events about an object, as (reason, message).
pub async fn events_of(cluster: &FakeCluster, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::default_namespaced(cluster.client());
    events
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

/// Number of objects of a resource in `default` (from the store).
pub fn count(
    cluster: &FakeCluster,
    def: &'static cmdreporter_fake_cluster::resources::ResourceDef,
) -> usize {
    cluster.store().list(def, Some("default")).0.len()
}

/// The entries of an object's `metadata.managedFields` as (manager, fieldsV1).
pub fn fields_by_manager(
    obj: &cmdreporter_fake_cluster::json::Value,
) -> Vec<(String, cmdreporter_fake_cluster::json::Value)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let manager = e["manager"].as_str().unwrap_or_default().to_owned();
                    (manager, e["fieldsV1"].clone())
                })
                .collect()
        })
        .unwrap_or_default()
}
