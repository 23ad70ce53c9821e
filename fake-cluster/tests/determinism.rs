#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The same seed and the same requests give the same journal, uids and generated names.

use cmdreporter_fake_cluster::{FakeCluster, JournalEntry};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// A fixed script of requests; returns the journal and every uid and name it saw.
async fn script(seed: u64) -> (Vec<JournalEntry>, Vec<String>) {
    let c = FakeCluster::builder().seed(seed).build().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let secrets: Api<Secret> = Api::default_namespaced(c.client());
    let pp = PostParams::default();
    let mut seen = Vec::new();
    for i in 0..5 {
        let obj: ConfigMap = serde_json::from_value(
            json!({"metadata": {"generateName": "run-", "labels": {"i": i.to_string()}}}),
        )
        .unwrap();
        let created = cms.create(&pp, &obj).await.unwrap();
        let name = created.metadata.name.unwrap();
        // The generated name goes into the next request's path, hence into the journal.
        cms.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": i.to_string()}})),
        )
        .await
        .unwrap();
        seen.push(name);
        seen.push(created.metadata.uid.unwrap());
    }
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    seen.push(secrets.create(&pp, &s).await.unwrap().metadata.uid.unwrap());
    let _ = secrets.create(&pp, &s).await.unwrap_err();
    let list = cms
        .list(&ListParams::default().labels("i in (1,3)"))
        .await
        .unwrap();
    seen.extend(list.items.into_iter().map(|i| i.metadata.name.unwrap()));
    cms.delete(&seen[0], &DeleteParams::default())
        .await
        .unwrap();
    (c.journal().entries(), seen)
}

#[tokio::test]
async fn the_same_seed_and_requests_give_the_same_journal() {
    let (journal_a, seen_a) = script(42).await;
    let (journal_b, seen_b) = script(42).await;
    assert_eq!(journal_a.len(), 14);
    assert_eq!(journal_a, journal_b);
    assert_eq!(seen_a, seen_b);
    let (journal_c, seen_c) = script(43).await;
    assert_ne!(seen_a, seen_c, "another seed draws other uids and names");
    assert_ne!(journal_a, journal_c);
}
