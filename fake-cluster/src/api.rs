//! The request handler: routing, verbs, error bodies and the journal. Reached in-process as a
//! `tower::Service` (see [`crate::service`]) and over HTTP (see [`crate::server`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::{Value, json};

use crate::journal::{Journal, JournalEntry};
use crate::logs::{LogQuery, LogStore};
use crate::resources::{self, Propagation, RESOURCES, ResourceDef, well_known};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{DeleteOptions, Deleted, Store, meta_str};
use crate::{patch, watch};

/// Body of every response: a full JSON document, or a stream of watch events.
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// The Kubernetes version the fake reports at `/version`.
pub const SERVER_VERSION: (&str, &str) = ("1", "33");

/// An admission check run on every create, from clients and from controllers alike.
///
/// Return an [`ApiError`] (for example a 403 Forbidden) to reject the object.
pub trait AdmissionCheck: Send + Sync {
    /// Checks (and may mutate) an object about to be created in `namespace`.
    fn admit(&self, def: &ResourceDef, namespace: &str, obj: &mut Value) -> Result<(), ApiError>;
}

/// State shared by the request handler and the controllers.
pub struct ApiServer {
    pub(crate) store: Arc<Store>,
    pub(crate) journal: Arc<Journal>,
    pub(crate) logs: Arc<LogStore>,
    admission: RwLock<Vec<Arc<dyn AdmissionCheck>>>,
}

