//! Seeded faults: the same seed replays the same faults, in the same order, and the journal
//! shows them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use cmdreporter_fake_cluster::FakeCluster;
use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
use cmdreporter_fake_cluster::journal::JournalEntry;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

fn plan(seed: u64) -> FaultPlan {
    FaultPlan::new(seed)
        .rule(Some("create"), Some("configmaps"), 0.3, Fault::Status(503))
        .rule(Some("get"), Some("configmaps"), 0.3, Fault::Status(429))
        .rule(Some("delete"), None, 0.5, Fault::LostResponse)
}

/// A fixed client workload: creates, gets and deletes, ignoring errors.
async fn workload(seed: u64) -> (Vec<JournalEntry>, usize, Vec<u16>) {
    let cluster = FakeCluster::builder()
        .seed(seed)
        .faults(plan(seed))
        .build()
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let mut codes = Vec::new();
    for i in 0..40 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap();
        let code = |r: Result<(), kube::Error>| match r {
            Ok(()) => 200,
            Err(kube::Error::Api(s)) => s.code,
            Err(_) => 0,
        };
        codes.push(code(
            cms.create(&PostParams::default(), &cm).await.map(|_| ()),
        ));
        codes.push(code(cms.get(&format!("c{i}")).await.map(|_| ())));
        codes.push(code(
            cms.delete(&format!("c{i}"), &Default::default())
                .await
                .map(|_| ()),
        ));
    }
    let left = cluster
        .store()
        .list(
            cmdreporter_fake_cluster::resources::well_known::configmaps(),
            Some("default"),
        )
        .0
        .len();
    assert_eq!(
        cluster.injected_faults().len(),
        cluster
            .journal()
            .entries()
            .iter()
            .filter(|e| matches!(e.status, 429 | 503 | 504))
            .count()
    );
    (cluster.journal().entries(), left, codes)
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_journal() {
    let a = workload(11).await;
    let b = workload(11).await;
    assert_eq!(a, b);
    let statuses: Vec<u16> = a.0.iter().map(|e| e.status).collect();
    assert!(statuses.contains(&503) && statuses.contains(&429) && statuses.contains(&504));
    // A lost delete was applied: the client saw 504 yet the object is gone.
    assert!(a.2.chunks(3).any(|c| c[0] == 200 && c[2] == 504));
    let c = workload(12).await;
    assert_ne!(a.0, c.0, "another seed gives other faults");
}

#[tokio::test(start_paused = true)]
async fn throttling_answers_carry_retry_after() {
    use http::Request;
    let cluster = FakeCluster::builder()
        .faults(FaultPlan::new(0).rule(None, None, 1.0, Fault::Status(429)))
        .build()
        .await
        .unwrap();
    let req = Request::get("/api/v1/namespaces/default/configmaps")
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = cluster.api().handle(req).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(cluster.injected_faults()[0].fault, Fault::Status(429));
}

async fn disconnecting(applied: bool) -> FakeCluster {
    FakeCluster::builder()
        .faults(FaultPlan::new(1).rule(
            Some("create"),
            Some("configmaps"),
            1.0,
            Fault::Disconnect { applied },
        ))
        .build()
        .await
        .unwrap()
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn a_dropped_connection_reaches_kube_as_a_connection_error() {
    for applied in [false, true] {
        let cluster = disconnecting(applied).await;
        let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
        let err = cms
            .create(&PostParams::default(), &config_map("c"))
            .await
            .unwrap_err();
        let kube::Error::Service(source) = &err else {
            panic!("not a connection error: {err:?}")
        };
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an I/O error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
        // Applied or not, as the variant says.
        assert_eq!(cms.get_opt("c").await.unwrap().is_some(), applied);
        let injected = cluster.injected_faults();
        assert_eq!(injected.len(), 1);
        assert_eq!(injected[0].fault, Fault::Disconnect { applied });
        let entry = cluster
            .journal()
            .entries()
            .into_iter()
            .rfind(|e| e.verb == "create")
            .unwrap();
        // (An applied request is journaled twice: as the server handled it, then as the
        // client saw it.)
        assert_eq!(entry.status, 0, "no answer was sent");
    }
}

#[tokio::test]
async fn over_http_the_connection_closes_without_a_response() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for applied in [false, true] {
        let cluster = disconnecting(applied).await;
        let served = cluster.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"h"}}"#;
        let mut conn = tokio::net::TcpStream::connect(served.addr()).await.unwrap();
        let request = format!(
            "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        // Reads until the server closes the connection.
        let _ = conn.read_to_end(&mut answer).await;
        assert!(
            answer.is_empty(),
            "got an answer: {}",
            String::from_utf8_lossy(&answer)
        );
        let stored = cluster
            .store()
            .get(
                cmdreporter_fake_cluster::resources::well_known::configmaps(),
                "default",
                "h",
            )
            .is_ok();
        assert_eq!(stored, applied);
        // A later request on a new connection is answered.
        let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
        assert_eq!(cms.get_opt("h").await.unwrap().is_some(), applied);
    }
}
