//! Seeded fault injection at the API server: error answers by verb and resource (409, 429
//! with `Retry-After`, 500, 503), requests applied whose answer is lost, dropped connections
//! (before or after the request is applied), added latency and forced compaction of the
//! watch history.
//!
//! Every request is matched against the plan's rules in order; the first rule whose verb
//! and resource match draws from the plan's generator (ChaCha8 seeded by the plan's seed)
//! and fires with its probability. The draws happen in request order, so the same seed and
//! the same sequence of requests give the same faults in the same order. Each injected
//! fault is kept in [`Faults::injected`], and the faulted request is recorded in the
//! journal with the status the client saw.
//!
//! Kubelet faults ([`FaultPlan::kubelet`]: a container killed by a signal, an eviction, a
//! second pod for the same Job, a lost node) are drawn once per pod as the kubelet starts it,
//! in the order pods start, from a generator of their own (so API faults and kubelet
//! faults do not shift each other); each is recorded in [`Faults::injected`] with the verb
//! `kubelet` and the pod's path.
//!
//! ```
//! use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
//! let plan = FaultPlan::new(7)
//!     .rule(Some("create"), Some("configmaps"), 0.5, Fault::Status(503))
//!     .rule(None, None, 0.1, Fault::Latency(std::time::Duration::from_millis(20)));
//! assert_eq!(plan.rules().len(), 2);
//! ```

use std::sync::Mutex;
use std::time::Duration;

use crate::json::json;
use bytes::Bytes;
use http::{Method, Request, Response, header};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::api::{ApiServer, ResponseBody, json_response};
use crate::journal::JournalEntry;

/// Annotation on a second pod started by [`KubeletFault::DuplicatePod`]: the uid of the
/// pod it copies.
pub const DUPLICATE_OF: &str = "fake-cluster.cmdreporter.dev/duplicate-of";

/// Mixed into the seed of the kubelet's generator.
const KUBELET_STREAM: u64 = 0x6b75_6265_6c65_7421;

/// A header set on the replay of a request whose answer is lost, so it is not faulted twice.
const REPLAY_HEADER: &str = "x-fake-cluster-fault-replay";

/// What a rule does to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status (409 Conflict, 429 TooManyRequests with `Retry-After: 1`,
    /// 500 InternalError, 503 ServiceUnavailable), without applying the request.
    Status(u16),
    /// Apply the request, then answer 504 Timeout as if the answer were lost on the way.
    LostResponse,
    /// Delay the request by this long, then handle it.
    Latency(Duration),
    /// Drop the whole watch history before handling the request: watches resuming from an
    /// earlier resourceVersion get 410 Expired.
    Compact,
    /// A kubelet fault (see [`FaultPlan::kubelet`]); as an API rule it does nothing.
    Kubelet(KubeletFault),
    /// For a watch: the stream ends (the connection drops) after this many events; the
    /// client must watch again from its last resourceVersion. Other requests are handled.
    CutWatchAfter(usize),
    /// The connection drops with no answer, the request applied first when `applied`.
    /// Over HTTP the server closes the connection without writing a response; through
    /// the in-process [`crate::FakeService`] the call fails with an I/O error of kind
    /// `ConnectionReset`, which `kube::Client` returns as `kube::Error::Service`. The
    /// journal records the request with status 0.
    Disconnect {
        /// Whether the request was applied before the connection dropped.
        applied: bool,
    },
    /// An API server outage: this request and every request after it, for this long, is
    /// answered 503 ServiceUnavailable without being applied; each of them is recorded as
    /// an injected `Status(503)`. Watches already open go on. A plan's outage happens
    /// once.
    Outage(Duration),
}

/// Marks a response that must not be sent: the connection is dropped instead (see
/// [`Fault::Disconnect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

/// Whether the connection must be dropped instead of sending `resp`.
pub fn is_disconnect<B>(resp: &Response<B>) -> bool {
    resp.extensions().get::<Disconnected>().is_some()
}

/// The error the in-process service returns for a dropped connection.
pub fn disconnect_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection closed before message completed",
    )
}

