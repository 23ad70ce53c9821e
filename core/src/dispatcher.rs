//! The [`Dispatcher`] trait and [`JobDispatcher`]: creates the run's Job, follows its pod
//! to a typed error as soon as the pod can never deliver, and deletes the Job.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event as K8sEvent, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy, WatchParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::classify::{PodSignal, classify};
use crate::error::{Error, Phase, api_code, is_transient};
use crate::job::{CourierSpec, build_job};
use crate::lean::Lean;
use crate::request::Request;
use crate::shared_watch::WatchHub;
use crate::watch::{Event, watch as resumable_watch, watch_lean};

/// One run, as every part sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    /// The run id (also in the Job's name and labels).
    pub run_id: String,
    /// Namespace of the Job.
    pub namespace: String,
    /// Name of the Job.
    pub job_name: String,
}

/// The Job as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchedJob {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid, set by the API server.
    pub uid: String,
}

/// Where the run stands, shared between the progress watch and the runner's timeout.
#[derive(Debug, Clone)]
pub struct PhaseCell(Arc<Mutex<Phase>>);

impl PhaseCell {
    /// A cell starting at `phase`.
    pub fn new(phase: Phase) -> Self {
        Self(Arc::new(Mutex::new(phase)))
    }

    /// Sets the phase.
    pub fn set(&self, phase: Phase) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    /// The current phase.
    pub fn get(&self) -> Phase {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Creates, follows and removes the run's workload. Object-safe.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    /// Creates the run's Job in one request.
    async fn dispatch(
        &self,
        req: &Request,
        run: &RunContext,
        courier: &CourierSpec,
    ) -> Result<DispatchedJob, Error>;

    /// Follows the Job's pod; returns only with the error that ends the run early. Every
    /// pod state seen is sent on `pods`, and the phase kept in `phase`.
    async fn progress(
        &self,
        job: &DispatchedJob,
        pods: watch::Sender<Option<Pod>>,
        phase: PhaseCell,
    ) -> Error;

    /// Deletes what the run created (idempotent: gone already is success).
    async fn cleanup(&self, run: &RunContext) -> Result<(), Error>;

    /// The grace periods [`progress`](Self::progress) gives conditions that can still
    /// clear; polling applies the same. The default: [`GracePeriods::default`].
    fn graces(&self) -> GracePeriods {
        GracePeriods::default()
    }

    /// Looks once at the Job's progress without waiting (for polling): its first pod, or,
    /// when it has none, the message of a `FailedCreate` event. At most one API request.
    /// The default: this dispatcher cannot be polled.
    async fn inspect(
        &self,
        _job: &DispatchedJob,
        _look_for_events: bool,
    ) -> Result<Inspection, Error> {
        Err(Error::InvalidRequest(crate::error::InvalidRequest {
            field: "dispatcher".into(),
            problem: "this dispatcher cannot be polled".into(),
        }))
    }
}

/// What one look at a Job shows.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    /// The Job's first pod, if it has one.
    pub pod: Option<Pod>,
    /// The message of a `FailedCreate` event, when the pod could not be created.
    pub failed_create: Option<String>,
}

/// How long a pod may show a condition that can still clear before it ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracePeriods {
    /// `ErrImagePull` / `ImagePullBackOff` (a registry hiccup can clear).
    pub image_pull: Duration,
    /// `Unschedulable` (an autoscaler may add a node).
    pub unschedulable: Duration,
    /// No pod at all: then the Job's `FailedCreate` events are watched.
    pub pod_creation: Duration,
    /// The courier ended with an error: how long its report may still arrive.
    pub report_after_exit: Duration,
}

impl Default for GracePeriods {
    fn default() -> Self {
        Self {
            image_pull: Duration::from_secs(10),
            unschedulable: Duration::from_secs(30),
            pod_creation: Duration::from_secs(2),
            report_after_exit: Duration::from_secs(5),
        }
    }
}

/// The Job-based dispatcher.
#[derive(Clone)]
pub struct JobDispatcher {
    client: kube::Client,
    graces: GracePeriods,
    hubs: Option<Arc<Hubs>>,
}

/// The shared watches of a dispatcher: pods of every run, and `FailedCreate` events (both
/// read lean: the watch events are only classified).
struct Hubs {
    pods: Arc<WatchHub<Lean<Pod>>>,
    events: Arc<WatchHub<Lean<K8sEvent>>>,
}

