//! The process runtime: each container is a real local process with the pod's environment,
//! its stdout and stderr captured into the container's log.
//!
//! Paths: this runtime maps container paths onto this machine ("path mapping"). An argument
//! or environment value that names a volume's `mountPath` (or a path below it), the
//! termination message path, or a file the image is configured to hold, is rewritten to the
//! local file or directory that backs it. Programs that build paths themselves from other
//! inputs do not see the mapping; the pod's API access is given by `KUBECONFIG` in this mode.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{
    ContainerSpec, Exit, Finished, OutputSink, PodApi, PullError, Runtime, StartError, StopSignal,
    image_id, is_valid_image_reference,
};

/// Real local processes as containers.
pub struct ProcessRuntime {
    image_files: RwLock<HashMap<(String, String), PathBuf>>,
    unpullable: RwLock<Vec<String>>,
    scratch: tempfile::TempDir,
}

impl ProcessRuntime {
    /// A runtime where every well-formed image pulls and runs the programs of this machine.
    pub fn new() -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            image_files: RwLock::new(HashMap::new()),
            unpullable: RwLock::new(Vec::new()),
            scratch: tempfile::Builder::new().prefix("fake-kubelet-").tempdir()?,
        }))
    }

    /// Declares that `image` holds, at `container_path`, the local file `host_path` (for
    /// example the reporter image's binary).
    pub fn image_file(&self, image: &str, container_path: &str, host_path: impl Into<PathBuf>) {
        self.image_files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                (image.to_owned(), container_path.to_owned()),
                host_path.into(),
            );
    }

    /// Makes pulls of this image fail (`ErrImagePull`).
    pub fn unpullable(&self, image: &str) {
        self.unpullable
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(image.to_owned());
    }

    fn map_path(&self, spec: &ContainerSpec, message_file: &Path, value: &str) -> String {
        if value == spec.termination_message_path {
            return message_file.to_string_lossy().into_owned();
        }
        if let Some(p) = self
            .image_files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(spec.image.clone(), value.to_owned()))
        {
            return p.to_string_lossy().into_owned();
        }
        for m in &spec.mounts {
            if let Some(rest) = value.strip_prefix(m.mount_path.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{}{rest}", m.host_path.to_string_lossy());
            }
        }
        value.to_owned()
    }
}

async fn pump(mut r: impl AsyncRead + Unpin, sink: OutputSink, stream: usize) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => sink.write(stream, &buf[..n]),
        }
    }
}

fn signal_group(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    async fn pull(&self, image: &str) -> Result<String, PullError> {
        if !is_valid_image_reference(image) {
            return Err(PullError::InvalidName(image.to_owned()));
        }
        if self
            .unpullable
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|i| i == image)
        {
            return Err(PullError::NotFound(image.to_owned()));
        }
        Ok(image_id(image))
    }

    async fn run(
        &self,
        spec: ContainerSpec,
        output: OutputSink,
        mut stop: StopSignal,
        api: PodApi,
    ) -> Result<Finished, StartError> {
        let dir = self.scratch.path().join(&spec.pod_uid).join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(|e| StartError(e.to_string()))?;
        for m in &spec.mounts {
            std::fs::create_dir_all(&m.host_path).map_err(|e| StartError(e.to_string()))?;
        }
        let message_file = dir.join("termination-log");
        std::fs::write(&message_file, b"").map_err(|e| StartError(e.to_string()))?;
        let argv: Vec<String> = spec
            .argv
            .iter()
            .map(|a| self.map_path(&spec, &message_file, a))
            .collect();
        let Some(program) = argv.first() else {
            return Err(StartError("no command given".into()));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&argv[1..])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // The image's own environment: this machine's PATH stands in for it.
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in &api.env {
            cmd.env(k, v);
        }
        for (k, v) in &spec.env {
            cmd.env(k, self.map_path(&spec, &message_file, v));
        }
        let workdir = match &spec.working_dir {
            Some(w) => PathBuf::from(self.map_path(&spec, &message_file, w)),
            None => dir.clone(),
        };
        cmd.current_dir(workdir);
        let mut child = cmd.spawn().map_err(|e| {
            let name = &spec.argv[0];
            StartError(match e.kind() {
                ErrorKind::NotFound => format!(
                    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{name}\": executable file not found in $PATH: unknown"
                ),
                ErrorKind::PermissionDenied => format!(
                    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{name}\": permission denied: unknown"
                ),
                _ => format!("failed to start container process: {e}"),
            })
        })?;
        let pid = child.id();
        let out = child
            .stdout
            .take()
            .map(|r| tokio::spawn(pump(r, output.clone(), 0)));
        let err = child
            .stderr
            .take()
            .map(|r| tokio::spawn(pump(r, output.clone(), 1)));
        let status = tokio::select! {
            status = child.wait() => status,
            _ = super::stopped(&mut stop) => {
                if let Some(pid) = pid {
                    signal_group(pid, libc::SIGTERM);
                }
                match tokio::time::timeout(spec.grace_period, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        if let Some(pid) = pid {
                            signal_group(pid, libc::SIGKILL);
                        }
                        child.wait().await
                    }
                }
            }
        }
        .map_err(|e| StartError(e.to_string()))?;
        for task in [out, err].into_iter().flatten() {
            let _ = task.await;
        }
        let exit = match (status.code(), status.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => Exit::Code(-1),
        };
        let message = std::fs::read(&message_file).ok().filter(|m| !m.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(Finished {
            exit,
            termination_message: message,
        })
    }
}
