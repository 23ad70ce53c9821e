//! The namespace `finalize` subresource through the real `kube::Client`, as the namespace
//! registry serves it (`FinalizeREST`, `namespaceFinalizeStrategy`,
//! `ValidateNamespaceFinalizeUpdate`): a PUT alone; it changes `spec.finalizers` and the
//! metadata, never the status; a finalizer name without a domain must be a standard one;
//! emptying `spec.finalizers` of a Terminating namespace deletes it at once
//! (`ShouldDeleteNamespaceDuringUpdate`), whatever content is left in it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::json::json;
use cmdreporter_fake_cluster::resources::well_known;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, PostParams};
use kube::core::Request;
use kube::discovery::{ApiCapabilities, Scope};

async fn finalize(c: &FakeCluster, ns: &Namespace) -> kube::Result<Namespace> {
    let body = serde_json::to_vec(ns).unwrap();
    let req = Request::new("/api/v1/namespaces")
        .replace_subresource(
            "finalize",
            ns.metadata.name.as_deref().unwrap(),
            &PostParams::default(),
            body,
        )
        .unwrap();
    c.client().request::<Namespace>(req).await
}

fn finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn finalize_empties_spec_finalizers_and_deletes_a_terminating_namespace() {
    let c = FakeCluster::builder().build().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(c.client());
    let created = namespaces
        .create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(json!({"metadata": {"name": "stuck"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(finalizers(&created), ["kubernetes"]);
    // Content held by a finalizer keeps the namespace Terminating.
    let cms: Api<ConfigMap> = Api::namespaced(c.client(), "stuck");
    cms.create(
        &PostParams::default(),
        &cmdreporter_fake_cluster::json::from_value(
            json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let terminating = namespaces
        .delete("stuck", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("held by its content");
    assert_eq!(
        terminating.status.as_ref().unwrap().phase.as_deref(),
        Some("Terminating")
    );

    // A name that is neither standard nor qualified: 422, nothing written.
    let mut bad = terminating.clone();
    bad.spec.as_mut().unwrap().finalizers = Some(vec!["kubernetes".into(), "mine".into()]);
    let err = finalize(&c, &bad).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "Namespace \"stuck\" is invalid: spec.finalizers[1]: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"
    );

    // Emptying spec.finalizers: the status sent is ignored, the namespace goes at once and
    // what was left in it stays.
    let mut body = terminating.clone();
    body.spec.as_mut().unwrap().finalizers = Some(vec![]);
    body.status.as_mut().unwrap().phase = Some("Active".into());
    let answer = finalize(&c, &body).await.unwrap();
    assert!(finalizers(&answer).is_empty());
    assert_eq!(
        answer.status.as_ref().unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert!(namespaces.get_opt("stuck").await.unwrap().is_none());
    assert!(
        c.store()
            .get(well_known::configmaps(), "stuck", "held")
            .is_ok()
    );
}

#[tokio::test]
async fn finalize_changes_an_active_namespace_and_takes_only_a_put() {
    let c = FakeCluster::builder().build().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(c.client());
    let created = namespaces
        .create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(json!({"metadata": {"name": "team"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = created.clone();
    body.spec.as_mut().unwrap().finalizers = Some(vec!["example.com/keep".into()]);
    body.metadata.labels = Some([("tier".to_owned(), "gold".to_owned())].into());
    let answer = finalize(&c, &body).await.unwrap();
    assert_eq!(finalizers(&answer), ["example.com/keep"]);
    assert_eq!(
        answer.metadata.labels.as_ref().unwrap()["tier"],
        "gold",
        "metadata goes through"
    );
    assert_eq!(
        answer.status.as_ref().unwrap().phase.as_deref(),
        Some("Active")
    );
    // The main resource's update keeps spec.finalizers: only finalize changes them.
    let mut put = answer.clone();
    put.spec.as_mut().unwrap().finalizers = Some(vec![]);
    let kept = namespaces
        .replace("team", &PostParams::default(), &put)
        .await
        .unwrap();
    assert_eq!(finalizers(&kept), ["example.com/keep"]);
    // No GET of it.
    let req = http::Request::get("/api/v1/namespaces/team/finalize")
        .body(Vec::new())
        .unwrap();
    let err = c.client().request::<Namespace>(req).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 405);
    // Discovery names it with its one verb.
    let (res, caps): (_, ApiCapabilities) = kube::discovery::pinned_kind(
        &c.client(),
        &kube::api::GroupVersionKind::gvk("", "v1", "Namespace"),
    )
    .await
    .unwrap();
    assert_eq!(res.plural, "namespaces");
    assert_eq!(caps.scope, Scope::Cluster);
    let sub = caps
        .subresources
        .iter()
        .find(|(r, _)| r.plural == "finalize")
        .map(|(_, c)| c.operations.clone());
    assert_eq!(sub, Some(vec!["update".to_owned()]));
}

/// The namespace controller's conditions on a Terminating namespace
/// (`ProcessContentTotals`, `updateConditions`): what is left and which finalizers hold it,
/// updated as content goes.
#[tokio::test]
async fn a_terminating_namespace_says_what_content_and_finalizers_remain() {
    let c = FakeCluster::builder().build().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(c.client());
    namespaces
        .create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(json!({"metadata": {"name": "held"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.client(), "held");
    for (name, fin) in [
        ("a", "example.com/a"),
        ("b", "example.com/a"),
        ("c", "example.com/c"),
    ] {
        cms.create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(
                json!({"metadata": {"name": name, "finalizers": [fin]}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    }
    namespaces
        .delete("held", &DeleteParams::default())
        .await
        .unwrap();
    let conditions = |ns: &Namespace| -> Vec<(String, String, String, String)> {
        ns.status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                (
                    c.type_,
                    c.status,
                    c.reason.unwrap_or_default(),
                    c.message.unwrap_or_default(),
                )
            })
            .collect()
    };
    let ok =
        |t: &str, r: &str, m: &str| (t.to_owned(), "False".to_owned(), r.to_owned(), m.to_owned());
    let first = namespaces.get("held").await.unwrap();
    let head = vec![
        ok(
            "NamespaceDeletionDiscoveryFailure",
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        ok(
            "NamespaceDeletionGroupVersionParsingFailure",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        ok(
            "NamespaceDeletionContentFailure",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
    ];
    let mut want = head.clone();
    want.push((
        "NamespaceContentRemaining".into(),
        "True".into(),
        "SomeResourcesRemain".into(),
        "Some resources are remaining: configmaps. has 3 resource instances".into(),
    ));
    want.push((
        "NamespaceFinalizersRemaining".into(),
        "True".into(),
        "SomeFinalizersRemain".into(),
        "Some content in the namespace has finalizers remaining: example.com/a in 2 resource instances, example.com/c in 1 resource instances".into(),
    ));
    assert_eq!(conditions(&first), want);
    // One object goes: the counts follow.
    cms.patch(
        "c",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let second = namespaces.get("held").await.unwrap();
    let now = conditions(&second);
    assert_eq!(
        now[3].3,
        "Some resources are remaining: configmaps. has 2 resource instances"
    );
    assert_eq!(
        now[4].3,
        "Some content in the namespace has finalizers remaining: example.com/a in 2 resource instances"
    );
    // The last ones go: so does the namespace.
    for name in ["a", "b"] {
        cms.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    }
    assert!(namespaces.get_opt("held").await.unwrap().is_none());
}
