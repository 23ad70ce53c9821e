//! The controllers: Job controller, garbage collector, scheduler, and the kubelet's pod
//! lifecycle, driven by the store's ordered stream of changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::api::ApiServer;
use crate::kubelet::Kubelet;
use crate::resources::{Propagation, RESOURCES, ResourceDef, well_known};
use crate::store::{Change, ChangeType, DeleteOptions, meta_str};

/// The node every pod is bound to.
pub const NODE_NAME: &str = "node-1";

enum Work {
    Change(Arc<Change>),
    Job(String, String),
}

/// Runs every controller until the store is dropped.
pub(crate) struct Controllers {
    api: Arc<ApiServer>,
    kubelet: Arc<Kubelet>,
    requeue: mpsc::UnboundedSender<(String, String)>,
    /// Stop signals of running pods, by uid.
    pods: HashMap<String, watch::Sender<bool>>,
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn is_controlled_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| r["uid"] == uid && r["controller"] == true)
}

fn has_condition(job: &Value, kind: &str) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

impl Controllers {
    pub(crate) fn spawn(api: Arc<ApiServer>, kubelet: Arc<Kubelet>) {
        let mut changes = api.store.subscribe_controller();
        let (requeue, mut requeued) = mpsc::unbounded_channel();
        let mut this = Self {
            api,
            kubelet,
            requeue,
            pods: HashMap::new(),
        };
        tokio::spawn(async move {
            loop {
                let work = tokio::select! {
                    biased;
                    c = changes.recv() => match c {
                        Some(c) => Work::Change(c),
                        None => return,
                    },
                    Some((ns, name)) = requeued.recv() => Work::Job(ns, name),
                };
                match work {
                    Work::Change(c) => this.on_change(&c),
                    Work::Job(ns, name) => this.reconcile_job(&ns, &name),
                }
            }
        });
    }

