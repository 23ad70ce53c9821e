//! The Job of one run: an init container installs the courier from the reporter image into
//! an emptyDir; the main container, in the target image, runs the courier, which runs the
//! command and reports.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, LocalObjectReference,
    ObjectFieldSelector, PodSpec, PodTemplateSpec, SeccompProfile, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::request::Request;

/// Label carrying the run id on the Job, its pod and the transport's objects.
pub const RUN_ID_LABEL: &str = "cmdreporter.io/run-id";
/// Label marking everything this library creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "cmdreporter";
/// Path of the `cmdreporter` binary in the reporter image.
pub const REPORTER_BINARY: &str = "/cmdreporter";
/// Where the init container installs the courier, in the shared emptyDir.
pub const INSTALL_DIR: &str = "/var/run/cmdreporter";
/// The installed courier.
pub const COURIER_PATH: &str = "/var/run/cmdreporter/cmdreporter";
/// Name of the init container.
pub const INIT_CONTAINER: &str = "install-reporter";
/// Name of the container running the command.
pub const MAIN_CONTAINER: &str = "cmd";
/// Name of the emptyDir holding the courier.
pub const BIN_VOLUME: &str = "cmdreporter-bin";

/// Environment variables the courier reads, filled by the downward API.
pub mod env {
    /// The Job's name.
    pub const JOB_NAME: &str = "CMDREPORTER_JOB_NAME";
    /// The Job's uid.
    pub const JOB_UID: &str = "CMDREPORTER_JOB_UID";
    /// The pod's uid.
    pub const POD_UID: &str = "CMDREPORTER_POD_UID";
    /// The pod's namespace.
    pub const NAMESPACE: &str = "CMDREPORTER_NAMESPACE";
    /// Where the courier writes its termination message (the container's
    /// `terminationMessagePath`).
    pub const TERMINATION_LOG: &str = "CMDREPORTER_TERMINATION_LOG";
}

/// The container's `terminationMessagePath` (the Kubernetes default).
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// What the transport needs of the courier and the pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CourierSpec {
    /// Arguments of `cmdreporter report` that select and configure the transport.
    pub args: Vec<String>,
    /// Extra environment of the courier.
    pub env: Vec<EnvVar>,
    /// Whether the pod needs a service account token (API access).
    pub needs_api_token: bool,
}

impl CourierSpec {
    /// The spec of a transport selected by `--transport NAME`, with no extra env.
    pub fn transport(name: &str, needs_api_token: bool) -> Self {
        Self {
            args: vec!["--transport".into(), name.into()],
            env: Vec::new(),
            needs_api_token,
        }
    }
}

/// How long after the timeout the TTL controller may delete a finished Job: far above any
/// timeout, so a report is never deleted before it is read; a safety net if the operator
/// dies.
pub fn ttl_seconds(req: &Request) -> i32 {
    let timeout = req.timeout.as_secs().max(1);
    i32::try_from(timeout.saturating_mul(2).saturating_add(3600)).unwrap_or(i32::MAX)
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The kubelet expands `$(VAR)` in command and args; `$$` keeps a `$` literal.
fn escape_expansion(arg: &str) -> String {
    arg.replace('$', "$$")
}

/// The restricted-PodSecurity container security context used by default.
pub fn restricted_security_context(run_as_non_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        run_as_non_root: run_as_non_root.then_some(true),
        ..Default::default()
    }
}

