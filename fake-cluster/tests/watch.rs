#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Watches through the real `kube::Client`: synthetic ADDED events, selector transitions,
//! resumption after a disconnect, 410 after compaction and the watcher's relist, streaming
//! lists, timeouts, slow watchers and many watchers.

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::json::json;
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::store::{DeleteOptions, WATCH_BUFFER};
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;

async fn cluster() -> FakeCluster {
    FakeCluster::builder().seed(2).build().await.unwrap()
}

fn cm(name: &str, app: &str) -> ConfigMap {
    cmdreporter_fake_cluster::json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": app}}}),
    )
    .unwrap()
}

/// `ADDED a`, `DELETED b`, `BOOKMARK`, `ERROR 410`.
fn describe(e: &WatchEvent<ConfigMap>) -> String {
    let name = |o: &ConfigMap| o.metadata.name.clone().unwrap_or_default();
    match e {
        WatchEvent::Added(o) => format!("ADDED {}", name(o)),
        WatchEvent::Modified(o) => format!("MODIFIED {}", name(o)),
        WatchEvent::Deleted(o) => format!("DELETED {}", name(o)),
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(s) => format!("ERROR {}", s.code),
    }
}

async fn next_events<S>(stream: &mut S, n: usize) -> Vec<String>
where
    S: Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    let mut out = Vec::new();
    while out.len() < n {
        let e = stream.next().await.expect("stream ended").unwrap();
        if !matches!(e, WatchEvent::Bookmark(_)) {
            out.push(describe(&e));
        }
    }
    out
}

fn rv(o: &ConfigMap) -> String {
    o.metadata.resource_version.clone().unwrap()
}

#[tokio::test]
async fn selectors_turn_transitions_into_added_and_deleted() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let pp = PostParams::default();
    cms.create(&pp, &cm("a", "x")).await.unwrap();
    cms.create(&pp, &cm("b", "y")).await.unwrap();
    let mut w = cms
        .watch(&WatchParams::default().labels("app=x"), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        next_events(&mut w, 1).await,
        ["ADDED a"],
        "synthetic ADDED for matches only"
    );
    let label = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    cms.patch("b", &PatchParams::default(), &label("x"))
        .await
        .unwrap();
    cms.patch("a", &PatchParams::default(), &label("z"))
        .await
        .unwrap();
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        next_events(&mut w, 4).await,
        ["ADDED b", "DELETED a", "MODIFIED b", "DELETED b"],
        "a stops matching: DELETED (with its previous state); a's own deletion is not seen again"
    );
}

#[tokio::test]
async fn deleted_events_carry_the_last_state_and_the_deletion_version() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let created = cms
        .create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    let mut w = cms
        .watch(&WatchParams::default(), &rv(&created))
        .await
        .unwrap()
        .boxed();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let Some(Ok(WatchEvent::Deleted(gone))) = w.next().await else {
        panic!("no DELETED")
    };
    assert_eq!(gone.metadata.labels.as_ref().unwrap()["app"], "x");
    let deleted_at: u64 = rv(&gone).parse().unwrap();
    assert_eq!(deleted_at, c.store().resource_version());
    assert!(deleted_at > rv(&created).parse().unwrap());
    // An immediate delete writes nothing first: the last state is the stored one, without
    // the deletionTimestamp only a graceful delete or a finalizer's wait writes.
    assert_eq!(gone.metadata.deletion_timestamp, None);
    assert_eq!(gone.metadata.deletion_grace_period_seconds, None);
    assert_eq!(gone.data, created.data);
    assert_eq!(gone.metadata.uid, created.metadata.uid);
}

#[tokio::test]
async fn a_resumed_or_filtered_watch_sends_deletions_at_the_deletion_version() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let created = cms
        .create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let deleted_at = c.store().resource_version().to_string();
    for params in [
        WatchParams::default(),
        WatchParams::default().labels("app=x"),
    ] {
        // From the history: the change was made before this watch started.
        let mut w = cms.watch(&params, &rv(&created)).await.unwrap().boxed();
        let Some(Ok(WatchEvent::Deleted(gone))) = w.next().await else {
            panic!("no DELETED")
        };
        assert_eq!(rv(&gone), deleted_at);
        assert_eq!(gone.metadata.deletion_timestamp, None);
    }
}