    fn on_change(&mut self, c: &Change) {
        let pods = well_known::pods();
        let jobs = well_known::jobs();
        if c.kind == ChangeType::Deleted {
            self.collect_dependents(c);
        } else if meta_str(&c.object, "deletionTimestamp").is_some() {
            self.process_finalizers(c);
        }
        if c.resource == jobs {
            if c.kind == ChangeType::Added {
                self.start_job_deadline(&c.object);
            }
            if c.kind != ChangeType::Deleted {
                self.reconcile_job(&c.namespace, &c.name);
            }
        } else if c.resource == pods {
            self.on_pod(c);
            for owner in c
                .object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if owner["kind"] == "Job"
                    && owner["controller"] == true
                    && let Some(name) = owner["name"].as_str()
                {
                    self.reconcile_job(&c.namespace, name);
                }
            }
        }
    }

    // ---- scheduler and kubelet lifecycle ----

    fn on_pod(&mut self, c: &Change) {
        let uid = meta_str(&c.object, "uid").unwrap_or_default().to_owned();
        match c.kind {
            ChangeType::Added => {
                if c.object.pointer("/spec/nodeName").is_none() {
                    self.schedule(&c.namespace, &c.name);
                }
            }
            ChangeType::Modified => {
                let bound = c.object.pointer("/spec/nodeName").is_some();
                let was_bound = c
                    .previous
                    .as_ref()
                    .is_some_and(|p| p.pointer("/spec/nodeName").is_some());
                if bound && !was_bound && !self.pods.contains_key(&uid) {
                    let (tx, rx) = watch::channel(false);
                    self.pods.insert(uid.clone(), tx);
                    tokio::spawn(self.kubelet.clone().run_pod(c.object.clone(), rx));
                }
                if meta_str(&c.object, "deletionTimestamp").is_some()
                    && let Some(tx) = self.pods.get(&uid)
                {
                    let grace = c
                        .object
                        .pointer("/metadata/deletionGracePeriodSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let tx = tx.clone();
                    if grace == 0 {
                        let _ = tx.send(true);
                    } else {
                        // The kubelet notices the deletion and stops the containers.
                        let _ = tx.send(true);
                    }
                }
            }
            ChangeType::Deleted => {
                if let Some(tx) = self.pods.remove(&uid) {
                    let _ = tx.send(true);
                }
                self.api.logs.remove_pod(&uid);
                self.kubelet.runtime.forget_pod(&uid);
                let _ = std::fs::remove_dir_all(self.kubelet.volumes_root.join(&uid));
            }
        }
    }

    fn schedule(&self, ns: &str, name: &str) {
        let now = self.api.store.clock().now_rfc3339_seconds();
        let _ = self.api.store.modify(well_known::pods(), ns, name, |pod| {
            if pod.pointer("/spec/nodeName").is_none()
                && pod.pointer("/metadata/deletionTimestamp").is_none()
            {
                pod["spec"]["nodeName"] = json!(NODE_NAME);
                pod["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True",
                    "lastProbeTime": null, "lastTransitionTime": now}]);
            }
            Ok(())
        });
    }

    // ---- garbage collector ----

    fn dependents(
        &self,
        owner: &Change,
    ) -> Vec<(&'static ResourceDef, String, String, Arc<Value>)> {
        let uid = meta_str(&owner.object, "uid").unwrap_or_default();
        let mut out = Vec::new();
        for def in RESOURCES.iter() {
            let ns = if owner.resource.namespaced {
                Some(owner.namespace.as_str())
            } else {
                None
            };
            let (items, _) = self.api.store.list(def, ns);
            for item in items {
                if owner_uids(&item).iter().any(|u| u == uid) {
                    let ns = meta_str(&item, "namespace").unwrap_or_default().to_owned();
                    let name = meta_str(&item, "name").unwrap_or_default().to_owned();
                    out.push((def, ns, name, item));
                }
            }
        }
        out
    }

    fn owner_exists(&self, dependent: &Value, dependent_ns: &str) -> bool {
        dependent
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                let (Some(api_version), Some(kind), Some(name), Some(uid)) = (
                    r["apiVersion"].as_str(),
                    r["kind"].as_str(),
                    r["name"].as_str(),
                    r["uid"].as_str(),
                ) else {
                    return false;
                };
                let Some(def) = crate::resources::by_kind(api_version, kind) else {
                    return false;
                };
                // An owner in another namespace cannot be referenced: it reads as absent.
                self.api
                    .store
                    .get(def, dependent_ns, name)
                    .is_ok_and(|o| meta_str(&o, "uid") == Some(uid))
            })
    }

    fn collect_dependents(&self, owner: &Change) {
        for (def, ns, name, item) in self.dependents(owner) {
            if !self.owner_exists(&item, &ns) {
                let opts = DeleteOptions {
                    propagation: Some(Propagation::Background),
                    uid: meta_str(&item, "uid").map(str::to_owned),
                    ..Default::default()
                };
                let _ = self.api.store.delete(def, &ns, &name, &opts);
            }
        }
    }

    fn process_finalizers(&self, c: &Change) {
        let fins = finalizers(&c.object);
        let uid = meta_str(&c.object, "uid").unwrap_or_default().to_owned();
        if fins.iter().any(|f| f == "orphan") {
            for (def, ns, name, _) in self.dependents(c) {
                let _ = self.api.store.modify(def, &ns, &name, |d| {
                    if let Some(refs) = d
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        refs.retain(|r| r["uid"] != uid.as_str());
                        if refs.is_empty()
                            && let Some(m) = d["metadata"].as_object_mut()
                        {
                            m.remove("ownerReferences");
                        }
                    }
                    Ok(())
                });
            }
            self.remove_finalizer(c, "orphan");
        } else if fins.iter().any(|f| f == "foregroundDeletion") {
            let deps = self.dependents(c);
            let blocking: Vec<_> = deps
                .iter()
                .filter(|(_, _, _, d)| {
                    d.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|r| r["uid"] == uid.as_str() && r["blockOwnerDeletion"] == true)
                })
                .collect();
            for (def, ns, name, d) in &deps {
                if meta_str(d, "deletionTimestamp").is_none() {
                    let opts = DeleteOptions {
                        propagation: Some(Propagation::Foreground),
                        ..Default::default()
                    };
                    let _ = self.api.store.delete(def, ns, name, &opts);
                }
            }
            if blocking.is_empty() {
                self.remove_finalizer(c, "foregroundDeletion");
            }
        }
    }

    fn remove_finalizer(&self, c: &Change, finalizer: &str) {
        let _ = self
            .api
            .store
            .modify(c.resource, &c.namespace, &c.name, |o| {
                if let Some(f) = o
                    .pointer_mut("/metadata/finalizers")
                    .and_then(Value::as_array_mut)
                {
                    f.retain(|x| x != finalizer);
                }
                Ok(())
            });
    }

    // ---- Job controller ----

    fn start_job_deadline(&self, job: &Value) {
        let Some(secs) = job
            .pointer("/spec/activeDeadlineSeconds")
            .and_then(Value::as_u64)
        else {
            return;
        };
        let ns = meta_str(job, "namespace").unwrap_or_default().to_owned();
        let name = meta_str(job, "name").unwrap_or_default().to_owned();
        let tx = self.requeue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let _ = tx.send((ns, name));
        });
    }

    fn job_pods(&self, ns: &str, uid: &str) -> Vec<Arc<Value>> {
        let (pods, _) = self.api.store.list(well_known::pods(), Some(ns));
        pods.into_iter()
            .filter(|p| is_controlled_by(p, uid))
            .collect()
    }

    fn reconcile_job(&self, ns: &str, name: &str) {
        let jobs = well_known::jobs();
        let Ok(job) = self.api.store.get(jobs, ns, name) else {
            return;
        };
        if meta_str(&job, "deletionTimestamp").is_some()
            || has_condition(&job, "Complete")
            || has_condition(&job, "Failed")
        {
            return;
        }
        let uid = meta_str(&job, "uid").unwrap_or_default().to_owned();
        let pods = self.job_pods(ns, &uid);
        let phase = |p: &Value| {
            p.pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending")
                .to_owned()
        };
        let terminating = pods
            .iter()
            .filter(|p| {
                meta_str(p, "deletionTimestamp").is_some()
                    && !matches!(phase(p).as_str(), "Succeeded" | "Failed")
            })
            .count();
        let active = pods
            .iter()
            .filter(|p| {
                meta_str(p, "deletionTimestamp").is_none()
                    && !matches!(phase(p).as_str(), "Succeeded" | "Failed")
            })
            .count();
        let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count();
        let failed = pods.iter().filter(|p| phase(p) == "Failed").count();
        let ready = pods
            .iter()
            .filter(|p| {
                p.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        let backoff_limit = job
            .pointer("/spec/backoffLimit")
            .and_then(Value::as_u64)
            .unwrap_or(6) as usize;
        let completions = job
            .pointer("/spec/completions")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        let now = self.api.store.clock().now_rfc3339_seconds();
        let deadline_passed = job
            .pointer("/spec/activeDeadlineSeconds")
            .and_then(Value::as_u64)
            .is_some_and(|secs| {
                let created = job
                    .pointer("/status/startTime")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok());
                let nowts = now.parse::<jiff::Timestamp>().ok();
                match (created, nowts) {
                    (Some(c), Some(n)) => (n.as_second() - c.as_second()) as u64 >= secs,
                    _ => false,
                }
            });
        let failure_target = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "FailureTarget" && c["status"] == "True")
            .cloned();

        let mut conditions: Vec<Value> = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let cond = |kind: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": "True",
            "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now})
        };
        let mut create_pod = false;
        let mut complete = false;
        if let Some(target) = failure_target {
            if active + terminating == 0 {
                conditions.push(cond(
                    "Failed",
                    target["reason"].as_str().unwrap_or_default(),
                    target["message"].as_str().unwrap_or_default(),
                ));
            }
        } else if succeeded >= completions {
            if !has_condition(&job, "SuccessCriteriaMet") {
                conditions.push(cond(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
            }
            if active + terminating == 0 {
                conditions.push(cond(
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
                complete = true;
            }
        } else if failed > backoff_limit {
            let c = cond(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            conditions.push(c);
            self.event(
                &job,
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            if active + terminating == 0 {
                conditions.push(cond(
                    "Failed",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ));
            }
        } else if deadline_passed {
            conditions.push(cond(
                "FailureTarget",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
            self.event(
                &job,
                "Warning",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            );
            for p in pods
                .iter()
                .filter(|p| !matches!(phase(p).as_str(), "Succeeded" | "Failed"))
            {
                let _ = self.api.store.delete(
                    well_known::pods(),
                    ns,
                    meta_str(p, "name").unwrap_or_default(),
                    &DeleteOptions::default(),
                );
            }
            if active + terminating == 0 {
                conditions.push(cond(
                    "Failed",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ));
            }
        } else if active == 0 && terminating == 0 {
            create_pod = true;
        }
        let mut created = 0;
        if create_pod && self.create_pod(&job) {
            created = 1;
        }
        let _ = self.api.store.modify(jobs, ns, name, |j| {
            let status = &mut j["status"];
            if status.get("startTime").is_none() {
                status["startTime"] = json!(now);
            }
            status["active"] = json!(active + created);
            status["ready"] = json!(ready);
            status["terminating"] = json!(terminating);
            status["succeeded"] = json!(succeeded);
            status["failed"] = json!(failed);
            status["uncountedTerminatedPods"] = json!({});
            for k in ["active", "succeeded", "failed"] {
                if status[k] == 0
                    && let Some(m) = status.as_object_mut()
                {
                    m.remove(k);
                }
            }
            if !conditions.is_empty() {
                status["conditions"] = json!(conditions);
            }
            if complete {
                status["completionTime"] = json!(now);
            }
            Ok(())
        });
    }

    fn create_pod(&self, job: &Value) -> bool {
        let ns = meta_str(job, "namespace").unwrap_or_default();
        let name = meta_str(job, "name").unwrap_or_default();
        let uid = meta_str(job, "uid").unwrap_or_default();
        let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut pod = json!({
            "metadata": template.get("metadata").cloned().unwrap_or(json!({})),
            "spec": template.get("spec").cloned().unwrap_or(json!({})),
        });
        let meta = &mut pod["metadata"];
        meta["generateName"] = json!(format!("{name}-"));
        meta["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": name,
            "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
        if let Some(m) = meta.as_object_mut() {
            m.remove("name");
            m.remove("namespace");
        }
        match self.api.create(well_known::pods(), ns, pod) {
            Ok(p) => {
                let msg = format!("Created pod: {}", meta_str(&p, "name").unwrap_or_default());
                self.event(job, "Normal", "SuccessfulCreate", &msg);
                true
            }
            Err(e) => {
                self.event(
                    job,
                    "Warning",
                    "FailedCreate",
                    &format!("Error creating: {}", e.message),
                );
                false
            }
        }
    }

    fn event(&self, job: &Value, kind: &str, reason: &str, message: &str) {
        let ns = meta_str(job, "namespace").unwrap_or_default();
        let name = meta_str(job, "name").unwrap_or_default();
        let now = self.api.store.clock().now_rfc3339_seconds();
        let suffix = format!("{:016x}", self.api.store.resource_version() + 1);
        let ev = json!({
            "metadata": {"name": format!("{name}.{suffix}"), "namespace": ns},
            "involvedObject": {"kind": "Job", "namespace": ns, "name": name,
                "uid": meta_str(job, "uid"), "apiVersion": "batch/v1",
                "resourceVersion": meta_str(job, "resourceVersion")},
            "reason": reason, "message": message, "type": kind,
            "source": {"component": "job-controller"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "job-controller", "reportingInstance": "",
        });
        let _ = self.api.store.create(well_known::events(), ns, ev);
    }
}
