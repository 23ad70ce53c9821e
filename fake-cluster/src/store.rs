//! The store: JSON objects by resource, namespace and name, one global resourceVersion,
//! uids and generated names from a seed, and a bounded history of changes for watches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::json::Value;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::crd;
use crate::resources::{Registry, ResourceDef, ResourceRef, well_known};
use crate::status::ApiError;

mod create;
mod delete;
mod dispatch;
mod history;
mod meta;
mod namespace;
mod objects;
mod update;
mod write;

pub use delete::{DeleteOptions, Deleted};
pub use dispatch::{Interest, Requirement};
pub use history::{Wants, WatchReceiver, WatchRecvError, WatchStart};
pub use meta::meta_str;
pub(crate) use meta::set_resource_version;
use meta::{finalizers, meta, meta_mut};

/// Result of store operations.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated (including deletionTimestamp being set).
    Modified,
    /// Removed from the store.
    Deleted,
}

impl ChangeType {
    /// The watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change to the store, as watches and controllers see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// Added, modified or deleted.
    pub kind: ChangeType,
    /// The resource of the object.
    pub resource: ResourceRef,
    /// The namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The object after the change. For a deletion, the object as it was last stored, with
    /// the resourceVersion of that write (the deletion's is [`Change::rv`], which watches
    /// write into the DELETED event): after a pod's marking with a zero grace period, the
    /// marked pod; after an update that removed the last finalizer, the object before that
    /// update (which is not written), as the real registry deletes it.
    pub object: Arc<Value>,
    /// The object before the change, if it existed.
    pub previous: Option<Arc<Value>>,
    /// The resourceVersion of the change.
    pub rv: u64,
}

type ResourceKey = Arc<str>;

struct Inner {
    rv: u64,
    objects: BTreeMap<ResourceKey, objects::Objects>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Changes with a resourceVersion at or below this are no longer in the history.
    compacted_rv: u64,
    rng: ChaCha8Rng,
    /// Open watches by resource, each with the changes it wants.
    watchers: BTreeMap<ResourceKey, dispatch::WatchSet>,
}

/// The in-memory object store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    /// Watches open now, and the most open at once.
    open_watches: (
        std::sync::atomic::AtomicUsize,
        std::sync::atomic::AtomicUsize,
    ),
    /// Bumped by [`Store::close_watches`]: every open watch ends when it changes.
    watch_epoch: watch::Sender<u64>,
    controllers: Mutex<Vec<mpsc::UnboundedSender<Arc<Change>>>>,
    /// Changes dropped from the history under the lock, freed at the next
    /// [`lock`](Self::lock) before it is taken (freeing old objects is not quick).
    evicted: Mutex<Vec<Arc<Change>>>,
    /// Taken by each write of an existing object, for its whole read-modify-write.
    writers: write::Writers,
    clock: Clock,
    resources: Registry,
}

/// How many of its changes a watcher may fall behind before it is closed with a 410 Expired
/// error.
pub const WATCH_BUFFER: usize = 8192;

fn key(def: &ResourceDef) -> &str {
    def.storage_key()
}

impl Store {
    /// A new store whose uids and generated names come from `seed`, keeping at most
    /// `history_limit` changes for watch resumption.
    pub fn new(seed: u64, history_limit: usize, clock: Clock) -> Self {
        Self {
            open_watches: Default::default(),
            watch_epoch: watch::Sender::new(0),
            inner: Mutex::new(Inner {
                rv: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_limit,
                compacted_rv: 0,
                rng: ChaCha8Rng::seed_from_u64(seed),
                watchers: BTreeMap::new(),
            }),
            controllers: Mutex::new(Vec::new()),
            evicted: Mutex::new(Vec::new()),
            writers: write::Writers::default(),
            clock,
            resources: Registry::default(),
        }
    }

