//! Pod Security admission (`staging/src/k8s.io/pod-security-admission`), run on every
//! create of a pod, from clients and the Job controller alike, and of a workload resource
//! with a pod template (Jobs among them). On by default, as in a real cluster (see
//! [`crate::Builder::pod_security`]); it acts by the namespace labels
//! `pod-security.kubernetes.io/enforce`, `warn` and `audit` (with their `-version` labels,
//! `latest` by default) with `baseline` or `restricted` (an unknown value counts as
//! `restricted`, `privileged` allows everything). An unset `warn` takes the `enforce` level
//! when that is stricter, as the real plugin defaults it.
//!
//! - enforce: a pod that breaks the level is refused with 403 Forbidden and the real message:
//!   `pods "x" is forbidden: violates PodSecurity "restricted:latest": <check> (<detail>),
//!   ...`, the checks in the order of their ids. Workload resources are never refused.
//! - warn: the create is answered with the header `Warning: 299 - "would violate
//!   PodSecurity \"restricted:latest\": <check> (<detail>), ..."`, for pods and for workload
//!   resources (so `kubectl apply` of a Job that breaks the enforced level prints it).
//! - audit: the same text is recorded as the `pod-security.kubernetes.io/audit-violations`
//!   annotation of the request's audit event ([`crate::FakeCluster::pod_security_audit`]).
//! - exemptions ([`Exemptions`], [`crate::Builder::pod_security_exemptions`]): by user,
//!   namespace or runtime class; an exempt request is checked by no mode and recorded with
//!   `pod-security.kubernetes.io/exempt`.
//!
//! Checks: host namespaces, privileged, non-default
//! capabilities, hostPath volumes, host ports, Unconfined seccomp (baseline); and, for
//! `restricted`, allowPrivilegeEscalation, capabilities (drop `ALL`, add only
//! `NET_BIND_SERVICE`), volume types, runAsNonRoot, runAsUser=0 and a seccomp profile of
//! `RuntimeDefault` or `Localhost`.

use std::sync::{Arc, Mutex};

use crate::json::{Value, json};

use crate::api::AdmissionCheck;
use crate::resources::{ResourceDef, well_known};
use crate::selector::at;
use crate::status::ApiError;
use crate::store::{Store, meta_str};

mod checks;

pub use checks::violations;

/// The namespace label naming the enforced level.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The namespace label naming the version of the enforced level.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

/// The namespace label naming the level whose violations are returned as warnings.
pub const WARN_LABEL: &str = "pod-security.kubernetes.io/warn";
/// The namespace label naming the version of the warn level.
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";
/// The namespace label naming the level whose violations are recorded for the audit log.
pub const AUDIT_LABEL: &str = "pod-security.kubernetes.io/audit";
/// The namespace label naming the version of the audit level.
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
/// The audit annotation holding an audit-level violation.
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";
/// The audit annotation naming why a request was exempt.
pub const EXEMPT_ANNOTATION: &str = "pod-security.kubernetes.io/exempt";

/// Requests Pod Security leaves alone, as the `exemptions` of its admission configuration:
/// by the requesting user's name (known only with authentication on, see
/// [`crate::Builder::rbac`]; pods a controller creates are the controller's), by namespace,
/// or by the pod's `runtimeClassName`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Exemptions {
    usernames: Vec<String>,
    namespaces: Vec<String>,
    runtime_classes: Vec<String>,
}

impl Exemptions {
    /// Exempts requests of this user (for example `system:serviceaccount:ns:sa`).
    pub fn username(mut self, name: impl Into<String>) -> Self {
        self.usernames.push(name.into());
        self
    }

    /// Exempts this namespace.
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        self.namespaces.push(name.into());
        self
    }

    /// Exempts pods with this `runtimeClassName`.
    pub fn runtime_class(mut self, name: impl Into<String>) -> Self {
        self.runtime_classes.push(name.into());
        self
    }
}

/// An annotation Pod Security added to the audit event of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Resource plural of the object (`pods`, `jobs`).
    pub resource: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name (or `generateName`).
    pub name: String,
    /// The annotation: [`AUDIT_VIOLATIONS_ANNOTATION`] with `would violate PodSecurity
    /// "<level>:<version>": <violations>`, or [`EXEMPT_ANNOTATION`] with the reason.
    pub annotation: (String, String),
}

/// The Pod Security admission plugin.
pub struct PodSecurityAdmission {
    store: Arc<Store>,
    exemptions: Exemptions,
    audit: Mutex<Vec<AuditRecord>>,
}

impl PodSecurityAdmission {
    /// The plugin, reading namespace labels from `store`, exempting nothing.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            exemptions: Exemptions::default(),
            audit: Mutex::new(Vec::new()),
        }
    }

    /// The plugin with these exemptions.
    #[must_use]
    pub fn with_exemptions(mut self, exemptions: Exemptions) -> Self {
        self.exemptions = exemptions;
        self
    }

    /// What it added to the audit log so far, in order.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.audit.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A mode's level and version, from the namespace's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mode {
    /// 0 privileged, 1 baseline, 2 restricted.
    level: u8,
    version: String,
}

impl Mode {
    fn name(&self) -> &'static str {
        match self.level {
            0 => "privileged",
            1 => "baseline",
            _ => "restricted",
        }
    }
}

