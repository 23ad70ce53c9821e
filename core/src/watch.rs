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
use crate::lean::{Lean, LeanRead};
use crate::watch_lines::{Decode, decode_line};

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

/// What a started watch yields: kube's events, or lines for the state's decoder.
enum Line<K> {
    Event(WatchEvent<K>),
    Text(String),
}

type Inner<K> = BoxStream<'static, kube::Result<Line<K>>>;

struct State<K: Clone + 'static> {
    api: Api<K>,
    params: WatchParams,
    /// With a decoder, the watch's lines are read by it (see [`crate::watch_lines`]);
    /// without, by kube.
    decode: Option<Decode<K>>,
    rv: String,
    inner: Option<Inner<K>>,
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

/// Starts the watch of `api` from `rv`: kube's, or lines for a decoder (`lines`).
async fn start<K>(
    api: &Api<K>,
    params: &WatchParams,
    rv: &str,
    lines: bool,
) -> kube::Result<Inner<K>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    if !lines {
        return Ok(api
            .watch(params, rv)
            .await?
            .map(|r| r.map(Line::Event))
            .boxed());
    }
    let client = api.clone().into_client();
    let lines = crate::watch_lines::start(&client, api.resource_url(), params, rv).await?;
    Ok(lines.map(|r| r.map(Line::Text)).boxed())
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
    watch_with(api, params, None)
}

/// [`watch`] of objects read [lean](crate::lean): the same requests, events and errors,
/// with each event's object read by [`LeanRead::json_reader`] from the line's text (which
/// may skip what the previous events of the watch showed already).
pub fn watch_lean<K>(
    api: Api<Lean<K>>,
    params: WatchParams,
) -> impl Stream<Item = kube::Result<Event<Lean<K>>>> + Send
where
    K: LeanRead + Clone + std::fmt::Debug + Send + 'static,
    Lean<K>: Resource,
{
    watch_with(
        api,
        params,
        Some(Box::new(crate::lean_json::event_reader::<K>())),
    )
}

fn watch_with<K>(
    api: Api<K>,
    params: WatchParams,
    decode: Option<Decode<K>>,
) -> impl Stream<Item = kube::Result<Event<K>>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let state = State {
        api,
        params,
        decode,
        rv: String::new(),
        inner: None,
        failures: 0,
        initial_done: false,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        loop {
            let Some(inner) = s.inner.as_mut() else {
                match start(&s.api, &s.params, &s.rv, s.decode.is_some()).await {
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
            let item = match inner.next().await {
                Some(Ok(Line::Text(text))) => {
                    match s.decode.as_mut().and_then(|d| decode_line(&text, d)) {
                        Some(r) => Some(r),
                        // A line cut short (kube skips it too).
                        None => continue,
                    }
                }
                Some(Ok(Line::Event(ev))) => Some(Ok(ev)),
                Some(Err(e)) => Some(Err(e)),
                None => None,
            };
            match item {
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
