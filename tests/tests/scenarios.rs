//! The scenarios of the core issue, for every transport: the real courier function on the
//! fake cluster's scripted runtime, through the real `kube::Client`, under paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_core::{
    Error, ExitStatus, GracePeriods, JobDispatcher, JobRunner, Outcome, Phase, Request, Runner,
};
use cmdreporter_fake_cluster::json::Value;
use cmdreporter_fake_cluster::resources::{ResourceDef, well_known};
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{AdmissionCheck, ApiError, FakeCluster, ScriptedImage};
use cmdreporter_tests::{Transport, cluster, leftovers, scripted_runtime, wait_for_store};

const IMAGE: &str = "tools:1.0";

/// Where the transports are expected to differ; every other scenario gives the same result
/// with each.
struct Expected {
    /// The most output bytes per stream that come back whole.
    whole_up_to: usize,
    /// Whether the courier writes through the API (and so can be denied).
    courier_writes_through_api: bool,
}

fn expected(t: Transport) -> Expected {
    match t {
        // A ConfigMap holds at most 1 MiB: each stream keeps its budget, head and tail.
        Transport::ConfigMap => Expected {
            whole_up_to: cmdreporter_configmap::BUDGET_PER_STREAM,
            courier_writes_through_api: true,
        },
        // The log carries about 7 MiB (more when it compresses); 5 MiB comes back whole.
        Transport::Logs => Expected {
            whole_up_to: 7 * 1024 * 1024,
            courier_writes_through_api: false,
        },
    }
}

/// Deterministic bytes that are not UTF-8.
fn noise(len: usize) -> Vec<u8> {
    cmdreporter_tests::noise(len, 0x9e37_79b9)
}

/// The test's image: each program is what the scenario's command does.
fn tools() -> ScriptedImage {
    ScriptedImage::new()
        .program("/bin/out-err-3", |ctx: ProgramContext| async move {
            ctx.write_stdout(b"out").await;
            ctx.write_stderr(b"err").await;
            Exit::Code(3)
        })
        .program("/bin/binary", |ctx: ProgramContext| async move {
            ctx.write_stdout(b"\xff\xfe\x00").await;
            Exit::Code(0)
        })
        .program("/bin/killed", |ctx: ProgramContext| async move {
            ctx.write_stdout(b"before").await;
            Exit::Signal(9)
        })
        .program("/bin/big", |ctx: ProgramContext| async move {
            let data = noise(5 * 1024 * 1024);
            for chunk in data.chunks(64 * 1024) {
                ctx.write_stdout(chunk).await;
            }
            Exit::Code(0)
        })
        .program("/bin/echo", |ctx: ProgramContext| async move {
            let line = ctx.argv[1..].join(" ");
            ctx.write_stdout(format!("{line}\n").as_bytes()).await;
            Exit::Code(0)
        })
        .program("/bin/sleep", |ctx: ProgramContext| async move {
            let secs: u64 = ctx.argv[1].parse().unwrap();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            ctx.write_stdout(b"woke").await;
            Exit::Code(0)
        })
}

async fn setup() -> FakeCluster {
    let rt = scripted_runtime();
    rt.image(IMAGE, tools());
    cluster(rt).await
}

fn runner(cluster: &FakeCluster, transport: Transport) -> JobRunner {
    let client = cluster.client();
    JobRunner::new(client.clone(), transport.channel(client))
}

fn req(argv: &[&str]) -> Request {
    Request::new(IMAGE, argv.iter().copied()).timeout(Duration::from_secs(120))
}

async fn settled(cluster: &FakeCluster) {
    wait_for_store(cluster, || leftovers(cluster, "default").is_empty()).await;
    assert!(leftovers(cluster, "default").is_empty());
}

async fn run_ok(transport: Transport, argv: &[&str]) -> (Outcome, FakeCluster) {
    let cluster = setup().await;
    let runner = runner(&cluster, transport);
    let outcome = runner
        .run(req(argv))
        .await
        .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
    runner.shutdown().await;
    settled(&cluster).await;
    (outcome, cluster)
}

