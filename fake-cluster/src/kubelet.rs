//! The kubelet: runs a bound pod's init containers in order, then its containers, through a
//! [`Runtime`], and writes the pod's status as a real kubelet does.

mod volumes;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use crate::json::{Value, json};
use tokio::sync::watch;

use crate::api::ApiServer;
use crate::env::{container_argv, container_env};
use crate::faults::{DUPLICATE_OF, KubeletFault};
use crate::resources::well_known;
use crate::runtime::{
    ContainerSpec, Exit, Finished, Mount, OutputSink, PodApi, PullError, Runtime, push_hex, stopped,
};
use crate::store::meta_str;

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

/// `containerd://` and the hex SHA-256 of `<pod uid>/<container name>`.
fn container_id(pod_uid: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::new()
        .chain_update(pod_uid)
        .chain_update("/")
        .chain_update(name)
        .finalize();
    let mut id = String::with_capacity("containerd://".len() + 2 * h.len());
    id.push_str("containerd://");
    push_hex(&mut id, &h);
    id
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

fn waiting(name: &str, image: &str, reason: &str, message: Option<&str>) -> Value {
    let mut w = json!({"reason": reason});
    if let Some(m) = message {
        w["message"] = json!(m);
    }
    json!({"name": name, "image": image, "imageID": "", "ready": false, "restartCount": 0,
           "started": false, "state": {"waiting": w}})
}

impl PodRun {
    /// The pod's `spec.<list>` (`initContainers`, `containers`).
    fn containers<'a>(pod: &'a Value, list: &str) -> &'a [Value] {
        pod.get("spec")
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn update(&self, f: impl FnOnce(&mut Value)) -> bool {
        if self.kubelet.node_lost(&self.node) {
            return false;
        }
        self.kubelet
            .api
            .store
            .modify(well_known::pods(), &self.ns, &self.name, |pod| {
                if meta_str(pod, "uid") != Some(self.uid.as_str()) {
                    return Err(crate::status::ApiError::not_found(well_known::pods(), ""));
                }
                f(&mut pod["status"]);
                Ok(())
            })
            .is_ok()
    }

    fn set_container(&self, list: &str, name: &str, status: Value) {
        self.set_container_then(list, name, status, |_| {});
    }

    /// Sets one container's status and, in the same write, what follows from it (`then`):
    /// a real kubelet computes the pod's phase and conditions from its container statuses
    /// in the same sync and writes them together.
    fn set_container_then(
        &self,
        list: &str,
        name: &str,
        status: Value,
        then: impl FnOnce(&mut Value),
    ) {
        self.update(|s| {
            if let Some(arr) = s.get_mut(list).and_then(Value::as_array_mut) {
                for c in arr.iter_mut() {
                    if c.get("name").and_then(Value::as_str) == Some(name) {
                        *c = status;
                        break;
                    }
                }
            }
            then(s);
        });
    }

    /// After a container terminated: the pod's phase and conditions once every container of
    /// `list` has terminated (init containers: `Initialized`, or the pod failed at the first
    /// failed one; containers: `Succeeded` or `Failed`).
    fn settle(s: &mut Value, list: &str, t: &str) {
        let mut failed = false;
        let mut all_ended = true;
        for c in s[list].as_array().into_iter().flatten() {
            let code = c
                .get("state")
                .and_then(|s| s.get("terminated"))
                .and_then(|t| t.get("exitCode"))
                .and_then(Value::as_i64);
            failed |= code.is_some_and(|c| c != 0);
            all_ended &= code.is_some();
        }
        if list == "initContainerStatuses" {
            if failed {
                s["phase"] = json!("Failed");
                Self::set_condition(s, "Initialized", false, Some("PodFailed"), t);
                Self::set_condition(s, "PodReadyToStartContainers", false, None, t);
                Self::set_terminal_readiness(s, "PodFailed", t);
            } else if all_ended {
                Self::set_condition(s, "Initialized", true, None, t);
            }
        } else if all_ended {
            Self::finish_phase(s, !failed, t);
        }
    }

    /// The phase and conditions of a pod whose containers have all ended.
    fn finish_phase(s: &mut Value, ok: bool, t: &str) {
        s["phase"] = json!(if ok { "Succeeded" } else { "Failed" });
        let reason = if ok { "PodCompleted" } else { "PodFailed" };
        Self::set_terminal_readiness(s, reason, t);
        if ok {
            // The real kubelet's Initialized condition of a Succeeded pod (with or without
            // init containers) is True with reason PodCompleted.
            Self::set_terminal_condition(s, "Initialized", true, reason, t);
        }
        Self::set_condition(s, "PodReadyToStartContainers", false, None, t);
    }

    /// Ready and ContainersReady of a pod in a terminal phase: False, with the phase's
    /// reason (PodCompleted or PodFailed).
    fn set_terminal_readiness(s: &mut Value, reason: &str, t: &str) {
        for kind in ["Ready", "ContainersReady"] {
            Self::set_terminal_condition(s, kind, false, reason, t);
        }
    }

    /// A condition of a pod in a terminal phase. A real kubelet generates the conditions
    /// afresh in each sync (for a terminal phase with its reason) and keeps only the
    /// lastTransitionTime of an unchanged status; so a condition whose status does not
    /// change still takes the terminal reason (a pod that was never ready ends with
    /// PodCompleted or PodFailed, not with the ContainersNotReady it started with).
    fn set_terminal_condition(s: &mut Value, kind: &str, ok: bool, reason: &str, t: &str) {
        // A condition written afresh already has `reason`: only one kept needs it.
        if let Some(kept) = Self::put_condition(s, kind, ok, Some(reason), t)
            && kept.get("reason").and_then(Value::as_str) != Some(reason)
        {
            kept["reason"] = json!(reason);
        }
    }

    fn set_condition(s: &mut Value, kind: &str, ok: bool, reason: Option<&str>, now: &str) {
        Self::put_condition(s, kind, ok, reason, now);
    }

    /// [`PodRun::set_condition`]; returns the condition of this type already there when it
    /// is kept (same status), `None` when one was written.
    fn put_condition<'a>(
        s: &'a mut Value,
        kind: &str,
        ok: bool,
        reason: Option<&str>,
        now: &str,
    ) -> Option<&'a mut Value> {
        if !s.get("conditions").is_some_and(Value::is_array) {
            s["conditions"] = json!([]);
        }
        let status = if ok { "True" } else { "False" };
        // The condition is built only when it is written (a condition already in this
        // status keeps its lastTransitionTime and reason).
        let condition = || {
            let mut c = json!({"type": kind, "status": status,
                               "lastProbeTime": null, "lastTransitionTime": now});
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            c
        };
        let arr = s.get_mut("conditions").and_then(Value::as_array_mut)?;
        match arr.iter_mut().position(|x| x["type"] == kind) {
            Some(i) if arr[i]["status"] == status => arr.get_mut(i),
            Some(i) => {
                arr[i] = condition();
                None
            }
            None => {
                arr.push(condition());
                None
            }
        }
    }

    fn mounts(&self, container: &Value) -> Vec<Mount> {
        let root = self.kubelet.volumes_root.join(&self.uid);
        container
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let vol = m.get("name").and_then(Value::as_str)?;
                Some(Mount {
                    host_path: root.join(vol),
                    mount_path: m.get("mountPath").and_then(Value::as_str)?.to_owned(),
                    read_only: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect()
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

    /// Runs one container; `None` when it never ran to an end (stopped while waiting).
    async fn run_container(&self, list: &str, c: &Value) -> Option<Exit> {
        let k = self.kubelet.clone();
        if k.node_lost(&self.node) {
            stopped(&mut self.stop.clone()).await;
            return None;
        }
        let name = c["name"].as_str().unwrap_or_default().to_owned();
        let image = c["image"].as_str().unwrap_or_default().to_owned();
        // Image.
        let image_id = loop {
            match k.runtime.pull(&image).await {
                Ok(id) => break id,
                Err(e @ PullError::InvalidName(_)) => {
                    self.set_container(
                        list,
                        &name,
                        waiting(&name, &image, "InvalidImageName", Some(&e.to_string())),
                    );
                    stopped(&mut self.stop.clone()).await;
                    return None;
                }
                Err(e @ PullError::NotFound(_)) => {
                    self.set_container(
                        list,
                        &name,
                        waiting(&name, &image, "ErrImagePull", Some(&e.to_string())),
                    );
                    if self.wait_or_stop(IMAGE_PULL_BACKOFF).await {
                        return None;
                    }
                    let msg = format!("Back-off pulling image \"{image}\"");
                    self.set_container(
                        list,
                        &name,
                        waiting(&name, &image, "ImagePullBackOff", Some(&msg)),
                    );
                    if self.wait_or_stop(IMAGE_PULL_RETRY).await {
                        return None;
                    }
                }
            }
        };
        // Config.
        let pod_now = k
            .api
            .store
            .lookup(well_known::pods(), &self.ns, &self.name)
            .unwrap_or_else(|| self.pod.clone());
        let env = match container_env(&k.api.store, &pod_now, c) {
            Ok(env) => env,
            Err(e) => {
                self.set_container(
                    list,
                    &name,
                    waiting(&name, &image, "CreateContainerConfigError", Some(&e.0)),
                );
                stopped(&mut self.stop.clone()).await;
                return None;
            }
        };
        let argv = container_argv(c, &env);
        let message_path = c["terminationMessagePath"]
            .as_str()
            .unwrap_or("/dev/termination-log")
            .to_owned();
        let fallback = c["terminationMessagePolicy"] == "FallbackToLogsOnError";
        let grace = self
            .pod
            .get("spec")
            .and_then(|s| s.get("terminationGracePeriodSeconds"))
            .and_then(Value::as_u64)
            .unwrap_or(30);
        let spec = ContainerSpec {
            namespace: self.ns.clone(),
            pod_name: self.name.clone(),
            pod_uid: self.uid.clone(),
            name: name.clone(),
            image: image.clone(),
            argv,
            env,
            working_dir: c["workingDir"].as_str().map(str::to_owned),
            mounts: self.mounts(c),
            termination_message_path: message_path,
            grace_period: Duration::from_secs(grace),
        };
        let started = now(&k);
        let cid = container_id(&self.uid, &name);
        // Built only for the write that reports the container running (a container that
        // ends on its first poll never is).
        let running = || {
            json!({"name": name, "image": image, "imageID": image_id,
            "containerID": cid, "ready": list == "containerStatuses", "restartCount": 0, "started": true,
            "state": {"running": {"startedAt": started}}})
        };
        if self.lose_node {
            // The node goes as the container starts: its status stays as last posted.
            self.set_running(list, &name, running(), &started);
            k.lose_node(&self.node);
            stopped(&mut self.stop.clone()).await;
            return None;
        }
        let sink = OutputSink {
            logs: k.api.logs.clone(),
            pod_uid: self.uid.clone(),
            container: name.clone(),
            clock: k.api.store.clock().clone(),
        };
        let result = match self.kill {
            Some(signal) => {
                self.set_running(list, &name, running(), &started);
                Ok(Finished {
                    exit: Exit::Signal(signal),
                    termination_message: None,
                })
            }
            None => {
                let mut run =
                    k.runtime
                        .run(spec, sink.clone(), self.stop.clone(), k.pod_api.clone());
                // A real kubelet learns that a container runs from its runtime, at the next
                // relist (PLEG, every second): a container that has already ended by then
                // (or never started: StartError) is reported terminated, never running. So a
                // container whose program ends on its first poll, without waiting for
                // anything, goes straight to its terminated status; any other is reported
                // running once it has started.
                match futures::poll!(&mut run) {
                    Poll::Ready(result) => result,
                    Poll::Pending => {
                        self.set_running(list, &name, running(), &started);
                        run.await
                    }
                }
            }
        };
        sink.finish();
        let finished_at = now(&k);
        let (exit, reason, message) = match result {
            Ok(f) => {
                let code = f.exit.exit_code();
                let mut message = f.termination_message.map(|m| {
                    let m = &m[..m.len().min(4096)];
                    String::from_utf8_lossy(m).into_owned()
                });
                if message.is_none() && fallback && code != 0 {
                    let tail = k.api.logs.fallback_tail(&self.uid, &name);
                    message = (!tail.is_empty()).then_some(tail);
                }
                let reason = if code == 0 { "Completed" } else { "Error" };
                (f.exit, reason, message)
            }
            Err(e) => (Exit::Code(128), "StartError", Some(e.0)),
        };
        let mut terminated = json!({"exitCode": exit.exit_code(), "reason": reason,
            "startedAt": started, "finishedAt": finished_at, "containerID": cid});
        if reason == "StartError" {
            terminated["startedAt"] = json!("1970-01-01T00:00:00Z");
        }
        if let Some(m) = message {
            terminated["message"] = json!(m);
        }
        // A regular init container that exited 0 is ready (the real kubelet's prober
        // manager, UpdatePodStatus); any other terminated container is not.
        let ready = list == "initContainerStatuses" && exit.exit_code() == 0;
        self.set_container_then(
            list,
            &name,
            json!({"name": name, "image": image, "imageID": image_id,
            "containerID": cid, "ready": ready, "restartCount": 0, "started": false,
            "state": {"terminated": terminated}}),
            |s| Self::settle(s, list, &finished_at),
        );
        Some(exit)
    }

    /// Writes a container's running status and, for a main container, the pod's phase
    /// `Running` and, once all its containers run, `Ready`/`ContainersReady`.
    fn set_running(&self, list: &str, name: &str, running: Value, started: &str) {
        self.set_container_then(list, name, running, |s| {
            if list == "containerStatuses" {
                s["phase"] = json!("Running");
                let all_running = s["containerStatuses"].as_array().is_some_and(|a| {
                    a.iter()
                        .all(|c| c.get("state").and_then(|s| s.get("running")).is_some())
                });
                if all_running {
                    Self::set_condition(s, "Ready", true, None, started);
                    Self::set_condition(s, "ContainersReady", true, None, started);
                }
            }
        });
    }

    /// Evicts the pod (a kubelet fault), as the kubelet does under node pressure.
    fn evict(&self) {
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
    fn start_duplicate(&self) {
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

    /// Waits `d`; true when the pod was stopped meanwhile.
    async fn wait_or_stop(&self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = stopped(&mut stop) => true,
        }
    }
}
