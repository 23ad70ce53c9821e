//! The courier's host in a real pod: this process, its environment and file system.

use std::io;
use std::os::unix::fs::PermissionsExt;

use async_trait::async_trait;
use cmdreporter_core::ExitStatus;
use cmdreporter_core::capture::{Exec, Spawned};
use cmdreporter_core::courier::CourierHost;
use tokio::io::AsyncWriteExt;

/// Starts commands as processes of this machine, with stdin an empty pipe (closed at
/// once) rather than `/dev/null`: an image built `FROM scratch` run outside a container
/// runtime (a chroot) has no `/dev`, and a missing `/dev/null` must not pass for a
/// missing command.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessExec;

impl Exec for ProcessExec {
    fn spawn(&self, argv: &[String]) -> io::Result<Spawned> {
        use std::os::unix::process::ExitStatusExt;
        use std::process::Stdio;
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Closing our end gives the command end-of-file on stdin.
        drop(child.stdin.take());
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr pipe"))?;
        Ok(Spawned {
            stdout: Box::pin(stdout),
            stderr: Box::pin(stderr),
            wait: Box::pin(async move {
                let status = child.wait().await?;
                Ok(match (status.code(), status.signal()) {
                    (Some(c), _) => ExitStatus::Code(c),
                    (None, Some(s)) => ExitStatus::Signal(s),
                    (None, None) => ExitStatus::Code(-1),
                })
            }),
        })
    }
}

/// The operating system as the courier's host.
#[derive(Debug, Default)]
pub struct OsHost {
    exec: ProcessExec,
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
