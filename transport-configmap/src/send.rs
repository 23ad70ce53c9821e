//! Courier side: create the ConfigMap, retrying transient errors, never overwriting; when
//! another pod of the same Job took the Job's name, create one named after this pod.

use async_trait::async_trait;
use cmdreporter_core::Report;
use cmdreporter_core::capture::CaptureLimits;
use cmdreporter_core::courier::{CourierHost, CourierIdentity, Delivery};
use cmdreporter_core::dispatcher::{RETRY_ATTEMPTS, retry};
use cmdreporter_core::error::api_code;
use cmdreporter_core::job::run_labels;
use cmdreporter_core::lean::Lean;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use crate::format::{BUDGET_PER_STREAM, encode, pod_report_name, pod_uid_of};

/// Delivers a report as a ConfigMap named like the Job (or, when another pod of the Job took
/// that name, like the pod) and owned by the Job.
#[derive(Debug, Clone, Default)]
pub struct ConfigMapDelivery {
    _private: (),
}

impl ConfigMapDelivery {
    /// The delivery.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The ConfigMap carrying `report` for the courier `who`, named `name` (the Job's name, or
/// [`pod_report_name`] when another pod of the Job took it).
pub fn report_configmap(who: &CourierIdentity, report: &Report, name: &str) -> ConfigMap {
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(who.namespace.clone()),
            labels: Some(run_labels(&who.run_id)),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: who.job_name.clone(),
                uid: who.job_uid.clone(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        ..Default::default()
    };
    encode(report, &mut cm);
    cm
}

/// Whose report an existing ConfigMap of the wanted name is.
#[derive(Debug, PartialEq, Eq)]
enum Holder {
    /// This courier's own (a create whose answer was lost).
    Us,
    /// Another pod's of the same Job and run.
    OtherPod,
    /// Not a report of this run.
    Foreign,
}

fn holder(cm: &ConfigMap, who: &CourierIdentity) -> Holder {
    let owned = cm
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == who.job_uid);
    let run = cm.data.as_ref().and_then(|d| d.get(crate::keys::RUN_ID));
    if !owned || run != Some(&who.run_id) {
        return Holder::Foreign;
    }
    match pod_uid_of(cm) {
        Some(uid) if uid == who.pod_uid => Holder::Us,
        Some(_) => Holder::OtherPod,
        None => Holder::Foreign,
    }
}

/// Creates `cm`, retrying transient errors; on 409, reads back who holds the name. The
/// error, if any, is the message for the termination log. Answers are read lean: only
/// their metadata and data are looked at.
async fn create(
    api: &Api<Lean<ConfigMap>>,
    cm: &Lean<ConfigMap>,
    who: &CourierIdentity,
) -> Result<Holder, String> {
    let name = cm.0.metadata.name.as_deref().unwrap_or_default();
    let pp = PostParams::default();
    match retry(RETRY_ATTEMPTS, |_| api.create(&pp, cm)).await {
        Ok(_) => Ok(Holder::Us),
        Err(e) if api_code(&e) == Some(409) => {
            let existing = retry(RETRY_ATTEMPTS, |_| api.get(name))
                .await
                .map_err(|e| e.to_string())?;
            match holder(&existing.0, who) {
                Holder::Foreign => Err(format!(
                    "configmap {name:?} exists and is not this run's report: {e}"
                )),
                h => Ok(h),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

#[async_trait]
impl Delivery for ConfigMapDelivery {
    fn limits(&self) -> CaptureLimits {
        CaptureLimits::split(BUDGET_PER_STREAM)
    }

    async fn deliver(
        &self,
        host: &dyn CourierHost,
        who: &CourierIdentity,
        report: &Report,
    ) -> Result<(), String> {
        let client = host.client().await?;
        let api: Api<Lean<ConfigMap>> = Api::namespaced(client, &who.namespace);
        let cm = Lean(report_configmap(who, report, &who.job_name));
        if create(&api, &cm, who).await? == Holder::Us {
            return Ok(());
        }
        // Another pod of the Job delivered first: this pod's report goes beside it, under a
        // name of its own; the operator takes the one of the pod it watches.
        let name = pod_report_name(&who.job_name, &who.pod_uid);
        tracing::debug!(%name, "the Job's name holds another pod's report");
        let cm = Lean(report_configmap(who, report, &name));
        match create(&api, &cm, who).await? {
            Holder::Us => Ok(()),
            h => Err(format!(
                "configmap {name:?} holds another pod's report ({h:?})"
            )),
        }
    }
}
