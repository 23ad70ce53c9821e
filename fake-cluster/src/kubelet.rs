//! The kubelet: runs a bound pod's init containers in order, then its containers, through a
//! [`Runtime`], and writes the pod's status as a real kubelet does.

mod container;
mod faults;
mod status;
mod volumes;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::json::{Value, json};
use tokio::sync::watch;

use crate::api::ApiServer;
use crate::faults::{DUPLICATE_OF, KubeletFault};
use crate::resources::well_known;
use crate::runtime::{Exit, PodApi, Runtime, stopped};
use crate::store::meta_str;
use status::waiting;

/// How long after `ErrImagePull` the kubelet reports `ImagePullBackOff`.
pub const IMAGE_PULL_BACKOFF: Duration = Duration::from_secs(1);
/// How often an image pull is retried.
pub const IMAGE_PULL_RETRY: Duration = Duration::from_secs(10);

/// The kubelet of the fake cluster's node(s).
pub struct Kubelet {
    pub(crate) api: Arc<ApiServer>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) pod_api: PodApi,
    pub(crate) volumes_root: PathBuf,
    /// Nodes lost to a [`KubeletFault::NodeLost`]: their pods' status is no longer
    /// written, their containers no longer run.
    pub(crate) lost_nodes: Mutex<HashSet<String>>,
}

struct PodRun {
    kubelet: Arc<Kubelet>,
    ns: String,
    name: String,
    uid: String,
    /// The pod as it was bound (shared with the store's history, never copied).
    pod: Arc<Value>,
    stop: watch::Receiver<bool>,
    /// A kubelet fault: kill each container by this signal as it starts.
    kill: Option<i32>,
    /// The node the pod is bound to.
    node: String,
    /// A kubelet fault: the node is lost as the first container starts.
    lose_node: bool,
}

fn now(k: &Kubelet) -> String {
    k.api.store.clock().now_rfc3339_seconds()
}

impl Kubelet {
    /// Runs a pod that was just bound to this node, until its containers end or it is
    /// stopped through `stop`.
    pub(crate) async fn run_pod(self: Arc<Self>, pod: Arc<Value>, stop: watch::Receiver<bool>) {
        let run = PodRun {
            ns: meta_str(&pod, "namespace").unwrap_or_default().to_owned(),
            name: meta_str(&pod, "name").unwrap_or_default().to_owned(),
            uid: meta_str(&pod, "uid").unwrap_or_default().to_owned(),
            node: pod
                .get("spec")
                .and_then(|s| s.get("nodeName"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            pod,
            kubelet: self,
            stop,
            kill: None,
            lose_node: false,
        };
        run.run().await;
    }

    /// Whether `node` was lost (its kubelet stopped posting status).
    pub(crate) fn node_lost(&self, node: &str) -> bool {
        self.lost_nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(node)
    }

    /// Loses `node`: from now on nothing of its pods is written, and after the node
    /// monitor grace period the node lifecycle controller's part marks it unreachable.
    fn lose_node(&self, node: &str) {
        self.lost_nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_owned());
        let api = Arc::downgrade(&self.api);
        let node = node.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(crate::controllers::NODE_MONITOR_GRACE_PERIOD).await;
            if let Some(api) = api.upgrade() {
                crate::controllers::mark_unreachable(&api.store, &node);
            }
        });
    }

    /// Removes a pod whose containers have all stopped: a delete with a zero grace period
    /// and the pod's uid as precondition, as the real kubelet's status manager sends it
    /// (the server writes the zero grace period, then removes the pod unless finalizers
    /// hold it).
    pub(crate) fn finish_deletion(&self, ns: &str, name: &str, uid: &str) {
        let opts = crate::store::DeleteOptions {
            uid: Some(uid.to_owned()),
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let _ = self.api.store.delete(well_known::pods(), ns, name, &opts);
        self.api.logs.remove_pod(uid);
    }
}

