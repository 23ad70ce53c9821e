//! Property tests of the whole flow: random commands, random pod conditions, several runs
//! at once, cancellation at a random point and a seeded fault plan, for every transport,
//! on the fake cluster's scripted runtime under paused time.
//!
//! Invariants, for every case:
//! (a) a run returns within its timeout plus a small bound;
//! (b) its result is exactly what the command did, or the typed error the injected
//!     condition implies (see [`expect`] and [`fault_allows`]);
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

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmdreporter_configmap::{BUDGET_PER_STREAM, ConfigMapChannel};
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_core::{
    Captured, Error, ExitStatus, GracePeriods, JobDispatcher, JobRunner, Outcome, Phase, Request,
    Runner,
};
use cmdreporter_fake_cluster::faults::{Fault, FaultPlan, InjectedFault, KubeletFault};
use cmdreporter_fake_cluster::resources::{ResourceDef, well_known};
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{AdmissionCheck, ApiError, FakeCluster, ScriptedImage};
use cmdreporter_tests::props::{Invocations, failing_reporter_image, small_log_reporter_image};
use cmdreporter_tests::{Transport, leftovers, reporter_image, scripted_runtime, wait_for_store};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use serde_json::Value;
use tokio::time::Instant;

/// The timeout of every run.
const TIMEOUT: Duration = Duration::from_secs(120);
/// How long past its timeout a run may take to return when the API answers (the Job's
/// DELETE after the timeout).
const SLACK: Duration = Duration::from_secs(2);
/// How long the garbage collector may take to remove what a finished run created.
const SETTLE: Duration = Duration::from_secs(60);
/// The payload capacity of the small-log courier variant.
const SMALL_LOG_CAPACITY: u64 = 96 * 1024;
/// Room the logs report's metadata may take in the capacity.
const META_ROOM: usize = 8 * 1024;
/// Length of every token.
const TOKEN_LEN: usize = 14;
/// The namespace of most runs.
const NS: &str = "default";
/// The other namespace some runs use.
const OTHER_NS: &str = "tools";
/// The Secret the webhook of [`Meets::ContainerConfigError`] refers to; it never exists.
const MISSING_SECRET: &str = "cmdreporter-test-missing";

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

// ---------------------------------------------------------------------------------------
// The model: what a case is.

/// The transport, and for the logs transport the courier's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    ConfigMap,
    /// The logs transport with the real courier (about 7.4 MiB: every output here fits).
    Logs,
    /// The logs transport with a courier whose capacity is [`SMALL_LOG_CAPACITY`].
    LogsSmall,
}

impl Via {
    fn transport(self) -> Transport {
        match self {
            Via::ConfigMap => Transport::ConfigMap,
            Via::Logs | Via::LogsSmall => Transport::Logs,
        }
    }
}

fn via() -> impl Strategy<Value = Via> {
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

/// One output stream: empty, or the run's token followed by `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Out {
    len: usize,
    binary: bool,
}

/// What the command does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Command {
    /// Whether the program exists in the image.
    found: bool,
    stdout: Option<Out>,
    stderr: Option<Out>,
    /// Size of each write.
    chunk: usize,
    exit: ExitStatus,
    /// Seconds it sleeps (0: fast), before or after writing.
    delay: u64,
    sleep_first: bool,
}

