//! What to run, where and how: the [`Request`] builder and its validation.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::error::InvalidRequest;

/// Length of the run id appended to the base name.
pub const RUN_ID_LEN: usize = 10;

/// The reporter image used when the request names none (pinned by digest in a release;
/// see [`reporter_image`](crate::reporter_image)).
pub use crate::reporter_image::DEFAULT_REPORTER_IMAGE;

/// The longest base name: the Job name `<name>-<run id>` must fit in 63 characters.
pub const MAX_NAME_LEN: usize = 63 - 1 - RUN_ID_LEN;

/// An owner of the Job, with the namespace the owner lives in (`None`: cluster-scoped).
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    /// The reference written into the Job.
    pub reference: OwnerReference,
    /// The owner's namespace, `None` for a cluster-scoped owner.
    pub namespace: Option<String>,
}

/// A command to run in a container image. Build it, then hand it to a
/// [`Runner`](crate::Runner).
///
/// ```
/// use std::time::Duration;
/// use cmdreporter_core::Request;
///
/// let req = Request::new("quay.io/ceph/ceph:v18", ["ceph", "--version"])
///     .namespace("rook-ceph")
///     .name("ceph-version")
///     .timeout(Duration::from_secs(120));
/// assert!(req.validate().is_ok());
/// assert!(Request::new("busybox", Vec::<String>::new()).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Request {
    /// The image the command runs in.
    pub image: String,
    /// The command and its arguments (no shell involved).
    pub argv: Vec<String>,
    /// Namespace of the Job.
    pub namespace: String,
    /// Base name of the Job; the run id is appended.
    pub name: String,
    /// How long the whole run may take.
    pub timeout: Duration,
    /// The image holding the `cmdreporter` binary.
    pub reporter_image: String,
    /// Environment of the command.
    pub env: Vec<(String, String)>,
    /// Working directory of the command.
    pub working_dir: Option<String>,
    /// `imagePullPolicy` of the target container.
    pub image_pull_policy: Option<String>,
    /// Service account of the pod.
    pub service_account: Option<String>,
    /// Node selector of the pod.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the pod.
    pub tolerations: Vec<Toleration>,
    /// Affinity of the pod.
    pub affinity: Option<Affinity>,
    /// Priority class of the pod.
    pub priority_class: Option<String>,
    /// Resources of the target container.
    pub resources: Option<ResourceRequirements>,
    /// Image pull secrets (names).
    pub image_pull_secrets: Vec<String>,
    /// Extra volumes of the pod.
    pub volumes: Vec<Volume>,
    /// Extra mounts of the target container.
    pub volume_mounts: Vec<VolumeMount>,
    /// Labels of the Job and its pod.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the Job and its pod.
    pub annotations: BTreeMap<String, String>,
    /// Owners of the Job.
    pub owners: Vec<Owner>,
    /// Whether the pod uses the host's network.
    pub host_network: bool,
    /// Overrides the default restricted security context of the containers.
    pub security_context: Option<SecurityContext>,
    /// Sets `runAsNonRoot: true` on the containers (needed for the `restricted` Pod
    /// Security level; many images run as root, so it is off by default).
    pub run_as_non_root: bool,
}

