//! The store: JSON objects by resource, namespace and name, one global resourceVersion,
//! uids and generated names from a seed, and a bounded history of changes for watches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::json::{Map, Value, json};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::resources::{Registry, ResourceDef, ResourceRef, well_known};
use crate::status::{ApiError, FieldError};
use crate::{crd, defaults, validation};

mod delete;
mod dispatch;
mod history;
mod namespace;
mod objects;
mod write;

pub use delete::{DeleteOptions, Deleted};
pub use dispatch::{Interest, Requirement};
pub use history::{Wants, WatchReceiver, WatchRecvError, WatchStart};

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

const GENERATE_NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn key(def: &ResourceDef) -> &str {
    def.storage_key()
}

fn meta(obj: &Value) -> Option<&Map> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata.<field>` as a string, if set.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

/// Sets `metadata.resourceVersion` (making `metadata` an object first if it is not one).
pub(crate) fn set_resource_version(obj: &mut Value, rv: String) {
    meta_mut(obj).insert("resourceVersion".into(), Value::String(rv));
}

fn meta_mut(obj: &mut Value) -> &mut Map {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// `a == b`, comparing `status` and then `metadata` first: what a write changes is
/// nearly always there, so a real change is found before the (equal) spec is walked.
fn same_object(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && ["status", "metadata"].iter().all(|k| a.get(k) == b.get(k))
                && a.iter().all(|(k, v)| {
                    matches!(k.as_str(), "status" | "metadata") || b.get(k) == Some(v)
                })
        }
        _ => a == b,
    }
}

/// `obj` with its `status` replaced by `status`, without copying the old status.
fn with_status(obj: &Value, status: Value) -> Value {
    let Value::Object(m) = obj else {
        let mut next = obj.clone();
        next["status"] = status;
        return next;
    };
    let mut status = Some(status);
    let mut next: Map = m
        .iter()
        .map(|(k, v)| match k.as_str() {
            "status" => (k.clone(), status.take().unwrap_or_default()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    if let Some(status) = status {
        next.insert("status".into(), status);
    }
    Value::Object(next)
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
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

    fn uid(inner: &mut Inner) -> String {
        let b: [u8; 16] = inner.rng.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
            (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
            u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
        )
    }

    fn namespace_exists(inner: &Inner, ns: &str) -> bool {
        inner
            .objects
            .get(key(well_known::namespaces()))
            .is_some_and(|m| m.contains("", ns))
    }

    /// Creates an object. Fills name (from generateName), namespace, uid, resourceVersion,
    /// creationTimestamp and generation.
    pub fn create(&self, def: &ResourceRef, ns: &str, obj: Value) -> Result<Arc<Value>> {
        self.create_inner(def, ns, obj, false)
    }

    /// What [`Store::create`] would store, after every check, without storing it
    /// (`dryRun=All`): no resourceVersion, nothing published.
    pub fn create_dry_run(&self, def: &ResourceRef, ns: &str, obj: Value) -> Result<Arc<Value>> {
        self.create_inner(def, ns, obj, true)
    }

    /// A create in three steps: the checks and the draws from the seeded generator (name,
    /// uid) under the store's lock; the new object filled, defaulted and validated outside
    /// it; the checks again (the namespace may have gone, the name been taken meanwhile),
    /// the creationTimestamp, the resourceVersion and the publication under the lock. For a
    /// sequence of creates, the same errors in the same order and the same objects as when
    /// all of it ran under the lock. A definition is prepared and validated under the lock
    /// (it is checked against the stored ones).
    fn create_inner(
        &self,
        def: &ResourceRef,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Value>> {
        let ns = if def.namespaced { ns } else { "" };
        let (name, uid) = {
            let mut inner = self.lock();
            let name = self.admit_create(&mut inner, def, ns, &obj)?;
            (name, Self::uid(&mut inner))
        };
        obj["apiVersion"] = json!(def.storage_api_version());
        obj["kind"] = json!(def.kind);
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if def.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.remove("resourceVersion");
        m.remove("creationTimestamp");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        if def.has_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        defaults::apply(def, &mut obj);
        if def == well_known::namespaces() {
            namespace::prepare_for_create(&mut obj);
        }
        crd::prepare_create(def, &mut obj);
        let is_crd = crd::is_crd(def);
        if !is_crd {
            Self::check_new(def, &name, &obj)?;
        }
        let mut inner = self.lock();
        Self::admit_name(&inner, def, ns, &name)?;
        let now = self.clock.now_rfc3339_seconds();
        meta_mut(&mut obj).insert("creationTimestamp".into(), json!(now));
        if is_crd {
            crd::prepare(def, &mut obj, &now, &Self::definitions(&inner, def));
            Self::check_new(def, &name, &obj)?;
        }
        if dry_run {
            return Ok(Arc::new(obj));
        }
        let rv = Self::next_rv(&mut inner);
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let obj = Arc::new(obj);
        inner
            .objects
            .entry(def.storage_key().clone())
            .or_default()
            .insert(ns, &name, obj.clone());
        self.publish(
            &mut inner,
            Change {
                kind: ChangeType::Added,
                resource: def.clone(),
                namespace: ns.to_owned(),
                name,
                object: obj.clone(),
                previous: None,
                rv,
            },
        );
        Ok(obj)
    }

    /// The checks of a create before the object is made, in the order the server makes
    /// them, and its name (drawn for a generateName).
    fn admit_create(
        &self,
        inner: &mut Inner,
        def: &ResourceRef,
        ns: &str,
        obj: &Value,
    ) -> Result<String> {
        if def.namespaced && !Self::namespace_exists(inner, ns) {
            return Err(ApiError::namespace_not_found(ns));
        }
        let name = match meta_str(obj, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match meta_str(obj, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let mut name = String::with_capacity(prefix.len() + 5);
                    name.push_str(prefix);
                    for _ in 0..5 {
                        let i = inner.rng.random_range(0..GENERATE_NAME_ALPHABET.len());
                        name.push(GENERATE_NAME_ALPHABET[i] as char);
                    }
                    name
                }
                None => {
                    return Err(ApiError::invalid(
                        def,
                        "",
                        vec![FieldError::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ));
                }
            },
        };
        validation::validate_name(def, &name)?;
        Self::admit_name(inner, def, ns, &name)?;
        Ok(name)
    }

    /// The namespace exists, is not terminating, and holds no object `name` of `def`.
    fn admit_name(inner: &Inner, def: &ResourceRef, ns: &str, name: &str) -> Result<()> {
        if def.namespaced {
            if !Self::namespace_exists(inner, ns) {
                return Err(ApiError::namespace_not_found(ns));
            }
            namespace::check_not_terminating(inner, def, ns, name)?;
        }
        if inner
            .objects
            .get(key(def))
            .is_some_and(|m| m.contains(ns, name))
        {
            return Err(ApiError::already_exists(def, name));
        }
        Ok(())
    }

    /// 422 for a new object that does not validate.
    fn check_new(def: &ResourceRef, name: &str, obj: &Value) -> Result<()> {
        let causes = defaults::validate(def, obj);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(def, name, causes))
        }
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

    /// Replaces an object (the main resource, or its `status` subresource).
    ///
    /// A resourceVersion in the new object must match the stored one (409 Conflict otherwise).
    pub fn update(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        new: Value,
        subresource: Option<&str>,
    ) -> Result<Arc<Value>> {
        self.update_with(def, ns, name, new, subresource, false)
    }

    /// [`Store::update`], or with `dry_run` every check and the object it would store,
    /// without storing it.
    pub fn update_with(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        new: Value,
        subresource: Option<&str>,
        dry_run: bool,
    ) -> Result<Arc<Value>> {
        if meta_str(&new, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&new, "name").unwrap_or_default()
            )));
        }
        let precondition = meta_str(&new, "resourceVersion").map(str::to_owned);
        // A replacement builds the new object from the request, not from a copy of the
        // stored one (which `modify` would make and this would throw away).
        let spec_kept = subresource == Some("status");
        self.write_scoped(def, ns, name, dry_run, spec_kept, |current| {
            if let Some(rv) = &precondition
                && meta_str(current, "resourceVersion") != Some(rv.as_str())
            {
                return Err(ApiError::stale(def, name));
            }
            let mut next = new;
            match subresource {
                Some("status") => {
                    let status = next.get_mut("status").map_or(Value::Null, Value::take);
                    // The field manager's bookkeeping of this write (see `managed_fields`).
                    let managed = crate::selector::at(&next, "/metadata/managedFields").cloned();
                    next = with_status(current, status);
                    match managed {
                        Some(Value::Array(a)) if a.is_empty() => {
                            meta_mut(&mut next).remove("managedFields");
                        }
                        Some(mf) => {
                            meta_mut(&mut next).insert("managedFields".into(), mf);
                        }
                        None => {}
                    }
                    if def.custom.is_some() {
                        if next["status"].is_null()
                            && let Some(m) = next.as_object_mut()
                        {
                            m.remove("status");
                        }
                        crd::normalize(def, &mut next);
                        let causes = defaults::validate(def, &next);
                        if !causes.is_empty() {
                            return Err(ApiError::invalid(def, name, causes));
                        }
                    }
                }
                _ => {
                    crd::normalize(def, &mut next);
                    let mut causes = defaults::validate(def, &next);
                    if crd::is_crd(def) {
                        causes.extend(crd::validate_definition_update(current, &next));
                    }
                    if !causes.is_empty() {
                        return Err(ApiError::invalid(def, name, causes));
                    }
                    if def == well_known::namespaces() {
                        namespace::keep_spec_finalizers(current, &mut next);
                    }
                    match current.get("status") {
                        Some(status) if def.has_subresource("status") => {
                            next["status"] = status.clone();
                        }
                        // A custom resource's main endpoint never writes status.
                        None if def.custom.is_some() && def.has_subresource("status") => {
                            if let Some(m) = next.as_object_mut() {
                                m.remove("status");
                            }
                        }
                        _ => {}
                    }
                    if meta_str(current, "deletionTimestamp").is_some() {
                        let old = finalizers(current);
                        let added: Vec<String> = finalizers(&next)
                            .into_iter()
                            .filter(|f| !old.contains(f))
                            .collect();
                        if !added.is_empty() {
                            let quoted: Vec<String> =
                                added.iter().map(|f| format!("{f:?}")).collect();
                            return Err(ApiError::invalid(
                                def,
                                name,
                                vec![FieldError::forbidden(
                                    "metadata.finalizers",
                                    format!(
                                        "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                                        quoted.join(", ")
                                    ),
                                )],
                            ));
                        }
                    }
                    let keep = [
                        "uid",
                        "creationTimestamp",
                        "deletionTimestamp",
                        "deletionGracePeriodSeconds",
                        "generation",
                    ];
                    let cur_meta = meta(current);
                    let m = meta_mut(&mut next);
                    for k in keep {
                        match cur_meta.and_then(|c| c.get(k)) {
                            Some(v) => m.insert(k.into(), v.clone()),
                            None => m.remove(k),
                        };
                    }
                }
            }
            Ok(next)
        })
    }

    /// Read-modify-write of one object: the closure changes the object and the store stamps
    /// the new resourceVersion (and generation on a spec change). An object that is
    /// terminating and has no finalizers left is removed. Writes of the same object are
    /// serialised; the closure runs outside the store's lock (it must not write through the
    /// store), except for a Namespace or a CustomResourceDefinition, whose closure runs under
    /// the store's lock and so must not call the store at all, not even to read.
    pub fn modify(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Arc<Value>> {
        self.modify_inner(def, ns, name, false, f)
    }

    /// [`Store::modify`]; with `dry_run`, the new state is computed and returned (with the
    /// current resourceVersion) but neither stored nor published.
    pub(crate) fn modify_inner(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        dry_run: bool,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Arc<Value>> {
        // The copy is needed: the stored object stays as it is for the change's
        // `previous`, the history and whoever holds it, and `f` may fail half-way.
        self.write_inner(def, ns, name, dry_run, |current| {
            let mut next = current.clone();
            f(&mut next)?;
            Ok(next)
        })
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

impl Store {
    /// Five characters from the generateName alphabet, drawn from the store's seeded
    /// generator (for names the server makes up, such as `kube-api-access-xxxxx`).
    pub fn random_suffix(&self) -> String {
        let mut inner = self.lock();
        (0..5)
            .map(|_| {
                let i = inner.rng.random_range(0..GENERATE_NAME_ALPHABET.len());
                GENERATE_NAME_ALPHABET[i] as char
            })
            .collect()
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
