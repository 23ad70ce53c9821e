//! The Job controller through `kube::Client`, on the scripted runtime under paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_fake_cluster::json::{Value, json};
use cmdreporter_fake_cluster::resources::{ResourceDef, well_known};
use cmdreporter_fake_cluster::store::ChangeType;
use cmdreporter_fake_cluster::{AdmissionCheck, ApiError};
use common::*;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};

const LIMIT: Duration = Duration::from_secs(3600);

fn condition_types(job: &Job) -> Vec<(String, String)> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.reason.unwrap_or_default()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_succeeding_job_counts_its_pod_and_removes_the_tracking_finalizer() {
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let mut changes = cluster.store().subscribe_controller();
    jobs.create(&PostParams::default(), &job("ok", "0", json!({})))
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || job_has(&cluster, "ok", "Complete")).await;
    // As created, the pod carries the finalizer and the controller reference.
    let mut created = None;
    while let Ok(c) = changes.try_recv() {
        if c.resource == well_known::pods() && c.kind == ChangeType::Added {
            created = Some(c.object.clone());
        }
    }
    let pod: k8s_openapi::api::core::v1::Pod =
        cmdreporter_fake_cluster::json::from_value((*created.unwrap()).clone()).unwrap();
    assert_eq!(
        pod.metadata.finalizers.clone().unwrap_or_default(),
        vec!["batch.kubernetes.io/job-tracking".to_owned()]
    );
    let owner = &pod.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Job", Some(true), Some(true))
    );
    assert!(pod.metadata.name.as_deref().unwrap().starts_with("ok-"));
    let job = get_job(&cluster, "ok").await.unwrap();
    let status = job.status.clone().unwrap();
    assert_eq!(
        condition_types(&job),
        vec![
            ("SuccessCriteriaMet".into(), "CompletionsReached".into()),
            ("Complete".into(), "CompletionsReached".into())
        ]
    );
    assert_eq!(
        (
            status.succeeded,
            status.failed,
            status.active,
            status.ready,
            status.terminating
        ),
        (Some(1), None, None, Some(0), Some(0))
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    assert_eq!(
        job.metadata.generation,
        Some(1),
        "the controller's status writes are no new generation"
    );
    let pod = &job_pods(&cluster, "ok").await[0];
    assert!(
        pod.metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .is_empty()
    );
    let reasons: Vec<String> = events_of(&cluster, "ok")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(reasons, vec!["SuccessfulCreate", "Completed"]);
}

#[tokio::test(start_paused = true)]
async fn backoff_limit_creates_a_pod_per_failure_then_fails_the_job() {
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let start = tokio::time::Instant::now();
    jobs.create(
        &PostParams::default(),
        &job("flaky", "1", json!({"backoffLimit": 2})),
    )
    .await
    .unwrap();
    wait_until(&cluster, LIMIT, || job_has(&cluster, "flaky", "Failed")).await;
    let job = get_job(&cluster, "flaky").await.unwrap();
    assert_eq!(
        condition_types(&job),
        vec![
            ("FailureTarget".into(), "BackoffLimitExceeded".into()),
            ("Failed".into(), "BackoffLimitExceeded".into())
        ]
    );
    assert_eq!(job.status.unwrap().failed, Some(3));
    assert_eq!(job_pods(&cluster, "flaky").await.len(), 3);
    // Back-off between replacements: 10 s then 20 s.
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let events = events_of(&cluster, "flaky").await;
    assert_eq!(
        events.iter().filter(|e| e.0 == "SuccessfulCreate").count(),
        3
    );
    assert!(events.contains(&(
        "BackoffLimitExceeded".into(),
        "Job has reached the specified backoff limit".into()
    )));
}