impl Request {
    /// A request to run `argv` in `image`, with the defaults: namespace `default`, name
    /// `cmdreporter`, timeout five minutes.
    pub fn new<I, S>(image: impl Into<String>, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            image: image.into(),
            argv: argv.into_iter().map(Into::into).collect(),
            namespace: "default".into(),
            name: "cmdreporter".into(),
            timeout: Duration::from_secs(300),
            reporter_image: DEFAULT_REPORTER_IMAGE.into(),
            env: Vec::new(),
            working_dir: None,
            image_pull_policy: None,
            service_account: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            priority_class: None,
            resources: None,
            image_pull_secrets: Vec::new(),
            volumes: Vec::new(),
            volume_mounts: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            owners: Vec::new(),
            host_network: false,
            security_context: None,
            run_as_non_root: false,
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Sets the base name of the Job.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the timeout of the whole run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the reporter image.
    pub fn reporter_image(mut self, image: impl Into<String>) -> Self {
        self.reporter_image = image.into();
        self
    }

    /// Adds an environment variable of the command.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets the working directory.
    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// Sets the target container's `imagePullPolicy` (`Always`, `IfNotPresent`, `Never`).
    pub fn image_pull_policy(mut self, policy: impl Into<String>) -> Self {
        self.image_pull_policy = Some(policy.into());
        self
    }

    /// Sets the pod's service account.
    pub fn service_account(mut self, sa: impl Into<String>) -> Self {
        self.service_account = Some(sa.into());
        self
    }

    /// Adds a node selector entry.
    pub fn node_selector(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.node_selector.insert(key.into(), value.into());
        self
    }

    /// Adds a toleration.
    pub fn toleration(mut self, t: Toleration) -> Self {
        self.tolerations.push(t);
        self
    }

    /// Sets the pod's affinity.
    pub fn affinity(mut self, a: Affinity) -> Self {
        self.affinity = Some(a);
        self
    }

    /// Sets the priority class.
    pub fn priority_class(mut self, name: impl Into<String>) -> Self {
        self.priority_class = Some(name.into());
        self
    }

    /// Sets the target container's resources.
    pub fn resources(mut self, r: ResourceRequirements) -> Self {
        self.resources = Some(r);
        self
    }

    /// Adds an image pull secret.
    pub fn image_pull_secret(mut self, name: impl Into<String>) -> Self {
        self.image_pull_secrets.push(name.into());
        self
    }

    /// Adds a volume to the pod and mounts it in the target container.
    pub fn volume(mut self, volume: Volume, mount: VolumeMount) -> Self {
        self.volumes.push(volume);
        self.volume_mounts.push(mount);
        self
    }

    /// Adds a label to the Job and its pod.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds an annotation to the Job and its pod.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Adds an owner of the Job; `namespace` is the owner's (`None` when cluster-scoped).
    pub fn owner(mut self, reference: OwnerReference, namespace: Option<String>) -> Self {
        self.owners.push(Owner {
            reference,
            namespace,
        });
        self
    }

    /// Uses the host's network.
    pub fn host_network(mut self, on: bool) -> Self {
        self.host_network = on;
        self
    }

    /// Replaces the default security context of the containers.
    pub fn security_context(mut self, sc: SecurityContext) -> Self {
        self.security_context = Some(sc);
        self
    }

    /// Sets `runAsNonRoot: true` on the containers.
    pub fn run_as_non_root(mut self, on: bool) -> Self {
        self.run_as_non_root = on;
        self
    }

    /// The Job's name for a run id.
    pub fn job_name(&self, run_id: &str) -> String {
        format!("{}-{run_id}", self.name)
    }

    /// Checks every rule that the API server or the garbage collector would otherwise
    /// enforce later, or that would make the run meaningless.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        let bad = |field: &str, problem: String| {
            Err(InvalidRequest {
                field: field.to_owned(),
                problem,
            })
        };
        if self.name.is_empty() {
            return bad("name", "must not be empty".into());
        }
        if self.name.len() > MAX_NAME_LEN {
            return bad(
                "name",
                format!(
                    "{:?} is {} characters; the Job name <name>-<run id> is also a label value, so the name may have at most {MAX_NAME_LEN}",
                    self.name,
                    self.name.len()
                ),
            );
        }
        if !is_dns1123_label(&self.job_name(&"a".repeat(RUN_ID_LEN))) {
            return bad(
                "name",
                format!(
                    "{:?} must consist of lowercase alphanumerics and '-', starting with an alphanumeric",
                    self.name
                ),
            );
        }
        if !is_dns1123_label(&self.namespace) {
            return bad(
                "namespace",
                format!(
                    "{:?} is not a valid namespace name (a DNS-1123 label)",
                    self.namespace
                ),
            );
        }
        match self.argv.first() {
            None => return bad("argv", "must not be empty".into()),
            Some(a) if a.is_empty() => return bad("argv[0]", "must not be empty".into()),
            _ => {}
        }
        if !is_image_reference(&self.image) {
            return bad(
                "image",
                format!("{:?} is not a well-formed image reference", self.image),
            );
        }
        if !is_image_reference(&self.reporter_image) {
            return bad(
                "reporter_image",
                format!(
                    "{:?} is not a well-formed image reference",
                    self.reporter_image
                ),
            );
        }
        if self.timeout.is_zero() {
            return bad("timeout", "must be above zero".into());
        }
        for (i, (k, _)) in self.env.iter().enumerate() {
            if !is_env_name(k) {
                return bad(
                    &format!("env[{i}].name"),
                    format!("{k:?} is not a valid environment variable name"),
                );
            }
        }
        if let Some(p) = &self.image_pull_policy
            && !matches!(p.as_str(), "Always" | "IfNotPresent" | "Never")
        {
            return bad(
                "image_pull_policy",
                format!("{p:?} is not one of Always, IfNotPresent, Never"),
            );
        }
        for (k, v) in &self.labels {
            if !is_label_value(v) {
                return bad(
                    &format!("labels[{k}]"),
                    format!("{v:?} is not a valid label value"),
                );
            }
        }
        for (i, o) in self.owners.iter().enumerate() {
            if let Some(ns) = &o.namespace
                && *ns != self.namespace
            {
                return bad(
                    &format!("owners[{i}].namespace"),
                    format!(
                        "owner {}/{} is in namespace {ns:?}, not {:?}: the garbage collector would delete the Job at once",
                        o.reference.kind, o.reference.name, self.namespace
                    ),
                );
            }
            if o.reference.uid.is_empty() || o.reference.name.is_empty() {
                return bad(&format!("owners[{i}]"), "uid and name must be set".into());
            }
        }
        Ok(())
    }
}

