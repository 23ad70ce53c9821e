//! Stopping a container on the scripted runtime, under paused time, as a container runtime
//! stops a process: SIGTERM, then SIGKILL after the pod's `terminationGracePeriodSeconds`.
//! A program that does not trap SIGTERM ends at once (exit code 143); one that traps it ends
//! as it chooses within the grace period, or is killed at its end (exit code 137).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cmdreporter_fake_cluster::json::{Value, json};
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::store::ChangeType;
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage, ScriptedRuntime};
use common::{job, job_has, wait_until};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::time::Instant;

const LIMIT: Duration = Duration::from_secs(3600);

/// `/bin/plain` sleeps without trapping SIGTERM; `/bin/clean` traps it and exits 0 five
/// seconds later; `/bin/stubborn` traps it and never exits; `/bin/parent` starts
/// `/bin/child` (which sets `woke` after ten seconds) and exits at once.
fn image(woke: Arc<AtomicBool>) -> ScriptedImage {
    let hour = Duration::from_secs(3600);
    ScriptedImage::new()
        .program("/bin/plain", move |_ctx: ProgramContext| async move {
            tokio::time::sleep(hour).await;
            Exit::Code(0)
        })
        .program("/bin/clean", move |ctx: ProgramContext| async move {
            let term = ctx.sigterm();
            tokio::select! {
                _ = term => {}
                _ = tokio::time::sleep(hour) => return Exit::Code(1),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            ctx.write_stdout(b"bye\n").await;
            Exit::Code(0)
        })
        .program("/bin/stubborn", move |ctx: ProgramContext| async move {
            let _term = ctx.sigterm();
            tokio::time::sleep(hour * 24).await;
            Exit::Code(0)
        })
        .program("/bin/parent", |ctx: ProgramContext| async move {
            let _child = ctx.spawn(&["/bin/child".to_owned()], Default::default());
            Exit::Code(0)
        })
        .program("/bin/child", move |_ctx: ProgramContext| {
            let woke = woke.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                woke.store(true, Ordering::SeqCst);
                Exit::Code(0)
            }
        })
}

async fn cluster(woke: Arc<AtomicBool>) -> FakeCluster {
    let rt = ScriptedRuntime::new();
    rt.image("term:1", image(woke));
    FakeCluster::builder().scripted(rt).build().await.unwrap()
}

fn pod(name: &str, program: &str, grace: Option<u64>) -> Pod {
    let mut p = json!({"metadata": {"name": name}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "term:1", "command": [program]}]}});
    if let Some(g) = grace {
        p["spec"]["terminationGracePeriodSeconds"] = json!(g);
    }
    cmdreporter_fake_cluster::json::from_value(p).unwrap()
}

fn running(cluster: &FakeCluster, name: &str) -> bool {
    cluster
        .store()
        .get(well_known::pods(), "default", name)
        .is_ok_and(|p| {
            p.pointer("/status/containerStatuses/0/state/running")
                .is_some()
        })
}

/// Deletes a running pod and follows it to its removal: the container's last state and
/// the (virtual) time from the delete to the removal.
async fn delete_and_follow(cluster: &FakeCluster, name: &str) -> (Value, Duration) {
    wait_until(cluster, LIMIT, || running(cluster, name)).await;
    let mut changes = cluster.store().subscribe_controller();
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let start = Instant::now();
    pods.delete(name, &DeleteParams::default()).await.unwrap();
    let mut last = Value::Null;
    let follow = async {
        while let Some(c) = changes.recv().await {
            if c.resource != well_known::pods() || c.name != name {
                continue;
            }
            last = c.object["status"]["containerStatuses"][0]["state"].clone();
            if c.kind == ChangeType::Deleted {
                return;
            }
        }
    };
    tokio::time::timeout(LIMIT, follow).await.unwrap();
    (last, start.elapsed())
}

async fn create(cluster: &FakeCluster, p: Pod) {
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    pods.create(&PostParams::default(), &p).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_program_that_does_not_trap_sigterm_ends_at_once_with_143() {
    let cluster = cluster(Arc::default()).await;
    create(&cluster, pod("plain", "/bin/plain", None)).await;
    let (state, took) = delete_and_follow(&cluster, "plain").await;
    assert_eq!(state["terminated"]["exitCode"], 143, "{state}");
    assert_eq!(state["terminated"]["reason"], "Error");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_program_that_traps_sigterm_ends_as_it_chooses_within_the_grace_period() {
    let cluster = cluster(Arc::default()).await;
    create(&cluster, pod("clean", "/bin/clean", None)).await;
    let (state, took) = delete_and_follow(&cluster, "clean").await;
    assert_eq!(state["terminated"]["exitCode"], 0, "{state}");
    assert_eq!(state["terminated"]["reason"], "Completed");
    // Its five seconds of shutdown, within the default 30 s.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_program_still_running_after_the_grace_period_is_killed_with_137() {
    let cluster = cluster(Arc::default()).await;
    create(&cluster, pod("stubborn", "/bin/stubborn", Some(20))).await;
    let (state, took) = delete_and_follow(&cluster, "stubborn").await;
    assert_eq!(state["terminated"]["exitCode"], 137, "{state}");
    assert_eq!(state["terminated"]["reason"], "Error");
    assert!(
        took >= Duration::from_secs(20) && took < Duration::from_secs(21),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_jobs_deadline_stops_its_pod_gracefully_before_the_job_fails() {
    let cluster = cluster(Arc::default()).await;
    let mut j = cmdreporter_fake_cluster::json::to_value(&job(
        "late",
        "x",
        json!({"activeDeadlineSeconds": 10}),
    ))
    .unwrap();
    j["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(15);
    j["spec"]["template"]["spec"]["containers"][0]["image"] = json!("term:1");
    j["spec"]["template"]["spec"]["containers"][0]["command"] = json!(["/bin/stubborn"]);
    let j: Job = cmdreporter_fake_cluster::json::from_value(j).unwrap();
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let start = Instant::now();
    jobs.create(&PostParams::default(), &j).await.unwrap();
    wait_until(&cluster, LIMIT, || {
        job_has(&cluster, "late", "FailureTarget")
    })
    .await;
    assert!(!job_has(&cluster, "late", "Failed"), "pods not ended yet");
    wait_until(&cluster, LIMIT, || job_has(&cluster, "late", "Failed")).await;
    // The deadline, then the whole grace period of a program that does not exit.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(25) && took < Duration::from_secs(27),
        "{took:?}"
    );
    let stored = cluster
        .store()
        .get(well_known::jobs(), "default", "late")
        .unwrap();
    let failed = stored["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .cloned()
        .unwrap();
    assert_eq!(failed["reason"], "DeadlineExceeded");
}

#[tokio::test(start_paused = true)]
async fn programs_started_in_a_container_end_with_it() {
    let woke = Arc::new(AtomicBool::new(false));
    let cluster = cluster(woke.clone()).await;
    create(&cluster, pod("parent", "/bin/parent", None)).await;
    wait_until(&cluster, LIMIT, || {
        cluster
            .store()
            .get(well_known::pods(), "default", "parent")
            .is_ok_and(|p| p["status"]["phase"] == "Succeeded")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        !woke.load(Ordering::SeqCst),
        "the child outlived its container"
    );
}
