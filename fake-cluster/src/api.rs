//! The request handler: routing, verbs, error bodies and the journal. Reached in-process as a
//! `tower::Service` (see [`crate::service`]) and over HTTP (see [`crate::server`]).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use crate::json::Value;
use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body_util::combinators::UnsyncBoxBody;

use crate::journal::{Journal, JournalEntry};
use crate::logs::LogStore;
use crate::query::{Query, dry_run, flag, parse_query};
use crate::resources::{ResourceDef, ResourceRef};
use crate::status::ApiError;
use crate::store::Store;
use crate::tls::{ClusterCa, TlsError};
use crate::{conversion, discovery, events, field_validation, table};

mod create;
mod list;
mod response;
mod route;

pub use crate::discovery::SERVER_VERSION;
pub(crate) use list::item_key;
pub(crate) use response::{bytes_response, error_response, list_body, parse_body, with_warnings};
pub use response::{collect_body, json_response};
use route::{Route, Target, route};

/// Body of every response: a full JSON document, or a stream of watch events.
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// The warning the real API server sends when a Job is deleted without a propagation policy.
pub const JOB_ORPHAN_WARNING: &str = "299 - \"child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning\"";

/// An admission check run on every create, from clients and from controllers alike.
///
/// Return an [`ApiError`] (for example a 403 Forbidden) to reject the object.
pub trait AdmissionCheck: Send + Sync {
    /// Checks (and may mutate) an object about to be created in `namespace`.
    fn admit(&self, def: &ResourceDef, namespace: &str, obj: &mut Value) -> Result<(), ApiError>;

    /// [`AdmissionCheck::admit`] knowing who asks (the authenticated user's name, when
    /// authentication is on and a client sent the request; `None` for controllers), and
    /// returning warnings for the client's `Warning` headers. By default: `admit`, no
    /// warnings.
    fn admit_as(
        &self,
        def: &ResourceDef,
        namespace: &str,
        obj: &mut Value,
        _user: Option<&str>,
    ) -> Result<Vec<String>, ApiError> {
        self.admit(def, namespace, obj).map(|()| Vec::new())
    }
}

/// State shared by the request handler and the controllers.
pub struct ApiServer {
    pub(crate) store: Arc<Store>,
    pub(crate) journal: Arc<Journal>,
    pub(crate) logs: Arc<LogStore>,
    admission: RwLock<Vec<Arc<dyn AdmissionCheck>>>,
    ca: std::sync::OnceLock<Arc<ClusterCa>>,
    /// The fault plan being applied, if any (see [`crate::faults`]).
    pub(crate) faults: std::sync::OnceLock<crate::faults::Faults>,
    /// Authentication and authorization, when turned on (see [`crate::rbac`]).
    pub(crate) rbac: std::sync::OnceLock<crate::rbac::Rbac>,
}

