#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The process runtime: real processes, in a private mount namespace per container where
//! this machine allows it (root on Linux, as here and in CI), driven through `kube::Client`
//! and the real `kubectl` (on PATH) against the HTTPS server the pods use.
//!
//! The in-pod program of the first test is this test executable itself: the image
//! `helper:1` holds it at `/helper`, and the container runs the ignored test
//! [`in_pod_program`], which builds its client with `kube::Config::incluster()`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use cmdreporter_fake_cluster::json::{Value, json};
use cmdreporter_fake_cluster::resources::well_known;
use cmdreporter_fake_cluster::runtime::Isolation;
use cmdreporter_fake_cluster::{FakeCluster, ProcessRuntime};
use common::{job_has, wait_until};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, PostParams};

/// Real time: processes run for real; this bounds every wait.
const LIMIT: Duration = Duration::from_secs(60);

/// Set in the helper container: the name of the ConfigMap to create.
const HELPER_ENV: &str = "IN_POD_CONFIGMAP";

/// Whether this machine gives containers their own mount namespace (root on Linux).
fn isolates(rt: &ProcessRuntime) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        assert_eq!(
            rt.isolation(),
            Isolation::MountNamespace,
            "root, yet no namespace"
        );
    }
    rt.isolation() == Isolation::MountNamespace
}

async fn cluster(rt: Arc<ProcessRuntime>) -> FakeCluster {
    FakeCluster::builder().process(rt).build().await.unwrap()
}

fn pod_phase(cluster: &FakeCluster, name: &str) -> Option<String> {
    let pod = cluster
        .store()
        .get(well_known::pods(), "default", name)
        .ok()?;
    pod.pointer("/status/phase")?.as_str().map(str::to_owned)
}

/// The one pod of a Job (from the store), once it exists.
fn job_pod(cluster: &FakeCluster, job: &str) -> Option<Value> {
    let (pods, _) = cluster.store().list(well_known::pods(), Some("default"));
    pods.iter()
        .find(|p| {
            p.pointer("/metadata/labels/job-name")
                .and_then(Value::as_str)
                == Some(job)
        })
        .map(|p| (**p).clone())
}

fn shell_job(name: &str, image: &str, script: &str) -> Job {
    cmdreporter_fake_cluster::json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": image,
                "command": ["sh", "-c", script]}]}}}
    }))
    .unwrap()
}

/// kubectl with a kubeconfig naming the cluster's HTTPS server.
struct Kubectl {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(cluster: &FakeCluster) -> Self {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin = std::env::split_paths(&path)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
            .expect("kubectl is not on PATH: these tests need it");
        let dir = tempfile::tempdir().unwrap();
        let server = cluster.pod_server().expect("served for pods");
        assert!(server.url().starts_with("https://"), "{}", server.url());
        server
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        Self { bin, dir }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let run = tokio::process::Command::new(&self.bin)
            .args(args)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(LIMIT, run).await.unwrap().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "kubectl {args:?}:\n{stdout}\n{stderr}"
        );
        stdout
    }
}