fn pod_key(p: &Lean<Pod>) -> Option<String> {
    p.0.metadata
        .labels
        .as_ref()?
        .get("batch.kubernetes.io/controller-uid")
        .cloned()
}

fn event_key(e: &Lean<K8sEvent>) -> Option<String> {
    e.0.involved_object.uid.clone()
}

impl JobDispatcher {
    /// A dispatcher using `client`, with the default grace periods.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            graces: GracePeriods::default(),
            hubs: None,
        }
    }

    /// Shares one pod watch and one event watch per namespace among all runs of this
    /// dispatcher, instead of opening watches per run.
    #[must_use]
    pub fn shared_watches(mut self) -> Self {
        let pods = WatchParams::default().labels(&format!(
            "{}={}",
            crate::job::MANAGED_BY_LABEL,
            crate::job::MANAGED_BY
        ));
        let events = WatchParams::default().fields("involvedObject.kind=Job,reason=FailedCreate");
        self.hubs = Some(Arc::new(Hubs {
            pods: WatchHub::new(self.client.clone(), pods, pod_key),
            events: WatchHub::new(self.client.clone(), events, event_key),
        }));
        self
    }

    /// Number of shared watches open now (0 in per-run mode).
    pub fn open_shared_watches(&self) -> usize {
        self.hubs
            .as_ref()
            .map_or(0, |h| h.pods.open_watches() + h.events.open_watches())
    }

    /// Sets the grace periods.
    #[must_use]
    pub fn graces(mut self, graces: GracePeriods) -> Self {
        self.graces = graces;
        self
    }
}

/// How often a request is tried when the API answers with a transient error (429, 5xx):
/// with the backoff of [`retry`], about half a minute in all.
pub const RETRY_ATTEMPTS: u32 = 10;

/// Retries `f` on transient API errors, with backoff, at most `attempts` times.
pub async fn retry<T, F, Fut>(attempts: u32, f: F) -> Result<T, kube::Error>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    retry_when(attempts, is_transient, f).await
}

/// Retries `f` on the errors `again` selects, with the backoff of [`retry`], at most
/// `attempts` times.
pub async fn retry_when<T, F, Fut>(
    attempts: u32,
    again: fn(&kube::Error) -> bool,
    mut f: F,
) -> Result<T, kube::Error>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        match f(attempt).await {
            Err(e) if again(&e) && attempt + 1 < attempts => {
                attempt += 1;
                let wait = Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(6));
                tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
            }
            other => return other,
        }
    }
}

/// The run-id label of a Job.
fn run_label(job: &Lean<Job>) -> Option<&str> {
    job.0
        .metadata
        .labels
        .as_ref()?
        .get(crate::job::RUN_ID_LABEL)
        .map(String::as_str)
}

pub(crate) fn signal_error(signal: PodSignal) -> Option<Error> {
    Some(match signal {
        PodSignal::Progress(_) => return None,
        PodSignal::ImagePull {
            image,
            reason,
            message,
        } => Error::ImagePull {
            image,
            reason,
            message,
        },
        PodSignal::Unschedulable { message } => Error::Unschedulable { message },
        PodSignal::ContainerConfig { container, message } => {
            Error::ContainerConfig { container, message }
        }
        PodSignal::InitFailed { exit_code, message } => Error::InitContainerFailed {
            container: crate::job::INIT_CONTAINER.into(),
            exit_code,
            message,
        },
        PodSignal::CourierEnded { exit_code, message } => {
            Error::CourierFailed { exit_code, message }
        }
        PodSignal::PodFailed { reason, message } => Error::JobFailed { reason, message },
    })
}

/// The error of a run whose watched pod was deleted before it reported.
fn pod_deleted(name: &str) -> Error {
    Error::JobFailed {
        reason: "PodDeleted".into(),
        message: format!("pod {name} was deleted before it reported"),
    }
}

