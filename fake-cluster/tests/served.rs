#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The cluster served on loopback: over HTTPS with its own CA, as a kubeconfig names it and
//! as an in-cluster client sees it, and over plain HTTP.

use cmdreporter_fake_cluster::FakeCluster;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

async fn client_from_kubeconfig(path: &std::path::Path) -> kube::Client {
    let kc = Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn https_with_the_clusters_ca_through_a_kubeconfig() {
    let c = FakeCluster::builder().build().await.unwrap();
    let served = c.serve_https("127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert!(served.url().starts_with("https://127.0.0.1:"));
    assert_eq!(served.ca_pem(), Some(c.ca_pem().unwrap().as_str()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    served.write_kubeconfig(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("certificate-authority-data: "));
    let client = client_from_kubeconfig(&path).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &cm("over-tls"))
        .await
        .unwrap();
    assert_eq!(cms.get("over-tls").await.unwrap().data.unwrap()["k"], "v");
    let journal = c.journal().entries();
    assert!(
        journal
            .iter()
            .any(|e| e.verb == "create" && e.status == 201)
    );
}

#[tokio::test]
async fn in_cluster_style_client_trusts_only_the_mounted_ca() {
    let c = FakeCluster::builder().build().await.unwrap();
    let served = c.serve_https("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // What in-cluster config builds from KUBERNETES_SERVICE_HOST/PORT and ca.crt.
    let pem = c.ca_pem().unwrap();
    let der = rustls_pemfile_der(&pem);
    let mut config = kube::Config::new(served.url().parse().unwrap());
    config.root_cert = Some(vec![der]);
    config.auth_info.token = Some("token-of-the-pod".to_owned().into());
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &cm("in-cluster"))
        .await
        .unwrap();

    // Another cluster's CA is not trusted: TLS verification is real.
    let other = FakeCluster::builder().build().await.unwrap();
    let mut config = kube::Config::new(served.url().parse().unwrap());
    config.root_cert = Some(vec![rustls_pemfile_der(&other.ca_pem().unwrap())]);
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    assert!(cms.get("in-cluster").await.is_err());
}

#[tokio::test]
async fn plain_http_stays_available() {
    let c = FakeCluster::builder().build().await.unwrap();
    let served = c.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert!(served.url().starts_with("http://"));
    assert_eq!(served.ca_pem(), None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    served.write_kubeconfig(&path).unwrap();
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("certificate-authority-data")
    );
    let cms: Api<ConfigMap> = Api::default_namespaced(client_from_kubeconfig(&path).await);
    cms.create(&PostParams::default(), &cm("plain"))
        .await
        .unwrap();
    assert!(cms.get("plain").await.is_ok());
}

/// The DER bytes of the one certificate in a PEM document.
fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}
