#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Store and API semantics through the real `kube::Client`: metadata, generation,
//! preconditions, delete answers, finalizers, Job propagation, paged lists, events in two
//! versions, and unknown paths.

use cmdreporter_fake_cluster::FakeCluster;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::response::StatusSummary;
use serde_json::json;

async fn cluster() -> FakeCluster {
    FakeCluster::builder().seed(1).build().await.unwrap()
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "x"}},
        "data": {"k": "v"}}))
    .unwrap()
}

fn job(name: &str) -> Job {
    serde_json::from_value(
        json!({"metadata": {"name": name}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1"}]}}}}),
    )
    .unwrap()
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_fills_metadata_and_resource_versions_are_global() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let a = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let b = cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    let rv = |o: &ConfigMap| {
        o.metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(rv(&b), rv(&a) + 1, "one counter for the whole store");
    assert_eq!(a.metadata.uid.as_ref().unwrap().len(), 36);
    assert!(a.metadata.creation_timestamp.is_some());
    assert_eq!(a.metadata.generation, None, "ConfigMaps have no generation");
    let list = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        rv(&b)
    );
    let mut gen_name = cm("");
    gen_name.metadata.name = None;
    gen_name.metadata.generate_name = Some("gen-".into());
    let g = cms.create(&PostParams::default(), &gen_name).await.unwrap();
    let name = g.metadata.name.unwrap();
    assert_eq!(name.len(), "gen-".len() + 5);
    assert!(
        name[4..]
            .chars()
            .all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch))
    );

    let missing: Api<ConfigMap> = Api::namespaced(c.client(), "nowhere");
    let e = api_error(
        missing
            .create(&PostParams::default(), &cm("a"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "namespaces \"nowhere\" not found");
    let e = api_error(
        cms.create(&PostParams::default(), &cm("a"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "configmaps \"a\" already exists");
}

#[tokio::test]
async fn generation_moves_on_spec_changes_only() {
    let c = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(c.client());
    let j = jobs
        .create(&PostParams::default(), &job("j"))
        .await
        .unwrap();
    assert_eq!(j.metadata.generation, Some(1));
    let labelled = jobs
        .patch(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata is not spec"
    );
    assert_ne!(
        labelled.metadata.resource_version,
        j.metadata.resource_version
    );
    let status = jobs
        .patch_status(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(1), "status is not spec");
    assert_eq!(status.status.unwrap().active, Some(1));
    let spec = jobs
        .patch(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"activeDeadlineSeconds": 30}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
    // A write that changes nothing keeps the resourceVersion (a ConfigMap: the Job
    // controller is writing the Job's status meanwhile).
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let a = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let same = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert_eq!(same.metadata.resource_version, a.metadata.resource_version);
}

#[tokio::test]
async fn stale_writes_conflict_with_the_real_wording() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let first = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut newer = first.clone();
    newer.data = Some([("k".to_owned(), "2".to_owned())].into());
    cms.replace("a", &PostParams::default(), &newer)
        .await
        .unwrap();
    let e = api_error(
        cms.replace("a", &PostParams::default(), &newer)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // A patch naming a stale resourceVersion is a precondition too.
    let p = json!({"metadata": {"resourceVersion": first.metadata.resource_version}, "data": {"k": "3"}});
    let e = api_error(
        cms.patch("a", &PatchParams::default(), &Patch::Merge(p))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    // A JSON patch with a failing test operation changes nothing.
    let ops = json!([
        {"op": "test", "path": "/data/k", "value": "nope"},
        {"op": "replace", "path": "/data/k", "value": "4"}]);
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/a")
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&ops).unwrap())
        .unwrap();
    let resp = c.client().send(req.map(Into::into)).await.unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["k"], "2");
    // Delete preconditions.
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let e = api_error(cms.delete("a", &dp).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert!(e.message.starts_with("Operation cannot be fulfilled on configmaps \"a\": Precondition failed: UID in precondition: other"), "{}", e.message);
    let e = api_error(
        cms.replace("zzz", &PostParams::default(), &cm("zzz"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "configmaps \"zzz\" not found")
    );
}

#[tokio::test]
async fn delete_answers_status_or_object_per_resource() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let status = cms.delete("a", &DeleteParams::default()).await.unwrap();
    let status = status.right().expect("a ConfigMap delete answers a Status");
    assert_eq!(status.status, Some(StatusSummary::Success));
    let d = status.details.unwrap();
    assert_eq!((d.name.as_str(), d.kind.as_str()), ("a", "configmaps"));
    // Jobs too, when nothing keeps them (Background).
    let jobs: Api<Job> = Api::default_namespaced(c.client());
    jobs.create(&PostParams::default(), &job("j"))
        .await
        .unwrap();
    let gone = jobs.delete("j", &DeleteParams::background()).await.unwrap();
    let status = gone
        .right()
        .expect("a Job deleted at once answers a Status");
    assert_eq!(status.details.unwrap().group, "batch");
    // Pods answer with the object (an unbound pod goes at once).
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
        "spec": {"nodeName": null, "schedulerName": "none", "containers": [{"name": "c", "image": "busybox:1"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let deleted = pods
        .delete("p", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let pod = deleted.left().expect("a Pod delete answers the Pod");
    assert_eq!(pod.metadata.name.as_deref(), Some("p"));
    // A pod is deleted gracefully even with a zero grace period: marked, then removed.
    assert!(pod.metadata.deletion_timestamp.is_some());
    assert_eq!(pod.metadata.deletion_grace_period_seconds, Some(0));
    // A ServiceAccount answers with the object as it was stored: nothing is written before
    // an immediate delete, so no deletionTimestamp. A dry run answers it at the version of
    // its last write (it reads the object, deletes nothing); a delete answers it at the
    // deletion's resourceVersion, the one of its DELETED watch event, as the real server's
    // storage decodes the removed object at the delete's revision (kubernetes#113369, 1.26).
    let sas: Api<ServiceAccount> = Api::default_namespaced(c.client());
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    let stored = sas.create(&PostParams::default(), &sa).await.unwrap();
    let stored_rv = stored.metadata.resource_version.clone().unwrap();
    let dry = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    let answer = sas.delete("s", &dry).await.unwrap().left().unwrap();
    assert_eq!(
        answer.metadata.resource_version.as_deref(),
        Some(&*stored_rv)
    );
    assert_eq!(answer.metadata.deletion_timestamp, None);
    let mut events = sas
        .watch(
            &kube::api::WatchParams::default().fields("metadata.name=s"),
            &stored_rv,
        )
        .await
        .unwrap()
        .boxed();
    let answer = sas.delete("s", &DeleteParams::default()).await.unwrap();
    let answer = answer
        .left()
        .expect("a ServiceAccount delete answers the object");
    assert_eq!(answer.metadata.deletion_timestamp, None);
    assert_eq!(answer.metadata.uid, stored.metadata.uid);
    let deleted = match events.try_next().await.unwrap() {
        Some(kube::api::WatchEvent::Deleted(sa)) => sa,
        other => panic!("expected the DELETED event, got {other:?}"),
    };
    assert_ne!(
        answer.metadata.resource_version.as_deref(),
        Some(&*stored_rv)
    );
    assert_eq!(
        answer.metadata.resource_version,
        deleted.metadata.resource_version
    );
    assert_eq!(api_error(sas.get("s").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn finalizers_keep_a_deleted_object_terminating() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let mut obj = cm("f");
    obj.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &obj).await.unwrap();
    let held = cms.delete("f", &DeleteParams::default()).await.unwrap();
    let held = held.left().expect("a held object is returned");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.deletion_grace_period_seconds, Some(0));
    // Still readable, and no new finalizer may be added.
    let mut more = cms.get("f").await.unwrap();
    more.metadata.finalizers = Some(vec!["example.com/hold".into(), "example.com/more".into()]);
    let e = api_error(
        cms.replace("f", &PostParams::default(), &more)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        e.message
    );
    // Removing the last finalizer removes the object.
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let e = api_error(cms.get("f").await.unwrap_err());
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn jobs_orphan_their_pods_by_default_with_the_warning() {
    let c = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(c.client());
    jobs.create(&PostParams::default(), &job("j"))
        .await
        .unwrap();
    let req = http::Request::delete("/apis/batch/v1/namespaces/default/jobs/j")
        .body(Vec::new())
        .unwrap();
    let resp = c.client().send(req.map(Into::into)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["warning"],
        "299 - \"child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning\""
    );
    // The Job was returned, terminating, holding the orphan finalizer.
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let returned: Job = serde_json::from_slice(&body).unwrap();
    assert!(returned.metadata.deletion_timestamp.is_some());
    assert_eq!(
        returned.metadata.finalizers,
        Some(vec!["orphan".to_owned()])
    );
    // An explicit policy sends no warning.
    jobs.create(&PostParams::default(), &job("k"))
        .await
        .unwrap();
    let req = http::Request::delete(
        "/apis/batch/v1/namespaces/default/jobs/k?propagationPolicy=Background",
    )
    .body(Vec::new())
    .unwrap();
    let resp = c.client().send(req.map(Into::into)).await.unwrap();
    assert!(resp.headers().get("warning").is_none());
}

/// DeleteOptions are validated as the real handler's `ValidateDeleteOptions` does, before
/// anything is deleted: both `orphanDependents` and `propagationPolicy`, or a policy that is
/// none of the three, is 422 naming `DeleteOptions.meta.k8s.io ""`.
#[tokio::test]
async fn delete_options_that_contradict_or_are_unknown_are_invalid() {
    let c = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(c.client());
    jobs.create(&PostParams::default(), &job("j"))
        .await
        .unwrap();
    let client = c.client();
    let delete = |body: serde_json::Value| {
        let req = http::Request::delete("/apis/batch/v1/namespaces/default/jobs/j")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        client.request_text(req)
    };
    let e = api_error(
        delete(json!({"orphanDependents": true, "propagationPolicy": "Foreground"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Foreground\": orphanDependents and deletionPropagation cannot be both set"
    );
    let details = e.details.unwrap();
    assert_eq!(
        (details.group.as_str(), details.kind.as_str()),
        ("meta.k8s.io", "DeleteOptions")
    );
    assert_eq!(details.causes[0].field, "propagationPolicy");
    let e = api_error(
        delete(json!({"orphanDependents": false, "propagationPolicy": "Sideways"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "DeleteOptions.meta.k8s.io \"\" is invalid: [propagationPolicy: Invalid value: \"Sideways\": orphanDependents and deletionPropagation cannot be both set, propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\"]"
    );
    // Nothing was deleted; either option alone is taken.
    let kept = jobs.get("j").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_none());
    delete(json!({"orphanDependents": false})).await.unwrap();
    assert_eq!(api_error(jobs.get("j").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("p{i}")))
            .await
            .unwrap();
    }
    let lp = ListParams::default().labels("app=x").limit(2);
    let first = cms.list(&lp).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().unwrap();
    let second = cms.list(&lp.clone().continue_token(&token)).await.unwrap();
    let third = cms
        .list(
            &lp.clone()
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(third.items.len(), 1);
    assert_eq!(third.metadata.continue_, None);
    let names: Vec<String> = [first, second, third]
        .into_iter()
        .flat_map(|l| l.items)
        .map(|i| i.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"]);
    let e = api_error(
        cms.list(&ListParams::default().labels("app in (x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    let e = api_error(
        cms.list(&ListParams::default().fields("status.phase=Running"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.message, "field label not supported: status.phase");
}

#[tokio::test]
async fn events_are_one_object_in_two_versions() {
    use k8s_openapi::api::events::v1::Event as NewEvent;
    let c = cluster().await;
    let new: Api<NewEvent> = Api::default_namespaced(c.client());
    let ev: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": "e1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "u-1"},
        "note": "pulled", "reason": "Pulled", "type": "Normal", "action": "Pull",
        "reportingController": "kubelet", "reportingInstance": "node-1"}))
    .unwrap();
    let created = new.create(&PostParams::default(), &ev).await.unwrap();
    assert_eq!(created.regarding.unwrap().uid.as_deref(), Some("u-1"));
    assert_eq!(created.note.as_deref(), Some("pulled"));
    // The same object through core/v1, with its field names.
    let old: Api<Event> = Api::default_namespaced(c.client());
    let listed = old
        .list(&ListParams::default().fields("involvedObject.uid=u-1"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let e = &listed.items[0];
    assert_eq!(e.message.as_deref(), Some("pulled"));
    assert_eq!(e.reporting_component.as_deref(), Some("kubelet"));
    // Field selectors of events.k8s.io name `regarding`.
    let by_new = new
        .list(&ListParams::default().fields("regarding.uid=u-1,reason=Pulled"))
        .await
        .unwrap();
    assert_eq!(by_new.items.len(), 1);
    let err = api_error(new.get("nope").await.unwrap_err());
    assert_eq!(err.message, "events.events.k8s.io \"nope\" not found");
    // Deleting through one version removes it from both.
    new.delete("e1", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(old.get("e1").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn unknown_paths_are_404_like_the_real_server() {
    let c = cluster().await;
    let send = |path: &str| {
        let req = http::Request::get(path).body(Vec::new()).unwrap();
        let client = c.client();
        async move {
            let resp = client.send(req.map(Into::into)).await.unwrap();
            let status = resp.status().as_u16();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(
        send("/apis/example.com/v1/widgets").await,
        (404, "404 page not found\n".into())
    );
    let (code, body) = send("/api/v1/widgets").await;
    assert_eq!(code, 404);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["message"],
        "the server could not find the requested resource"
    );
    assert_eq!(status["reason"], "NotFound");
    let (code, body) = send("/version").await;
    assert_eq!(code, 200);
    assert!(body.contains("\"gitVersion\":\"v1.33.0\""));
}

#[tokio::test]
async fn delete_collection_removes_what_the_selectors_match() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let mut obj = cm(name);
        obj.metadata.labels = Some([("app".to_owned(), app.to_owned())].into());
        cms.create(&PostParams::default(), &obj).await.unwrap();
    }
    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=x"),
        )
        .await
        .unwrap();
    let list = deleted.left().expect("the deleted objects are listed");
    let names: Vec<_> = list
        .items
        .into_iter()
        .map(|i| i.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let left: Vec<_> = cms
        .list(&ListParams::default().labels("app"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn dry_runs_check_everything_and_store_nothing() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let rv_before = c.store().resource_version();
    let would = cms.create(&dry, &cm("d")).await.unwrap();
    assert_eq!(would.metadata.name.as_deref(), Some("d"));
    assert!(would.metadata.uid.is_some());
    assert_eq!(would.metadata.resource_version, None);
    assert_eq!(api_error(cms.get("d").await.unwrap_err()).code, 404);
    let e = api_error(cms.create(&dry, &cm("Bad_Name")).await.unwrap_err());
    assert_eq!(e.code, 422, "a dry run still validates");
    assert_eq!(c.store().resource_version(), rv_before);

    cms.create(&PostParams::default(), &cm("d")).await.unwrap();
    let rv = c.store().resource_version();
    let pp = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let patched = cms
        .patch("d", &pp, &Patch::Merge(json!({"data": {"k": "dry"}})))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "dry");
    let dp = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    cms.delete("d", &dp).await.unwrap();
    assert_eq!(cms.get("d").await.unwrap().data.unwrap()["k"], "v");
    assert_eq!(c.store().resource_version(), rv, "nothing was written");
}

#[tokio::test]
async fn a_deleted_namespace_terminates_then_goes_with_its_content() {
    use k8s_openapi::api::core::v1::Namespace;
    let c = cluster().await;
    c.create_namespace("doomed");
    let namespaces: Api<Namespace> = Api::all(c.client());
    let cms: Api<ConfigMap> = Api::namespaced(c.client(), "doomed");
    cms.create(&PostParams::default(), &cm("plain"))
        .await
        .unwrap();
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();

    let ns = namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("a namespace delete answers the namespace");
    assert!(ns.metadata.deletion_timestamp.is_some());
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert_eq!(api_error(cms.get("plain").await.unwrap_err()).code, 404);
    let e = api_error(
        cms.create(&PostParams::default(), &cm("late"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );
    // The namespace waits for the object its finalizer holds, then goes; deleting it again
    // meanwhile is refused, as by the real namespace registry.
    assert!(namespaces.get("doomed").await.is_ok());
    let again = api_error(
        namespaces
            .delete("doomed", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((again.code, again.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        again.message,
        "Operation cannot be fulfilled on namespaces \"doomed\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(
        api_error(namespaces.get("doomed").await.unwrap_err()).code,
        404
    );
}

#[tokio::test]
async fn unknown_fields_warn_by_default_and_fail_when_strict() {
    let c = cluster().await;
    let body = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "typo"}, "datta": {"k": "v"}}))
    .unwrap();
    let post = |query: &str| {
        http::Request::post(format!("/api/v1/namespaces/default/configmaps{query}"))
            .header("content-type", "application/json")
            .body(body.clone())
            .unwrap()
    };
    let resp = c
        .client()
        .send(post("?fieldValidation=Strict").map(Into::into))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let status: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        status["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"datta\""
    );
    // No directive: Warn, as the real server defaults to.
    let resp = c.client().send(post("").map(Into::into)).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["warning"],
        "299 - \"unknown field \\\"datta\\\"\""
    );
}

#[tokio::test]
async fn an_update_with_another_objects_uid_is_invalid() {
    let cluster = cluster().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let mut old = cms.create(&PostParams::default(), &cm("c")).await.unwrap();
    cms.delete("c", &DeleteParams::default()).await.unwrap();
    let successor = cms.create(&PostParams::default(), &cm("c")).await.unwrap();
    // The earlier object, without a resourceVersion (an unconditional update), replaces
    // nothing: its uid is not the stored one (`ValidateObjectMetaUpdate`).
    old.metadata.resource_version = None;
    old.data = Some([("k".to_owned(), "old".to_owned())].into());
    let uid = old.metadata.uid.clone().unwrap();
    let status = api_error(
        cms.replace("c", &PostParams::default(), &old)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        format!(
            r#"ConfigMap "c" is invalid: metadata.uid: Invalid value: "{uid}": field is immutable"#
        )
    );
    let stored = cms.get("c").await.unwrap();
    assert_eq!(stored.metadata.uid, successor.metadata.uid);
    assert_eq!(stored.data.unwrap()["k"], "v");
    // An empty uid takes the stored one (`rest.BeforeUpdate`).
    old.metadata.uid = Some(String::new());
    let replaced = cms
        .replace("c", &PostParams::default(), &old)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.uid, successor.metadata.uid);
}
