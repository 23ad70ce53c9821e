//! Many runs in a row on one cluster: live heap at the start and the end, and a store that
//! holds nothing of them afterwards.

use std::time::Duration;

use cmdreporter_core::{JobRunner, Request, Runner};
use serde_json::json;

use crate::bench::runs::image;
use crate::{Transport, cluster, leftovers, scripted_runtime, wait_for_store};

/// Runs `n` runs one after the other and prints the heap and store figures.
pub async fn run(quick: bool) {
    let n = if quick { 1_000 } else { 10_000 };
    let rt = scripted_runtime();
    rt.image(super::runs::IMAGE, image());
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let runner = JobRunner::new(client.clone(), Transport::ConfigMap.channel(client));
    let objects_before = cluster.store().object_count();
    let mut live = Vec::new();
    for i in 0..n {
        let req =
            Request::new(super::runs::IMAGE, ["/bin/version"]).timeout(Duration::from_secs(60));
        if let Err(e) = runner.run(req).await {
            eprintln!("soak: run {i} failed: {e}");
            return;
        }
        if i == 99 || i + 1 == n {
            runner.shutdown().await;
            wait_for_store(&cluster, || leftovers(&cluster, "default").is_empty()).await;
            live.push(super::alloc::live());
        }
    }
    println!(
        "{}",
        json!({"section": "soak", "runs": n,
               "live_heap_mib_after_100": live.first().copied().unwrap_or(0) as f64 / 1048576.0,
               "live_heap_mib_at_end": live.last().copied().unwrap_or(0) as f64 / 1048576.0,
               "objects_before": objects_before,
               "objects_after": cluster.store().object_count(),
               "leftover_jobs_pods_configmaps": leftovers(&cluster, "default").values().map(Vec::len).sum::<usize>()})
    );
}
