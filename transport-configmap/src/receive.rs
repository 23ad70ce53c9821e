//! Operator side: watch the one ConfigMap name, accept only the one owned by the run's Job.

use async_trait::async_trait;
use cmdreporter_core::channel::{PodState, ResultChannel};
use cmdreporter_core::dispatcher::{DispatchedJob, RETRY_ATTEMPTS, RunContext, retry};
use std::sync::Arc;

use cmdreporter_core::job::{CourierSpec, MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL};
use cmdreporter_core::shared_watch::WatchHub;
use cmdreporter_core::watch::{Event, watch};
use cmdreporter_core::{Error, Report};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, WatchParams};

use crate::format::decode;

/// Receives reports from ConfigMaps.
#[derive(Clone)]
pub struct ConfigMapChannel {
    client: kube::Client,
    hub: Option<Arc<WatchHub<ConfigMap>>>,
}

fn name_key(cm: &ConfigMap) -> Option<String> {
    cm.metadata.name.clone()
}

impl ConfigMapChannel {
    /// A channel using `client` to watch ConfigMaps, one watch per run.
    pub fn new(client: kube::Client) -> Self {
        Self { client, hub: None }
    }

    /// Shares one ConfigMap watch per namespace (selected on the project's label) among all
    /// runs of this channel.
    #[must_use]
    pub fn shared_watches(mut self) -> Self {
        let params = WatchParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        self.hub = Some(WatchHub::new(self.client.clone(), params, name_key));
        self
    }

    /// Number of shared watches open now (0 in per-run mode).
    pub fn open_shared_watches(&self) -> usize {
        self.hub.as_ref().map_or(0, |h| h.open_watches())
    }
}

fn accept(cm: &ConfigMap, run: &RunContext, job: &DispatchedJob) -> bool {
    let owned = cm
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == job.uid && o.kind == "Job");
    let labelled = cm
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(RUN_ID_LABEL))
        == Some(&run.run_id);
    owned && labelled
}

#[async_trait]
impl ResultChannel for ConfigMapChannel {
    fn name(&self) -> &str {
        crate::TRANSPORT
    }

    fn courier(&self, _run: &RunContext) -> CourierSpec {
        CourierSpec::transport(crate::TRANSPORT, true)
    }

    async fn receive(
        &self,
        run: &RunContext,
        job: &DispatchedJob,
        _pod: PodState,
    ) -> Result<Report, Error> {
        let mut events = match &self.hub {
            Some(hub) => hub.subscribe(&run.namespace, &run.job_name).boxed(),
            None => {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &run.namespace);
                let wp = WatchParams::default().fields(&format!("metadata.name={}", run.job_name));
                watch(api, wp).boxed()
            }
        };
        while let Some(ev) = events.next().await {
            match ev? {
                Event::Applied(cm) if accept(&cm, run, job) => return decode(&cm),
                Event::Applied(cm) => {
                    tracing::debug!(name = ?cm.metadata.name, "ignoring a ConfigMap not owned by this run's Job");
                }
                Event::Deleted(_) | Event::Restarted => {}
            }
        }
        Err(Error::CorruptReport("the ConfigMap watch ended".into()))
    }

    async fn try_receive(
        &self,
        run: &RunContext,
        job: &DispatchedJob,
        _pod: Option<&Pod>,
    ) -> Result<Option<Report>, Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &run.namespace);
        match retry(RETRY_ATTEMPTS, |_| api.get_opt(&run.job_name)).await? {
            Some(cm) if accept(&cm, run, job) => decode(&cm).map(Some),
            _ => Ok(None),
        }
    }
}
