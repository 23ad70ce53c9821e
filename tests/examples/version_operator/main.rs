//! An operator on kube-runtime's `Controller` that asks container images which version they
//! report, without ever blocking a reconcile (Rook's version Job blocks a worker for up to
//! 15 minutes, runs on every reconcile and starts over after a restart).
//!
//! The custom resource `ImageVersion` (`examples.cmdreporter.io/v1alpha1`) names an image and
//! the command that prints its version; the controller answers in its status:
//!
//! - a new or changed spec: a cached answer for the same image and command is written at
//!   once (no Job); otherwise `JobRunner::start` creates the Job (owned by the resource) and
//!   the `RunKey` goes into `status.runKey`, phase `Running`;
//! - while a key is there: `JobRunner::poll` (at most two API requests), requeue while
//!   pending; the Job's own changes wake the controller too (`Controller::owns`);
//! - done: `status.version` (the first line the command printed) or `status.error` (the
//!   typed error's reason and message), phase `Ready` or `Failed`, the key removed.
//!
//! An operator restart loses nothing: the next controller finds the key in the status and
//! polls it; the Job is deleted once, by the runner that saw the run finish. A spec changed
//! mid-run gives the old run up (`JobRunner::cancel`: its Job is deleted) and starts anew.
//!
//! ```sh
//! cargo run --example version_operator              # bash --version, on the embedded fake cluster
//! cargo run --example version_operator -- IMAGE CMD  # another image and command
//! ```
//!
//! On the embedded fake cluster (process runtime) containers are local processes, so
//! `bash` is this machine's, and the reporter image's `/cmdreporter` is this example's own
//! executable (so `main` answers `report` and `install` as the `cmdreporter` binary does).
//! Its end-to-end tests (`e2e.rs` beside this file) run with the scripted runtime under
//! paused time:
//! `cargo test -p cmdreporter-tests --example version_operator`.

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_cli::{OsHost, courier_main};
use cmdreporter_configmap::ConfigMapChannel;
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_core::{JobRunner, Outcome, Request, RunKey, RunStatus};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Asks `image` for its version by running `command` in it.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "examples.cmdreporter.io",
    version = "v1alpha1",
    kind = "ImageVersion",
    namespaced,
    status = "ImageVersionStatus",
    shortname = "iv",
    printcolumn = r#"{"name": "Image", "type": "string", "jsonPath": ".spec.image"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Version", "type": "string", "jsonPath": ".status.version"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageVersionSpec {
    /// The image to ask.
    pub image: String,
    /// The command that prints the version, as argv (no shell).
    pub command: Vec<String>,
}

/// What the controller found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageVersionStatus {
    /// `Running`, `Ready` or `Failed`.
    pub phase: Option<String>,
    /// The run in flight, as `JobRunner::start` returned it.
    #[serde(default)]
    #[schemars(schema_with = "opaque_object")]
    pub run_key: Option<RunKey>,
    /// The first line the command printed.
    pub version: Option<String>,
    /// Why there is no version.
    pub error: Option<RunError>,
    /// The generation of the spec this status answers.
    pub observed_generation: Option<i64>,
}

/// A run's typed error, as the status shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunError {
    /// The error's kind, e.g. `ImagePull`, `Timeout`, `CommandFailed`.
    pub reason: String,
    /// What happened.
    pub message: String,
}

/// The `RunKey` is the library's to define: kept whole, not validated field by field.
fn opaque_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// What can stop a reconcile (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// An API request of the controller's own failed.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// Starting or polling a run failed for a reason worth retrying.
    #[error("run: {0}")]
    Run(#[from] cmdreporter_core::Error),
    /// The resource has no namespace (it is namespaced, so never on a real API server).
    #[error("ImageVersion {0} has no namespace")]
    NoNamespace(String),
}

/// The controller's shared state: one runner for all resources.
pub struct Operator {
    client: kube::Client,
    runner: JobRunner,
}

/// How long a pending run waits before the next poll (the Job's changes come sooner).
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// The timeout of one run.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// How long an answer is reused for the same image and command (forever when pinned by
/// digest).
pub const CACHE_TTL: Duration = Duration::from_secs(3600);

