//! Optional authentication and RBAC authorization, as the real API server does them
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`,
//! `plugin/pkg/auth/authorizer/rbac`). Off unless the builder turns it on
//! ([`crate::Builder::rbac`]).
//!
//! Authentication, from `Authorization: Bearer <token>`:
//! - the admin token (by default [`ADMIN_TOKEN`], which [`crate::FakeCluster::client`] and
//!   the served kubeconfig send) is user `fake-admin` in group `system:masters`, allowed
//!   everything;
//! - `fake-token:system:serviceaccount:<ns>:<sa>`, the token the kubelet mounts in pods, is
//!   that service account (groups `system:serviceaccounts`, `system:serviceaccounts:<ns>`,
//!   `system:authenticated`) while the ServiceAccount exists;
//! - no header is `system:anonymous` (group `system:unauthenticated`);
//! - anything else is 401 Unauthorized.
//!
//! Authorization: the request's attributes (verb, API group, resource and subresource,
//! namespace, name; `list` and `watch` with a `metadata.name=` field selector carry that
//! name) are checked against the Roles, ClusterRoles, RoleBindings and ClusterRoleBindings
//! in the store: verbs, apiGroups, resources (`*`, `pods/log`, `*/log`), resourceNames.
//! Discovery paths are allowed to every authenticated user and `/version` to everyone, as
//! the default `system:discovery` and `system:public-info-viewer` bindings allow them;
//! `nonResourceURLs` rules, aggregated ClusterRoles and the escalation check on writing
//! roles are not evaluated. A denied request gets the real 403 Forbidden Status.

use std::sync::Mutex;

use crate::json::{Value, json};
use bytes::Bytes;
use http::{Method, Request, Response, header};

use crate::api::{ApiServer, ResponseBody, json_response};
use crate::journal::JournalEntry;
use crate::query::parse_query;
use crate::resources::{self, well_known};
use crate::status::ApiError;

/// The admin token accepted by default (the one the served kubeconfig carries).
pub const ADMIN_TOKEN: &str = "fake-admin";

/// The user name of the admin token.
pub const ADMIN_USER: &str = "fake-admin";

/// The group allowed everything.
pub const SUPERUSER_GROUP: &str = "system:masters";

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const SA_PREFIX: &str = "system:serviceaccount:";

/// The token the kubelet mounts for a service account, which authenticates as it.
pub fn service_account_token(namespace: &str, service_account: &str) -> String {
    format!("fake-token:{SA_PREFIX}{namespace}:{service_account}")
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `system:serviceaccount:<ns>:<sa>`, `system:anonymous` or the admin's name.
    pub name: String,
    /// The user's groups.
    pub groups: Vec<String>,
}

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, ...), or the lowercased method of
    /// a non-resource request.
    pub verb: String,
    /// Whether the path names a resource (else it is a non-resource path).
    pub resource_request: bool,
    /// API group, empty for core.
    pub api_group: String,
    /// Resource plural.
    pub resource: String,
    /// Subresource (`log`, `status`), empty if none.
    pub subresource: String,
    /// Namespace, empty for cluster scope.
    pub namespace: String,
    /// Object name, empty if none.
    pub name: String,
    /// The request path.
    pub path: String,
}

/// One authorization decision, kept for tests (see [`crate::FakeCluster::audit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The user's name.
    pub user: String,
    /// What was asked.
    pub attributes: Attributes,
    /// Whether it was allowed.
    pub allowed: bool,
}

/// The authenticator and authorizer's state.
#[derive(Debug)]
pub struct Rbac {
    admin_token: String,
    audit: Mutex<Vec<AuditEntry>>,
}

impl Rbac {
    /// Authentication and authorization accepting `admin_token` as the admin.
    pub fn new(admin_token: impl Into<String>) -> Self {
        Self {
            admin_token: admin_token.into(),
            audit: Mutex::new(Vec::new()),
        }
    }

