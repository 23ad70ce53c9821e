//! A kube-runtime `Controller` over a `#[derive(CustomResource)]` type runs against the
//! fake: it reconciles on create and on update, owns the Jobs it creates (the fake's Job
//! controller runs them on the scripted runtime), writes the status subresource, and is
//! requeued by `Action::requeue` under paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use kube::{CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Run `/bin/app <arg>` once, as a Job.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Errand",
    namespaced,
    status = "ErrandStatus"
)]
pub struct ErrandSpec {
    arg: String,
}

/// What the controller reports.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrandStatus {
    job: Option<String>,
    phase: Option<String>,
    observed_generation: Option<i64>,
}

/// One call of `reconcile`, as the test sees it.
#[derive(Debug, Clone)]
struct Seen {
    generation: i64,
    resource_version: String,
    at: Instant,
}

struct Ctx {
    client: kube::Client,
    seen: mpsc::UnboundedSender<Seen>,
}

const REQUEUE: Duration = Duration::from_secs(300);

fn job_for(e: &Errand, name: &str) -> Job {
    let mut job: Job = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", e.spec.arg]}]}}}
    }))
    .unwrap();
    job.metadata.owner_references = Some(vec![e.controller_owner_ref(&()).unwrap()]);
    job
}

fn phase(job: &Job) -> &'static str {
    let conds = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let has = |t: &str| conds.iter().any(|c| c.type_ == t && c.status == "True");
    if has("Complete") {
        "Succeeded"
    } else if has("Failed") {
        "Failed"
    } else {
        "Running"
    }
}

async fn reconcile(e: Arc<Errand>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let generation = e.metadata.generation.unwrap_or_default();
    let _ = ctx.seen.send(Seen {
        generation,
        resource_version: e.resource_version().unwrap_or_default(),
        at: Instant::now(),
    });
    let ns = e.namespace().unwrap_or_default();
    let name = format!("{}-g{generation}", e.name_any());
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let job = match jobs.get_opt(&name).await? {
        Some(j) => j,
        None => {
            jobs.create(&PostParams::default(), &job_for(&e, &name))
                .await?
        }
    };
    let errands: Api<Errand> = Api::namespaced(ctx.client.clone(), &ns);
    let status =
        json!({"status": {"job": name, "phase": phase(&job), "observedGeneration": generation}});
    errands
        .patch_status(
            &e.name_any(),
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .await?;
    Ok(Action::requeue(REQUEUE))
}

fn error_policy(_: Arc<Errand>, _: &kube::Error, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

fn status_is(phase: &'static str, generation: i64) -> impl Fn(Option<&Errand>) -> bool {
    move |e| {
        e.and_then(|e| e.status.as_ref()).is_some_and(|s| {
            s.phase.as_deref() == Some(phase) && s.observed_generation == Some(generation)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_controller_over_a_derived_resource_reconciles_owns_jobs_writes_status_and_requeues() {
    let cluster = common::cluster().await;
    cluster.register::<Errand>().unwrap();
    let client = cluster.client();
    let errands: Api<Errand> = Api::default_namespaced(client.clone());
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let (tx, mut seen) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        seen: tx,
    });
    let controller = Controller::new(errands.clone(), watcher::Config::default())
        .owns(jobs.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    let controller = tokio::spawn(controller);

    // Create: reconciled, a Job owned by the errand runs and succeeds, status written.
    let created = errands
        .create(
            &PostParams::default(),
            &Errand::new("e1", ErrandSpec { arg: "0".into() }),
        )
        .await
        .unwrap();
    let first = seen.recv().await.unwrap();
    assert_eq!(first.generation, 1);
    let limit = Duration::from_secs(120);
    tokio::time::timeout(
        limit,
        await_condition(errands.clone(), "e1", status_is("Succeeded", 1)),
    )
    .await
    .expect("status written in time")
    .unwrap();
    let job = jobs.get("e1-g1").await.unwrap();
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("Errand", "e1", created.uid().unwrap().as_str(), Some(true))
    );
    assert_eq!(owner.api_version, "example.com/v1");
    let e1 = errands.get("e1").await.unwrap();
    assert_eq!(e1.status.as_ref().unwrap().job.as_deref(), Some("e1-g1"));
    assert_eq!(e1.spec.arg, "0", "status writes leave the spec alone");

    // Update: a new generation, reconciled into a new Job, which fails (exit 3).
    errands
        .patch(
            "e1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"arg": "3"}})),
        )
        .await
        .unwrap();
    tokio::time::timeout(
        limit,
        await_condition(errands.clone(), "e1", status_is("Failed", 2)),
    )
    .await
    .expect("second generation reconciled in time")
    .unwrap();
    assert_eq!(phase(&jobs.get("e1-g2").await.unwrap()), "Failed");
    let mut calls = vec![first];
    while let Ok(s) = seen.try_recv() {
        calls.push(s);
    }
    assert!(
        calls.iter().any(|s| s.generation == 2),
        "reconciled on update: {calls:?}"
    );

    // Nothing changes any more: the next call is the requeue, REQUEUE after the last one,
    // on the same resourceVersion.
    let settled = calls.last().unwrap().clone();
    let next = tokio::time::timeout(REQUEUE * 2, seen.recv())
        .await
        .expect("requeued")
        .unwrap();
    assert_eq!(
        next.resource_version, settled.resource_version,
        "no change caused it"
    );
    let waited = next.at - settled.at;
    assert!(
        waited >= REQUEUE && waited < REQUEUE + Duration::from_secs(1),
        "requeued after {waited:?}"
    );
    // The owned Jobs are the errand's dependents: deleting it takes them along.
    errands.delete("e1", &Default::default()).await.unwrap();
    common::wait_until(&cluster, limit, || {
        cluster
            .store()
            .list(
                cmdreporter_fake_cluster::resources::well_known::jobs(),
                Some("default"),
            )
            .0
            .is_empty()
    })
    .await;
    controller.abort();
}
