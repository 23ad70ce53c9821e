//! Minimal reproductions of the bugs the properties found outside tests/ (reported in
//! issue 8), each a deterministic test.

use std::time::Duration;

use cmdreporter_core::{Error, ExitStatus};
use cmdreporter_fake_cluster::faults::{Fault, KubeletFault};

use crate::model::{Case, Command, Meets, Out, RunSpec, Via};
use crate::run::{block_on, run_case};
use crate::{NS, OTHER_NS};

fn quick(found: bool, delay: u64, meets: Meets, cancel_after_ms: Option<u64>) -> RunSpec {
    RunSpec {
        name: "probe",
        namespace: NS,
        command: Command {
            found,
            stdout: None,
            stderr: None,
            chunk: 1,
            exit: ExitStatus::Code(0),
            delay,
            sleep_first: false,
        },
        meets,
        cancel_after_ms,
    }
}

#[test]
fn bug_b_a_run_dropped_while_it_cleans_up_leaves_its_job() {
    block_on(run_case(Case {
        seed: 0,
        via: Via::ConfigMap,
        shared_watches: false,
        runs: vec![
            quick(false, 0, Meets::Nothing, None),
            quick(false, 0, Meets::UnpullableImage, Some(10_000)),
        ],
        faults: Vec::new(),
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

#[test]
fn bug_c_an_evicted_pod_with_the_logs_transport_ends_with_a_raw_404() {
    block_on(run_case(Case {
        seed: 0,
        via: Via::Logs,
        shared_watches: false,
        runs: vec![quick(true, 29, Meets::Evicted(0), None)],
        faults: Vec::new(),
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

#[test]
fn bug_d_a_second_pod_of_the_job_makes_the_configmap_run_fail() {
    let mut run = quick(true, 1, Meets::SecondPod, None);
    run.command.sleep_first = true;
    run.command.stdout = Some(Out {
        len: 16,
        binary: false,
    });
    run.command.stderr = Some(Out {
        len: 20,
        binary: false,
    });
    block_on(run_case(Case {
        seed: 0,
        via: Via::ConfigMap,
        shared_watches: false,
        runs: vec![run],
        faults: Vec::new(),
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

#[test]
fn bug_a_a_shared_watch_error_keeps_its_status() {
    block_on(run_case(Case {
        seed: 14_276_192_238_835_893_364,
        via: Via::ConfigMap,
        shared_watches: true,
        runs: vec![quick(false, 0, Meets::UnpullableImage, None)],
        faults: vec![(Some("watch"), Some("pods"), 100, Fault::Status(409))],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

#[test]
fn bug_e_a_pod_evicted_before_the_watch_saw_it_waits_for_the_timeout() {
    block_on(run_case(Case {
        seed: 15_937_042_248_880_535_483,
        via: Via::ConfigMap,
        shared_watches: false,
        runs: vec![quick(true, 2, Meets::Evicted(1000), None)],
        faults: vec![(
            Some("watch"),
            None,
            100,
            Fault::Latency(Duration::from_millis(1001)),
        )],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

/// Bug F: a 409 Conflict answer to the Job's DELETE (the API server's "the object has been
/// modified; please try again") ended the cleanup, and the Job, its pod and its report
/// stayed until the TTL. Found by `faults_never_lose_mix_or_leak` once 409s could hit any
/// verb (core/src/dispatcher.rs: the cleanup now retries a 409).
#[test]
fn bug_f_a_conflict_on_the_jobs_delete_leaves_the_job() {
    block_on(run_case(Case {
        seed: 9_910_313_588_586_440_276,
        via: Via::ConfigMap,
        shared_watches: false,
        runs: vec![
            quick(false, 0, Meets::Nothing, Some(50)),
            quick(false, 0, Meets::Nothing, Some(0)),
        ],
        faults: vec![(None, Some("jobs"), 20, Fault::Status(409))],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

/// Bug G: a pod deleted before it reported (here a DuplicatePod fault's extra pod, which
/// the progress watch saw first and the Job's controller deleted beyond parallelism) ended
/// the run with the state its deletion left, `InitContainerFailed { exit_code: 143,
/// message: "Error" }` (or `CourierFailed` likewise, with either transport), as if the
/// reporter image were broken. core/src/dispatcher.rs (`deleted_or`, also in poll) now
/// says `JobFailed { reason: "PodDeleted" }`; the logs transport leaves it to the pod watch.
#[test]
fn bug_g_a_pod_deleted_by_its_job_controller_looks_like_a_broken_reporter() {
    block_on(run_case(Case {
        seed: 13_290_046_613_253_934_338,
        via: Via::ConfigMap,
        shared_watches: true,
        runs: vec![
            quick(false, 0, Meets::Nothing, None),
            quick(false, 0, Meets::Evicted(0), Some(5050)),
        ],
        faults: Vec::new(),
        kubelet: vec![
            (13, KubeletFault::Signal(1)),
            (8, KubeletFault::DuplicatePod),
        ],
        max_in_flight: None,
    }))
    .unwrap();
}

/// Bug H: an API outage a little longer than the cleanup's retries (about 26 s) left the
/// Job, its pod and its report to the TTL: the cleanup gave up. Found by
/// `faults_never_lose_mix_or_leak` once outages were generated (core/src/runner.rs: a
/// cleanup that fails with a transient error goes on in the background, `shutdown` waits
/// for it).
#[test]
fn bug_h_an_api_outage_longer_than_the_retries_leaves_the_job() {
    block_on(run_case(Case {
        seed: 2_298_004_786_254_701_731,
        via: Via::ConfigMap,
        shared_watches: false,
        runs: vec![quick(false, 0, Meets::Nothing, Some(50))],
        faults: vec![(
            Some("create"),
            Some("configmaps"),
            100,
            Fault::Outage(Duration::from_secs(27)),
        )],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

/// Found by the 100,000-case run of `faults_never_lose_mix_or_leak` (a bug of the test, not
/// of the code): during an API outage longer than the test's eviction retries, every DELETE
/// of the pod got 503, yet the test counted the pod as evicted and expected the run to end
/// early. The eviction now retries through the outage and asks the store whether it
/// happened.
#[test]
fn an_eviction_refused_by_an_outage_is_not_an_eviction() {
    block_on(run_case(Case {
        seed: 1_183_258_212_759_516_553,
        via: Via::ConfigMap,
        shared_watches: false,
        runs: vec![quick(true, 200, Meets::Evicted(0), None)],
        faults: vec![
            (
                None,
                Some("pods"),
                14,
                Fault::Outage(Duration::from_secs(4)),
            ),
            (None, None, 1, Fault::Status(409)),
        ],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

/// Bug I, found by the 100,000-case run of `faults_never_lose_mix_or_leak`:
/// core/src/watch.rs resumes a cut watch from the resourceVersion of the last event, also
/// while the watch (started with resourceVersion unset) is still sending its synthetic
/// ADDED events, which come by name, not in resourceVersion order. Cut after the first of
/// them (here the shared pod watch, server-side, after one event), it resumes past the
/// other run's pod, which it then never sees: that run times out waiting for its pod
/// instead of ending Unschedulable. Fixed in core/src/watch.rs: until the initial events
/// are known to be over (a MODIFIED, DELETED or BOOKMARK event), a cut watch starts over
/// with resourceVersion unset (and says `Restarted`) rather than resume.
#[test]
fn bug_i_a_watch_cut_during_its_initial_events_loses_a_pod() {
    let mut unschedulable = quick(false, 0, Meets::Unschedulable, None);
    unschedulable.namespace = OTHER_NS;
    let mut other = quick(false, 0, Meets::Nothing, None);
    other.name = "other";
    other.namespace = OTHER_NS;
    block_on(run_case(Case {
        seed: 7_507_728_518_804_105_897,
        via: Via::ConfigMap,
        shared_watches: true,
        runs: vec![unschedulable, other],
        faults: vec![
            (Some("create"), None, 1, Fault::Status(409)),
            (Some("watch"), Some("pods"), 15, Fault::CutWatchAfter(1)),
        ],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

/// Bug J, found by a 100,000-case run (seed 8) of `faults_never_lose_mix_or_leak`, brought
/// in by bug D's fix: the ConfigMap receive waited for the progress watch to see the run's
/// pod before taking a report; a pod deleted before the watch saw it (here during an API
/// outage) left the run waiting for its timeout although its report was there.
/// transport-configmap/src/receive.rs: after a 5 s grace the report is taken.
#[test]
fn bug_j_a_report_whose_pod_the_watch_never_saw_waits_for_the_timeout() {
    let mut evicted = quick(true, 22, Meets::Evicted(0), None);
    evicted.command.found = true;
    block_on(run_case(Case {
        seed: 0,
        via: Via::ConfigMap,
        shared_watches: false,
        runs: vec![quick(false, 0, Meets::Nothing, None), evicted],
        faults: vec![(
            Some("create"),
            Some("configmaps"),
            100,
            Fault::Outage(Duration::from_secs(22)),
        )],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
}

/// Bug K, found by a 100,000-case run (seed 8) of `faults_never_lose_mix_or_leak`, after
/// 45,738 cases: the command is not found, and the courier's create of its ConfigMap starts
/// a 27 s API outage. The courier retries for about 26 s, gives up, writes "cannot deliver
/// the report" to its termination message and exits 1; the pod fails and the Job's
/// controller marks the Job `Failed` (`BackoffLimitExceeded`). The operator's pod watch
/// never connected during the outage, so its Job check found the failed Job first and
/// listed the Job's pods to say why; that LIST got a 409 (1% of pod requests) and the run
/// ended with the Job's bare condition, `JobFailed { reason: "BackoffLimitExceeded" }`,
/// hiding why the courier failed. core/src/dispatcher.rs: a failed LIST is no evidence,
/// the check looks again; the run ends with the courier's own error.
#[test]
fn bug_k_a_courier_that_cannot_deliver_through_an_outage_looks_like_a_bare_job_failure() {
    let results = block_on(run_case(Case {
        seed: 17_912_454_293_045_223_564,
        via: Via::ConfigMap,
        shared_watches: false,
        runs: vec![quick(false, 0, Meets::Nothing, None)],
        faults: vec![
            (
                Some("create"),
                Some("configmaps"),
                100,
                Fault::Outage(Duration::from_secs(27)),
            ),
            (None, Some("pods"), 1, Fault::Status(409)),
        ],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
    match results.as_slice() {
        [Some(Err(Error::CourierFailed { exit_code, message }))] => {
            assert_eq!(*exit_code, cmdreporter_core::courier::EXIT_UNDELIVERED);
            assert!(
                message.contains("cannot deliver the report") && message.contains("503"),
                "{message}"
            );
        }
        other => panic!("expected the courier's failure to deliver, got {other:?}"),
    }
}

/// Bug L, found by a 100,000-case run (seed 8) of `faults_never_lose_mix_or_leak` once bug
/// K was fixed, after 13,129 cases: a DuplicatePod kubelet fault gives the Job a second pod,
/// and the shared pod watch starts once both exist. Its synthetic ADDED events come by
/// name, so the duplicate comes first and becomes the watched pod; the watch is then cut
/// after that one event. While it is down, the Job's controller deletes the duplicate
/// (beyond parallelism); the watch starts over (`Restarted`) and its new initial events
/// hold only the other pod, and no deletion. core/src/dispatcher.rs ignored `Restarted`,
/// so the run waited for a pod that no longer existed until its timeout (phase
/// Starting). It now asks the API, after a restart, whether the watched pod is still
/// there, and ends as for a deleted pod (`JobFailed { reason: "PodDeleted" }`).
#[test]
fn bug_l_a_watched_pod_deleted_while_the_watch_restarts_waits_for_the_timeout() {
    let results = block_on(run_case(Case {
        seed: 14_013_175_709_099_460_161,
        via: Via::ConfigMap,
        shared_watches: true,
        runs: vec![quick(false, 0, Meets::Nothing, None)],
        faults: vec![(None, Some("pods"), 8, Fault::CutWatchAfter(1))],
        kubelet: vec![(7, KubeletFault::DuplicatePod)],
        max_in_flight: None,
    }))
    .unwrap();
    expect_pod_deleted(&results, "was deleted before it reported");
}

/// Bug M, found by a 100,000-case run (seed 8) of `faults_never_lose_mix_or_leak` once bug
/// L was fixed, after 60,259 cases: logs transport, the pod evicted as its command starts,
/// 23% of requests dropped without an answer. The pod watch's first request is dropped;
/// the command ends at once and the courier prints its report, so the pod succeeds as its
/// deletion comes, and the Job is Complete; the watch reconnects once the pod is gone. The
/// Job check looked only for a `Failed` Job, so the run waited for its timeout (phase
/// WaitingForPod) with no pod left to read the report from. core/src/dispatcher.rs: a
/// Complete Job whose pods are all gone, unseen, ends the run after the report grace as a
/// deleted pod (`JobFailed { reason: "PodDeleted" }`); a ConfigMap report, still there,
/// is taken first.
#[test]
fn bug_m_a_completed_job_whose_pod_was_deleted_unseen_waits_for_the_timeout() {
    let mut run = quick(true, 0, Meets::Evicted(0), None);
    run.command.stderr = Some(Out {
        len: 50,
        binary: false,
    });
    let results = block_on(run_case(Case {
        seed: 3_078_116_857_274_202_488,
        via: Via::Logs,
        shared_watches: false,
        runs: vec![run],
        faults: vec![(None, None, 23, Fault::Disconnect { applied: false })],
        kubelet: Vec::new(),
        max_in_flight: None,
    }))
    .unwrap();
    expect_pod_deleted(&results, "deleted before its report was read");
}

/// The one run of `results` ended as a deleted pod, with `part` in its message.
fn expect_pod_deleted<T: std::fmt::Debug>(results: &[Option<Result<T, Error>>], part: &str) {
    match results {
        [Some(Err(Error::JobFailed { reason, message }))] => {
            assert_eq!(reason, "PodDeleted");
            assert!(message.contains(part), "{message}");
        }
        other => panic!("expected the pod's deletion ({part}), got {other:?}"),
    }
}