/// What the kubelet does wrong to a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeletFault {
    /// Each container of the pod is killed by this signal as it starts: it never runs its
    /// command and reports exit code 128 + N, reason `Error`.
    Signal(i32),
    /// The pod is evicted before its containers start: phase Failed, reason `Evicted`,
    /// condition `DisruptionTarget`.
    Evict,
    /// A second pod like this one is started (another pod for the same Job, as Kubernetes
    /// may rarely do). It carries the annotation [`DUPLICATE_OF`] and draws no fault of
    /// its own.
    DuplicatePod,
    /// The pod's node is lost as the pod's first container starts (the container shows
    /// as running and never runs its command): its kubelet stops posting status for every
    /// pod of the node and runs none of their containers any more. After the node monitor
    /// grace period (50 s) the node's Ready condition is `Unknown` (`NodeStatusUnknown`,
    /// "Kubelet stopped posting node status.") and it gets the
    /// `node.kubernetes.io/unreachable` taints (NoSchedule, and NoExecute with
    /// `timeAdded`); its pods are marked not ready, and each is evicted once its
    /// toleration of the NoExecute taint runs out (300 s from DefaultTolerationSeconds
    /// unless the pod says otherwise): condition `DisruptionTarget` (reason
    /// `DeletionByTaintManager`), then a graceful delete. With no kubelet to finish it the
    /// pod stays terminating, as on a real cluster, until the Node object is deleted (the
    /// pod garbage collector then force-deletes the pods bound to it).
    NodeLost,
}

/// One rule of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`), or
    /// any.
    pub verb: Option<String>,
    /// Resource plural (`configmaps`, `pods`, `jobs`), or any.
    pub resource: Option<String>,
    /// Chance of firing on a matching request, from 0 to 1.
    pub probability: f64,
    /// What happens.
    pub fault: Fault,
}

/// A seeded plan of faults.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct FaultPlan {
    seed: u64,
    rules: Vec<FaultRule>,
    kubelet: Vec<(f64, KubeletFault)>,
}

impl FaultPlan {
    /// An empty plan drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rules: Vec::new(),
            kubelet: Vec::new(),
        }
    }

    /// Adds a kubelet fault that befalls each pod with this probability. For each pod the
    /// kubelet draws once and the first fault whose cumulated probability covers the draw
    /// fires.
    pub fn kubelet(mut self, probability: f64, fault: KubeletFault) -> Self {
        self.kubelet.push((probability, fault));
        self
    }

    /// Adds a rule.
    pub fn rule(
        mut self,
        verb: Option<&str>,
        resource: Option<&str>,
        probability: f64,
        fault: Fault,
    ) -> Self {
        self.rules.push(FaultRule {
            verb: verb.map(str::to_owned),
            resource: resource.map(str::to_owned),
            probability,
            fault,
        });
        self
    }

    /// The rules, in matching order.
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }
}

/// One fault that was injected.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedFault {
    /// Position of the request among those the plan saw (0 first); for a kubelet fault,
    /// of the pod among those the kubelet started.
    pub request: u64,
    /// Verb of the request.
    pub verb: String,
    /// Path and query of the request.
    pub path: String,
    /// The fault.
    pub fault: Fault,
}

/// A plan being applied: its generator and what it injected.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    state: Mutex<(ChaCha8Rng, u64)>,
    kubelet: Mutex<(ChaCha8Rng, u64)>,
    injected: Mutex<Vec<InjectedFault>>,
    /// When the current [`Fault::Outage`] ends; whether one happened.
    outage_until: Mutex<Option<tokio::time::Instant>>,
}

