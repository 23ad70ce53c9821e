//! Raw watches that start with resourceVersion unset (the synthetic ADDED events stand in
//! for a LIST), resume from the last resourceVersion after a disconnect, and start over
//! after 410 Gone.
//!
//! The synthetic ADDED events come in key order, not resourceVersion order, so resuming
//! from one of them would skip objects not yet sent. Until the initial events are known to
//! be over (the first MODIFIED, DELETED or BOOKMARK event, which the server sends only after
//! them), a cut stream starts over with resourceVersion unset, as after 410.

use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::api::{Api, WatchEvent, WatchParams};
use kube::core::Resource;
use serde::de::DeserializeOwned;

use crate::error::is_transient;

/// What a resumable watch yields.
#[derive(Debug)]
pub enum Event<K> {
    /// An object was added (or is there at the start).
    Applied(K),
    /// An object was deleted.
    Deleted(K),
    /// The watch started over after 410 Gone: what follows is the full current state.
    Restarted,
}

struct State<K: Clone + 'static> {
    api: Api<K>,
    params: WatchParams,
    rv: String,
    inner: Option<BoxStream<'static, kube::Result<WatchEvent<K>>>>,
    failures: u32,
    /// Whether the synthetic initial events of the current stream are known to be over.
    initial_done: bool,
}

impl<K: Clone + 'static> State<K> {
    /// The stream ended or failed: resume from the last resourceVersion when that is safe,
    /// else start over (`Some(Restarted)` is then owed to the consumer).
    fn reconnect(&mut self) -> Option<Event<K>> {
        self.inner = None;
        if self.initial_done || self.rv.is_empty() {
            return None;
        }
        self.rv.clear();
        Some(Event::Restarted)
    }
}

impl<K: Clone + 'static> State<K> {
    /// Keeps the resourceVersion of an event's object to resume from (reusing the buffer).
    fn remember(&mut self, meta: &kube::core::ObjectMeta) {
        if let Some(rv) = &meta.resource_version {
            self.rv.clone_from(rv);
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn backoff(failures: u32) -> Duration {
    (Duration::from_millis(50) * 2u32.saturating_pow(failures.min(10))).min(MAX_BACKOFF)
}

/// Watches `api` with `params` for as long as the stream is polled. Permanent errors end it
/// with one `Err`; transient ones are retried with backoff.
pub fn watch<K>(
    api: Api<K>,
    params: WatchParams,
) -> impl Stream<Item = kube::Result<Event<K>>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let state = State {
        api,
        params,
        rv: String::new(),
        inner: None,
        failures: 0,
        initial_done: false,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        loop {
            let Some(inner) = s.inner.as_mut() else {
                match s.api.watch(&s.params, &s.rv).await {
                    Ok(stream) => {
                        s.inner = Some(stream.boxed());
                        s.initial_done = !s.rv.is_empty();
                        continue;
                    }
                    Err(e) if is_transient(&e) => {
                        s.failures += 1;
                        tokio::time::sleep(backoff(s.failures)).await;
                        continue;
                    }
                    Err(e) => return Some((Err(e), None)),
                }
            };
            match inner.next().await {
                None => {
                    // The server ended the stream (timeout, dropped connection): resume.
                    if let Some(ev) = s.reconnect() {
                        return Some((Ok(ev), Some(s)));
                    }
                }
                Some(Ok(ev)) => {
                    s.failures = 0;
                    match ev {
                        WatchEvent::Added(o) => {
                            s.remember(o.meta());
                            return Some((Ok(Event::Applied(o)), Some(s)));
                        }
                        WatchEvent::Modified(o) => {
                            s.initial_done = true;
                            s.remember(o.meta());
                            return Some((Ok(Event::Applied(o)), Some(s)));
                        }
                        WatchEvent::Deleted(o) => {
                            s.initial_done = true;
                            s.remember(o.meta());
                            return Some((Ok(Event::Deleted(o)), Some(s)));
                        }
                        WatchEvent::Bookmark(b) => {
                            s.initial_done = true;
                            s.rv = b.metadata.resource_version;
                        }
                        WatchEvent::Error(e) if e.code == 410 => {
                            s.rv.clear();
                            s.inner = None;
                            return Some((Ok(Event::Restarted), Some(s)));
                        }
                        WatchEvent::Error(e) => {
                            let err = kube::Error::Api(e);
                            if is_transient(&err) {
                                let restarted = s.reconnect();
                                s.failures += 1;
                                tokio::time::sleep(backoff(s.failures)).await;
                                if let Some(ev) = restarted {
                                    return Some((Ok(ev), Some(s)));
                                }
                            } else {
                                return Some((Err(err), None));
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    if !is_transient(&e)
                        && !matches!(e, kube::Error::ReadEvents(_) | kube::Error::HttpError(_))
                    {
                        return Some((Err(e), None));
                    }
                    let restarted = s.reconnect();
                    s.failures += 1;
                    tokio::time::sleep(backoff(s.failures)).await;
                    if let Some(ev) = restarted {
                        return Some((Ok(ev), Some(s)));
                    }
                }
            }
        }
    })
}
