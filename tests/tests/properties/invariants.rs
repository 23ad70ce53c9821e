//! Checking a case: (a) to (e) for every run, from what the runs returned and what the
//! cluster saw.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cmdreporter_core::{Error, Phase};
use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::faults::{Fault, InjectedFault};
use cmdreporter_fake_cluster::json::Value;
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_tests::props::Invocations;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::time::Instant;

use crate::model::{Case, Meets};
use crate::run::{Prepared, Returned, left_in_namespaces};
use crate::table::{check_outcome, detected_within, error_matches, fault_allows, needs};
use crate::{SETTLE, SLACK, TIMEOUT};

/// What the cluster saw of a case once its runs returned and the garbage collector settled
/// (or did not).
pub(crate) struct Observed<'a> {
    pub(crate) cluster: &'a FakeCluster,
    pub(crate) injected: Vec<InjectedFault>,
    /// Whether everything the runs created was gone within [`SETTLE`](crate::SETTLE).
    pub(crate) settled: bool,
    /// When each run's Job was created (by its image).
    pub(crate) job_created: BTreeMap<String, Instant>,
    /// The Jobs of each run (by its image) and their pods.
    pub(crate) pods_of_image: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    pub(crate) invocations: &'a Invocations,
}

/// Checks the invariants of a case.
pub(crate) fn check(
    case: &Case,
    runs: &[Prepared],
    results: &[Returned],
    disrupted: Vec<bool>,
    seen: &Observed<'_>,
) -> Result<(), TestCaseError> {
    let (cluster, injected, invocations) = (seen.cluster, &seen.injected, seen.invocations);

    // Jobs whose controller deleted one of their pods: with two pods, one completed or
    // failed the Job and the other was stopped (if it was the watched one, it never
    // reports, and only the watched pod's report counts).
    let (events, _) = cluster.store().list(well_known::events(), None);
    let pod_deleted: BTreeSet<String> = events
        .iter()
        .filter(|e| e.pointer("/reason").and_then(Value::as_str) == Some("SuccessfulDelete"))
        .filter_map(|e| e.pointer("/involvedObject/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let mut problems = Vec::new();
    // (a) and (b) and (c), per run.
    // Time the API made the runs wait: latency, and outages.
    let latency: Duration = injected
        .iter()
        .filter_map(|f| match f.fault {
            Fault::Latency(d) | Fault::Outage(d) => Some(d),
            _ => None,
        })
        .sum();
    for (i, (((run, script, _, expected, image), (result, start, took)), disrupted)) in
        runs.iter().zip(results).zip(disrupted).enumerate()
    {
        let (start, took) = (*start, *took);
        // How long the run waited for a slot (`max_in_flight`), if it got one.
        let queued = seen
            .job_created
            .get(image.as_str())
            .map(|at| at.saturating_duration_since(start));
        let evicted = disrupted && matches!(run.meets, Meets::Evicted(_));
        // A Job with two pods: its controller deletes one (beyond parallelism, or once the
        // other ended the Job). If it was the watched pod, the run fails as deleted, since
        // only the watched pod's report counts.
        let stopped = seen.pods_of_image.get(image.as_str()).is_some_and(|jobs| {
            jobs.iter()
                .any(|(job, pods)| pods.len() > 1 && pod_deleted.contains(job))
        });
        let Some(result) = result else {
            // Cancelled: only (d) and (e) apply.
            continue;
        };
        // Behind `max_in_flight`, the wait in line counts in the timeout: a run never
        // dispatched times out queued; one dispatched late may time out before what it
        // expects could happen.
        let late = case.max_in_flight.is_some()
            && match queued {
                // Its slot may come at the very instant it times out.
                None => matches!(
                    result,
                    Err(Error::Timeout {
                        phase: Phase::Queued | Phase::Dispatching,
                        ..
                    })
                ),
                Some(w) => {
                    w + needs(expected, &run.command) >= TIMEOUT
                        && matches!(result, Err(Error::Timeout { .. }))
                }
            };
        let bound = if late {
            TIMEOUT + SLACK
        } else if injected.is_empty() {
            (detected_within(expected) + queued.unwrap_or_default()).min(TIMEOUT + SLACK)
        } else {
            // Transient errors are retried: the Job's DELETE after the timeout may take its
            // whole backoff (about 16 s) plus the latency injected.
            TIMEOUT + SLACK + Duration::from_secs(17) + latency
        };
        if took > bound {
            problems.push(format!(
                "run {i}: took {took:?}, more than {bound:?} ({expected:?})"
            ));
        }
        if evicted && matches!(result, Err(Error::Timeout { .. })) {
            problems.push(format!(
                "run {i}: its pod was evicted, yet it waited for its timeout"
            ));
        }
        let verdict = match &result {
            _ if late => Ok(()),
            Ok(o) => check_outcome(o, run, expected, case.via),
            Err(e) if error_matches(e, expected, image) => Ok(()),
            Err(e) if fault_allows(e, injected, case.via) => Ok(()),
            // An evicted pod ends the run with the Job's failure, or its courier's.
            Err(Error::JobFailed { .. } | Error::CourierFailed { .. }) if evicted => Ok(()),
            // A watched pod its Job's controller deleted (the Job had two pods).
            Err(Error::JobFailed { reason, .. }) if stopped && reason == "PodDeleted" => Ok(()),
            Err(e) => Err(format!("error {e:?}, expected {expected:?}")),
        };
        if let Err(p) = verdict {
            problems.push(format!("run {i} ({:?}): {p}", run.meets));
        }
        // The command never runs when the pod cannot start; it runs once when it reported.
        let ran = invocations.count(&script.token);
        let must_not_run = !matches!(
            run.meets,
            Meets::Nothing | Meets::Evicted(_) | Meets::SecondPod
        ) || !run.command.found;
        if must_not_run && ran != 0 {
            problems.push(format!(
                "run {i}: the command ran {ran} times, its pod could not run it"
            ));
        }
        if result.is_ok() && ran == 0 {
            problems.push(format!("run {i}: an outcome, but the command never ran"));
        }
    }
    // (d)
    let left = left_in_namespaces(cluster);
    if std::env::var("PROPS_JOURNAL").is_ok() {
        for e in cluster.journal().entries() {
            eprintln!("{e}");
        }
    }
    if !seen.settled || !left.is_empty() {
        problems.push(format!("left behind {SETTLE:?} after the runs: {left:?}"));
    }
    // (e)
    let repeated = invocations.repeated();
    if !repeated.is_empty() {
        problems.push(format!(
            "a pod ran its command more than once: {repeated:?}"
        ));
    }
    prop_assert!(
        problems.is_empty(),
        "{problems:#?}\ninjected faults: {injected:#?}\npods by image and Job: {:?}\nJobs whose controller deleted a pod: {pod_deleted:?}",
        seen.pods_of_image
    );
    Ok(())
}