#[tokio::test(start_paused = true)]
async fn active_deadline_deletes_the_pod_then_fails_the_job() {
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let start = tokio::time::Instant::now();
    jobs.create(
        &PostParams::default(),
        &job(
            "slow",
            "sleep",
            json!({"activeDeadlineSeconds": 30, "backoffLimit": 6}),
        ),
    )
    .await
    .unwrap();
    wait_until(&cluster, LIMIT, || job_has(&cluster, "slow", "Failed")).await;
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    let job = get_job(&cluster, "slow").await.unwrap();
    assert_eq!(
        condition_types(&job),
        vec![
            ("FailureTarget".into(), "DeadlineExceeded".into()),
            ("Failed".into(), "DeadlineExceeded".into())
        ]
    );
    let status = job.status.unwrap();
    assert_eq!((status.active, status.failed), (None, Some(1)));
    // The pod was deleted (gracefully) and is gone once stopped and counted.
    wait_until(&cluster, LIMIT, || count(&cluster, well_known::pods()) == 0).await;
    let events = events_of(&cluster, "slow").await;
    assert!(events.iter().any(|e| e.0 == "SuccessfulDelete"));
    assert!(events.contains(&(
        "DeadlineExceeded".into(),
        "Job was active longer than specified deadline".into()
    )));
}

#[tokio::test(start_paused = true)]
async fn pod_failure_policy_fails_the_job_on_a_matching_exit_code() {
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let policy = json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]}});
    jobs.create(&PostParams::default(), &job("fatal", "42", policy))
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || job_has(&cluster, "fatal", "Failed")).await;
    let job = get_job(&cluster, "fatal").await.unwrap();
    let failed = job.status.as_ref().unwrap().conditions.clone().unwrap()[1].clone();
    assert_eq!(failed.reason.as_deref(), Some("PodFailurePolicy"));
    let pod = job_pods(&cluster, "fatal").await[0]
        .metadata
        .name
        .clone()
        .unwrap();
    assert_eq!(
        failed.message.unwrap(),
        format!(
            "Container main for pod default/{pod} failed with exit code 42 matching FailJob rule at index 0"
        )
    );
    // One pod only: the policy failed the Job despite backoffLimit 6.
    assert_eq!(job_pods(&cluster, "fatal").await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn pod_failure_policy_ignore_does_not_count_the_failure() {
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let policy = json!({"backoffLimit": 0, "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}});
    jobs.create(&PostParams::default(), &job("ignored", "3", policy))
        .await
        .unwrap();
    // With backoffLimit 0 a counted failure would fail the Job; ignored ones are replaced.
    wait_until(&cluster, LIMIT, || job_pods_now(&cluster) >= 3).await;
    let job = get_job(&cluster, "ignored").await.unwrap();
    assert!(!job_has(&cluster, "ignored", "Failed"));
    assert_eq!(job.status.unwrap().failed, None);
}

fn job_pods_now(cluster: &cmdreporter_fake_cluster::FakeCluster) -> usize {
    count(cluster, well_known::pods())
}

struct DenyPods;

impl AdmissionCheck for DenyPods {
    fn admit(&self, def: &ResourceDef, _ns: &str, obj: &mut Value) -> Result<(), ApiError> {
        if def.plural != "pods" {
            return Ok(());
        }
        let name = obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "pods \"{name}\" is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot != true"
            ),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_rejected_pod_gives_a_failed_create_event_with_the_server_message() {
    let cluster = cluster().await;
    cluster.add_admission(Arc::new(DenyPods));
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    jobs.create(&PostParams::default(), &job("denied", "0", json!({})))
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || {
        count(&cluster, well_known::events()) >= 2
    })
    .await;
    let events = events_of(&cluster, "denied").await;
    assert_eq!(
        events[0],
        (
            "FailedCreate".into(),
            "Error creating: pods \"denied-\" is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot != true".into()
        )
    );
    assert_eq!(count(&cluster, well_known::pods()), 0);
}

#[tokio::test(start_paused = true)]
async fn ttl_after_finished_deletes_the_job_and_its_pods() {
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    jobs.create(
        &PostParams::default(),
        &job("short", "0", json!({"ttlSecondsAfterFinished": 100})),
    )
    .await
    .unwrap();
    wait_until(&cluster, LIMIT, || job_has(&cluster, "short", "Complete")).await;
    let finished = tokio::time::Instant::now();
    wait_until(&cluster, LIMIT, || count(&cluster, well_known::jobs()) == 0).await;
    let waited = finished.elapsed();
    assert!(
        waited >= Duration::from_secs(99) && waited <= Duration::from_secs(101),
        "{waited:?}"
    );
    // Foreground: the pod went before the Job.
    assert_eq!(count(&cluster, well_known::pods()), 0);
}