impl Faults {
    /// Starts applying `plan`.
    pub fn new(plan: FaultPlan) -> Self {
        Self {
            state: Mutex::new((ChaCha8Rng::seed_from_u64(plan.seed), 0)),
            kubelet: Mutex::new((ChaCha8Rng::seed_from_u64(plan.seed ^ KUBELET_STREAM), 0)),

            plan,
            injected: Mutex::new(Vec::new()),
            outage_until: Mutex::new(None),
        }
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<InjectedFault> {
        self.injected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The kubelet fault for the pod the kubelet starts now, if any (recorded).
    pub(crate) fn kubelet_fault(&self, ns: &str, pod: &str) -> Option<KubeletFault> {
        if self.plan.kubelet.is_empty() {
            return None;
        }
        let (draw, request): (f64, u64) = {
            let mut state = self.kubelet.lock().unwrap_or_else(|e| e.into_inner());
            state.1 += 1;
            (state.0.random(), state.1 - 1)
        };
        let mut acc = 0.0;
        let fault = self.plan.kubelet.iter().find_map(|(p, f)| {
            acc += p;
            (draw < acc).then_some(*f)
        })?;
        let mut injected = self.injected.lock().unwrap_or_else(|e| e.into_inner());
        injected.push(InjectedFault {
            request,
            verb: "kubelet".into(),
            path: format!("/api/v1/namespaces/{ns}/pods/{pod}"),
            fault: Fault::Kubelet(fault),
        });
        Some(fault)
    }

    fn decide(&self, verb: &str, resource: &str, path: &str) -> Option<Fault> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let n = state.1;
        state.1 += 1;
        let record = |fault: Fault| {
            self.injected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(InjectedFault {
                    request: n,
                    verb: verb.to_owned(),
                    path: path.to_owned(),
                    fault: fault.clone(),
                });
            Some(fault)
        };
        let now = tokio::time::Instant::now();
        let mut outage = self.outage_until.lock().unwrap_or_else(|e| e.into_inner());
        if outage.is_some_and(|until| now < until) {
            return record(Fault::Status(503));
        }
        let rule = self.plan.rules.iter().find(|r| {
            r.verb.as_deref().is_none_or(|v| v == verb)
                && r.resource.as_deref().is_none_or(|x| x == resource)
        })?;
        if matches!(rule.fault, Fault::Outage(_)) && outage.is_some() {
            // Over: a plan's outage happens once.
            return None;
        }
        let draw: f64 = state.0.random();
        if draw >= rule.probability {
            return None;
        }
        if let Fault::Outage(d) = rule.fault {
            *outage = Some(now + d);
        }
        record(rule.fault.clone())
    }
}

/// Verb and resource plural of a request, from its method and path.
fn classify(req: &Request<Bytes>) -> (String, String) {
    let segs: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => &[],
    };
    let rest = match rest {
        ["namespaces", _, plural, more @ ..] => {
            let mut v = vec![*plural];
            v.extend_from_slice(more);
            v
        }
        other => other.to_vec(),
    };
    let resource = rest.first().copied().unwrap_or_default().to_owned();
    let named = rest.len() > 1;
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match (req.method(), named, watch) {
        (&Method::GET, false, true) => "watch",
        (&Method::GET, false, false) => "list",
        (&Method::GET, true, _) => "get",
        (&Method::POST, _, _) => "create",
        (&Method::PUT, _, _) => "update",
        (&Method::PATCH, _, _) => "patch",
        (&Method::DELETE, true, _) => "delete",
        (&Method::DELETE, false, _) => "deletecollection",
        (m, _, _) => m.as_str(),
    };
    (verb.to_lowercase(), resource)
}

fn status_response(code: u16) -> Response<ResponseBody> {
    let (reason, message) = match code {
        409 => (
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
        ),
        429 => (
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "The POST operation against the resource could not be completed at this time, please try again.",
        ),
        _ => ("InternalError", "Internal error occurred: injected fault"),
    };
    let mut resp = json_response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    );
    if code == 429 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    resp
}

