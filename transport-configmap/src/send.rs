//! Courier side: create the ConfigMap, retrying transient errors, never overwriting.

use async_trait::async_trait;
use cmdreporter_core::Report;
use cmdreporter_core::capture::CaptureLimits;
use cmdreporter_core::courier::{CourierHost, CourierIdentity, Delivery};
use cmdreporter_core::dispatcher::{RETRY_ATTEMPTS, retry};
use cmdreporter_core::error::api_code;
use cmdreporter_core::job::run_labels;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use crate::format::{BUDGET_PER_STREAM, encode};

/// Delivers a report as a ConfigMap named like the Job and owned by it.
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

/// The ConfigMap carrying `report` for the courier `who`.
pub fn report_configmap(who: &CourierIdentity, report: &Report) -> ConfigMap {
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(who.job_name.clone()),
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

/// Whether an existing ConfigMap is this courier's own report (a create whose response was
/// lost).
fn is_ours(cm: &ConfigMap, who: &CourierIdentity) -> bool {
    let owned = cm
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == who.job_uid);
    let data = cm.data.as_ref();
    owned
        && data.and_then(|d| d.get(crate::keys::RUN_ID)) == Some(&who.run_id)
        && data.and_then(|d| d.get(crate::keys::POD_UID)) == Some(&who.pod_uid)
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
        let api: Api<ConfigMap> = Api::namespaced(client, &who.namespace);
        let cm = report_configmap(who, report);
        let pp = PostParams::default();
        let result = retry(RETRY_ATTEMPTS, |_| api.create(&pp, &cm)).await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if api_code(&e) == Some(409) => {
                let existing = retry(RETRY_ATTEMPTS, |_| api.get(&who.job_name))
                    .await
                    .map_err(|e| e.to_string())?;
                if is_ours(&existing, who) {
                    Ok(())
                } else {
                    Err(format!(
                        "configmap {:?} exists and is not this run's report: {e}",
                        who.job_name
                    ))
                }
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