    /// Every decision so far, in order.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.audit.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The attributes of a request, from its method, path and query alone (as the real
/// `RequestInfoFactory` derives them, before routing).
pub fn attributes(method: &Method, path: &str, query: Option<&str>) -> Attributes {
    let mut a = Attributes {
        verb: method.as_str().to_lowercase(),
        resource_request: false,
        api_group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        path: path.to_owned(),
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", _v, rest @ ..] => rest,
        ["apis", g, _v, rest @ ..] => {
            a.api_group = (*g).to_owned();
            rest
        }
        _ => return a,
    };
    if rest.is_empty() {
        return a;
    }
    let mut parts: Vec<&str> = rest.to_vec();
    if parts[0] == "namespaces" && parts.len() > 1 {
        a.namespace = parts[1].to_owned();
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts.drain(..2);
        }
    }
    a.resource_request = true;
    a.resource = parts[0].to_owned();
    a.name = parts.get(1).map(|s| (*s).to_owned()).unwrap_or_default();
    a.subresource = parts.get(2).map(|s| (*s).to_owned()).unwrap_or_default();
    let q = parse_query(query);
    let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    a.verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if a.name.is_empty() => "list",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if a.name.is_empty() => "deletecollection",
        Method::DELETE => "delete",
        _ => return a,
    }
    .to_owned();
    if matches!(a.verb.as_str(), "list" | "watch")
        && a.name.is_empty()
        && let Some(fs) = q.get("fieldSelector")
        && let Some(name) = fs
            .split(',')
            .find_map(|t| t.strip_prefix("metadata.name="))
            .or_else(|| {
                fs.split(',')
                    .find_map(|t| t.strip_prefix("metadata.name=="))
            })
    {
        a.name = name.to_owned();
    }
    a
}

