//! How cases are drawn: the transport, the command, what the pod meets, several runs,
//! cancellation, the fault plan.

use std::time::Duration;

use cmdreporter_configmap::BUDGET_PER_STREAM;
use cmdreporter_core::ExitStatus;
use cmdreporter_fake_cluster::faults::{Fault, KubeletFault};
use cmdreporter_tests::Transport;
use proptest::prelude::*;

use crate::model::{Case, Command, FaultRule, Meets, Out, RunSpec, Via};
use crate::{META_ROOM, NS, OTHER_NS, SMALL_LOG_CAPACITY, TOKEN_LEN};

pub(crate) fn via() -> impl Strategy<Value = Via> {
    // Every transport of `Transport::all()`, the logs one also with a small capacity.
    let all: Vec<Via> = Transport::all()
        .iter()
        .flat_map(|t| match t {
            Transport::ConfigMap => vec![Via::ConfigMap],
            Transport::Logs => vec![Via::Logs, Via::LogsSmall],
        })
        .collect();
    proptest::sample::select(all)
}

pub(crate) fn boundaries() -> Vec<usize> {
    let cm = BUDGET_PER_STREAM - TOKEN_LEN;
    let logs = SMALL_LOG_CAPACITY as usize - TOKEN_LEN;
    vec![
        cm - 1,
        cm,
        cm + 1,
        logs / 2,
        logs - META_ROOM,
        logs,
        logs + 1,
    ]
}

/// Payload length: mostly small, sometimes at a capacity's boundary or beyond it.
pub(crate) fn payload_len(big: bool) -> BoxedStrategy<usize> {
    if !big {
        return prop_oneof![
            3 => Just(0usize),
            6 => 1usize..200,
            2 => 200usize..16 * 1024,
        ]
        .boxed();
    }
    prop_oneof![
        3 => Just(0usize),
        8 => 1usize..200,
        3 => 200usize..32 * 1024,
        1 => 32 * 1024..(SMALL_LOG_CAPACITY as usize + 16 * 1024),
        1 => proptest::sample::select(boundaries()),
        1 => BUDGET_PER_STREAM..BUDGET_PER_STREAM + 64 * 1024,
    ]
    .boxed()
}

pub(crate) fn out(big: bool) -> impl Strategy<Value = Option<Out>> {
    prop_oneof![
        1 => Just(None),
        6 => (payload_len(big), any::<bool>()).prop_map(|(len, binary)| Some(Out { len, binary })),
    ]
}

pub(crate) fn exit() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        3 => Just(ExitStatus::Code(0)),
        4 => (0i32..=255).prop_map(ExitStatus::Code),
        1 => (1i32..=31).prop_map(ExitStatus::Signal),
    ]
}

pub(crate) fn command(big: bool) -> impl Strategy<Value = Command> {
    (
        prop::bool::weighted(0.93),
        out(big),
        out(big),
        prop_oneof![
            Just(1usize),
            1usize..4096,
            Just(64 * 1024),
            Just(usize::MAX)
        ],
        exit(),
        prop_oneof![
            6 => Just(0u64),
            3 => 1u64..40,
            1 => 200u64..3000,
        ],
        any::<bool>(),
    )
        .prop_map(
            |(found, stdout, stderr, chunk, exit, delay, sleep_first)| Command {
                found,
                stdout,
                stderr,
                chunk,
                exit,
                delay,
                sleep_first,
            },
        )
}

pub(crate) fn meets() -> impl Strategy<Value = Meets> {
    prop_oneof![
        12 => Just(Meets::Nothing),
        1 => Just(Meets::UnpullableImage),
        1 => Just(Meets::Unschedulable),
        1 => Just(Meets::AdmissionRejects),
        1 => (1i32..=255).prop_map(Meets::InitFails),
        1 => (0u64..45_000).prop_map(Meets::Evicted),
        1 => Just(Meets::SecondPod),
        1 => Just(Meets::InvalidImageName),
        1 => Just(Meets::ContainerConfigError),
    ]
}

