//! `cmdreporter rbac`: the least privileges a run needs, as Kubernetes YAML, for the
//! operator (the process that runs errands) and for the errand's pod (the courier).
//!
//! By default both sides get a Role in the one namespace the errands run in. With
//! `cluster_wide` (`--cluster-wide`), for an operator that runs errands in several
//! namespaces: the operator gets the same rules as a ClusterRole with a
//! ClusterRoleBinding; the courier's rules become a ClusterRole too, bound by a RoleBinding
//! in each errand namespace to that namespace's courier ServiceAccount (a pod can only use
//! an account of its own namespace, and a ClusterRoleBinding would let the account's
//! pods write ConfigMaps everywhere).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::transport::TransportError;

/// Options of `cmdreporter rbac`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbacOptions {
    /// `configmap` or `logs`.
    pub transport: String,
    /// The namespace the Jobs run in.
    pub namespace: String,
    /// The operator's service account.
    pub service_account: String,
    /// The service account of the errands' pods (configmap transport only).
    pub pod_service_account: String,
    /// ClusterRoles instead of Roles, for an operator working across namespaces.
    pub cluster_wide: bool,
    /// With `cluster_wide`: the namespaces errands run in, each given the courier's
    /// ServiceAccount and RoleBinding (empty: `namespace` only).
    pub errand_namespaces: Vec<String>,
}

/// One object `cmdreporter rbac` prints.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// A ServiceAccount.
    ServiceAccount(ServiceAccount),
    /// A Role.
    Role(Role),
    /// A RoleBinding.
    RoleBinding(RoleBinding),
    /// A ClusterRole.
    ClusterRole(ClusterRole),
    /// A ClusterRoleBinding.
    ClusterRoleBinding(ClusterRoleBinding),
}

impl Manifest {
    fn yaml(&self) -> Result<String, RbacError> {
        match self {
            Self::ServiceAccount(o) => yaml(o),
            Self::Role(o) => yaml(o),
            Self::RoleBinding(o) => yaml(o),
            Self::ClusterRole(o) => yaml(o),
            Self::ClusterRoleBinding(o) => yaml(o),
        }
    }
}

/// Why no RBAC could be printed.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The transport is unknown.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The YAML could not be written.
    #[error("cannot write YAML: {0}")]
    Yaml(String),
    /// A namespace is not a valid namespace name (a DNS-1123 label).
    #[error(
        "{field} {value:?} is not a valid namespace name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)"
    )]
    InvalidNamespace {
        /// The option that named it.
        field: &'static str,
        /// The value given.
        value: String,
    },
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks every namespace of `opts` before anything is rendered.
fn validate(opts: &RbacOptions) -> Result<(), RbacError> {
    let named = std::iter::once(("--namespace", &opts.namespace)).chain(
        opts.errand_namespaces
            .iter()
            .map(|n| ("--errand-namespace", n)),
    );
    for (field, value) in named {
        if !is_dns_label(value) {
            return Err(RbacError::InvalidNamespace {
                field,
                value: value.clone(),
            });
        }
    }
    Ok(())
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..Default::default()
    }
}

fn meta(name: &str, ns: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        labels: Some(
            [(
                "app.kubernetes.io/managed-by".to_owned(),
                "cmdreporter".to_owned(),
            )]
            .into(),
        ),
        ..Default::default()
    }
}

/// The operator side's rules for a transport: create, read back (after a lost response)
/// and delete Jobs; watch the Job's pod and its events (`run`), or list them
/// (`start`/`poll`); receive the report (a watch for `run`, a get for `poll`).
pub fn operator_rules(transport: &str) -> Result<Vec<PolicyRule>, TransportError> {
    let mut rules = vec![
        rule("batch", &["jobs"], &["create", "get", "delete"]),
        rule("", &["pods"], &["list", "watch"]),
        rule("", &["events"], &["list", "watch"]),
    ];
    match transport {
        "configmap" => rules.push(rule("", &["configmaps"], &["get", "watch"])),
        "logs" => rules.push(rule("", &["pods/log"], &["get"])),
        other => return Err(TransportError::Unknown(other.to_owned())),
    }
    Ok(rules)
}

/// The pod side's rules: the ConfigMap courier creates its report (and reads it back
/// after a lost response); the logs courier needs no API access at all.
pub fn pod_rules(transport: &str) -> Result<Vec<PolicyRule>, TransportError> {
    match transport {
        "configmap" => Ok(vec![rule("", &["configmaps"], &["create", "get"])]),
        "logs" => Ok(Vec::new()),
        other => Err(TransportError::Unknown(other.to_owned())),
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.to_owned(),
    }
}

fn account(name: &str, ns: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: name.to_owned(),
        namespace: Some(ns.to_owned()),
        ..Default::default()
    }
}

/// A RoleBinding in `ns` of the Role (or ClusterRole, by `kind`) `name` to `sa`.
fn binding(kind: &str, name: &str, ns: &str, sa: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta(name, ns),
        role_ref: role_ref(kind, name),
        subjects: Some(vec![account(sa, ns)]),
    }
}

