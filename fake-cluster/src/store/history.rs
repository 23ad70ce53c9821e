//! The change history of the store: what a watch starts from (the current objects, or the
//! changes after a resourceVersion), compaction (410 Expired for older resourceVersions),
//! and closing every open watch.

use std::sync::Arc;

use serde_json::Value;

use tokio::sync::{broadcast, watch};

use super::{Change, Result, Store, key};
use crate::resources::ResourceRef;
use crate::status::ApiError;

impl Store {
    /// Drops the whole change history: a watch from any earlier resourceVersion gets 410.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted_rv = inner.rv;
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

    /// Registers a watcher on every change from now on, and returns, atomically with the
    /// registration, either the current objects (for a watch with no resourceVersion) or
    /// the changes after `from` in the history (410 if they are no longer kept).
    ///
    /// The third value changes when [`Store::close_watches`] is called.
    #[allow(clippy::type_complexity)]
    pub fn watch(
        &self,
        def: &ResourceRef,
        from: Option<u64>,
    ) -> Result<(
        WatchStart,
        broadcast::Receiver<Arc<Change>>,
        watch::Receiver<u64>,
    )> {
        let inner = self.lock();
        let rx = self.watchers.subscribe();
        let closed = self.watch_epoch.subscribe();
        let start = match from {
            None => WatchStart::Initial(
                inner
                    .objects
                    .get(key(def))
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default(),
                inner.rv,
            ),
            Some(rv) => {
                if rv < inner.compacted_rv {
                    return Err(ApiError::expired(rv, inner.compacted_rv + 1));
                }
                WatchStart::Resume(
                    inner
                        .history
                        .iter()
                        .filter(|c| c.rv > rv && c.resource == def)
                        .cloned()
                        .collect(),
                    inner.rv.max(rv),
                )
            }
        };
        Ok((start, rx, closed))
    }
}

/// How a watch begins.
pub enum WatchStart {
    /// Every current object, sent as synthetic ADDED events, and the store's resourceVersion.
    Initial(Vec<Arc<Value>>, u64),
    /// The changes after the requested resourceVersion, and the store's resourceVersion.
    Resume(Vec<Arc<Change>>, u64),
}