/// Builds the Job for a run.
pub fn build_job(req: &Request, run_id: &str, courier: &CourierSpec) -> Job {
    let name = req.job_name(run_id);
    let mut labels = req.labels.clone();
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels.insert(RUN_ID_LABEL.into(), run_id.into());
    let annotations = (!req.annotations.is_empty()).then(|| req.annotations.clone());
    let security = req
        .security_context
        .clone()
        .unwrap_or_else(|| restricted_security_context(req.run_as_non_root));
    let bin_mount = VolumeMount {
        name: BIN_VOLUME.into(),
        mount_path: INSTALL_DIR.into(),
        ..Default::default()
    };

    let mut command = vec![COURIER_PATH.to_owned(), "report".to_owned()];
    command.extend(courier.args.iter().cloned());
    command.extend(["--run-id".to_owned(), run_id.to_owned(), "--".to_owned()]);
    command.extend(req.argv.iter().map(|a| escape_expansion(a)));

    let mut env: Vec<EnvVar> = req
        .env
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(escape_expansion(v)),
            ..Default::default()
        })
        .collect();
    env.extend(courier.env.iter().cloned());
    env.push(field_env(
        env::JOB_NAME,
        "metadata.labels['batch.kubernetes.io/job-name']",
    ));
    env.push(field_env(
        env::JOB_UID,
        "metadata.labels['batch.kubernetes.io/controller-uid']",
    ));
    env.push(field_env(env::POD_UID, "metadata.uid"));
    env.push(field_env(env::NAMESPACE, "metadata.namespace"));
    env.push(EnvVar {
        name: env::TERMINATION_LOG.into(),
        value: Some(TERMINATION_MESSAGE_PATH.into()),
        ..Default::default()
    });

    let mut mounts = vec![bin_mount.clone()];
    mounts.extend(req.volume_mounts.iter().cloned());
    let mut volumes = vec![Volume {
        name: BIN_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }];
    volumes.extend(req.volumes.iter().cloned());

    let init = Container {
        name: INIT_CONTAINER.into(),
        image: Some(req.reporter_image.clone()),
        command: Some(vec![
            REPORTER_BINARY.into(),
            "install".into(),
            COURIER_PATH.into(),
        ]),
        volume_mounts: Some(vec![bin_mount]),
        security_context: Some(security.clone()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    let main = Container {
        name: MAIN_CONTAINER.into(),
        image: Some(req.image.clone()),
        command: Some(command),
        env: Some(env),
        working_dir: req.working_dir.clone(),
        image_pull_policy: req.image_pull_policy.clone(),
        resources: req.resources.clone(),
        volume_mounts: Some(mounts),
        security_context: Some(security),
        termination_message_path: Some(TERMINATION_MESSAGE_PATH.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    let pod_spec = PodSpec {
        restart_policy: Some("Never".into()),
        init_containers: Some(vec![init]),
        containers: vec![main],
        volumes: Some(volumes),
        automount_service_account_token: Some(courier.needs_api_token),
        service_account_name: req.service_account.clone(),
        node_selector: (!req.node_selector.is_empty()).then(|| req.node_selector.clone()),
        tolerations: (!req.tolerations.is_empty()).then(|| req.tolerations.clone()),
        affinity: req.affinity.clone(),
        priority_class_name: req.priority_class.clone(),
        image_pull_secrets: (!req.image_pull_secrets.is_empty()).then(|| {
            req.image_pull_secrets
                .iter()
                .map(|n| LocalObjectReference { name: n.clone() })
                .collect()
        }),
        host_network: req.host_network.then_some(true),
        ..Default::default()
    };
    let owners: Vec<_> = req.owners.iter().map(|o| o.reference.clone()).collect();
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(req.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: annotations.clone(),
            owner_references: (!owners.is_empty()).then_some(owners),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(
                i64::try_from(req.timeout.as_secs().max(1)).unwrap_or(i64::MAX),
            ),
            ttl_seconds_after_finished: Some(ttl_seconds(req)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations,
                    ..Default::default()
                }),
                spec: Some(pod_spec),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// Labels selecting the objects of one run.
pub fn run_selector(run_id: &str) -> String {
    format!("{RUN_ID_LABEL}={run_id}")
}

/// Every label this library puts on a run's objects.
pub fn run_labels(run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (RUN_ID_LABEL.to_owned(), run_id.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn job_runs_the_courier_once_and_escapes_expansion() {
        let req = Request::new("busybox", ["echo", "$(HOME)"]).timeout(Duration::from_secs(90));
        let courier = CourierSpec {
            args: vec!["--transport".into(), "configmap".into()],
            needs_api_token: true,
            ..Default::default()
        };
        let job = build_job(&req, "abc", &courier);
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(90));
        assert!(spec.ttl_seconds_after_finished.unwrap() > 90 + 3000);
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let cmd = pod.containers[0].command.clone().unwrap();
        assert_eq!(
            cmd,
            [
                COURIER_PATH,
                "report",
                "--transport",
                "configmap",
                "--run-id",
                "abc",
                "--",
                "echo",
                "$$(HOME)"
            ]
        );
        let sc = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            pod.containers[0].termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert_eq!(job.metadata.name.as_deref(), Some("cmdreporter-abc"));
    }

    #[test]
    fn the_reporter_image_is_the_default_unless_overridden() {
        let init_image = |req: &Request| {
            let job = build_job(req, "abc", &CourierSpec::default());
            let pod = job.spec.and_then(|s| s.template.spec).unwrap();
            pod.init_containers.unwrap()[0].image.clone().unwrap()
        };
        let req = Request::new("busybox", ["true"]);
        assert_eq!(
            init_image(&req),
            crate::reporter_image::DEFAULT_REPORTER_IMAGE
        );
        let pinned = "registry.example/cmdreporter:1.2.3@sha256:\
                      0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let req = req.reporter_image(pinned);
        assert!(req.validate().is_ok());
        assert_eq!(init_image(&req), pinned);
    }
}
