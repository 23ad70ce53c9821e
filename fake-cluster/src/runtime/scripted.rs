//! The scripted runtime: containers run in-process, as async functions registered per image.
//! Works under tokio's paused time.
//!
//! Stopping a container (pod deletion, a Job's deadline) is what a container runtime does
//! with a process: the program is sent SIGTERM. A program that never traps it ends there,
//! as by the default disposition (exit code 143). A program that traps it
//! ([`ProgramContext::sigterm`]) is told, has the pod's `terminationGracePeriodSeconds` to
//! end with the exit it chooses, and is then killed (SIGKILL, exit code 137). Programs it
//! started ([`ProgramContext::spawn`]) get no SIGTERM, as only a container's first process
//! does, and are killed when the container ends.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWriteExt, DuplexStream};

use super::{
    ContainerSpec, Exit, Finished, OutputSink, PodApi, PullError, Runtime, StartError, StopSignal,
    image_id, is_valid_image_reference,
};

/// How a program ended.
pub type ProgramExit = Exit;

/// A program: an async function of its context.
pub type Program = Arc<dyn Fn(ProgramContext) -> BoxFuture<'static, ProgramExit> + Send + Sync>;

/// Files of a pod's volumes, shared by its containers: `(volume host path, relative path)`
/// to content. An entry may also hold an installed program.
#[derive(Default)]
struct PodFiles {
    files: Mutex<HashMap<String, FileEntry>>,
}

#[derive(Clone)]
enum FileEntry {
    Data(Bytes),
    Program(Program),
}

/// The programs of one image.
#[derive(Clone, Default)]
pub struct ScriptedImage {
    programs: BTreeMap<String, Program>,
}

impl ScriptedImage {
    /// An image with no programs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a program, found by its absolute path or, for a bare name, by that name (as a
    /// `PATH` lookup would).
    #[must_use]
    pub fn program<F, Fut>(mut self, path: &str, f: F) -> Self
    where
        F: Fn(ProgramContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ProgramExit> + Send + 'static,
    {
        let p: Program = Arc::new(move |ctx| Box::pin(f(ctx)));
        self.programs.insert(path.to_owned(), p);
        self
    }

    fn resolve(&self, name: &str) -> Option<Program> {
        if let Some(p) = self.programs.get(name) {
            return Some(p.clone());
        }
        if !name.contains('/') {
            // PATH lookup: any registered path whose file name matches.
            return self
                .programs
                .iter()
                .find(|(k, _)| k.rsplit('/').next() == Some(name))
                .map(|(_, p)| p.clone());
        }
        None
    }
}

/// What a running program sees: its argv, env, output, files, and the API.
pub struct ProgramContext {
    /// Arguments, `argv[0]` first.
    pub argv: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// The termination message file path in the container.
    pub termination_message_path: String,
    stdout: Writer,
    stderr: Writer,
    image: Arc<ScriptedImage>,
    files: Arc<PodFiles>,
    mounts: Vec<(String, String)>,
    self_program: Option<Program>,
    termination_message: Arc<Mutex<Option<Vec<u8>>>>,
    api: PodApi,
    /// How the container is stopped: `None` for a program started by another one (only
    /// the container's first process is sent SIGTERM).
    signals: Option<Signals>,
    /// Programs started in the container, killed when it ends.
    children: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

/// The SIGTERM side of a container's first program.
#[derive(Clone)]
struct Signals {
    stop: StopSignal,
    trapped: Arc<AtomicBool>,
    grace_period: Duration,
}

#[derive(Clone)]
enum Writer {
    Log(OutputSink, usize),
    Pipe(Arc<tokio::sync::Mutex<DuplexStream>>),
}

impl Writer {
    async fn write(&self, data: &[u8]) {
        match self {
            Self::Log(sink, stream) => sink.write(*stream, data),
            Self::Pipe(p) => {
                let _ = p.lock().await.write_all(data).await;
            }
        }
    }
}

/// A program started by another program of the same container.
pub struct ScriptedChild {
    /// Its standard output.
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// Its standard error.
    pub stderr: Pin<Box<dyn AsyncRead + Send>>,
    /// Resolves with its exit.
    pub wait: BoxFuture<'static, ProgramExit>,
}

impl ProgramContext {
    /// Traps SIGTERM, as a program installing a handler does: a stop no longer ends the
    /// program at once. The returned future resolves when the kubelet stops the container
    /// (pod deletion, a Job's deadline); the program then has [`ProgramContext::grace_period`]
    /// to end with the exit it chooses before it is killed (SIGKILL: exit code 137). For a
    /// program started by another one (which is sent no SIGTERM) it never resolves.
    ///
    /// ```
    /// use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
    /// use cmdreporter_fake_cluster::ScriptedImage;
    /// let image = ScriptedImage::new().program("/bin/server", |ctx: ProgramContext| async move {
    ///     let term = ctx.sigterm();
    ///     tokio::select! {
    ///         _ = term => Exit::Code(0), // a clean shutdown
    ///         _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => Exit::Code(1),
    ///     }
    /// });
    /// # let _ = image;
    /// ```
    pub fn sigterm(&self) -> BoxFuture<'static, ()> {
        match &self.signals {
            Some(signals) => {
                signals.trapped.store(true, Ordering::SeqCst);
                let mut stop = signals.stop.clone();
                Box::pin(async move { super::stopped(&mut stop).await })
            }
            None => Box::pin(std::future::pending()),
        }
    }

