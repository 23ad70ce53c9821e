//! Operator side: watch the run's ConfigMaps (by its run-id label), accept only one owned by
//! the run's Job and written in the pod the run watches.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cmdreporter_core::channel::{PodState, ResultChannel};
use cmdreporter_core::dispatcher::{DispatchedJob, RETRY_ATTEMPTS, RunContext, retry};
use cmdreporter_core::job::{CourierSpec, MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL};
use cmdreporter_core::lean::Lean;
use cmdreporter_core::shared_watch::WatchHub;
use cmdreporter_core::watch::{Event, watch};
use cmdreporter_core::{Error, Report};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, WatchParams};

use crate::format::{decode, pod_report_name, pod_uid_of};

/// How long a report may wait for the progress watch to see the run's pod before it is
/// taken without knowing which pod the run watches (the pod was gone before it was seen).
const UNSEEN_POD_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Receives reports from ConfigMaps.
#[derive(Clone)]
pub struct ConfigMapChannel {
    client: kube::Client,
    /// Read lean: the watch events need no managed fields.
    hub: Option<Arc<WatchHub<Lean<ConfigMap>>>>,
}

/// A report ConfigMap's run: its run-id label (the shared watch routes by it).
fn run_key(cm: &ConfigMap) -> Option<&String> {
    cm.metadata.labels.as_ref()?.get(RUN_ID_LABEL)
}

fn hub_key(cm: &Lean<ConfigMap>) -> Option<String> {
    run_key(&cm.0).cloned()
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
        self.hub = Some(WatchHub::new(self.client.clone(), params, hub_key));
        self
    }

    /// Number of shared watches open now (0 in per-run mode).
    pub fn open_shared_watches(&self) -> usize {
        self.hub.as_ref().map_or(0, |h| h.open_watches())
    }
}

/// Whether `cm` is a report of this run: owned by its Job and labelled with its run id.
fn accept(cm: &ConfigMap, run: &RunContext, job: &DispatchedJob) -> bool {
    let owned = cm
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == job.uid && o.kind == "Job");
    owned && run_key(cm) == Some(&run.run_id)
}

/// Whether a report of this run was written in the watched pod `watched`. A report that
/// names no pod (as Rook's courier writes them) is left to the runner's pod check.
fn from_pod(cm: &ConfigMap, watched: &str) -> bool {
    pod_uid_of(cm).is_none_or(|uid| uid == watched)
}

fn uid_of(pod: Option<&Pod>) -> Option<String> {
    pod.and_then(|p| p.metadata.uid.clone())
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
        mut pod: PodState,
    ) -> Result<Report, Error> {
        let mut events = match &self.hub {
            Some(hub) => hub.subscribe(&run.namespace, &run.run_id).boxed(),
            None => {
                let api: Api<Lean<ConfigMap>> =
                    Api::namespaced(self.client.clone(), &run.namespace);
                let wp = WatchParams::default().labels(&format!("{RUN_ID_LABEL}={}", run.run_id));
                watch(api, wp).boxed()
            }
        };
        // This run's reports by name: usually one; two when another pod of the Job reported
        // too. Which one counts is known once the progress watch has seen the run's pod.
        let mut reports: BTreeMap<String, ConfigMap> = BTreeMap::new();
        let mut pod_followed = true;
        // A pod gone before the progress watch saw it leaves no watched pod: after a grace,
        // its report (the first, under the Job's name) is taken as the old code took it.
        let mut unseen_pod_grace = false;
        let grace = tokio::time::sleep(UNSEEN_POD_GRACE);
        tokio::pin!(grace);
        loop {
            let watched = uid_of(pod.borrow().as_ref());
            let found = match &watched {
                Some(watched) => reports.values().find(|cm| from_pod(cm, watched)),
                None if unseen_pod_grace => reports.values().next(),
                None => None,
            };
            if let Some(cm) = found {
                return decode(cm);
            }
            if reports.is_empty() {
                grace
                    .as_mut()
                    .reset(tokio::time::Instant::now() + UNSEEN_POD_GRACE);
            }
            tokio::select! {
                ev = events.next() => match ev {
                    None => return Err(Error::CorruptReport("the ConfigMap watch ended".into())),
                    Some(ev) => match ev? {
                        Event::Applied(Lean(cm)) if accept(&cm, run, job) => {
                            reports.insert(cm.metadata.name.clone().unwrap_or_default(), cm);
                        }
                        Event::Applied(Lean(cm)) => {
                            tracing::debug!(name = ?cm.metadata.name, "ignoring a ConfigMap not owned by this run's Job");
                        }
                        Event::Deleted(Lean(cm)) => {
                            reports.remove(&cm.metadata.name.clone().unwrap_or_default());
                        }
                        // The full current state follows.
                        Event::Restarted => reports.clear(),
                    },
                },
                // Once the progress watch is gone, it has ended the run: nothing to wait for.
                changed = pod.changed(), if pod_followed => pod_followed = changed.is_ok(),
                () = &mut grace, if !reports.is_empty() && !unseen_pod_grace => unseen_pod_grace = true,
            }
        }
    }

    async fn try_receive(
        &self,
        run: &RunContext,
        job: &DispatchedJob,
        pod: Option<&Pod>,
    ) -> Result<Option<Report>, Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &run.namespace);
        let found = retry(RETRY_ATTEMPTS, |_| api.get_opt(&run.job_name)).await?;
        let Some(cm) = found.filter(|cm| accept(cm, run, job)) else {
            return Ok(None);
        };
        let Some(watched) = uid_of(pod) else {
            return decode(&cm).map(Some);
        };
        if from_pod(&cm, &watched) {
            return decode(&cm).map(Some);
        }
        // Another pod of the Job took the Job's name: the watched pod's report, if any, is
        // under its own name (a second request, only in this rare case).
        let name = pod_report_name(&run.job_name, &watched);
        match retry(RETRY_ATTEMPTS, |_| api.get_opt(&name)).await? {
            Some(cm) if accept(&cm, run, job) && from_pod(&cm, &watched) => decode(&cm).map(Some),
            _ => Ok(None),
        }
    }
}
