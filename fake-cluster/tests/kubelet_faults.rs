//! Seeded kubelet faults, on the scripted runtime under paused time: a container killed by
//! a signal, a pod evicted, a second pod for the same Job; the same seed gives the same
//! faults for the same pods.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::faults::{DUPLICATE_OF, Fault, FaultPlan, KubeletFault};
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::store::ChangeType;
use cmdreporter_fake_cluster::{FakeCluster, ScriptedRuntime};
use common::{app_image, job, job_has, wait_until};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(600);

async fn cluster(plan: FaultPlan) -> FakeCluster {
    let rt = ScriptedRuntime::new();
    rt.image("app:1", app_image());
    FakeCluster::builder()
        .scripted(rt)
        .seed(7)
        .faults(plan)
        .build()
        .await
        .unwrap()
}

async fn create(cluster: &FakeCluster, j: Job) {
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    jobs.create(&PostParams::default(), &j).await.unwrap();
}

fn pods(cluster: &FakeCluster) -> Vec<Value> {
    let (pods, _) = cluster.store().list(well_known::pods(), Some("default"));
    pods.iter().map(|p| (**p).clone()).collect()
}

fn finished(cluster: &FakeCluster, name: &str) -> bool {
    job_has(cluster, name, "Complete") || job_has(cluster, name, "Failed")
}

#[tokio::test(start_paused = true)]
async fn a_container_killed_by_a_signal_reports_128_plus_n() {
    let cluster = cluster(FaultPlan::new(7).kubelet(1.0, KubeletFault::Signal(9))).await;
    create(&cluster, job("killed", "0", json!({}))).await;
    wait_until(&cluster, LIMIT, || finished(&cluster, "killed")).await;
    assert!(job_has(&cluster, "killed", "Failed"));
    let pod = pods(&cluster).pop().unwrap();
    assert_eq!(pod["status"]["phase"], "Failed");
    let t = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 137);
    assert_eq!(t["reason"], "Error");
    assert!(t.get("signal").is_none(), "{t}");
    let faults = cluster.injected_faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].verb, "kubelet");
    assert_eq!(faults[0].fault, Fault::Kubelet(KubeletFault::Signal(9)));
    assert_eq!(
        faults[0].path,
        format!(
            "/api/v1/namespaces/default/pods/{}",
            pod["metadata"]["name"].as_str().unwrap()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn an_evicted_pod_is_failed_with_reason_evicted() {
    let cluster = cluster(FaultPlan::new(7).kubelet(1.0, KubeletFault::Evict)).await;
    create(&cluster, job("evicted", "0", json!({}))).await;
    wait_until(&cluster, LIMIT, || finished(&cluster, "evicted")).await;
    assert!(job_has(&cluster, "evicted", "Failed"));
    let pod = pods(&cluster).pop().unwrap();
    assert_eq!(pod["status"]["phase"], "Failed");
    assert_eq!(pod["status"]["reason"], "Evicted");
    let disruption = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .cloned()
        .unwrap();
    assert_eq!(disruption["status"], "True");
    assert_eq!(disruption["reason"], "TerminationByKubelet");
    // The app container never started.
    assert!(
        pod["status"]["containerStatuses"][0]["state"]
            .get("waiting")
            .is_some()
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_pod_for_the_same_job_is_deleted_by_the_job_controller() {
    let cluster = cluster(FaultPlan::new(7).kubelet(1.0, KubeletFault::DuplicatePod)).await;
    // The first pod runs long enough for the controller to see both pods active.
    create(&cluster, job("twice", "sleep", json!({}))).await;
    let is_dup = |p: &Value| {
        p.pointer("/metadata/annotations")
            .and_then(|a| a.get(DUPLICATE_OF))
            .is_some()
    };
    // Every pod seen, from the store's change stream, until the duplicate is deleted.
    let mut changes = cluster.store().subscribe_controller();
    let mut seen: Vec<Value> = Vec::new();
    let watch = async {
        while let Some(c) = changes.recv().await {
            if c.resource != well_known::pods() {
                continue;
            }
            if !seen
                .iter()
                .any(|p| p["metadata"]["uid"] == c.object["metadata"]["uid"])
            {
                seen.push((*c.object).clone());
            }
            if c.kind == ChangeType::Deleted && is_dup(&c.object) {
                return;
            }
        }
    };
    tokio::time::timeout(LIMIT, watch).await.unwrap();
    let (dups, originals): (Vec<&Value>, Vec<&Value>) = seen.iter().partition(|p| is_dup(p));
    assert_eq!((dups.len(), originals.len()), (1, 1));
    assert_eq!(
        dups[0]["metadata"]["annotations"][DUPLICATE_OF],
        originals[0]["metadata"]["uid"]
    );
    for p in &seen {
        assert_eq!(p["metadata"]["labels"]["job-name"], "twice");
        assert_eq!(p["metadata"]["ownerReferences"][0]["name"], "twice");
    }
    let dup_name = dups[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let original = originals[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    // One pod too many for parallelism 1: the newer, earlier-stage one went, its tracking
    // finalizer removed first, so it is not counted as a failure.
    let events = common::events_of(&cluster, "twice").await;
    assert!(
        events.contains(&(
            "SuccessfulDelete".into(),
            format!("Deleted pod: {dup_name}")
        )),
        "{events:?}"
    );
    let remaining = pods(&cluster);
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["metadata"]["name"], original.as_str());
    assert!(remaining[0]["metadata"].get("deletionTimestamp").is_none());
    let j = cluster
        .store()
        .get(well_known::jobs(), "default", "twice")
        .unwrap();
    assert!(j["status"].get("failed").is_none(), "{}", j["status"]);
    assert_eq!(j["status"]["active"], 1);
    // Only the first pod drew a fault: the second draws none.
    assert_eq!(cluster.injected_faults().len(), 1);
}

/// Several Jobs under a mixed plan: (pod path, fault) in order, and the pods' end states.
async fn mixed(seed: u64) -> (Vec<(String, Fault)>, Vec<(String, Value)>) {
    let plan = FaultPlan::new(seed)
        .kubelet(0.2, KubeletFault::Signal(15))
        .kubelet(0.2, KubeletFault::Evict)
        .kubelet(0.1, KubeletFault::DuplicatePod);
    let cluster = cluster(plan).await;
    for i in 0..12 {
        create(&cluster, job(&format!("j{i}"), "0", json!({}))).await;
        let name = format!("j{i}");
        wait_until(&cluster, LIMIT, || finished(&cluster, &name)).await;
    }
    let faults = cluster
        .injected_faults()
        .into_iter()
        .map(|f| (f.path, f.fault))
        .collect();
    let mut ends: Vec<(String, Value)> = pods(&cluster)
        .into_iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_owned(),
                p["status"]["phase"].clone(),
            )
        })
        .collect();
    ends.sort_by(|a, b| a.0.cmp(&b.0));
    (faults, ends)
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_kubelet_faults() {
    let (faults, ends) = mixed(3).await;
    assert!(
        faults.len() >= 3,
        "too few faults to show anything: {faults:?}"
    );
    assert_eq!(mixed(3).await, (faults.clone(), ends));
    assert_ne!(mixed(4).await.0, faults);
}
