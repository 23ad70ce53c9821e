//! `cmdreporter rbac`: the least privileges a run needs, as Kubernetes YAML, for the
//! operator (the process that runs errands) and for the errand's pod (the courier).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
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

fn binding(name: &str, ns: &str, sa: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta(name, ns),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: sa.to_owned(),
            namespace: Some(ns.to_owned()),
            ..Default::default()
        }]),
    }
}

fn yaml<T: serde::Serialize>(v: &T) -> Result<String, RbacError> {
    serde_saphyr::to_string(v).map_err(|e| RbacError::Yaml(e.to_string()))
}

/// The YAML documents (ServiceAccount, Role, RoleBinding per side), with comments.
///
/// ```
/// use cmdreporter_cli::rbac::{RbacOptions, render};
///
/// let yaml = render(&RbacOptions {
///     transport: "configmap".into(),
///     namespace: "rook-ceph".into(),
///     service_account: "rook-ceph-operator".into(),
///     pod_service_account: "cmdreporter-courier".into(),
/// }).unwrap();
/// assert!(yaml.contains("kind: RoleBinding"));
/// ```
pub fn render(opts: &RbacOptions) -> Result<String, RbacError> {
    let ns = &opts.namespace;
    let operator_rules = operator_rules(&opts.transport)?;
    let pod_rules = pod_rules(&opts.transport)?;
    let mut out = String::new();
    let op_role = "cmdreporter-operator";
    out.push_str(&format!(
        "# Operator side ({} transport): the service account that runs errands in namespace {ns}.\n",
        opts.transport
    ));
    out.push_str(&yaml(&ServiceAccount {
        metadata: meta(&opts.service_account, ns),
        ..Default::default()
    })?);
    out.push_str("---\n");
    out.push_str(&yaml(&Role {
        metadata: meta(op_role, ns),
        rules: Some(operator_rules),
    })?);
    out.push_str("---\n");
    out.push_str(&yaml(&binding(op_role, ns, &opts.service_account))?);
    if pod_rules.is_empty() {
        out.push_str(
            "# Pod side (logs transport): nothing. The courier prints its report to its own log\n\
             # and needs no API access; its pod runs with automountServiceAccountToken: false.\n",
        );
        return Ok(out);
    }
    let pod_role = "cmdreporter-courier";
    out.push_str("---\n");
    out.push_str(&format!(
        "# Pod side ({} transport): the errand's pod creates its report ConfigMap.\n\
         # Run errands with this service account (Request::service_account, or\n\
         # `cmdreporter run --service-account {}`).\n",
        opts.transport, opts.pod_service_account
    ));
    out.push_str(&yaml(&ServiceAccount {
        metadata: meta(&opts.pod_service_account, ns),
        ..Default::default()
    })?);
    out.push_str("---\n");
    out.push_str(&yaml(&Role {
        metadata: meta(pod_role, ns),
        rules: Some(pod_rules),
    })?);
    out.push_str("---\n");
    out.push_str(&yaml(&binding(pod_role, ns, &opts.pod_service_account))?);
    Ok(out)
}
