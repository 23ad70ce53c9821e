//! The process runtime: each container is a real local process with the pod's environment,
//! its stdout and stderr captured into the container's log, and its own process group (a
//! stop sends SIGTERM to the group, then SIGKILL after the grace period).
//!
//! Where the container's paths come from depends on what this machine allows; the runtime
//! chooses at start and logs its choice ([`ProcessRuntime::isolation`]):
//!
//! - [`Isolation::MountNamespace`] (Linux, running as root): each container gets a private
//!   mount namespace, as a container runtime gives it. Its root is an overlay of this
//!   machine's root filesystem (writes land in a per-container tmpfs and vanish with it),
//!   with a fresh `/dev` and `/tmp`, this machine's `/proc` and a read-only `/sys`. The
//!   pod's volumes (emptyDir, the service-account token, `ca.crt` and `namespace`), the
//!   termination message file and the image's files ([`ProcessRuntime::image_file`]) are
//!   bind-mounted at their real container paths. Programs see exactly the paths of a real
//!   pod, so `kube::Config::incluster()` works unchanged: `KUBERNETES_SERVICE_HOST` and
//!   `_PORT` name the cluster's HTTPS server, and no `KUBECONFIG` is set. `PATH` is the
//!   usual container default, `HOME` is `/root`, `HOSTNAME` the pod's name. Only the root
//!   filesystem is in the overlay: other mounts of this machine (a separate `/home` or
//!   `/work`) are not visible, as in an image.
//! - [`Isolation::PathMapping`] (not root, not Linux, or the namespace could not be
//!   built): container paths are mapped onto this machine. An argument, environment value
//!   or working directory that names a volume's `mountPath` (or a path below it), the
//!   termination message path, or a file the image holds, is rewritten to the local file
//!   or directory that backs it. Programs that build paths themselves from other inputs
//!   do not see the mapping, and in-cluster configuration cannot find its token; the
//!   pod's API access is given by `KUBECONFIG` in this mode: a kubeconfig per container
//!   naming the same HTTPS server, the pod's namespace, and as credentials the pod's own
//!   service-account token (`tokenFile`, the token file of its mounted volume), or none
//!   when the pod mounts no token, as a real pod would be anonymous. The programs see this
//!   machine's filesystem and `PATH`.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

#[cfg(target_os = "linux")]
use super::namespace::{self, BindSource, Plan};
use super::{
    ContainerSpec, Exit, Finished, OutputSink, PodApi, PullError, Runtime, StartError, StopSignal,
    image_id, is_valid_image_reference,
};

/// `PATH` of a container in a mount namespace (containerd's default).
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the process runtime gives containers their paths (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A private mount namespace per container, with its paths at their real places.
    MountNamespace,
    /// Container paths in arguments and environment rewritten to local paths.
    PathMapping,
}

/// Real local processes as containers.
pub struct ProcessRuntime {
    image_files: RwLock<HashMap<(String, String), PathBuf>>,
    unpullable: RwLock<Vec<String>>,
    scratch: tempfile::TempDir,
    /// Whether containers run in mount namespaces; cleared for good when building one
    /// fails on this machine.
    isolate: AtomicBool,
}

impl ProcessRuntime {
    /// A runtime where every well-formed image pulls and runs the programs of this machine,
    /// each container in its own mount namespace where the machine allows it (Linux, root),
    /// with path mapping otherwise.
    pub fn new() -> std::io::Result<Arc<Self>> {
        #[cfg(target_os = "linux")]
        let isolate = namespace::may_isolate();
        #[cfg(not(target_os = "linux"))]
        let isolate = false;
        if isolate {
            tracing::info!("process runtime: a private mount namespace per container");
        } else {
            tracing::info!("process runtime: path mapping (mount namespaces need root on Linux)");
        }
        Self::with_isolation(isolate)
    }

    /// A runtime that maps container paths onto this machine, even where mount namespaces
    /// are available.
    pub fn path_mapping() -> std::io::Result<Arc<Self>> {
        Self::with_isolation(false)
    }

