//! Operator side: wait for the main container to terminate, then one GET of its log,
//! read as a stream.

use async_trait::async_trait;
use cmdreporter_core::channel::{PodState, ResultChannel};
use cmdreporter_core::dispatcher::{DispatchedJob, RETRY_ATTEMPTS, RunContext, retry};
use cmdreporter_core::job::{CourierSpec, MAIN_CONTAINER};
use cmdreporter_core::{Error, Report};
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kube::api::{Api, LogParams};

use crate::error::ReadError;
use crate::reader::{Expected, ReadLimits, read_report};

/// Receives reports from the log of the run pod's main container.
///
/// ```no_run
/// # use std::sync::Arc;
/// use cmdreporter_core::{JobRunner, Request, Runner};
/// use cmdreporter_k8s_logs::LogsChannel;
/// # async fn demo(client: kube::Client) -> Result<(), cmdreporter_core::Error> {
/// let runner = JobRunner::new(client.clone(), Arc::new(LogsChannel::new(client)));
/// let outcome = runner.run(Request::new("busybox:1.36", ["uname", "-r"])).await?;
/// assert!(outcome.exit.success());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LogsChannel {
    client: kube::Client,
    limits: ReadLimits,
}

impl LogsChannel {
    /// A channel reading pod logs with `client`, with the default [`ReadLimits`].
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            limits: ReadLimits::default(),
        }
    }

    /// Sets what the reader accepts.
    #[must_use]
    pub fn limits(mut self, limits: ReadLimits) -> Self {
        self.limits = limits;
        self
    }
}

impl LogsChannel {
    /// One GET of the terminated main container's log, read as a stream.
    async fn read(
        &self,
        run: &RunContext,
        pod: &Pod,
        ended: ContainerStateTerminated,
    ) -> Result<Report, Error> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let expected = Expected {
            run_id: run.run_id.clone(),
            pod_uid: pod.metadata.uid.clone(),
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &run.namespace);
        let lp = LogParams {
            container: Some(MAIN_CONTAINER.into()),
            ..Default::default()
        };
        // One GET; again only if the answer breaks off (an I/O error is not a bad log).
        let mut attempt = 0;
        let result = loop {
            let stream = match retry(RETRY_ATTEMPTS, |_| api.log_stream(&name, &lp)).await {
                Ok(stream) => stream,
                // The pod (and its log) is gone: evicted, or deleted by its Job. What
                // happened to it is the runner's pod watch's to say, not a raw 404's.
                Err(e) if cmdreporter_core::error::api_code(&e) == Some(404) => {
                    tracing::debug!(pod = %name, "the pod is gone before its log was read");
                    return futures::future::pending().await;
                }
                Err(e) => return Err(e.into()),
            };
            match read_report(Box::pin(stream), &expected, &self.limits).await {
                Err(ReadError::Io(e)) if attempt < 2 => {
                    tracing::debug!(error = %e, "the log broke off; reading it again");
                    attempt += 1;
                }
                other => break other,
            }
        };
        match result {
            Ok(report) => Ok(report),
            // No frame from a pod being deleted: the deletion stopped the courier, and the
            // runner's pod watch says so.
            Err(ReadError::NoReport)
                if ended.exit_code != 0 && pod.metadata.deletion_timestamp.is_some() =>
            {
                tracing::debug!(pod = %name, "the pod was deleted before it reported");
                futures::future::pending().await
            }
            // No frame and a courier that failed: its termination message says why.
            Err(ReadError::NoReport) if ended.exit_code != 0 => Err(Error::CourierFailed {
                exit_code: ended.exit_code,
                message: ended
                    .message
                    .or(ended.reason)
                    .unwrap_or_else(|| "no report in the container log".into()),
            }),
            Err(e) => {
                tracing::debug!(pod = %name, error = %e, "no usable report in the log");
                Err(e.into())
            }
        }
    }
}

/// The main container's termination, once the pod shows it.
fn terminated(pod: &Pod) -> Option<ContainerStateTerminated> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == MAIN_CONTAINER)?
        .state
        .as_ref()?
        .terminated
        .clone()
}

/// Waits until the main container of the watched pod has terminated: its log is then
/// complete. Pends forever if the watch ends first (the runner's progress watch ends the
/// run then, with its own, better error).
async fn wait_terminated(pod: &mut PodState) -> (Pod, ContainerStateTerminated) {
    loop {
        if let Some(p) = pod.borrow_and_update().as_ref()
            && let Some(t) = terminated(p)
        {
            return (p.clone(), t);
        }
        if pod.changed().await.is_err() {
            return futures::future::pending().await;
        }
    }
}

#[async_trait]
impl ResultChannel for LogsChannel {
    fn name(&self) -> &str {
        crate::TRANSPORT
    }

    fn courier(&self, _run: &RunContext) -> CourierSpec {
        CourierSpec::transport(crate::TRANSPORT, false)
    }

    async fn receive(
        &self,
        run: &RunContext,
        _job: &DispatchedJob,
        mut pod: PodState,
    ) -> Result<Report, Error> {
        let (pod, ended) = wait_terminated(&mut pod).await;
        self.read(run, &pod, ended).await
    }

    async fn try_receive(
        &self,
        run: &RunContext,
        _job: &DispatchedJob,
        pod: Option<&Pod>,
    ) -> Result<Option<Report>, Error> {
        match pod.and_then(|p| terminated(p).map(|t| (p, t))) {
            Some((pod, ended)) => self.read(run, pod, ended).await.map(Some),
            None => Ok(None),
        }
    }
}
