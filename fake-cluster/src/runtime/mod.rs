//! How the kubelet runs a container: the [`Runtime`] trait and its two implementations,
//! [`ScriptedRuntime`] (in-process programs, for paused-time tests) and [`ProcessRuntime`]
//! (real local processes).

#[cfg(target_os = "linux")]
mod namespace;
mod process;
mod scripted;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Clock;
use crate::logs::LogStore;

pub use process::{Isolation, ProcessRuntime};
pub use scripted::{
    Program, ProgramContext, ProgramExit, ScriptedChild, ScriptedImage, ScriptedRuntime,
};

/// Why an image could not be pulled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    /// The reference is not a valid image name (`InvalidImageName`).
    #[error(
        "Failed to apply default image tag \"{0}\": couldn't parse image name \"{0}\": invalid reference format"
    )]
    InvalidName(String),
    /// The registry refused or the image does not exist (`ErrImagePull`, then
    /// `ImagePullBackOff`).
    #[error(
        "failed to pull and unpack image \"{0}\": failed to resolve reference \"{0}\": not found"
    )]
    NotFound(String),
}

/// A volume as a container sees it.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Where the volume's content lives on this machine (process runtime) or its key in the
    /// pod's in-memory files (scripted runtime).
    pub host_path: PathBuf,
    /// `mountPath` in the container.
    pub mount_path: String,
    /// Whether the mount is read-only.
    pub read_only: bool,
}

/// Everything a runtime needs to start one container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub pod_name: String,
    /// Uid of the pod.
    pub pod_uid: String,
    /// Name of the container.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// `command` and `args`, with `$(VAR)` references expanded.
    pub argv: Vec<String>,
    /// The container's environment, in order.
    pub env: Vec<(String, String)>,
    /// `workingDir`, if set.
    pub working_dir: Option<String>,
    /// Volume mounts.
    pub mounts: Vec<Mount>,
    /// `terminationMessagePath`, where the program may write its termination message.
    pub termination_message_path: String,
    /// Grace period between SIGTERM and SIGKILL when the container is stopped.
    pub grace_period: Duration,
}

/// Where a container's output goes: the kubelet's log of that container.
#[derive(Clone)]
pub struct OutputSink {
    pub(crate) logs: Arc<LogStore>,
    pub(crate) pod_uid: String,
    pub(crate) container: String,
    pub(crate) clock: Clock,
}

impl OutputSink {
    /// Writes bytes of stdout (`stream` 0) or stderr (1).
    pub fn write(&self, stream: usize, data: &[u8]) {
        let now = self.clock.now_rfc3339_nanos();
        self.logs
            .append(&self.pod_uid, &self.container, stream, data, &now);
    }

    pub(crate) fn finish(&self) {
        let now = self.clock.now_rfc3339_nanos();
        self.logs.finish(&self.pod_uid, &self.container, &now);
    }
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with a code.
    Code(i32),
    /// Killed by a signal (the kubelet reports exit code 128 + N).
    Signal(i32),
}

impl Exit {
    /// The exit code the kubelet reports.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Code(c) => c,
            Self::Signal(s) => 128 + s,
        }
    }
}

/// Why a container could not start (`StartError` / `RunContainerError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// What the kubelet asks of a container runtime.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Pulls an image; returns its image ID (`sha256:...` digest form).
    async fn pull(&self, image: &str) -> Result<String, PullError>;

    /// Runs a container to its end. `stop` resolves when the kubelet must stop it (deadline
    /// or pod deletion): the runtime then sends SIGTERM and, after the spec's grace period,
    /// SIGKILL.
    async fn run(
        &self,
        spec: ContainerSpec,
        output: OutputSink,
        stop: StopSignal,
        api: PodApi,
    ) -> Result<Finished, StartError>;

    /// Forgets what the runtime kept for a pod that was deleted (its volumes).
    fn forget_pod(&self, _pod_uid: &str) {}

    /// Writes files of a volume (service account token, ConfigMap keys) before the pod's
    /// containers start; `dir` is the volume's `host_path`. By default they are written to
    /// this machine's disk.
    fn write_volume(
        &self,
        _pod_uid: &str,
        dir: &std::path::Path,
        files: &[(String, Vec<u8>)],
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (rel, data) in files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, data)?;
        }
        Ok(())
    }
}

