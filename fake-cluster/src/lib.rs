//! An in-memory Kubernetes for tests of kube-rs clients: an API server (in-process as a
//! `tower::Service`, or over HTTP on loopback), the Job controller, a garbage collector, a
//! scheduler and a kubelet that runs containers through a scripted or a process runtime.
//!
//! ```no_run
//! use cmdreporter_fake_cluster::FakeCluster;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = FakeCluster::builder().build().await?;
//! let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("hello".into());
//! cms.create(&PostParams::default(), &cm).await?;
//! assert_eq!(cluster.journal().len(), 1);
//! # Ok(())
//! # }
//! ```

pub mod admission;
pub mod api;
pub mod clock;
mod controllers;
pub mod conversion;
pub mod crd;
pub mod default_tolerations;
pub mod defaults;
mod delete;
pub mod discovery;
mod encoding;
pub mod env;
pub mod events;
pub mod faults;
pub mod field_sets;
pub mod field_validation;
pub mod fieldpath;
pub mod guide;
pub mod harness;
pub mod journal;
pub mod json;
pub mod kubelet;
pub mod logs;
pub mod managed_fields;
pub mod patch;
mod patch_request;
mod pod_log;
pub mod pod_security;
pub mod query;
pub mod rbac;
pub mod resources;
pub mod runtime;
pub mod selector;
pub mod server;
pub mod service;
pub mod status;
mod status_strategy;
pub mod store;
pub mod strategic;
pub mod table;
pub mod tls;
pub mod type_schema;
pub mod validation;
pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::json::json;

pub use api::{AdmissionCheck, ApiServer};
pub use clock::Clock;
pub use journal::{Journal, JournalEntry};
pub use runtime::{ProcessRuntime, Runtime, ScriptedImage, ScriptedRuntime};
pub use server::ServedCluster;
pub use service::FakeService;
pub use status::ApiError;
pub use store::Store;

use crate::kubelet::Kubelet;
use crate::logs::LogStore;
use crate::resources::well_known;
use crate::runtime::PodApi;

/// Errors starting the fake cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local resource (a temporary directory, a socket) could not be set up.
    #[error("fake cluster I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The cluster's CA or TLS configuration could not be created.
    #[error("fake cluster TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// A CustomResourceDefinition given to the builder was refused.
    #[error("fake cluster custom resource: {0}")]
    CustomResource(#[source] Box<ApiError>),
}

/// Namespaces present at start, as in a new cluster.
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Configures a [`FakeCluster`].
#[must_use]
pub struct Builder {
    seed: u64,
    history_limit: usize,
    runtime: Option<Arc<dyn Runtime>>,
    serve_for_pods: bool,
    max_log_bytes: usize,
    nodes: Vec<crate::json::Value>,
    faults: Option<faults::FaultPlan>,
    rbac: Option<String>,
    pod_security: bool,
    pod_security_exemptions: pod_security::Exemptions,
    crds: Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>,
}

