//! The courier's host in a real pod: this process, its environment and file system.

use std::io;
use std::os::unix::fs::PermissionsExt;

use async_trait::async_trait;
use cmdreporter_core::capture::{Exec, OsExec};
use cmdreporter_core::courier::CourierHost;
use tokio::io::AsyncWriteExt;

/// The operating system as the courier's host.
#[derive(Debug, Default)]
pub struct OsHost {
    exec: OsExec,
}

impl OsHost {
    /// The host of this process.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CourierHost for OsHost {
    fn exec(&self) -> &dyn Exec {
        &self.exec
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    async fn client(&self) -> Result<kube::Client, String> {
        kube::Client::try_default()
            .await
            .map_err(|e| format!("no API access: {e}"))
    }

    async fn write_stdout(&self, data: &[u8]) -> io::Result<()> {
        let mut out = tokio::io::stdout();
        out.write_all(data).await?;
        out.flush().await
    }

    async fn write_stderr(&self, data: &[u8]) {
        let mut err = tokio::io::stderr();
        let _ = err.write_all(data).await;
        let _ = err.flush().await;
    }

    fn write_termination_message(&self, path: &str, message: &str) -> io::Result<()> {
        let bytes = message.as_bytes();
        std::fs::write(path, &bytes[..bytes.len().min(4096)])
    }

    fn install(&self, dest: &str) -> io::Result<()> {
        let me = current_exe()?;
        let tmp = format!("{dest}.tmp");
        std::fs::copy(&me, &tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, dest)
    }
}

/// The path of the running executable: `/proc/self/exe` where `/proc` is mounted, else
/// `argv[0]` when it names a path (an image with nothing else in it may have no `/proc`).
pub fn current_exe() -> io::Result<std::path::PathBuf> {
    match std::env::current_exe() {
        Ok(p) => Ok(p),
        Err(e) => match std::env::args_os().next().map(std::path::PathBuf::from) {
            Some(p) if p.components().count() > 1 && p.exists() => Ok(p),
            _ => Err(e),
        },
    }
}
