//! How an operator tests its errands without a cluster: the fake cluster with the scripted
//! runtime, where each image's behaviour is a Rust closure, the real courier runs
//! in-process, and tokio's paused time makes grace periods and timeouts cost nothing.
//!
//! ```sh
//! cargo run --example fake_cluster_test    # runs the scenarios and prints them
//! cargo test --example fake_cluster_test   # the same scenarios as #[tokio::test]s
//! ```
//!
//! The operator code under test is `ceph_version`; the scenarios check its answer, its
//! errors, and that nothing is left in the cluster.

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_cli::scripted;
use cmdreporter_configmap::ConfigMapChannel;
use cmdreporter_core::{Error, JobRunner, Request, Runner};
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams};

const CEPH: &str = "quay.io/ceph/ceph:v18";

/// The operator's code under test: `ceph --version` in `image`, parsed.
async fn ceph_version(runner: &dyn Runner, image: &str) -> Result<String, Error> {
    let outcome = runner
        .run(Request::new(image, ["ceph", "--version"]).timeout(Duration::from_secs(60)))
        .await?;
    let text = String::from_utf8_lossy(&outcome.stdout.data);
    // "ceph version 18.2.4 (e7ad...) reef (stable)"
    Ok(text
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned())
}

/// A fake cluster where the Ceph image answers `ceph --version`, and a runner on it.
async fn setup() -> (FakeCluster, JobRunner) {
    let runtime = scripted::runtime();
    runtime.image(
        CEPH,
        ScriptedImage::new().program("/usr/bin/ceph", |ctx: ProgramContext| async move {
            ctx.write_stdout(
                b"ceph version 18.2.4 (e7ad5345525c7aa95470c26863873b581076945d) reef (stable)\n",
            )
            .await;
            Exit::Code(0)
        }),
    );
    runtime.image("busybox:stable", ScriptedImage::new());
    runtime.unpullable("quay.io/ceph/ceph:v99");
    let cluster = match FakeCluster::builder().scripted(runtime).build().await {
        Ok(c) => c,
        Err(e) => panic!("fake cluster: {e}"),
    };
    let client = cluster.client();
    let runner = JobRunner::new(client.clone(), Arc::new(ConfigMapChannel::new(client)));
    (cluster, runner)
}

async fn assert_nothing_left(cluster: &FakeCluster) {
    let c = cluster.client();
    let lp = ListParams::default();
    let jobs = Api::<Job>::namespaced(c.clone(), "default").list(&lp).await;
    let pods = Api::<Pod>::namespaced(c.clone(), "default").list(&lp).await;
    let cms = Api::<ConfigMap>::namespaced(c, "default").list(&lp).await;
    let count = |n: Option<usize>| n.unwrap_or(usize::MAX);
    assert_eq!(count(jobs.ok().map(|l| l.items.len())), 0, "Jobs left");
    assert_eq!(count(pods.ok().map(|l| l.items.len())), 0, "pods left");
    // Every namespace holds kube-root-ca.crt; the report ConfigMap must be gone.
    assert_eq!(count(cms.ok().map(|l| l.items.len())), 1, "ConfigMaps left");
}

async fn reads_the_version() {
    let (cluster, runner) = setup().await;
    assert_eq!(
        ceph_version(&runner, CEPH).await.ok().as_deref(),
        Some("18.2.4")
    );
    runner.shutdown().await;
    // The garbage collector removes the pod and the report with the Job.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_nothing_left(&cluster).await;
}

async fn an_unpullable_image_is_a_typed_error() {
    let (_cluster, runner) = setup().await;
    let started = tokio::time::Instant::now();
    let err = ceph_version(&runner, "quay.io/ceph/ceph:v99").await;
    assert!(matches!(err, Err(Error::ImagePull { .. })), "{err:?}");
    // After the pull grace period (10 s of paused time), long before the 60 s timeout.
    assert!(started.elapsed() < Duration::from_secs(60));
}

async fn a_missing_program_is_not_found() {
    let (_cluster, runner) = setup().await;
    let err = ceph_version(&runner, "busybox:stable").await;
    assert!(
        matches!(
            err,
            Err(Error::CommandNotStarted {
                not_found: true,
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    reads_the_version().await;
    println!("ok: ceph --version in {CEPH} reads 18.2.4, nothing left behind");
    an_unpullable_image_is_a_typed_error().await;
    println!("ok: an unpullable image is Error::ImagePull, before the timeout");
    a_missing_program_is_not_found().await;
    println!("ok: a program the image lacks is Error::CommandNotStarted (not found)");
}

#[cfg(test)]
mod tests {
    #[tokio::test(start_paused = true)]
    async fn reads_the_version() {
        super::reads_the_version().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_unpullable_image_is_a_typed_error() {
        super::an_unpullable_image_is_a_typed_error().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_program_is_not_found() {
        super::a_missing_program_is_not_found().await;
    }
}