/// Where a request goes.
#[derive(Debug)]
struct Target {
    def: &'static ResourceDef,
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
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => return Some(Route::ApiVersions),
        ["apis"] => return Some(Route::ApiGroups),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if !RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
    {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let namespaced =
        |plural: &str| resources::find(group, version, plural).filter(|d| d.namespaced);
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
    let def = resources::find(group, version, plural)?;
    if let Some(s) = sub
        && !def.subresources.contains(&s)
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

/// A JSON response.
pub fn json_response(code: u16, body: &Value) -> Response<ResponseBody> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes_response(code, "application/json", Bytes::from(bytes))
}

fn bytes_response(code: u16, content_type: &str, body: Bytes) -> Response<ResponseBody> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn error_response(e: &ApiError) -> Response<ResponseBody> {
    json_response(e.code, &e.to_status())
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
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
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Adds an admission check, run on every later create.
    pub fn add_admission(&self, check: Arc<dyn AdmissionCheck>) {
        self.admission
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(check);
    }

    /// Creates an object through admission, as a controller does (not journaled).
    pub fn create(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        mut obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let checks = self
            .admission
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for check in checks {
            check.admit(def, ns, &mut obj)?;
        }
        self.store.create(def, ns, obj)
    }

    /// Handles one request and records it in the journal.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<ResponseBody> {
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
        let (verb, resp) = match route(req.uri().path()) {
            None => (
                req.method().as_str().to_lowercase(),
                error_response(&ApiError::path_not_found()),
            ),
            Some(Route::Version) => ("get".into(), json_response(200, &version())),
            Some(Route::ApiVersions) => ("get".into(), json_response(200, &api_versions())),
            Some(Route::ApiGroups) => ("get".into(), json_response(200, &api_groups())),
            Some(Route::ResourceList(gv)) => {
                ("get".into(), json_response(200, &resource_list(&gv)))
            }
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
        query: &HashMap<String, String>,
    ) -> (String, Response<ResponseBody>) {
        let method = req.method().clone();
        let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        let verb = match (&method, &t.name, is_watch) {
            (&Method::GET, None, true) => "watch",
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
        let body = req.into_body();
        let result = match verb {
            "list" => self.list(&t, query),
            "watch" => return (verb.into(), self.watch(&t, query)),
            "get" if t.subresource.as_deref() == Some("log") => self.log(&t, &ns, query),
            "get" => self
                .store
                .get(t.def, &ns, t.name.as_deref().unwrap_or_default())
                .map(|o| json_response(200, &o)),
            "create" => self.create_request(&t, &ns, &body),
            "update" => parse_body(&body).and_then(|obj| {
                self.store
                    .update(
                        t.def,
                        &ns,
                        t.name.as_deref().unwrap_or_default(),
                        obj,
                        t.subresource.as_deref(),
                    )
                    .map(|o| json_response(200, &o))
            }),
            "patch" => self.patch(&t, &ns, &content_type, &body),
            "delete" => self.delete(&t, &ns, query, &body),
            _ => Err(ApiError::method_not_allowed()),
        };
        (verb.into(), result.unwrap_or_else(|e| error_response(&e)))
    }

    fn create_request(
        &self,
        t: &Target,
        ns: &str,
        body: &[u8],
    ) -> Result<Response<ResponseBody>, ApiError> {
        if t.subresource.is_some() {
            return Err(ApiError::method_not_allowed());
        }
        let obj = parse_body(body)?;
        if let Some(body_ns) = meta_str(&obj, "namespace")
            && t.def.namespaced
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && kind != t.def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                obj.get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                t.def.api_version()
            )));
        }
        self.create(t.def, ns, obj).map(|o| json_response(201, &o))
    }

    fn list(
        &self,
        t: &Target,
        q: &HashMap<String, String>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
        let fields =
            FieldSelector::parse(t.def, q.get("fieldSelector").map_or("", String::as_str))?;
        let (items, rv) = self.store.list(t.def, t.namespace.as_deref());
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
            let key = item_key(item);
            if start_after.as_ref().is_some_and(|s| key <= *s) {
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
        let body = json!({
            "kind": format!("{}List", t.def.kind),
            "apiVersion": t.def.api_version(),
            "metadata": metadata,
            "items": selected.iter().map(|i| &**i).collect::<Vec<_>>(),
        });
        Ok(json_response(200, &body))
    }

    fn watch(&self, t: &Target, q: &HashMap<String, String>) -> Response<ResponseBody> {
        match watch::start(
            &self.store,
            t.def,
            t.namespace.as_deref(),
            t.name.as_deref(),
            q,
        ) {
            Ok(body) => {
                let mut resp = Response::new(body);
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                resp
            }
            Err(e) => error_response(&e),
        }
    }

    fn patch(
        &self,
        t: &Target,
        ns: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Response<ResponseBody>, ApiError> {
        let name = t.name.as_deref().unwrap_or_default();
        let ct = content_type.split(';').next().unwrap_or_default().trim();
        let p = parse_body(body)?;
        let mut obj = (*self.store.get(t.def, ns, name)?).clone();
        match ct {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                patch::merge(&mut obj, &p)
            }
            "application/json-patch+json" => patch::json_patch(&mut obj, &p)?,
            other => {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other})"
                    ),
                ));
            }
        }
        // A patch carries a resourceVersion precondition only if the patch itself sets one.
        let precondition = p.pointer("/metadata/resourceVersion").is_some();
        if !precondition && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        self.store
            .update(t.def, ns, name, obj, t.subresource.as_deref())
            .map(|o| json_response(200, &o))
    }

    fn delete(
        &self,
        t: &Target,
        ns: &str,
        q: &HashMap<String, String>,
        body: &[u8],
    ) -> Result<Response<ResponseBody>, ApiError> {
        let name = t.name.as_deref().unwrap_or_default();
        let opts_body = if body.is_empty() {
            json!({})
        } else {
            parse_body(body)?
        };
        let policy = opts_body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| q.get("propagationPolicy").cloned());
        let propagation = match policy.as_deref() {
            None | Some("") => None,
            Some(p) => Some(Propagation::parse(p).ok_or_else(|| {
                ApiError::invalid(
                    t.def,
                    name,
                    vec![crate::status::FieldError::not_supported(
                        "propagationPolicy",
                        p,
                        &["Foreground", "Background", "Orphan"],
                    )],
                )
            })?),
        };
        let orphan_dependents = opts_body.get("orphanDependents").and_then(Value::as_bool);
        let propagation = propagation.or(match orphan_dependents {
            Some(true) => Some(Propagation::Orphan),
            Some(false) => Some(Propagation::Background),
            None => None,
        });
        let opts = DeleteOptions {
            propagation,
            uid: opts_body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resource_version: opts_body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            grace_period_seconds: opts_body
                .get("gracePeriodSeconds")
                .and_then(Value::as_i64)
                .or_else(|| q.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
        };
        let deleted = self.store.delete(t.def, ns, name, &opts)?;
        let mut resp = match deleted {
            Deleted::Gone(obj) if !t.def.delete_returns_object => {
                let mut details = t.def.details(name);
                details["uid"] = json!(meta_str(&obj, "uid"));
                json_response(
                    200,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Success", "details": details}),
                )
            }
            Deleted::Gone(obj) | Deleted::Terminating(obj) => json_response(200, &obj),
        };
        if propagation.is_none() && t.def == well_known::jobs() {
            resp.headers_mut().insert(
                header::WARNING,
                header::HeaderValue::from_static(
                    "299 - \"child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning\"",
                ),
            );
        }
        Ok(resp)
    }

    fn log(
        &self,
        t: &Target,
        ns: &str,
        q: &HashMap<String, String>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let name = t.name.as_deref().unwrap_or_default();
        let pod = self.store.get(t.def, ns, name)?;
        let names = |list: &str| -> Vec<String> {
            pod.pointer(&format!("/spec/{list}"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = names("containers");
        let inits = names("initContainers");
        let container = match q.get("container").filter(|c| !c.is_empty()) {
            Some(c) => c.clone(),
            None if containers.len() == 1 => containers[0].clone(),
            None => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}] or one of the init containers: [{}]",
                    containers.join(" "),
                    inits.join(" ")
                )));
            }
        };
        if !containers.contains(&container) && !inits.contains(&container) {
            return Err(ApiError::bad_request(format!(
                "container {container} is not valid for pod {name}"
            )));
        }
        let status = ["containerStatuses", "initContainerStatuses"]
            .iter()
            .filter_map(|l| {
                pod.pointer(&format!("/status/{l}"))
                    .and_then(Value::as_array)
            })
            .flatten()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(container.as_str()));
        let waiting = status.and_then(|s| s.pointer("/state/waiting"));
        let started = status.is_some_and(|s| {
            s.pointer("/state/running").is_some() || s.pointer("/state/terminated").is_some()
        });
        if !started {
            let reason = waiting
                .and_then(|w| w.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating");
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
        if matches!(q.get("previous").map(String::as_str), Some("true" | "1")) {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        let query = LogQuery {
            tail_lines: q.get("tailLines").and_then(|v| v.parse().ok()),
            limit_bytes: q.get("limitBytes").and_then(|v| v.parse().ok()),
            timestamps: matches!(q.get("timestamps").map(String::as_str), Some("true" | "1")),
        };
        let uid = meta_str(&pod, "uid").unwrap_or_default();
        Ok(bytes_response(
            200,
            "text/plain",
            self.logs.read(uid, &container, &query),
        ))
    }
}

fn item_key(item: &Value) -> String {
    format!(
        "{}/{}",
        meta_str(item, "namespace").unwrap_or_default(),
        meta_str(item, "name").unwrap_or_default()
    )
}

fn encode_continue(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_continue(token: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("continue key is not valid: illegal base64 data"))
}

fn version() -> Value {
    let (major, minor) = SERVER_VERSION;
    json!({
        "major": major, "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64",
    })
}

fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443"}]})
}