    /// Number of watch streams open now, over every resource.
    pub fn open_watches(&self) -> usize {
        self.open_watches
            .0
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most watch streams open at once since the store started or
    /// [`reset_peak_open_watches`](Self::reset_peak_open_watches).
    pub fn peak_open_watches(&self) -> usize {
        self.open_watches
            .1
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Starts a new peak measurement from the watches open now.
    pub fn reset_peak_open_watches(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.open_watches
            .1
            .store(self.open_watches.0.load(SeqCst), SeqCst);
    }

    /// Counts one open watch until the returned guard is dropped.
    pub(crate) fn watch_opened(self: &Arc<Self>) -> OpenWatch {
        use std::sync::atomic::Ordering::SeqCst;
        let open = self.open_watches.0.fetch_add(1, SeqCst) + 1;
        self.open_watches.1.fetch_max(open, SeqCst);
        OpenWatch(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        let evicted = std::mem::take(&mut *self.evicted.lock().unwrap_or_else(|e| e.into_inner()));
        drop(evicted);
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The resources served: built-in and custom.
    pub fn resources(&self) -> &Registry {
        &self.resources
    }

    /// The clock the store stamps objects with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The current resourceVersion of the whole store.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// A receiver of every change, in order, for an in-process controller. Never lags.
    pub fn subscribe_controller(&self) -> mpsc::UnboundedReceiver<Arc<Change>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.controllers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Number of objects held, over every resource.
    pub fn object_count(&self) -> usize {
        self.lock()
            .objects
            .values()
            .map(objects::Objects::len)
            .sum()
    }

    fn publish(&self, inner: &mut Inner, change: Change) {
        // A definition's resource is served (or not) from the moment the write is done,
        // as the store's lock orders it, before anyone can see the change.
        if crd::is_crd(&change.resource) {
            let key = |d: &Value| {
                format!(
                    "{}/{}",
                    d.pointer("/spec/group")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    d.pointer("/spec/names/plural")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )
            };
            match change.kind {
                ChangeType::Deleted => self.resources.remove_custom(&key(&change.object)),
                _ => self
                    .resources
                    .set_custom(&key(&change.object), crd::served_versions(&change.object)),
            }
        }
        let change = Arc::new(change);
        inner.history.push_back(change.clone());
        if inner.history.len() > inner.history_limit {
            let mut evicted = self.evicted.lock().unwrap_or_else(|e| e.into_inner());
            while inner.history.len() > inner.history_limit {
                if let Some(old) = inner.history.pop_front() {
                    inner.compacted_rv = old.rv;
                    evicted.push(old);
                }
            }
        }
        // Sent under the lock, so every subscriber sees changes in resourceVersion order;
        // each watch is offered only the changes of its resource that it wants, as the real
        // server's watch cache filters before it wakes a watcher.
        if let Some(watchers) = inner.watchers.get_mut(change.resource.storage_key()) {
            watchers.dispatch(&change);
        }
        let mut controllers = self.controllers.lock().unwrap_or_else(|e| e.into_inner());
        controllers.retain(|tx| tx.send(change.clone()).is_ok());
    }

    fn next_rv(inner: &mut Inner) -> u64 {
        inner.rv += 1;
        inner.rv
    }

    fn namespace_exists(inner: &Inner, ns: &str) -> bool {
        inner
            .objects
            .get(key(well_known::namespaces()))
            .is_some_and(|m| m.contains("", ns))
    }

    /// Gets one object.
    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Arc<Value>> {
        self.lookup(def, ns, name)
            .ok_or_else(|| ApiError::not_found(def, name))
    }

    /// The object, if it is stored: [`Store::get`] for callers that only need to know
    /// whether it is there (no 404 error, with its formatted message, is made for them).
    pub fn lookup(&self, def: &ResourceDef, ns: &str, name: &str) -> Option<Arc<Value>> {
        let ns = if def.namespaced { ns } else { "" };
        self.lock()
            .objects
            .get(key(def))
            .and_then(|m| m.get(ns, name))
            .cloned()
    }

    /// Lists objects of a resource, in one namespace or all (`None`), ordered by namespace
    /// and name, with the store's current resourceVersion.
    pub fn list(&self, def: &ResourceDef, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = match inner.objects.get(key(def)) {
            None => Vec::new(),
            Some(m) => match ns.filter(|_| def.namespaced) {
                Some(ns) => m.in_namespace(ns).cloned().collect(),
                None => m.values().cloned().collect(),
            },
        };
        (items, inner.rv)
    }

    /// The stored CustomResourceDefinitions, when `def` is theirs (for name conflicts).
    fn definitions(inner: &Inner, def: &ResourceDef) -> Vec<Arc<Value>> {
        if !crd::is_crd(def) {
            return Vec::new();
        }
        inner
            .objects
            .get(key(def))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A pod that is bound to a node and being deleted gracefully stays until the kubelet
    /// has stopped its containers and deletes it with a zero grace period.
    fn awaits_kubelet(def: &ResourceRef, obj: &Value) -> bool {
        def == well_known::pods()
            && crate::selector::at(obj, "/spec/nodeName")
                .and_then(Value::as_str)
                .is_some()
            && crate::selector::at(obj, "/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .is_some_and(|g| g > 0)
    }
}

/// One open watch, counted until dropped.
pub(crate) struct OpenWatch(Arc<Store>);

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0
            .open_watches
            .0
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
