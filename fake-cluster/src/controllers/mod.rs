//! The controllers: Job controller, TTL-after-finished controller, garbage collector,
//! scheduler, and the node glue that starts and stops the kubelet's pod runs. One task
//! drives them all from the store's ordered stream of changes, so they see every change in
//! resourceVersion order and never race each other.

mod active_pods;
mod crd_cleanup;
mod gc;
mod job;
pub(crate) mod namespace_defaults;
mod node_lifecycle;
mod pod_failure_policy;
mod scheduler;
mod ttl;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::api::ApiServer;
use crate::kubelet::Kubelet;
use crate::resources::{ResourceRef, well_known};
use crate::store::{Change, ChangeType, meta_str};

/// The node every pod is bound to when the cluster has only its default node.
pub const NODE_NAME: &str = "node-1";

/// Work for the controller task.
pub(crate) enum Work {
    /// A change in the store.
    Change(Arc<Change>),
    /// Reconcile a Job (a timer fired: deadline, back-off).
    Job(String, String),
    /// A Job's time to live may have passed.
    Ttl(String, String, String),
    /// A pod's toleration of its node's unreachable taint ran out (namespace, name, uid).
    TaintEvict(String, String, String),
}

pub(crate) use node_lifecycle::{NODE_MONITOR_GRACE_PERIOD, mark_unreachable};

/// A dependent as the owner index keeps it.
type DepKey = (String, String, std::sync::Arc<str>);

/// Who owns what, kept from the change stream: owner uid to its dependents.
#[derive(Default)]
pub(crate) struct OwnerIndex {
    by_owner: HashMap<String, BTreeMap<DepKey, ResourceRef>>,
}

impl OwnerIndex {
    fn apply(&mut self, c: &Change) {
        let previous = c.previous.as_deref();
        // Most changes either carry no ownerReferences or keep the ones they had: removing
        // the key from each owner and adding it back would leave the index as it is.
        let unchanged = match previous {
            Some(p) => c.kind == ChangeType::Modified && owner_uids(p).eq(owner_uids(&c.object)),
            None => owner_refs(&c.object).next().is_none(),
        };
        if unchanged {
            return;
        }
        let key: DepKey = (
            c.namespace.clone(),
            c.name.clone(),
            c.resource.storage_key().clone(),
        );
        if let Some(prev) = previous {
            for uid in owner_uids(prev) {
                self.remove(uid, &key);
            }
        }
        if c.kind != ChangeType::Deleted {
            for uid in owner_uids(&c.object) {
                self.by_owner
                    .entry(uid.to_owned())
                    .or_default()
                    .insert(key.clone(), c.resource.clone());
            }
        } else {
            for uid in owner_uids(&c.object) {
                self.remove(uid, &key);
            }
        }
    }

    fn remove(&mut self, uid: &str, key: &DepKey) {
        if let Some(deps) = self.by_owner.get_mut(uid) {
            deps.remove(key);
            if deps.is_empty() {
                self.by_owner.remove(uid);
            }
        }
    }

    /// The dependents of `uid`: resource, namespace and name.
    fn dependents_of(&self, uid: &str) -> impl Iterator<Item = (&ResourceRef, &str, &str)> {
        self.by_owner
            .get(uid)
            .into_iter()
            .flatten()
            .map(|((ns, name, _), def)| (def, ns.as_str(), name.as_str()))
    }

    /// Whether anything names `uid` as its owner.
    fn has_dependents(&self, uid: &str) -> bool {
        self.by_owner.contains_key(uid)
    }
}

/// Per-Job memory of the controller that is not in the Job's status.
#[derive(Default)]
pub(crate) struct JobMemo {
    /// No pod is created before this instant (pod failure back-off or create back-off).
    not_before: Option<tokio::time::Instant>,
    /// Consecutive failed pod creations.
    create_failures: u32,
    /// Whether a deadline timer is armed.
    deadline_armed: bool,
    /// When this controller started the Job (set with `status.startTime`).
    started: Option<tokio::time::Instant>,
}