fn api_groups() -> Value {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => groups.push((r.group, vec![r.version])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(gv: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.api_version() == gv)
        .flat_map(ResourceDef::discovery)
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// Collects a request body of any type into bytes.
pub async fn collect_body<B>(body: B) -> Result<Bytes, B::Error>
where
    B: http_body::Body,
{
    Ok(body.collect().await?.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_namespaced_and_cluster_paths() {
        let Some(Route::Resource(t)) = route("/api/v1/namespaces/ns1/configmaps/cm") else {
            panic!("no route")
        };
        assert_eq!(
            (t.def.plural, t.namespace.as_deref(), t.name.as_deref()),
            ("configmaps", Some("ns1"), Some("cm"))
        );
        let Some(Route::Resource(t)) = route("/api/v1/namespaces/ns1") else {
            panic!()
        };
        assert_eq!(
            (t.def.plural, t.name.as_deref()),
            ("namespaces", Some("ns1"))
        );
        let Some(Route::Resource(t)) = route("/api/v1/namespaces/ns1/status") else {
            panic!()
        };
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let Some(Route::Resource(t)) = route("/apis/batch/v1/jobs") else {
            panic!()
        };
        assert!(t.namespace.is_none() && t.name.is_none());
        assert!(route("/apis/batch/v2/jobs").is_none());
        assert!(route("/api/v1/namespaces/a/configmaps/b/log").is_none());
    }

    #[test]
    fn decodes_queries() {
        let q = parse_query(Some("labelSelector=a%3Db%2Cc&watch=true&x=%zz"));
        assert_eq!(q["labelSelector"], "a=b,c");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "%zz");
    }
}
