//! Progress of a run, as `cmdreporter run` shows it on a terminal: the dispatcher and the
//! channel are wrapped so that each milestone (Job created, pod scheduled, image pulled,
//! command running, report received, Job deleted) is noted once, without extra requests.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cmdreporter_core::dispatcher::PhaseCell;
use cmdreporter_core::job::{INIT_CONTAINER, MAIN_CONTAINER};
use cmdreporter_core::{
    CourierSpec, DispatchedJob, Dispatcher, Error, PodState, Report, Request, ResultChannel,
    RunContext,
};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tokio::sync::watch;

/// Where progress lines go (`None`: nowhere).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// What a run has shown so far: the Job it created, and the milestones already noted.
pub struct Progress {
    sink: Option<Sink>,
    job: Mutex<Option<DispatchedJob>>,
    seen: Mutex<BTreeSet<String>>,
}

impl Progress {
    /// Progress noted to `sink`, or only recorded when `sink` is `None`.
    pub fn new(sink: Option<Sink>) -> Arc<Self> {
        Arc::new(Self {
            sink,
            job: Mutex::new(None),
            seen: Mutex::new(BTreeSet::new()),
        })
    }

    /// The Job the run created, once it exists.
    pub fn job(&self) -> Option<DispatchedJob> {
        self.job.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Notes `line` unless a line with the same `key` was noted before.
    fn once(&self, key: &str, line: impl FnOnce() -> String) {
        let Some(sink) = &self.sink else { return };
        if self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned())
        {
            sink(&line());
        }
    }

    fn pod(&self, pod: &Pod) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        if let Some(node) = spec.and_then(|s| s.node_name.as_ref()) {
            self.once("scheduled", || format!("pod {name} scheduled on {node}"));
        }
        let Some(status) = pod.status.as_ref() else {
            return;
        };
        let find = |list: &Option<Vec<ContainerStatus>>, c: &str| {
            list.as_ref()
                .and_then(|l| l.iter().find(|s| s.name == c).cloned())
        };
        for c in [
            find(&status.init_container_statuses, INIT_CONTAINER),
            find(&status.container_statuses, MAIN_CONTAINER),
        ]
        .into_iter()
        .flatten()
        {
            let state = c.state.clone().unwrap_or_default();
            if let Some(w) = &state.waiting
                && let Some(reason) = &w.reason
                && reason != "PodInitializing"
                && reason != "ContainerCreating"
            {
                let msg = w.message.clone().unwrap_or_default();
                self.once(&format!("waiting/{}/{reason}", c.name), || {
                    format!("container {}: {reason} {msg}", c.name)
                        .trim_end()
                        .to_owned()
                });
            }
            let started = state.running.is_some() || state.terminated.is_some();
            if started || !c.image_id.is_empty() {
                self.once(&format!("pulled/{}", c.name), || {
                    format!("image {} pulled", c.image)
                });
            }
            if c.name == MAIN_CONTAINER && started {
                self.once("running", || "command running".to_owned());
            }
        }
    }
}

/// A dispatcher that notes the progress of the one it wraps.
pub struct ProgressDispatcher {
    inner: Arc<dyn Dispatcher>,
    progress: Arc<Progress>,
}

impl ProgressDispatcher {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Dispatcher>, progress: Arc<Progress>) -> Self {
        Self { inner, progress }
    }
}

#[async_trait]
impl Dispatcher for ProgressDispatcher {
    async fn dispatch(
        &self,
        req: &Request,
        run: &RunContext,
        courier: &CourierSpec,
    ) -> Result<DispatchedJob, Error> {
        let job = self.inner.dispatch(req, run, courier).await?;
        *self.progress.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job.clone());
        self.progress.once("created", || {
            format!("Job {}/{} created", job.namespace, job.name)
        });
        Ok(job)
    }

    async fn progress(
        &self,
        job: &DispatchedJob,
        pods: watch::Sender<Option<Pod>>,
        phase: PhaseCell,
    ) -> Error {
        let (tx, mut rx) = watch::channel(None);
        let inner = self.inner.progress(job, tx, phase);
        tokio::pin!(inner);
        loop {
            tokio::select! {
                biased;
                changed = rx.changed() => {
                    if changed.is_err() {
                        return inner.await;
                    }
                    let pod = rx.borrow_and_update().clone();
                    if let Some(p) = &pod {
                        self.progress.pod(p);
                    }
                    pods.send_replace(pod);
                }
                err = &mut inner => {
                    // Pass on a last state the inner dispatcher sent just before it ended.
                    if rx.has_changed().unwrap_or(false) {
                        pods.send_replace(rx.borrow_and_update().clone());
                    }
                    return err;
                }
            }
        }
    }

    async fn cleanup(&self, run: &RunContext) -> Result<(), Error> {
        let result = self.inner.cleanup(run).await;
        if result.is_ok() && self.progress.job().is_some() {
            self.progress.once("deleted", || {
                format!("Job {}/{} deleted", run.namespace, run.job_name)
            });
        }
        result
    }
}

/// A channel that notes when the report arrives.
pub struct ProgressChannel {
    inner: Arc<dyn ResultChannel>,
    progress: Arc<Progress>,
}

impl ProgressChannel {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ResultChannel>, progress: Arc<Progress>) -> Self {
        Self { inner, progress }
    }
}

#[async_trait]
impl ResultChannel for ProgressChannel {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn courier(&self, run: &RunContext) -> CourierSpec {
        self.inner.courier(run)
    }

    async fn prepare(&self, run: &RunContext) -> Result<(), Error> {
        self.inner.prepare(run).await
    }

    async fn receive(
        &self,
        run: &RunContext,
        job: &DispatchedJob,
        pod: PodState,
    ) -> Result<Report, Error> {
        let report = self.inner.receive(run, job, pod).await?;
        self.progress.once("report", || {
            format!("report received through {}", self.inner.name())
        });
        Ok(report)
    }
}
