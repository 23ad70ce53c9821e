//! `pods/log?follow=true` streams a container's log until it ends; a `CutWatchAfter` fault
//! ends watch streams after N events. Through the real `kube::Client`, paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeCluster, ScriptedImage, ScriptedRuntime};
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, LogParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

async fn cluster_with_talker() -> FakeCluster {
    let rt = ScriptedRuntime::new();
    rt.image(
        "talker:1",
        // `/talk [PREFIX]`: "one", then 5 s later "two" (on stderr), each after PREFIX.
        ScriptedImage::new().program("/talk", |ctx: ProgramContext| async move {
            let prefix = ctx.argv.get(1).cloned().unwrap_or_default();
            ctx.write_stdout(format!("{prefix}one\n").as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            ctx.write_stderr(format!("{prefix}two\n").as_bytes()).await;
            Exit::Code(0)
        }),
    );
    FakeCluster::builder().scripted(rt).build().await.unwrap()
}

async fn running_pod(cluster: &FakeCluster) -> Api<Pod> {
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "talker"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "talker:1", "command": ["/talk"]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // Wait for the container to start (its log is then readable).
    let wp = WatchParams::default().fields("metadata.name=talker");
    let mut events = pods.watch(&wp, "0").await.unwrap().boxed();
    while let Some(ev) = events.try_next().await.unwrap() {
        if let WatchEvent::Added(p) | WatchEvent::Modified(p) = ev {
            let running = p
                .status
                .and_then(|s| s.container_statuses)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                });
            if running {
                break;
            }
        }
    }
    pods
}

#[tokio::test(start_paused = true)]
async fn follow_streams_until_the_container_ends() {
    let cluster = cluster_with_talker().await;
    let pods = running_pod(&cluster).await;
    let lp = LogParams {
        follow: true,
        ..Default::default()
    };
    let started = tokio::time::Instant::now();
    let mut lines = pods.log_stream("talker", &lp).await.unwrap().lines();
    let mut got = Vec::new();
    while let Some(line) = lines.next().await {
        got.push(line.unwrap());
    }
    // Both lines, the second written 5 s later, and the stream ended with the container.
    assert_eq!(got, ["one", "two"]);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let plain = pods.logs("talker", &LogParams::default()).await.unwrap();
    assert_eq!(plain, "one\ntwo\n");
    // `sinceSeconds`: only what was written in the last 3 s (the second line, 5 s after
    // the first).
    let recent = LogParams {
        since_seconds: Some(3),
        ..Default::default()
    };
    assert_eq!(pods.logs("talker", &recent).await.unwrap(), "two\n");
}

