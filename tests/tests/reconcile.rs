//! For reconcile loops: `start` and `poll` across an operator restart, the request budget
//! of a poll, and the result cache. Scripted runtime, paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use cmdreporter_core::{Error, ExitStatus, JobRunner, Request, RunKey, RunStatus, Runner};
use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::ScriptedImage;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_tests::{Transport, cluster, leftovers, scripted_runtime, wait_for_store};

const IMAGE: &str = "ceph:v18";

fn image() -> ScriptedImage {
    ScriptedImage::new().program("/bin/ceph", |ctx: ProgramContext| async move {
        // Takes a while, so that polls see it pending first.
        tokio::time::sleep(Duration::from_secs(20)).await;
        ctx.write_stdout(b"ceph version 18.2.0\n").await;
        Exit::Code(0)
    })
}

async fn setup() -> FakeCluster {
    let rt = scripted_runtime();
    rt.image(IMAGE, image());
    rt.image(
        "ceph@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        image(),
    );
    cluster(rt).await
}

fn runner(cluster: &FakeCluster, t: Transport) -> JobRunner {
    let client = cluster.client();
    JobRunner::new(client.clone(), t.channel(client))
}

fn request() -> Request {
    Request::new(IMAGE, ["/bin/ceph", "--version"]).timeout(Duration::from_secs(600))
}