    /// The time between SIGTERM and SIGKILL when the container is stopped: the pod's
    /// `terminationGracePeriodSeconds` (30 s by default).
    pub fn grace_period(&self) -> Duration {
        self.signals
            .as_ref()
            .map_or(Duration::from_secs(30), |s| s.grace_period)
    }

    /// Writes to standard output.
    pub async fn write_stdout(&self, data: &[u8]) {
        self.stdout.write(data).await;
    }

    /// Writes to standard error.
    pub async fn write_stderr(&self, data: &[u8]) {
        self.stderr.write(data).await;
    }

    /// An API client built as a program in a real pod builds one (in-process): it sends
    /// the service account token mounted in the container, if any, and defaults to the
    /// pod's namespace. Without a mounted token it sends no credentials (anonymous).
    pub fn client(&self) -> kube::Client {
        let dir = crate::admission::SERVICE_ACCOUNT_DIR;
        let read = |f: &str| {
            self.read_file(&format!("{dir}/{f}"))
                .ok()
                .and_then(|b| String::from_utf8(b.to_vec()).ok())
        };
        let mut service = self.api.service.clone();
        if let Some(token) = read("token") {
            service = service.with_token(token.trim());
        }
        let namespace = read("namespace").unwrap_or_else(|| "default".into());
        kube::Client::new(service, namespace)
    }

    fn file_key(&self, path: &str) -> Option<String> {
        self.mounts.iter().find_map(|(mount, key)| {
            let rest = path.strip_prefix(mount.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{key}{rest}"))
        })
    }

    /// Writes a file; it must be under one of the container's volume mounts, or be the
    /// termination message path.
    pub fn write_file(&self, path: &str, data: &[u8]) -> io::Result<()> {
        if path == self.termination_message_path {
            *self
                .termination_message
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(data.to_vec());
            return Ok(());
        }
        let key = self.file_key(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ReadOnlyFilesystem,
                format!("{path}: read-only file system"),
            )
        })?;
        self.files
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, FileEntry::Data(Bytes::copy_from_slice(data)));
        Ok(())
    }

    /// Reads a file written under a volume mount.
    pub fn read_file(&self, path: &str) -> io::Result<Bytes> {
        let key = self
            .file_key(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        match self
            .files
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            Some(FileEntry::Data(b)) => Ok(b.clone()),
            Some(FileEntry::Program(_)) => Ok(Bytes::from_static(b"\x7fELF")),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// Copies the running program itself to `path` (as `cp /proc/self/exe path` would), so
    /// that another container of the pod can run it from a shared volume.
    pub fn install_self(&self, path: &str) -> io::Result<()> {
        let program = self
            .self_program
            .clone()
            .ok_or_else(|| io::Error::other("the running program has no executable to copy"))?;
        let key = self.file_key(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ReadOnlyFilesystem,
                format!("{path}: read-only file system"),
            )
        })?;
        self.files
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, FileEntry::Program(program));
        Ok(())
    }

    fn resolve(&self, name: &str) -> Option<Program> {
        if let Some(key) = self.file_key(name)
            && let Some(FileEntry::Program(p)) = self
                .files
                .files
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
        {
            return Some(p.clone());
        }
        self.image.resolve(name)
    }

    /// Starts another program of this container with its own stdout and stderr pipes.
    pub fn spawn(
        &self,
        argv: &[String],
        env: BTreeMap<String, String>,
    ) -> io::Result<ScriptedChild> {
        let name = argv
            .first()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let program = self
            .resolve(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name}: not found")))?;
        let (out_w, out_r) = tokio::io::duplex(64 * 1024);
        let (err_w, err_r) = tokio::io::duplex(64 * 1024);
        let ctx = ProgramContext {
            argv: argv.to_vec(),
            env,
            working_dir: self.working_dir.clone(),
            termination_message_path: self.termination_message_path.clone(),
            stdout: Writer::Pipe(Arc::new(tokio::sync::Mutex::new(out_w))),
            stderr: Writer::Pipe(Arc::new(tokio::sync::Mutex::new(err_w))),
            image: self.image.clone(),
            files: self.files.clone(),
            mounts: self.mounts.clone(),
            self_program: Some(program.clone()),
            termination_message: self.termination_message.clone(),
            api: self.api.clone(),
            signals: None,
            children: self.children.clone(),
        };
        // The pipes close when the program's context (and so its writers) is dropped.
        let fut = program(ctx);
        let handle = tokio::spawn(fut);
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle.abort_handle());
        Ok(ScriptedChild {
            stdout: Box::pin(out_r),
            stderr: Box::pin(err_r),
            wait: Box::pin(async move { handle.await.unwrap_or(Exit::Signal(9)) }),
        })
    }
}

