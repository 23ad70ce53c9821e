//! Section `kubelet`: pods run to completion per second by the fake cluster's controllers
//! and kubelet. Each Job (`backoffLimit: 0`, one container that exits 0 at once) is
//! created through the in-process `kube::Client`; the clock stops when every Job has its
//! `Complete` condition (pod created, scheduled, run, counted, finalizer removed). Two
//! runtimes: `scripted` (in-process program) and `process` (`/bin/true` as a local process).

use std::sync::Arc;
use std::time::Instant;

use cmdreporter_fake_cluster::json::json;
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ProcessRuntime, ScriptedImage, ScriptedRuntime};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};

fn job(i: usize, command: &str) -> Option<Job> {
    cmdreporter_fake_cluster::json::from_value(json!({
        "metadata": {"name": format!("bench-{i}")},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [{"name": "main", "image": "bench:1", "command": [command]}]}}}
    }))
    .ok()
}

fn is_complete(j: &cmdreporter_fake_cluster::json::Value) -> bool {
    j.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Complete"))
}

fn complete(cluster: &FakeCluster) -> usize {
    cluster
        .store()
        .list(well_known::jobs(), Some("default"))
        .0
        .iter()
        .filter(|j| {
            j.pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Complete"))
        })
        .count()
}

async fn measure(
    cluster: FakeCluster,
    runtime: &str,
    command: &str,
    total: usize,
) -> cmdreporter_fake_cluster::json::Value {
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let mut changes = cluster.store().subscribe_controller();
    let start = Instant::now();
    for i in 0..total {
        let Some(j) = job(i, command) else { continue };
        if let Err(e) = jobs.create(&PostParams::default(), &j).await {
            eprintln!("bench kubelet: create failed: {e}");
        }
    }
    // Jobs that gained their Complete condition, counted from the change stream.
    let mut done = complete(&cluster);
    while done < total {
        let Some(c) = changes.recv().await else { break };
        if c.resource == well_known::jobs() && is_complete(&c.object) {
            let before = c.previous.as_deref().is_some_and(is_complete);
            if !before {
                done += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    json!({"section": "kubelet", "runtime": runtime, "pods": total,
           "seconds": (secs * 1000.0).round() / 1000.0,
           "pods_per_second": (total as f64 / secs).round()})
}

/// Runs the section and prints one JSON line per runtime.
pub async fn run(quick: bool) {
    let rt = ScriptedRuntime::new();
    rt.image(
        "bench:1",
        ScriptedImage::new().program("/bin/ok", |_ctx: ProgramContext| async { Exit::Code(0) }),
    );
    match FakeCluster::builder().scripted(rt).build().await {
        Ok(c) => println!(
            "{}",
            measure(c, "scripted", "/bin/ok", if quick { 500 } else { 5000 }).await
        ),
        Err(e) => eprintln!("bench kubelet: {e}"),
    }
    let process = match ProcessRuntime::new() {
        Ok(p) => p,
        Err(e) => return eprintln!("bench kubelet: {e}"),
    };
    match FakeCluster::builder()
        .process(Arc::clone(&process))
        .build()
        .await
    {
        Ok(c) => {
            let mut m = measure(c, "process", "true", if quick { 50 } else { 300 }).await;
            // Mount namespaces (as root on Linux) or path mapping.
            m["isolation"] = json!(format!("{:?}", process.isolation()));
            println!("{m}");
        }
        Err(e) => eprintln!("bench kubelet: {e}"),
    }
}
