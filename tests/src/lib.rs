//! Shared pieces of the end-to-end tests: the bridge that lets the real courier
//! ([`cmdreporter_cli::courier_main`]) run in-process on the fake cluster's scripted
//! runtime, and a cluster set up with the reporter image.

use std::collections::BTreeMap;
use std::sync::Arc;

use cmdreporter_fake_cluster::{FakeCluster, ScriptedRuntime};

/// The courier's bridge to the scripted runtime lives with the courier, in the cli crate.
pub use cmdreporter_cli::scripted::{
    ScriptedExec, ScriptedHost, reporter_image, runtime as scripted_runtime,
};

/// A fake cluster on `runtime`.
pub async fn cluster(runtime: Arc<ScriptedRuntime>) -> FakeCluster {
    match FakeCluster::builder().scripted(runtime).build().await {
        Ok(c) => c,
        Err(e) => panic!("fake cluster: {e}"),
    }
}

/// Names of the objects left in a namespace, per resource (`jobs`, `pods`, `configmaps`),
/// leaving out what every namespace has.
pub fn leftovers(cluster: &FakeCluster, ns: &str) -> BTreeMap<String, Vec<String>> {
    use cmdreporter_fake_cluster::resources::well_known;
    let mut out = BTreeMap::new();
    for def in [
        well_known::jobs(),
        well_known::pods(),
        well_known::configmaps(),
    ] {
        let (items, _) = cluster.store().list(def, Some(ns));
        let names: Vec<String> = items
            .iter()
            .filter_map(|o| o.pointer("/metadata/name").and_then(|n| n.as_str()))
            .filter(|n| *n != "kube-root-ca.crt")
            .map(str::to_owned)
            .collect();
        if !names.is_empty() {
            out.insert(def.plural.clone(), names);
        }
    }
    out
}

/// Waits until `cond` holds, re-checking after every change in the store (no polling).
pub async fn wait_for_store(cluster: &FakeCluster, mut cond: impl FnMut() -> bool) {
    let mut changes = cluster.store().subscribe_controller();
    while !cond() {
        if changes.recv().await.is_none() {
            return;
        }
    }
}

/// The transports every scenario runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Rook's ConfigMap transport.
    ConfigMap,
    /// The pod-logs transport.
    Logs,
}

impl Transport {
    /// Every transport.
    pub fn all() -> &'static [Transport] {
        &[Transport::ConfigMap, Transport::Logs]
    }

    /// The operator side of this transport.
    pub fn channel(self, client: kube::Client) -> Arc<dyn cmdreporter_core::ResultChannel> {
        match self {
            Transport::ConfigMap => Arc::new(cmdreporter_configmap::ConfigMapChannel::new(client)),
            Transport::Logs => Arc::new(cmdreporter_k8s_logs::LogsChannel::new(client)),
        }
    }
}
pub mod bench;
pub mod props;

/// `len` deterministic pseudo-random bytes (xorshift from `seed`): not UTF-8 and not
/// compressible, the same for the same `len` and `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}