impl PodRun {
    /// The pod's `spec.<list>` (`initContainers`, `containers`).
    fn containers<'a>(pod: &'a Value, list: &str) -> &'a [Value] {
        pod.get("spec")
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    async fn run(mut self) {
        let k = self.kubelet.clone();
        // A handle of its own on the pod, so the container lists borrow from it while
        // `self` changes.
        let pod = self.pod.clone();
        let inits = Self::containers(&pod, "initContainers");
        let mains = Self::containers(&pod, "containers");
        let t = now(&k);
        let has_inits = !inits.is_empty();
        self.update(|s| {
            s["phase"] = json!("Pending");
            s["hostIP"] = json!("10.0.0.1");
            s["hostIPs"] = json!([{"ip": "10.0.0.1"}]);
            s["podIP"] = json!("10.244.0.2");
            s["podIPs"] = json!([{"ip": "10.244.0.2"}]);
            s["startTime"] = json!(t);
            Self::set_condition(s, "PodReadyToStartContainers", true, None, &t);
            Self::set_condition(
                s,
                "Initialized",
                !has_inits,
                has_inits.then_some("ContainersNotInitialized"),
                &t,
            );
            Self::set_condition(s, "Ready", false, Some("ContainersNotReady"), &t);
            Self::set_condition(s, "ContainersReady", false, Some("ContainersNotReady"), &t);
            Self::set_condition(s, "PodScheduled", true, None, &t);
            if has_inits {
                s["initContainerStatuses"] = Value::Array(
                    inits
                        .iter()
                        .map(|c| {
                            waiting(
                                c["name"].as_str().unwrap_or_default(),
                                c["image"].as_str().unwrap_or_default(),
                                "PodInitializing",
                                None,
                            )
                        })
                        .collect(),
                );
            }
            let reason = if has_inits {
                "PodInitializing"
            } else {
                "ContainerCreating"
            };
            s["containerStatuses"] = Value::Array(
                mains
                    .iter()
                    .map(|c| {
                        waiting(
                            c["name"].as_str().unwrap_or_default(),
                            c["image"].as_str().unwrap_or_default(),
                            reason,
                            None,
                        )
                    })
                    .collect(),
            );
        });
        let root = k.volumes_root.join(&self.uid);
        for (volume, files) in volumes::volume_files(&k.api.store, &self.pod) {
            if let Err(e) = k
                .runtime
                .write_volume(&self.uid, &root.join(&volume), &files)
            {
                tracing::warn!(%e, volume, pod = %self.name, "volume not written");
            }
        }
        let duplicate = self
            .pod
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(DUPLICATE_OF))
            .is_some();
        let fault = k
            .api
            .faults
            .get()
            .filter(|_| !duplicate)
            .and_then(|f| f.kubelet_fault(&self.ns, &self.name));
        match fault {
            Some(KubeletFault::Evict) => {
                self.evict();
                stopped(&mut self.stop.clone()).await;
                k.finish_deletion(&self.ns, &self.name, &self.uid);
                return;
            }
            Some(KubeletFault::DuplicatePod) => self.start_duplicate(),
            Some(KubeletFault::Signal(n)) => self.kill = Some(n),
            Some(KubeletFault::NodeLost) => self.lose_node = true,
            None => {}
        }
        // The write of each container's termination also settles what follows from it
        // (`settle`); only a container that never ran to an end needs a write of its own.
        let mut init_failed = false;
        for c in inits {
            match self.run_container("initContainerStatuses", c).await {
                Some(Exit::Code(0)) => {}
                exit => {
                    if exit.is_none() {
                        let t = now(&k);
                        self.update(|s| {
                            s["phase"] = json!("Failed");
                            Self::set_condition(s, "Initialized", false, Some("PodFailed"), &t);
                            Self::set_condition(s, "PodReadyToStartContainers", false, None, &t);
                            Self::set_terminal_readiness(s, "PodFailed", &t);
                        });
                    }
                    init_failed = true;
                    break;
                }
            }
        }
        if !init_failed {
            let runs = mains
                .iter()
                .map(|c| self.run_container("containerStatuses", c));
            let exits = futures::future::join_all(runs).await;
            if exits.iter().any(Option::is_none) {
                let t = now(&k);
                self.update(|s| Self::finish_phase(s, false, &t));
            }
        }
        // A pod being deleted goes once its containers have stopped (not on a lost node,
        // whose kubelet cannot say they have).
        stopped(&mut self.stop.clone()).await;
        if !k.node_lost(&self.node) {
            k.finish_deletion(&self.ns, &self.name, &self.uid);
        }
    }

    /// Waits `d`; true when the pod was stopped meanwhile.
    async fn wait_or_stop(&self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = stopped(&mut stop) => true,
        }
    }
}
