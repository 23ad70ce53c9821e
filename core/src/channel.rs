//! The [`ResultChannel`] trait: how a report travels from the courier to the operator.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;

use crate::dispatcher::{DispatchedJob, RunContext};
use crate::error::Error;
use crate::job::CourierSpec;
use crate::report::Report;

/// The latest state of the run's pod, as the progress watch sees it (`None` before the pod
/// appears). [`JobDispatcher`](crate::JobDispatcher) reads it lean (see [`crate::lean`]):
/// the metadata without `managedFields`, the whole `status`, and of the `spec` only
/// `nodeName`.
pub type PodState = watch::Receiver<Option<Pod>>;

/// The operator side of a transport. Object-safe, so a transport can be chosen at run time.
#[async_trait]
pub trait ResultChannel: Send + Sync {
    /// A short name (`configmap`, `logs`) for logs and errors.
    fn name(&self) -> &str;

    /// What the courier needs: its transport arguments, env, and whether the pod needs an
    /// API token.
    fn courier(&self, run: &RunContext) -> CourierSpec;

    /// Prepares for a run before its Job is created (default: nothing).
    async fn prepare(&self, _run: &RunContext) -> Result<(), Error> {
        Ok(())
    }

    /// Waits for the report of this run, and no other. `pod` follows the run's pod.
    async fn receive(
        &self,
        run: &RunContext,
        job: &DispatchedJob,
        pod: PodState,
    ) -> Result<Report, Error>;

    /// Looks once, without waiting, for the report of this run (for
    /// [`JobRunner::poll`](crate::JobRunner::poll)); `pod` is the run's pod as just listed.
    /// At most one API request. The default: this transport cannot be polled.
    async fn try_receive(
        &self,
        _run: &RunContext,
        _job: &DispatchedJob,
        _pod: Option<&Pod>,
    ) -> Result<Option<Report>, Error> {
        Err(Error::InvalidRequest(crate::error::InvalidRequest {
            field: "transport".into(),
            problem: format!("the {} transport cannot be polled", self.name()),
        }))
    }
}
