//! The kubelet faults that act on one pod as it starts (see
//! [`KubeletFault`](crate::faults::KubeletFault)): an eviction, and a second pod like it.

use crate::json::json;

use super::{PodRun, now};
use crate::faults::DUPLICATE_OF;
use crate::resources::well_known;
use crate::store::meta_str;

impl PodRun {
    /// Evicts the pod (a kubelet fault), as the kubelet does under node pressure.
    pub(super) fn evict(&self) {
        let t = now(&self.kubelet);
        self.update(|s| {
            s["phase"] = json!("Failed");
            s["reason"] = json!("Evicted");
            s["message"] = json!("The node was low on resource: memory. ");
            Self::set_condition(
                s,
                "DisruptionTarget",
                true,
                Some("TerminationByKubelet"),
                &t,
            );
            Self::set_terminal_readiness(s, "PodFailed", &t);
            Self::set_condition(s, "PodReadyToStartContainers", false, None, &t);
        });
    }

    /// Starts a second pod like this one (a kubelet fault): same labels, owner and
    /// finalizers, a new name from the same `generateName`, marked [`DUPLICATE_OF`].
    pub(super) fn start_duplicate(&self) {
        let mut copy = (*self.pod).clone();
        let generate = meta_str(&self.pod, "generateName")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}-", self.name));
        if let Some(meta) = copy["metadata"].as_object_mut() {
            for key in [
                "name",
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "generation",
                "managedFields",
            ] {
                meta.remove(key);
            }
            meta.insert("generateName".into(), json!(generate));
        }
        if let Some(spec) = copy["spec"].as_object_mut() {
            spec.remove("nodeName");
        }
        if let Some(obj) = copy.as_object_mut() {
            obj.remove("status");
        }
        copy["metadata"]["annotations"][DUPLICATE_OF] = json!(self.uid);
        if let Err(e) = self
            .kubelet
            .api
            .store
            .create(well_known::pods(), &self.ns, copy)
        {
            tracing::warn!(%e, pod = %self.name, "second pod not created");
        }
    }
}
