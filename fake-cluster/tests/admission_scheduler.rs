//! ServiceAccount admission and the scheduler, through `kube::Client`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::json::json;
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage, ScriptedRuntime};
use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

const LIMIT: Duration = Duration::from_secs(600);

fn pod(name: &str, extra: cmdreporter_fake_cluster::json::Value) -> Pod {
    let mut p = json!({"metadata": {"name": name}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", "0"]}]}});
    for (k, v) in extra.as_object().unwrap() {
        p["spec"][k] = v.clone();
    }
    cmdreporter_fake_cluster::json::from_value(p).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_missing_service_account_is_forbidden() {
    let cluster = cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let err = pods
        .create(
            &PostParams::default(),
            &pod("x", json!({"serviceAccountName": "sa"})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        "pods \"x\" is forbidden: error looking up service account default/sa: serviceaccount \"sa\" not found"
    );
}

#[tokio::test(start_paused = true)]
async fn the_token_volume_is_injected_and_readable_in_the_pod() {
    let rt = ScriptedRuntime::new();
    rt.image(
        "app:1",
        ScriptedImage::new().program("/bin/app", |ctx: ProgramContext| async move {
            let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
            let ns = ctx
                .read_file(&format!("{dir}/namespace"))
                .unwrap_or_default();
            let token = ctx.read_file(&format!("{dir}/token")).unwrap_or_default();
            ctx.write_stdout(&ns).await;
            ctx.write_stdout(b" ").await;
            ctx.write_stdout(&token).await;
            Exit::Code(0)
        }),
    );
    let cluster = cluster_on(rt).await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let created = pods
        .create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    let volume = &spec.volumes.unwrap()[0];
    assert!(volume.name.starts_with("kube-api-access-") && volume.name.len() == 21);
    assert!(volume.projected.is_some());
    let mount = &spec.containers[0].volume_mounts.clone().unwrap()[0];
    assert_eq!(
        (
            mount.name.as_str(),
            mount.mount_path.as_str(),
            mount.read_only
        ),
        (
            volume.name.as_str(),
            "/var/run/secrets/kubernetes.io/serviceaccount",
            Some(true)
        )
    );
    wait_until(&cluster, LIMIT, || phase(&cluster, "p") == "Succeeded").await;
    let log = pods.logs("p", &Default::default()).await.unwrap();
    assert_eq!(
        log,
        "default fake-token:system:serviceaccount:default:default"
    );
    // Opting out: no volume.
    let bare = pods
        .create(
            &PostParams::default(),
            &pod("q", json!({"automountServiceAccountToken": false})),
        )
        .await
        .unwrap();
    assert!(bare.spec.unwrap().volumes.unwrap_or_default().is_empty());
}

fn phase(cluster: &FakeCluster, name: &str) -> String {
    cluster
        .store()
        .get(well_known::pods(), "default", name)
        .ok()
        .and_then(|p| {
            p.pointer("/status/phase")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

fn node_of(cluster: &FakeCluster, name: &str) -> Option<String> {
    cluster
        .store()
        .get(well_known::pods(), "default", name)
        .ok()
        .and_then(|p| {
            p.pointer("/spec/nodeName")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
}

#[tokio::test(start_paused = true)]
async fn the_scheduler_honours_selectors_affinity_and_taints() {
    let rt = ScriptedRuntime::new();
    rt.image("app:1", app_image());
    let cluster = FakeCluster::builder()
        .scripted(rt)
        .node(
            json!({"metadata": {"name": "gpu-1", "labels": {"accel": "gpu"}},
            "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}),
        )
        .node(json!({"metadata": {"name": "ssd-1", "labels": {"disk": "ssd"}}}))
        .build()
        .await
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    pods.create(
        &PostParams::default(),
        &pod("sel", json!({"nodeSelector": {"disk": "ssd"}})),
    )
    .await
    .unwrap();
    let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "accel", "operator": "In", "values": ["gpu"]}]}]}}});
    pods.create(&PostParams::default(), &pod("tolerant", json!({"affinity": affinity,
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]})))
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &pod("intolerant", json!({"affinity": affinity})),
    )
    .await
    .unwrap();
    wait_until(&cluster, LIMIT, || {
        node_of(&cluster, "sel").is_some() && node_of(&cluster, "tolerant").is_some()
    })
    .await;
    assert_eq!(node_of(&cluster, "sel").as_deref(), Some("ssd-1"));
    assert_eq!(node_of(&cluster, "tolerant").as_deref(), Some("gpu-1"));
    let stuck = pods.get("intolerant").await.unwrap();
    assert!(stuck.spec.unwrap().node_name.is_none());
    let cond = &stuck.status.unwrap().conditions.unwrap()[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_deref()
        ),
        ("PodScheduled", "False", Some("Unschedulable"))
    );
    assert_eq!(
        cond.message.as_deref(),
        Some(
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        )
    );
    assert!(
        events_of(&cluster, "intolerant")
            .await
            .iter()
            .any(|e| e.0 == "FailedScheduling")
    );
    // A node that fits arrives: the pod is scheduled then.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client());
    nodes
        .create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(
                json!({"metadata": {"name": "gpu-2", "labels": {"accel": "gpu"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || {
        node_of(&cluster, "intolerant").is_some()
    })
    .await;
    assert_eq!(node_of(&cluster, "intolerant").as_deref(), Some("gpu-2"));
}

#[tokio::test(start_paused = true)]
async fn a_namespace_created_through_the_api_gets_its_service_account_and_root_ca() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
    use kube::api::DeleteParams;
    let cluster = cluster().await;
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let ns: Namespace =
        cmdreporter_fake_cluster::json::from_value(json!({"metadata": {"name": "team-a"}}))
            .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let present = |def, name: &str| cluster.store().get(def, "team-a", name).is_ok();
    wait_until(&cluster, LIMIT, || {
        present(well_known::serviceaccounts(), "default")
            && present(well_known::configmaps(), "kube-root-ca.crt")
    })
    .await;
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client(), "team-a");
    accounts.get("default").await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "team-a");
    let ca = cms.get("kube-root-ca.crt").await.unwrap();
    assert!(ca.data.unwrap().contains_key("ca.crt"));
    // A pod naming no service account is admitted in the new namespace.
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "team-a");
    let created = pods
        .create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().service_account_name.as_deref(),
        Some("default")
    );
    // Deleted, both come back, as the controllers keep them.
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || {
        present(well_known::serviceaccounts(), "default")
            && present(well_known::configmaps(), "kube-root-ca.crt")
    })
    .await;
    // Not in a namespace being deleted.
    namespaces
        .delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || {
        cluster
            .store()
            .get(well_known::namespaces(), "", "team-a")
            .is_err()
    })
    .await;
    assert!(!present(well_known::serviceaccounts(), "default"));
    assert!(!present(well_known::configmaps(), "kube-root-ca.crt"));
}