/// Runs every controller until the store is dropped.
pub(crate) struct Controllers {
    api: Arc<ApiServer>,
    kubelet: Arc<Kubelet>,
    requeue: mpsc::UnboundedSender<Work>,
    /// Stop signals of running pods, by uid.
    pods: HashMap<String, watch::Sender<bool>>,
    index: OwnerIndex,
    jobs: HashMap<String, JobMemo>,
    /// Pods the scheduler could not place, retried when nodes change.
    unschedulable: BTreeSet<(String, String)>,
    /// Jobs (by uid) with a TTL timer armed.
    ttl_armed: HashSet<String>,
    /// Jobs to reconcile once the changes at hand are handled: names by namespace, taken
    /// in (namespace, name) order. Nested so that queueing a Job already queued (most
    /// changes queue their Job again) allocates nothing.
    job_queue: BTreeMap<String, BTreeSet<String>>,
    /// The CA PEM every namespace's `kube-root-ca.crt` holds.
    root_ca: String,
    /// Pending timers of each Job (namespace, name): deadline, back-off and TTL requeues,
    /// cancelled when the Job is deleted. A real controller's delaying queue keeps such an
    /// item until it fires and then finds the Job gone; nothing observable differs, but
    /// without the cancellation every Job deleted before its deadline would hold a sleeping
    /// task (about 400 bytes) until then.
    timers: HashMap<(String, String), Vec<tokio::task::AbortHandle>>,
}

/// The value under the object keys `path`, looked up key by key. The controllers read
/// a few fixed paths of every object on every change; this walks them without splitting a
/// JSON pointer string (`selector::at`), with the same result for object keys.
pub(crate) fn field<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, key| v.as_object()?.get(key))
}

/// `metadata.ownerReferences[*].uid` of `obj`.
pub(crate) fn owner_uids(obj: &Value) -> impl Iterator<Item = &str> {
    owner_refs(obj).filter_map(|r| r.get("uid").and_then(Value::as_str))
}

pub(crate) fn owner_refs(obj: &Value) -> impl Iterator<Item = &Value> {
    field(obj, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Whether `metadata.finalizers` of `obj` holds `finalizer`.
pub(crate) fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    field(obj, &["metadata", "finalizers"])
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(finalizer)))
}

