//! Shared watches: all in-flight runs of one runner share one watch per resource kind and
//! namespace, label-selected on the project's own labels, with events dispatched to the run
//! that waits for them. Started lazily, stopped when idle, resumed and relisted like the
//! per-run watches (see [`crate::watch`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, Weak};

use futures::{Stream, StreamExt};
use kube::api::{Api, WatchParams};
use kube::core::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::watch::{Event, watch};

/// Picks the routing key of an object (the run it belongs to).
pub type KeyFn<K> = fn(&K) -> Option<String>;

struct Subscriber<K> {
    id: u64,
    tx: mpsc::UnboundedSender<kube::Result<Event<K>>>,
}

struct NamespaceWatch<K> {
    subscribers: HashMap<String, Vec<Subscriber<K>>>,
    /// The current objects of the watch, by key and then by name (several objects may
    /// share a key, such as two pods of one Job): a late subscriber starts from them.
    current: HashMap<String, BTreeMap<String, K>>,
    task: tokio::task::JoinHandle<()>,
}

struct Inner<K> {
    namespaces: HashMap<String, NamespaceWatch<K>>,
    next_id: u64,
}

/// One shared watch per namespace of one resource kind.
pub struct WatchHub<K: Clone + 'static> {
    client: kube::Client,
    params: WatchParams,
    key: KeyFn<K>,
    inner: Mutex<Inner<K>>,
}

/// A run's view of a shared watch; unsubscribes when dropped.
pub struct Subscription<K: Clone + Send + 'static> {
    hub: Weak<WatchHub<K>>,
    namespace: String,
    key: String,
    id: u64,
    rx: mpsc::UnboundedReceiver<kube::Result<Event<K>>>,
}

impl<K> WatchHub<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    /// A hub watching with `params` (a label or field selector), routing by `key`.
    pub fn new(client: kube::Client, params: WatchParams, key: KeyFn<K>) -> Arc<Self> {
        Arc::new(Self {
            client,
            params,
            key,
            inner: Mutex::new(Inner {
                namespaces: HashMap::new(),
                next_id: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of namespaces with an open shared watch.
    pub fn open_watches(&self) -> usize {
        self.lock().namespaces.len()
    }

    /// Events for the objects with this key in `namespace`: first the current objects, if
    /// any, then every change.
    pub fn subscribe(self: &Arc<Self>, namespace: &str, key: &str) -> Subscription<K> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        if !inner.namespaces.contains_key(namespace) {
            let task = tokio::spawn(Self::pump(Arc::downgrade(self), namespace.to_owned()));
            inner.namespaces.insert(
                namespace.to_owned(),
                NamespaceWatch {
                    subscribers: HashMap::new(),
                    current: HashMap::new(),
                    task,
                },
            );
        }
        if let Some(ns) = inner.namespaces.get_mut(namespace) {
            for obj in ns.current.get(key).into_iter().flat_map(BTreeMap::values) {
                let _ = tx.send(Ok(Event::Applied(obj.clone())));
            }
            ns.subscribers
                .entry(key.to_owned())
                .or_default()
                .push(Subscriber { id, tx });
        }
        Subscription {
            hub: Arc::downgrade(self),
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            id,
            rx,
        }
    }

    async fn pump(hub: Weak<Self>, namespace: String) {
        let stream = {
            let Some(h) = hub.upgrade() else { return };
            let api: Api<K> = Api::namespaced(h.client.clone(), &namespace);
            watch(api, h.params.clone())
        };
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            let Some(h) = hub.upgrade() else { return };
            h.route(&namespace, ev);
        }
        // A permanent error ended the watch: its subscribers' streams end with it, and the
        // next subscriber starts a new watch.
        if let Some(h) = hub.upgrade() {
            h.lock().namespaces.remove(&namespace);
        }
    }

    fn route(&self, namespace: &str, ev: kube::Result<Event<K>>) {
        let mut inner = self.lock();
        let Some(ns) = inner.namespaces.get_mut(namespace) else {
            return;
        };
        let send = |subs: Option<&Vec<Subscriber<K>>>, ev: &kube::Result<Event<K>>| {
            for s in subs.into_iter().flatten() {
                let copy = match ev {
                    Ok(Event::Applied(o)) => Ok(Event::Applied(o.clone())),
                    Ok(Event::Deleted(o)) => Ok(Event::Deleted(o.clone())),
                    Ok(Event::Restarted) => Ok(Event::Restarted),
                    // Every subscriber gets the error; an API error keeps its Status.
                    Err(kube::Error::Api(status)) => Err(kube::Error::Api(status.clone())),
                    Err(e) => Err(kube::Error::Service(e.to_string().into())),
                };
                let _ = s.tx.send(copy);
            }
        };
        match &ev {
            Ok(Event::Applied(obj)) => {
                if let Some(k) = (self.key)(obj) {
                    ns.current
                        .entry(k.clone())
                        .or_default()
                        .insert(name_of(obj), obj.clone());
                    send(ns.subscribers.get(&k), &ev);
                }
            }
            Ok(Event::Deleted(obj)) => {
                if let Some(k) = (self.key)(obj) {
                    if let Some(objs) = ns.current.get_mut(&k) {
                        objs.remove(&name_of(obj));
                        if objs.is_empty() {
                            ns.current.remove(&k);
                        }
                    }
                    send(ns.subscribers.get(&k), &ev);
                }
            }
            Ok(Event::Restarted) => {
                // A relist follows: forget what may be gone.
                ns.current.clear();
                for subs in ns.subscribers.values() {
                    send(Some(subs), &ev);
                }
            }
            Err(_) => {
                for subs in ns.subscribers.values() {
                    send(Some(subs), &ev);
                }
            }
        }
    }
}

fn name_of<K: Resource>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

impl<K: Clone + Send + 'static> Stream for Subscription<K> {
    type Item = kube::Result<Event<K>>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl<K: Clone + Send + 'static> Drop for Subscription<K> {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribe_erased(&self.namespace, &self.key, self.id);
        }
    }
}

/// Unsubscribing needs no trait bounds beyond what a subscription has.
trait Unsubscribe {
    fn unsubscribe_erased(&self, namespace: &str, key: &str, id: u64);
}

impl<K: Clone + Send + 'static> Unsubscribe for WatchHub<K> {
    fn unsubscribe_erased(&self, namespace: &str, key: &str, id: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ns) = inner.namespaces.get_mut(namespace) else {
            return;
        };
        if let Some(subs) = ns.subscribers.get_mut(key) {
            subs.retain(|s| s.id != id);
            if subs.is_empty() {
                ns.subscribers.remove(key);
            }
        }
        if ns.subscribers.is_empty()
            && let Some(ns) = inner.namespaces.remove(namespace)
        {
            ns.task.abort();
        }
    }
}
