//! Stateless polling applies the grace periods `run` applies: an unpullable image, an
//! unschedulable pod, a courier that ended without a report and a pod that was never
//! created end a polled run only once their grace period is over, counted from the pod's
//! own timestamps, so that an operator restart in between changes nothing. Scripted
//! runtime, paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_core::job::{MAIN_CONTAINER, REPORTER_BINARY};
use cmdreporter_core::{
    Error, GracePeriods, JobDispatcher, JobRunner, Outcome, Phase, Request, RunKey, RunStatus,
    Runner,
};
use cmdreporter_fake_cluster::json::Value;
use cmdreporter_fake_cluster::resources::{ResourceDef, well_known};
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{
    AdmissionCheck, ApiError, FakeCluster, ScriptedImage, ScriptedRuntime,
};
use cmdreporter_tests::{Transport, cluster, leftovers, scripted_runtime, wait_for_store};
use tokio::time::Instant;

const IMAGE: &str = "ceph:v18";
const BROKEN_REPORTER: &str = "reporter:lost";

fn tools() -> ScriptedImage {
    ScriptedImage::new()
        .program("/bin/ceph", |ctx: ProgramContext| async move {
            ctx.write_stdout(b"ceph version 18.2.0\n").await;
            Exit::Code(0)
        })
        .program("/bin/sleep", |_ctx: ProgramContext| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Exit::Code(0)
        })
}

/// A reporter image that installs itself as the real one does, but whose `report` ends
/// with 1 and delivers nothing.
fn losing_reporter() -> ScriptedImage {
    ScriptedImage::new().program(REPORTER_BINARY, |ctx: ProgramContext| async move {
        if ctx.argv.get(1).map(String::as_str) == Some("install") {
            let argv = ctx.argv.clone();
            let host = cmdreporter_tests::ScriptedHost::new(ctx);
            return Exit::Code(cmdreporter_cli::courier_main(&argv, &host).await);
        }
        let path = ctx.termination_message_path.clone();
        let _ = ctx.write_file(&path, b"cmdreporter: report lost on purpose");
        Exit::Code(1)
    })
}

async fn setup(configure: impl FnOnce(&ScriptedRuntime)) -> FakeCluster {
    let rt = scripted_runtime();
    rt.image(IMAGE, tools());
    rt.image(BROKEN_REPORTER, losing_reporter());
    configure(&rt);
    cluster(rt).await
}

fn runner_with(cluster: &FakeCluster, graces: GracePeriods) -> JobRunner {
    let client = cluster.client();
    JobRunner::with_dispatcher(
        Arc::new(JobDispatcher::new(client.clone()).graces(graces)),
        Transport::ConfigMap.channel(client),
    )
}

fn runner(cluster: &FakeCluster) -> JobRunner {
    runner_with(cluster, GracePeriods::default())
}

fn req() -> Request {
    Request::new(IMAGE, ["/bin/ceph", "--version"]).timeout(Duration::from_secs(600))
}

/// The first pod of the namespace, if any.
fn pod(cluster: &FakeCluster) -> Option<Arc<Value>> {
    let (pods, _) = cluster.store().list(well_known::pods(), Some("default"));
    pods.into_iter().next()
}

fn main_waiting_reason(cluster: &FakeCluster) -> Option<String> {
    let pod = pod(cluster)?;
    let statuses = pod
        .pointer("/status/containerStatuses")?
        .as_array()?
        .clone();
    statuses
        .iter()
        .find(|c| c["name"] == MAIN_CONTAINER)?
        .pointer("/state/waiting/reason")?
        .as_str()
        .map(str::to_owned)
}

/// Polls one request, checking it made at most two operator requests.
async fn poll_once(cluster: &FakeCluster, runner: &JobRunner, key: &RunKey) -> RunStatus {
    let before = cluster.journal().len();
    let status = runner.poll(key).await.unwrap();
    let made = cluster.journal().entries()[before..]
        .iter()
        .filter(|e| !(e.verb == "create" && e.path.contains("/configmaps")))
        .count();
    assert!(made <= 2, "a poll made {made} requests");
    status
}

fn pending(status: RunStatus) -> Phase {
    match status {
        RunStatus::Pending(phase) => phase,
        RunStatus::Done(result) => panic!("expected pending, got {result:?}"),
    }
}

fn done(status: RunStatus) -> Arc<Result<Outcome, Error>> {
    match status {
        RunStatus::Done(result) => result,
        RunStatus::Pending(phase) => panic!("expected done, still {phase:?}"),
    }
}