/// Checks a request when authorization is on: `None` lets it through, `Some` is the
/// 401 or 403 answer (already journaled).
pub(crate) fn check(api: &ApiServer, req: &Request<Bytes>) -> Option<Response<ResponseBody>> {
    let rbac = api.rbac.get()?;
    let attrs = attributes(req.method(), req.uri().path(), req.uri().query());
    let deny = match authenticate(api, rbac, req) {
        None => Some(unauthorized()),
        Some(user) => {
            let verdict = authorize(api, &user, &attrs);
            rbac.audit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(AuditEntry {
                    user: user.name.clone(),
                    attributes: attrs.clone(),
                    allowed: verdict.is_ok(),
                });
            verdict
                .err()
                .map(|reason| forbidden(&user.name, &attrs, &reason))
        }
    }?;
    api.journal.record(JournalEntry {
        verb: attrs.verb.clone(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        status: deny.code,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    });
    tracing::debug!(%deny, "request denied");
    Some(json_response(deny.code, &deny.to_status()))
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The name of the user who sent `req`, when authentication is on and its token
/// authenticates someone.
pub(crate) fn user_name(api: &ApiServer, req: &Request<Bytes>) -> Option<String> {
    let rbac = api.rbac.get()?;
    authenticate(api, rbac, req).map(|u| u.name)
}

/// The user behind a request's token; `None` for a token that authenticates no one.
fn authenticate(api: &ApiServer, rbac: &Rbac, req: &Request<Bytes>) -> Option<UserInfo> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Some(UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        });
    };
    let token = value.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    if token == rbac.admin_token {
        return Some(UserInfo {
            name: ADMIN_USER.into(),
            groups: vec![SUPERUSER_GROUP.into(), "system:authenticated".into()],
        });
    }
    let (ns, sa) = token
        .strip_prefix("fake-token:")?
        .strip_prefix(SA_PREFIX)?
        .split_once(':')?;
    api.store.lookup(well_known::serviceaccounts(), ns, sa)?;
    Some(UserInfo {
        name: format!("{SA_PREFIX}{ns}:{sa}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    })
}

/// `Ok` if allowed; `Err` holds the reason to append to the message (empty when no rule
/// matched and no binding was broken).
fn authorize(api: &ApiServer, user: &UserInfo, a: &Attributes) -> Result<(), String> {
    let authenticated = user.groups.iter().any(|g| g == "system:authenticated");
    if user.groups.iter().any(|g| g == SUPERUSER_GROUP) {
        return Ok(());
    }
    if !a.resource_request {
        let public = matches!(a.path.as_str(), "/version" | "/version/" | "/healthz");
        let discovery = ["/api", "/apis", "/openapi"]
            .iter()
            .any(|p| a.path == *p || a.path.starts_with(&format!("{p}/")));
        return if a.verb == "get" && (public || (authenticated && discovery)) {
            Ok(())
        } else {
            Err(String::new())
        };
    }
    let mut errors = Vec::new();
    let mut bindings: Vec<(String, Value)> = stored("clusterrolebindings")
        .map(|d| api.store.list(d, None).0)
        .unwrap_or_default()
        .iter()
        .map(|b| (String::new(), (**b).clone()))
        .collect();
    if !a.namespace.is_empty()
        && let Some(d) = stored("rolebindings")
    {
        let (items, _) = api.store.list(d, Some(&a.namespace));
        bindings.extend(items.iter().map(|b| (a.namespace.clone(), (**b).clone())));
    }
    for (binding_ns, binding) in &bindings {
        if !applies_to(user, binding, binding_ns) {
            continue;
        }
        match role_rules(api, binding, binding_ns) {
            Ok(rules) => {
                if rules.iter().any(|r| rule_allows(r, a)) {
                    return Ok(());
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Err(if errors.is_empty() {
        String::new()
    } else if errors.len() == 1 {
        format!("RBAC: {}", errors[0])
    } else {
        format!("RBAC: [{}]", errors.join(", "))
    })
}

fn stored(plural: &str) -> Option<&'static resources::ResourceRef> {
    resources::builtin(RBAC_GROUP, "v1", plural)
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Whether a binding's subjects include the user (`appliesTo` in the RBAC authorizer).
fn applies_to(user: &UserInfo, binding: &Value, binding_ns: &str) -> bool {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|s| {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            match s.get("kind").and_then(Value::as_str) {
                Some("ServiceAccount") => {
                    let ns = s
                        .get("namespace")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                        .unwrap_or(binding_ns);
                    !ns.is_empty() && user.name == format!("{SA_PREFIX}{ns}:{name}")
                }
                Some("User") => user.name == name,
                Some("Group") => user.groups.iter().any(|g| g == name),
                _ => false,
            }
        })
}

/// The rules of the role a binding refers to, or the error the real authorizer reports.
fn role_rules(api: &ApiServer, binding: &Value, binding_ns: &str) -> Result<Vec<Value>, String> {
    let kind = binding
        .pointer("/roleRef/kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = binding
        .pointer("/roleRef/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (plural, ns) = match kind {
        "Role" if !binding_ns.is_empty() => ("roles", binding_ns),
        "ClusterRole" => ("clusterroles", ""),
        other => return Err(format!("unsupported role reference kind: {other:?}")),
    };
    let def = stored(plural).ok_or_else(|| format!("{plural} not served"))?;
    let role = api.store.lookup(def, ns, name).ok_or_else(|| {
        format!(
            "{}.{RBAC_GROUP} \"{name}\" not found",
            &plural[..plural.len() - 1]
        )
    })?;
    Ok(role
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Whether one PolicyRule allows the request (`RuleAllows` in the RBAC authorizer).
fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let verbs = strings(rule.get("verbs"));
    let groups = strings(rule.get("apiGroups"));
    let resources = strings(rule.get("resources"));
    let names = strings(rule.get("resourceNames"));
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let verb_ok = verbs.iter().any(|v| *v == "*" || *v == a.verb);
    let group_ok = groups.iter().any(|g| *g == "*" || *g == a.api_group);
    let resource_ok = resources.iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource.as_str()))
    });
    let name_ok = names.is_empty() || names.iter().any(|n| *n == a.name);
    verb_ok && group_ok && resource_ok && name_ok
}

/// The real 403: `<resource> ["<name>"] is forbidden: User "<u>" cannot <verb> resource
/// "<resource[/sub]>" in API group "<g>" in the namespace "<ns>"` (or `at the cluster
/// scope`), with `: <reason>` when a binding was broken.
pub fn forbidden(user: &str, a: &Attributes, reason: &str) -> ApiError {
    let msg = if !a.resource_request {
        format!("User \"{user}\" cannot {} path \"{}\"", a.verb, a.path)
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let scope = if a.namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{}\"", a.namespace)
        };
        format!(
            "User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            a.verb, a.api_group
        )
    };
    let err = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    if !a.resource_request || a.resource.is_empty() {
        let mut e = ApiError::new(403, "Forbidden", format!("forbidden: {err}"));
        e.details = Some(json!({}));
        return e;
    }
    let qualified = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    let message = if a.name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} \"{}\" is forbidden: {err}", a.name)
    };
    let mut details = json!({"kind": a.resource});
    if !a.name.is_empty() {
        details["name"] = json!(a.name);
    }
    if !a.api_group.is_empty() {
        details["group"] = json!(a.api_group);
    }
    let mut e = ApiError::new(403, "Forbidden", message);
    e.details = Some(details);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_follow_the_request_info_rules() {
        let a = attributes(
            &Method::GET,
            "/api/v1/namespaces/ns/configmaps",
            Some("watch=true&fieldSelector=metadata.name%3Dx"),
        );
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.name.as_str()),
            ("watch", "configmaps", "x")
        );
        let a = attributes(&Method::GET, "/api/v1/namespaces/ns/pods/p/log", None);
        assert_eq!((a.verb.as_str(), a.subresource.as_str()), ("get", "log"));
        let a = attributes(&Method::GET, "/api/v1/namespaces/ns", None);
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "ns", "ns")
        );
        let a = attributes(&Method::DELETE, "/apis/batch/v1/namespaces/ns/jobs", None);
        assert_eq!(
            (a.verb.as_str(), a.api_group.as_str()),
            ("deletecollection", "batch")
        );
        assert!(!attributes(&Method::GET, "/apis/batch/v1", None).resource_request);
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let a = attributes(&Method::GET, "/api/v1/namespaces/ns/pods/p/log", None);
        let r = |v: Value| rule_allows(&v, &a);
        assert!(r(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]})
        ));
        assert!(r(
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/log"]})
        ));
        assert!(!r(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]})
        ));
        assert!(!r(
            json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods/log"]})
        ));
        assert!(!r(
            json!({"verbs": ["get"], "apiGroups": ["batch"], "resources": ["pods/log"]})
        ));
        assert!(r(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"], "resourceNames": ["p"]})
        ));
        assert!(!r(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"], "resourceNames": ["q"]})
        ));
    }

    #[test]
    fn the_forbidden_message_is_the_real_one() {
        let a = attributes(&Method::POST, "/api/v1/namespaces/ns/configmaps", None);
        let e = forbidden("system:serviceaccount:ns:sa", &a, "");
        assert_eq!(
            e.message,
            "configmaps is forbidden: User \"system:serviceaccount:ns:sa\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"ns\""
        );
        let a = attributes(&Method::DELETE, "/apis/batch/v1/namespaces/ns/jobs/j", None);
        let e = forbidden("u", &a, "");
        assert!(e.message.starts_with("jobs.batch \"j\" is forbidden: User \"u\" cannot delete resource \"jobs\" in API group \"batch\""));
        assert_eq!(
            e.details,
            Some(json!({"kind": "jobs", "name": "j", "group": "batch"}))
        );
    }
}
