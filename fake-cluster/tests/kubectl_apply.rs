#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `kubectl apply` against the served cluster: client-side apply (a create with the
//! last-applied annotation, then strategic merge patches kubectl computes) and server-side
//! apply (`--server-side`, `--field-manager`, `--force-conflicts`).

mod common;

use cmdreporter_fake_cluster::json::{Value, json};
use cmdreporter_fake_cluster::resources::well_known;

use common::kubectl::served;

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
        env:
        - name: A
          value: \"1\"
        - name: B
          value: \"2\"
        ports:
        - containerPort: 8080
      - name: side
        image: busybox:1.36
";

fn patches(cluster: &cmdreporter_fake_cluster::FakeCluster) -> usize {
    cluster
        .journal()
        .entries()
        .iter()
        .filter(|e| e.verb == "patch")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_creates_then_patches_by_merge_keys() {
    let (cluster, _served, k) = served().await;
    let store = cluster.store().clone();
    let file = k.file("job.yaml", JOB);
    assert_eq!(
        k.ok(&["apply", "-f", &file]).await.trim(),
        "job.batch/errand created"
    );
    let job = store.get(well_known::jobs(), "default", "errand").unwrap();
    let mf = &job["metadata"]["managedFields"];
    assert_eq!(mf.as_array().unwrap().len(), 1, "{mf}");
    assert_eq!(mf[0]["manager"], "kubectl-client-side-apply");
    assert_eq!(mf[0]["operation"], "Update");
    assert_eq!(mf[0]["apiVersion"], "batch/v1");
    assert_eq!(mf[0]["fieldsType"], "FieldsV1");
    assert_eq!(mf[0]["time"], job["metadata"]["creationTimestamp"]);
    // What the real server records for a kubectl create of this Job: the fields sent and
    // the defaults the server filled in, not the selector and labels the Job gets later.
    let main = json!({
        ".": {}, "f:command": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
        "f:env": {".": {},
            "k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}},
            "k:{\"name\":\"B\"}": {".": {}, "f:name": {}, "f:value": {}}},
        "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":
            {".": {}, "f:containerPort": {}, "f:protocol": {}}},
        "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {},
    });
    let side = json!({
        ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
        "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {},
    });
    assert_eq!(
        mf[0]["fieldsV1"],
        json!({
            "f:metadata": {
                "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                "f:labels": {".": {}, "f:app": {}},
            },
            "f:spec": {
                "f:backoffLimit": {}, "f:completionMode": {}, "f:completions": {},
                "f:parallelism": {}, "f:podReplacementPolicy": {}, "f:suspend": {},
                "f:template": {"f:spec": {
                    "f:containers": {"k:{\"name\":\"main\"}": main, "k:{\"name\":\"side\"}": side},
                    "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
                    "f:schedulerName": {}, "f:securityContext": {},
                    "f:terminationGracePeriodSeconds": {},
                }},
            },
        })
    );

    // The same manifest again: kubectl computes an empty patch and sends nothing.
    let before = patches(&cluster);
    assert_eq!(
        k.ok(&["apply", "-f", &file]).await.trim(),
        "job.batch/errand unchanged"
    );
    assert_eq!(patches(&cluster), before);

    // A changed manifest: env B removed, the side container's image changed. kubectl sends a
    // strategic merge patch with `$setElementOrder` and a `$patch: delete` for B.
    let changed = k.file(
        "job2.yaml",
        &JOB.replace("        - name: B\n          value: \"2\"\n", "")
            .replace(
                "      - name: side\n        image: busybox:1.36",
                "      - name: side\n        image: busybox:1.37",
            ),
    );
    assert_eq!(
        k.ok(&["apply", "-f", &changed]).await.trim(),
        "job.batch/errand configured"
    );
    assert_eq!(patches(&cluster), before + 1);
    let job = store.get(well_known::jobs(), "default", "errand").unwrap();
    let containers = &job["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["name"], "main");
    assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(
        containers[0]["ports"],
        json!([{"containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(containers[0]["image"], "busybox:1.36");
    assert_eq!(containers[1]["name"], "side");
    assert_eq!(containers[1]["image"], "busybox:1.37");
    // Server-set fields the manifest never had survive the patch.
    assert!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string()
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["job-name"],
        "errand"
    );
    // The removed env var left the manager's fields.
    let mf: Value = job["metadata"]["managedFields"][0]["fieldsV1"].clone();
    let env =
        &mf["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"]["f:env"];
    assert_eq!(
        env,
        &json!({".": {}, "k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}})
    );
}

const CM: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  k: v1
  other: x
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_conflicts_and_forces() {
    let (cluster, _served, k) = served().await;
    let store = cluster.store().clone();
    let file = k.file("cm.yaml", CM);
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", &file]).await.trim(),
        "configmap/cfg serverside-applied"
    );
    let rv = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap()["metadata"]["resourceVersion"]
        .clone();
    // Applying the same configuration again changes nothing.
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", &file]).await.trim(),
        "configmap/cfg serverside-applied"
    );
    let cm = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap();
    assert_eq!(cm["metadata"]["resourceVersion"], rv);
    let mf = &cm["metadata"]["managedFields"];
    assert_eq!(
        mf,
        &json!([{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                 "time": cm["metadata"]["creationTimestamp"], "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:data": {"f:k": {}, "f:other": {}}}}])
    );

    // Another manager changing `k` conflicts.
    let theirs = k.file(
        "theirs.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  k: v2\n",
    );
    let (ok, _, stderr) = k
        .run(&[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "-f",
            &theirs,
        ])
        .await;
    assert!(!ok);
    assert!(
        stderr.starts_with(
            "error: Apply failed with 1 conflict: conflict with \"kubectl\": .data.k\n"
        ),
        "{stderr}"
    );
    let cm = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap();
    assert_eq!(cm["data"]["k"], "v1");

    // --force-conflicts takes the field over.
    assert_eq!(
        k.ok(&[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "--force-conflicts",
            "-f",
            &theirs
        ])
        .await
        .trim(),
        "configmap/cfg serverside-applied"
    );
    let cm = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap();
    assert_eq!(cm["data"], json!({"k": "v2", "other": "x"}));
    let entries = common::fields_by_manager(&cm);
    assert_eq!(
        entries,
        [
            ("kubectl".to_owned(), json!({"f:data": {"f:other": {}}})),
            ("ops".to_owned(), json!({"f:data": {"f:k": {}}})),
        ]
    );

    // kubectl's first manager stops applying `other`: it goes, since nobody else owns it.
    let less = k.file(
        "less.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata: {}\n",
    );
    k.ok(&["apply", "--server-side", "-f", &less]).await;
    let cm = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap();
    assert_eq!(cm["data"], json!({"k": "v2"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_moves_from_client_side_to_server_side_apply_without_conflicts() {
    let (cluster, _served, k) = served().await;
    let store = cluster.store().clone();
    let file = k.file("cm.yaml", CM);
    assert_eq!(
        k.ok(&["apply", "-f", &file]).await.trim(),
        "configmap/cfg created"
    );
    // The same object, now applied server-side with a changed value: kubectl may take
    // what its client-side apply last applied.
    let changed = k.file("cm2.yaml", &CM.replace("k: v1", "k: v2"));
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", &changed])
            .await
            .trim(),
        "configmap/cfg serverside-applied"
    );
    let cm = store
        .get(well_known::configmaps(), "default", "cfg")
        .unwrap();
    assert_eq!(cm["data"], json!({"k": "v2", "other": "x"}));
    // kubectl then moves the client-side manager's fields to its own (csaupgrade, a JSON
    // patch of managedFields) and rewrites the annotation as `kubectl-last-applied`.
    let managers: Vec<String> = cluster
        .journal()
        .entries()
        .iter()
        .filter(|e| e.verb == "patch" && e.status == 200)
        .filter_map(|e| {
            e.path
                .split("fieldManager=")
                .nth(1)
                .map(|m| m.split('&').next().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(
        managers[..3],
        ["kubectl", "kubectl-last-applied", "kubectl"]
    );
    assert_eq!(
        common::fields_by_manager(&cm),
        [
            (
                "kubectl-last-applied".to_owned(),
                json!({"f:metadata": {"f:annotations": {
                    "f:kubectl.kubernetes.io/last-applied-configuration": {}}}})
            ),
            (
                "kubectl".to_owned(),
                json!({"f:data": {"f:k": {}, "f:other": {}}})
            ),
        ]
    );
    // The annotation follows the server-side apply.
    let last: Value = serde_json::from_str(
        cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["data"]["k"], "v2");
}