pub(crate) fn has_condition(obj: &Value, kind: &str) -> bool {
    field(obj, &["status", "conditions"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("type").and_then(Value::as_str) == Some(kind) && c["status"] == "True")
}

impl Controllers {
    pub(crate) fn spawn(
        api: Arc<ApiServer>,
        kubelet: Arc<Kubelet>,
        root_ca: String,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) -> mpsc::UnboundedSender<Work> {
        let mut changes = api.store.subscribe_controller();
        let (requeue, mut requeued) = mpsc::unbounded_channel();
        let handle = requeue.clone();
        let mut this = Self {
            api,
            kubelet,
            requeue,
            pods: HashMap::new(),
            index: OwnerIndex::default(),
            jobs: HashMap::new(),
            unschedulable: BTreeSet::new(),
            ttl_armed: HashSet::new(),
            job_queue: BTreeMap::new(),
            root_ca,
            timers: HashMap::new(),
        };
        tokio::spawn(async move {
            loop {
                let work = tokio::select! {
                    biased;
                    // The cluster was dropped: stop, and release the store.
                    _ = &mut stop => return,
                    c = changes.recv() => match c {
                        Some(c) => Work::Change(c),
                        None => return,
                    },
                    Some(w) = requeued.recv() => w,
                };
                match work {
                    Work::Change(c) => this.on_change(&c),
                    Work::Job(ns, name) => this.enqueue_job(&ns, &name),
                    Work::Ttl(ns, name, uid) => this.ttl_expired(&ns, &name, &uid),
                    Work::TaintEvict(ns, name, uid) => this.taint_evict(&ns, &name, &uid),
                }
                // Every change already queued first, then each Job they touched once, as
                // the real controller's work queue deduplicates its keys.
                while let Ok(c) = changes.try_recv() {
                    this.on_change(&c);
                }
                this.reconcile_queued_jobs();
            }
        });
        handle
    }

    /// Queues a Job for reconciliation once the changes at hand are handled; a Job queued
    /// twice is reconciled once.
    fn enqueue_job(&mut self, ns: &str, name: &str) {
        match self.job_queue.get_mut(ns) {
            Some(names) => {
                if !names.contains(name) {
                    names.insert(name.to_owned());
                }
            }
            None => {
                self.job_queue
                    .insert(ns.to_owned(), BTreeSet::from([name.to_owned()]));
            }
        }
    }

    fn reconcile_queued_jobs(&mut self) {
        while let Some(mut first) = self.job_queue.first_entry() {
            let Some(name) = first.get_mut().pop_first() else {
                first.remove();
                continue;
            };
            let ns = if first.get().is_empty() {
                first.remove_entry().0
            } else {
                first.key().clone()
            };
            self.reconcile_job(&ns, &name);
        }
    }

    /// Sends `work` back to this task after `after`.
    fn requeue_after(&mut self, after: Duration, work: Work) {
        let job = match &work {
            Work::Job(ns, name) | Work::Ttl(ns, name, _) => Some((ns.clone(), name.clone())),
            Work::Change(_) | Work::TaintEvict(..) => None,
        };
        let tx = self.requeue.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(work);
        });
        if let Some(key) = job {
            let pending = self.timers.entry(key).or_default();
            pending.retain(|t| !t.is_finished());
            pending.push(task.abort_handle());
        }
    }

    fn on_change(&mut self, c: &Change) {
        self.index.apply(c);
        self.garbage_collect(c);
        self.namespace_defaults(c);
        self.crd_cleanup(c);
        let pods = well_known::pods();
        if c.resource == well_known::jobs() {
            if c.kind != ChangeType::Deleted {
                self.enqueue_job(&c.namespace, &c.name);
                self.arm_ttl(&c.namespace, &c.name);
            } else {
                let key = (c.namespace.clone(), c.name.clone());
                for timer in self.timers.remove(&key).into_iter().flatten() {
                    timer.abort();
                }
                if let Some(uid) = meta_str(&c.object, "uid") {
                    self.jobs.remove(uid);
                    self.ttl_armed.remove(uid);
                }
            }
        } else if c.resource == pods {
            self.on_pod(c);
            self.job_pod_changed(c);
        } else if c.resource == well_known::nodes() {
            self.node_changed(c);
            if c.kind != ChangeType::Deleted {
                self.retry_unschedulable();
            }
        }
    }

    // ---- node glue: start and stop the kubelet's pod runs ----

    fn on_pod(&mut self, c: &Change) {
        // Read where it is used: most changes of a pod (its status writes) need neither
        // its uid nor whether it was bound before (only reads, in the same order).
        let uid = || meta_str(&c.object, "uid").unwrap_or_default();
        match c.kind {
            ChangeType::Added => {
                if field(&c.object, &["spec", "nodeName"]).is_none() {
                    self.schedule(&c.namespace, &c.name);
                } else {
                    self.start_pod(uid(), &c.object);
                }
            }
            ChangeType::Modified => {
                let bound = field(&c.object, &["spec", "nodeName"]).is_some();
                let was_bound = || {
                    c.previous
                        .as_ref()
                        .is_some_and(|p| field(p, &["spec", "nodeName"]).is_some())
                };
                if bound && !was_bound() {
                    self.unschedulable
                        .remove(&(c.namespace.clone(), c.name.clone()));
                    self.start_pod(uid(), &c.object);
                }
                if meta_str(&c.object, "deletionTimestamp").is_some()
                    && let Some(tx) = self.pods.get(uid())
                {
                    // The kubelet notices the deletion and stops the containers: SIGTERM,
                    // then SIGKILL after the grace period (the runtime's part).
                    let _ = tx.send(true);
                }
            }
            ChangeType::Deleted => {
                let uid = uid();
                self.unschedulable
                    .remove(&(c.namespace.clone(), c.name.clone()));
                if let Some(tx) = self.pods.remove(uid) {
                    let _ = tx.send(true);
                }
                self.api.logs.remove_pod(uid);
                self.kubelet.runtime.forget_pod(uid);
                let _ = std::fs::remove_dir_all(self.kubelet.volumes_root.join(uid));
            }
        }
    }

    fn start_pod(&mut self, uid: &str, pod: &Arc<Value>) {
        if self.pods.contains_key(uid) || meta_str(pod, "deletionTimestamp").is_some() {
            return;
        }
        let (tx, rx) = watch::channel(false);
        self.pods.insert(uid.to_owned(), tx);
        // Before the pod's DELETED can be handled (it comes later on this same stream), so
        // that output written after it is dropped rather than kept for ever.
        self.api.logs.open_pod(uid);
        tokio::spawn(self.kubelet.clone().run_pod(pod.clone(), rx));
    }

    /// Records an Event about `obj` from `component`.
    fn event(&self, obj: &Value, component: &str, kind: &str, reason: &str, message: &str) {
        let ns = meta_str(obj, "namespace").unwrap_or_default();
        let name = meta_str(obj, "name").unwrap_or_default();
        let now = self.api.store.clock().now_rfc3339_seconds();
        let suffix = format!("{:016x}", self.api.store.resource_version() + 1);
        let ev = json!({
            "metadata": {"name": format!("{name}.{suffix}"), "namespace": ns},
            "involvedObject": {"kind": obj.get("kind"), "namespace": ns, "name": name,
                "uid": meta_str(obj, "uid"), "apiVersion": obj.get("apiVersion"),
                "resourceVersion": meta_str(obj, "resourceVersion")},
            "reason": reason, "message": message, "type": kind,
            "source": {"component": component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": component, "reportingInstance": "",
        });
        if let Err(e) = self.api.store.create(well_known::events(), ns, ev) {
            tracing::debug!(%e, reason, "event not recorded");
        }
    }
}