#[tokio::test(start_paused = true)]
async fn a_pod_for_another_scheduler_is_left_unbound_without_conditions() {
    let rt = ScriptedRuntime::new();
    rt.image("app:1", app_image());
    let cluster = cluster_on(rt).await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let other = pods
        .create(
            &PostParams::default(),
            &pod("other", json!({"schedulerName": "my-scheduler"})),
        )
        .await
        .unwrap();
    assert_eq!(
        other.spec.unwrap().scheduler_name.as_deref(),
        Some("my-scheduler")
    );
    // The API server fills in the default scheduler's name, and that one binds the pod.
    let mine = pods
        .create(&PostParams::default(), &pod("mine", json!({})))
        .await
        .unwrap();
    assert_eq!(
        mine.spec.unwrap().scheduler_name.as_deref(),
        Some("default-scheduler")
    );
    // The controllers see changes in order: once the later pod is bound, the earlier one
    // has been looked at.
    wait_until(&cluster, LIMIT, || node_of(&cluster, "mine").is_some()).await;
    // A node arriving retries unschedulable pods; this one was never the scheduler's.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client());
    nodes
        .create(
            &PostParams::default(),
            &cmdreporter_fake_cluster::json::from_value(json!({"metadata": {"name": "n-2"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    wait_until(&cluster, LIMIT, || phase(&cluster, "mine") == "Succeeded").await;
    let stuck = pods.get("other").await.unwrap();
    assert!(stuck.spec.unwrap().node_name.is_none());
    let status = stuck.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert!(
        status.conditions.unwrap_or_default().is_empty(),
        "no PodScheduled condition"
    );
    assert!(events_of(&cluster, "other").await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_empty_scheduler_name_is_defaulted_and_the_pod_is_scheduled() {
    let rt = ScriptedRuntime::new();
    rt.image("app:1", app_image());
    let cluster = cluster_on(rt).await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    // `SetDefaults_PodSpec` tests `SchedulerName == ""`: an empty name is the default one
    // (k8s-openapi sends `Some("")` as `""`), and so are an empty dnsPolicy and restartPolicy.
    let created = pods
        .create(
            &PostParams::default(),
            &pod(
                "empty",
                json!({"schedulerName": "", "dnsPolicy": "", "restartPolicy": ""}),
            ),
        )
        .await
        .unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    wait_until(&cluster, LIMIT, || node_of(&cluster, "empty").is_some()).await;
}

#[tokio::test]
async fn empty_container_strings_get_their_defaults() {
    let cluster = cluster_on(ScriptedRuntime::new()).await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    // `SetDefaults_Container` and `SetDefaults_ContainerPort` test `== ""`, as
    // `SetDefaults_PodSpec` does: what k8s-openapi sends for `Some("")` gets the default.
    let container = json!({"name": "main", "image": "app:latest", "imagePullPolicy": "",
        "terminationMessagePath": "", "terminationMessagePolicy": "",
        "ports": [{"containerPort": 80, "protocol": ""}]});
    let created = pods
        .create(
            &PostParams::default(),
            &pod("empty-strings", json!({"containers": [container]})),
        )
        .await
        .unwrap();
    let c = &created.spec.unwrap().containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
    let ports = c.ports.as_deref().unwrap_or_default();
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
}
