//! The kubelet's status writes as a real kubelet's PLEG makes them, on the scripted runtime
//! under paused time: a container is reported running once the runtime has it running; one
//! that ends at once (before the next relist) goes straight from waiting to terminated,
//! and a pod that ends so is never Ready, ending with the terminal phase's reason.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::json::{Value, json};
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedRuntime};
use common::{app_image, wait_until};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

const LIMIT: Duration = Duration::from_secs(600);

async fn cluster() -> FakeCluster {
    let rt = ScriptedRuntime::new();
    let image = app_image().program("/bin/nap", |_ctx: ProgramContext| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Exit::Code(0)
    });
    rt.image("app:1", image);
    FakeCluster::builder().scripted(rt).build().await.unwrap()
}

/// The state (`waiting`, `running`, `terminated`) of a container in a status list.
fn state(pod: &Value, list: &str, name: &str) -> Option<String> {
    pod["status"][list]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)?
        .get("state")?
        .as_object()?
        .keys()
        .next()
        .map(String::from)
}

fn condition<'a>(pod: &'a Value, kind: &str) -> Option<&'a Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Runs a pod to its end; returns every version of it the store saw, in order.
async fn versions(cluster: &FakeCluster, spec: Value) -> Vec<Value> {
    let mut changes = cluster.store().subscribe_controller();
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let pod = json!({"metadata": {"name": "p"}, "spec": spec});
    pods.create(
        &PostParams::default(),
        &cmdreporter_fake_cluster::json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    let ended = || {
        cluster
            .store()
            .get(well_known::pods(), "default", "p")
            .is_ok_and(|p| matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
    };
    wait_until(cluster, LIMIT, ended).await;
    let mut seen = Vec::new();
    while let Ok(c) = changes.try_recv() {
        if c.resource == well_known::pods() && c.name == "p" {
            seen.push((*c.object).clone());
        }
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn a_container_that_ends_at_once_is_never_reported_running_nor_ready() {
    let cluster = cluster().await;
    let seen = versions(
        &cluster,
        json!({"restartPolicy": "Never",
               "initContainers": [{"name": "init", "image": "app:1", "command": ["/bin/app", "0"]}],
               "containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", "0"]}]}),
    )
    .await;
    let init: Vec<_> = seen
        .iter()
        .filter_map(|p| state(p, "initContainerStatuses", "init"))
        .collect();
    let main: Vec<_> = seen
        .iter()
        .filter_map(|p| state(p, "containerStatuses", "main"))
        .collect();
    assert!(!init.iter().any(|s| s == "running"), "{init:?}");
    assert!(!main.iter().any(|s| s == "running"), "{main:?}");
    assert_eq!(init.last().map(String::as_str), Some("terminated"));
    assert_eq!(main.last().map(String::as_str), Some("terminated"));
    assert!(
        seen.iter()
            .all(|p| condition(p, "Ready").is_none_or(|c| c["status"] == "False")),
        "never ready"
    );
    assert!(seen.iter().all(|p| p["status"]["phase"] != "Running"));
    // The pod's versions: created, bound, the kubelet's first status, the init container's
    // end (Initialized), the main container's end (Succeeded).
    assert_eq!(seen.len(), 5, "{seen:#?}");
    let last = seen.last().unwrap();
    assert_eq!(last["status"]["phase"], "Succeeded");
    for kind in ["Ready", "ContainersReady"] {
        let c = condition(last, kind).unwrap();
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "PodCompleted", "{kind}: {c}");
    }
    // A completed init container is ready (the real kubelet's prober manager marks a
    // regular init container that exited 0 ready); the main container is not.
    assert_eq!(last["status"]["initContainerStatuses"][0]["ready"], true);
    assert_eq!(last["status"]["containerStatuses"][0]["ready"], false);
    // Initialized of a Succeeded pod: True, reason PodCompleted, its lastTransitionTime
    // that of when the init container ended.
    let initialized = condition(last, "Initialized").unwrap();
    assert_eq!(initialized["status"], "True");
    assert_eq!(initialized["reason"], "PodCompleted", "{initialized}");
    let first_true = seen
        .iter()
        .filter_map(|p| condition(p, "Initialized"))
        .find(|c| c["status"] == "True")
        .unwrap();
    assert_eq!(
        initialized["lastTransitionTime"],
        first_true["lastTransitionTime"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_pod_whose_init_container_fails_ends_not_ready_with_reason_pod_failed() {
    let cluster = cluster().await;
    let seen = versions(
        &cluster,
        json!({"restartPolicy": "Never",
               "initContainers": [{"name": "init", "image": "app:1", "command": ["/bin/app", "1"]}],
               "containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", "0"]}]}),
    )
    .await;
    let last = seen.last().unwrap();
    assert_eq!(last["status"]["phase"], "Failed");
    // An init container that failed is not ready.
    assert_eq!(last["status"]["initContainerStatuses"][0]["ready"], false);
    for kind in ["Ready", "ContainersReady"] {
        let c = condition(last, kind).unwrap();
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "PodFailed", "{kind}: {c}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_container_that_runs_is_reported_running_and_ready_before_it_ends() {
    let cluster = cluster().await;
    let seen = versions(
        &cluster,
        json!({"restartPolicy": "Never",
               "initContainers": [{"name": "init", "image": "app:1", "command": ["/bin/app", "0"]}],
               "containers": [{"name": "main", "image": "app:1", "command": ["/bin/nap"]}]}),
    )
    .await;
    let main: Vec<_> = seen
        .iter()
        .filter_map(|p| state(p, "containerStatuses", "main"))
        .collect();
    let running = main
        .iter()
        .position(|s| s == "running")
        .expect("reported running");
    assert_eq!(main.last().map(String::as_str), Some("terminated"));
    assert!(running < main.len() - 1);
    let ready = seen
        .iter()
        .find(|p| condition(p, "Ready").is_some_and(|c| c["status"] == "True"))
        .expect("ready while it ran");
    assert_eq!(ready["status"]["phase"], "Running");
    let last = seen.last().unwrap();
    assert_eq!(last["status"]["phase"], "Succeeded");
    assert_eq!(condition(last, "Ready").unwrap()["reason"], "PodCompleted");
}

#[tokio::test(start_paused = true)]
async fn a_container_that_cannot_start_is_never_reported_running() {
    let cluster = cluster().await;
    let seen = versions(
        &cluster,
        json!({"restartPolicy": "Never",
               "containers": [{"name": "main", "image": "app:1", "command": ["/bin/missing"]}]}),
    )
    .await;
    let main: Vec<_> = seen
        .iter()
        .filter_map(|p| state(p, "containerStatuses", "main"))
        .collect();
    assert!(!main.iter().any(|s| s == "running"), "{main:?}");
    let last = seen.last().unwrap();
    let t = &last["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "StartError");
    assert_eq!(last["status"]["phase"], "Failed");
    assert_eq!(condition(last, "Ready").unwrap()["reason"], "PodFailed");
}
