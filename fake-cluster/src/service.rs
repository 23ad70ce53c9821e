//! The in-process `tower::Service` for `kube::Client::new`: requests never touch a socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};

use crate::api::{ApiServer, ResponseBody, collect_body, json_response};
use crate::status::ApiError;

/// A `tower::Service` answering Kubernetes API requests from the fake cluster.
#[derive(Clone)]
pub struct FakeService {
    api: Arc<ApiServer>,
    authorization: Option<http::HeaderValue>,
}

impl FakeService {
    /// A service over this API server, sending no credentials.
    pub fn new(api: Arc<ApiServer>) -> Self {
        Self {
            api,
            authorization: None,
        }
    }

    /// Sends `Authorization: Bearer <token>` on every request that has no `Authorization`
    /// header of its own, as a client configured with that token would (see
    /// [`crate::rbac`]). A token that is not a valid header value is not sent.
    #[must_use]
    pub fn with_token(mut self, token: &str) -> Self {
        self.authorization = http::HeaderValue::from_str(&format!("Bearer {token}")).ok();
        self
    }
}

impl<B> tower::Service<Request<B>> for FakeService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    type Response = Response<ResponseBody>;
    /// Only a dropped connection ([`crate::faults::Fault::Disconnect`]): an I/O error of
    /// kind `ConnectionReset`.
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let api = self.api.clone();
        let authorization = self.authorization.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            if let Some(value) = authorization
                && !parts.headers.contains_key(http::header::AUTHORIZATION)
            {
                parts.headers.insert(http::header::AUTHORIZATION, value);
            }
            let body = match collect_body(body).await {
                Ok(b) => b,
                Err(e) => {
                    let err = ApiError::bad_request(format!("reading the request body: {e}"));
                    return Ok(json_response(400, &err.to_status()));
                }
            };
            let resp = api.handle(Request::from_parts(parts, body)).await;
            if crate::faults::is_disconnect(&resp) {
                return Err(crate::faults::disconnect_error());
            }
            Ok(resp)
        })
    }
}
