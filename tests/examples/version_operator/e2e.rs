//! The example operator end to end on the fake cluster: scripted runtime, paused time,
//! the real courier in-process.

use std::sync::atomic::{AtomicUsize, Ordering};

use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage};
use cmdreporter_tests::{leftovers, scripted_runtime, wait_for_store};
use tokio::sync::Notify;

use super::*;

const CEPH: &str = "quay.io/ceph/ceph:v18";
const GONE: &str = "quay.io/ceph/ceph:v99";
const VERSION: &str =
    "ceph version 18.2.4 (e7ad5345525c7aa95470c26863873b581076945d) reef (stable)";

struct Setup {
    cluster: FakeCluster,
    runs: Arc<AtomicUsize>,
    started: Arc<Notify>,
}

async fn setup() -> Setup {
    // `RUST_LOG=debug` shows the controller's and the fake cluster's requests.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Notify::new());
    let rt = scripted_runtime();
    let (r, s) = (runs.clone(), started.clone());
    rt.image(
        CEPH,
        ScriptedImage::new().program("ceph", move |ctx: ProgramContext| {
            let (runs, started) = (r.clone(), s.clone());
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                started.notify_one();
                // Long enough for an operator restart in the middle.
                tokio::time::sleep(Duration::from_secs(20)).await;
                ctx.write_stdout(format!("{VERSION}\n").as_bytes()).await;
                Exit::Code(0)
            }
        }),
    );
    rt.unpullable(GONE);
    let cluster = cmdreporter_tests::cluster(rt).await;
    install_crd(&cluster.client()).await.unwrap();
    Setup {
        cluster,
        runs,
        started,
    }
}

fn ask(name: &str, image: &str) -> ImageVersion {
    ImageVersion::new(
        name,
        ImageVersionSpec {
            image: image.into(),
            command: vec!["ceph".into(), "--version".into()],
        },
    )
}

/// Waits (in virtual time, bounded) until `name`'s status meets `cond`.
async fn status_when(
    api: &Api<ImageVersion>,
    name: &str,
    cond: impl Fn(&ImageVersionStatus) -> bool + Send + 'static,
) -> ImageVersionStatus {
    let met = await_condition(api.clone(), name, move |iv: Option<&ImageVersion>| {
        iv.and_then(|iv| iv.status.as_ref()).is_some_and(&cond)
    });
    let iv = tokio::time::timeout(Duration::from_secs(900), met)
        .await
        .unwrap_or_else(|_| panic!("{name}: no such status within 15 minutes"))
        .unwrap();
    iv.and_then(|iv| iv.status).unwrap()
}

async fn answer(api: &Api<ImageVersion>, name: &str) -> ImageVersionStatus {
    status_when(api, name, |s| s.run_key.is_none() && s.phase.is_some()).await
}

