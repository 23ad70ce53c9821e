//! The pod-logs transport end to end: the fake cluster with the scripted runtime, the real
//! courier (`cmdreporter_cli::courier_main` through `ScriptedHost`), the runner, under
//! paused time. What only this transport shows: the request count, the pod without a
//! token, log rotation, noise in the log, frames of another run.
//! (The scenarios shared with the ConfigMap transport are in `scenarios.rs`.)

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_core::courier::CourierHost;
use cmdreporter_core::job::REPORTER_BINARY;
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_core::{
    Captured, Error, ExitStatus, JobRunner, Report, ReportedExit, Request, Runner,
};
use cmdreporter_fake_cluster::json::Value;
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage, ScriptedRuntime};
use cmdreporter_k8s_logs::{LogsChannel, encode_frame};
use cmdreporter_tests::noise;
use cmdreporter_tests::{ScriptedHost, leftovers, reporter_image, wait_for_store};

const IMAGE: &str = "busybox:stable";

fn tools() -> ScriptedImage {
    ScriptedImage::new()
        // Stands in for `sh -c 'printf out; printf err >&2; exit 3'`.
        .program("/bin/sh", |ctx: ProgramContext| async move {
            assert_eq!(ctx.argv[1], "-c");
            ctx.write_stdout(b"out").await;
            ctx.write_stderr(b"err").await;
            Exit::Code(3)
        })
        .program("/bin/noise", |ctx: ProgramContext| async move {
            let len: usize = ctx.argv[1].parse().unwrap();
            for chunk in noise(len, 7).chunks(64 * 1024) {
                ctx.write_stdout(chunk).await;
            }
            Exit::Code(0)
        })
}

async fn cluster_with(reporter: ScriptedImage, max_log_bytes: Option<usize>) -> FakeCluster {
    let rt = ScriptedRuntime::new();
    rt.image(DEFAULT_REPORTER_IMAGE, reporter);
    rt.image(IMAGE, tools());
    let mut b = FakeCluster::builder().scripted(rt);
    if let Some(n) = max_log_bytes {
        b = b.max_log_bytes(n);
    }
    b.build().await.unwrap()
}

fn runner(cluster: &FakeCluster) -> JobRunner {
    let client = cluster.client();
    JobRunner::new(client.clone(), Arc::new(LogsChannel::new(client)))
}

fn req(argv: &[&str]) -> Request {
    Request::new(IMAGE, argv.iter().copied()).timeout(Duration::from_secs(120))
}

async fn settled(cluster: &FakeCluster) {
    wait_for_store(cluster, || leftovers(cluster, "default").is_empty()).await;
    assert!(leftovers(cluster, "default").is_empty());
}