/// A pod being deleted (by its Job's controller, an eviction, a person) whose containers
/// stop before it reported: its state is the deletion's doing, and the error says so.
pub(crate) fn deleted_or(pod: &Pod, signal: PodSignal) -> PodSignal {
    if pod.metadata.deletion_timestamp.is_none() {
        return signal;
    }
    let detail = match &signal {
        PodSignal::InitFailed { exit_code, message } => {
            format!("its init container ended with exit code {exit_code}: {message}")
        }
        PodSignal::CourierEnded { exit_code, message } if *exit_code != 0 => {
            format!("its courier ended with exit code {exit_code}: {message}")
        }
        _ => return signal,
    };
    PodSignal::PodFailed {
        reason: "PodDeleted".into(),
        message: format!(
            "pod {} was deleted before it reported; {detail}",
            pod.metadata.name.as_deref().unwrap_or_default()
        ),
    }
}

/// `api.create(&PostParams::default(), job)`, the same request, errors and value, with the
/// response read by [`crate::lean_json::read_job`] (its managedFields and spec skipped
/// without serde).
async fn create_job(
    client: &kube::Client,
    api: &Api<Lean<Job>>,
    job: &Lean<Job>,
) -> Result<Lean<Job>, kube::Error> {
    let bytes = serde_json::to_vec(job).map_err(kube::Error::SerdeError)?;
    let mut req = kube::core::Request::new(api.resource_url())
        .create(&PostParams::default(), bytes)
        .map_err(kube::Error::BuildRequest)?;
    req.extensions_mut().insert("create");
    let text = client.request_text(req).await?;
    crate::lean_json::read_job(&text).map(Lean).map_err(|e| {
        tracing::warn!("{}, {:?}", text, e);
        kube::Error::SerdeError(e)
    })
}

#[async_trait]
impl Dispatcher for JobDispatcher {
    async fn dispatch(
        &self,
        req: &Request,
        run: &RunContext,
        courier: &CourierSpec,
    ) -> Result<DispatchedJob, Error> {
        // The response is read lean (the uid, and the run-id label on a retry): the Job sent
        // is serialised whole.
        let api: Api<Lean<Job>> = Api::namespaced(self.client.clone(), &run.namespace);
        crate::reporter_image::warn_if_unpinned_default(&req.reporter_image);
        let job = Lean(build_job(req, &run.run_id, courier));
        let (api, job) = (&api, &job);
        let client = &self.client;
        let created = retry(RETRY_ATTEMPTS, |attempt| async move {
            match create_job(client, api, job).await {
                // A retry after a lost response: the Job is ours if it carries our run id.
                Err(e) if attempt > 0 && api_code(&e) == Some(409) => {
                    let existing = api.get(&run.job_name).await?;
                    if run_label(&existing) == run_label(job) {
                        Ok(existing)
                    } else {
                        Err(e)
                    }
                }
                other => other,
            }
        })
        .await?
        .0;
        let uid = created.metadata.uid.clone().unwrap_or_default();
        tracing::debug!(job = %run.job_name, %uid, "job created");
        Ok(DispatchedJob {
            name: run.job_name.clone(),
            namespace: run.namespace.clone(),
            uid,
        })
    }

