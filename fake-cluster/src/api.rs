//! The request handler: routing, verbs, error bodies and the journal. Reached in-process as a
//! `tower::Service` (see [`crate::service`]) and over HTTP (see [`crate::server`]).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use crate::json::{Value, json};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

use crate::journal::{Journal, JournalEntry};
use crate::logs::LogStore;
use crate::query::{Query, decode_continue, dry_run, encode_continue, flag, parse_query};
use crate::resources::{Registry, ResourceDef, ResourceRef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Store, meta_str};
use crate::tls::{ClusterCa, TlsError};
use crate::{conversion, discovery, events, field_validation, table, watch};

pub use crate::discovery::SERVER_VERSION;

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

/// Where a request goes.
#[derive(Debug)]
struct Target {
    def: ResourceRef,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Version,
    ApiVersions,
    ApiGroups,
    ResourceList(String),
    Resource(Target),
    OpenApiRoot,
    OpenApi(Value),
    /// A path inside a served group version that names nothing: a `Status` 404.
    NotFoundStatus,
}

/// Routes a path. `None` is a path outside every served group version, which the real
/// server answers with a plain-text `404 page not found`.
fn route(registry: &Registry, path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => return Some(Route::ApiVersions),
        ["apis"] => return Some(Route::ApiGroups),
        ["openapi", "v3"] => return Some(Route::OpenApiRoot),
        ["openapi", "v3", gv @ ..] => {
            return discovery::openapi_v3_group_version(registry, &gv.join("/"))
                .map(Route::OpenApi);
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    if !discovery::serves_group_version(registry, &gv) {
        return None;
    }
    Some(route_resource(registry, group, version, gv, rest).unwrap_or(Route::NotFoundStatus))
}

fn route_resource(
    registry: &Registry,
    group: &str,
    version: &str,
    gv: String,
    rest: &[&str],
) -> Option<Route> {
    let namespaced = |plural: &str| {
        registry
            .find(group, version, plural)
            .filter(|d| d.namespaced)
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] if namespaced(plural).is_some() => (
            Some((*ns).to_owned()),
            std::iter::once(*plural)
                .chain(more.iter().copied())
                .collect::<Vec<_>>(),
        ),
        _ => (None, rest.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [] => return Some(Route::ResourceList(gv)),
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, s] => (*p, Some(*n), Some(*s)),
        _ => return None,
    };
    let def = registry.find(group, version, plural)?;
    if let Some(s) = sub
        && !def.has_subresource(s)
    {
        return None;
    }
    Some(Route::Resource(Target {
        def,
        namespace,
        name: name.map(str::to_owned),
        subresource: sub.map(str::to_owned),
    }))
}