#[tokio::test]
async fn an_object_leaving_the_selection_is_deleted_with_the_state_that_matched() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    cms.create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    let mut w = cms
        .watch(&WatchParams::default().labels("app=x"), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(next_events(&mut w, 1).await, ["ADDED a"]);
    let moved = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "z"}}, "data": {"k": "v"}})),
        )
        .await
        .unwrap();
    let Some(Ok(WatchEvent::Deleted(left))) = w.next().await else {
        panic!("no DELETED")
    };
    // The previous state (which matched), at the change's resourceVersion, as the real
    // server's watch cache sends it.
    assert_eq!(left.metadata.labels.as_ref().unwrap()["app"], "x");
    assert_eq!(left.data, None, "the state before the patch");
    assert_eq!(rv(&left), rv(&moved));
}

#[tokio::test]
async fn a_resumed_watch_delivers_the_deletions_of_the_gap() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let pp = PostParams::default();
    for n in ["a", "b", "c"] {
        cms.create(&pp, &cm(n, "x")).await.unwrap();
    }
    let mut w = cms
        .watch(&WatchParams::default().labels("app=x"), "0")
        .await
        .unwrap()
        .boxed();
    let mut last = 0u64;
    for _ in 0..3 {
        let Some(Ok(WatchEvent::Added(o))) = w.next().await else {
            panic!("no ADDED")
        };
        last = last.max(rv(&o).parse().unwrap());
    }
    // The connection drops (the server closes every watch), then the gap happens.
    c.store().close_watches();
    assert!(w.next().await.is_none(), "the closed watch ends");
    let last = last.to_string();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    cms.delete("c", &DeleteParams::default()).await.unwrap();
    let mut resumed = cms
        .watch(&WatchParams::default(), &last)
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        next_events(&mut resumed, 3).await,
        ["DELETED a", "MODIFIED b", "DELETED c"]
    );
}

#[tokio::test]
async fn a_compacted_history_answers_410_expired() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let created = cms
        .create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    c.store().compact();
    let mut w = cms
        .watch(&WatchParams::default(), &rv(&created))
        .await
        .unwrap()
        .boxed();
    let Some(Ok(WatchEvent::Error(status))) = w.next().await else {
        panic!("no ERROR event")
    };
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    assert_eq!(
        status.message,
        format!(
            "too old resource version: {} ({})",
            rv(&created),
            c.store().resource_version() + 1
        )
    );
    assert!(w.next().await.is_none());
}

#[tokio::test]
async fn the_runtime_watcher_relists_after_410() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    cms.create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("b", "x"))
        .await
        .unwrap();
    let cfg = watcher::Config::default().labels("app=x");
    let mut events = watcher(cms.clone(), cfg).boxed();
    let mut initial = Vec::new();
    loop {
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["a", "b"]);
    // Before the watcher's watch request is even made: changes, then compaction.
    let store = c.store();
    store
        .delete(
            well_known::configmaps(),
            "default",
            "a",
            &DeleteOptions::default(),
        )
        .unwrap();
    store
        .create(
            well_known::configmaps(),
            "default",
            json!({"metadata": {"name": "c", "labels": {"app": "x"}}}),
        )
        .unwrap();
    store.compact();
    let err = events.try_next().await.unwrap_err();
    assert!(
        err.to_string().contains("too old resource version"),
        "{err}"
    );
    let mut relisted = Vec::new();
    loop {
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(o) => relisted.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        relisted,
        ["b", "c"],
        "the relist shows the state after the gap"
    );
}