/// A container that ran to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub exit: Exit,
    /// What it wrote to its termination message path, if anything.
    pub termination_message: Option<Vec<u8>>,
}

/// Resolves when the container must stop.
pub type StopSignal = tokio::sync::watch::Receiver<bool>;

/// Waits until `stop` says the container must stop (or its sender is gone).
pub async fn stopped(stop: &mut StopSignal) {
    let _ = stop.wait_for(|s| *s).await;
}

/// How programs in a pod reach the API server.
#[derive(Clone)]
pub struct PodApi {
    /// An in-process client with the admin's credentials.
    pub client: kube::Client,
    /// The in-process service, sending no credentials: the scripted runtime builds each
    /// pod's client on it with the pod's own token.
    pub service: crate::FakeService,
    /// The environment variables a real pod gets to find the API server
    /// (`KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`, naming the cluster's HTTPS
    /// server), and `KUBECONFIG` for a kubeconfig naming the same server, from which the
    /// process runtime writes, in path-mapping mode only, each container's own kubeconfig
    /// with the pod's service-account token.
    pub env: BTreeMap<String, String>,
}

impl std::fmt::Debug for PodApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodApi").field("env", &self.env).finish()
    }
}

/// A well-formed image reference: `[registry/]path[:tag][@digest]`, lowercase path.
pub fn is_valid_image_reference(image: &str) -> bool {
    if image.is_empty() || image.trim() != image || image.contains(char::is_whitespace) {
        return false;
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let Some((algo, hex)) = d.split_once(':') else {
            return false;
        };
        if algo.is_empty() || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
    }
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (rest, None),
    };
    if let Some(t) = tag
        && (t.is_empty()
            || t.len() > 128
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
    {
        return false;
    }
    let mut parts = path.split('/').peekable();
    let first = parts.next().unwrap_or_default();
    let has_registry =
        path.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let components: Vec<&str> = if has_registry {
        path.split('/').skip(1).collect()
    } else {
        path.split('/').collect()
    };
    !components.is_empty()
        && components.iter().all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        })
}

/// A deterministic image ID for an image reference.
pub fn image_id(image: &str) -> String {
    use sha2::{Digest, Sha256};
    if let Some((_, digest)) = image.split_once('@') {
        return format!("{}@{digest}", image.split_once('@').map_or(image, |x| x.0));
    }
    let hash = Sha256::digest(image.as_bytes());
    let repo = image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or(image, |x| x.0);
    let mut id = String::with_capacity(repo.len() + "@sha256:".len() + 2 * hash.len());
    id.push_str(repo);
    id.push_str("@sha256:");
    push_hex(&mut id, &hash);
    id
}

/// Appends `bytes` as lowercase hex (what `format!("{b:02x}")` per byte gives, without
/// the formatting machinery per byte).
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for ok in [
            "busybox",
            "busybox:1.36",
            "quay.io/ceph/ceph:v18",
            "localhost:5000/a/b:c",
            "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_valid_image_reference(ok), "{ok}");
        }
        for bad in ["", "Busybox", "a b", "a:", "a:b/c:", "-a", "a@sha256:xyz"] {
            assert!(!is_valid_image_reference(bad), "{bad}");
        }
    }

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut hex = String::new();
        push_hex(&mut hex, &bytes);
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn image_ids_are_stable_digests() {
        assert_eq!(image_id("busybox:1"), image_id("busybox:1"));
        assert_eq!(
            image_id("busybox:1"),
            "busybox@sha256:765f875080a9220ec3186dfc31b67b030c07e570665ba0e000bb9d17d5481cd5"
        );
        assert_eq!(image_id("a@sha256:00"), "a@sha256:00");
    }
}
