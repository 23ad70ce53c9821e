//! Pod Security admission through `kube::Client`: the Warning header on a Job (and a pod)
//! that would break a level, the `warn` and `audit` modes, and exemptions by namespace,
//! runtime class and user.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use cmdreporter_fake_cluster::pod_security::{
    AUDIT_VIOLATIONS_ANNOTATION, EXEMPT_ANNOTATION, Exemptions,
};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedRuntime, rbac};
use common::{app_image, wait_until};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(600);

async fn cluster_with(exemptions: Exemptions, rbac_on: bool) -> FakeCluster {
    let rt = ScriptedRuntime::new();
    rt.image("app:1", app_image());
    FakeCluster::builder()
        .scripted(rt)
        .rbac(rbac_on)
        .pod_security_exemptions(exemptions)
        .build()
        .await
        .unwrap()
}

async fn label(c: &FakeCluster, ns: &str, labels: Value) {
    c.create_namespace(ns);
    Api::<Namespace>::all(c.client())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await
        .unwrap();
}

/// POSTs `body` as `client` and returns the status and the Warning headers.
async fn post(client: &kube::Client, path: &str, body: &Value) -> (u16, Vec<String>) {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    let resp = client.send(req.map(Into::into)).await.unwrap();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    (resp.status().as_u16(), warnings)
}

fn pod_spec(extra: Value) -> Value {
    let mut spec = json!({"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", "0"]}]});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

fn pod(name: &str, extra: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec(extra)})
}

fn job(name: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": pod_spec(json!({}))}}})
}

const RESTRICTED_DETAIL: &str = "allowPrivilegeEscalation != false (container \\\"main\\\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \\\"main\\\" must set securityContext.capabilities.drop=[\\\"ALL\\\"]), runAsNonRoot != true (pod or container \\\"main\\\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \\\"main\\\" must set securityContext.seccompProfile.type to \\\"RuntimeDefault\\\" or \\\"Localhost\\\")";

#[tokio::test(start_paused = true)]
async fn a_job_that_would_break_the_enforced_level_is_created_with_a_warning() {
    let c = cluster_with(Exemptions::default(), false).await;
    label(
        &c,
        "strict",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let (code, warnings) = post(
        &c.client(),
        "/apis/batch/v1/namespaces/strict/jobs",
        &job("j"),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        warnings,
        [format!(
            "299 - \"would violate PodSecurity \\\"restricted:latest\\\": {RESTRICTED_DETAIL}\""
        )]
    );
    // Its pod is refused by the enforce mode, which the Job controller reports.
    let failed_create = || async {
        let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(c.client(), "strict");
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedCreate"))
    };
    let mut changes = c.store().subscribe_controller();
    while !failed_create().await {
        tokio::time::timeout(LIMIT, changes.recv()).await.unwrap();
    }
    // A Job that meets the level gets no warning.
    let mut ok = job("fine");
    ok["spec"]["template"]["spec"]["securityContext"] = json!({"runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"}});
    ok["spec"]["template"]["spec"]["containers"][0]["securityContext"] = json!({
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    let (code, warnings) = post(&c.client(), "/apis/batch/v1/namespaces/strict/jobs", &ok).await;
    assert_eq!((code, warnings), (201, Vec::<String>::new()));
}

#[tokio::test(start_paused = true)]
async fn warn_and_audit_modes_admit_with_a_warning_and_an_audit_annotation() {
    let c = cluster_with(Exemptions::default(), false).await;
    label(
        &c,
        "watched",
        json!({"pod-security.kubernetes.io/warn": "baseline",
               "pod-security.kubernetes.io/warn-version": "v1.33",
               "pod-security.kubernetes.io/audit": "restricted"}),
    )
    .await;
    let privileged = pod(
        "p",
        json!({"containers": [{"name": "main", "image": "app:1", "command": ["/bin/app", "0"],
            "securityContext": {"privileged": true}}]}),
    );
    let (code, warnings) = post(&c.client(), "/api/v1/namespaces/watched/pods", &privileged).await;
    assert_eq!(code, 201, "warn and audit never refuse");
    assert_eq!(
        warnings,
        [
            "299 - \"would violate PodSecurity \\\"baseline:v1.33\\\": privileged (container \\\"main\\\" must not set securityContext.privileged=true)\""
        ]
    );
    let audit = c.pod_security_audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (
            audit[0].resource.as_str(),
            audit[0].namespace.as_str(),
            audit[0].name.as_str()
        ),
        ("pods", "watched", "p")
    );
    assert_eq!(audit[0].annotation.0, AUDIT_VIOLATIONS_ANNOTATION);
    assert!(
        audit[0].annotation.1.starts_with(
            "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
        ),
        "{:?}",
        audit[0].annotation
    );
    // A pod meeting baseline but not restricted: no warning, but audited.
    let (code, warnings) = post(
        &c.client(),
        "/api/v1/namespaces/watched/pods",
        &pod("q", json!({})),
    )
    .await;
    assert_eq!((code, warnings), (201, Vec::<String>::new()));
    assert_eq!(c.pod_security_audit().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn exempt_namespaces_and_runtime_classes_are_not_checked() {
    let c = cluster_with(
        Exemptions::default()
            .namespace("system-tools")
            .runtime_class("kata"),
        false,
    )
    .await;
    let enforce = json!({"pod-security.kubernetes.io/enforce": "restricted"});
    label(&c, "system-tools", enforce.clone()).await;
    label(&c, "strict", enforce).await;
    let (code, warnings) = post(
        &c.client(),
        "/api/v1/namespaces/system-tools/pods",
        &pod("a", json!({})),
    )
    .await;
    assert_eq!((code, warnings), (201, Vec::<String>::new()));
    let (code, _) = post(
        &c.client(),
        "/api/v1/namespaces/strict/pods",
        &pod("b", json!({})),
    )
    .await;
    assert_eq!(code, 403, "not exempt");
    let (code, warnings) = post(
        &c.client(),
        "/api/v1/namespaces/strict/pods",
        &pod("c", json!({"runtimeClassName": "kata"})),
    )
    .await;
    assert_eq!((code, warnings), (201, Vec::<String>::new()));
    let exempt: Vec<(String, String)> = c
        .pod_security_audit()
        .into_iter()
        .filter(|r| r.annotation.0 == EXEMPT_ANNOTATION)
        .map(|r| (r.name, r.annotation.1))
        .collect();
    assert_eq!(
        exempt,
        [
            ("a".into(), "namespace".into()),
            ("c".into(), "runtimeClass".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_exempt_user_is_not_checked_but_the_job_controller_is() {
    let c = cluster_with(Exemptions::default().username(rbac::ADMIN_USER), true).await;
    label(
        &c,
        "strict",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    // The admin's own pod passes ...
    let (code, warnings) = post(
        &c.client(),
        "/api/v1/namespaces/strict/pods",
        &pod("mine", json!({})),
    )
    .await;
    assert_eq!((code, warnings), (201, Vec::<String>::new()));
    // ... and a Job the admin creates is not checked either (no warning), but its pod is
    // created by the Job controller, which is not exempt.
    let (code, warnings) = post(
        &c.client(),
        "/apis/batch/v1/namespaces/strict/jobs",
        &job("j"),
    )
    .await;
    assert_eq!((code, warnings), (201, Vec::<String>::new()));
    wait_until(&c, LIMIT, || {
        c.store()
            .list(
                cmdreporter_fake_cluster::resources::well_known::events(),
                Some("strict"),
            )
            .0
            .iter()
            .any(|e| e["reason"] == "FailedCreate")
    })
    .await;
}
