#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Strategic merge patch (`Patch::Strategic`) on pods and jobs: lists merged by their
//! declared keys, the directives, and lists that are replaced.

use cmdreporter_fake_cluster::FakeCluster;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

async fn cluster() -> FakeCluster {
    FakeCluster::builder().build().await.unwrap()
}

fn to_json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap()
}

async fn smp<K>(api: &Api<K>, name: &str, patch: Value) -> Value
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    to_json(
        &api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap(),
    )
}

#[tokio::test(start_paused = true)]
async fn pods_merge_containers_by_name_and_metadata_lists_by_their_keys() {
    let cluster = cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    // Owners that exist, or the garbage collector deletes the pod.
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let mut uids = Vec::new();
    for name in ["o1", "o2"] {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        uids.push(
            cms.create(&PostParams::default(), &cm)
                .await
                .unwrap()
                .metadata
                .uid
                .unwrap(),
        );
    }
    let (u1, u2) = (uids[0].as_str(), uids[1].as_str());
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x", "tier": "web"}, "finalizers": ["example.com/a"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o1", "uid": u1}]},
        "spec": {"containers": [{"name": "a", "image": "app:1"}, {"name": "b", "image": "app:1"}],
            "tolerations": [{"key": "k1", "operator": "Exists"}]}});
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();

    // One container changed by name; the other stays, in place.
    let out = smp(
        &pods,
        "p",
        json!({"spec": {"containers": [{"name": "b", "image": "app:2"}]}}),
    )
    .await;
    let containers = &out["spec"]["containers"];
    assert_eq!(
        (
            containers[0]["name"].clone(),
            containers[0]["image"].clone()
        ),
        (json!("a"), json!("app:1"))
    );
    assert_eq!(
        (
            containers[1]["name"].clone(),
            containers[1]["image"].clone()
        ),
        (json!("b"), json!("app:2"))
    );
    // The rest of the container stays too (the server's defaults).
    assert_eq!(
        containers[1]["terminationMessagePath"],
        "/dev/termination-log"
    );

    // Tolerations have no merge key: replaced.
    let out = smp(
        &pods,
        "p",
        json!({"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}}),
    )
    .await;
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "k2", "operator": "Exists"}])
    );

    // Finalizers are a set; null deletes a label; owner references merge by uid.
    let out = smp(
        &pods,
        "p",
        json!({"metadata": {
        "finalizers": ["example.com/b"],
        "labels": {"tier": null},
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o2", "uid": u2}]}}),
    )
    .await;
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["example.com/b", "example.com/a"])
    );
    assert_eq!(out["metadata"]["labels"], json!({"app": "x"}));
    let owner_uids: Vec<&Value> = out["metadata"]["ownerReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["uid"])
        .collect();
    assert_eq!(owner_uids, [&json!(u2), &json!(u1)]);

    // Directives: delete from a primitive list, delete an item by key, set the order.
    let out = smp(
        &pods,
        "p",
        json!({
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"],
            "ownerReferences": [{"$patch": "delete", "uid": u2}]},
        "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "app:3"}]}}),
    )
    .await;
    assert_eq!(out["metadata"]["finalizers"], json!(["example.com/b"]));
    assert_eq!(
        out["metadata"]["ownerReferences"].as_array().unwrap().len(),
        1
    );
    assert_eq!(out["metadata"]["ownerReferences"][0]["uid"], u1);
    let names: Vec<(&Value, &Value)> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (&c["name"], &c["image"]))
        .collect();
    assert_eq!(
        names,
        [
            (&json!("b"), &json!("app:2")),
            (&json!("a"), &json!("app:3"))
        ]
    );

    // An item without its merge key is refused, as the real server refuses it.
    let err = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"containers": [{"image": "app:4"}]}})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 400);
    assert!(
        status
            .message
            .ends_with("does not contain declared merge key: name"),
        "{}",
        status.message
    );
}

#[tokio::test(start_paused = true)]
async fn jobs_merge_env_mounts_and_volumes_with_directives() {
    let cluster = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "app:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]}}}});
    jobs.create(
        &PostParams::default(),
        &serde_json::from_value(job).unwrap(),
    )
    .await
    .unwrap();
    let out = smp(&jobs, "j", json!({"spec": {"template": {"spec": {
        "containers": [{"name": "main",
            "env": [{"name": "B", "value": "two"}, {"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}],
            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}],
        "volumes": [{"name": "data", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}}}})).await;
    let spec = &out["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    assert_eq!(
        c["env"],
        json!([{"name": "B", "value": "two"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "cache", "mountPath": "/cache"}, {"name": "data", "mountPath": "/data"}])
    );
    // $retainKeys dropped emptyDir: a volume has one source.
    assert_eq!(
        spec["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );
    // The labels and selector the server set are untouched.
    assert_eq!(
        out["spec"]["template"]["metadata"]["labels"]["job-name"],
        "j"
    );

    // $patch: replace in a list replaces it with the patch's items.
    let out = smp(
        &jobs,
        "j",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main",
        "env": [{"$patch": "replace"}, {"name": "Z", "value": "26"}]}]}}}}),
    )
    .await;
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "Z", "value": "26"}])
    );

    // Status conditions merge by type on the status subresource.
    let cond = |t: &str| {
        json!({"type": t, "status": "True", "reason": "R", "message": "m",
        "lastProbeTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    jobs.patch_status(
        "j",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [cond("Suspended")]}})),
    )
    .await
    .unwrap();
    let out = to_json(
        &jobs
            .patch_status(
                "j",
                &PatchParams::default(),
                &Patch::Strategic(json!({"status": {"conditions": [cond("Failed")]}})),
            )
            .await
            .unwrap(),
    );
    let types: Vec<&Value> = out["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["type"])
        .collect();
    assert_eq!(types, [&json!("Failed"), &json!("Suspended")]);
}
