//! `cmdreporter fake-cluster serve`: kubectl works against it, and `cmdreporter run`
//! without `--fake` reaches it through a kubeconfig, the code path of a real cluster.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{BIN, Served, assert_code, assert_error_line, on_path, stderr, stdout};

fn kubectl(served: &Served, args: &[&str]) -> Output {
    served
        .with_kubeconfig("kubectl", args)
        .output()
        .expect("kubectl runs")
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn kubectl_works_against_the_served_fake() {
    if !on_path("kubectl") {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let served = Served::start(&[]);
    // HTTPS with the cluster's own CA, which the kubeconfig carries.
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let kc = std::fs::read_to_string(&served.kubeconfig).unwrap();
    assert!(kc.contains("certificate-authority-data:"), "{kc}");
    let version = ok(kubectl(&served, &["version", "-o", "json"]));
    assert!(version.contains("serverVersion"), "{version}");
    let ns = ok(kubectl(&served, &["get", "namespaces", "-o", "name"]));
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
    assert!(ok(kubectl(&served, &["get", "nodes", "-o", "name"])).contains("node/"));
    let resources = ok(kubectl(&served, &["api-resources", "-o", "name"]));
    for r in ["configmaps", "pods", "jobs.batch", "events"] {
        assert!(resources.lines().any(|l| l == r), "{r} not in {resources}");
    }
    // Create, read, label, select, delete.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cm.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  greeting: hello\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    ok(kubectl(&served, &["create", "-f", f]));
    ok(kubectl(&served, &["apply", "-f", f]));
    let data = ok(kubectl(
        &served,
        &[
            "get",
            "configmap",
            "probe",
            "-o",
            "jsonpath={.data.greeting}",
        ],
    ));
    assert_eq!(data, "hello");
    ok(kubectl(
        &served,
        &["label", "configmap", "probe", "team=storage"],
    ));
    let selected = ok(kubectl(
        &served,
        &["get", "cm", "-l", "team=storage", "-o", "name"],
    ));
    assert_eq!(selected.trim(), "configmap/probe");
    ok(kubectl(&served, &["delete", "configmap", "probe"]));
    let gone = kubectl(&served, &["get", "configmap", "probe"]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("NotFound"), "{}", stderr(&gone));
}

#[test]
fn kubectl_sees_the_job_of_a_run_and_its_cleanup() {
    if !on_path("kubectl") {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let served = Served::start(&[]);
    let run = served
        .with_kubeconfig(BIN, &["run", "--", "sh", "-c", "sleep 3; echo done"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let jobs = ok(kubectl(&served, &["get", "jobs", "-o", "name"]));
        if let Some(j) = jobs.lines().next() {
            break j.to_owned();
        }
        assert!(Instant::now() < deadline, "no Job appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(job.starts_with("job.batch/cmdreporter-"), "{job}");
    let pods = ok(kubectl(
        &served,
        &[
            "get",
            "pods",
            "-l",
            &format!("job-name={}", &job["job.batch/".len()..]),
            "-o",
            "name",
        ],
    ));
    assert!(pods.starts_with("pod/"), "{pods}");
    let out = run.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "done\n");
    assert_eq!(ok(kubectl(&served, &["get", "jobs", "-o", "name"])), "");
}

#[test]
fn run_through_a_kubeconfig_without_fake() {
    let served = Served::start(&[]);
    let o = served
        .with_kubeconfig(BIN, &["run", "--", "echo", "hi"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "hi\n");
    // The same with --kubeconfig, a namespace and JSON: api_requests is unknown here.
    let o = common::command(&[
        "run",
        "--kubeconfig",
        served.kubeconfig.to_str().unwrap(),
        "-n",
        "kube-public",
        "--output",
        "json",
        "--",
        "sh",
        "-c",
        "echo out; exit 7",
    ])
    .output()
    .unwrap();
    assert_code(&o, 7);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stdout"], "out\n");
    assert_eq!(v["namespace"], "kube-public");
    assert_eq!(v["api_requests"], serde_json::Value::Null);
}

#[test]
fn an_image_that_cannot_be_pulled_exits_125_naming_it() {
    let served = Served::start(&["--unpullable-image", "registry.invalid/nothing:1"]);
    let started = Instant::now();
    let o = served
        .with_kubeconfig(
            BIN,
            &["run", "--image", "registry.invalid/nothing:1", "--", "true"],
        )
        .output()
        .unwrap();
    assert_error_line(&o, "image \"registry.invalid/nothing:1\" cannot be pulled");
    // Within the pull grace period (10 s), not at the run's timeout (5 min).
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn ctrl_c_deletes_the_job_and_exits_130() {
    if !on_path("kubectl") {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let served = Served::start(&[]);
    let run = served
        .with_kubeconfig(BIN, &["run", "--", "sleep", "60"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ok(kubectl(&served, &["get", "pods", "-o", "name"])).is_empty() {
        assert!(Instant::now() < deadline, "no pod appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = run.wait_with_output().unwrap();
    assert_code(&out, 130);
    assert!(
        stderr(&out).contains("interrupted by signal 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ok(kubectl(&served, &["get", "jobs", "-o", "name"])), "");
}