/// The enforce, warn and audit modes of a namespace (`api.PolicyToEvaluate`): an unset
/// warn level takes the enforce level when that is stricter.
fn modes(labels: &crate::json::Map) -> [Option<Mode>; 3] {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let mode = |level: &str, version: &str| {
        get(level).map(|l| Mode {
            level: match l {
                "privileged" => 0,
                "baseline" => 1,
                _ => 2,
            },
            version: get(version).unwrap_or("latest").to_owned(),
        })
    };
    let enforce = mode(ENFORCE_LABEL, ENFORCE_VERSION_LABEL);
    let mut warn = mode(WARN_LABEL, WARN_VERSION_LABEL);
    if warn.is_none()
        && let Some(e) = enforce.as_ref().filter(|e| e.level > 0)
    {
        warn = Some(Mode {
            level: e.level,
            version: get(WARN_VERSION_LABEL).unwrap_or(&e.version).to_owned(),
        });
    }
    [enforce, warn, mode(AUDIT_LABEL, AUDIT_VERSION_LABEL)]
}

/// The pod spec and metadata of an object Pod Security looks at: a pod, or the template of
/// a workload resource (whose pods it only warns and audits about).
fn pod_of<'a>(def: &ResourceDef, obj: &'a Value) -> Option<(&'a Value, &'a Value, bool)> {
    if def == well_known::pods() {
        return Some((obj.get("spec")?, obj.get("metadata")?, true));
    }
    let template = match def.plural.as_str() {
        "jobs"
        | "deployments"
        | "replicasets"
        | "statefulsets"
        | "daemonsets"
        | "replicationcontrollers" => at(obj, "/spec/template")?,
        "cronjobs" => at(obj, "/spec/jobTemplate/spec/template")?,
        "podtemplates" => obj.get("template")?,
        _ => return None,
    };
    Some((
        template.get("spec")?,
        template.get("metadata").unwrap_or(&Value::Null),
        false,
    ))
}

impl PodSecurityAdmission {
    fn record(&self, def: &ResourceDef, namespace: &str, obj: &Value, key: &str, value: String) {
        let name = meta_str(obj, "name")
            .filter(|n| !n.is_empty())
            .or_else(|| meta_str(obj, "generateName"))
            .unwrap_or_default()
            .to_owned();
        self.audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(AuditRecord {
                resource: def.plural.clone(),
                namespace: namespace.to_owned(),
                name,
                annotation: (key.to_owned(), value),
            });
    }

    /// Why a request is exempt (`namespace`, `user`, `runtimeClass`), if it is.
    fn exemption(&self, namespace: &str, user: Option<&str>, spec: &Value) -> Option<&'static str> {
        let e = &self.exemptions;
        if e.namespaces.iter().any(|n| n == namespace) {
            return Some("namespace");
        }
        if user.is_some_and(|u| e.usernames.iter().any(|x| x == u)) {
            return Some("user");
        }
        let class = spec.get("runtimeClassName").and_then(Value::as_str);
        if class.is_some_and(|c| e.runtime_classes.iter().any(|x| x == c)) {
            return Some("runtimeClass");
        }
        None
    }
}

impl AdmissionCheck for PodSecurityAdmission {
    fn admit(&self, def: &ResourceDef, namespace: &str, obj: &mut Value) -> Result<(), ApiError> {
        self.admit_as(def, namespace, obj, None).map(|_| ())
    }

    fn admit_as(
        &self,
        def: &ResourceDef,
        namespace: &str,
        obj: &mut Value,
        user: Option<&str>,
    ) -> Result<Vec<String>, ApiError> {
        let Some((spec, _meta, is_pod)) = pod_of(def, obj) else {
            return Ok(Vec::new());
        };
        let Some(ns) = self.store.lookup(well_known::namespaces(), "", namespace) else {
            return Ok(Vec::new());
        };
        let labels = at(&ns, "/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let [enforce, warn, audit] = modes(&labels);
        if [&enforce, &warn, &audit]
            .iter()
            .all(|m| m.as_ref().is_none_or(|m| m.level == 0))
        {
            return Ok(Vec::new());
        }
        if let Some(why) = self.exemption(namespace, user, spec) {
            self.record(def, namespace, obj, EXEMPT_ANNOTATION, why.to_owned());
            return Ok(Vec::new());
        }
        let judge = |m: &Option<Mode>| -> Option<(String, String)> {
            let m = m.as_ref().filter(|m| m.level > 0)?;
            let found = violations(spec, m.level == 2);
            (!found.is_empty()).then(|| {
                let reasons: Vec<String> =
                    found.iter().map(|(r, d)| format!("{r} ({d})")).collect();
                (format!("{}:{}", m.name(), m.version), reasons.join(", "))
            })
        };
        if is_pod && let Some((policy, detail)) = judge(&enforce) {
            if let Some((apolicy, adetail)) = judge(&audit) {
                let v = format!("would violate PodSecurity \"{apolicy}\": {adetail}");
                self.record(def, namespace, obj, AUDIT_VIOLATIONS_ANNOTATION, v);
            }
            // Validating admission sees the generated name (`AdmissionToValidateObjectFunc`).
            let name = match meta_str(obj, "name") {
                Some(n) if !n.is_empty() => n.to_owned(),
                _ => format!(
                    "{}{}",
                    meta_str(obj, "generateName").unwrap_or_default(),
                    self.store.random_suffix()
                ),
            };
            let mut e = ApiError::new(
                403,
                "Forbidden",
                format!(
                    "pods \"{name}\" is forbidden: violates PodSecurity \"{policy}\": {detail}"
                ),
            );
            e.details = Some(json!({"name": name, "kind": "pods"}));
            return Err(e);
        }
        if let Some((policy, detail)) = judge(&audit) {
            let v = format!("would violate PodSecurity \"{policy}\": {detail}");
            self.record(def, namespace, obj, AUDIT_VIOLATIONS_ANNOTATION, v);
        }
        Ok(judge(&warn)
            .map(|(policy, detail)| format!("would violate PodSecurity \"{policy}\": {detail}"))
            .into_iter()
            .collect())
    }
}
