//! The change history of the store: what a watch starts from (the current objects, or the
//! changes after a resourceVersion), compaction (410 Expired for older resourceVersions),
//! and closing every open watch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::json::Value;

use tokio::sync::{mpsc, watch};

use super::{Change, Interest, Requirement, Result, Store, WATCH_BUFFER, key};
use crate::resources::ResourceRef;
use crate::status::ApiError;

impl Store {
    /// Drops the whole change history: a watch from any earlier resourceVersion gets 410.
    pub fn compact(&self) {
        let mut inner = self.lock();
        let dropped = std::mem::take(&mut inner.history);
        inner.compacted_rv = inner.rv;
        // Freed after the lock is released.
        drop(inner);
        drop(dropped);
    }

    /// Ends every open watch stream, as when the API server restarts or a connection drops;
    /// clients watch again from their last resourceVersion.
    pub fn close_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }

    /// The resourceVersion at or below which the change history has been dropped: a watch
    /// from an older resourceVersion gets 410 Expired.
    pub fn compacted_resource_version(&self) -> u64 {
        self.lock().compacted_rv
    }

    /// Registers a watcher on the changes of `def` from now on for which `wants` is true,
    /// and returns, atomically with the registration, either the current objects (for a
    /// watch with no resourceVersion) or the changes after `from` in the history (410 if
    /// they are no longer kept).
    ///
    /// `wants` runs under the store's lock for every change of `def`, so it must be cheap;
    /// a watcher is woken only for the changes it wants. The third value changes when
    /// [`Store::close_watches`] is called.
    pub fn watch(
        &self,
        def: &ResourceRef,
        from: Option<u64>,
        wants: impl Fn(&Change) -> bool + Send + Sync + 'static,
    ) -> Result<(WatchStart, WatchReceiver, watch::Receiver<u64>)> {
        self.watch_with(def, from, Interest::default(), Box::new(wants), Vec::new())
    }

    /// [`Store::watch`] for a watcher that wants only changes its `interest` admits (the
    /// store offers it no other), and the same receiver is also offered the changes of
    /// other resources that `also` wants (for example the deletion of a custom resource's
    /// definition), in the same resourceVersion order.
    pub fn watch_with(
        &self,
        def: &ResourceRef,
        from: Option<u64>,
        interest: Interest,
        wants: Wants,
        also: Vec<(ResourceRef, Wants)>,
    ) -> Result<(WatchStart, WatchReceiver, watch::Receiver<u64>)> {
        let mut inner = self.lock();
        let closed = self.watch_epoch.subscribe();
        // Taken under the lock: the objects of the watcher's namespace, or the changes of
        // `def` after `from` (the history is in resourceVersion order).
        let start = match from {
            None => {
                let rv = inner.rv;
                let ns = interest.namespace.as_deref();
                // A watch needing a label value starts from the objects the label's index
                // lists (the same objects, in the same order, as filtering them all).
                let indexed = match (inner.objects.get_mut(key(def)), &interest.requires) {
                    (Some(m), Some(Requirement::Label { key, values })) => {
                        m.with_label(ns, key, values)
                    }
                    _ => None,
                };
                let objects = match (indexed, inner.objects.get(key(def)), ns) {
                    (Some(objects), _, _) => objects,
                    (None, None, _) => Vec::new(),
                    (None, Some(m), Some(ns)) => m.in_namespace(ns).cloned().collect(),
                    (None, Some(m), None) => m.values().cloned().collect(),
                };
                WatchStart::Initial(objects, rv)
            }
            Some(rv) => {
                if rv < inner.compacted_rv {
                    return Err(ApiError::expired(rv, inner.compacted_rv + 1));
                }
                let after = inner.history.partition_point(|c| c.rv <= rv);
                WatchStart::Resume(
                    inner
                        .history
                        .range(after..)
                        .filter(|c| c.resource == def && interest.admits_change(c))
                        .cloned()
                        .collect(),
                    inner.rv.max(rv),
                )
            }
        };
        let requires = interest.requires.clone();
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        let also = also.into_iter().map(|(d, w)| (d, Interest::default(), w));
        for (def, interest, wants) in std::iter::once((def.clone(), interest, wants)).chain(also) {
            let slot = WatchSlot {
                wants,
                tx: tx.clone(),
                lagged: lagged.clone(),
            };
            inner
                .watchers
                .entry(def.storage_key().clone())
                .or_default()
                .register(slot, interest);
        }
        drop(inner);
        // Only the objects the interest admits are handed over (the watcher filters them
        // again), looked at outside the lock.
        let start = match (start, requires) {
            (WatchStart::Initial(mut objects, rv), Some(r)) => {
                objects.retain(|o| r.admits(o));
                WatchStart::Initial(objects, rv)
            }
            (start, _) => start,
        };
        Ok((start, WatchReceiver { rx, lagged }, closed))
    }
}

/// Which changes a watcher wants; it runs under the store's lock.
pub type Wants = Box<dyn Fn(&Change) -> bool + Send + Sync>;

/// One registered watcher, as the store's dispatch keeps it.
pub(crate) struct WatchSlot {
    wants: Wants,
    tx: mpsc::Sender<Arc<Change>>,
    lagged: Arc<AtomicBool>,
}

impl WatchSlot {
    /// Whether the watcher's receiver is gone.
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Offers a change of the watcher's resource; false when the watcher is gone or has
    /// fallen [`WATCH_BUFFER`] changes behind (it is then marked lagged and dropped).
    pub(super) fn offer(&self, change: &Arc<Change>) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        if !(self.wants)(change) {
            return true;
        }
        match self.tx.try_send(change.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.store(true, Ordering::SeqCst);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Why [`WatchReceiver::recv`] returned no change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchRecvError {
    /// The watcher fell [`WATCH_BUFFER`] changes behind and was dropped by the store.
    Lagged,
    /// The store is gone.
    Closed,
}

/// The changes a watcher registered for with [`Store::watch`], in resourceVersion order.
pub struct WatchReceiver {
    rx: mpsc::Receiver<Arc<Change>>,
    lagged: Arc<AtomicBool>,
}

impl WatchReceiver {
    /// The next change; [`WatchRecvError::Lagged`] as soon as the watcher has fallen behind.
    pub async fn recv(&mut self) -> Result<Arc<Change>, WatchRecvError> {
        if self.lagged.load(Ordering::SeqCst) {
            return Err(WatchRecvError::Lagged);
        }
        match self.rx.recv().await {
            Some(c) => Ok(c),
            None if self.lagged.load(Ordering::SeqCst) => Err(WatchRecvError::Lagged),
            None => Err(WatchRecvError::Closed),
        }
    }

    /// A change already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Change>> {
        self.rx.try_recv().ok()
    }
}

/// How a watch begins.
pub enum WatchStart {
    /// Every current object, sent as synthetic ADDED events, and the store's resourceVersion.
    Initial(Vec<Arc<Value>>, u64),
    /// The changes after the requested resourceVersion, and the store's resourceVersion.
    Resume(Vec<Arc<Change>>, u64),
}