/// Run in a container only (see the module docs): creates the ConfigMap named by
/// [`HELPER_ENV`] with a client from `kube::Config::incluster()`, recording what the pod
/// saw.
#[tokio::test]
#[ignore = "the in-pod program of in_pod_program_reaches_the_api_in_cluster"]
async fn in_pod_program() {
    let Ok(name) = std::env::var(HELPER_ENV) else {
        return;
    };
    assert!(
        std::env::var_os("KUBECONFIG").is_none(),
        "KUBECONFIG is set"
    );
    let config = kube::Config::incluster().unwrap();
    let ns = config.default_namespace.clone();
    let url = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let token =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/token").unwrap();
    let cm: ConfigMap = cmdreporter_fake_cluster::json::from_value(json!({
        "metadata": {"name": name},
        "data": {"namespace": ns, "url": url, "token": token,
                 "hostname": std::env::var("HOSTNAME").unwrap_or_default()}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_pod_program_reaches_the_api_in_cluster() {
    let rt = ProcessRuntime::new().unwrap();
    if !isolates(&rt) {
        eprintln!("skipped: in-cluster configuration needs a mount namespace (root on Linux)");
        return;
    }
    rt.image_file("helper:1", "/helper", std::env::current_exe().unwrap());
    let cluster = cluster(rt).await;
    let pod: Pod = cmdreporter_fake_cluster::json::from_value(json!({
        "metadata": {"name": "in-pod"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "helper:1",
            "command": ["/helper", "--ignored", "--exact", "in_pod_program", "--nocapture"],
            "env": [{"name": HELPER_ENV, "value": "made-in-pod"}]}]}
    }))
    .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_until(&cluster, LIMIT, || {
        matches!(
            pod_phase(&cluster, "in-pod").as_deref(),
            Some("Succeeded" | "Failed")
        )
    })
    .await;
    let log = pods.logs("in-pod", &Default::default()).await.unwrap();
    assert_eq!(
        pod_phase(&cluster, "in-pod").as_deref(),
        Some("Succeeded"),
        "{log}"
    );
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let data = cms.get("made-in-pod").await.unwrap().data.unwrap();
    assert_eq!(data["namespace"], "default");
    let server = cluster.pod_server().unwrap();
    assert_eq!(data["url"], format!("{}/", server.url()));
    assert_eq!(
        data["token"],
        "fake-token:system:serviceaccount:default:default"
    );
    assert_eq!(data["hostname"], "in-pod");
    // The CA the pod trusted is the cluster's, from kube-root-ca.crt.
    let root = cms.get("kube-root-ca.crt").await.unwrap().data.unwrap();
    assert_eq!(root["ca.crt"], cluster.ca_pem().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_shell_job_through_kubectl() {
    let cluster = cluster(ProcessRuntime::new().unwrap()).await;
    let kubectl = Kubectl::new(&cluster);
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let job = shell_job(
        "sh-fails",
        "busybox:1.36",
        "echo hello; echo oops >&2; exit 3",
    );
    jobs.create(&PostParams::default(), &job).await.unwrap();
    wait_until(&cluster, LIMIT, || job_has(&cluster, "sh-fails", "Failed")).await;

    let pod = job_pod(&cluster, "sh-fails").unwrap();
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    let logs = kubectl.ok(&["logs", &pod_name]).await;
    // stdout and stderr are separate pipes, read as they come: both lines are in the log,
    // in whichever order their writes reached the kubelet.
    let mut lines: Vec<&str> = logs.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["hello", "oops"], "{logs:?}");
    let got: Value =
        serde_json::from_str(&kubectl.ok(&["get", "pod", &pod_name, "-o", "json"]).await).unwrap();
    let terminated = &got["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3, "{got:#}");
    assert_eq!(terminated["reason"], "Error");
    assert_eq!(got["status"]["phase"], "Failed");
    let got: Value =
        serde_json::from_str(&kubectl.ok(&["get", "job", "sh-fails", "-o", "json"]).await).unwrap();
    let failed = got["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .cloned()
        .unwrap();
    assert_eq!(failed["status"], "True");
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(got["status"]["failed"], 1);

    kubectl
        .ok(&["delete", "job", "sh-fails", "--cascade=background"])
        .await;
    wait_until(&cluster, LIMIT, || {
        job_pod(&cluster, "sh-fails").is_none()
            && cluster
                .store()
                .get(well_known::jobs(), "default", "sh-fails")
                .is_err()
    })
    .await;
    assert!(kubectl.ok(&["get", "pods", "-o", "name"]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpullable_image_shows_image_pull_back_off_in_kubectl() {
    let rt = ProcessRuntime::new().unwrap();
    rt.unpullable("registry.example/missing:1");
    let cluster = cluster(rt).await;
    let kubectl = Kubectl::new(&cluster);
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    let job = shell_job("no-image", "registry.example/missing:1", "true");
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let reason = |cluster: &FakeCluster| {
        job_pod(cluster, "no-image").and_then(|p| {
            p.pointer("/status/containerStatuses/0/state/waiting/reason")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    };
    wait_until(&cluster, LIMIT, || {
        reason(&cluster).as_deref() == Some("ImagePullBackOff")
    })
    .await;
    let name = job_pod(&cluster, "no-image").unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let got: Value =
        serde_json::from_str(&kubectl.ok(&["get", "pod", &name, "-o", "json"]).await).unwrap();
    let waiting = &got["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "ImagePullBackOff", "{got:#}");
    assert_eq!(
        waiting["message"],
        "Back-off pulling image \"registry.example/missing:1\""
    );
    assert_eq!(got["status"]["phase"], "Pending");
}

/// In path-mapping mode (the fallback when this machine cannot give containers a mount
/// namespace) the pod's `KUBECONFIG` carries its own service-account token, not the
/// admin's: with RBAC on, the real kubectl in the pod is the pod's service account.
#[tokio::test]
async fn in_path_mapping_mode_the_pods_kubeconfig_is_its_service_account() {
    let rt = ProcessRuntime::path_mapping().unwrap();
    assert_eq!(rt.isolation(), Isolation::PathMapping);
    let cluster = FakeCluster::builder()
        .process(rt)
        .rbac(true)
        .build()
        .await
        .unwrap();
    let script = "cat \"$KUBECONFIG\"; echo; kubectl --cache-dir \"$TMPDIR/cache\" get configmaps 2>&1; true";
    let mut job = shell_job("who", "shell:1", script);
    job.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .env = Some(vec![
        cmdreporter_fake_cluster::json::from_value(json!({"name": "TMPDIR", "value": "/tmp"}))
            .unwrap(),
    ]);
    let jobs: Api<Job> = Api::default_namespaced(cluster.client());
    jobs.create(&PostParams::default(), &job).await.unwrap();
    wait_until(&cluster, LIMIT, || job_has(&cluster, "who", "Complete")).await;
    let pod = job_pod(&cluster, "who").unwrap();
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let log = pods
        .logs(
            pod["metadata"]["name"].as_str().unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(
        !log.contains("fake-admin"),
        "the admin token leaked:\n{log}"
    );
    assert!(log.contains("tokenFile"), "{log}");
    assert!(
        log.contains(
            "User \"system:serviceaccount:default:default\" cannot list resource \"configmaps\""
        ),
        "{log}"
    );
}