#[tokio::test(start_paused = true)]
async fn streams_and_exit_code() {
    for &t in Transport::all() {
        let (o, _) = run_ok(t, &["/bin/out-err-3"]).await;
        assert_eq!(o.exit, ExitStatus::Code(3), "{t:?}");
        assert_eq!(o.stdout.data, b"out");
        assert_eq!(o.stderr.data, b"err");
        assert!(!o.stdout.is_truncated());
    }
}

#[tokio::test(start_paused = true)]
async fn bytes_that_are_not_utf8_come_back_exact() {
    for &t in Transport::all() {
        let (o, _) = run_ok(t, &["/bin/binary"]).await;
        assert_eq!(o.stdout.data, b"\xff\xfe\x00", "{t:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_signal_is_a_signal_not_an_exit_code() {
    for &t in Transport::all() {
        let (o, _) = run_ok(t, &["/bin/killed"]).await;
        assert_eq!(o.exit, ExitStatus::Signal(9), "{t:?}");
        assert_eq!(o.stdout.data, b"before");
    }
}

#[tokio::test(start_paused = true)]
async fn a_missing_command_is_not_started() {
    for &t in Transport::all() {
        let cluster = setup().await;
        let err = runner(&cluster, t)
            .run(req(&["/bin/nope", "x"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::CommandNotStarted { command, not_found: true, .. } if command == "/bin/nope"),
            "{t:?}: {err:?}"
        );
        settled(&cluster).await;
    }
}

#[tokio::test(start_paused = true)]
async fn output_beyond_the_budget_keeps_head_and_tail_exactly() {
    let data = noise(5 * 1024 * 1024);
    for &t in Transport::all() {
        let (o, _) = run_ok(t, &["/bin/big"]).await;
        let whole_up_to = expected(t).whole_up_to;
        assert_eq!(o.stdout.is_truncated(), data.len() > whole_up_to, "{t:?}");
        assert!(o.stdout.data.len() <= whole_up_to.max(data.len()));
        assert_eq!(o.stdout.total_bytes, data.len() as u64, "{t:?}");
        match o.stdout.omitted {
            Some(gap) => {
                let head = gap.at as usize;
                let tail = o.stdout.data.len() - head;
                assert_eq!(&o.stdout.data[..head], &data[..head]);
                assert_eq!(&o.stdout.data[head..], &data[data.len() - tail..]);
                assert_eq!(gap.bytes as usize, data.len() - head - tail);
            }
            None => assert_eq!(o.stdout.data, data, "{t:?}: untruncated must be whole"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_unpullable_image_fails_within_its_grace_period() {
    for &t in Transport::all() {
        let rt = scripted_runtime();
        rt.image(IMAGE, tools());
        rt.unpullable(IMAGE);
        let cluster = cluster(rt).await;
        let client = cluster.client();
        let graces = GracePeriods {
            image_pull: Duration::from_secs(5),
            ..GracePeriods::default()
        };
        let runner = JobRunner::with_dispatcher(
            Arc::new(JobDispatcher::new(client.clone()).graces(graces)),
            t.channel(client),
        );
        let start = tokio::time::Instant::now();
        let err = runner.run(req(&["/bin/echo", "x"])).await.unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(&err, Error::ImagePull { image, .. } if image == IMAGE),
            "{t:?}: {err:?}"
        );
        assert!(took <= Duration::from_secs(6), "{t:?}: took {took:?}");
        settled(&cluster).await;
    }
}

struct Reject {
    resource: &'static ResourceDef,
    message: &'static str,
}

impl AdmissionCheck for Reject {
    fn admit(&self, def: &ResourceDef, _ns: &str, obj: &mut Value) -> Result<(), ApiError> {
        if def != self.resource {
            return Ok(());
        }
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Err(ApiError::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {}", def.plural, self.message),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_rejected_pod_fails_within_seconds() {
    for &t in Transport::all() {
        let cluster = setup().await;
        cluster.add_admission(Arc::new(Reject {
            resource: well_known::pods(),
            message: "violates PodSecurity \"restricted:latest\"",
        }));
        let start = tokio::time::Instant::now();
        let err = runner(&cluster, t)
            .run(req(&["/bin/echo", "x"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::PodRejected { message } if message.contains("violates PodSecurity")),
            "{t:?}: {err:?}"
        );
        assert!(start.elapsed() <= Duration::from_secs(5));
        settled(&cluster).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_courier_that_cannot_write_says_why() {
    // Only a transport whose courier writes through the API can be denied.
    assert!(expected(Transport::ConfigMap).courier_writes_through_api);
    assert!(!expected(Transport::Logs).courier_writes_through_api);
    let cluster = setup().await;
    cluster.add_admission(Arc::new(Reject {
        resource: well_known::configmaps(),
        message: "denied by the test",
    }));
    let err = runner(&cluster, Transport::ConfigMap)
        .run(req(&["/bin/echo", "x"]))
        .await
        .unwrap_err();
    match &err {
        Error::CourierFailed { exit_code, message } => {
            assert_eq!(*exit_code, 1);
            assert!(message.contains("cannot deliver the report"), "{message}");
            assert!(message.contains("denied by the test"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    settled(&cluster).await;
}

#[tokio::test(start_paused = true)]
async fn a_timeout_names_the_phase_and_leaves_nothing() {
    for &t in Transport::all() {
        let cluster = setup().await;
        let runner = runner(&cluster, t);
        let err = runner
            .run(req(&["/bin/sleep", "3600"]).timeout(Duration::from_secs(30)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Timeout { phase: Phase::Running, timeout } if timeout == Duration::from_secs(30)),
            "{t:?}: {err:?}"
        );
        runner.shutdown().await;
        settled(&cluster).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_run_is_cleaned_up_by_shutdown() {
    for &t in Transport::all() {
        let cluster = setup().await;
        let runner = Arc::new(runner(&cluster, t));
        let task = {
            let runner = runner.clone();
            tokio::spawn(async move { runner.run(req(&["/bin/sleep", "3600"])).await })
        };
        // Wait until the command runs, then drop the run.
        wait_for_store(&cluster, || {
            let (pods, _) = cluster.store().list(well_known::pods(), Some("default"));
            pods.iter()
                .any(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
        })
        .await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        runner.shutdown().await;
        settled(&cluster).await;
    }
}

#[tokio::test(start_paused = true)]
async fn leftovers_of_an_earlier_run_never_reach_this_one() {
    for &t in Transport::all() {
        let cluster = setup().await;
        let runner = Arc::new(runner(&cluster, t));
        // An earlier run with the same base name, still running, will report late.
        let earlier = {
            let runner = runner.clone();
            tokio::spawn(async move { runner.run(req(&["/bin/sleep", "20"]).name("probe")).await })
        };
        wait_for_store(&cluster, || {
            let (pods, _) = cluster.store().list(well_known::pods(), Some("default"));
            !pods.is_empty()
        })
        .await;
        let now = runner
            .run(req(&["/bin/echo", "fresh"]).name("probe"))
            .await
            .unwrap();
        assert_eq!(now.stdout.data, b"fresh\n", "{t:?}");
        let late = earlier.await.unwrap().unwrap();
        assert_eq!(late.stdout.data, b"woke", "{t:?}");
        assert_ne!(late.run_id, now.run_id);
        runner.shutdown().await;
        settled(&cluster).await;
    }
}

#[tokio::test(start_paused = true)]
async fn invalid_input_makes_no_request() {
    let cluster = setup().await;
    let runner = runner(&cluster, Transport::ConfigMap);
    let cases = [
        (req(&["/bin/echo"]).name("x".repeat(60)), "name"),
        (req(&[]), "argv"),
        (Request::new("Not An Image", ["x"]), "image"),
        (req(&["x"]).timeout(Duration::ZERO), "timeout"),
        (req(&["x"]).namespace("Bad_NS"), "namespace"),
    ];
    for (request, field) in cases {
        match runner.run(request).await {
            Err(Error::InvalidRequest(e)) => assert_eq!(e.field, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(
        cluster.journal().is_empty(),
        "{:?}",
        cluster.journal().entries()
    );
}

#[tokio::test(start_paused = true)]
async fn api_faults_change_neither_the_outcome_nor_what_is_left() {
    use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
    for &t in Transport::all() {
        let mut lost = 0;
        for seed in 0..12 {
            let plan = FaultPlan::new(seed)
                // Requests applied but their answers lost: the Job, the report, the delete.
                .rule(Some("create"), Some("jobs"), 0.5, Fault::LostResponse)
                .rule(Some("create"), Some("configmaps"), 0.5, Fault::LostResponse)
                .rule(Some("delete"), Some("jobs"), 0.5, Fault::LostResponse)
                // Server errors, and watches that fail or find their history gone.
                .rule(None, Some("configmaps"), 0.3, Fault::Status(500))
                .rule(Some("watch"), None, 0.3, Fault::Status(503))
                .rule(Some("watch"), None, 0.2, Fault::Compact)
                .rule(Some("get"), None, 0.3, Fault::Status(429));
            lost += out_err_3_under(plan, t, seed)
                .await
                .iter()
                .filter(|f| f.fault == Fault::LostResponse)
                .count();
        }
        assert!(
            lost >= 6,
            "{t:?}: only {lost} responses were lost over the seeds"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn dropped_connections_change_neither_the_outcome_nor_what_is_left() {
    use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
    let drop_before = Fault::Disconnect { applied: false };
    let drop_after = Fault::Disconnect { applied: true };
    for &t in Transport::all() {
        let mut dropped = 0;
        for seed in 0..12 {
            let plan = FaultPlan::new(seed)
                // Applied, then the connection dropped: the Job, the report, the delete.
                .rule(Some("create"), Some("jobs"), 0.5, drop_after.clone())
                .rule(Some("create"), Some("configmaps"), 0.5, drop_after.clone())
                .rule(Some("delete"), Some("jobs"), 0.5, drop_after.clone())
                // Dropped before they were applied: watches and reads.
                .rule(Some("watch"), None, 0.3, drop_before.clone())
                .rule(Some("get"), None, 0.3, drop_before.clone());
            dropped += out_err_3_under(plan, t, seed)
                .await
                .iter()
                .filter(|f| matches!(f.fault, Fault::Disconnect { .. }))
                .count();
        }
        assert!(dropped >= 6, "{t:?}: only {dropped} connections dropped");
    }
}

/// Runs `/bin/out-err-3` under `plan` with transport `t`, asserts its exact outcome, cleans
/// up, waits for the garbage collector to settle (which checks nothing is left), and returns
/// the faults injected.
async fn out_err_3_under(
    plan: cmdreporter_fake_cluster::faults::FaultPlan,
    t: Transport,
    seed: u64,
) -> Vec<cmdreporter_fake_cluster::faults::InjectedFault> {
    let rt = scripted_runtime();
    rt.image(IMAGE, tools());
    let cluster = FakeCluster::builder()
        .scripted(rt)
        .faults(plan)
        .build()
        .await
        .unwrap();
    let runner = runner(&cluster, t);
    let o = runner
        .run(req(&["/bin/out-err-3"]))
        .await
        .unwrap_or_else(|e| panic!("{t:?} seed {seed}: {e}"));
    assert_eq!(o.exit, ExitStatus::Code(3), "{t:?} seed {seed}");
    assert_eq!(
        (o.stdout.data.as_slice(), o.stderr.data.as_slice()),
        (&b"out"[..], &b"err"[..])
    );
    runner.shutdown().await;
    settled(&cluster).await;
    cluster.injected_faults()
}
