//! The fake cluster served over HTTP on loopback, for real clients (kubectl, processes).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{ApiServer, collect_body, json_response};
use crate::status::ApiError;

/// A running HTTP server for the cluster; it stops when dropped.
pub struct ServedCluster {
    addr: SocketAddr,
    _stop: watch::Sender<bool>,
}

impl ServedCluster {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig naming this server (context `fake`, namespace `default`).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let doc = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user:\n    token: fake-admin\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
            self.url()
        );
        std::fs::write(path, doc)
    }
}

/// Serves `api` on `addr` until the returned handle is dropped.
pub async fn serve(api: Arc<ApiServer>, addr: SocketAddr) -> std::io::Result<ServedCluster> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = stopped.changed() => return,
            };
            let Ok((stream, _)) = conn else { continue };
            let api = api.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let api = api.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let resp = match collect_body(body).await {
                            Ok(b) => api.handle(Request::from_parts(parts, b)).await,
                            Err(e) => json_response(
                                400,
                                &ApiError::bad_request(e.to_string()).to_status(),
                            ),
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = stopped.changed() => {}
                }
            });
        }
    });
    Ok(ServedCluster { addr, _stop: stop })
}
