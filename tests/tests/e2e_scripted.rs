//! The whole flow in-process: fake cluster with the scripted runtime, the real courier
//! function, the ConfigMap transport, the runner with cleanup, under paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_configmap::ConfigMapChannel;
use cmdreporter_core::{ExitStatus, JobRunner, Request, Runner};
use cmdreporter_fake_cluster::ScriptedImage;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_tests::{cluster, leftovers, scripted_runtime, wait_for_store};

fn shell_image() -> ScriptedImage {
    // The test's stand-in for `sh -c 'printf out; printf err >&2; exit 3'`.
    ScriptedImage::new().program("/bin/sh", |ctx: ProgramContext| async move {
        assert_eq!(ctx.argv[1], "-c");
        ctx.write_stdout(b"out").await;
        ctx.write_stderr(b"err").await;
        Exit::Code(3)
    })
}

#[tokio::test(start_paused = true)]
async fn configmap_round_trip_with_the_real_courier() {
    let rt = scripted_runtime();
    rt.image("busybox:stable", shell_image());
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let runner = JobRunner::new(client.clone(), Arc::new(ConfigMapChannel::new(client)));
    let req = Request::new(
        "busybox:stable",
        ["sh", "-c", "printf out; printf err >&2; exit 3"],
    )
    .timeout(Duration::from_secs(60));
    let outcome = runner.run(req).await.expect("run succeeds");
    assert_eq!(outcome.exit, ExitStatus::Code(3));
    assert_eq!(outcome.stdout.data, b"out");
    assert_eq!(outcome.stderr.data, b"err");

    println!("request journal of one run:");
    for entry in cluster.journal().entries() {
        println!("  {entry}");
    }
    let entries = cluster.journal().entries();
    let count = |verb: &str, resource: &str| {
        entries
            .iter()
            .filter(|e| e.verb == verb && e.path.contains(resource))
            .count()
    };
    // Operator: create the Job, watch its pod and the ConfigMap, delete the Job.
    // Courier: create the ConfigMap. The pod watch may not be sent at all when the report
    // comes first.
    assert!(entries.len() <= 5, "{} requests", entries.len());
    assert_eq!(count("create", "/jobs"), 1);
    assert_eq!(count("create", "/configmaps"), 1);
    assert_eq!(count("watch", "/configmaps"), 1);
    assert_eq!(count("delete", "/jobs/"), 1);
    assert!(entries.iter().all(|e| e.status < 300), "no failed request");
    assert_eq!(entries.last().map(|e| e.verb.as_str()), Some("delete"));

    // After the Job's deletion, the garbage collector removes its pod and the ConfigMap.
    wait_for_store(&cluster, || leftovers(&cluster, "default").is_empty()).await;
    runner.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_command_that_does_not_exist_is_reported_as_not_started() {
    let rt = scripted_runtime();
    rt.image("busybox:stable", ScriptedImage::new());
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let runner = JobRunner::new(client.clone(), Arc::new(ConfigMapChannel::new(client)));
    let err = runner
        .run(Request::new("busybox:stable", ["no-such-command"]))
        .await
        .expect_err("must fail");
    match err {
        cmdreporter_core::Error::CommandNotStarted {
            command, not_found, ..
        } => {
            assert_eq!(command, "no-such-command");
            assert!(not_found);
        }
        other => panic!("unexpected {other:?}"),
    }
    wait_for_store(&cluster, || leftovers(&cluster, "default").is_empty()).await;
}