/// Job requests of the journal: (verb, path).
fn job_requests(cluster: &FakeCluster, verb: &str) -> Vec<String> {
    cluster
        .journal()
        .entries()
        .iter()
        .filter(|e| e.verb == verb && e.path.contains("/jobs"))
        .map(|e| e.path.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn answers_across_a_restart_then_from_the_cache() {
    let s = setup().await;
    let client = s.cluster.client();
    let api: Api<ImageVersion> = Api::namespaced(client.clone(), "default");

    let first = Arc::new(Operator::new(client.clone()));
    let controller = tokio::spawn(run_controller(first.clone()));
    api.create(&PostParams::default(), &ask("a", CEPH))
        .await
        .unwrap();
    // The command runs and the key is in the status: the operator restarts.
    s.started.notified().await;
    let running = status_when(&api, "a", |s| s.run_key.is_some()).await;
    assert_eq!(running.phase.as_deref(), Some("Running"));
    controller.abort();
    assert!(controller.await.unwrap_err().is_cancelled());
    drop(first);

    let second = Arc::new(Operator::new(client.clone()));
    let controller = tokio::spawn(run_controller(second.clone()));
    let status = answer(&api, "a").await;
    assert_eq!(status.phase.as_deref(), Some("Ready"), "{status:?}");
    assert_eq!(status.version.as_deref(), Some(VERSION));
    assert_eq!(status.error, None);
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        s.runs.load(Ordering::SeqCst),
        1,
        "the restart ran nothing again"
    );
    assert_eq!(job_requests(&s.cluster, "create").len(), 1);

    // Another resource asking the same: answered from the cache, no Job.
    api.create(&PostParams::default(), &ask("b", CEPH))
        .await
        .unwrap();
    let status = answer(&api, "b").await;
    assert_eq!(status.version.as_deref(), Some(VERSION));
    assert_eq!(s.runs.load(Ordering::SeqCst), 1);
    assert_eq!(job_requests(&s.cluster, "create").len(), 1, "no run for b");

    // The Job was deleted exactly once, and nothing is left.
    second.shutdown().await;
    let deletes = job_requests(&s.cluster, "delete");
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    wait_for_store(&s.cluster, || leftovers(&s.cluster, "default").is_empty()).await;
    controller.abort();
}

#[tokio::test(start_paused = true)]
async fn writes_the_typed_error_and_refuses_bad_input() {
    let s = setup().await;
    let client = s.cluster.client();
    let api: Api<ImageVersion> = Api::namespaced(client.clone(), "default");
    let op = Arc::new(Operator::new(client.clone()));
    let controller = tokio::spawn(run_controller(op.clone()));

    api.create(&PostParams::default(), &ask("gone", GONE))
        .await
        .unwrap();
    let status = answer(&api, "gone").await;
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let error = status.error.unwrap();
    assert_eq!(error.reason, "ImagePull", "{error:?}");
    assert!(error.message.contains(GONE), "{error:?}");
    assert_eq!(status.version, None);

    // An empty command is bad input: refused before any Job, and said so.
    let mut empty = ask("empty", CEPH);
    empty.spec.command.clear();
    api.create(&PostParams::default(), &empty).await.unwrap();
    let status = answer(&api, "empty").await;
    let error = status.error.unwrap();
    assert_eq!(error.reason, "InvalidRequest");
    assert!(error.message.contains("argv"), "{error:?}");
    assert_eq!(job_requests(&s.cluster, "create").len(), 1, "only gone's");

    op.shutdown().await;
    assert_eq!(job_requests(&s.cluster, "delete").len(), 1);
    wait_for_store(&s.cluster, || leftovers(&s.cluster, "default").is_empty()).await;
    controller.abort();
}

#[tokio::test(start_paused = true)]
async fn a_changed_spec_is_answered_again() {
    let s = setup().await;
    let client = s.cluster.client();
    let api: Api<ImageVersion> = Api::namespaced(client.clone(), "default");
    let op = Arc::new(Operator::new(client.clone()));
    let controller = tokio::spawn(run_controller(op.clone()));
    api.create(&PostParams::default(), &ask("c", GONE))
        .await
        .unwrap();
    assert_eq!(answer(&api, "c").await.phase.as_deref(), Some("Failed"));
    let patch = serde_json::json!({ "spec": { "image": CEPH } });
    api.patch("c", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let status = status_when(&api, "c", |s| s.phase.as_deref() == Some("Ready")).await;
    assert_eq!(status.version.as_deref(), Some(VERSION));
    assert_eq!(status.error, None, "the old error is gone");
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(s.runs.load(Ordering::SeqCst), 1);
    s.started.notified().await; // that run's start

    // A spec changed while its run is in flight: that run is given up (its Job
    // deleted), a new one answers the new spec.
    let mut d = ask("d", CEPH);
    d.spec.command = vec!["ceph".into(), "version".into()];
    api.create(&PostParams::default(), &d).await.unwrap();
    s.started.notified().await;
    let first_key = status_when(&api, "d", |s| s.run_key.is_some())
        .await
        .run_key
        .unwrap();
    let patch = serde_json::json!({ "spec": { "command": ["ceph", "-v"] } });
    api.patch("d", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let status = status_when(&api, "d", |s| {
        s.phase.as_deref() == Some("Ready") && s.observed_generation == Some(2)
    })
    .await;
    assert_eq!(status.version.as_deref(), Some(VERSION));
    assert_eq!(s.runs.load(Ordering::SeqCst), 3);
    op.shutdown().await;
    let deletes = job_requests(&s.cluster, "delete");
    assert!(
        deletes
            .iter()
            .any(|p| p.contains(&format!("/jobs/{}?", first_key.job_name))),
        "the given-up run's Job was deleted: {deletes:?}"
    );
    assert_eq!(deletes.len(), job_requests(&s.cluster, "create").len());
    wait_for_store(&s.cluster, || leftovers(&s.cluster, "default").is_empty()).await;
    controller.abort();
}
