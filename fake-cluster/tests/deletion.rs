//! The delete and update paths as a real API server (1.26+) runs them, seen through the
//! real `kube::Client` and a watch:
//!
//! - An update (PUT or patch) that removes the last finalizer of an object being deleted
//!   is not written: the stored object is deleted as it is (`Store.Update`,
//!   `ShouldDeleteDuringUpdate`, `deleteWithoutFinalizers`). The answer is 200 with the
//!   object the update would have written, at the resourceVersion it was read at; the
//!   DELETED event carries the stored object, finalizers still on it, at the deletion's
//!   resourceVersion. A dry run answers the same and deletes nothing.
//! - A pod delete is graceful (`rest.BeforeDelete`, the pod strategy's
//!   `CheckGracefulDelete`): the deletionTimestamp (now plus the grace period) and the grace
//!   period are written first (MODIFIED), even with a zero grace period, which unbound and
//!   terminal pods always get; with nothing holding it, the pod is then removed (DELETED,
//!   the marked pod at the next resourceVersion), and the delete answers that state. The
//!   kubelet's last delete (grace period zero) does the same for a pod that ran.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::json::json;
use common::{app_image, wait_until};
use futures::{Stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

const LIMIT: Duration = Duration::from_secs(3600);

async fn scripted() -> FakeCluster {
    let rt = cmdreporter_fake_cluster::ScriptedRuntime::new();
    rt.image("app:1", app_image());
    FakeCluster::builder()
        .seed(3)
        .scripted(rt)
        .build()
        .await
        .unwrap()
}

fn from<T: DeserializeOwned>(v: cmdreporter_fake_cluster::json::Value) -> T {
    cmdreporter_fake_cluster::json::from_value(v).unwrap()
}

fn rv<K: Resource>(o: &K) -> u64 {
    o.meta()
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// `TYPE name rv`, for the events of one object, bookmarks left out.
#[derive(Debug)]
enum Seen<K> {
    Modified(K),
    Deleted(K),
    Other(String),
}

async fn next<K, S>(w: &mut S) -> Seen<K>
where
    K: Clone,
    S: Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
{
    loop {
        let e = tokio::time::timeout(LIMIT, w.next())
            .await
            .expect("no event in time")
            .expect("stream ended")
            .unwrap();
        return match e {
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Modified(o) => Seen::Modified(o),
            WatchEvent::Deleted(o) => Seen::Deleted(o),
            WatchEvent::Added(_) => Seen::Other("ADDED".into()),
            WatchEvent::Error(s) => Seen::Other(format!("ERROR {}", s.code)),
        };
    }
}

async fn modified<K: Clone + std::fmt::Debug, S>(w: &mut S) -> K
where
    S: Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
{
    match next(w).await {
        Seen::Modified(o) => o,
        other => panic!("expected MODIFIED, got {other:?}"),
    }
}

async fn deleted<K: Clone + std::fmt::Debug, S>(w: &mut S) -> K
where
    S: Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
{
    match next(w).await {
        Seen::Deleted(o) => o,
        other => panic!("expected DELETED, got {other:?}"),
    }
}

/// The first MODIFIED that shows a deletionTimestamp (writes of the pod's status by the
/// cluster's own components may come first).
async fn marking<S>(w: &mut S) -> Pod
where
    S: Stream<Item = kube::Result<WatchEvent<Pod>>> + Unpin,
{
    loop {
        let p = modified(w).await;
        if p.metadata.deletion_timestamp.is_some() {
            return p;
        }
    }
}

fn held_cm(name: &str) -> ConfigMap {
    from(
        json!({"metadata": {"name": name, "finalizers": ["example.com/hold"]},
        "data": {"k": "old"}}),
    )
}

/// Creates a ConfigMap held by a finalizer, deletes it (terminating) and opens a watch
/// from there.
async fn terminating_cm(
    c: &FakeCluster,
    name: &str,
) -> (
    Api<ConfigMap>,
    ConfigMap,
    impl Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
) {
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    cms.create(&PostParams::default(), &held_cm(name))
        .await
        .unwrap();
    let held = cms
        .delete(name, &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("held by its finalizer");
    let w = cms
        .watch(
            &WatchParams::default().fields(&format!("metadata.name={name}")),
            &rv(&held).to_string(),
        )
        .await
        .unwrap()
        .boxed();
    (cms, held, w)
}

#[tokio::test]
async fn a_put_removing_the_last_finalizer_deletes_the_stored_object() {
    let c = scripted().await;
    let (cms, held, mut w) = terminating_cm(&c, "put").await;
    let mut body = held.clone();
    body.metadata.finalizers = None;
    body.data = Some([("k".to_owned(), "new".to_owned())].into());
    let answer = cms
        .replace("put", &PostParams::default(), &body)
        .await
        .unwrap();
    // The answer: the object the update would have written, never written, so at the
    // resourceVersion it was read at.
    assert_eq!(answer.metadata.finalizers, None);
    assert_eq!(answer.data.as_ref().unwrap()["k"], "new");
    assert_eq!(rv(&answer), rv(&held));
    assert!(answer.metadata.deletion_timestamp.is_some());
    // The DELETED event: the stored object, its finalizer and old data still there, at the
    // deletion's resourceVersion.
    let gone = deleted(&mut w).await;
    assert_eq!(gone.finalizers(), ["example.com/hold"]);
    assert_eq!(gone.data.as_ref().unwrap()["k"], "old");
    assert_eq!(rv(&gone), rv(&held) + 1);
    assert_eq!(rv(&gone), c.store().resource_version());
    assert_eq!(gone.metadata.uid, held.metadata.uid);
    assert!(cms.get_opt("put").await.unwrap().is_none());
}

#[tokio::test]
async fn a_patch_removing_the_last_finalizer_answers_200_and_deletes_the_stored_object() {
    let c = scripted().await;
    let (cms, held, mut w) = terminating_cm(&c, "patched").await;
    let drop_finalizers = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    // A dry run answers what the patch would do and deletes nothing.
    let dry = cms
        .patch(
            "patched",
            &PatchParams::default().dry_run(),
            &drop_finalizers,
        )
        .await
        .unwrap();
    assert_eq!(dry.metadata.finalizers, None);
    assert_eq!(rv(&dry), rv(&held));
    assert_eq!(c.store().resource_version(), rv(&held));
    assert_eq!(
        cms.get("patched").await.unwrap().finalizers(),
        ["example.com/hold"]
    );
    // Through the raw request, to see the status code.
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/patched")
        .header("content-type", "application/merge-patch+json")
        .body(br#"{"metadata":{"finalizers":null}}"#.to_vec())
        .unwrap();
    let resp = c.client().send(req.map(Into::into)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let answer: ConfigMap = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer.metadata.finalizers, None);
    assert_eq!(rv(&answer), rv(&held));
    let gone = deleted(&mut w).await;
    assert_eq!(gone.finalizers(), ["example.com/hold"]);
    assert_eq!(rv(&gone), rv(&held) + 1);
    assert!(cms.get_opt("patched").await.unwrap().is_none());
}

#[tokio::test]
async fn a_foreground_deleted_job_goes_with_its_finalizer_in_the_deleted_event() {
    let c = scripted().await;
    let jobs: Api<Job> = Api::default_namespaced(c.client());
    let job = common::job("fg", "sleep", json!({}));
    let created = jobs.create(&PostParams::default(), &job).await.unwrap();
    let mut w = jobs
        .watch(
            &WatchParams::default().fields("metadata.name=fg"),
            &rv(&created).to_string(),
        )
        .await
        .unwrap()
        .boxed();
    wait_until(&c, LIMIT, || {
        !c.store()
            .list(
                cmdreporter_fake_cluster::resources::well_known::pods(),
                Some("default"),
            )
            .0
            .is_empty()
    })
    .await;
    jobs.delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    // The garbage collector deletes the pod, then removes `foregroundDeletion`: that update
    // deletes the Job as it was stored, the finalizer still on it.
    let last = loop {
        match next(&mut w).await {
            Seen::Modified(_) => {}
            Seen::Deleted(j) => break j,
            Seen::Other(e) => panic!("unexpected {e}"),
        }
    };
    assert_eq!(last.finalizers(), ["foregroundDeletion"]);
    assert!(last.metadata.deletion_timestamp.is_some());
    assert!(jobs.get_opt("fg").await.unwrap().is_none());
}

/// A pod that no node fits: it stays Pending, unbound.
fn unbound_pod(name: &str, finalizers: &[&str]) -> Pod {
    from(json!({"metadata": {"name": name, "finalizers": finalizers},
        "spec": {"nodeSelector": {"example.com/nowhere": "true"},
            "containers": [{"name": "c", "image": "app:1"}]}}))
}

/// The pod as stored, once the scheduler has found no node for it.
async fn unschedulable(c: &FakeCluster, pods: &Api<Pod>, name: &str) -> Pod {
    wait_until(c, LIMIT, || {
        c.store()
            .get(
                cmdreporter_fake_cluster::resources::well_known::pods(),
                "default",
                name,
            )
            .is_ok_and(|p| p.pointer("/status/conditions/0/reason").is_some())
    })
    .await;
    let pod = pods.get(name).await.unwrap();
    assert_eq!(pod.spec.as_ref().unwrap().node_name, None);
    pod
}

async fn pod_watch(
    pods: &Api<Pod>,
    name: &str,
    from: u64,
) -> impl Stream<Item = kube::Result<WatchEvent<Pod>>> + Unpin + use<> {
    pods.watch(
        &WatchParams::default().fields(&format!("metadata.name={name}")),
        &from.to_string(),
    )
    .await
    .unwrap()
    .boxed()
}

fn seconds(t: &Option<Time>) -> i64 {
    t.as_ref().unwrap().0.as_second()
}

/// The MODIFIED of a pod delete's marking and its DELETED, checked against the answer.
async fn marked_then_removed<S>(w: &mut S, answer: &Pod, grace: i64)
where
    S: Stream<Item = kube::Result<WatchEvent<Pod>>> + Unpin,
{
    let marked = marking(w).await;
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(grace));
    let gone = deleted(w).await;
    assert_eq!(rv(&gone), rv(&marked) + 1);
    assert_eq!(
        gone.metadata.deletion_timestamp,
        marked.metadata.deletion_timestamp
    );
    assert_eq!(gone.metadata.deletion_grace_period_seconds, Some(grace));
    // The delete answers the removed pod at the deletion's resourceVersion.
    assert_eq!(rv(answer), rv(&gone));
    assert_eq!(answer.metadata.deletion_grace_period_seconds, Some(grace));
}

#[tokio::test]
async fn an_unbound_pod_is_marked_then_removed() {
    let c = scripted().await;
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    // Even with a grace period asked for: a pod on no node goes at once.
    pods.create(&PostParams::default(), &unbound_pod("u", &[]))
        .await
        .unwrap();
    let pending = unschedulable(&c, &pods, "u").await;
    let mut w = pod_watch(&pods, "u", rv(&pending)).await;
    let answer = pods
        .delete("u", &DeleteParams::default().grace_period(20))
        .await
        .unwrap()
        .left()
        .expect("a pod delete answers the pod");
    marked_then_removed(&mut w, &answer, 0).await;
    assert!(pods.get_opt("u").await.unwrap().is_none());
}

#[tokio::test]
async fn a_pod_held_by_a_finalizer_goes_when_an_update_removes_it() {
    let c = scripted().await;
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    pods.create(
        &PostParams::default(),
        &unbound_pod("h", &["example.com/hold"]),
    )
    .await
    .unwrap();
    let pending = unschedulable(&c, &pods, "h").await;
    let mut w = pod_watch(&pods, "h", rv(&pending)).await;
    let held = pods
        .delete("h", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(held.metadata.deletion_grace_period_seconds, Some(0));
    let marked = marking(&mut w).await;
    assert_eq!(rv(&marked), rv(&held));
    let answer = pods
        .patch(
            "h",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(answer.metadata.finalizers, None);
    assert_eq!(rv(&answer), rv(&held));
    let gone = deleted(&mut w).await;
    assert_eq!(gone.finalizers(), ["example.com/hold"]);
    assert_eq!(rv(&gone), rv(&held) + 1);
}

fn bound_pod(name: &str, arg: &str) -> Pod {
    from(
        json!({"metadata": {"name": name}, "spec": {"restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,
        "containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", arg]}]}}),
    )
}

fn phase(c: &FakeCluster, name: &str) -> Option<String> {
    c.store()
        .get(
            cmdreporter_fake_cluster::resources::well_known::pods(),
            "default",
            name,
        )
        .ok()
        .and_then(|p| {
            p.pointer("/status/phase")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
}

/// Creates a pod on the node running `/bin/app <arg>`, waits for `phase` and opens a
/// watch of it from there.
async fn started(
    c: &FakeCluster,
    name: &str,
    arg: &str,
    want: &str,
) -> (
    Api<Pod>,
    Pod,
    impl Stream<Item = kube::Result<WatchEvent<Pod>>> + Unpin + use<>,
) {
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    pods.create(&PostParams::default(), &bound_pod(name, arg))
        .await
        .unwrap();
    wait_until(c, LIMIT, || phase(c, name).as_deref() == Some(want)).await;
    let pod = pods.get(name).await.unwrap();
    assert!(pod.spec.as_ref().unwrap().node_name.is_some());
    let w = pod_watch(&pods, name, rv(&pod)).await;
    (pods, pod, w)
}

/// A pod in `want` deleted with `params`: marked with a zero grace period, then removed.
async fn goes_at_once(arg: &str, want: &str, params: &DeleteParams) {
    let c = scripted().await;
    let (pods, pod, mut w) = started(&c, "p", arg, want).await;
    let answer = pods.delete("p", params).await.unwrap().left().unwrap();
    marked_then_removed(&mut w, &answer, 0).await;
    assert_eq!(answer.metadata.uid, pod.metadata.uid);
}

#[tokio::test(start_paused = true)]
async fn a_bound_pod_deleted_with_a_zero_grace_period_is_marked_then_removed() {
    goes_at_once("sleep", "Running", &DeleteParams::default().grace_period(0)).await;
}

#[tokio::test(start_paused = true)]
async fn a_terminal_pod_is_deleted_with_a_zero_grace_period() {
    // No grace period asked for: the spec's 30 s does not apply to a pod that has ended.
    goes_at_once("0", "Succeeded", &DeleteParams::default()).await;
}

#[tokio::test(start_paused = true)]
async fn a_graceful_pod_delete_sets_the_deadline_and_the_kubelet_ends_it_at_zero() {
    let c = scripted().await;
    let (pods, _, mut w) = started(&c, "g", "sleep", "Running").await;
    let before = c.store().clock().since_epoch().as_secs() as i64;
    let answer = pods
        .delete("g", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    // deletionTimestamp: when the grace period ends.
    assert_eq!(answer.metadata.deletion_grace_period_seconds, Some(30));
    let deadline = seconds(&answer.metadata.deletion_timestamp);
    assert!(
        (before + 30..=before + 31).contains(&deadline),
        "{deadline} {before}"
    );
    let marked = marking(&mut w).await;
    assert_eq!(rv(&marked), rv(&answer));
    // The container ends at SIGTERM; the kubelet's delete with a zero grace period moves
    // the deletionTimestamp back by the 30 s and removes the pod: MODIFIED, then DELETED.
    let last = loop {
        let p = modified(&mut w).await;
        if p.metadata.deletion_grace_period_seconds == Some(0) {
            break p;
        }
    };
    assert_eq!(seconds(&last.metadata.deletion_timestamp), deadline - 30);
    let gone = deleted(&mut w).await;
    assert_eq!(rv(&gone), rv(&last) + 1);
    assert_eq!(gone.metadata.deletion_grace_period_seconds, Some(0));
    assert_eq!(
        gone.status.as_ref().unwrap().phase.as_deref(),
        Some("Failed"),
        "the container ended at SIGTERM (143)"
    );
}

#[tokio::test]
async fn a_namespace_goes_as_stored_with_its_spec_finalizer() {
    let c = scripted().await;
    let nss: Api<Namespace> = Api::all(c.client());
    // No `spec.finalizers` given: the namespace strategy adds `kubernetes` at creation.
    let ns: Namespace = from(json!({"metadata": {"name": "gone"}}));
    let created = nss.create(&PostParams::default(), &ns).await.unwrap();
    let mut w = nss
        .watch(
            &WatchParams::default().fields("metadata.name=gone"),
            &rv(&created).to_string(),
        )
        .await
        .unwrap()
        .boxed();
    nss.delete("gone", &DeleteParams::default()).await.unwrap();
    let last = loop {
        match next(&mut w).await {
            Seen::Modified(_) => {}
            Seen::Deleted(n) => break n,
            Seen::Other(e) => panic!("unexpected {e}"),
        }
    };
    // The namespace controller's finalize is not written: the DELETED event carries the
    // namespace as stored, `spec.finalizers` still holding `kubernetes`.
    assert_eq!(
        last.spec.clone().unwrap().finalizers.unwrap_or_default(),
        ["kubernetes"]
    );
    assert_eq!(rv(&last), c.store().resource_version());
}

/// The garbage collector's finalizers are compared as sets (`deletionFinalizersForGarbageCollection`
/// in the registry's store.go): a repeated `orphan` is the same set as one, so the delete
/// marks the object and leaves its finalizers as they are; the garbage collector then
/// orphans the dependents and removes every `orphan` (`removeFinalizer`).
#[tokio::test]
async fn a_repeated_gc_finalizer_is_the_same_set_and_is_kept_as_stored() {
    let c = scripted().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let fins = ["example.com/hold", "orphan", "orphan"];
    let created = cms
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "twice", "finalizers": fins}})),
        )
        .await
        .unwrap();
    assert_eq!(created.finalizers(), fins);
    // No policy: the `orphan` already there decides.
    let marked = cms
        .delete("twice", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("held by its finalizers");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.finalizers(), fins);
    wait_until(&c, LIMIT, || {
        c.store()
            .get(
                cmdreporter_fake_cluster::resources::well_known::configmaps(),
                "default",
                "twice",
            )
            .is_ok_and(|o| o.pointer("/metadata/finalizers") == Some(&json!(["example.com/hold"])))
    })
    .await;
}
