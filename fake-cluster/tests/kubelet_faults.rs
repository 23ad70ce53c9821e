//! Seeded kubelet faults, on the scripted runtime under paused time: a container killed by
//! a signal, a pod evicted, a second pod for the same Job (deleted by the Job controller),
//! a lost node (Unknown, tainted, its pods evicted after their tolerations); the same seed
//! gives the same faults for the same pods.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::faults::{DUPLICATE_OF, Fault, FaultPlan, KubeletFault};
use cmdreporter_fake_cluster::json::{Value, json};
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::store::ChangeType;
use cmdreporter_fake_cluster::{FakeCluster, ScriptedRuntime};
use common::{app_image, job, job_has, wait_until};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};

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
    // Failed: the real kubelet's Ready and ContainersReady carry the phase's reason.
    for kind in ["Ready", "ContainersReady"] {
        let c = pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .cloned()
            .unwrap();
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "PodFailed", "{kind}: {c}");
    }
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

fn node(cluster: &FakeCluster, name: &str) -> Value {
    (*cluster.store().get(well_known::nodes(), "", name).unwrap()).clone()
}

fn node_ready(cluster: &FakeCluster, name: &str) -> String {
    node(cluster, name)["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .unwrap()
}

fn condition(obj: &Value, kind: &str) -> Option<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|c| c["type"] == kind).cloned())
}

async fn lost_cluster(plan: FaultPlan) -> FakeCluster {
    let rt = ScriptedRuntime::new();
    rt.image("app:1", app_image());
    FakeCluster::builder()
        .scripted(rt)
        .seed(7)
        .node(json!({"metadata": {"name": "node-2"}}))
        .faults(plan)
        .build()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_lost_node_turns_unknown_and_its_pod_is_evicted_after_its_toleration() {
    use tokio::time::Instant;
    const LONG: Duration = Duration::from_secs(3600);
    let cluster = lost_cluster(FaultPlan::new(7).kubelet(1.0, KubeletFault::NodeLost)).await;
    let start = Instant::now();
    create(&cluster, job("lost", "sleep", json!({}))).await;
    let running = |c: &FakeCluster| {
        pods(c).first().is_some_and(|p| {
            p.pointer("/status/containerStatuses/0/state/running")
                .is_some()
        })
    };
    wait_until(&cluster, LONG, || running(&cluster)).await;
    let pod = pods(&cluster).pop().unwrap();
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    let node_name = pod["spec"]["nodeName"].as_str().unwrap().to_owned();
    assert_eq!(condition(&pod, "Ready").unwrap()["status"], "True");
    // DefaultTolerationSeconds admission: five minutes of not-ready and unreachable.
    let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        assert!(
            tolerations.iter().any(|t| t["key"] == key
                && t["effect"] == "NoExecute"
                && t["tolerationSeconds"] == 300),
            "{tolerations:?}"
        );
    }
    let faults = cluster.injected_faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].verb, "kubelet");
    assert_eq!(faults[0].fault, Fault::Kubelet(KubeletFault::NodeLost));
    assert!(faults[0].path.ends_with(&pod_name));

    // After the node monitor grace period the node is Unknown and tainted unreachable.
    wait_until(&cluster, LONG, || {
        node_ready(&cluster, &node_name) == "Unknown"
    })
    .await;
    let at = start.elapsed();
    assert!(
        at >= Duration::from_secs(50) && at < Duration::from_secs(52),
        "{at:?}"
    );
    let n = node(&cluster, &node_name);
    let ready = condition(&n, "Ready").unwrap();
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    let taints = n["spec"]["taints"].as_array().unwrap();
    for effect in ["NoSchedule", "NoExecute"] {
        assert!(
            taints
                .iter()
                .any(|t| t["key"] == "node.kubernetes.io/unreachable"
                    && t["effect"] == effect
                    && t.get("timeAdded").is_some()),
            "{taints:?}"
        );
    }
    // The other node still answers.
    let other = if node_name == "node-1" {
        "node-2"
    } else {
        "node-1"
    };
    assert_eq!(node_ready(&cluster, other), "True");
    // Its pod is marked not ready; the kubelet wrote nothing more (still "running").
    let deleting = |c: &FakeCluster| {
        pods(c)
            .first()
            .is_some_and(|p| p["metadata"].get("deletionTimestamp").is_some())
    };
    wait_until(&cluster, LONG, || {
        pods(&cluster)
            .first()
            .and_then(|p| condition(p, "Ready"))
            .is_some_and(|c| c["status"] == "False")
    })
    .await;
    assert!(!deleting(&cluster));

    // Evicted when the 300 s toleration runs out.
    wait_until(&cluster, LONG, || deleting(&cluster)).await;
    let at = start.elapsed();
    assert!(
        at >= Duration::from_secs(350) && at < Duration::from_secs(352),
        "{at:?}"
    );
    let pod = pods(&cluster).pop().unwrap();
    let disruption = condition(&pod, "DisruptionTarget").unwrap();
    assert_eq!(disruption["status"], "True");
    assert_eq!(disruption["reason"], "DeletionByTaintManager");
    assert_eq!(
        disruption["message"],
        "Taint manager: deleting due to NoExecute taint"
    );
    assert_eq!(pod["status"]["phase"], "Running", "no kubelet wrote an end");
    let events = common::events_of(&cluster, &pod_name).await;
    assert!(
        events.contains(&(
            "TaintManagerEviction".into(),
            format!("Marking for deletion Pod default/{pod_name}")
        )),
        "{events:?}"
    );

    // The Job counts the deleted pod failed: backoffLimit 0 is exceeded. With no kubelet
    // to finish the pod it stays terminating, so the Job stays at FailureTarget.
    wait_until(&cluster, LONG, || {
        job_has(&cluster, "lost", "FailureTarget")
    })
    .await;
    let j = cluster
        .store()
        .get(well_known::jobs(), "default", "lost")
        .unwrap();
    assert_eq!(j["status"]["failed"], 1);
    assert_eq!(
        condition(&j, "FailureTarget").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(!job_has(&cluster, "lost", "Failed"));
    assert_eq!(pods(&cluster).len(), 1, "the pod is stuck terminating");

    // Deleting the Node lets the pod garbage collector force-delete its pods.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client());
    nodes
        .delete(&node_name, &kube::api::DeleteParams::default())
        .await
        .unwrap();
    wait_until(&cluster, LONG, || pods(&cluster).is_empty()).await;
    wait_until(&cluster, LONG, || job_has(&cluster, "lost", "Failed")).await;
}