#[tokio::test]
async fn streaming_lists_end_initial_events_with_a_bookmark() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    cms.create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("b", "x"))
        .await
        .unwrap();
    // Raw: ADDED for each object, then the annotated BOOKMARK.
    let mut w = cms
        .watch(&WatchParams::streaming_lists().labels("app=x"), "")
        .await
        .unwrap()
        .boxed();
    assert_eq!(next_events(&mut w, 2).await, ["ADDED a", "ADDED b"]);
    let Some(Ok(WatchEvent::Bookmark(b))) = w.next().await else {
        panic!("no bookmark")
    };
    assert_eq!(
        b.metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        b.metadata.resource_version,
        c.store().resource_version().to_string()
    );
    // kube-runtime's watcher in streaming-list mode.
    let cfg = watcher::Config::default().streaming_lists().labels("app=x");
    let mut events = watcher(cms.clone(), cfg).boxed();
    let mut seen = Vec::new();
    loop {
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::InitApply(o) => seen.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["a", "b"]);
    // Without bookmarks the server refuses the streaming list, as the real one does.
    let req = http::Request::get(
        "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
    )
    .body(Vec::new())
    .unwrap();
    let resp = c.client().send(req.map(Into::into)).await.unwrap();
    assert_eq!(resp.status(), 422);
}

#[tokio::test(start_paused = true)]
async fn timeout_seconds_ends_the_stream() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let start = tokio::time::Instant::now();
    let mut w = cms
        .watch(&WatchParams::default().timeout(5).labels("app=none"), "0")
        .await
        .unwrap()
        .boxed();
    assert!(w.next().await.is_none());
    assert_eq!(start.elapsed().as_secs(), 5);
}

#[tokio::test]
async fn a_slow_watcher_is_cut_off_without_blocking_writers() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let mut slow = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let fast = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    // Writers never wait for watchers: every write completes while nobody reads.
    let writes = WATCH_BUFFER + 100;
    for i in 0..writes {
        c.store()
            .create(
                well_known::configmaps(),
                "default",
                json!({"metadata": {"name": format!("c{i}")}}),
            )
            .unwrap();
    }
    let mut seen = 0;
    let mut error = None;
    while let Some(e) = slow.next().await {
        match e.unwrap() {
            WatchEvent::Error(s) => error = Some(s),
            _ => seen += 1,
        }
    }
    let status = error.expect("the slow watcher ends with an error");
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    assert!(
        status.message.contains("events behind and was closed"),
        "{}",
        status.message
    );
    assert!(seen < writes);
    drop(fast);
    // The server still serves.
    assert!(cms.get("c0").await.is_ok());
}

#[tokio::test]
async fn hundreds_of_watchers_each_receive_every_event() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let rv0 = c.store().resource_version().to_string();
    let mut watchers = Vec::new();
    for _ in 0..300 {
        watchers.push(
            cms.watch(&WatchParams::default().disable_bookmarks(), &rv0)
                .await
                .unwrap()
                .boxed(),
        );
    }
    for i in 0..20 {
        cms.create(&PostParams::default(), &cm(&format!("m{i}"), "x"))
            .await
            .unwrap();
    }
    let expected: Vec<String> = (0..20).map(|i| format!("ADDED m{i}")).collect();
    for w in &mut watchers {
        assert_eq!(next_events(w, 20).await, expected);
    }
}

#[tokio::test(start_paused = true)]
async fn bookmarks_carry_the_stores_progress() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let mut w = cms
        .watch(&WatchParams::default().labels("app=none"), "0")
        .await
        .unwrap()
        .boxed();
    // Writes the watch does not show still move the resourceVersion its bookmarks carry.
    c.store()
        .create(
            well_known::configmaps(),
            "default",
            json!({"metadata": {"name": "other"}}),
        )
        .unwrap();
    let start = tokio::time::Instant::now();
    let Some(Ok(WatchEvent::Bookmark(b))) = w.next().await else {
        panic!("no bookmark")
    };
    assert_eq!(
        start.elapsed(),
        cmdreporter_fake_cluster::watch::BOOKMARK_INTERVAL
    );
    assert_eq!(
        b.metadata.resource_version,
        c.store().resource_version().to_string()
    );
    assert!(b.metadata.annotations.is_empty());
}

