//! The fake cluster served on loopback for real clients (kubectl, processes), over plain
//! HTTP or over HTTPS with the cluster's own CA (see [`crate::tls`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{ApiServer, collect_body, json_response};
use crate::status::ApiError;
use crate::tls::ClusterCa;

/// A running server for the cluster; it stops when dropped.
pub struct ServedCluster {
    addr: SocketAddr,
    ca: Option<Arc<ClusterCa>>,
    _stop: watch::Sender<bool>,
}

impl std::fmt::Debug for ServedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedCluster")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl ServedCluster {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://...` when served over TLS.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM of the CA that signed the server's certificate (HTTPS only): what an
    /// in-cluster client mounts as `ca.crt`.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_deref().map(ClusterCa::ca_pem)
    }

    /// The kubeconfig naming this server (context `fake`, namespace `default`, a bearer
    /// token the fake accepts); over HTTPS it carries `certificate-authority-data`.
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = match self.ca_pem() {
            Some(pem) => format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            ),
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n{ca}users:\n- name: fake\n  user:\n    token: fake-admin\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
            self.url()
        )
    }

    /// Writes [`ServedCluster::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }
}

/// Serves `api` over plain HTTP on `addr` until the returned handle is dropped.
pub async fn serve(api: Arc<ApiServer>, addr: SocketAddr) -> std::io::Result<ServedCluster> {
    serve_with(api, addr, None).await
}

/// Serves `api` over HTTPS on `addr`, with a certificate signed by `ca`, until the returned
/// handle is dropped.
pub async fn serve_tls(
    api: Arc<ApiServer>,
    addr: SocketAddr,
    ca: Arc<ClusterCa>,
) -> std::io::Result<ServedCluster> {
    serve_with(api, addr, Some(ca)).await
}

async fn serve_with(
    api: Arc<ApiServer>,
    addr: SocketAddr,
    ca: Option<Arc<ClusterCa>>,
) -> std::io::Result<ServedCluster> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let acceptor = ca
        .as_ref()
        .map(|ca| tokio_rustls::TlsAcceptor::from(ca.server_config()));
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = stopped.changed() => return,
            };
            let Ok((stream, _)) = conn else { continue };
            let _ = stream.set_nodelay(true);
            let api = api.clone();
            let stopped = stopped.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => serve_connection(api, stream, stopped).await,
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => serve_connection(api, tls, stopped).await,
                        Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                    },
                }
            });
        }
    });
    Ok(ServedCluster {
        addr,
        ca,
        _stop: stop,
    })
}

async fn serve_connection<S>(api: Arc<ApiServer>, stream: S, mut stopped: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let api = api.clone();
        async move {
            let (parts, body) = req.into_parts();
            let resp = match collect_body(body).await {
                Ok(b) => api.handle(Request::from_parts(parts, b)).await,
                Err(e) => json_response(400, &ApiError::bad_request(e.to_string()).to_status()),
            };
            // A service error makes hyper close the connection without a response.
            if crate::faults::is_disconnect(&resp) {
                return Err(crate::faults::disconnect_error());
            }
            Ok(resp)
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = stopped.changed() => {}
    }
}
