//! Shared pieces of the end-to-end tests: the bridge that lets the real courier
//! ([`cmdreporter_cli::courier_main`]) run in-process on the fake cluster's scripted
//! runtime, and a cluster set up with the reporter image.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use cmdreporter_core::ExitStatus;
use cmdreporter_core::capture::{Exec, Spawned};
use cmdreporter_core::courier::CourierHost;
use cmdreporter_core::job::REPORTER_BINARY;
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage, ScriptedRuntime};

/// The courier's host on the scripted runtime: the program's context.
pub struct ScriptedHost {
    ctx: Arc<ProgramContext>,
    exec: ScriptedExec,
}

/// Starts commands as programs of the same scripted container.
pub struct ScriptedExec {
    ctx: Arc<ProgramContext>,
}

impl Exec for ScriptedExec {
    fn spawn(&self, argv: &[String]) -> io::Result<Spawned> {
        let child = self.ctx.spawn(argv, self.ctx.env.clone())?;
        Ok(Spawned {
            stdout: child.stdout,
            stderr: child.stderr,
            wait: Box::pin(async move {
                Ok(match child.wait.await {
                    Exit::Code(c) => ExitStatus::Code(c),
                    Exit::Signal(s) => ExitStatus::Signal(s),
                })
            }),
        })
    }
}

impl ScriptedHost {
    /// A host over a program's context.
    pub fn new(ctx: ProgramContext) -> Self {
        let ctx = Arc::new(ctx);
        Self {
            exec: ScriptedExec { ctx: ctx.clone() },
            ctx,
        }
    }
}

#[async_trait]
impl CourierHost for ScriptedHost {
    fn exec(&self) -> &dyn Exec {
        &self.exec
    }

    fn env(&self, name: &str) -> Option<String> {
        self.ctx.env.get(name).cloned()
    }

    async fn client(&self) -> Result<kube::Client, String> {
        Ok(self.ctx.client())
    }

    async fn write_stdout(&self, data: &[u8]) -> io::Result<()> {
        self.ctx.write_stdout(data).await;
        Ok(())
    }

    async fn write_stderr(&self, data: &[u8]) {
        self.ctx.write_stderr(data).await;
    }

    fn write_termination_message(&self, path: &str, message: &str) -> io::Result<()> {
        self.ctx.write_file(path, message.as_bytes())
    }

    fn install(&self, dest: &str) -> io::Result<()> {
        self.ctx.install_self(dest)
    }
}

/// The reporter image: the real courier entry point at its path in the image.
pub fn reporter_image() -> ScriptedImage {
    ScriptedImage::new().program(REPORTER_BINARY, |ctx: ProgramContext| async move {
        let argv = ctx.argv.clone();
        let host = ScriptedHost::new(ctx);
        Exit::Code(cmdreporter_cli::courier_main(&argv, &host).await)
    })
}

/// A scripted runtime with the default reporter image registered.
pub fn scripted_runtime() -> Arc<ScriptedRuntime> {
    let rt = ScriptedRuntime::new();
    rt.image(DEFAULT_REPORTER_IMAGE, reporter_image());
    rt
}

/// A fake cluster on `runtime`.
pub async fn cluster(runtime: Arc<ScriptedRuntime>) -> FakeCluster {
    match FakeCluster::builder().scripted(runtime).build().await {
        Ok(c) => c,
        Err(e) => panic!("fake cluster: {e}"),
    }
}

/// Names of the objects left in a namespace, per resource (`jobs`, `pods`, `configmaps`),
/// leaving out what every namespace has.
pub fn leftovers(cluster: &FakeCluster, ns: &str) -> BTreeMap<&'static str, Vec<String>> {
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
            out.insert(def.plural, names);
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
