//! Concurrent runs with shared watches against per-run watches: runs per second, p99
//! latency, peak heap and the most watches open at once on the server, for 10, 100 and
//! 1,000 runs in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cmdreporter_configmap::ConfigMapChannel;
use cmdreporter_core::{JobDispatcher, JobRunner, Request, Runner};
use serde_json::json;

use crate::bench::runs::{IMAGE, image};
use crate::{cluster, scripted_runtime};

async fn measure(concurrency: usize, shared: bool) {
    let rt = scripted_runtime();
    rt.image(IMAGE, image());
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let (dispatcher, channel) = if shared {
        (
            JobDispatcher::new(client.clone()).shared_watches(),
            ConfigMapChannel::new(client.clone()).shared_watches(),
        )
    } else {
        (
            JobDispatcher::new(client.clone()),
            ConfigMapChannel::new(client.clone()),
        )
    };
    let runner = Arc::new(JobRunner::with_dispatcher(
        Arc::new(dispatcher),
        Arc::new(channel),
    ));
    cluster.store().reset_peak_open_watches();
    super::alloc::reset_peak();
    let live = super::alloc::live();
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let runner = runner.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let req = Request::new(IMAGE, ["/bin/version"]).timeout(Duration::from_secs(600));
                runner.run(req).await.map(|_| t.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(d)) => latencies.push(d),
            Ok(Err(e)) => eprintln!("scale: run failed: {e}"),
            Err(e) => eprintln!("scale: task failed: {e}"),
        }
    }
    let elapsed = started.elapsed();
    runner.shutdown().await;
    latencies.sort();
    let p99 = latencies
        .get(((latencies.len() as f64 - 1.0) * 0.99).round() as usize)
        .copied()
        .unwrap_or_default();
    println!(
        "{}",
        json!({"section": "scale", "watches": if shared { "shared" } else { "per-run" },
               "concurrency": concurrency, "runs": latencies.len(),
               "runs_per_second": latencies.len() as f64 / elapsed.as_secs_f64(),
               "p99_ms": p99.as_secs_f64() * 1000.0,
               "peak_heap_mib": super::alloc::peak().saturating_sub(live) as f64 / 1048576.0,
               "peak_open_watches": cluster.store().peak_open_watches()})
    );
}

/// The section.
pub async fn run(quick: bool) {
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    for &n in sizes {
        for shared in [false, true] {
            measure(n, shared).await;
        }
    }
}