    fn with_isolation(isolate: bool) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            image_files: RwLock::new(HashMap::new()),
            unpullable: RwLock::new(Vec::new()),
            scratch: tempfile::Builder::new().prefix("fake-kubelet-").tempdir()?,
            isolate: AtomicBool::new(isolate),
        }))
    }

    /// How containers get their paths now.
    pub fn isolation(&self) -> Isolation {
        if self.isolate.load(Ordering::Relaxed) {
            Isolation::MountNamespace
        } else {
            Isolation::PathMapping
        }
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

    /// A command with what both modes share: stdio, process group, kill on drop.
    fn command(program: &str, args: &[String]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    fn spawn_mapped(
        &self,
        spec: &ContainerSpec,
        dir: &Path,
        message_file: &Path,
        api: &PodApi,
    ) -> Result<tokio::process::Child, StartError> {
        let argv: Vec<String> = spec
            .argv
            .iter()
            .map(|a| self.map_path(spec, message_file, a))
            .collect();
        let Some(program) = argv.first() else {
            return Err(StartError("no command given".into()));
        };
        let mut cmd = Self::command(program, &argv[1..]);
        // The image's own environment: this machine's PATH stands in for it.
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in api.env.iter().filter(|(k, _)| *k != "KUBECONFIG") {
            cmd.env(k, v);
        }
        if let Some(base) = api.env.get("KUBECONFIG") {
            cmd.env("KUBECONFIG", pod_kubeconfig(spec, dir, Path::new(base))?);
        }
        for (k, v) in &spec.env {
            cmd.env(k, self.map_path(spec, message_file, v));
        }
        let workdir = match &spec.working_dir {
            Some(w) => PathBuf::from(self.map_path(spec, message_file, w)),
            None => dir.to_path_buf(),
        };
        cmd.current_dir(workdir);
        cmd.spawn().map_err(|e| start_error(&spec.argv[0], &e))
    }

    /// Spawns in a mount namespace; `Ok(None)` when this machine cannot build one.
    #[cfg(target_os = "linux")]
    fn spawn_isolated(
        &self,
        spec: &ContainerSpec,
        dir: &Path,
        message_file: &Path,
        api: &PodApi,
    ) -> Result<Option<tokio::process::Child>, StartError> {
        let Some(program) = spec.argv.first() else {
            return Err(StartError("no command given".into()));
        };
        let mut binds: Vec<BindSource> = spec
            .mounts
            .iter()
            .map(|m| BindSource {
                host: m.host_path.clone(),
                container: m.mount_path.clone(),
                read_only: m.read_only,
            })
            .collect();
        binds.push(BindSource {
            host: message_file.to_path_buf(),
            container: spec.termination_message_path.clone(),
            read_only: false,
        });
        for ((image, path), host) in self
            .image_files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if *image == spec.image {
                binds.push(BindSource {
                    host: host.clone(),
                    container: path.clone(),
                    read_only: true,
                });
            }
        }
        let ns_dir = dir.join("ns");
        std::fs::create_dir_all(&ns_dir).map_err(|e| StartError(e.to_string()))?;
        let workdir = spec.working_dir.as_deref().unwrap_or("/");
        let plan = Arc::new(
            Plan::new(&ns_dir, &binds, workdir)
                .map_err(|e| StartError(format!("preparing the container's mounts: {e}")))?,
        );
        let mut cmd = Self::command(program, &spec.argv[1..]);
        cmd.env("PATH", CONTAINER_PATH)
            .env("HOSTNAME", &spec.pod_name)
            .env("HOME", "/root");
        for (k, v) in api.env.iter().filter(|(k, _)| *k != "KUBECONFIG") {
            cmd.env(k, v);
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let child_plan = plan.clone();
        // SAFETY: the closure runs in the child between fork and exec; `run_in_child` only
        // reads the plan prepared before the fork and issues async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || child_plan.run_in_child());
        }
        match cmd.spawn() {
            Ok(child) => Ok(Some(child)),
            Err(e) => match plan.decode_error(&e) {
                Some((true, what)) => {
                    tracing::warn!(
                        %what,
                        "process runtime: no mount namespace on this machine; path mapping from now on"
                    );
                    Ok(None)
                }
                Some((false, what)) => Err(StartError(format!(
                    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: {what}: unknown"
                ))),
                None => Err(start_error(program, &e)),
            },
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn spawn_isolated(
        &self,
        _: &ContainerSpec,
        _: &Path,
        _: &Path,
        _: &PodApi,
    ) -> Result<Option<tokio::process::Child>, StartError> {
        Ok(None)
    }
}

/// Writes the kubeconfig of a container in path-mapping mode to `dir`: the cluster of
/// `base` (the served cluster's), the pod's namespace, and the pod's own service-account
/// token as `tokenFile` (no credentials when the pod mounts no token).
fn pod_kubeconfig(spec: &ContainerSpec, dir: &Path, base: &Path) -> Result<PathBuf, StartError> {
    let fail = |e: String| StartError(format!("writing the container's kubeconfig: {e}"));
    let mut config = kube::config::Kubeconfig::read_from(base).map_err(|e| fail(e.to_string()))?;
    let token = spec
        .mounts
        .iter()
        .find(|m| m.mount_path == crate::admission::SERVICE_ACCOUNT_DIR)
        .map(|m| m.host_path.join("token"))
        .filter(|t| t.exists());
    for user in &mut config.auth_infos {
        user.auth_info = Some(kube::config::AuthInfo {
            token_file: token.as_ref().map(|t| t.to_string_lossy().into_owned()),
            ..Default::default()
        });
    }
    for context in config
        .contexts
        .iter_mut()
        .filter_map(|c| c.context.as_mut())
    {
        context.namespace = Some(spec.namespace.clone());
    }
    let path = dir.join("kubeconfig");
    let text = serde_json::to_vec(&config).map_err(|e| fail(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| fail(e.to_string()))?;
    Ok(path)
}

/// The kubelet's message for a container process that could not start.
fn start_error(name: &str, e: &std::io::Error) -> StartError {
    StartError(match e.kind() {
        ErrorKind::NotFound => format!(
            "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{name}\": executable file not found in $PATH: unknown"
        ),
        ErrorKind::PermissionDenied => format!(
            "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{name}\": permission denied: unknown"
        ),
        _ => format!("failed to start container process: {e}"),
    })
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
        let isolated = match self.isolation() {
            Isolation::MountNamespace => self.spawn_isolated(&spec, &dir, &message_file, &api)?,
            Isolation::PathMapping => None,
        };
        let mut child = match isolated {
            Some(child) => child,
            None => {
                self.isolate.store(false, Ordering::Relaxed);
                self.spawn_mapped(&spec, &dir, &message_file, &api)?
            }
        };
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
