//! The courier on the fake cluster's scripted runtime: the real courier code
//! ([`courier_main`](crate::courier_main)) runs in-process as the reporter image's
//! `/cmdreporter`, so that a test of an operator needs no binary and no processes, and can
//! run under tokio's paused time.
//!
//! ```no_run
//! use cmdreporter_cli::scripted;
//! use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage};
//! use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = scripted::runtime(); // the default reporter image is registered
//! runtime.image("quay.io/ceph/ceph:v18", ScriptedImage::new().program("ceph",
//!     |ctx: ProgramContext| async move {
//!         ctx.write_stdout(b"ceph version 18.2.4 reef (stable)\n").await;
//!         Exit::Code(0)
//!     }));
//! let cluster = FakeCluster::builder().scripted(runtime).build().await?;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use cmdreporter_core::ExitStatus;
use cmdreporter_core::capture::{Exec, Spawned};
use cmdreporter_core::courier::CourierHost;
use cmdreporter_core::job::REPORTER_BINARY;
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{ScriptedImage, ScriptedRuntime};

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

/// A reporter image whose `/cmdreporter` is the real courier, in-process.
pub fn reporter_image() -> ScriptedImage {
    ScriptedImage::new().program(REPORTER_BINARY, |ctx: ProgramContext| async move {
        let argv = ctx.argv.clone();
        let host = ScriptedHost::new(ctx);
        Exit::Code(crate::courier_main(&argv, &host).await)
    })
}

/// A scripted runtime with the default reporter image registered.
pub fn runtime() -> Arc<ScriptedRuntime> {
    let rt = ScriptedRuntime::new();
    rt.image(DEFAULT_REPORTER_IMAGE, reporter_image());
    rt
}
