//! Watch streams: synthetic ADDED events or resumption from the history, selector
//! transitions, bookmarks, timeouts, and a clear end for watchers that fall behind.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::json::{Value, json};
use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::api::ResponseBody;
use crate::clock::Clock;
use crate::encoding::framed;
use crate::query::{Query, flag};
use crate::resources::{ResourceDef, ResourceRef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{
    Change, ChangeType, Interest, OpenWatch, Requirement, Store, WATCH_BUFFER, Wants,
    WatchReceiver, WatchRecvError, WatchStart, meta_str,
};
use crate::table::IncludeObject;

/// How long a watch lasts when the client gives no `timeoutSeconds` (the API server's
/// `--min-request-timeout`).
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// How often a bookmark is sent to a watcher that asked for them.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

struct Filter {
    namespace: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta_str(obj, "namespace") == Some(ns))
            && self
                .name
                .as_deref()
                .is_none_or(|n| meta_str(obj, "name") == Some(n))
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    /// What the store may offer this watch: only objects meeting one of the filter's
    /// equality requirements (before or after a change) can match it, so the watch is
    /// indexed by the most selective one it has, and by its namespace.
    fn interest(&self) -> Interest {
        let field = |path: &str, value: &str| Requirement::Field {
            path: path.to_owned(),
            value: value.to_owned(),
        };
        let label = |key: &str, values: &[String]| Requirement::Label {
            key: key.to_owned(),
            values: values.to_vec(),
        };
        let labels = self.labels.required_values();
        // A name from the URL is read as `metadata.name` (a stored object always has a
        // non-empty string name, so reading it as a field selector does compares the same).
        let requires = match (self.name.as_deref().filter(|n| !n.is_empty()), labels) {
            (Some(name), _) => Some(field("/metadata/name", name)),
            (None, Some((key, values @ [_]))) => Some(label(key, values)),
            (None, _) => match self.fields.required_value() {
                Some((path, value)) => Some(field(path, value)),
                None => labels.map(|(key, values)| label(key, values)),
            },
        };
        Interest {
            namespace: self.namespace.clone(),
            requires,
        }
    }
}

/// How a watch writes objects: as clients of `def` see them, or as one-row Tables when
/// the client asked for Tables (see [`crate::table`]).
struct Printer {
    def: ResourceRef,
    table: Option<(IncludeObject, Clock)>,
}

fn event_line(kind: &str, p: &Printer, obj: &Value) -> Bytes {
    event_line_at(kind, p, obj, None)
}

/// The event line of `obj`, written with `metadata.resourceVersion` `rv` when given and
/// different from the object's own (a deletion's last state, an object leaving a selector):
/// a copy of the object with that version, which shares all but its top level and its
/// metadata with the stored object.
fn event_line_at(kind: &str, p: &Printer, obj: &Value, rv: Option<u64>) -> Bytes {
    let prefix: [&[u8]; 3] = [b"{\"type\":\"", kind.as_bytes(), b"\",\"object\":"];
    let mut wire = crate::conversion::to_wire(&p.def, obj);
    if let Some(rv) = rv.map(|rv| rv.to_string())
        && meta_str(&wire, "resourceVersion") != Some(rv.as_str())
    {
        crate::store::set_resource_version(wire.to_mut(), rv);
    }
    match &p.table {
        Some((include, clock)) => framed(
            &prefix,
            &crate::table::of_object(&p.def, &wire, *include, clock.since_epoch()),
            b"}\n",
        ),
        None => framed(&prefix, &wire, b"}\n"),
    }
}

fn error_line(e: &ApiError) -> Bytes {
    framed(
        &[b"{\"type\":\"ERROR\",\"object\":"],
        &e.to_status(),
        b"}\n",
    )
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    framed(
        &[b"{\"type\":\"BOOKMARK\",\"object\":"],
        &json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}),
        b"}\n",
    )
}