/// Applies the plan (if any) to a request before the server handles it: `Ok` hands the
/// request on, `Err` is the answer to send instead.
pub async fn intercept(
    api: &ApiServer,
    faults: Option<&Faults>,
    req: Request<Bytes>,
) -> Result<Request<Bytes>, Response<ResponseBody>> {
    let Some(faults) = faults else {
        return Ok(req);
    };
    if req.headers().contains_key(REPLAY_HEADER) {
        return Ok(req);
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let (verb, resource) = classify(&req);
    let Some(fault) = faults.decide(&verb, &resource, &path) else {
        return Ok(req);
    };
    tracing::debug!(?fault, verb, path, "injected fault");
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let answer = |status: u16| JournalEntry {
        verb: verb.clone(),
        path: path.clone(),
        status,
        user_agent: user_agent.clone(),
    };
    match fault {
        Fault::Status(code) => {
            api.journal.record(answer(code));
            Err(status_response(code))
        }
        Fault::Outage(_) => {
            api.journal.record(answer(503));
            Err(status_response(503))
        }
        Fault::Latency(d) => {
            tokio::time::sleep(d).await;
            Ok(req)
        }
        Fault::Compact => {
            api.store.compact();
            Ok(req)
        }
        Fault::Kubelet(_) => Ok(req),
        Fault::CutWatchAfter(n) => {
            if verb != "watch" {
                return Ok(req);
            }
            let (mut parts, body) = req.into_parts();
            parts.headers.insert(
                http::HeaderName::from_static(REPLAY_HEADER),
                header::HeaderValue::from_static("1"),
            );
            let resp = Box::pin(api.handle(Request::from_parts(parts, body))).await;
            let (parts, body) = resp.into_parts();
            let cut = http_body_util::StreamBody::new(futures::StreamExt::take(
                http_body_util::BodyStream::new(body),
                n,
            ));
            Err(Response::from_parts(
                parts,
                http_body_util::BodyExt::boxed_unsync(cut),
            ))
        }
        Fault::Disconnect { applied } => {
            if applied {
                let (mut parts, body) = req.into_parts();
                parts.headers.insert(
                    http::HeaderName::from_static(REPLAY_HEADER),
                    header::HeaderValue::from_static("1"),
                );
                let _applied = Box::pin(api.handle(Request::from_parts(parts, body))).await;
            }
            api.journal.record(answer(0));
            let mut resp = json_response(0, &json!({}));
            resp.extensions_mut().insert(Disconnected);
            Err(resp)
        }
        Fault::LostResponse => {
            let (mut parts, body) = req.into_parts();
            parts.headers.insert(
                http::HeaderName::from_static(REPLAY_HEADER),
                header::HeaderValue::from_static("1"),
            );
            let replay = Request::from_parts(parts, body);
            let _applied = Box::pin(api.handle(replay)).await;
            api.journal.record(answer(504));
            Err(status_response(504))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_by_verb_and_resource() {
        let req = |m: Method, uri: &str| {
            Request::builder()
                .method(m)
                .uri(uri)
                .body(Bytes::new())
                .unwrap_or_default()
        };
        assert_eq!(
            classify(&req(
                Method::GET,
                "/api/v1/namespaces/a/configmaps?watch=true"
            )),
            ("watch".into(), "configmaps".into())
        );
        assert_eq!(
            classify(&req(Method::DELETE, "/apis/batch/v1/namespaces/a/jobs/j")),
            ("delete".into(), "jobs".into())
        );
        assert_eq!(
            classify(&req(Method::GET, "/api/v1/namespaces/a/pods/p/log")),
            ("get".into(), "pods".into())
        );
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let plan = FaultPlan::new(3).rule(None, Some("pods"), 0.5, Fault::Status(503));
        let draws = |f: &Faults| {
            (0..64)
                .map(|_| f.decide("get", "pods", "/p").is_some())
                .collect::<Vec<_>>()
        };
        let a = draws(&Faults::new(plan.clone()));
        assert_eq!(a, draws(&Faults::new(plan)));
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_answers_every_request_until_it_ends() {
        let plan = FaultPlan::new(1).rule(
            Some("create"),
            Some("configmaps"),
            1.0,
            Fault::Outage(Duration::from_secs(10)),
        );
        let f = Faults::new(plan);
        assert_eq!(f.decide("get", "pods", "/p"), None);
        assert_eq!(
            f.decide("create", "configmaps", "/c"),
            Some(Fault::Outage(Duration::from_secs(10)))
        );
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(f.decide("get", "pods", "/p"), Some(Fault::Status(503)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(f.decide("get", "pods", "/p"), None);
        // Once.
        assert_eq!(f.decide("create", "configmaps", "/c"), None);
        let injected: Vec<Fault> = f.injected().into_iter().map(|i| i.fault).collect();
        assert_eq!(
            injected,
            [Fault::Outage(Duration::from_secs(10)), Fault::Status(503)]
        );
    }
}