impl Operator {
    /// An operator using `client`, with the ConfigMap transport and a result cache.
    pub fn new(client: kube::Client) -> Self {
        let channel = Arc::new(ConfigMapChannel::new(client.clone()));
        Self {
            runner: JobRunner::new(client.clone(), channel).cache(CACHE_TTL),
            client,
        }
    }

    /// Waits for the runner's pending Job deletions.
    pub async fn shutdown(&self) {
        self.runner.shutdown().await;
    }
}

fn ready(outcome: &Outcome) -> ImageVersionStatus {
    let stdout = String::from_utf8_lossy(&outcome.stdout.data);
    let first = stdout.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(line) if outcome.exit.success() => ImageVersionStatus {
            phase: Some("Ready".into()),
            version: Some(line.to_owned()),
            ..ImageVersionStatus::default()
        },
        _ => {
            let stderr = String::from_utf8_lossy(&outcome.stderr.data);
            failed(RunError {
                reason: "CommandFailed".into(),
                message: format!(
                    "the command exited with {:?} and printed no version; stderr: {}",
                    outcome.exit,
                    stderr.trim()
                ),
            })
        }
    }
}

fn failed(error: RunError) -> ImageVersionStatus {
    ImageVersionStatus {
        phase: Some("Failed".into()),
        error: Some(error),
        ..ImageVersionStatus::default()
    }
}

fn typed(e: &cmdreporter_core::Error) -> RunError {
    RunError {
        reason: e.reason().into(),
        message: e.to_string(),
    }
}

fn request(iv: &ImageVersion, ns: &str) -> Request {
    let mut req = Request::new(&iv.spec.image, iv.spec.command.clone())
        .namespace(ns)
        .name("image-version")
        .timeout(RUN_TIMEOUT);
    if let Some(owner) = iv.controller_owner_ref(&()) {
        req = req.owner(owner, Some(ns.to_owned()));
    }
    req
}

async fn write_status(
    api: &Api<ImageVersion>,
    name: &str,
    mut status: ImageVersionStatus,
    generation: Option<i64>,
) -> Result<(), kube::Error> {
    status.observed_generation = generation;
    // A merge patch: the fields left `None` are removed.
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// One reconcile: never waits for a run.
pub async fn reconcile(iv: Arc<ImageVersion>, op: Arc<Operator>) -> Result<Action, OperatorError> {
    let name = iv.name_any();
    let ns = iv
        .namespace()
        .ok_or_else(|| OperatorError::NoNamespace(name.clone()))?;
    let api: Api<ImageVersion> = Api::namespaced(op.client.clone(), &ns);
    let generation = iv.metadata.generation;
    let answered = |s: &ImageVersionStatus| s.observed_generation == generation;
    let status = iv.status.clone().unwrap_or_default();
    if answered(&status) && status.run_key.is_none() && status.phase.is_some() {
        return Ok(Action::await_change());
    }
    // The cached object may be older than this controller's last status write (a Job's
    // event can wake it first): a run is started only after a fresh read says none is.
    let status = match (&status.run_key, answered(&status)) {
        (Some(_), true) => status,
        _ => api.get_status(&name).await?.status.unwrap_or_default(),
    };
    if let (Some(key), true) = (&status.run_key, answered(&status)) {
        return match op.runner.poll(key).await? {
            RunStatus::Pending(phase) => {
                tracing::debug!(%name, ?phase, "run pending");
                Ok(Action::requeue(POLL_EVERY))
            }
            RunStatus::Done(result) => {
                let status = match result.as_ref() {
                    Ok(outcome) => ready(outcome),
                    Err(e) => failed(typed(e)),
                };
                write_status(&api, &name, status, generation).await?;
                Ok(Action::await_change())
            }
        };
    }
    if answered(&status) && status.phase.is_some() {
        return Ok(Action::await_change());
    }
    // A run for an older spec is given up: its Job is deleted.
    if let Some(old) = &status.run_key {
        op.runner.cancel(old);
    }
    let req = request(&iv, &ns);
    if let Some(outcome) = op.runner.cached(&req) {
        write_status(&api, &name, ready(&outcome), generation).await?;
        return Ok(Action::await_change());
    }
    let key = match op.runner.start(req).await {
        Ok(key) => key,
        // Bad input is the resource's problem, not a reason to retry.
        Err(e @ cmdreporter_core::Error::InvalidRequest(_)) => {
            write_status(&api, &name, failed(typed(&e)), generation).await?;
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e.into()),
    };
    let running = ImageVersionStatus {
        phase: Some("Running".into()),
        run_key: Some(key),
        ..ImageVersionStatus::default()
    };
    write_status(&api, &name, running, generation).await?;
    Ok(Action::requeue(POLL_EVERY))
}

/// A failed reconcile is retried a little later.
pub fn error_policy(iv: Arc<ImageVersion>, e: &OperatorError, _op: Arc<Operator>) -> Action {
    tracing::warn!(name = %iv.name_any(), error = %e, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// Runs the controller for every `ImageVersion` in the cluster until the stream ends.
pub async fn run_controller(op: Arc<Operator>) {
    let client = op.client.clone();
    let jobs = Api::<Job>::all(client.clone());
    let managed = watcher::Config::default().labels(&format!(
        "{}={}",
        cmdreporter_core::job::MANAGED_BY_LABEL,
        cmdreporter_core::job::MANAGED_BY
    ));
    Controller::new(Api::<ImageVersion>::all(client), watcher::Config::default())
        .owns(jobs, managed)
        .run(reconcile, error_policy, op)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller");
            }
        })
        .await;
}

