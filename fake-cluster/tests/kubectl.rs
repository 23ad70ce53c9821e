#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Conformance: the real `kubectl` (on PATH; it picks its version from the server's
//! `/version`) against the cluster served over HTTPS with its own CA.
//!
//! kubectl must be installed: when it is missing this test fails, it does not skip.

mod common;

use std::process::Stdio;
use std::time::Duration;

use cmdreporter_fake_cluster::resources::well_known;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use common::kubectl::served;

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  labels:
    app: demo
data:
  k: v1
";

const JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: errand
  labels:
    app: demo
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox:1.36
        command: [\"true\"]
";

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_served_cluster() {
    let (cluster, _served, k) = served().await;
    let store = cluster.store().clone();

    // apply, with kubectl's default (strict) validation.
    let cm_file = k.file("cm.yaml", CONFIGMAP);
    let job_file = k.file("job.yaml", JOB);
    assert_eq!(
        k.ok(&["apply", "-f", &cm_file]).await.trim(),
        "configmap/cfg created"
    );
    assert_eq!(
        k.ok(&["apply", "-f", &job_file]).await.trim(),
        "job.batch/errand created"
    );
    let stored = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap();
    assert!(
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    let job = store.get(well_known::jobs(), "default", "errand").unwrap();
    assert_eq!(job["spec"]["backoffLimit"], 0);
    // Applying a change patches the existing object.
    let changed = k.file("cm2.yaml", &CONFIGMAP.replace("k: v1", "k: v2"));
    assert_eq!(
        k.ok(&["apply", "-f", &changed]).await.trim(),
        "configmap/cfg configured"
    );
    let stored = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap();
    assert_eq!(stored["data"]["k"], "v2");

    // Default validation is strict: a misspelt field is refused by the server.
    let typo = k.file(
        "typo.yaml",
        &CONFIGMAP
            .replace("name: cfg", "name: typo")
            .replace("\ndata:", "\ndatta:"),
    );
    let (ok, _, stderr) = k.run(&["apply", "-f", &typo]).await;
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        format!(
            "Error from server (BadRequest): error when creating \"{typo}\": ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"datta\""
        )
    );

    // get -o json with a label selector.
    let list: Value = serde_json::from_str(
        &k.ok(&["get", "configmaps,jobs", "-l", "app=demo", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(names(&list), ["cfg", "errand"]);
    // The human-readable table (kubectl asks for Table and falls back to plain lists).
    let table = k.ok(&["get", "configmaps"]).await;
    assert!(table.lines().any(|l| l.starts_with("cfg ")), "{table}");

    // label
    assert_eq!(
        k.ok(&["label", "configmap", "cfg", "tier=web"])
            .await
            .trim(),
        "configmap/cfg labeled"
    );
    let stored = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap();
    assert_eq!(stored["metadata"]["labels"]["tier"], "web");

    // get --watch sees an update made by another client.
    let mut child = k
        .command(&[
            "get",
            "configmap",
            "cfg",
            "--watch",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut updated = false;
    let watched = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.starts_with("ADDED") && line.contains("cfg") && !updated {
                updated = true;
                // kubectl prints the object it got, then watches from resourceVersion 0
                // and drops that watch's first (synthetic) event: update only once the
                // watch is registered, or the update is that first event.
                cluster
                    .journal()
                    .wait_for(|e| e.verb == "watch" && e.user_agent.starts_with("kubectl"))
                    .await;
                let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
                cms.patch(
                    "cfg",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"k": "v3"}})),
                )
                .await
                .unwrap();
            }
            if line.starts_with("MODIFIED") && line.contains("cfg") {
                return true;
            }
        }
        false
    })
    .await;
    child.kill().await.unwrap();
    let journal: Vec<String> = cluster
        .journal()
        .entries()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        watched,
        Ok(true),
        "kubectl get --watch printed: {seen:?}; journal: {journal:#?}"
    );

    // delete
    let out = k.ok(&["delete", "configmap", "cfg"]).await;
    assert_eq!(out.trim(), "configmap \"cfg\" deleted");
    assert!(
        store
            .get(well_known::configmaps(), "default", "cfg")
            .is_err()
    );

    // create of a duplicate
    let dup = k.file("dup.yaml", &CONFIGMAP.replace("name: cfg", "name: dup"));
    assert_eq!(
        k.ok(&["create", "-f", &dup]).await.trim(),
        "configmap/dup created"
    );
    let (ok, _, stderr) = k.run(&["create", "-f", &dup]).await;
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        format!(
            "Error from server (AlreadyExists): error when creating \"{dup}\": configmaps \"dup\" already exists"
        )
    );
    // Every request kubectl made is in the journal, with its user agent.
    let journal = cluster.journal().entries();
    assert!(journal.iter().any(|e| e.user_agent.starts_with("kubectl")));
    if std::env::var_os("SHOW_JOURNAL").is_some() {
        for e in &journal {
            eprintln!("{e}");
        }
    }
}