/// An image as registered: its programs and its image ID (computed once, not per pull).
struct Registered {
    image: Arc<ScriptedImage>,
    id: String,
}

/// In-process container runtime: each image is a set of programs given by the test.
#[derive(Default)]
pub struct ScriptedRuntime {
    images: RwLock<HashMap<String, Registered>>,
    unpullable: RwLock<HashSet<String>>,
    pods: Mutex<HashMap<String, Arc<PodFiles>>>,
}

impl ScriptedRuntime {
    /// A runtime with no images.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers (or replaces) an image.
    pub fn image(&self, reference: &str, image: ScriptedImage) {
        self.images
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                reference.to_owned(),
                Registered {
                    image: Arc::new(image),
                    id: image_id(reference),
                },
            );
    }

    /// Makes pulls of this image fail (`ErrImagePull`).
    pub fn unpullable(&self, reference: &str) {
        self.unpullable
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reference.to_owned());
    }

    fn pod_files(&self, uid: &str) -> Arc<PodFiles> {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(uid.to_owned())
            .or_default()
            .clone()
    }
}

#[async_trait]
impl Runtime for ScriptedRuntime {
    async fn pull(&self, image: &str) -> Result<String, PullError> {
        if !is_valid_image_reference(image) {
            return Err(PullError::InvalidName(image.to_owned()));
        }
        let id = self
            .images
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(image)
            .map(|r| r.id.clone());
        let refused = self
            .unpullable
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(image);
        match id {
            Some(id) if !refused => Ok(id),
            _ => Err(PullError::NotFound(image.to_owned())),
        }
    }

    async fn run(
        &self,
        spec: ContainerSpec,
        output: OutputSink,
        mut stop: StopSignal,
        api: PodApi,
    ) -> Result<Finished, StartError> {
        let image = self
            .images
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&spec.image)
            .map(|r| r.image.clone())
            .ok_or_else(|| StartError(format!("image {} is not present", spec.image)))?;
        let files = self.pod_files(&spec.pod_uid);
        let termination_message = Arc::new(Mutex::new(None));
        let trapped = Arc::new(AtomicBool::new(false));
        let children = Arc::new(Mutex::new(Vec::new()));
        let mut ctx = ProgramContext {
            argv: spec.argv.clone(),
            env: spec.env.iter().cloned().collect(),
            working_dir: spec.working_dir.clone(),
            termination_message_path: spec.termination_message_path.clone(),
            stdout: Writer::Log(output.clone(), 0),
            stderr: Writer::Log(output.clone(), 1),
            image,
            files,
            mounts: spec
                .mounts
                .iter()
                .map(|m| {
                    (
                        m.mount_path.clone(),
                        m.host_path.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
            self_program: None,
            termination_message: termination_message.clone(),
            api,
            signals: Some(Signals {
                stop: stop.clone(),
                trapped: trapped.clone(),
                grace_period: spec.grace_period,
            }),
            children: children.clone(),
        };
        let name = spec.argv.first().cloned().unwrap_or_default();
        let program = ctx.resolve(&name).ok_or_else(|| {
            StartError(format!(
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{name}\": executable file not found in $PATH: unknown"
            ))
        })?;
        ctx.self_program = Some(program.clone());
        let mut run = program(ctx);
        let exit = tokio::select! {
            exit = &mut run => exit,
            _ = super::stopped(&mut stop) => {
                if trapped.load(Ordering::SeqCst) {
                    tokio::time::timeout(spec.grace_period, &mut run)
                        .await
                        .unwrap_or(Exit::Signal(9))
                } else {
                    Exit::Signal(15)
                }
            }
        };
        // The container ends with its first program: whatever it started is killed.
        drop(run);
        for child in children.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            child.abort();
        }
        let message = termination_message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        Ok(Finished {
            exit,
            termination_message: message,
        })
    }

    fn write_volume(
        &self,
        pod_uid: &str,
        dir: &std::path::Path,
        files: &[(String, Vec<u8>)],
    ) -> io::Result<()> {
        let pod = self.pod_files(pod_uid);
        let mut map = pod.files.lock().unwrap_or_else(|e| e.into_inner());
        for (rel, data) in files {
            let key = format!("{}/{rel}", dir.to_string_lossy());
            map.insert(key, FileEntry::Data(Bytes::copy_from_slice(data)));
        }
        Ok(())
    }

    fn forget_pod(&self, uid: &str) {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }
}