/// Whether `s` is a DNS-1123 label.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `image` is a well-formed reference: `[host[:port]/]path[:tag][@algo:hex]`.
pub fn is_image_reference(image: &str) -> bool {
    if image.is_empty() || image.bytes().any(|b| b.is_ascii_whitespace()) {
        return false;
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty() && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !ok {
            return false;
        }
    }
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return false;
        }
    }
    let first = path.split('/').next().unwrap_or_default();
    let skip = usize::from(
        path.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost"),
    );
    let components: Vec<&str> = path.split('/').skip(skip).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Request) -> String {
        r.validate().unwrap_err().field
    }

    #[test]
    fn every_rule_names_its_field() {
        let ok = Request::new("busybox", ["true"]);
        assert!(ok.validate().is_ok());
        assert_eq!(field(ok.clone().name("")), "name");
        assert_eq!(field(ok.clone().name("a".repeat(MAX_NAME_LEN + 1))), "name");
        assert!(ok.clone().name("a".repeat(MAX_NAME_LEN)).validate().is_ok());
        assert_eq!(field(ok.clone().name("Bad_Name")), "name");
        assert_eq!(field(ok.clone().namespace("a.b")), "namespace");
        assert_eq!(field(Request::new("busybox", Vec::<String>::new())), "argv");
        assert_eq!(field(Request::new("busybox", [""])), "argv[0]");
        assert_eq!(field(Request::new("Busy Box", ["true"])), "image");
        assert_eq!(
            field(ok.clone().reporter_image("x@sha256:zz")),
            "reporter_image"
        );
        assert_eq!(field(ok.clone().timeout(Duration::ZERO)), "timeout");
        assert_eq!(field(ok.clone().env("1X", "y")), "env[0].name");
        assert_eq!(
            field(ok.clone().image_pull_policy("Sometimes")),
            "image_pull_policy"
        );
        assert_eq!(field(ok.clone().label("a", "-x")), "labels[a]");
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "o".into(),
            uid: "u".into(),
            ..Default::default()
        };
        assert_eq!(
            field(ok.clone().owner(owner.clone(), Some("other".into()))),
            "owners[0].namespace"
        );
        assert!(
            ok.clone()
                .owner(owner.clone(), Some("default".into()))
                .validate()
                .is_ok()
        );
        assert!(ok.owner(owner, None).validate().is_ok());
    }
}
