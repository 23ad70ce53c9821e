//! Many runs in a row on one cluster: live heap at the start, along the way and at the end,
//! and a store that holds nothing of them afterwards.
//!
//! What stays in the process after a run is not the library's: the fake cluster keeps the
//! last 4,096 changes for watches to resume from (each with its object and the previous
//! version), every Event the Job controller and kubelet wrote (a real API server keeps Events
//! for its `--event-ttl`, one hour by default), and the journal of every request. So the
//! section prints, every tenth of the runs, the live heap beside the number of Events and
//! journal entries; and at the end, after the run's cleanup has settled, it deletes the Events
//! through the API (what the one-hour TTL would do), clears the journal and pushes the runs'
//! changes out of the history window with 4,200 writes of one small ConfigMap (created and
//! deleted), and measures the live heap; the same settling is done once before the first run.
//! The difference between the two settled figures is what the runs left behind.

use std::time::Duration;

use cmdreporter_core::{JobRunner, Request, Runner};
use cmdreporter_fake_cluster::resources::well_known;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::bench::runs::image;
use crate::{Transport, cluster, leftovers, scripted_runtime, wait_for_store};

fn mib(bytes: usize) -> f64 {
    bytes as f64 / 1048576.0
}

/// Deletes the Events, clears the journal and fills the history window with changes of one
/// small ConfigMap; returns the live heap then, or `None` if a request failed.
async fn settle(cluster: &cmdreporter_fake_cluster::FakeCluster) -> Option<usize> {
    let client = cluster.client();
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .ok()?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("soak-flush".into());
    // The default window is 4,096 changes; each pair below is two.
    for _ in 0..2_100 {
        cms.create(&PostParams::default(), &cm).await.ok()?;
        cms.delete("soak-flush", &DeleteParams::default())
            .await
            .ok()?;
    }
    cluster.journal().clear();
    Some(super::alloc::live())
}

/// Runs `n` runs one after the other and prints the heap and store figures.
pub async fn run(quick: bool) {
    let n = if quick { 1_000 } else { 10_000 };
    let rt = scripted_runtime();
    rt.image(super::runs::IMAGE, image());
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let runner = JobRunner::new(client.clone(), Transport::ConfigMap.channel(client));
    let objects_before = cluster.store().object_count();
    let live_at_start = super::alloc::live();
    let settled_at_start = settle(&cluster).await;
    let events_in = |cluster: &cmdreporter_fake_cluster::FakeCluster| {
        cluster
            .store()
            .list(well_known::events(), Some("default"))
            .0
            .len()
    };
    let mut checkpoints = Vec::new();
    for i in 0..n {
        let req =
            Request::new(super::runs::IMAGE, ["/bin/version"]).timeout(Duration::from_secs(60));
        if let Err(e) = runner.run(req).await {
            eprintln!("soak: run {i} failed: {e}");
            return;
        }
        if (i + 1) % (n / 10) == 0 {
            runner.shutdown().await;
            wait_for_store(&cluster, || leftovers(&cluster, "default").is_empty()).await;
            let point = json!({"section": "soak-checkpoint", "runs": i + 1,
                "live_heap_mib": mib(super::alloc::live()),
                "events": events_in(&cluster),
                "journal_entries": cluster.journal().len(),
                "objects": cluster.store().object_count()});
            println!("{point}");
            checkpoints.push(point);
        }
    }
    let live_at_end = super::alloc::live();
    let objects_after = cluster.store().object_count();
    let events_after = events_in(&cluster);
    let settled_at_end = settle(&cluster).await;
    let first = checkpoints
        .first()
        .and_then(|c| c["live_heap_mib"].as_f64())
        .unwrap_or(0.0);
    println!(
        "{}",
        json!({"section": "soak", "runs": n,
               "live_heap_mib_at_start": mib(live_at_start),
               "live_heap_mib_after_first_tenth": first,
               "live_heap_mib_at_end": mib(live_at_end),
               "growth_kib_per_run_after_first_tenth":
                   (mib(live_at_end) - first) * 1024.0 / (n - n / 10) as f64,
               "events_at_end": events_after,
               "settled_live_heap_mib_before_first_run": settled_at_start.map(mib),
               "settled_live_heap_mib_after_last_run": settled_at_end.map(mib),
               "left_behind_kib": match (settled_at_start, settled_at_end) {
                   (Some(a), Some(b)) => Some((b as f64 - a as f64) / 1024.0),
                   _ => None,
               },
               "objects_before": objects_before,
               "objects_after": objects_after,
               "objects_after_events_deleted": cluster.store().object_count(),
               "leftover_jobs_pods_configmaps": leftovers(&cluster, "default").values().map(Vec::len).sum::<usize>()})
    );
    // With SOAK_EXIT set, exit with everything still alive, so that `heaptrack` reports what
    // the runs left behind as leaks with their backtraces.
    if std::env::var_os("SOAK_EXIT").is_some() {
        std::process::exit(0);
    }
}