/// Adds one `Warning: 299 - "<text>"` header per warning.
pub(crate) fn with_warnings(
    mut resp: Response<ResponseBody>,
    warnings: &[String],
) -> Response<ResponseBody> {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = header::HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// A JSON response.
pub fn json_response(code: u16, body: &Value) -> Response<ResponseBody> {
    bytes_response(code, "application/json", crate::encoding::to_bytes(body))
}

pub(crate) fn bytes_response(code: u16, content_type: &str, body: Bytes) -> Response<ResponseBody> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub(crate) fn error_response(e: &ApiError) -> Response<ResponseBody> {
    json_response(e.code, &e.to_status())
}

pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    crate::encoding::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized or malformed: {e}"
        ))
    })
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

    /// Creates an object through admission, as a controller does (not journaled).
    pub fn create(&self, def: &ResourceRef, ns: &str, obj: Value) -> Result<Arc<Value>, ApiError> {
        self.create_with(def, ns, obj, false)
    }

    /// [`ApiServer::create`]; with `dry_run`, admission and every check run but nothing is
    /// stored.
    pub fn create_with(
        &self,
        def: &ResourceRef,
        ns: &str,
        obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        self.create_as(def, ns, obj, dry_run, None).map(|(o, _)| o)
    }

    /// [`ApiServer::create_with`] for a request of `user`: also the admission warnings.
    fn create_as(
        &self,
        def: &ResourceRef,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
        user: Option<&str>,
    ) -> Result<(Arc<Value>, Vec<String>), ApiError> {
        let checks = self
            .admission
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut warnings = Vec::new();
        for check in checks {
            warnings.extend(check.admit_as(def, ns, &mut obj, user)?);
        }
        let created = if dry_run {
            self.store.create_dry_run(def, ns, obj)
        } else {
            self.store.create(def, ns, obj)
        };
        created.map(|o| (o, warnings))
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
        // events.k8s.io/v1 Events live in the core Events' storage.
        if t.subresource.as_deref() == Some("scale") {
            let r = self.scale(&t.def, &ns, name, verb, &content_type, &body);
            return (verb.into(), r.unwrap_or_else(|e| error_response(&e)));
        }
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

    fn create_request(
        &self,
        t: &Target,
        ns: &str,
        body: &[u8],
        dry_run: bool,
        directive: field_validation::Directive,
        (query, manager, user): (&Query, &str, Option<&str>),
    ) -> Result<Response<ResponseBody>, ApiError> {
        if t.subresource.is_some() {
            return Err(ApiError::method_not_allowed());
        }
        let obj = parse_body(body)?;
        let warnings = field_validation::check(&t.def, &obj, directive)?;
        if let Some(body_ns) = meta_str(&obj, "namespace")
            && t.def.namespaced
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let api_version = obj.get("apiVersion").and_then(Value::as_str);
        let kind = obj.get("kind").and_then(Value::as_str);
        if kind.is_some_and(|k| k != t.def.kind)
            || api_version.is_some_and(|v| v != t.def.api_version())
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                api_version.unwrap_or_default(),
                t.def.api_version()
            )));
        }
        let mut obj = obj;
        self.track_create(&t.def, query, &mut obj, manager)?;
        let obj = conversion::to_storage(&t.def, obj);
        let sdef = self.store.resources().storage_of(&t.def);
        self.create_as(&sdef, ns, obj, dry_run, user)
            .map(|(o, admitted)| {
                let all: Vec<String> = warnings.into_iter().chain(admitted).collect();
                with_warnings(self.object_response(&t.def, 201, &o), &all)
            })
    }

    fn list(
        &self,
        t: &Target,
        q: &Query,
        table: Option<table::IncludeObject>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
        let fields =
            FieldSelector::parse(&t.def, q.get("fieldSelector").map_or("", String::as_str))?;
        let (items, rv) = self.store.list(
            &self.store.resources().storage_of(&t.def),
            t.namespace.as_deref(),
        );
        let start_after = match q.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let limit = q
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let mut selected = Vec::new();
        let mut remaining = 0usize;
        for item in items.iter() {
            if let Some(s) = &start_after
                && item_key(item) <= *s
            {
                continue;
            }
            if !(labels.matches(item) && fields.matches(item)) {
                continue;
            }
            if limit.is_some_and(|l| selected.len() >= l) {
                remaining += 1;
            } else {
                selected.push(item.clone());
            }
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if remaining > 0
            && let Some(last) = selected.last()
        {
            metadata["continue"] = json!(encode_continue(&item_key(last)));
            metadata["remainingItemCount"] = json!(remaining);
        }
        let items = selected
            .iter()
            .map(|i| conversion::to_wire(&t.def, i).into_owned())
            .collect();
        let body = list_body(&t.def, metadata, items);
        if let Some(include) = table {
            let now = self.store.clock().since_epoch();
            return Ok(json_response(
                200,
                &table::of_list(&t.def, &body, include, now),
            ));
        }
        Ok(json_response(200, &body))
    }

    fn watch(
        &self,
        t: &Target,
        q: &Query,
        table: Option<table::IncludeObject>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let body = watch::start(
            &self.store,
            &t.def,
            t.namespace.as_deref(),
            t.name.as_deref(),
            q,
            table,
        )?;
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }
}

