//! One container of a pod as the kubelet runs it: the image pull (with its back-off), the
//! container's config (environment, arguments, mounts), the run through the
//! [`Runtime`](crate::runtime::Runtime) and the status of its termination.

use std::task::Poll;
use std::time::Duration;

use crate::json::{Value, json};

use super::{IMAGE_PULL_BACKOFF, IMAGE_PULL_RETRY, PodRun, now, waiting};
use crate::env::{container_argv, container_env};
use crate::resources::well_known;
use crate::runtime::{
    ContainerSpec, Exit, Finished, Mount, OutputSink, PullError, push_hex, stopped,
};

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
impl PodRun {
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

    /// Runs one container; `None` when it never ran to an end (stopped while waiting).
    pub(super) async fn run_container(&self, list: &str, c: &Value) -> Option<Exit> {
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
}