    async fn progress(
        &self,
        job: &DispatchedJob,
        pods_tx: watch::Sender<Option<Pod>>,
        phase: PhaseCell,
    ) -> Error {
        phase.set(Phase::WaitingForPod);
        // The pods are read lean (see `crate::lean`): the watch's events, and the lists.
        let pod_api: Api<Lean<Pod>> = Api::namespaced(self.client.clone(), &job.namespace);
        let of_job = ListParams::default()
            .labels(&format!("batch.kubernetes.io/controller-uid={}", job.uid));
        let mut pods = match &self.hubs {
            Some(h) => h.pods.subscribe(&job.namespace, &job.uid).boxed(),
            None => {
                let selector = of_job.label_selector.clone().unwrap_or_default();
                watch_lean(pod_api.clone(), WatchParams::default().labels(&selector)).boxed()
            }
        };
        let mut events: Option<BoxStream<'static, kube::Result<Event<Lean<K8sEvent>>>>> = None;
        let events_after = tokio::time::sleep(self.graces.pod_creation);
        tokio::pin!(events_after);
        // While no pod has been seen, the Job itself is looked at every grace period: a pod
        // that came and went before the watch saw it leaves only the Job's condition.
        let mut job_checks = tokio::time::interval_at(
            Instant::now() + self.graces.pod_creation,
            self.graces.pod_creation.max(Duration::from_millis(100)),
        );
        let jobs: Api<Lean<Job>> = Api::namespaced(self.client.clone(), &job.namespace);
        let mut pod_uid: Option<String> = None;
        let mut pod_name = String::new();
        // When to ask the API whether the watched pod is still there, after the watch
        // started over (bug L): a pod deleted while the watch was down never shows again in
        // it, nor does its deletion.
        let mut recheck: Option<Instant> = None;
        // The pending error and when it becomes final (a grace period).
        let mut pending: Option<(Instant, Error)> = None;
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let deadline = pending.as_ref().map_or(far, |(at, _)| *at);
            tokio::select! {
                biased;
                ev = pods.next() => match ev {
                    Some(Ok(Event::Applied(Lean(pod)))) => {
                        let uid = pod.metadata.uid.clone().unwrap_or_default();
                        // Only the first pod of the Job counts.
                        if pod_uid.get_or_insert_with(|| uid.clone()) != &uid {
                            continue;
                        }
                        pod_name = pod.metadata.name.clone().unwrap_or_default();
                        recheck = None;
                        let signal = deleted_or(&pod, classify(&pod));
                        let _ = pods_tx.send(Some(pod));
                        let now = Instant::now();
                        match signal {
                            PodSignal::Progress(p) => {
                                phase.set(p);
                                pending = None;
                            }
                            PodSignal::CourierEnded { exit_code: 0, .. } => {
                                phase.set(Phase::Reporting);
                                pending = None;
                            }
                            s @ PodSignal::ImagePull { .. } => {
                                let grace = self.graces.for_signal(&s).unwrap_or_default();
                                let at = pending.as_ref().filter(|(_, e)| matches!(e, Error::ImagePull { .. })).map_or(now + grace, |(at, _)| *at);
                                pending = signal_error(s).map(|e| (at, e));
                            }
                            s @ PodSignal::Unschedulable { .. } => {
                                let at = pending.as_ref().filter(|(_, e)| matches!(e, Error::Unschedulable { .. })).map_or(now + self.graces.unschedulable, |(at, _)| *at);
                                pending = signal_error(s).map(|e| (at, e));
                            }
                            s @ (PodSignal::CourierEnded { .. } | PodSignal::PodFailed { .. }) => {
                                phase.set(Phase::Reporting);
                                if pending.is_none() {
                                    pending = signal_error(s).map(|e| (now + self.graces.report_after_exit, e));
                                }
                            }
                            s => {
                                if let Some(e) = signal_error(s) {
                                    return e;
                                }
                            }
                        }
                    }
                    Some(Ok(Event::Deleted(Lean(pod)))) => {
                        if pod.metadata.uid == pod_uid && pending.is_none() {
                            pending = Some((Instant::now() + self.graces.report_after_exit, pod_deleted(&pod_name)));
                        }
                    }
                    Some(Ok(Event::Restarted)) => {
                        if pod_uid.is_some() {
                            recheck = Some(Instant::now());
                        }
                    }
                    Some(Err(e)) => return Error::from(e),
                    None => return Error::JobFailed { reason: "WatchEnded".into(), message: "the pod watch ended".into() },
                },
                ev = async { match events.as_mut() { Some(s) => s.next().await, None => futures::future::pending().await } } => match ev {
                    Some(Ok(Event::Applied(Lean(e)))) if e.reason.as_deref() == Some("FailedCreate") && pod_uid.is_none() => {
                        return Error::PodRejected { message: e.message.unwrap_or_default() };
                    }
                    Some(Err(e)) => return Error::from(e),
                    None => events = None,
                    _ => {}
                },
                _ = &mut events_after, if events.is_none() && pod_uid.is_none() => {
                    events = Some(match &self.hubs {
                        Some(h) => h.events.subscribe(&job.namespace, &job.uid).boxed(),
                        None => {
                            let api: Api<Lean<K8sEvent>> = Api::namespaced(self.client.clone(), &job.namespace);
                            let wp = WatchParams::default().fields(&format!("involvedObject.uid={}", job.uid));
                            resumable_watch(api, wp).boxed()
                        }
                    });
                }
                _ = tokio::time::sleep_until(recheck.unwrap_or(far)), if recheck.is_some() => {
                    // A LIST of the Job's pods, as the watch's own relist (the operator's role
                    // grants list and watch on pods, not get).
                    recheck = match pod_api.list(&of_job).await {
                        Ok(list) if list.items.iter().any(|p| p.0.metadata.uid == pod_uid) => None,
                        Ok(_) => {
                            if pending.is_none() {
                                pending = Some((Instant::now() + self.graces.report_after_exit, pod_deleted(&pod_name)));
                            }
                            None
                        }
                        // Ask again, unless the watch shows the pod meanwhile.
                        Err(_) => Some(Instant::now() + Duration::from_secs(1)),
                    };
                }
                _ = job_checks.tick(), if pod_uid.is_none() && pending.is_none() => {
                    if let Ok(Some(Lean(j))) = jobs.get_opt(&job.name).await
                        && let Some(ended) = j
                            .status
                            .and_then(|s| s.conditions)
                            .into_iter()
                            .flatten()
                            .find(|c| (c.type_ == "Failed" || c.type_ == "Complete") && c.status == "True")
                    {
                        // The pod may still be there, unseen by the watch: its own state says
                        // more than the Job's condition (a courier that could not deliver
                        // says so in its termination message). A LIST that fails shows
                        // nothing: look again at the next check, or let the watch see the
                        // pod, rather than report the bare condition (bug K).
                        let list = match pod_api.list(&of_job).await {
                            Ok(list) => list,
                            Err(e) => {
                                tracing::debug!(job = %job.name, error = %e, "the ended Job's pods cannot be listed yet");
                                continue;
                            }
                        };
                        if ended.type_ == "Complete" {
                            // Its pod delivered, then was deleted before the watch saw it:
                            // the transport may still have the report (a ConfigMap), or no
                            // pod left to read it from (logs). Not a wait for the timeout
                            // (bug M): after the report grace, the pod's deletion ends it.
                            if list.items.is_empty() {
                                let message = format!("pod of Job {} was deleted before its report was read", job.name);
                                let e = Error::JobFailed { reason: "PodDeleted".into(), message };
                                pending = Some((Instant::now() + self.graces.report_after_exit, e));
                            }
                            continue;
                        }
                        if let Some(e) = list.items.iter().find_map(|p| signal_error(classify(&p.0))) {
                            return e;
                        }
                        return Error::JobFailed {
                            reason: ended.reason.unwrap_or_default(),
                            message: ended.message.unwrap_or_default(),
                        };
                    }
                }
                _ = tokio::time::sleep_until(deadline), if pending.is_some() => {
                    if let Some((_, e)) = pending.take() {
                        return e;
                    }
                }
            }
        }
    }

    fn graces(&self) -> GracePeriods {
        self.graces
    }

    async fn inspect(
        &self,
        job: &DispatchedJob,
        look_for_events: bool,
    ) -> Result<Inspection, Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &job.namespace);
        let lp = ListParams::default()
            .labels(&format!("batch.kubernetes.io/controller-uid={}", job.uid));
        let mut list = retry(RETRY_ATTEMPTS, |_| pods.list(&lp)).await?.items;
        list.sort_by(|a, b| {
            (
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                &a.metadata.name,
            )
                .cmp(&(
                    b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    &b.metadata.name,
                ))
        });
        if let Some(pod) = list.into_iter().next() {
            return Ok(Inspection {
                pod: Some(pod),
                failed_create: None,
            });
        }
        if !look_for_events {
            return Ok(Inspection::default());
        }
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), &job.namespace);
        let lp = ListParams::default().fields(&format!("involvedObject.uid={}", job.uid));
        let failed_create = retry(RETRY_ATTEMPTS, |_| events.list(&lp))
            .await?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedCreate"))
            .and_then(|e| e.message);
        Ok(Inspection {
            pod: None,
            failed_create,
        })
    }

    async fn cleanup(&self, run: &RunContext) -> Result<(), Error> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &run.namespace);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        // A 409 Conflict to a DELETE means the object changed while the server deleted it:
        // try again (giving up would leave the Job to its TTL).
        let again = |e: &kube::Error| is_transient(e) || api_code(e) == Some(409);
        match retry_when(RETRY_ATTEMPTS, again, |_| api.delete(&run.job_name, &dp)).await {
            Ok(_) => Ok(()),
            Err(e) if api_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