pub(crate) fn item_key(item: &Value) -> String {
    format!(
        "{}/{}",
        meta_str(item, "namespace").unwrap_or_default(),
        meta_str(item, "name").unwrap_or_default()
    )
}

/// Collects a request body of any type into bytes.
pub async fn collect_body<B>(body: B) -> Result<Bytes, B::Error>
where
    B: http_body::Body,
{
    Ok(body.collect().await?.to_bytes())
}

/// A list of `def`'s objects: `{"apiVersion", "items", "kind": "<Kind>List", "metadata"}`.
/// Built member by member: `json!` would serialise every item into a `serde_json::Value`
/// and convert it back, two deep copies of each listed object (which otherwise shares its
/// members with the stored one).
pub(crate) fn list_body(def: &ResourceDef, metadata: Value, items: Vec<Value>) -> Value {
    Value::Object(crate::json::Map::from_iter([
        ("apiVersion".to_owned(), Value::String(def.api_version())),
        ("items".to_owned(), Value::Array(items)),
        (
            "kind".to_owned(),
            Value::String(format!("{}List", def.kind)),
        ),
        ("metadata".to_owned(), metadata),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_namespaced_and_cluster_paths() {
        let Some(Route::Resource(t)) =
            route(&Registry::default(), "/api/v1/namespaces/ns1/configmaps/cm")
        else {
            panic!("no route")
        };
        assert_eq!(
            (
                t.def.plural.as_str(),
                t.namespace.as_deref(),
                t.name.as_deref()
            ),
            ("configmaps", Some("ns1"), Some("cm"))
        );
        let Some(Route::Resource(t)) = route(&Registry::default(), "/api/v1/namespaces/ns1") else {
            panic!()
        };
        assert_eq!(
            (t.def.plural.as_str(), t.name.as_deref()),
            ("namespaces", Some("ns1"))
        );
        let Some(Route::Resource(t)) = route(&Registry::default(), "/api/v1/namespaces/ns1/status")
        else {
            panic!()
        };
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let Some(Route::Resource(t)) = route(&Registry::default(), "/apis/batch/v1/jobs") else {
            panic!()
        };
        assert!(t.namespace.is_none() && t.name.is_none());
    }

    #[test]
    fn unknown_paths_are_404_in_the_real_server_shapes() {
        // Outside every served group version: plain text.
        assert!(route(&Registry::default(), "/apis/batch/v2/jobs").is_none());
        assert!(route(&Registry::default(), "/apis/example.com/v1").is_none());
        assert!(route(&Registry::default(), "/healthz/x").is_none());
        // Inside a served group version: a Status.
        assert!(matches!(
            route(
                &Registry::default(),
                "/api/v1/namespaces/a/configmaps/b/log"
            ),
            Some(Route::NotFoundStatus)
        ));
        assert!(matches!(
            route(&Registry::default(), "/api/v1/widgets"),
            Some(Route::NotFoundStatus)
        ));
        assert!(matches!(
            route(&Registry::default(), "/openapi/v3/apis/batch/v1"),
            Some(Route::OpenApi(_))
        ));
    }

    #[test]
    fn a_list_body_is_what_json_builds_and_shares_its_items() {
        let def = crate::resources::well_known::configmaps();
        let item = crate::json::json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        let body = list_body(def, json!({"resourceVersion": "3"}), vec![item.clone()]);
        assert_eq!(
            body,
            json!({"kind": "ConfigMapList", "apiVersion": "v1",
                   "metadata": {"resourceVersion": "3"}, "items": [item.clone()]})
        );
        let listed = body["items"][0]["data"].as_object().unwrap();
        assert!(listed.ptr_eq(item["data"].as_object().unwrap()));
    }
}