/// What the pod meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meets {
    Nothing,
    UnpullableImage,
    Unschedulable,
    AdmissionRejects,
    /// The install step of the reporter image fails with this exit code.
    InitFails(i32),
    /// The pod is evicted (deleted, as the Eviction API does) this long after its command
    /// started.
    Evicted(u64),
    /// A second pod of the same Job appears (as Kubernetes may, rarely, start one).
    SecondPod,
    /// A mutating admission webhook gives the command's container an image reference the
    /// kubelet cannot parse (`InvalidImageName`).
    InvalidImageName,
    /// A mutating admission webhook adds an env var from a Secret that does not exist
    /// (`CreateContainerConfigError`).
    ContainerConfigError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RunSpec {
    name: &'static str,
    /// `default`, or another namespace.
    namespace: &'static str,
    command: Command,
    meets: Meets,
    /// Drop the run's future after this many milliseconds.
    cancel_after_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Case {
    seed: u64,
    via: Via,
    shared_watches: bool,
    runs: Vec<RunSpec>,
    faults: Vec<FaultRule>,
    /// Kubelet faults: the percentage of pods each befalls.
    kubelet: Vec<(u8, KubeletFault)>,
    /// The runner's bound on runs in flight, if any.
    max_in_flight: Option<usize>,
}

fn boundaries() -> Vec<usize> {
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
fn payload_len(big: bool) -> BoxedStrategy<usize> {
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

fn out(big: bool) -> impl Strategy<Value = Option<Out>> {
    prop_oneof![
        1 => Just(None),
        6 => (payload_len(big), any::<bool>()).prop_map(|(len, binary)| Some(Out { len, binary })),
    ]
}

fn exit() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        3 => Just(ExitStatus::Code(0)),
        4 => (0i32..=255).prop_map(ExitStatus::Code),
        1 => (1i32..=31).prop_map(ExitStatus::Signal),
    ]
}

fn command(big: bool) -> impl Strategy<Value = Command> {
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

fn meets() -> impl Strategy<Value = Meets> {
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

fn run_spec(big: bool, cancel: bool) -> impl Strategy<Value = RunSpec> {
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

fn fault() -> impl Strategy<Value = Fault> {
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

fn kubelet_fault() -> impl Strategy<Value = (u8, KubeletFault)> {
    (
        5u8..=40,
        prop_oneof![
            (1i32..=31).prop_map(KubeletFault::Signal),
            Just(KubeletFault::Evict),
            Just(KubeletFault::DuplicatePod),
        ],
    )
}

type FaultRule = (Option<&'static str>, Option<&'static str>, u8, Fault);

fn fault_rule() -> impl Strategy<Value = FaultRule> {
    prop_oneof![
        9 => any_fault_rule().boxed(),
        // An API outage as the courier delivers: its first create starts it.
        1 => (1u64..60)
            .prop_map(|s| (Some("create"), Some("configmaps"), 100u8, Fault::Outage(Duration::from_secs(s))))
            .boxed(),
    ]
}

fn any_fault_rule() -> impl Strategy<Value = FaultRule> {
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

// ---------------------------------------------------------------------------------------
// The command's bytes.

fn token(seed: u64, i: usize) -> String {
    let t = format!("<{:08x}-r{i:02}>", seed as u32);
    assert_eq!(t.len(), TOKEN_LEN);
    t
}

/// The bytes a stream carries: the token, then `len` bytes of text or of binary noise.
fn stream_bytes(token: &str, out: Option<Out>, salt: u64) -> Vec<u8> {
    let Some(out) = out else { return Vec::new() };
    let mut data = token.as_bytes().to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ salt ^ (out.len as u64);
    data.extend((0..out.len).map(|i| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if out.binary {
            // Sure not to be UTF-8: a 0xff now and then.
            if i % 97 == 0 { 0xff } else { (x >> 32) as u8 }
        } else if i % 61 == 60 {
            b'\n'
        } else {
            b'a' + (x % 26) as u8
        }
    }));
    data
}

struct Script {
    token: String,
    command: Command,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

type Scripts = Arc<Mutex<Vec<Arc<Script>>>>;

/// The test image: `/bin/cmd <token>` does what the run's script says.
fn tools(scripts: Scripts, invocations: Invocations) -> ScriptedImage {
    ScriptedImage::new().program("/bin/cmd", move |ctx: ProgramContext| {
        let scripts = scripts.clone();
        let invocations = invocations.clone();
        async move {
            let token = ctx.argv.get(1).cloned().unwrap_or_default();
            invocations.record(&ctx, &token);
            let script = scripts
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.token == token)
                .cloned()
                .expect("a script for every token");
            let c = &script.command;
            let delay = Duration::from_secs(c.delay);
            if c.sleep_first {
                tokio::time::sleep(delay).await;
            }
            let chunk = c.chunk.max(1);
            let mut out = script.stdout.chunks(chunk);
            let mut err = script.stderr.chunks(chunk);
            loop {
                let (o, e) = (out.next(), err.next());
                if o.is_none() && e.is_none() {
                    break;
                }
                if let Some(o) = o {
                    ctx.write_stdout(o).await;
                }
                if let Some(e) = e {
                    ctx.write_stderr(e).await;
                }
            }
            if !c.sleep_first {
                tokio::time::sleep(delay).await;
            }
            match c.exit {
                ExitStatus::Code(code) => Exit::Code(code),
                ExitStatus::Signal(s) => Exit::Signal(s),
            }
        }
    })
}

/// An admission webhook acting on the pods of runs, found by their command's image: it
/// rejects some (as Pod Security would), gives some an image the kubelet cannot parse,
/// and adds to some an env var from a Secret that does not exist.
#[derive(Default)]
struct Webhook {
    reject: BTreeSet<String>,
    invalid_image: BTreeSet<String>,
    missing_secret: BTreeSet<String>,
}

const REJECTION: &str = "violates PodSecurity \"restricted:latest\" (property test)";

/// The image reference the webhook gives a run's command container (upper case: invalid).
fn invalid_image_of(image: &str) -> String {
    image.to_uppercase()
}

impl AdmissionCheck for Webhook {
    fn admit(&self, def: &ResourceDef, _ns: &str, obj: &mut Value) -> Result<(), ApiError> {
        if def != well_known::pods() {
            return Ok(());
        }
        let containers = obj
            .pointer_mut("/spec/containers")
            .and_then(Value::as_array_mut);
        for c in containers.into_iter().flatten() {
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if self.reject.contains(&image) {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!("pods is forbidden: {REJECTION}"),
                ));
            }
            if self.invalid_image.contains(&image) {
                c["image"] = Value::String(invalid_image_of(&image));
            }
            if self.missing_secret.contains(&image) {
                let env = c.as_object_mut().and_then(|c| {
                    c.entry("env")
                        .or_insert_with(|| Value::Array(Vec::new()))
                        .as_array_mut()
                });
                if let Some(env) = env {
                    env.push(serde_json::json!({"name": "INJECTED", "valueFrom":
                        {"secretKeyRef": {"name": MISSING_SECRET, "key": "token"}}}));
                }
            }
        }
        Ok(())
    }
}

/// The first pod of run `i` (found by its image) once `ready` holds for it.
async fn pod_of(cluster: &FakeCluster, image: &str, ready: fn(&Value) -> bool) -> Arc<Value> {
    let find = || {
        let (pods, _) = cluster.store().list(well_known::pods(), None);
        pods.into_iter().find(|p| {
            p.pointer("/spec/containers/0/image")
                .and_then(Value::as_str)
                == Some(image)
                && ready(p)
        })
    };
    let mut found = None;
    wait_for_store(cluster, || {
        found = find();
        found.is_some()
    })
    .await;
    found.expect("the store outlives the wait")
}

fn command_started(p: &Value) -> bool {
    p.pointer("/status/containerStatuses/0/state/running")
        .is_some()
}

/// Evicts the run's pod, or starts a second pod for its Job. Whether it did.
async fn disrupt(cluster: &FakeCluster, image: &str, meets: Meets) -> bool {
    match meets {
        Meets::Evicted(after_ms) => {
            let pod = pod_of(cluster, image, command_started).await;
            let at = |k: &str| pod.pointer(k).and_then(Value::as_str).unwrap().to_owned();
            let (name, ns) = (at("/metadata/name"), at("/metadata/namespace"));
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(cluster.client(), &ns);
            // Through the API, as the Eviction API does; retried while faults (an outage)
            // hit it. Whether it was evicted is what the store says, not the answers: a lost
            // answer may hide a deletion, a 503 never does.
            let uid = at("/metadata/uid");
            for _ in 0..600 {
                match api.delete(&name, &Default::default()).await {
                    Ok(_) => break,
                    Err(kube::Error::Api(s)) if s.code == 404 => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            match cluster.store().get(well_known::pods(), &ns, &name) {
                Ok(p) => {
                    p.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid.as_str())
                        || p.pointer("/metadata/deletionTimestamp").is_some()
                }
                Err(_) => true,
            }
        }
        Meets::SecondPod => {
            let pod = pod_of(cluster, image, |_| true).await;
            let ns = pod["metadata"]["namespace"].as_str().unwrap().to_owned();
            let mut second = (*pod).clone();
            let name = format!("{}-second", second["metadata"]["name"].as_str().unwrap());
            let meta = second["metadata"].as_object_mut().unwrap();
            meta.retain(|k, _| {
                ["labels", "annotations", "ownerReferences", "finalizers"].contains(&k.as_str())
            });
            meta.insert("name".into(), Value::String(name));
            second.as_object_mut().unwrap().remove("status");
            if let Some(spec) = second["spec"].as_object_mut() {
                spec.remove("nodeName");
            }
            cluster
                .api()
                .create(well_known::pods(), &ns, second)
                .is_ok()
        }
        _ => false,
    }
}

fn image_of(i: usize) -> String {
    format!("tools-{i}:1.0")
}

fn broken_reporter_of(i: usize) -> String {
    format!("broken-reporter-{i}:1.0")
}

// ---------------------------------------------------------------------------------------
// The table: what each run must end with.

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Outcome {
        exit: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    NotFound,
    Timeout,
    ImagePull,
    Unschedulable,
    Rejected,
    InitFailed(i32),
    InvalidImageName,
    ContainerConfig,
}

/// What a run must end with when the API answers every request.
fn expect(run: &RunSpec, script: &Script) -> Expect {
    match run.meets {
        Meets::UnpullableImage => return Expect::ImagePull,
        Meets::Unschedulable => return Expect::Unschedulable,
        Meets::AdmissionRejects => return Expect::Rejected,
        Meets::InitFails(code) => return Expect::InitFailed(code),
        Meets::InvalidImageName => return Expect::InvalidImageName,
        Meets::ContainerConfigError => return Expect::ContainerConfig,
        Meets::Nothing | Meets::Evicted(_) | Meets::SecondPod => {}
    }
    let c = &run.command;
    if !c.found {
        Expect::NotFound
    } else if Duration::from_secs(c.delay) >= TIMEOUT {
        Expect::Timeout
    } else {
        Expect::Outcome {
            exit: c.exit,
            stdout: script.stdout.clone(),
            stderr: script.stderr.clone(),
        }
    }
}

/// Until when (from the start of the run) the error must have come: detection in
/// seconds, not at the timeout.
fn detected_within(e: &Expect) -> Duration {
    match e {
        Expect::ImagePull => GracePeriods::default().image_pull + Duration::from_secs(5),
        Expect::Unschedulable => GracePeriods::default().unschedulable + Duration::from_secs(5),
        Expect::Rejected => GracePeriods::default().pod_creation + Duration::from_secs(5),
        Expect::InitFailed(_)
        | Expect::NotFound
        | Expect::InvalidImageName
        | Expect::ContainerConfig => Duration::from_secs(5),
        Expect::Timeout | Expect::Outcome { .. } => TIMEOUT + SLACK,
    }
}

/// Whether `got` is exactly `src` as the transport delivers it: whole, or head and tail
/// with the omission stated.
fn check_stream(
    what: &str,
    src: &[u8],
    other: usize,
    got: &Captured,
    via: Via,
) -> Result<(), String> {
    let len = src.len();
    if got.total_bytes != len as u64 {
        return Err(format!("{what}: total {} != {len}", got.total_bytes));
    }
    let whole = match via {
        Via::ConfigMap => len <= BUDGET_PER_STREAM,
        Via::Logs => true,
        Via::LogsSmall => len + other + META_ROOM <= SMALL_LOG_CAPACITY as usize,
    };
    if whole || got.omitted.is_none() {
        if got.omitted.is_some() || got.data != src {
            return Err(format!(
                "{what}: {len} bytes must come back whole, got {} bytes, omitted {:?}",
                got.data.len(),
                got.omitted
            ));
        }
        if via == Via::ConfigMap && !whole {
            return Err(format!(
                "{what}: {len} bytes beyond the budget came back whole"
            ));
        }
        return Ok(());
    }
    let gap = got.omitted.unwrap();
    let kept = got.data.len();
    let head = gap.at as usize;
    if head > kept || kept >= len {
        return Err(format!(
            "{what}: gap at {head} of {kept} kept, {len} in all"
        ));
    }
    let tail = kept - head;
    if got.data[..head] != src[..head] || got.data[head..] != src[len - tail..] {
        return Err(format!(
            "{what}: head {head} / tail {tail} are not the stream's"
        ));
    }
    if gap.bytes as usize != len - kept {
        return Err(format!(
            "{what}: gap of {} bytes, {} left out",
            gap.bytes,
            len - kept
        ));
    }
    if via == Via::ConfigMap {
        let h = BUDGET_PER_STREAM / 2;
        if head != h || tail != BUDGET_PER_STREAM - h {
            return Err(format!(
                "{what}: head {head} tail {tail}, budget split is {h}"
            ));
        }
    }
    Ok(())
}

fn check_outcome(o: &Outcome, run: &RunSpec, expected: &Expect, via: Via) -> Result<(), String> {
    let Expect::Outcome {
        exit,
        stdout,
        stderr,
    } = expected
    else {
        return Err(format!(
            "expected {expected:?}, got outcome exit {:?}",
            o.exit
        ));
    };
    if o.exit != *exit {
        return Err(format!(
            "exit {:?}, the command ended with {exit:?}",
            o.exit
        ));
    }
    check_stream("stdout", stdout, stderr.len(), &o.stdout, via)?;
    check_stream("stderr", stderr, stdout.len(), &o.stderr, via)?;
    if !o.job_name.starts_with(&format!("{}-", run.name)) || !o.job_name.ends_with(&o.run_id) {
        return Err(format!(
            "job {:?} / run {:?} are not this run's",
            o.job_name, o.run_id
        ));
    }
    Ok(())
}

fn error_matches(e: &Error, expected: &Expect, image: &str) -> bool {
    match (expected, e) {
        (
            Expect::NotFound,
            Error::CommandNotStarted {
                command, not_found, ..
            },
        ) => command == "/bin/missing" && *not_found,
        (Expect::Timeout, Error::Timeout { timeout, phase }) => {
            *timeout == TIMEOUT && *phase == Phase::Running
        }
        (Expect::ImagePull, Error::ImagePull { image: i, .. }) => i == image,
        (Expect::Unschedulable, Error::Unschedulable { .. }) => true,
        (Expect::Rejected, Error::PodRejected { message }) => message.contains(REJECTION),
        (
            Expect::InitFailed(code),
            Error::InitContainerFailed {
                exit_code, message, ..
            },
        ) => exit_code == code && message.contains("install failed on purpose"),
        (
            Expect::InvalidImageName,
            Error::ImagePull {
                image: i, reason, ..
            },
        ) => *i == invalid_image_of(image) && reason == "InvalidImageName",
        (Expect::ContainerConfig, Error::ContainerConfig { container, message }) => {
            container == cmdreporter_core::job::MAIN_CONTAINER && message.contains(MISSING_SECRET)
        }
        _ => false,
    }
}

/// Whether the injected faults imply `e`: the API error the server answered (once the
/// retries of transient ones are spent), a courier that could not deliver when its
/// requests were faulted, a log read that failed.
fn fault_allows(e: &Error, injected: &[InjectedFault], via: Via) -> bool {
    let codes: BTreeSet<u16> = injected
        .iter()
        .filter_map(|f| match f.fault {
            Fault::Status(c) => Some(c),
            Fault::Outage(_) => Some(503),
            Fault::LostResponse => Some(504),
            _ => None,
        })
        .collect();
    let touched = |r: &str| injected.iter().any(|f| f.path.contains(r));
    match e {
        // A connection dropped with no answer, as often as the retries allow.
        Error::Api(k) if matches!(**k, kube::Error::Service(_)) => injected
            .iter()
            .any(|f| matches!(f.fault, Fault::Disconnect { .. })),
        Error::Api(k) => cmdreporter_core::error::api_code(k).is_some_and(|c| codes.contains(&c)),
        Error::CourierFailed { message, .. } => {
            via == Via::ConfigMap && touched("/configmaps") && message.contains("cannot deliver")
        }
        Error::Transport { .. } => via != Via::ConfigMap && touched("/log"),
        // A container killed by signal N as it starts: the install step fails with 128 + N.
        Error::InitContainerFailed { exit_code, .. } => injected
            .iter()
            .any(|f| f.fault == Fault::Kubelet(KubeletFault::Signal(exit_code - 128))),
        Error::JobFailed { reason, .. } => {
            reason == "Evicted"
                && injected
                    .iter()
                    .any(|f| f.fault == Fault::Kubelet(KubeletFault::Evict))
        }
        _ => false,
    }
}

/// About how long a run needs, once dispatched, to end as `expected` says (a bound).
fn needs(expected: &Expect, command: &Command) -> Duration {
    match expected {
        Expect::Outcome { .. } => Duration::from_secs(command.delay + 10),
        Expect::Timeout => TIMEOUT,
        e => detected_within(e),
    }
}

/// What is left in the namespaces runs use.
fn left_in_namespaces(cluster: &FakeCluster) -> Vec<(&'static str, String, Vec<String>)> {
    [NS, OTHER_NS]
        .into_iter()
        .flat_map(|ns| {
            leftovers(cluster, ns)
                .into_iter()
                .map(move |(r, n)| (ns, r, n))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Running a case.

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

/// What each run of a case returned (`None`: dropped).
type Results = Vec<Option<Result<Outcome, Error>>>;

/// Runs a case and checks the invariants; what each run returned.
async fn run_case(case: Case) -> Result<Results, TestCaseError> {
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
        runs.iter().zip(&results).zip(disrupted).enumerate()
    {
        let (start, took) = (*start, *took);
        // How long the run waited for a slot (`max_in_flight`), if it got one.
        let queued = job_created
            .lock()
            .unwrap()
            .get(image.as_str())
            .map(|at| at.saturating_duration_since(start));
        let evicted = disrupted && matches!(run.meets, Meets::Evicted(_));
        // A Job with two pods: its controller deletes one (beyond parallelism, or once the
        // other ended the Job). If it was the watched pod, the run fails as deleted, since
        // only the watched pod's report counts.
        let stopped = pods_of_image
            .lock()
            .unwrap()
            .get(image.as_str())
            .is_some_and(|jobs| {
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
            Err(e) if fault_allows(e, &injected, case.via) => Ok(()),
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
    let left = left_in_namespaces(&cluster);
    if std::env::var("PROPS_JOURNAL").is_ok() {
        for e in cluster.journal().entries() {
            eprintln!("{e}");
        }
    }
    if settled.is_err() || !left.is_empty() {
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
        pods_of_image.lock().unwrap()
    );
    Ok(results.into_iter().map(|(result, _, _)| result).collect())
}

fn single_case() -> impl Strategy<Value = Case> {
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

fn concurrent_case() -> impl Strategy<Value = Case> {
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

fn faulted_case() -> impl Strategy<Value = Case> {
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

// ---------------------------------------------------------------------------------------
// Minimal reproductions of bugs the properties found outside tests/ (reported in issue 8).
// Ignored until fixed: `cargo test -p cmdreporter-tests --test properties -- --ignored`.

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
    match results.as_slice() {
        [Some(Err(Error::JobFailed { reason, message }))] => {
            assert_eq!(reason, "PodDeleted");
            assert!(
                message.contains("was deleted before it reported"),
                "{message}"
            );
        }
        other => panic!("expected the watched pod's deletion, got {other:?}"),
    }
}
