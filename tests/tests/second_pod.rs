//! Bug D of issue 8, found by the property tests: a second pod of the run's Job (Kubernetes
//! may, rarely, start one) reports first, so the ConfigMap named like the Job holds that
//! pod's report. Only the watched pod's report counts: its courier, finding the name taken
//! by another pod of the same run, writes its report under its own name, and the operator
//! takes that one, with a per-run watch, a shared watch, and polling. The fake cluster's
//! scripted runtime under paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cmdreporter_configmap::{ConfigMapChannel, pod_report_name};
use cmdreporter_core::job::env;
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_core::{JobDispatcher, JobRunner, Outcome, Request, RunStatus, Runner};
use cmdreporter_fake_cluster::json::Value;
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage};
use cmdreporter_tests::props::lingering_reporter_image;
use cmdreporter_tests::{leftovers, reporter_image, scripted_runtime, wait_for_store};

const TOOLS: &str = "tools:1.0";
const LINGERING: &str = "lingering-reporter:1.0";
const NS: &str = "default";

/// `/bin/whoami` prints the uid of the pod it runs in; the first one started takes 5 s,
/// any later one 1 s (so a second pod reports first).
fn tools() -> ScriptedImage {
    let started = Arc::new(AtomicUsize::new(0));
    ScriptedImage::new().program("/bin/whoami", move |ctx: ProgramContext| {
        let n = started.fetch_add(1, Ordering::SeqCst);
        async move {
            let secs = if n == 0 { 5 } else { 1 };
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let uid = ctx.env.get(env::POD_UID).cloned().unwrap_or_default();
            ctx.write_stdout(uid.as_bytes()).await;
            Exit::Code(0)
        }
    })
}

async fn setup() -> FakeCluster {
    let rt = scripted_runtime();
    rt.image(DEFAULT_REPORTER_IMAGE, reporter_image());
    rt.image(LINGERING, lingering_reporter_image(Duration::from_secs(60)));
    rt.image(TOOLS, tools());
    FakeCluster::builder()
        .seed(4)
        .scripted(rt)
        .build()
        .await
        .expect("fake cluster")
}

fn pointer<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

/// Once the Job's pod runs its command, starts a second pod of the Job: a copy whose
/// courier stays after delivering, so it reports first without ending the Job. It carries
/// the Job's labels (so its courier works for the Job and the run's pod watch sees it) but
/// no ownerReference: the fake's Job controller would delete it at once as a pod beyond
/// parallelism, where a real one deletes it gracefully and its courier may still deliver.
/// Returns the uids of the first pod and of the second.
async fn second_pod(cluster: &FakeCluster) -> (String, String) {
    let mut first = None;
    wait_for_store(cluster, || {
        let (pods, _) = cluster.store().list(well_known::pods(), Some(NS));
        first = pods.into_iter().find(|p| {
            p.pointer("/status/containerStatuses/0/state/running")
                .is_some()
        });
        first.is_some()
    })
    .await;
    let first = first.unwrap();
    let mut second = (*first).clone();
    let meta = second["metadata"].as_object_mut().unwrap();
    meta.retain(|k, _| k == "labels");
    meta.insert(
        "name".into(),
        Value::String(format!("{}-second", pointer(&first, "/metadata/name"))),
    );
    second.as_object_mut().unwrap().remove("status");
    let spec = second["spec"].as_object_mut().unwrap();
    spec.remove("nodeName");
    spec["initContainers"][0]["image"] = Value::String(LINGERING.into());
    let second = cluster
        .api()
        .create(well_known::pods(), NS, second)
        .expect("second pod");
    (
        pointer(&first, "/metadata/uid").to_owned(),
        pointer(&second, "/metadata/uid").to_owned(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    PerRunWatch,
    SharedWatch,
    Poll,
}

/// Starts the run and polls it after every change in the store until it is done.
async fn poll_to_end(cluster: &FakeCluster, runner: &JobRunner, req: Request) -> Outcome {
    let mut changes = cluster.store().subscribe_controller();
    let key = runner.start(req).await.unwrap();
    loop {
        match runner.poll(&key).await.unwrap() {
            RunStatus::Done(result) => return result.as_ref().as_ref().unwrap().clone(),
            RunStatus::Pending(_) => {
                changes
                    .recv()
                    .await
                    .expect("the store changes until the run ends");
            }
        }
    }
}

async fn the_watched_pods_report_counts(mode: Mode) {
    let cluster = setup().await;
    let client = cluster.client();
    let (mut dispatcher, mut channel) = (
        JobDispatcher::new(client.clone()),
        ConfigMapChannel::new(client.clone()),
    );
    if mode == Mode::SharedWatch {
        dispatcher = dispatcher.shared_watches();
        channel = channel.shared_watches();
    }
    let runner =
        JobRunner::with_dispatcher(Arc::new(dispatcher), Arc::new(channel)).seed_run_ids(4);
    let req = Request::new(TOOLS, ["/bin/whoami"])
        .name("probe")
        .timeout(Duration::from_secs(120));
    let run = async {
        match mode {
            Mode::Poll => poll_to_end(&cluster, &runner, req).await,
            _ => runner.run(req).await.unwrap(),
        }
    };
    let (outcome, (watched, other)) = futures::future::join(run, second_pod(&cluster)).await;
    assert_ne!(watched, other);
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout.data),
        watched,
        "{mode:?}: the report of the watched pod"
    );
    // The second pod's report took the Job's name (201); the watched pod's courier found it
    // (409, then a read-back) and wrote its own beside it (201).
    let journal = cluster.journal().entries();
    let creates: Vec<u16> = journal
        .iter()
        .filter(|e| e.verb == "create" && e.path.contains("/configmaps"))
        .map(|e| e.status)
        .collect();
    assert_eq!(creates, [201, 409, 201], "{mode:?}");
    let own = pod_report_name(&outcome.job_name, &watched);
    assert!(own.len() <= 253 && own.starts_with(&outcome.job_name));
    runner.shutdown().await;
    // The second pod has no owner to collect it.
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(cluster.client(), NS);
    for p in pods.list(&Default::default()).await.unwrap() {
        if p.metadata.uid.as_deref() == Some(other.as_str()) {
            let name = p.metadata.name.unwrap_or_default();
            pods.delete(&name, &Default::default()).await.unwrap();
        }
    }
    wait_for_store(&cluster, || leftovers(&cluster, NS).is_empty()).await;
}

#[tokio::test(start_paused = true)]
async fn bug_d_per_run_watch_takes_the_watched_pods_report() {
    the_watched_pods_report_counts(Mode::PerRunWatch).await;
}

#[tokio::test(start_paused = true)]
async fn bug_d_shared_watch_takes_the_watched_pods_report() {
    the_watched_pods_report_counts(Mode::SharedWatch).await;
}

#[tokio::test(start_paused = true)]
async fn bug_d_polling_takes_the_watched_pods_report() {
    the_watched_pods_report_counts(Mode::Poll).await;
}
