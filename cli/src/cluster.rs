//! Which cluster `cmdreporter run` talks to: the embedded fake, or the one kubectl would
//! use, checked with one `GET /version` before anything is created.

use std::path::PathBuf;
use std::time::Duration;

use cmdreporter_core::job::REPORTER_BINARY;
use cmdreporter_fake_cluster::{FakeCluster, ProcessRuntime};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// How long the connection check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the cluster comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The embedded fake cluster with the process runtime; `reporter_images` hold this
    /// executable at `/cmdreporter`.
    Fake {
        /// Reporter images whose `/cmdreporter` is this executable.
        reporter_images: Vec<String>,
    },
    /// A kubeconfig (`None`: as kubectl finds it: `KUBECONFIG`, `~/.kube/config`, then
    /// in-cluster), optionally with a context.
    Kubeconfig {
        /// An explicit kubeconfig file.
        path: Option<PathBuf>,
        /// A context other than the current one.
        context: Option<String>,
    },
}

/// Why no cluster could be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig and no in-cluster environment, or an unreadable kubeconfig.
    #[error("no usable cluster configuration: {0}")]
    NoConfig(String),
    /// The API server did not answer.
    #[error("cannot reach the cluster at {url}: {cause}")]
    Unreachable {
        /// The server's URL.
        url: String,
        /// Why.
        cause: String,
    },
    /// The API server answered the connection check with an error.
    #[error("the cluster at {url} refused the connection check: {cause}")]
    Refused {
        /// The server's URL.
        url: String,
        /// The answer.
        cause: String,
    },
    /// The embedded fake cluster could not start.
    #[error("cannot start the fake cluster: {0}")]
    Fake(String),
}

/// A cluster ready for a run.
pub struct Connected {
    /// The client.
    pub client: kube::Client,
    /// The namespace of the kubeconfig's context (`default` for the fake).
    pub default_namespace: String,
    /// The API server's URL (`in-process` for the fake).
    pub url: String,
    /// The embedded fake cluster, kept alive as long as this value.
    pub fake: Option<FakeCluster>,
}

/// The error and its causes on one line, without repeats.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// Starts the fake cluster with the process runtime; `reporter_images` hold the current
/// executable at `/cmdreporter`, and `unpullable` images fail to pull.
pub async fn start_fake(
    reporter_images: &[String],
    unpullable: &[String],
) -> Result<FakeCluster, ClusterError> {
    let runtime = ProcessRuntime::new().map_err(|e| ClusterError::Fake(e.to_string()))?;
    let me = crate::host::current_exe().map_err(|e| ClusterError::Fake(e.to_string()))?;
    for image in reporter_images {
        runtime.image_file(image, REPORTER_BINARY, me.clone());
    }
    for image in unpullable {
        runtime.unpullable(image);
    }
    FakeCluster::builder()
        .process(runtime)
        .build()
        .await
        .map_err(|e| ClusterError::Fake(e.to_string()))
}

/// Connects to `target`.
pub async fn connect(target: &Target) -> Result<Connected, ClusterError> {
    let (path, context) = match target {
        Target::Fake { reporter_images } => {
            let cluster = start_fake(reporter_images, &[]).await?;
            return Ok(Connected {
                client: cluster.client(),
                default_namespace: "default".into(),
                url: "in-process".into(),
                fake: Some(cluster),
            });
        }
        Target::Kubeconfig { path, context } => (path, context),
    };
    let options = KubeConfigOptions {
        context: context.clone(),
        ..Default::default()
    };
    let no_config = |e: &(dyn std::error::Error + 'static)| ClusterError::NoConfig(error_chain(e));
    let config = match (path, context) {
        (Some(p), _) => {
            let kc = Kubeconfig::read_from(p).map_err(|e| no_config(&e))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| no_config(&e))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| no_config(&e))?,
        (None, None) => kube::Config::infer().await.map_err(|e| no_config(&e))?,
    };
    let url = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|e| no_config(&e))?;
    match tokio::time::timeout(CHECK_TIMEOUT, client.apiserver_version()).await {
        Err(_) => Err(ClusterError::Unreachable {
            url,
            cause: format!("no answer within {}s", CHECK_TIMEOUT.as_secs()),
        }),
        Ok(Err(kube::Error::Api(status))) => Err(ClusterError::Refused {
            url,
            cause: format!("{} {}: {}", status.code, status.reason, status.message),
        }),
        Ok(Err(e)) => Err(ClusterError::Unreachable {
            url,
            cause: error_chain(&e),
        }),
        Ok(Ok(_)) => Ok(Connected {
            client,
            default_namespace,
            url,
            fake: None,
        }),
    }
}
