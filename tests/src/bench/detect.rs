//! Time from an image-pull failure appearing in the pod's status to the typed error, with
//! the pull grace period set to zero (Rook waits out its 15-minute timeout). Real time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmdreporter_core::{Error, GracePeriods, JobDispatcher, JobRunner, Request, Runner};
use cmdreporter_fake_cluster::resources::well_known;
use serde_json::json;

use crate::{Transport, cluster, scripted_runtime};

/// One measurement: milliseconds from the pod status showing `ErrImagePull` to the error.
async fn once(transport: Transport) -> f64 {
    let rt = scripted_runtime();
    rt.unpullable("missing:1");
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let graces = GracePeriods {
        image_pull: Duration::ZERO,
        ..GracePeriods::default()
    };
    let runner = JobRunner::with_dispatcher(
        Arc::new(JobDispatcher::new(client.clone()).graces(graces)),
        transport.channel(client),
    );
    // Note when the status first shows the failure, from the store's ordered changes.
    let seen: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut changes = cluster.store().subscribe_controller();
    let seen_w = seen.clone();
    let watcher = tokio::spawn(async move {
        while let Some(c) = changes.recv().await {
            if c.resource == well_known::pods() && c.object.to_string().contains("ErrImagePull") {
                let mut s = seen_w.lock().unwrap_or_else(|e| e.into_inner());
                s.get_or_insert_with(Instant::now);
            }
        }
    });
    let result = runner
        .run(Request::new("missing:1", ["/bin/x"]).timeout(Duration::from_secs(60)))
        .await;
    let done = Instant::now();
    watcher.abort();
    assert!(matches!(result, Err(Error::ImagePull { .. })), "{result:?}");
    let seen = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(done);
    done.duration_since(seen).as_secs_f64() * 1000.0
}

/// The section: the median and the worst of `n` measurements per transport.
pub async fn run(quick: bool) {
    let n = if quick { 5 } else { 25 };
    for &t in Transport::all() {
        let mut ms = Vec::new();
        for _ in 0..n {
            ms.push(once(t).await);
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "{}",
            json!({"section": "detect", "transport": format!("{t:?}"), "samples": n,
                   "median_ms": ms[ms.len() / 2], "max_ms": ms[ms.len() - 1]})
        );
    }
}