/// Two pods followed at once: each follower gets its own pod's lines only, and deleting one
/// pod ends its follower (the kubelet forgets the pod's logs) while the other goes on.
#[tokio::test(start_paused = true)]
async fn followers_of_two_pods_get_their_own_lines_and_end_with_their_pod() {
    let cluster = cluster_with_talker().await;
    let pods = running_pod(&cluster).await;
    let other: Pod = serde_json::from_value(json!({
        "metadata": {"name": "other"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "talker:1", "command": ["/talk", "b-"]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &other).await.unwrap();
    let lp = LogParams {
        follow: true,
        ..Default::default()
    };
    let mut talker = pods.log_stream("talker", &lp).await.unwrap().lines();
    assert_eq!(talker.next().await.unwrap().unwrap(), "one");
    let mut others = pods.log_stream("other", &lp).await.unwrap().lines();
    assert_eq!(others.next().await.unwrap().unwrap(), "b-one");
    let started = tokio::time::Instant::now();
    let dp = kube::api::DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    pods.delete("other", &dp).await.unwrap();
    assert!(
        others.next().await.is_none(),
        "the deleted pod's follower went on"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let rest: Vec<String> = talker.map(Result::unwrap).collect().await;
    assert_eq!(rest, ["two"]);
}

/// A pod held by a finalizer after the kubelet ended it: its logs are gone (the kubelet
/// removed its containers), so a follower that comes then gets what there is (nothing) and
/// ends, as on a real node, instead of waiting until the finalizer goes.
#[tokio::test(start_paused = true)]
async fn a_follower_of_an_ended_pod_held_by_a_finalizer_ends_at_once() {
    let cluster = cluster_with_talker().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let held: Pod = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "talker:1", "command": ["/talk"]}]}
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &held).await.unwrap();
    let wp = WatchParams::default().fields("metadata.name=held");
    let mut events = pods
        .watch(&wp, created.metadata.resource_version.as_deref().unwrap())
        .await
        .unwrap()
        .boxed();
    let lp = LogParams {
        follow: true,
        ..Default::default()
    };
    let mut first = pods.log_stream("held", &lp).await;
    while first.is_err() {
        // Not started yet: wait for the next change of the pod.
        events.try_next().await.unwrap();
        first = pods.log_stream("held", &lp).await;
    }
    assert_eq!(first.unwrap().lines().next().await.unwrap().unwrap(), "one");
    // SIGTERM ends the container; the kubelet then deletes the pod with a zero grace
    // period, which the finalizer holds.
    pods.delete("held", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    while let Some(ev) = events.try_next().await.unwrap() {
        if let WatchEvent::Modified(p) = ev
            && p.metadata.deletion_grace_period_seconds == Some(0)
        {
            break;
        }
    }
    let late = pods.log_stream("held", &lp).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(3600), late.lines().collect::<Vec<_>>())
        .await
        .expect("the follower of a pod whose logs are gone waited");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(pods.get_opt("held").await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn follow_applies_limit_bytes_to_the_whole_stream() {
    let cluster = cluster_with_talker().await;
    let pods = running_pod(&cluster).await;
    let lp = LogParams {
        follow: true,
        limit_bytes: Some(6),
        ..Default::default()
    };
    let mut body = Vec::new();
    let mut stream = pods.log_stream("talker", &lp).await.unwrap();
    futures::AsyncReadExt::read_to_end(&mut stream, &mut body)
        .await
        .unwrap();
    assert_eq!(body, b"one\ntw");
}

#[tokio::test(start_paused = true)]
async fn a_cut_watch_ends_after_n_events() {
    let plan = FaultPlan::new(1).rule(
        Some("watch"),
        Some("configmaps"),
        1.0,
        Fault::CutWatchAfter(2),
    );
    let cluster = FakeCluster::builder()
        .scripted(ScriptedRuntime::new())
        .faults(plan)
        .build()
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    for i in 0..3 {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("cm-{i}"), "labels": {"t": "x"}}}),
        )
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let wp = WatchParams::default().labels("t=x");
    let events: Vec<_> = cms.watch(&wp, "0").await.unwrap().collect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| matches!(e, Ok(WatchEvent::Added(_)))));
    let injected = cluster.injected_faults();
    assert_eq!(injected.len(), 1);
    assert_eq!(injected[0].fault, Fault::CutWatchAfter(2));
    // Other requests are not affected by a watch rule.
    assert_eq!(cms.list(&Default::default()).await.unwrap().items.len(), 4);
}

/// Log options out of range: 422 `Invalid` for the kind `PodLogOptions`, with the real
/// `ValidatePodLogOptions` messages, checked before the pod is read (so even for a pod that
/// does not exist).
#[tokio::test(start_paused = true)]
async fn log_options_out_of_range_are_invalid_before_the_pod_is_read() {
    let cluster = cluster_with_talker().await;
    let status = |query: &'static str| {
        let client = cluster.client();
        async move {
            let uri = format!("/api/v1/namespaces/default/pods/nowhere/log?{query}");
            let req = http::Request::get(uri).body(Vec::new()).unwrap();
            let resp = client.send(req.map(Into::into)).await.unwrap();
            let code = resp.status().as_u16();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
            (code, status)
        }
    };
    let (code, s) = status("sinceSeconds=0").await;
    assert_eq!(code, 422, "{s}");
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(
        s["message"],
        "PodLogOptions \"nowhere\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0"
    );
    assert_eq!(s["details"]["kind"], "PodLogOptions");
    assert!(s["details"].get("group").is_none(), "{s}");
    assert_eq!(s["details"]["causes"][0]["field"], "sinceSeconds");
    let (code, s) = status("tailLines=-1&limitBytes=0").await;
    assert_eq!(code, 422, "{s}");
    assert_eq!(
        s["message"],
        "PodLogOptions \"nowhere\" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]"
    );
    let (code, s) = status("sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z").await;
    assert_eq!(code, 422, "{s}");
    assert_eq!(
        s["message"],
        "PodLogOptions \"nowhere\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
    );
    // Valid options: the pod is read (and is not there).
    let (code, _) = status("sinceSeconds=5&tailLines=0").await;
    assert_eq!(code, 404);
}