/// Polls every 250 ms until done; the result and how long after `since` it came.
async fn poll_to_the_end(
    cluster: &FakeCluster,
    runner: &JobRunner,
    key: &RunKey,
    since: Instant,
) -> (Arc<Result<Outcome, Error>>, Duration) {
    loop {
        match poll_once(cluster, runner, key).await {
            RunStatus::Done(result) => return (result, since.elapsed()),
            RunStatus::Pending(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

async fn nothing_left(cluster: &FakeCluster, runner: &JobRunner) {
    runner.shutdown().await;
    wait_for_store(cluster, || leftovers(cluster, "default").is_empty()).await;
}

#[tokio::test(start_paused = true)]
async fn an_unpullable_image_waits_out_its_grace_across_a_restart() {
    let cluster = setup(|rt| rt.unpullable(IMAGE)).await;
    let first = runner(&cluster);
    let key = first.start(req()).await.unwrap();
    wait_for_store(&cluster, || {
        main_waiting_reason(&cluster).as_deref() == Some("ErrImagePull")
    })
    .await;
    let seen = Instant::now();
    // Before, a poll ended the run here with ImagePull.
    assert_eq!(
        pending(poll_once(&cluster, &first, &key).await),
        Phase::Starting
    );
    drop(first); // the operator restarts

    tokio::time::sleep_until(seen + Duration::from_secs(9)).await;
    let second = runner(&cluster);
    assert_eq!(
        pending(poll_once(&cluster, &second, &key).await),
        Phase::Starting,
        "the grace counts from the pod's timestamps, not from the restart, and is not over"
    );
    tokio::time::sleep_until(seen + Duration::from_secs(12)).await;
    let result = done(poll_once(&cluster, &second, &key).await);
    assert!(
        matches!(result.as_ref(), Err(Error::ImagePull { image, .. }) if image == IMAGE),
        "{result:?}"
    );
    nothing_left(&cluster, &second).await;
}

#[tokio::test(start_paused = true)]
async fn poll_and_run_end_an_unpullable_run_at_the_same_time() {
    let cluster = setup(|rt| rt.unpullable(IMAGE)).await;
    let blocking = runner(&cluster);
    let since = Instant::now();
    let err = blocking.run(req()).await.unwrap_err();
    let by_run = since.elapsed();
    assert!(matches!(err, Error::ImagePull { .. }), "{err:?}");
    nothing_left(&cluster, &blocking).await;

    let cluster = setup(|rt| rt.unpullable(IMAGE)).await;
    let polling = runner(&cluster);
    let since = Instant::now();
    let key = polling.start(req()).await.unwrap();
    let (result, by_poll) = poll_to_the_end(&cluster, &polling, &key, since).await;
    assert!(
        matches!(result.as_ref(), Err(Error::ImagePull { .. })),
        "{result:?}"
    );
    let grace = GracePeriods::default().image_pull;
    assert!(by_run >= grace, "run: {by_run:?}");
    assert!(by_poll >= grace, "poll: {by_poll:?}");
    let apart = by_poll.abs_diff(by_run);
    assert!(
        apart <= Duration::from_millis(1500),
        "run ended after {by_run:?}, poll after {by_poll:?}"
    );
    nothing_left(&cluster, &polling).await;
}

#[tokio::test(start_paused = true)]
async fn a_polled_run_honours_the_dispatchers_own_grace_periods() {
    let cluster = setup(|rt| rt.unpullable(IMAGE)).await;
    let graces = GracePeriods {
        image_pull: Duration::from_secs(60),
        ..GracePeriods::default()
    };
    let runner = runner_with(&cluster, graces);
    let key = runner.start(req()).await.unwrap();
    wait_for_store(&cluster, || {
        main_waiting_reason(&cluster).is_some_and(|r| r.contains("Pull"))
    })
    .await;
    let seen = Instant::now();
    tokio::time::sleep_until(seen + Duration::from_secs(30)).await;
    assert_eq!(
        pending(poll_once(&cluster, &runner, &key).await),
        Phase::Starting
    );
    tokio::time::sleep_until(seen + Duration::from_secs(58)).await;
    assert_eq!(
        pending(poll_once(&cluster, &runner, &key).await),
        Phase::Starting
    );
    tokio::time::sleep_until(seen + Duration::from_secs(62)).await;
    let result = done(poll_once(&cluster, &runner, &key).await);
    assert!(
        matches!(result.as_ref(), Err(Error::ImagePull { .. })),
        "{result:?}"
    );
    nothing_left(&cluster, &runner).await;
}

#[tokio::test(start_paused = true)]
async fn an_unschedulable_pod_waits_out_its_grace() {
    let cluster = setup(|_| {}).await;
    let runner = runner(&cluster);
    let key = runner
        .start(req().node_selector("disktype", "none-has-it"))
        .await
        .unwrap();
    wait_for_store(&cluster, || {
        pod(&cluster).is_some_and(|p| {
            p.pointer("/status/conditions/0/reason")
                .and_then(Value::as_str)
                == Some("Unschedulable")
        })
    })
    .await;
    let seen = Instant::now();
    assert_eq!(
        pending(poll_once(&cluster, &runner, &key).await),
        Phase::Scheduling
    );
    tokio::time::sleep_until(seen + Duration::from_secs(28)).await;
    assert_eq!(
        pending(poll_once(&cluster, &runner, &key).await),
        Phase::Scheduling
    );
    tokio::time::sleep_until(seen + Duration::from_secs(32)).await;
    let result = done(poll_once(&cluster, &runner, &key).await);
    assert!(
        matches!(result.as_ref(), Err(Error::Unschedulable { message }) if message.contains("node")),
        "{result:?}"
    );
    nothing_left(&cluster, &runner).await;
}

#[tokio::test(start_paused = true)]
async fn a_courier_that_ended_without_a_report_gets_the_report_grace() {
    let cluster = setup(|_| {}).await;
    let runner = runner(&cluster);
    let key = runner
        .start(req().reporter_image(BROKEN_REPORTER))
        .await
        .unwrap();
    wait_for_store(&cluster, || {
        pod(&cluster).is_some_and(|p| {
            p.pointer("/status/containerStatuses/0/state/terminated")
                .is_some()
        })
    })
    .await;
    let ended = Instant::now();
    assert_eq!(
        pending(poll_once(&cluster, &runner, &key).await),
        Phase::Reporting
    );
    tokio::time::sleep_until(ended + Duration::from_secs(4)).await;
    assert_eq!(
        pending(poll_once(&cluster, &runner, &key).await),
        Phase::Reporting
    );
    tokio::time::sleep_until(ended + Duration::from_secs(7)).await;
    let result = done(poll_once(&cluster, &runner, &key).await);
    assert!(
        matches!(result.as_ref(), Err(Error::CourierFailed { exit_code: 1, message }) if message.contains("lost on purpose")),
        "{result:?}"
    );
    nothing_left(&cluster, &runner).await;
}

struct RejectPods;

impl AdmissionCheck for RejectPods {
    fn admit(&self, def: &ResourceDef, _ns: &str, _obj: &mut Value) -> Result<(), ApiError> {
        if def != well_known::pods() {
            return Ok(());
        }
        Err(ApiError::new(
            403,
            "Forbidden",
            "pods is forbidden: violates PodSecurity \"restricted:latest\"".to_owned(),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_rejected_pod_is_looked_for_after_the_pod_creation_grace() {
    let cluster = setup(|_| {}).await;
    cluster.add_admission(Arc::new(RejectPods));
    let runner = runner(&cluster);
    let since = Instant::now();
    let key = runner.start(req()).await.unwrap();
    let events_listed = |c: &FakeCluster| {
        c.journal()
            .entries()
            .iter()
            .filter(|e| e.verb == "list" && e.path.contains("/events"))
            .count()
    };
    // Within the grace, a poll does not look at the events.
    assert_eq!(
        pending(poll_once(&cluster, &runner, &key).await),
        Phase::WaitingForPod
    );
    assert_eq!(events_listed(&cluster), 0);
    let (result, took) = poll_to_the_end(&cluster, &runner, &key, since).await;
    assert!(
        matches!(result.as_ref(), Err(Error::PodRejected { message }) if message.contains("violates PodSecurity")),
        "{result:?}"
    );
    let grace = GracePeriods::default().pod_creation;
    assert!(took >= grace, "{took:?}");
    assert!(took <= grace + Duration::from_secs(1), "{took:?}");
    assert!(events_listed(&cluster) >= 1);
    nothing_left(&cluster, &runner).await;
}

#[tokio::test(start_paused = true)]
async fn a_polled_run_times_out_under_paused_time() {
    let cluster = setup(|_| {}).await;
    let runner = runner(&cluster);
    let key = runner
        .start(Request::new(IMAGE, ["/bin/sleep", "3600"]).timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(
        pending(poll_once(&cluster, &runner, &key).await),
        Phase::Running
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // (The Job's activeDeadlineSeconds has removed the pod by now, so the phase the
    // timeout names is that of a Job without pod.)
    let result = done(poll_once(&cluster, &runner, &key).await);
    assert!(
        matches!(result.as_ref(), Err(Error::Timeout { timeout, .. }) if *timeout == Duration::from_secs(30)),
        "{result:?}"
    );
    nothing_left(&cluster, &runner).await;
}