impl Builder {
    /// The seed of uids, generated names and faults (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many changes the store keeps for watch resumption (default 4,096).
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = n.max(1);
        self
    }

    /// Runs containers in-process with this scripted runtime.
    pub fn scripted(mut self, runtime: Arc<ScriptedRuntime>) -> Self {
        self.runtime = Some(runtime);
        self.serve_for_pods = false;
        self
    }

    /// Runs containers as local processes; the cluster is then also served on loopback so
    /// that programs in pods can reach it.
    pub fn process(mut self, runtime: Arc<ProcessRuntime>) -> Self {
        self.runtime = Some(runtime);
        self.serve_for_pods = true;
        self
    }

    /// Adds a node besides the default `node-1`: a Node object as JSON (name, labels,
    /// `spec.taints`, `spec.unschedulable`). The scheduler places pods on nodes by name
    /// order; one kubelet runs the pods of every node.
    pub fn node(mut self, node: crate::json::Value) -> Self {
        self.nodes.push(node);
        self
    }

    /// Injects faults from this seeded plan into every API request (see [`faults`]).
    pub fn faults(mut self, plan: faults::FaultPlan) -> Self {
        self.faults = Some(plan);
        self
    }

    /// Turns authentication and RBAC authorization on (off by default; see [`rbac`]):
    /// requests need a token, and service accounts only get what Roles and ClusterRoles
    /// bound to them allow. [`FakeCluster::client`] stays the admin.
    pub fn rbac(mut self, on: bool) -> Self {
        self.rbac = on.then(|| rbac::ADMIN_TOKEN.to_owned());
        self
    }

    /// Turns authorization on (as [`Builder::rbac`]) with this admin token instead of
    /// [`rbac::ADMIN_TOKEN`].
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.rbac = Some(token.into());
        self
    }

    /// Whether Pod Security admission runs (default on, as in a real cluster): it only
    /// acts in namespaces labelled `pod-security.kubernetes.io/enforce` (see
    /// [`pod_security`]).
    pub fn pod_security(mut self, on: bool) -> Self {
        self.pod_security = on;
        self
    }

    /// Requests Pod Security admission leaves alone (by user, namespace or runtime class;
    /// none by default).
    pub fn pod_security_exemptions(mut self, exemptions: pod_security::Exemptions) -> Self {
        self.pod_security_exemptions = exemptions;
        self
    }

    /// Rotation size of container logs (default 10 MiB, as the kubelet's).
    pub fn max_log_bytes(mut self, n: usize) -> Self {
        self.max_log_bytes = n;
        self
    }

    /// Starts the cluster: the store with its initial namespaces, node and service
    /// accounts, the controllers and the kubelet. Must be called within a tokio runtime.
    pub async fn build(self) -> Result<FakeCluster, Error> {
        let clock = Clock::new();
        let store = Arc::new(Store::new(self.seed, self.history_limit, clock));
        let journal = Arc::new(Journal::default());
        let logs = LogStore::new(self.max_log_bytes);
        let api = Arc::new(ApiServer::new(store.clone(), journal.clone(), logs));
        if let Some(plan) = self.faults {
            let _ = api.faults.set(faults::Faults::new(plan));
        }
        let admin_token = self
            .rbac
            .clone()
            .unwrap_or_else(|| rbac::ADMIN_TOKEN.to_owned());
        if let Some(token) = self.rbac {
            let _ = api.rbac.set(rbac::Rbac::new(token));
        }
        let runtime = match self.runtime {
            Some(r) => r,
            None => ScriptedRuntime::new(),
        };
        let scratch = tempfile::Builder::new().prefix("fake-cluster-").tempdir()?;
        let mut served = None;
        let mut pod_env = BTreeMap::new();
        let mut root_ca = String::new();
        if self.serve_for_pods {
            // Over HTTPS with the cluster's CA, which every namespace's `kube-root-ca.crt`
            // holds, so in-cluster clients in pods trust it as in a real cluster.
            let ca = api.ca()?;
            root_ca = ca.ca_pem().to_owned();
            let s = server::serve_tls(
                api.clone(),
                "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
                ca,
            )
            .await?;
            let kubeconfig = scratch.path().join("pod-kubeconfig");
            s.write_kubeconfig(&kubeconfig)?;
            pod_env.insert("KUBERNETES_SERVICE_HOST".into(), s.addr().ip().to_string());
            pod_env.insert(
                "KUBERNETES_SERVICE_PORT".into(),
                s.addr().port().to_string(),
            );
            pod_env.insert(
                "KUBECONFIG".into(),
                kubeconfig.to_string_lossy().into_owned(),
            );
            served = Some(s);
        }
        let client = kube::Client::new(
            FakeService::new(api.clone()).with_token(&admin_token),
            "default",
        );
        let kubelet = Arc::new(Kubelet {
            api: api.clone(),
            runtime: runtime.clone(),
            pod_api: PodApi {
                client: client.clone(),
                service: FakeService::new(api.clone()),
                env: pod_env,
            },
            volumes_root: scratch.path().join("volumes"),
            lost_nodes: Default::default(),
        });
        api.add_admission(Arc::new(admission::ServiceAccountAdmission::new(
            store.clone(),
        )));
        api.add_admission(Arc::new(crd::TerminatingDefinitionCheck::new(
            store.clone(),
        )));
        api.add_admission(Arc::new(default_tolerations::DefaultTolerationSeconds));
        let pod_security = self.pod_security.then(|| {
            Arc::new(
                pod_security::PodSecurityAdmission::new(store.clone())
                    .with_exemptions(self.pod_security_exemptions),
            )
        });
        if let Some(p) = &pod_security {
            api.add_admission(p.clone());
        }
        let (stop_controllers, stop) = tokio::sync::oneshot::channel();
        controllers::Controllers::spawn(api.clone(), kubelet, root_ca.clone(), stop);
        for ns in INITIAL_NAMESPACES {
            create_namespace(&api, ns, &root_ca);
        }
        let _ = store.create(
            well_known::nodes(),
            "",
            json!({"metadata": {"name": controllers::NODE_NAME,
                "labels": {"kubernetes.io/hostname": controllers::NODE_NAME, "kubernetes.io/os": "linux"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        for mut node in self.nodes {
            let name = node
                .pointer("/metadata/name")
                .and_then(crate::json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            node["metadata"]["labels"]["kubernetes.io/hostname"] = json!(name);
            if node.pointer("/status/conditions").is_none() {
                node["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
            }
            if let Err(e) = store.create(well_known::nodes(), "", node) {
                tracing::warn!(%e, "node not created");
            }
        }
        for crd in &self.crds {
            let obj = crate::json::to_value(crd)
                .map_err(|e| Error::CustomResource(Box::new(ApiError::internal(e.to_string()))))?;
            api.create(well_known::crds(), "", obj)
                .map_err(|e| Error::CustomResource(Box::new(e)))?;
        }
        Ok(FakeCluster {
            _stop_controllers: stop_controllers,
            pod_security,
            api,
            client,
            runtime,
            served,
            root_ca,
            _scratch: scratch,
        })
    }
}

/// Creates a namespace with what every namespace has: the `default` service account and
/// the `kube-root-ca.crt` ConfigMap (its `ca.crt` is the PEM of the CA that pods trust).
fn create_namespace(api: &ApiServer, ns: &str, root_ca: &str) {
    let _ = api.store.create(
        well_known::namespaces(),
        "",
        // The store makes it Active with the `kubernetes` finalizer, as the namespace
        // strategy does.
        json!({"metadata": {"name": ns}}),
    );
    controllers::namespace_defaults::ensure(&api.store, ns, root_ca);
}

/// A running fake cluster. Dropping it stops serving.
pub struct FakeCluster {
    /// Dropped with the cluster: ends the controllers (which hold the store).
    _stop_controllers: tokio::sync::oneshot::Sender<()>,
    /// Pod Security admission, unless turned off.
    pod_security: Option<Arc<pod_security::PodSecurityAdmission>>,
    api: Arc<ApiServer>,
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    served: Option<ServedCluster>,
    /// The CA PEM in `kube-root-ca.crt` (empty unless pods reach a served cluster).
    root_ca: String,
    _scratch: tempfile::TempDir,
}

impl FakeCluster {
    /// A builder with the defaults: seed 0, the scripted runtime with no images.
    pub fn builder() -> Builder {
        Builder {
            seed: 0,
            history_limit: 4_096,
            runtime: None,
            serve_for_pods: false,
            max_log_bytes: logs::DEFAULT_MAX_LOG_BYTES,
            nodes: Vec::new(),
            faults: None,
            rbac: None,
            pod_security: true,
            pod_security_exemptions: pod_security::Exemptions::default(),
            crds: Vec::new(),
        }
    }

    /// A kube client talking to this cluster in-process (no sockets), default namespace
    /// `default`.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A kube client sending `Authorization: Bearer <token>` (in-process).
    pub fn client_with_token(&self, token: &str, namespace: &str) -> kube::Client {
        kube::Client::new(
            FakeService::new(self.api.clone()).with_token(token),
            namespace,
        )
    }

    /// A kube client acting as a service account, with the token the kubelet mounts for
    /// it (in-process); its default namespace is the account's.
    pub fn service_account_client(&self, namespace: &str, service_account: &str) -> kube::Client {
        self.client_with_token(
            &rbac::service_account_token(namespace, service_account),
            namespace,
        )
    }

    /// Every authorization decision so far (empty unless [`Builder::rbac`] is on).
    pub fn audit(&self) -> Vec<rbac::AuditEntry> {
        self.api
            .rbac
            .get()
            .map(rbac::Rbac::audit)
            .unwrap_or_default()
    }

    /// What Pod Security admission added to the audit log so far (see [`pod_security`]).
    pub fn pod_security_audit(&self) -> Vec<pod_security::AuditRecord> {
        self.pod_security
            .as_ref()
            .map(|p| p.audit())
            .unwrap_or_default()
    }

    /// The request handler and its state.
    pub fn api(&self) -> &Arc<ApiServer> {
        &self.api
    }

    /// The object store.
    pub fn store(&self) -> &Arc<Store> {
        &self.api.store
    }

    /// The journal of client requests.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.api.journal
    }

    /// The container runtime.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// Creates a namespace (with its default service account and `kube-root-ca.crt`).
    pub fn create_namespace(&self, ns: &str) {
        create_namespace(&self.api, ns, &self.root_ca);
    }

    /// Adds an admission check run on every create.
    pub fn add_admission(&self, check: Arc<dyn AdmissionCheck>) {
        self.api.add_admission(check);
    }

    /// Serves the cluster over HTTP on `addr` (use port 0 for any free port).
    pub async fn serve(&self, addr: std::net::SocketAddr) -> Result<ServedCluster, Error> {
        Ok(server::serve(self.api.clone(), addr).await?)
    }

    /// Serves the cluster over HTTPS on `addr` (port 0 for any free port), with a server
    /// certificate signed by the cluster's own CA (see [`FakeCluster::ca_pem`]). kube's
    /// in-cluster configuration speaks HTTPS only.
    pub async fn serve_https(&self, addr: std::net::SocketAddr) -> Result<ServedCluster, Error> {
        let ca = self.api.ca()?;
        Ok(server::serve_tls(self.api.clone(), addr, ca).await?)
    }

    /// The PEM of the cluster's CA (generated on first use), as pods mount it in `ca.crt`.
    pub fn ca_pem(&self) -> Result<String, Error> {
        Ok(self.api.ca()?.ca_pem().to_owned())
    }

    /// The faults injected so far by the builder's fault plan (empty without one).
    pub fn injected_faults(&self) -> Vec<faults::InjectedFault> {
        self.api
            .faults
            .get()
            .map(faults::Faults::injected)
            .unwrap_or_default()
    }

    /// The loopback HTTPS server that pods of the process runtime use, if any.
    pub fn pod_server(&self) -> Option<&ServedCluster> {
        self.served.as_ref()
    }

    /// A directory that lives as long as the cluster.
    pub fn scratch_dir(&self) -> PathBuf {
        self._scratch.path().to_path_buf()
    }
}
