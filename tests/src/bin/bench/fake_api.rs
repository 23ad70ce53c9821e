//! Section `fake-api`: the fake cluster's API layer, with the configuration the conformance
//! tests use (`FakeCluster::builder().build()`, in-process `kube::Client`).
//!
//! - `startup`: time of `FakeCluster::builder().build()`.
//! - `creates`: ConfigMap creates per second through `kube::Client` (sequential, and with
//!   several in flight), and the same requests sent straight to `ApiServer::handle` to show
//!   what the fake itself costs apart from kube's client.
//! - `watch_fanout`: N watchers (`Api::watch`) each receiving every one of E events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::json::json;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn build() -> FakeCluster {
    match FakeCluster::builder().build().await {
        Ok(c) => c,
        Err(e) => panic!("fake cluster: {e}"),
    }
}

fn configmap(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_owned());
    cm.data = Some([("k".to_owned(), "v".to_owned())].into());
    cm
}

/// Runs the section; `quick` shrinks every measurement.
pub async fn run(quick: bool) {
    startup(if quick { 20 } else { 500 }).await;
    let n = if quick { 2_000 } else { 40_000 };
    creates(1, n).await;
    creates(8, n).await;
    handler_creates(n).await;
    custom_creates(n).await;
    watch_fanout(1_000, if quick { 20 } else { 100 }).await;
}

async fn startup(iterations: usize) {
    // One warm-up build: the first one pays for lazily initialised statics.
    drop(build().await);
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let c = build().await;
        times.push(t.elapsed());
        drop(c);
    }
    times.sort();
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1000.0 / iterations as f64;
    // The CA is generated on first use (HTTPS serving, `ca_pem`), not by `build()`.
    let mut ca_times = Vec::new();
    for _ in 0..20 {
        let c = build().await;
        let t = Instant::now();
        if let Err(e) = c.ca_pem() {
            panic!("CA: {e}");
        }
        ca_times.push(t.elapsed());
    }
    ca_times.sort();
    println!(
        "{}",
        json!({"section": "fake-api", "measure": "startup", "iterations": iterations,
            "mean_ms": mean, "p50_ms": percentile(&times, 0.5), "p99_ms": percentile(&times, 0.99),
            "max_ms": percentile(&times, 1.0), "ca_generation_p50_ms": percentile(&ca_times, 0.5)})
    );
}

async fn creates(concurrency: usize, total: usize) {
    let cluster = build().await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    // Warm-up.
    for i in 0..200 {
        let _ = api
            .create(&PostParams::default(), &configmap(&format!("warm-{i}")))
            .await;
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let api = api.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let pp = PostParams::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                if let Err(e) = api.create(&pp, &configmap(&format!("cm-{i}"))).await {
                    panic!("create failed: {e}");
                }
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "{}",
        json!({"section": "fake-api", "measure": "creates", "client": "kube::Client in-process",
            "concurrency": concurrency, "creates": latencies.len(), "seconds": elapsed.as_secs_f64(),
            "creates_per_second": latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99),
            "objects_in_store": cluster.store().object_count()})
    );
}

/// Creates of a custom resource (a definition with a schema: validation, pruning and
/// defaults on every create), sequentially through `kube::Client`, beside the ConfigMap
/// figures.
async fn custom_creates(total: usize) {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let cluster = build().await;
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 0},
            "colour": {"type": "string", "enum": ["red", "blue"]},
            "mode": {"type": "string", "default": "auto"}}}}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema}, "subresources": {"status": {}}}]}});
    if let Err(e) = cluster.register_crd_json(crd) {
        panic!("definition: {e}");
    }
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let api: Api<DynamicObject> = Api::default_namespaced_with(cluster.client(), &ar);
    let widget = |name: String| -> DynamicObject {
        match cmdreporter_fake_cluster::json::from_value(
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name}, "spec": {"size": 3, "colour": "red", "extra": 1}}),
        ) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        }
    };
    let pp = PostParams::default();
    for i in 0..200 {
        let _ = api.create(&pp, &widget(format!("warm-{i}"))).await;
    }
    let mut latencies = Vec::with_capacity(total);
    let started = Instant::now();
    for i in 0..total {
        let t = Instant::now();
        if let Err(e) = api.create(&pp, &widget(format!("w-{i}"))).await {
            panic!("create failed: {e}");
        }
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "{}",
        json!({"section": "fake-api", "measure": "custom_resource_creates", "client": "kube::Client in-process",
            "concurrency": 1, "creates": latencies.len(), "seconds": elapsed.as_secs_f64(),
            "creates_per_second": latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99)})
    );
}

/// The same creates sent straight to the handler: the fake's own share of a request.
async fn handler_creates(total: usize) {
    let cluster = build().await;
    let api = cluster.api().clone();
    let started = Instant::now();
    for i in 0..total {
        let body = match serde_json::to_vec(&configmap(&format!("cm-{i}"))) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let req = match http::Request::post("/api/v1/namespaces/default/configmaps")
            .header("content-type", "application/json")
            .body(Bytes::from(body))
        {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let resp = api.handle(req).await;
        assert_eq!(resp.status(), 201);
    }
    let elapsed = started.elapsed();
    println!(
        "{}",
        json!({"section": "fake-api", "measure": "creates", "client": "ApiServer::handle (no client)",
            "concurrency": 1, "creates": total, "seconds": elapsed.as_secs_f64(),
            "creates_per_second": total as f64 / elapsed.as_secs_f64(),
            "us_per_create": elapsed.as_secs_f64() * 1e6 / total as f64})
    );
}

async fn watch_fanout(watchers: usize, events: usize) {
    let cluster = build().await;
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let from = cluster.store().resource_version().to_string();
    let wp = WatchParams::default()
        .labels("bench=fanout")
        .disable_bookmarks();
    let mut tasks = Vec::with_capacity(watchers);
    let opened = Instant::now();
    for _ in 0..watchers {
        let mut stream = match api.watch(&wp, &from).await {
            Ok(s) => s.boxed(),
            Err(e) => panic!("watch: {e}"),
        };
        tasks.push(tokio::spawn(async move {
            let mut received = 0usize;
            let mut in_order = true;
            while received < events {
                match stream.next().await {
                    Some(Ok(WatchEvent::Added(cm))) => {
                        in_order &= cm.metadata.name.as_deref() == Some(&format!("f-{received}"));
                        received += 1;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
            (received, in_order, Instant::now())
        }));
    }
    let open_seconds = opened.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..events {
        let mut cm = configmap(&format!("f-{i}"));
        cm.metadata.labels = Some([("bench".to_owned(), "fanout".to_owned())].into());
        if let Err(e) = api.create(&PostParams::default(), &cm).await {
            panic!("create: {e}");
        }
    }
    let written = started.elapsed();
    let mut complete = 0;
    let mut ordered = 0;
    let mut delivered = 0;
    let mut last = started;
    for t in tasks {
        if let Ok((received, in_order, done)) = t.await {
            delivered += received;
            complete += usize::from(received == events);
            ordered += usize::from(in_order && received == events);
            last = last.max(done);
        }
    }
    let seconds = (last - started).as_secs_f64();
    println!(
        "{}",
        json!({"section": "fake-api", "measure": "watch_fanout", "watchers": watchers,
            "events": events, "watchers_with_every_event": complete, "watchers_in_order": ordered,
            "deliveries": delivered, "open_seconds": open_seconds,
            "write_seconds": written.as_secs_f64(), "seconds_until_all_delivered": seconds,
            "deliveries_per_second": delivered as f64 / seconds})
    );
}
