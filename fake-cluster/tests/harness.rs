//! The operator authors' harness: YAML seeding (and its refusals before any request),
//! waits that end on the awaited change or at their deadline under paused time, and
//! request counts from the journal.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::harness::{self, HarnessError, RequestCounts};
use cmdreporter_fake_cluster::resources::well_known;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};

#[tokio::test(start_paused = true)]
async fn bad_yaml_creates_nothing_and_names_the_document_and_field() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    let before = cluster.store().object_count();
    let err = harness::seed_yaml(
        &cluster,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            HarnessError::MissingField {
                index: 1,
                field: "kind"
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "document 1: kind is required");
    let err = harness::seed_yaml(
        &cluster,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
    )
    .unwrap_err();
    assert!(
        matches!(&err, HarnessError::UnknownKind { index: 1, kind, .. } if kind == "Widget"),
        "{err}"
    );
    assert!(matches!(
        harness::seed_yaml(&cluster, "a: [b"),
        Err(HarnessError::Yaml(_))
    ));
    assert_eq!(cluster.store().object_count(), before, "nothing created");
    assert_eq!(cluster.journal().len(), 0, "no request sent");

    // A refusal of the server names its document.
    let err = harness::seed_yaml(
        &cluster,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, namespace: nowhere}\n",
    )
    .unwrap_err();
    match err {
        HarnessError::Api { index: 0, source } => assert_eq!(source.code, 404),
        other => panic!("{other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn seeded_objects_land_in_their_namespaces_and_waits_end_on_time() {
    let cluster = FakeCluster::builder().build().await.unwrap();
    let seeded = harness::seed_yaml(
        &cluster,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team}\ndata: {k: v}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n",
    )
    .unwrap();
    assert_eq!(seeded.len(), 3, "the empty document is skipped");
    assert!(
        cluster
            .store()
            .get(well_known::configmaps(), "team", "c")
            .is_ok()
    );
    assert!(
        cluster
            .store()
            .get(well_known::configmaps(), "default", "d")
            .is_ok()
    );

    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "team");
    let start = tokio::time::Instant::now();
    let err = harness::wait_for(&cms, "c", Duration::from_secs(30), |cm: &ConfigMap| {
        cm.data.as_ref().is_some_and(|d| d.contains_key("never"))
    })
    .await
    .unwrap_err();
    assert!(matches!(err, HarnessError::Timeout { .. }), "{err}");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "virtual time: the deadline exactly"
    );
    let found = harness::wait_for(&cms, "c", Duration::from_secs(30), |cm: &ConfigMap| {
        cm.data.as_ref().is_some_and(|d| d["k"] == "v")
    })
    .await
    .unwrap();
    assert_eq!(found.metadata.namespace.as_deref(), Some("team"));

    cms.delete("c", &DeleteParams::default()).await.unwrap();
    harness::wait_deleted(&cms, "c", Duration::from_secs(30))
        .await
        .unwrap();

    let counts = RequestCounts::of(cluster.journal());
    assert_eq!(counts.get("delete", "configmaps"), 1);
    assert!(counts.get("list", "configmaps") >= 3, "{counts:?}");
    assert_eq!(counts.on("configmaps"), counts.total(), "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fault_plan_attached_after_seeding_meets_only_later_requests() {
    use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
    let cluster = FakeCluster::builder().build().await.unwrap();
    harness::seed_yaml(
        &cluster,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seeded}\n",
    )
    .unwrap();
    let plan = FaultPlan::new(1).rule(Some("create"), Some("configmaps"), 1.0, Fault::Status(503));
    harness::attach_faults(&cluster, plan.clone()).unwrap();
    assert!(matches!(
        harness::attach_faults(&cluster, plan),
        Err(HarnessError::FaultsAttached)
    ));
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("later".into());
    let err = cms.create(&Default::default(), &cm).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 503),
        "the plan applies"
    );
    assert_eq!(cluster.injected_faults().len(), 1);
    assert!(cms.get("seeded").await.is_ok(), "seeding met no fault");
    assert_eq!(
        RequestCounts::of(cluster.journal()).get("create", "configmaps"),
        1
    );
}
