//! What the pod meets: an admission webhook (rejection, an invalid image, a missing
//! Secret), an eviction, a second pod of the Job.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cmdreporter_fake_cluster::json::Value;
use cmdreporter_fake_cluster::resources::{ResourceDef, well_known};
use cmdreporter_fake_cluster::{AdmissionCheck, ApiError, FakeCluster};
use cmdreporter_tests::wait_for_store;

use crate::MISSING_SECRET;
use crate::model::Meets;

/// An admission webhook acting on the pods of runs, found by their command's image: it
/// rejects some (as Pod Security would), gives some an image the kubelet cannot parse,
/// and adds to some an env var from a Secret that does not exist.
#[derive(Default)]
pub(crate) struct Webhook {
    pub(crate) reject: BTreeSet<String>,
    pub(crate) invalid_image: BTreeSet<String>,
    pub(crate) missing_secret: BTreeSet<String>,
}

pub(crate) const REJECTION: &str = "violates PodSecurity \"restricted:latest\" (property test)";

/// The image reference the webhook gives a run's command container (upper case: invalid).
pub(crate) fn invalid_image_of(image: &str) -> String {
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
                    env.push(
                        cmdreporter_fake_cluster::json::json!({"name": "INJECTED", "valueFrom":
                        {"secretKeyRef": {"name": MISSING_SECRET, "key": "token"}}}),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The first pod of run `i` (found by its image) once `ready` holds for it.
pub(crate) async fn pod_of(
    cluster: &FakeCluster,
    image: &str,
    ready: fn(&Value) -> bool,
) -> Arc<Value> {
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

pub(crate) fn command_started(p: &Value) -> bool {
    p.pointer("/status/containerStatuses/0/state/running")
        .is_some()
}

/// Evicts the run's pod, or starts a second pod for its Job. Whether it did.
pub(crate) async fn disrupt(cluster: &FakeCluster, image: &str, meets: Meets) -> bool {
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

pub(crate) fn image_of(i: usize) -> String {
    format!("tools-{i}:1.0")
}

pub(crate) fn broken_reporter_of(i: usize) -> String {
    format!("broken-reporter-{i}:1.0")
}