#[tokio::test(start_paused = true)]
async fn a_run_survives_an_operator_restart() {
    for &t in Transport::all() {
        let cluster = setup().await;
        let first = runner(&cluster, t);
        let key = first.start(request()).await.unwrap();
        // The key is what a custom resource's status keeps.
        let stored = serde_json::to_string(&key).unwrap();
        assert!(matches!(
            first.poll(&key).await.unwrap(),
            RunStatus::Pending(_)
        ));
        drop(first); // the operator restarts

        let second = runner(&cluster, t);
        let key: RunKey = serde_json::from_str(&stored).unwrap();
        let mut polls = 0;
        let outcome = loop {
            let before = cluster.journal().len();
            let status = second.poll(&key).await.unwrap();
            // The pod's own request (the courier's ConfigMap) may land meanwhile: count the
            // operator's only.
            let made = cluster.journal().entries()[before..]
                .iter()
                .filter(|e| !(e.verb == "create" && e.path.contains("/configmaps")))
                .count();
            assert!(made <= 2, "{t:?}: a poll made {made} requests");
            polls += 1;
            match status {
                RunStatus::Pending(_) => tokio::time::sleep(Duration::from_secs(5)).await,
                RunStatus::Done(result) => break result,
            }
        };
        assert!(polls > 1, "the run was pending at first");
        let outcome = outcome.as_ref().as_ref().unwrap();
        assert_eq!(outcome.exit, ExitStatus::Code(0), "{t:?}");
        assert_eq!(outcome.stdout.data, b"ceph version 18.2.0\n");
        assert!(outcome.image_id.is_some());

        // Done: no more requests, the same answer.
        let before = cluster.journal().len();
        assert!(matches!(
            second.poll(&key).await.unwrap(),
            RunStatus::Done(_)
        ));
        assert_eq!(cluster.journal().len(), before);

        // Cleanup ran exactly once.
        second.shutdown().await;
        let deletes = cluster
            .journal()
            .entries()
            .iter()
            .filter(|e| e.verb == "delete" && e.path.contains("/jobs/"))
            .count();
        assert_eq!(deletes, 1, "{t:?}");
        wait_for_store(&cluster, || leftovers(&cluster, "default").is_empty()).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_cache_hit_makes_no_request_and_expires() {
    let cluster = setup().await;
    let runner = runner(&cluster, Transport::ConfigMap).cache(Duration::from_secs(3600));
    let first = runner.run(request()).await.unwrap();
    let before = cluster.journal().len();
    let second = runner.run(request()).await.unwrap();
    assert_eq!(cluster.journal().len(), before, "a hit makes no request");
    assert_eq!(second.stdout, first.stdout);
    assert_eq!(second.run_id, first.run_id, "the cached outcome");

    // Another argv is another key.
    let other = runner
        .run(Request::new(IMAGE, ["/bin/ceph", "-v"]).timeout(Duration::from_secs(600)))
        .await
        .unwrap();
    assert_ne!(other.run_id, first.run_id);

    tokio::time::advance(Duration::from_secs(3601)).await;
    let third = runner.run(request()).await.unwrap();
    assert_ne!(
        third.run_id, first.run_id,
        "a miss after the time to live runs again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_digest_pinned_image_is_cached_without_expiry() {
    let cluster = setup().await;
    let runner = runner(&cluster, Transport::ConfigMap).cache(Duration::from_secs(60));
    let pinned = Request::new(
        "ceph@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ["/bin/ceph"],
    )
    .timeout(Duration::from_secs(600));
    let first = runner.run(pinned.clone()).await.unwrap();
    tokio::time::advance(Duration::from_secs(86_400)).await;
    let before = cluster.journal().len();
    let again = runner.run(pinned).await.unwrap();
    assert_eq!(cluster.journal().len(), before);
    assert_eq!(again.run_id, first.run_id);
}

#[tokio::test(start_paused = true)]
async fn a_polled_outcome_fills_the_cache_across_a_restart() {
    let cluster = setup().await;
    let first = runner(&cluster, Transport::ConfigMap).cache(Duration::from_secs(3600));
    assert!(first.cached(&request()).is_none());
    let key = first.start(request()).await.unwrap();
    let stored = serde_json::to_string(&key).unwrap();
    assert!(
        !stored.contains("--version"),
        "the key keeps a fingerprint, not the request: {stored}"
    );
    drop(first); // the operator restarts

    let second = runner(&cluster, Transport::ConfigMap).cache(Duration::from_secs(3600));
    let key: RunKey = serde_json::from_str(&stored).unwrap();
    assert!(key.cache_key.is_some());
    let done = loop {
        match second.poll(&key).await.unwrap() {
            RunStatus::Pending(_) => tokio::time::sleep(Duration::from_secs(5)).await,
            RunStatus::Done(result) => break result,
        }
    };
    let outcome = done.as_ref().as_ref().unwrap();
    let before = cluster.journal().len();
    let hit = second
        .cached(&request())
        .expect("the poll filled the cache");
    assert_eq!(cluster.journal().len(), before, "a hit makes no request");
    assert_eq!(hit.run_id, outcome.run_id);
    assert_eq!(hit.stdout.data, b"ceph version 18.2.0\n");
    // `run` answers from the same cache.
    assert_eq!(second.run(request()).await.unwrap().run_id, outcome.run_id);
    assert_eq!(cluster.journal().len(), before);
    // Another argv is another key.
    assert!(second.cached(&Request::new(IMAGE, ["/bin/ceph"])).is_none());
    second.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_is_deleted_once_and_polls_as_cancelled() {
    for &t in Transport::all() {
        let cluster = setup().await;
        let first = runner(&cluster, t);
        let key = first.start(request()).await.unwrap();
        assert!(matches!(
            first.poll(&key).await.unwrap(),
            RunStatus::Pending(_)
        ));
        drop(first); // the operator restarts, and the resource's spec changed meanwhile

        let second = runner(&cluster, t);
        second.cancel(&key);
        second.cancel(&key); // twice: still one deletion
        let before = cluster.journal().len();
        match second.poll(&key).await.unwrap() {
            RunStatus::Done(result) => assert!(
                matches!(result.as_ref(), Err(Error::JobFailed { reason, .. }) if reason == "Cancelled"),
                "{t:?}: {result:?}"
            ),
            RunStatus::Pending(phase) => panic!("{t:?}: still {phase:?}"),
        }
        assert_eq!(
            cluster.journal().len(),
            before,
            "a cancelled run is polled without requests"
        );
        second.shutdown().await;
        let deletes = cluster
            .journal()
            .entries()
            .iter()
            .filter(|e| e.verb == "delete" && e.path.contains("/jobs/"))
            .count();
        assert_eq!(deletes, 1, "{t:?}");
        wait_for_store(&cluster, || leftovers(&cluster, "default").is_empty()).await;
    }
}