/// Creates the `ImageVersion` CustomResourceDefinition and waits until it is served.
pub async fn install_crd(client: &kube::Client) -> Result<(), Box<dyn std::error::Error>> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = ImageVersion::crd();
    let name = crd.name_any();
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let established = await_condition(crds, &name, conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established).await??;
    Ok(())
}

/// Whether the controller has answered.
pub fn is_answered(iv: Option<&ImageVersion>) -> bool {
    iv.and_then(|iv| iv.status.as_ref())
        .is_some_and(|s| s.run_key.is_none() && s.phase.is_some())
}

async fn demo(
    image: &str,
    command: Vec<String>,
) -> Result<ImageVersionStatus, Box<dyn std::error::Error>> {
    let cluster =
        cmdreporter_cli::cluster::start_fake(&[DEFAULT_REPORTER_IMAGE.into()], &[]).await?;
    let client = cluster.client();
    install_crd(&client).await?;
    let op = Arc::new(Operator::new(client.clone()));
    let controller = tokio::spawn(run_controller(op.clone()));
    let api: Api<ImageVersion> = Api::namespaced(client, "default");
    let iv = ImageVersion::new(
        "demo",
        ImageVersionSpec {
            image: image.to_owned(),
            command,
        },
    );
    api.create(&PostParams::default(), &iv).await?;
    let answered = await_condition(api, "demo", is_answered);
    let iv = tokio::time::timeout(RUN_TIMEOUT + Duration::from_secs(30), answered).await??;
    controller.abort();
    op.shutdown().await;
    Ok(iv.and_then(|iv| iv.status).unwrap_or_default())
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    // In the fake cluster's pods this executable is the courier.
    if matches!(argv.get(1).map(String::as_str), Some("report" | "install")) {
        std::process::exit(courier_main(&argv, &OsHost::new()).await);
    }
    let image = argv
        .get(1)
        .map_or("docker.io/library/bash:5.2", String::as_str);
    let command = match argv.get(2..) {
        Some(rest) if !rest.is_empty() => rest.to_vec(),
        _ => vec!["bash".into(), "--version".into()],
    };
    match demo(image, command).await {
        Ok(ImageVersionStatus {
            version: Some(v), ..
        }) => println!("{image}: {v}"),
        Ok(status) => {
            eprintln!("version_operator: no version: {:?}", status.error);
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("version_operator: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod e2e;