fn corrupt_kind(err: &Error) -> &'static str {
    match err {
        Error::Transport { source, .. } => source
            .downcast_ref::<cmdreporter_k8s_logs::ReadError>()
            .map(cmdreporter_k8s_logs::ReadError::kind)
            .unwrap_or_else(|| panic!("not a ReadError: {source}")),
        other => panic!("expected a report error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn one_run_costs_four_requests_and_the_pod_has_no_token() {
    let cluster = cluster_with(reporter_image(), None).await;
    let runner = runner(&cluster);
    let pod_seen = async {
        let mut pod = None;
        wait_for_store(&cluster, || {
            let (pods, _) = cluster.store().list(well_known::pods(), Some("default"));
            pod = pods.into_iter().next();
            pod.is_some()
        })
        .await;
        pod.unwrap()
    };
    let (outcome, pod) = tokio::join!(
        runner.run(req(&["sh", "-c", "printf out; printf err >&2; exit 3"])),
        pod_seen
    );
    let outcome = outcome.unwrap();
    assert_eq!(outcome.exit, ExitStatus::Code(3));
    assert_eq!(outcome.stdout.data, b"out");
    assert_eq!(outcome.stderr.data, b"err");

    // The pod mounts no token: no API access at all.
    assert_eq!(
        pod.pointer("/spec/automountServiceAccountToken"),
        Some(&Value::Bool(false))
    );
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .unwrap();
    assert!(
        volumes.iter().all(|v| v.get("projected").is_none()),
        "{volumes:?}"
    );
    let cmd = pod
        .pointer("/spec/containers/0/command")
        .unwrap()
        .to_string();
    assert!(
        cmd.contains(r#""report","--transport","logs","--run-id""#),
        "{cmd}"
    );

    // Operator: create the Job, watch its pod, GET the log once, delete the Job.
    // The pod: nothing.
    let entries = cluster.journal().entries();
    let lines: Vec<String> = entries.iter().map(ToString::to_string).collect();
    assert!(entries.len() <= 4, "{lines:#?}");
    let is = |verb: &str, tail: &str| {
        entries
            .iter()
            .filter(|e| e.verb == verb && e.path.split('?').next().unwrap().ends_with(tail))
            .count()
    };
    assert_eq!(is("create", "/jobs"), 1, "{lines:#?}");
    assert_eq!(is("watch", "/pods"), 1, "{lines:#?}");
    assert_eq!(is("get", "/log"), 1, "{lines:#?}");
    assert_eq!(
        is("delete", &format!("/jobs/{}", outcome.job_name)),
        1,
        "{lines:#?}"
    );
    let log = entries.iter().find(|e| e.path.contains("/log")).unwrap();
    assert!(log.path.contains("container=cmd"), "{}", log.path);
    assert!(!log.path.contains("follow"), "{}", log.path);
    assert!(!log.path.contains("timestamps"), "{}", log.path);
    assert!(entries.iter().all(|e| e.status < 300), "{lines:#?}");
    assert!(!entries.iter().any(|e| e.path.contains("configmaps")));
    runner.shutdown().await;
    settled(&cluster).await;
}

#[tokio::test(start_paused = true)]
async fn six_mib_of_random_bytes_round_trip_byte_exact() {
    let cluster = cluster_with(reporter_image(), None).await;
    let runner = runner(&cluster);
    let len = 6 * 1024 * 1024;
    let outcome = runner
        .run(req(&["/bin/noise", &len.to_string()]))
        .await
        .unwrap();
    assert!(!outcome.stdout.is_truncated());
    assert_eq!(outcome.stdout.total_bytes, len as u64);
    assert!(outcome.stdout.data == noise(len, 7), "stdout differs");
    runner.shutdown().await;
    settled(&cluster).await;
}

#[tokio::test(start_paused = true)]
async fn log_rotation_mid_report_is_truncated() {
    // The kubelet rotates at 64 KiB; the frame of 200 KiB of noise is about 270 KiB, so
    // only the end of the frame is in the file the kubelet serves.
    let cluster = cluster_with(reporter_image(), Some(64 * 1024)).await;
    let runner = runner(&cluster);
    let err = runner
        .run(req(&["/bin/noise", "204800"]))
        .await
        .unwrap_err();
    assert_eq!(corrupt_kind(&err), "truncated", "{err}");
    assert!(err.to_string().contains("rotated"), "{err}");
    runner.shutdown().await;
    settled(&cluster).await;
}

/// A stale frame of another run, as a log could hold it.
fn stale_frame() -> Vec<u8> {
    let stale = Report {
        schema_version: "1.0".into(),
        run_id: "stale00000".into(),
        pod_uid: "00000000-0000-0000-0000-000000000000".into(),
        exit: ReportedExit::Exited(ExitStatus::Code(0)),
        stdout: Captured::complete(b"old answer".to_vec()),
        stderr: Captured::default(),
    };
    encode_frame(&stale, &Default::default())
        .unwrap()
        .to_bytes()
}

/// The real courier, with the courier's own warning lines and a stale frame of another
/// run in the log before its frame.
fn noisy_reporter() -> ScriptedImage {
    ScriptedImage::new().program(REPORTER_BINARY, |ctx: ProgramContext| async move {
        let argv = ctx.argv.clone();
        if argv.get(1).map(String::as_str) == Some("report") {
            ctx.write_stderr(b"W cmdreporter: a warning before any frame\n")
                .await;
            ctx.write_stdout(&stale_frame()).await;
            ctx.write_stderr(b"W cmdreporter: a warning between frames, no newline")
                .await;
        }
        let host = ScriptedHost::new(ctx);
        let code = cmdreporter_cli::courier_main(&argv, &host).await;
        host.write_stderr(b"W cmdreporter: a warning after the frame\n")
            .await;
        Exit::Code(code)
    })
}

#[tokio::test(start_paused = true)]
async fn warnings_and_stale_frames_in_the_log_do_not_disturb_parsing() {
    let cluster = cluster_with(noisy_reporter(), None).await;
    let runner = runner(&cluster);
    let outcome = runner
        .run(req(&["sh", "-c", "printf out; printf err >&2; exit 3"]))
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitStatus::Code(3));
    assert_eq!(
        (
            outcome.stdout.data.as_slice(),
            outcome.stderr.data.as_slice()
        ),
        (&b"out"[..], &b"err"[..])
    );
    runner.shutdown().await;
    settled(&cluster).await;
}

/// A courier that prints only a frame of another run and exits 0.
fn impostor_reporter() -> ScriptedImage {
    ScriptedImage::new().program(REPORTER_BINARY, |ctx: ProgramContext| async move {
        let argv = ctx.argv.clone();
        if argv.get(1).map(String::as_str) == Some("report") {
            ctx.write_stdout(&stale_frame()).await;
            return Exit::Code(0);
        }
        let host = ScriptedHost::new(ctx);
        Exit::Code(cmdreporter_cli::courier_main(&argv, &host).await)
    })
}

#[tokio::test(start_paused = true)]
async fn a_frame_of_another_run_is_refused() {
    let cluster = cluster_with(impostor_reporter(), None).await;
    let runner = runner(&cluster);
    let err = runner
        .run(req(&["sh", "-c", "printf out"]))
        .await
        .unwrap_err();
    assert_eq!(corrupt_kind(&err), "other-run", "{err}");
    assert!(err.to_string().contains("stale00000"), "{err}");
    runner.shutdown().await;
    settled(&cluster).await;
}

/// A courier that cannot even start (bad arguments) reports nothing: its termination
/// message says why, not "no report".
#[tokio::test(start_paused = true)]
async fn a_courier_without_a_report_says_why() {
    let reporter =
        ScriptedImage::new().program(REPORTER_BINARY, |ctx: ProgramContext| async move {
            let mut argv = ctx.argv.clone();
            if argv.get(1).map(String::as_str) == Some("report") {
                // An unknown transport: the courier refuses with exit 2.
                if let Some(t) = argv.iter().position(|a| a == "logs") {
                    argv[t] = "carrier-pigeon".into();
                }
            }
            let host = ScriptedHost::new(ctx);
            Exit::Code(cmdreporter_cli::courier_main(&argv, &host).await)
        });
    let cluster = cluster_with(reporter, None).await;
    let runner = runner(&cluster);
    let err = runner
        .run(req(&["sh", "-c", "printf out"]))
        .await
        .unwrap_err();
    match &err {
        Error::CourierFailed { exit_code, message } => {
            assert_eq!(*exit_code, 2);
            assert!(message.contains("unknown transport"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    runner.shutdown().await;
    settled(&cluster).await;
}
