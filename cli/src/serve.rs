//! `cmdreporter fake-cluster serve`: the fake cluster with the process runtime, served over
//! HTTPS (a certificate of the cluster's own CA) on loopback for kubectl and for
//! `cmdreporter run` without `--fake`.

use std::net::SocketAddr;
use std::path::PathBuf;

use cmdreporter_fake_cluster::{FakeCluster, ServedCluster};

use crate::cluster::{ClusterError, start_fake};

/// Options of `cmdreporter fake-cluster serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// Where to write a kubeconfig for this server.
    pub kubeconfig_out: Option<PathBuf>,
    /// Images whose pulls fail (`ErrImagePull`).
    pub unpullable_images: Vec<String>,
    /// Images that hold this executable at `/cmdreporter`.
    pub reporter_images: Vec<String>,
}

/// Why the fake cluster could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The cluster did not start.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: cmdreporter_fake_cluster::Error,
    },
    /// The kubeconfig could not be written.
    #[error("cannot write the kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A served fake cluster; dropping it stops serving.
pub struct Serving {
    /// The cluster.
    pub cluster: FakeCluster,
    /// The server for clients.
    pub served: ServedCluster,
}

/// Starts the fake cluster and serves it over HTTPS on `opts.addr`; the kubeconfig carries
/// the cluster's CA.
pub async fn start(opts: &ServeOptions) -> Result<Serving, ServeError> {
    let cluster = start_fake(&opts.reporter_images, &opts.unpullable_images).await?;
    let served = cluster
        .serve_https(opts.addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: opts.addr,
            source,
        })?;
    if let Some(path) = &opts.kubeconfig_out {
        served
            .write_kubeconfig(path)
            .map_err(|source| ServeError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
    }
    tracing::info!(url = %served.url(), "serving the fake cluster");
    Ok(Serving { cluster, served })
}