impl ApiServer {
    pub(crate) fn new(store: Arc<Store>, journal: Arc<Journal>, logs: Arc<LogStore>) -> Self {
        Self {
            store,
            journal,
            logs,
            admission: RwLock::new(Vec::new()),
            ca: std::sync::OnceLock::new(),
            faults: std::sync::OnceLock::new(),
            rbac: std::sync::OnceLock::new(),
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The cluster's certificate authority, generated on first use: one per cluster.
    pub fn ca(&self) -> Result<Arc<ClusterCa>, TlsError> {
        if let Some(ca) = self.ca.get() {
            return Ok(ca.clone());
        }
        let ca = Arc::new(ClusterCa::generate()?);
        // Two first uses at once: the first one stored wins, both see it.
        Ok(self.ca.get_or_init(|| ca).clone())
    }

    /// Adds an admission check, run on every later create.
    pub fn add_admission(&self, check: Arc<dyn AdmissionCheck>) {
        self.admission
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(check);
    }

    /// Handles one request and records it in the journal.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<ResponseBody> {
        let req = match crate::faults::intercept(self, self.faults.get(), req).await {
            Ok(req) => req,
            Err(injected) => return injected,
        };
        if let Some(denied) = crate::rbac::check(self, &req) {
            return denied;
        }
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let query = parse_query(req.uri().query());
        let get = |body: &Value| ("get".to_owned(), json_response(200, body));
        let (verb, resp) = match route(self.store.resources(), req.uri().path()) {
            None => (
                req.method().as_str().to_lowercase(),
                bytes_response(
                    404,
                    "text/plain; charset=utf-8",
                    Bytes::from_static(b"404 page not found\n"),
                ),
            ),
            Some(Route::NotFoundStatus) => (
                req.method().as_str().to_lowercase(),
                error_response(&ApiError::path_not_found()),
            ),
            Some(Route::Version) => get(&discovery::version()),
            Some(Route::ApiVersions) => get(&discovery::api_versions()),
            Some(Route::ApiGroups) => get(&discovery::api_groups(self.store.resources())),
            Some(Route::ResourceList(gv)) => {
                get(&discovery::resource_list(self.store.resources(), &gv))
            }
            Some(Route::OpenApiRoot) => get(&discovery::openapi_v3_root(self.store.resources())),
            Some(Route::OpenApi(doc)) => get(&doc),
            Some(Route::Resource(target)) => self.resource(req, target, &query).await,
        };
        self.journal.record(JournalEntry {
            verb,
            path,
            status: resp.status().as_u16(),
            user_agent,
        });
        resp
    }

    async fn resource(
        &self,
        req: Request<Bytes>,
        t: Target,
        query: &Query,
    ) -> (String, Response<ResponseBody>) {
        let method = req.method().clone();
        let verb = match (&method, &t.name, flag(query, "watch")) {
            (&Method::GET, None, true) => "watch",
            (&Method::GET, Some(_), true) => "watch",
            (&Method::GET, None, false) => "list",
            (&Method::GET, Some(_), _) => "get",
            (&Method::POST, None, _) => "create",
            (&Method::PUT, Some(_), _) => "update",
            (&Method::PATCH, Some(_), _) => "patch",
            (&Method::DELETE, Some(_), _) => "delete",
            (&Method::DELETE, None, _) => "deletecollection",
            _ => {
                return (
                    method.as_str().to_lowercase(),
                    error_response(&ApiError::method_not_allowed()),
                );
            }
        };
        let ns = t.namespace.clone().unwrap_or_default();
        if !t.def.namespaced && t.namespace.is_some() {
            return (verb.into(), error_response(&ApiError::path_not_found()));
        }
        if t.def.namespaced && t.namespace.is_none() && !matches!(verb, "list" | "watch") {
            return (verb.into(), error_response(&ApiError::path_not_found()));
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let manager = crate::patch_request::manager_name(query, req.headers());
        let user = crate::rbac::user_name(self, &req);
        let table = table::wanted(req.headers(), query)
            .filter(|_| t.subresource.is_none() && table::printed(&t.def));
        let body = req.into_body();
        let name = t.name.as_deref().unwrap_or_default();
        // A namespace's `finalize` takes a PUT alone (`FinalizeREST` is an Updater only).
        if t.subresource.as_deref() == Some("finalize") && verb != "update" {
            return (verb.into(), error_response(&ApiError::method_not_allowed()));
        }
        if t.subresource.as_deref() == Some("scale") {
            let r = self.scale(&t.def, &ns, name, verb, &content_type, &body);
            return (verb.into(), r.unwrap_or_else(|e| error_response(&e)));
        }
        // events.k8s.io/v1 Events live in the core Events' storage.
        let sdef = self.store.resources().storage_of(&t.def);
        let result = match verb {
            "list" => self.list(&t, query, table),
            "watch" => {
                return (
                    verb.into(),
                    self.watch(&t, query, table)
                        .unwrap_or_else(|e| error_response(&events::rename_error(&t.def, e))),
                );
            }
            "get" if t.subresource.as_deref() == Some("log") => self.pod_log(&ns, name, query),
            "get" => self.store.get(&sdef, &ns, name).map(|o| match table {
                Some(include) => {
                    let wire = conversion::to_wire(&t.def, &o);
                    let now = self.store.clock().since_epoch();
                    json_response(200, &table::of_object(&t.def, &wire, include, now))
                }
                None => self.object_response(&t.def, 200, &o),
            }),
            "create" => dry_run(query, "CreateOptions").and_then(|dry| {
                let directive = field_validation::directive(query)?;
                self.create_request(
                    &t,
                    &ns,
                    &body,
                    dry,
                    directive,
                    (query, &manager, user.as_deref()),
                )
            }),
            "update" => parse_body(&body).and_then(|obj| {
                let warnings =
                    field_validation::check(&t.def, &obj, field_validation::directive(query)?)?;
                let dry = dry_run(query, "UpdateOptions")?;
                let sub = t.subresource.as_deref();
                self.update_request(&t.def, &ns, name, sub, query, obj, dry, &manager)
                    .map(|o| with_warnings(self.object_response(&t.def, 200, &o), &warnings))
            }),
            "patch" => dry_run(query, "PatchOptions").and_then(|dry| {
                let sub = t.subresource.as_deref();
                self.patch_request(
                    &t.def,
                    &ns,
                    name,
                    sub,
                    &content_type,
                    query,
                    &body,
                    dry,
                    &manager,
                )
            }),
            "delete" => self.delete(&t.def, &ns, name, query, &body),
            "deletecollection" => {
                self.delete_collection(&t.def, t.namespace.as_deref(), query, &body)
            }
            _ => Err(ApiError::method_not_allowed()),
        };
        let result = result.map_err(|e| events::rename_error(&t.def, e));
        (verb.into(), result.unwrap_or_else(|e| error_response(&e)))
    }

    /// A stored object as clients of `def` see it.
    pub(crate) fn object_response(
        &self,
        def: &ResourceRef,
        code: u16,
        obj: &Value,
    ) -> Response<ResponseBody> {
        json_response(code, &conversion::to_wire(def, obj))
    }
}
