//! Running a case: the fake cluster with its faults, the runs at once, the disruptions,
//! and what the cluster saw.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmdreporter_configmap::ConfigMapChannel;
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_core::{Error, JobDispatcher, JobRunner, Outcome, Request, Runner};
use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::faults::FaultPlan;
use cmdreporter_fake_cluster::json::Value;
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_tests::props::{Invocations, failing_reporter_image, small_log_reporter_image};
use cmdreporter_tests::{leftovers, reporter_image, scripted_runtime, wait_for_store};
use proptest::test_runner::TestCaseError;
use tokio::time::Instant;

use crate::command::{Script, Scripts, stream_bytes, token, tools};
use crate::conditions::{Webhook, broken_reporter_of, disrupt, image_of};
use crate::invariants::{Observed, check};
use crate::model::{Case, Meets, RunSpec, Via};
use crate::table::{Expect, expect};
use crate::{NS, OTHER_NS, SETTLE, SMALL_LOG_CAPACITY, TIMEOUT};

/// What is left in the namespaces runs use.
pub(crate) fn left_in_namespaces(
    cluster: &FakeCluster,
) -> Vec<(&'static str, String, Vec<String>)> {
    [NS, OTHER_NS]
        .into_iter()
        .flat_map(|ns| {
            leftovers(cluster, ns)
                .into_iter()
                .map(move |(r, n)| (ns, r, n))
        })
        .collect()
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

/// What each run of a case returned (`None`: dropped).
pub(crate) type Results = Vec<Option<Result<Outcome, Error>>>;

/// What a run returned (`None`: dropped), when it started, and how long it took.
pub(crate) type Returned = (Option<Result<Outcome, Error>>, Instant, Duration);

/// A run as prepared: its spec, script, request, expected end and image.
pub(crate) type Prepared = (RunSpec, Arc<Script>, Request, Expect, String);

/// Runs a case and checks the invariants; what each run returned.
pub(crate) async fn run_case(case: Case) -> Result<Results, TestCaseError> {
    let scripts: Scripts = Arc::default();
    let invocations = Invocations::default();
    let rt = scripted_runtime();
    if case.via == Via::LogsSmall {
        rt.image(
            DEFAULT_REPORTER_IMAGE,
            small_log_reporter_image(SMALL_LOG_CAPACITY),
        );
    } else {
        rt.image(DEFAULT_REPORTER_IMAGE, reporter_image());
    }
    let mut webhook = Webhook::default();
    let mut runs = Vec::new();
    for (i, run) in case.runs.iter().enumerate() {
        let token = token(case.seed, i);
        let script = Arc::new(Script {
            stdout: stream_bytes(&token, run.command.stdout, case.seed ^ (2 * i as u64)),
            stderr: stream_bytes(&token, run.command.stderr, case.seed ^ (2 * i as u64 + 1)),
            token: token.clone(),
            command: run.command.clone(),
        });
        scripts.lock().unwrap().push(script.clone());
        let image = image_of(i);
        rt.image(&image, tools(scripts.clone(), invocations.clone()));
        let program = if run.command.found {
            "/bin/cmd"
        } else {
            "/bin/missing"
        };
        let mut req = Request::new(image.clone(), [program, token.as_str()])
            .name(run.name)
            .namespace(run.namespace)
            .timeout(TIMEOUT);
        match run.meets {
            Meets::Nothing | Meets::Evicted(_) | Meets::SecondPod => {}
            Meets::UnpullableImage => rt.unpullable(&image),
            Meets::Unschedulable => req = req.node_selector("cmdreporter.test/nowhere", "true"),
            Meets::AdmissionRejects => {
                webhook.reject.insert(image.clone());
            }
            Meets::InvalidImageName => {
                webhook.invalid_image.insert(image.clone());
            }
            Meets::ContainerConfigError => {
                webhook.missing_secret.insert(image.clone());
            }
            Meets::InitFails(code) => {
                rt.image(&broken_reporter_of(i), failing_reporter_image(code));
                req = req.reporter_image(broken_reporter_of(i));
            }
        }
        let expected = expect(run, &script);
        runs.push((run.clone(), script, req, expected, image));
    }
    let mut builder = FakeCluster::builder().seed(case.seed).scripted(rt);
    if !case.faults.is_empty() || !case.kubelet.is_empty() {
        let mut plan = FaultPlan::new(case.seed);
        for (verb, resource, pct, fault) in &case.faults {
            plan = plan.rule(*verb, *resource, f64::from(*pct) / 100.0, fault.clone());
        }
        for (pct, fault) in &case.kubelet {
            plan = plan.kubelet(f64::from(*pct) / 100.0, *fault);
        }
        builder = builder.faults(plan);
    }
    let cluster = builder.build().await.expect("fake cluster");
    cluster.create_namespace(OTHER_NS);
    cluster.add_admission(Arc::new(webhook));
    let client = cluster.client();
    let mut dispatcher = JobDispatcher::new(client.clone());
    let mut channel = case.via.transport().channel(client.clone());
    if case.shared_watches {
        dispatcher = dispatcher.shared_watches();
        if case.via == Via::ConfigMap {
            channel = Arc::new(ConfigMapChannel::new(client).shared_watches());
        }
    }
    let mut runner =
        JobRunner::with_dispatcher(Arc::new(dispatcher), channel).seed_run_ids(case.seed);
    if let Some(n) = case.max_in_flight {
        runner = runner.max_in_flight(n);
    }

    let disruptions = futures::future::join_all(runs.iter().map(|(run, _, _, _, image)| {
        let cluster = &cluster;
        async move {
            if matches!(run.meets, Meets::Evicted(_) | Meets::SecondPod) {
                // Bounded: a pod that never gets there (the run ended first) is not disrupted.
                tokio::time::timeout(TIMEOUT, disrupt(cluster, image, run.meets))
                    .await
                    .unwrap_or(false)
            } else {
                false
            }
        }
    }));
    let all_runs = futures::future::join_all(runs.iter().map(|(run, _, req, _, _)| {
        let runner = &runner;
        let req = req.clone();
        async move {
            let start = Instant::now();
            let fut = runner.run(req);
            let result = match run.cancel_after_ms {
                Some(ms) => tokio::time::timeout(Duration::from_millis(ms), fut)
                    .await
                    .ok(),
                None => Some(fut.await),
            };
            (result, start, start.elapsed())
        }
    }));
    // The Jobs of each run (by its image) and their pods, as the pods appear.
    let pods_of_image: Mutex<BTreeMap<String, BTreeMap<String, BTreeSet<String>>>> =
        Mutex::default();
    // When each run's Job was created (by its image): a run queued behind
    // `max_in_flight` waited until then.
    let job_created: Mutex<BTreeMap<String, Instant>> = Mutex::default();
    let mut changes = cluster.store().subscribe_controller();
    let record_jobs = async {
        // Every change, in order: a pod created and deleted at once is seen too.
        while let Some(c) = changes.recv().await {
            if c.resource == *well_known::jobs() {
                let image = c.object.pointer("/spec/template/spec/containers/0/image");
                if let Some(image) = image.and_then(Value::as_str) {
                    let mut created = job_created.lock().unwrap();
                    created.entry(image.to_owned()).or_insert_with(Instant::now);
                }
                continue;
            }
            if c.resource != *well_known::pods() {
                continue;
            }
            let at = |k: &str| {
                c.object
                    .pointer(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            // By the run's image, also when the webhook made it invalid (upper case).
            let image = at("/spec/containers/0/image").map(|i| i.to_lowercase());
            let job = at("/metadata/labels/job-name");
            if let (Some(image), Some(job)) = (image, job) {
                let mut seen = pods_of_image.lock().unwrap();
                seen.entry(image)
                    .or_default()
                    .entry(job)
                    .or_default()
                    .insert(c.name.clone());
            }
        }
    };
    let runs_done = futures::future::join(all_runs, disruptions);
    tokio::pin!(runs_done);
    let (results, disrupted) = tokio::select! {
        biased;
        done = &mut runs_done => done,
        () = record_jobs => runs_done.await,
    };
    let injected = cluster.injected_faults();
    runner.shutdown().await;
    let settled = tokio::time::timeout(
        SETTLE,
        wait_for_store(&cluster, || left_in_namespaces(&cluster).is_empty()),
    )
    .await;
    let seen = Observed {
        cluster: &cluster,
        injected,
        settled: settled.is_ok(),
        job_created: job_created.into_inner().unwrap(),
        pods_of_image: pods_of_image.into_inner().unwrap(),
        invocations: &invocations,
    };
    check(&case, &runs, &results, disrupted, &seen)?;
    Ok(results.into_iter().map(|(result, _, _)| result).collect())
}