pub(crate) fn run_spec(big: bool, cancel: bool) -> impl Strategy<Value = RunSpec> {
    let cancel = if cancel {
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(0u64)),
            // Also on multiples of 50 ms, the instants at which runs end (grace periods,
            // whole-second delays, backoffs): in the middle of a run's cleanup (bug B).
            1 => (0u64..1200).prop_map(|k| Some(k * 50)),
            1 => (0u64..60_000).prop_map(Some),
        ]
        .boxed()
    } else {
        Just(None).boxed()
    };
    (
        proptest::sample::select(vec!["probe", "probe", "other", "x"]),
        proptest::sample::select(vec![NS, NS, OTHER_NS]),
        command(big),
        meets(),
        cancel,
    )
        .prop_map(
            |(name, namespace, command, meets, cancel_after_ms)| RunSpec {
                name,
                namespace,
                command,
                meets,
                cancel_after_ms,
            },
        )
}

pub(crate) fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => proptest::sample::select(vec![409u16, 429, 500, 503]).prop_map(Fault::Status),
        2 => Just(Fault::LostResponse),
        1 => (1u64..3000).prop_map(|ms| Fault::Latency(Duration::from_millis(ms))),
        1 => Just(Fault::Compact),
        1 => (0usize..4).prop_map(Fault::CutWatchAfter),
        1 => any::<bool>().prop_map(|applied| Fault::Disconnect { applied }),
        1 => (1u64..60).prop_map(|s| Fault::Outage(Duration::from_secs(s))),
    ]
}

pub(crate) fn kubelet_fault() -> impl Strategy<Value = (u8, KubeletFault)> {
    (
        5u8..=40,
        prop_oneof![
            (1i32..=31).prop_map(KubeletFault::Signal),
            Just(KubeletFault::Evict),
            Just(KubeletFault::DuplicatePod),
        ],
    )
}

pub(crate) fn fault_rule() -> impl Strategy<Value = FaultRule> {
    prop_oneof![
        9 => any_fault_rule().boxed(),
        // An API outage as the courier delivers: its first create starts it.
        1 => (1u64..60)
            .prop_map(|s| (Some("create"), Some("configmaps"), 100u8, Fault::Outage(Duration::from_secs(s))))
            .boxed(),
    ]
}

pub(crate) fn any_fault_rule() -> impl Strategy<Value = FaultRule> {
    (
        proptest::sample::select(vec![
            None,
            Some("create"),
            Some("get"),
            Some("list"),
            Some("watch"),
            Some("delete"),
        ]),
        proptest::sample::select(vec![
            None,
            Some("jobs"),
            Some("pods"),
            Some("configmaps"),
            Some("events"),
        ]),
        1u8..=30,
        fault(),
    )
}

pub(crate) fn single_case() -> impl Strategy<Value = Case> {
    (any::<u64>(), via(), any::<bool>(), run_spec(true, false)).prop_map(
        |(seed, via, shared_watches, run)| Case {
            seed,
            via,
            shared_watches,
            runs: vec![run],
            faults: Vec::new(),
            kubelet: Vec::new(),
            max_in_flight: None,
        },
    )
}

pub(crate) fn concurrent_case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        via(),
        any::<bool>(),
        prop::collection::vec(run_spec(false, true), 2..=4),
        prop::option::weighted(0.3, 1usize..=3),
    )
        .prop_map(|(seed, via, shared_watches, runs, max_in_flight)| Case {
            seed,
            via,
            shared_watches,
            runs,
            faults: Vec::new(),
            kubelet: Vec::new(),
            max_in_flight,
        })
}

pub(crate) fn faulted_case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        via(),
        any::<bool>(),
        prop::collection::vec(run_spec(false, true), 1..=2),
        prop::collection::vec(fault_rule(), 0..=3),
        prop::collection::vec(kubelet_fault(), 0..=2),
    )
        .prop_map(|(seed, via, shared_watches, runs, faults, kubelet)| Case {
            seed,
            via,
            shared_watches,
            runs,
            faults,
            kubelet,
            max_in_flight: None,
        })
}
