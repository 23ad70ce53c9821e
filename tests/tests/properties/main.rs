//! Property tests of the whole flow: random commands, random pod conditions, several runs
//! at once, cancellation at a random point and a seeded fault plan, for every transport,
//! on the fake cluster's scripted runtime under paused time.
//!
//! Invariants, for every case:
//! (a) a run returns within its timeout plus a small bound;
//! (b) its result is exactly what the command did, or the typed error the injected
//!     condition implies (see [`table::expect`] and [`table::fault_allows`]);
//! (c) never the report of another run or pod (each command prints a token of its own);
//! (d) once the runs returned and the garbage collector settled, nothing is left;
//! (e) within one pod the command ran at most once.
//!
//! What a case draws: the transport (shared or per-run watches); the command (exit code,
//! signal, output from empty to beyond the capacity, binary, slow, not found); what the pod
//! meets (unpullable, unschedulable, admission rejection, failing init container, eviction,
//! a second pod, `InvalidImageName` and `CreateContainerConfigError` from a mutating
//! webhook); the namespace; several runs with the same or different names, some dropped at
//! any millisecond, some behind `max_in_flight`; API faults on any verb and resource
//! (409/429/500/503, lost answers, latency, compaction, server-side watch cuts, dropped
//! connections, an outage, also one that starts as the courier delivers); kubelet faults
//! (signal, eviction, a duplicate pod).
//!
//! `PROPTEST_CASES` sets the number of cases of each property (default 1,000).
//!
//! The parts: [`model`] (what a case is), [`strategies`] (how cases are drawn),
//! [`command`] (what the scripted command does), [`conditions`] (what its pod meets),
//! [`table`] (what each run must end with), [`run`] (running a case), [`invariants`]
//! (checking it), [`bugs`] (the minimal reproductions of the bugs found).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod bugs;
mod command;
mod conditions;
mod invariants;
mod model;
mod run;
mod strategies;
mod table;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use crate::run::{block_on, run_case};
use crate::strategies::{concurrent_case, faulted_case, single_case};

/// The timeout of every run.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);
/// How long past its timeout a run may take to return when the API answers (the Job's
/// DELETE after the timeout).
pub(crate) const SLACK: Duration = Duration::from_secs(2);
/// How long the garbage collector may take to remove what a finished run created.
pub(crate) const SETTLE: Duration = Duration::from_secs(60);
/// The payload capacity of the small-log courier variant.
pub(crate) const SMALL_LOG_CAPACITY: u64 = 96 * 1024;
/// Room the logs report's metadata may take in the capacity.
pub(crate) const META_ROOM: usize = 8 * 1024;
/// Length of every token.
pub(crate) const TOKEN_LEN: usize = 14;
/// The namespace of most runs.
pub(crate) const NS: &str = "default";
/// The other namespace some runs use.
pub(crate) const OTHER_NS: &str = "tools";
/// The Secret the webhook of [`model::Meets::ContainerConfigError`] refers to; it never exists.
pub(crate) const MISSING_SECRET: &str = "cmdreporter-test-missing";

/// With `PROPS_PROGRESS=N` (and `--nocapture`), each property prints to stderr how many
/// cases it ran (shrinking included) every N cases, and the time since its first: for long
/// runs.
fn progress(property: &'static str) {
    static SEEN: Mutex<BTreeMap<&'static str, (u64, Option<std::time::Instant>)>> =
        Mutex::new(BTreeMap::new());
    let Some(every) = std::env::var("PROPS_PROGRESS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
    else {
        return;
    };
    let mut seen = SEEN.lock().unwrap();
    let (n, since) = seen.entry(property).or_default();
    *n += 1;
    let since = *since.get_or_insert_with(std::time::Instant::now);
    if *n % every == 0 {
        eprintln!("props: {property}: {n} cases in {:?}", since.elapsed());
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2000,
        // Beside the crate (tests/), whatever the working directory of the test binary.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/properties.txt"
        )))),
        // Deterministic by default (CI runs the same cases every time); set
        // PROPTEST_RNG_SEED to explore others.
        rng_seed: match std::env::var("PROPTEST_RNG_SEED") {
            Ok(s) => s
                .parse()
                .map(proptest::test_runner::RngSeed::Fixed)
                .unwrap_or(proptest::test_runner::RngSeed::Random),
            Err(_) => proptest::test_runner::RngSeed::Fixed(20_261_125),
        },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// One run: every command behaviour (exit codes, signals, output from empty to beyond
    /// the capacity, binary, slow, not found) and every pod condition.
    #[test]
    fn one_run_ends_exactly_as_its_command_did(case in single_case()) {
        progress("one_run");
        block_on(run_case(case))?;
    }

    /// Several runs at once, with the same or different base names, some dropped at a
    /// random point: each gets its own report or its own error, and nothing is left.
    #[test]
    fn concurrent_and_dropped_runs_never_mix_or_leak(case in concurrent_case()) {
        progress("concurrent");
        block_on(run_case(case))?;
    }

    /// Runs under a seeded fault plan: API errors by verb and resource, lost responses,
    /// latency, compaction, watch cuts, dropped connections, outages, kubelet faults. A run ends as its command did or with the error a fault implies;
    /// nothing is left and nothing runs twice.
    #[test]
    fn faults_never_lose_mix_or_leak(case in faulted_case()) {
        progress("faults");
        block_on(run_case(case))?;
    }
}