/// A watch delivers the changes after its start at once: no timer stands between them and
/// the client (its first bookmark tick used to hold every event back until the timer
/// driver's next millisecond).
#[tokio::test(start_paused = true)]
async fn changes_arrive_without_waiting_for_a_timer() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    for round in 0..3 {
        // Off a millisecond boundary, where a timer due "now" is due at the next one.
        tokio::time::advance(std::time::Duration::from_micros(300)).await;
        let rv = c.store().resource_version().to_string();
        let mut w = cms
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        let start = tokio::time::Instant::now();
        cms.create(&PostParams::default(), &cm(&format!("now{round}"), "x"))
            .await
            .unwrap();
        assert_eq!(next_events(&mut w, 1).await, [format!("ADDED now{round}")]);
        // Paused time moves only when every task waits on a timer.
        assert_eq!(start.elapsed(), std::time::Duration::ZERO, "round {round}");
    }
}

/// A watch counts as open while its client holds the stream, and no longer once it drops
/// the stream or the stream ends at its timeout.
#[tokio::test(start_paused = true)]
async fn a_watch_is_open_until_its_client_drops_it_or_it_ends() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let open = || c.store().open_watches();
    let base = open();
    let wp = WatchParams::default().labels("app=x");
    let mut w = cms.watch(&wp, "0").await.unwrap().boxed();
    assert_eq!(open(), base + 1);
    cms.create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    assert_eq!(next_events(&mut w, 1).await, ["ADDED a"]);
    drop(w);
    assert_eq!(open(), base, "dropped while waiting for a change");
    let mut w = cms
        .watch(&wp.clone().timeout(3), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(open(), base + 1);
    assert_eq!(next_events(&mut w, 1).await, ["ADDED a"]);
    while w.next().await.is_some() {}
    assert_eq!(open(), base, "ended at its timeout, the stream still held");
}

/// A watch with a required label value started after writes that moved objects into and
/// out of the label's index (built by an earlier watch) lists what a scan would.
#[tokio::test]
async fn label_watches_start_from_the_objects_that_have_the_label_now() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let pp = PostParams::default();
    for (n, app) in [("a", "x"), ("b", "y"), ("c", "x")] {
        cms.create(&pp, &cm(n, app)).await.unwrap();
    }
    let wp = WatchParams::default().labels("app=x");
    let mut first = cms.watch(&wp, "0").await.unwrap().boxed();
    assert_eq!(next_events(&mut first, 2).await, ["ADDED a", "ADDED c"]);
    let relabel = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    cms.patch("b", &PatchParams::default(), &relabel("x"))
        .await
        .unwrap();
    cms.patch("c", &PatchParams::default(), &relabel("z"))
        .await
        .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    cms.create(&pp, &cm("d", "x")).await.unwrap();
    let mut second = cms.watch(&wp, "0").await.unwrap().boxed();
    assert_eq!(next_events(&mut second, 2).await, ["ADDED b", "ADDED d"]);
    let set = WatchParams::default().labels("app in (z, x)");
    let mut third = cms.watch(&set, "0").await.unwrap().boxed();
    assert_eq!(
        next_events(&mut third, 3).await,
        ["ADDED b", "ADDED c", "ADDED d"]
    );
}

/// A watch that reached its timeout, or was closed (the connection dropped), before its
/// client read on delivers nothing written after that: on a real server that connection is
/// gone.
#[tokio::test(start_paused = true)]
async fn an_ended_watch_delivers_no_change_made_after_its_end() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let pp = PostParams::default();
    let wp = WatchParams::default().labels("app=x");
    let after = |e: Option<kube::Result<WatchEvent<ConfigMap>>>| e.map(|e| describe(&e.unwrap()));
    let mut timed = cms
        .watch(&wp.clone().timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    cms.create(&pp, &cm("a", "x")).await.unwrap();
    assert_eq!(after(timed.next().await), None, "timed out");
    let mut closed = cms.watch(&wp, "0").await.unwrap().boxed();
    assert_eq!(next_events(&mut closed, 1).await, ["ADDED a"]);
    c.store().close_watches();
    cms.create(&pp, &cm("b", "x")).await.unwrap();
    assert_eq!(after(closed.next().await), None, "closed");
}