/// What one change means for a watcher with this filter: the event to send, if any.
fn translate(filter: &Filter, p: &Printer, change: &Change) -> Option<Bytes> {
    let now = filter.matches(&change.object);
    let before = change
        .previous
        .as_deref()
        .is_some_and(|p| filter.matches(p));
    // A DELETED event carries the deletion's resourceVersion; one for an object that left
    // the selection carries the object's previous state (the state that matched), as the
    // real server's watch cache sends it.
    let (kind, obj, rv) = match change.kind {
        ChangeType::Added if now => ("ADDED", &change.object, None),
        ChangeType::Deleted if now || before => ("DELETED", &change.object, Some(change.rv)),
        ChangeType::Modified => match (before, &change.previous) {
            (true, _) if now => ("MODIFIED", &change.object, None),
            (false, _) if now => ("ADDED", &change.object, None),
            (true, Some(previous)) => ("DELETED", previous, Some(change.rv)),
            _ => return None,
        },
        _ => return None,
    };
    Some(event_line_at(kind, p, obj, rv))
}

fn list_options_invalid(why: &str) -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        format!("ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: {why}"),
    )
}

/// Starts a watch of `def` (objects are sent as clients of `def` see them): the response
/// body streams newline-delimited events.
///
/// With `sendInitialEvents=true` (the streaming-list mode of kube-runtime's `watcher`), the
/// resourceVersion is a lower bound, not a resume point: the current objects are sent as
/// ADDED events, then a BOOKMARK annotated `k8s.io/initial-events-end: "true"`.
pub fn start(
    store: &Arc<Store>,
    def: &ResourceRef,
    namespace: Option<&str>,
    name: Option<&str>,
    q: &Query,
    table: Option<IncludeObject>,
) -> Result<ResponseBody, ApiError> {
    let filter = Arc::new(Filter {
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(def, q.get("fieldSelector").map_or("", String::as_str))?,
    });
    let bookmarks = flag(q, "allowWatchBookmarks");
    let send_initial = flag(q, "sendInitialEvents");
    if send_initial {
        if q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
            return Err(list_options_invalid(
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !bookmarks {
            return Err(list_options_invalid(
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    }
    let from = match q.get("resourceVersion").map(String::as_str) {
        _ if send_initial => None,
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);

    let sdef = store.resources().storage_of(def);
    let def = def.clone();
    let printer = Printer {
        def: def.clone(),
        table: table.map(|t| (t, store.clock().clone())),
    };
    let interest = filter.interest();
    let wanted = filter.clone();
    let wants = move |c: &Change| {
        c.namespace_matches(&wanted)
            && (wanted.matches(&c.object)
                || c.previous.as_deref().is_some_and(|p| wanted.matches(p)))
    };
    // The watch of a custom resource ends when its definition goes, so it is offered that
    // deletion too.
    let mut also: Vec<(ResourceRef, Wants)> = Vec::new();
    if def.custom.is_some() {
        let plural = def.qualified_plural();
        also.push((
            crate::resources::well_known::crds().clone(),
            Box::new(move |c: &Change| {
                c.kind == ChangeType::Deleted
                    && meta_str(&c.object, "name") == Some(plural.as_str())
            }),
        ));
    }
    let (start, rx, closed) = match store.watch_with(&sdef, from, interest, Box::new(wants), also) {
        Ok(s) => s,
        Err(e) if e.code == 410 => {
            // A watch from a compacted resourceVersion answers 200 with one ERROR event.
            let stream = futures::stream::iter([Ok::<_, Infallible>(Frame::data(error_line(&e)))]);
            return Ok(StreamBody::new(stream).boxed_unsync());
        }
        Err(e) => return Err(e),
    };
    let mut initial: Vec<Bytes> = Vec::new();
    let last_rv;
    match start {
        WatchStart::Initial(objects, rv) => {
            initial.extend(
                objects
                    .iter()
                    .filter(|o| filter.matches(o))
                    .map(|o| event_line("ADDED", &printer, o)),
            );
            last_rv = rv;
            if send_initial {
                initial.push(bookmark(&def, rv, true));
            }
        }
        WatchStart::Resume(changes, rv) => {
            for c in changes {
                if c.namespace_matches(&filter) {
                    initial.extend(translate(&filter, &printer, &c));
                }
            }
            last_rv = rv;
        }
    }

    let live = Live {
        rx,
        closed,
        deadline: Box::pin(tokio::time::sleep(timeout)),
        // The first bookmark is due one interval after the watch starts. (An `interval`
        // whose first, immediate tick is awaited waits for the timer driver's next
        // millisecond: every watch then delivered nothing for up to a millisecond after it
        // started, on the path of every run.)
        ticker: tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_INTERVAL,
            BOOKMARK_INTERVAL,
        ),
        bookmarks,
        last_rv,
        filter,
        printer,
        def,
        sdef,
        store: store.clone(),
        ended: false,
        _open: store.watch_opened(),
    };
    // The changes are read and written out as the client reads the stream, in the client's
    // task: no task of its own and no second channel between the store and the client (a
    // change used to wake a watch task, which woke the client). What a slow client does not
    // read waits in the store's channel, which closes the watch when it is full, as before.
    let live = futures::stream::unfold(live, Live::next).flat_map(futures::stream::iter);
    let stream = futures::stream::iter(initial)
        .chain(live)
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    Ok(StreamBody::new(stream).boxed_unsync())
}

impl Change {
    fn namespace_matches(&self, filter: &Filter) -> bool {
        filter
            .namespace
            .as_deref()
            .is_none_or(|ns| self.namespace == ns)
    }
}

/// The live part of a watch: the changes after its start, its bookmarks, its end.
struct Live {
    rx: WatchReceiver,
    closed: tokio::sync::watch::Receiver<u64>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    ticker: tokio::time::Interval,
    bookmarks: bool,
    last_rv: u64,
    filter: Arc<Filter>,
    printer: Printer,
    def: ResourceRef,
    sdef: ResourceRef,
    store: Arc<Store>,
    /// The lines returned last were the stream's last (an ERROR, or the lines before the
    /// deletion of a custom resource's definition).
    ended: bool,
    /// Counts the watch as open until the stream ends or its client drops it.
    _open: OpenWatch,
}

impl Live {
    /// Whether `change` is the deletion of this custom resource's definition, which ends
    /// the watch (the only change of another resource it is offered).
    fn definition_gone(&self, change: &Change) -> bool {
        change.resource.storage_key() != self.sdef.storage_key()
    }

    /// The next lines to send, or `None` when the watch ends.
    async fn next(mut self) -> Option<(Vec<Bytes>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                biased;
                msg = self.rx.recv() => match msg {
                    Ok(change) => {
                        // This runs only when the client reads, while the watch's own task
                        // used to end at once when the store closed its watches or its
                        // timeout came: a change queued after the end (the connection gone
                        // on a real server) is not sent. Checked without registering a
                        // wake-up per change.
                        if self.closed.has_changed().unwrap_or(true)
                            || tokio::time::Instant::now() >= self.deadline.deadline()
                        {
                            return None;
                        }
                        self.last_rv = change.rv;
                        if self.definition_gone(&change) {
                            return None;
                        }
                        if let Some(line) = translate(&self.filter, &self.printer, &change) {
                            return Some((vec![line], self));
                        }
                    }
                    Err(WatchRecvError::Lagged) => {
                        tracing::warn!(resource = %self.def.plural, behind = WATCH_BUFFER, "closing a watch that fell behind");
                        let e = ApiError::new(
                            410,
                            "Expired",
                            format!("the watcher fell {WATCH_BUFFER} events behind and was closed; watch again from resourceVersion {} or relist", self.last_rv),
                        );
                        self.ended = true;
                        return Some((vec![error_line(&e)], self));
                    }
                    Err(WatchRecvError::Closed) => return None,
                },
                _ = self.closed.changed() => return None,
                _ = &mut self.deadline => return None,
                _ = self.ticker.tick(), if self.bookmarks => {
                    // The watcher is offered only its own changes, so the bookmark carries
                    // the store's resourceVersion: every change up to it that this watcher
                    // wants is already queued (they are queued under the store's lock), and
                    // is sent first.
                    let now = self.store.resource_version();
                    let mut lines = Vec::new();
                    while let Some(change) = self.rx.try_recv() {
                        self.last_rv = change.rv;
                        if self.definition_gone(&change) {
                            self.ended = true;
                            return Some((lines, self));
                        }
                        lines.extend(translate(&self.filter, &self.printer, &change));
                    }
                    self.last_rv = self.last_rv.max(now);
                    lines.push(bookmark(&self.def, self.last_rv, false));
                    return Some((lines, self));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::resources::well_known;

    fn filter(ns: Option<&str>, name: Option<&str>, labels: &str, fields: &str) -> Filter {
        Filter {
            namespace: ns.map(str::to_owned),
            name: name.map(str::to_owned),
            labels: LabelSelector::parse(labels).unwrap(),
            fields: FieldSelector::parse(well_known::pods(), fields).unwrap(),
        }
    }

    #[test]
    fn an_event_at_another_version_writes_that_version_as_json_and_in_tables() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
            "metadata": {"name": "c", "namespace": "a", "resourceVersion": "5",
                         "creationTimestamp": "2026-01-01T00:00:00Z"}});
        let version = |line: &Bytes, at: &str| {
            let v: Value = serde_json::from_slice(line).unwrap();
            v.pointer(at).and_then(Value::as_str).map(str::to_owned)
        };
        for table in [
            None,
            Some((IncludeObject::Object, Clock::new())),
            Some((IncludeObject::Metadata, Clock::new())),
        ] {
            let at = match table {
                None => "/object/metadata/resourceVersion",
                Some(_) => "/object/rows/0/object/metadata/resourceVersion",
            };
            let p = Printer {
                def: well_known::configmaps().clone(),
                table,
            };
            let line = event_line_at("DELETED", &p, &obj, Some(9));
            assert_eq!(version(&line, at).as_deref(), Some("9"));
            // Its own version, or none given: written as it is.
            for rv in [Some(5), None] {
                let line = event_line_at("DELETED", &p, &obj, rv);
                assert_eq!(version(&line, at).as_deref(), Some("5"));
                assert_eq!(line, event_line("DELETED", &p, &obj));
            }
        }
    }

    #[test]
    fn watches_are_indexed_by_their_most_selective_equality() {
        let label = |key: &str, values: &[&str]| {
            Some(Requirement::Label {
                key: key.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            })
        };
        let field = |path: &str, value: &str| {
            Some(Requirement::Field {
                path: path.into(),
                value: value.into(),
            })
        };
        for (f, requires) in [
            (
                filter(Some("ns"), Some("p"), "app=x", ""),
                field("/metadata/name", "p"),
            ),
            (
                filter(Some("ns"), None, "a in (1,2),b=x", "status.phase=Running"),
                label("b", &["x"]),
            ),
            (
                filter(None, None, "a in (1,2),!c", "spec.nodeName=n"),
                field("/spec/nodeName", "n"),
            ),
            (
                filter(None, None, "a in (1,2),!c", "status.phase!=Running"),
                label("a", &["1", "2"]),
            ),
            (filter(Some("ns"), None, "a!=1,b", "spec.nodeName!=n"), None),
            (filter(None, None, "", ""), None),
        ] {
            let namespace = f.namespace.clone();
            assert_eq!(
                f.interest(),
                Interest {
                    namespace,
                    requires
                }
            );
        }
    }
}