fn cluster_meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: None,
        ..meta(name, "")
    }
}

fn service_account(name: &str, ns: &str) -> Manifest {
    Manifest::ServiceAccount(ServiceAccount {
        metadata: meta(name, ns),
        ..Default::default()
    })
}

const OPERATOR_ROLE: &str = "cmdreporter-operator";
const COURIER_ROLE: &str = "cmdreporter-courier";

/// The operator side's objects: its ServiceAccount, its Role or ClusterRole, the binding.
pub fn operator_objects(opts: &RbacOptions) -> Result<Vec<Manifest>, RbacError> {
    validate(opts)?;
    let ns = &opts.namespace;
    let rules = operator_rules(&opts.transport)?;
    let mut out = vec![service_account(&opts.service_account, ns)];
    if opts.cluster_wide {
        out.push(Manifest::ClusterRole(ClusterRole {
            metadata: cluster_meta(OPERATOR_ROLE),
            rules: Some(rules),
            ..Default::default()
        }));
        out.push(Manifest::ClusterRoleBinding(ClusterRoleBinding {
            metadata: cluster_meta(OPERATOR_ROLE),
            role_ref: role_ref("ClusterRole", OPERATOR_ROLE),
            subjects: Some(vec![account(&opts.service_account, ns)]),
        }));
    } else {
        out.push(Manifest::Role(Role {
            metadata: meta(OPERATOR_ROLE, ns),
            rules: Some(rules),
        }));
        out.push(Manifest::RoleBinding(binding(
            "Role",
            OPERATOR_ROLE,
            ns,
            &opts.service_account,
        )));
    }
    Ok(out)
}

/// The pod side's objects (none for the logs transport): per errand namespace the
/// courier's ServiceAccount and binding, and its Role (or one ClusterRole).
pub fn pod_objects(opts: &RbacOptions) -> Result<Vec<Manifest>, RbacError> {
    validate(opts)?;
    let rules = pod_rules(&opts.transport)?;
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let sa = &opts.pod_service_account;
    if !opts.cluster_wide {
        let ns = &opts.namespace;
        return Ok(vec![
            service_account(sa, ns),
            Manifest::Role(Role {
                metadata: meta(COURIER_ROLE, ns),
                rules: Some(rules),
            }),
            Manifest::RoleBinding(binding("Role", COURIER_ROLE, ns, sa)),
        ]);
    }
    let mut out = vec![Manifest::ClusterRole(ClusterRole {
        metadata: cluster_meta(COURIER_ROLE),
        rules: Some(rules),
        ..Default::default()
    })];
    let namespaces = if opts.errand_namespaces.is_empty() {
        std::slice::from_ref(&opts.namespace)
    } else {
        opts.errand_namespaces.as_slice()
    };
    for ns in namespaces {
        out.push(service_account(sa, ns));
        out.push(Manifest::RoleBinding(binding(
            "ClusterRole",
            COURIER_ROLE,
            ns,
            sa,
        )));
    }
    Ok(out)
}

fn yaml<T: serde::Serialize>(v: &T) -> Result<String, RbacError> {
    serde_saphyr::to_string(v).map_err(|e| RbacError::Yaml(e.to_string()))
}

fn documents(out: &mut String, objects: &[Manifest]) -> Result<(), RbacError> {
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&o.yaml()?);
    }
    Ok(())
}

/// The YAML documents (ServiceAccount, Role or ClusterRole, binding per side), with
/// comments.
///
/// ```
/// use cmdreporter_cli::rbac::{RbacOptions, render};
///
/// let yaml = render(&RbacOptions {
///     transport: "configmap".into(),
///     namespace: "rook-ceph".into(),
///     service_account: "rook-ceph-operator".into(),
///     pod_service_account: "cmdreporter-courier".into(),
///     cluster_wide: false,
///     errand_namespaces: Vec::new(),
/// }).unwrap();
/// assert!(yaml.contains("kind: RoleBinding"));
/// ```
pub fn render(opts: &RbacOptions) -> Result<String, RbacError> {
    let ns = &opts.namespace;
    let operator = operator_objects(opts)?;
    let pod = pod_objects(opts)?;
    let mut out = String::new();
    let scope = if opts.cluster_wide {
        "in every namespace".to_owned()
    } else {
        format!("in namespace {ns}")
    };
    out.push_str(&format!(
        "# Operator side ({} transport): the service account that runs errands {scope}.\n",
        opts.transport
    ));
    documents(&mut out, &operator)?;
    if pod.is_empty() {
        out.push_str(
            "# Pod side (logs transport): nothing. The courier prints its report to its own log\n\
             # and needs no API access; its pod runs with automountServiceAccountToken: false.\n",
        );
        return Ok(out);
    }
    out.push_str("---\n");
    out.push_str(&format!(
        "# Pod side ({} transport): the errand's pod creates its report ConfigMap.\n\
         # Run errands with this service account (Request::service_account, or\n\
         # `cmdreporter run --service-account {}`).\n",
        opts.transport, opts.pod_service_account
    ));
    documents(&mut out, &pod)?;
    Ok(out)
}