#[tokio::test(start_paused = true)]
async fn after_a_lost_node_the_job_retries_on_another_node_within_its_backoff_limit() {
    const LONG: Duration = Duration::from_secs(3600);
    // Seed 4 draws the fault for the first pod only.
    let cluster = lost_cluster(FaultPlan::new(4).kubelet(0.5, KubeletFault::NodeLost)).await;
    create(&cluster, job("retry", "0", json!({"backoffLimit": 1}))).await;
    // The lost pod is still terminating, so the Job meets its success criteria but is not
    // Complete until that pod is gone.
    wait_until(&cluster, LONG, || {
        job_has(&cluster, "retry", "SuccessCriteriaMet")
    })
    .await;
    assert!(!job_has(&cluster, "retry", "Complete"));
    assert_eq!(cluster.injected_faults().len(), 1);
    let j = cluster
        .store()
        .get(well_known::jobs(), "default", "retry")
        .unwrap();
    assert_eq!(
        (
            j["status"]["failed"].clone(),
            j["status"]["succeeded"].clone()
        ),
        (json!(1), json!(1))
    );
    let all = pods(&cluster);
    let lost_node = cluster.injected_faults()[0].path.clone();
    let (lost, done): (Vec<&Value>, Vec<&Value>) = all
        .iter()
        .partition(|p| lost_node.ends_with(p["metadata"]["name"].as_str().unwrap()));
    assert_eq!((lost.len(), done.len()), (1, 1));
    // The replacement avoided the tainted node.
    assert_ne!(lost[0]["spec"]["nodeName"], done[0]["spec"]["nodeName"]);
    assert_eq!(done[0]["status"]["phase"], "Succeeded");
    assert!(lost[0]["metadata"].get("deletionTimestamp").is_some());
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client());
    nodes
        .delete(
            lost[0]["spec"]["nodeName"].as_str().unwrap(),
            &kube::api::DeleteParams::default(),
        )
        .await
        .unwrap();
    wait_until(&cluster, LONG, || job_has(&cluster, "retry", "Complete")).await;
}
