//! Writes that go through the field manager: PATCH in its four media types (JSON patch,
//! JSON merge patch, strategic merge patch, server-side apply), PUT, and the managed
//! fields of a create.
//!
//! Each write reads the object, computes the new one with its `managedFields`, and stores it
//! under a resourceVersion precondition, trying again when another write came in between
//! (the API server's `GuaranteedUpdate`); a precondition the client set itself is a 409.
//!
//! The manager of a write is the `fieldManager` query parameter, else the program name at
//! the head of the `User-Agent` (`kubectl` for `kubectl/v1.33.0 (linux/amd64) ...`), as the
//! real server names it; an apply needs `fieldManager`.

use std::sync::Arc;

use crate::json::{Value, json};
use http::HeaderMap;
use http::header;

use crate::api::{ApiServer, ResponseBody, parse_body, with_warnings};
use crate::managed_fields::{self, Write};
use crate::query::{Query, flag};
use crate::resources::{ResourceDef, ResourceRef};
use crate::selector::{at, at_mut};
use crate::status::ApiError;
use crate::store::meta_str;
use crate::type_schema::{self, Shape};
use crate::{conversion, defaults, field_validation, patch, strategic};

/// How often a write is tried again when other writes keep coming in between.
const ATTEMPTS: usize = 16;

/// The longest field manager name the API server accepts.
const MAX_MANAGER_LEN: usize = 128;

/// The manager of a write: `fieldManager`, else the `User-Agent` up to its first `/`.
pub fn manager_name(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut out = String::new();
    for c in ua.split('/').next().unwrap_or_default().chars() {
        if c.is_control() {
            continue;
        }
        if out.len() + c.len_utf8() > MAX_MANAGER_LEN {
            break;
        }
        out.push(c);
    }
    out
}

fn options_invalid(kind: &str, field: &str, reason: &str, detail: &str) -> ApiError {
    let mut e = ApiError::new(
        422,
        "Invalid",
        format!("{kind}.meta.k8s.io \"\" is invalid: {field}: {detail}"),
    );
    e.details = Some(json!({
        "group": "meta.k8s.io",
        "kind": kind,
        "causes": [{"reason": reason, "message": detail, "field": field}],
    }));
    e
}

/// The `fieldManager` parameter as the real server validates it.
fn check_manager(query: &Query, kind: &str) -> Result<(), ApiError> {
    if query
        .get("fieldManager")
        .is_some_and(|m| m.len() > MAX_MANAGER_LEN)
    {
        return Err(options_invalid(
            kind,
            "fieldManager",
            "FieldValueTooLong",
            &format!("Too long: may not be more than {MAX_MANAGER_LEN} bytes"),
        ));
    }
    Ok(())
}

/// The shape of objects of `def`: the built-in table; a custom resource's schema (its
/// lists atomic unless the schema says `x-kubernetes-list-type: map` or `set`), or
/// deduced content when it has none.
fn shape_of(def: &ResourceDef) -> Shape<'_> {
    let schema = def.custom.as_ref().and_then(|c| c.schema.as_deref());
    type_schema::root_or_custom(&def.group, &def.kind, schema)
}

fn has_status(def: &ResourceDef) -> bool {
    def.subresources.iter().any(|s| s == "status")
}

impl ApiServer {
    fn write_context<'a>(&self, def: &'a ResourceDef, subresource: Option<&str>) -> Write<'a> {
        Write {
            shape: shape_of(def),
            api_version: def.api_version(),
            subresource: subresource.unwrap_or_default().to_owned(),
            has_status: has_status(def),
            now: self.store.clock().now_rfc3339_seconds(),
        }
    }

    /// Sets the managedFields of an object about to be created by `manager`: it owns what
    /// it sent and the defaults the API server fills in, not what admission or the
    /// resource's own create logic adds.
    pub(crate) fn track_create(
        &self,
        def: &ResourceDef,
        query: &Query,
        obj: &mut Value,
        manager: &str,
    ) -> Result<(), ApiError> {
        check_manager(query, "CreateOptions")?;
        let w = self.write_context(def, None);
        if !defaults::has_defaults(def) && obj.get("spec").is_none() {
            track_in_place(&w, obj, manager);
        } else {
            track_through_view(def, &w, obj, manager);
        }
        Ok(())
    }

    /// PUT of a whole object (or its status), with its managed fields.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update_request(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        query: &Query,
        obj: Value,
        dry_run: bool,
        manager: &str,
    ) -> Result<Arc<Value>, ApiError> {
        check_manager(query, "UpdateOptions")?;
        let sdef = self.store.resources().storage_of(def);
        let client_rv = meta_str(&obj, "resourceVersion").is_some();
        let w = self.write_context(def, subresource);
        for _ in 0..ATTEMPTS {
            let stored = self.store.get(&sdef, ns, name)?;
            let live = conversion::to_wire(def, &stored).into_owned();
            let mut new = obj.clone();
            // What the write stores, as the resource's status strategy decides it.
            let mut view = if subresource == Some("status") {
                crate::status_strategy::prepare(def, &live, &new)
            } else {
                new.clone()
            };
            managed_fields::update(&w, Some(&live), &mut view, manager);
            copy_managed_fields(&view, &mut new, subresource == Some("status"));
            if !client_rv {
                new["metadata"]["resourceVersion"] = json!(meta_str(&stored, "resourceVersion"));
            }
            match self.store.update_with(
                &sdef,
                ns,
                name,
                conversion::to_storage(def, new),
                subresource,
                dry_run,
            ) {
                Err(e) if e.code == 409 && !client_rv && e.reason == "Conflict" => continue,
                other => return other,
            }
        }
        Err(ApiError::internal(
            "too many concurrent writes to one object",
        ))
    }

    /// PATCH in any of its media types.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch_request(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        content_type: &str,
        query: &Query,
        body: &[u8],
        dry_run: bool,
        manager: &str,
    ) -> Result<http::Response<ResponseBody>, ApiError> {
        let ct = content_type.split(';').next().unwrap_or_default().trim();
        let directive = field_validation::directive(query)?;
        let builtin = type_schema::root(&def.group, &def.kind).is_some();
        let known = [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ];
        if !(known.contains(&ct) || (builtin && ct == "application/strategic-merge-patch+json")) {
            let accepted = if builtin {
                "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
            } else {
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            };
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: {accepted}"
                ),
            ));
        }
        check_manager(query, "PatchOptions")?;
        let apply = ct == "application/apply-patch+yaml";
        let force = query.get("force").map(|_| flag(query, "force"));
        if apply {
            if query.get("fieldManager").is_none_or(|m| m.is_empty()) {
                return Err(options_invalid(
                    "PatchOptions",
                    "fieldManager",
                    "FieldValueRequired",
                    "Required value: is required for apply patch",
                ));
            }
        } else if force.is_some() {
            return Err(options_invalid(
                "PatchOptions",
                "force",
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
            ));
        }
        let p = if apply {
            parse_apply_body(body)?
        } else {
            parse_body(body)?
        };
        let sdef = self.store.resources().storage_of(def);
        let w = self.write_context(def, subresource);
        let mut warnings = Vec::new();
        if apply {
            check_applied(def, ns, name, &p)?;
            warnings = field_validation::check(def, &p, directive)?;
        }
        for _ in 0..ATTEMPTS {
            let stored = match self.store.get(&sdef, ns, name) {
                Ok(s) => Some(s),
                Err(e) if e.code == 404 && apply && subresource.is_none() => None,
                Err(e) => return Err(e),
            };
            let Some(stored) = stored else {
                // An apply to an object that does not exist creates it.
                let obj = managed_fields::apply(&w, None, &p, manager, force == Some(true))?;
                let created =
                    self.create_with(&sdef, ns, conversion::to_storage(def, obj), dry_run);
                match created {
                    Err(e) if e.code == 409 && e.reason == "AlreadyExists" => continue,
                    other => {
                        return other
                            .map(|o| with_warnings(self.object_response(def, 201, &o), &warnings));
                    }
                }
            };
            let live = conversion::to_wire(def, &stored).into_owned();
            let mut obj = live.clone();
            // A patch carries a resourceVersion precondition only if it sets one itself.
            let client_rv;
            match ct {
                "application/apply-patch+yaml" => {
                    obj = managed_fields::apply(&w, Some(&live), &p, manager, force == Some(true))?;
                    client_rv = at(&p, "/metadata/resourceVersion").is_some();
                }
                other => {
                    match other {
                        "application/merge-patch+json" => patch::merge(&mut obj, &p),
                        "application/json-patch+json" => patch::json_patch(&mut obj, &p)?,
                        _ => obj = strategic::apply(&obj, &p, shape_of(def))?,
                    }
                    client_rv = if other == "application/json-patch+json" {
                        meta_str(&obj, "resourceVersion") != meta_str(&stored, "resourceVersion")
                    } else {
                        at(&p, "/metadata/resourceVersion").is_some()
                    };
                    warnings = field_validation::check(def, &obj, directive)?;
                    let mut view = if subresource == Some("status") {
                        crate::status_strategy::prepare(def, &live, &obj)
                    } else {
                        obj.clone()
                    };
                    managed_fields::update(&w, Some(&live), &mut view, manager);
                    copy_managed_fields(&view, &mut obj, subresource == Some("status"));
                }
            }
            if !client_rv && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "resourceVersion".into(),
                    json!(meta_str(&stored, "resourceVersion")),
                );
            }
            match self.store.update_with(
                &sdef,
                ns,
                name,
                conversion::to_storage(def, obj),
                subresource,
                dry_run,
            ) {
                Err(e) if e.code == 409 && !client_rv && e.reason == "Conflict" => continue,
                other => {
                    return other
                        .map(|o| with_warnings(self.object_response(def, 200, &o), &warnings));
                }
            }
        }
        Err(ApiError::internal(
            "too many concurrent writes to one object",
        ))
    }
}

/// An apply body: YAML (JSON is YAML too).
fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

/// An applied configuration must be of the resource's version and kind, and name the
/// object of the URL.
fn check_applied(def: &ResourceDef, ns: &str, name: &str, cfg: &Value) -> Result<(), ApiError> {
    if !cfg.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the applied configuration must be an object",
        ));
    }
    let version = cfg
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if version != def.api_version() {
        return Err(ApiError::bad_request(format!(
            "Incorrect version specified in apply patch. Specified patch version: {version}, expected: {}",
            def.api_version()
        )));
    }
    let kind = cfg.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "Incorrect kind specified in apply patch. Specified patch kind: {kind}, expected: {}",
            def.kind
        )));
    }
    if let Some(n) = meta_str(cfg, "name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if def.namespaced
        && let Some(n) = meta_str(cfg, "namespace")
        && n != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Copies `managedFields` of `from` into `to`; when `from` has none, they go (for a status
/// write, an empty list tells the store to drop them).
fn copy_managed_fields(from: &Value, to: &mut Value, status: bool) {
    if !to.get("metadata").is_some_and(Value::is_object) {
        to["metadata"] = json!({});
    }
    match at(from, "/metadata/managedFields") {
        Some(mf) => to["metadata"]["managedFields"] = mf.clone(),
        None if status => to["metadata"]["managedFields"] = json!([]),
        None => {
            if let Some(m) = to["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
    }
}

/// A create's managed fields computed on a view of the request: the request with the
/// server's defaults, less what the server adds after its field manager ran; the entries
/// go into the request's metadata.
fn track_through_view(def: &ResourceDef, w: &Write<'_>, obj: &mut Value, manager: &str) {
    let mut view = obj.clone();
    defaults::apply(def, &mut view);
    unown_server_additions(obj, &mut view);
    managed_fields::update(w, None, &mut view, manager);
    let meta = obj
        .as_object_mut()
        .map(|m| m.entry("metadata").or_insert_with(|| json!({})));
    if let Some(Value::Object(meta)) = meta {
        match at_mut(&mut view, "/metadata/managedFields").map(Value::take) {
            Some(mf) => meta.insert("managedFields".into(), mf),
            None => meta.remove("managedFields"),
        };
    }
}

/// [`track_through_view`] of a request that is its own view: of a resource without
/// defaults, and with no `spec` (all that [`unown_server_additions`] removes is under it).
/// `update` writes only `metadata.managedFields` (where `metadata` is an object), so it
/// writes into the request itself, and no copy is made.
fn track_in_place(w: &Write<'_>, obj: &mut Value, manager: &str) {
    managed_fields::update(w, None, obj, manager);
    if let Some(m) = obj.as_object_mut() {
        m.entry("metadata").or_insert_with(|| json!({}));
    }
}

/// Removes from `view` (the request object with the server's defaults) what the API server
/// adds after its field manager ran: the Job's generated selector and template labels, the
/// pod's default service account and priority (admission), when the request had none.
fn unown_server_additions(request: &Value, view: &mut Value) {
    let pod_specs: &[&str] = &["/spec", "/spec/template/spec"];
    for p in pod_specs {
        let Some(sent) = at(request, p) else {
            continue;
        };
        if let Some(spec) = at_mut(view, p).and_then(Value::as_object_mut)
            && spec.contains_key("containers")
        {
            for k in ["serviceAccountName", "serviceAccount", "priority"] {
                if sent.get(k).is_none() {
                    spec.remove(k);
                }
            }
            if let Some(sa) = sent
                .get("serviceAccountName")
                .or_else(|| sent.get("serviceAccount"))
            {
                spec.insert("serviceAccountName".into(), sa.clone());
                spec.insert("serviceAccount".into(), sa.clone());
            }
        }
    }
    if at(view, "/spec/template").is_some() {
        if at(request, "/spec/selector").is_none()
            && let Some(spec) = view.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.remove("selector");
        }
        let sent_labels = at(request, "/spec/template/metadata/labels");
        if let Some(labels) =
            at_mut(view, "/spec/template/metadata/labels").and_then(Value::as_object_mut)
        {
            for k in [
                "batch.kubernetes.io/controller-uid",
                "batch.kubernetes.io/job-name",
                "controller-uid",
                "job-name",
            ] {
                if sent_labels.and_then(|l| l.get(k)).is_none() {
                    labels.remove(k);
                }
            }
            if labels.is_empty()
                && let Some(m) =
                    at_mut(view, "/spec/template/metadata").and_then(Value::as_object_mut)
            {
                m.remove("labels");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    use crate::resources::well_known;

    /// A create request of a resource without defaults: metadata absent, not an object,
    /// empty, or with labels, owners and sent managedFields of every kind; data or not.
    fn random_request(rng: &mut impl Rng) -> Value {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        let managed = [
            json!([]),
            json!([{}]),
            json!("x"),
            json!([{"manager": "m", "operation": "Update", "apiVersion": "v1",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]),
            json!([{"manager": "m", "fieldsType": "FieldsV2"}]),
        ];
        match rng.random_range(0..5) {
            0 => {}
            1 => obj["metadata"] = json!("not an object"),
            2 => obj["metadata"] = json!({}),
            _ => {
                obj["metadata"] = json!({"name": "n", "labels": {"a": "b"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}]});
                if rng.random() {
                    obj["metadata"]["managedFields"] =
                        managed[rng.random_range(0..managed.len())].clone();
                }
            }
        }
        if rng.random() {
            obj["data"] = json!({"a": "1", "b": ""});
        }
        if rng.random() {
            obj["binaryData"] = json!({});
        }
        obj
    }

    #[test]
    fn a_create_without_defaults_or_spec_gets_the_managed_fields_its_view_gives() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut with_entries = 0;
        for def in [
            well_known::configmaps(),
            well_known::serviceaccounts(),
            well_known::events(),
        ] {
            assert!(!defaults::has_defaults(def));
            let w = Write {
                shape: shape_of(def),
                api_version: def.api_version(),
                subresource: String::new(),
                has_status: has_status(def),
                now: "2026-12-01T00:00:00Z".into(),
            };
            for _ in 0..300 {
                let request = random_request(&mut rng);
                let mut through_view = request.clone();
                track_through_view(def, &w, &mut through_view, "mgr");
                let mut in_place = request.clone();
                track_in_place(&w, &mut in_place, "mgr");
                assert_eq!(in_place, through_view, "{request}");
                with_entries += usize::from(at(&in_place, "/metadata/managedFields").is_some());
            }
        }
        // Both kinds of result were compared: with entries and without.
        assert!((100..800).contains(&with_entries), "{with_entries}");
        assert!(defaults::has_defaults(well_known::jobs()));
        assert!(defaults::has_defaults(well_known::pods()));
    }

    #[test]
    fn manager_is_the_program_name_of_the_user_agent() {
        let mut h = HeaderMap::new();
        h.insert(
            header::USER_AGENT,
            "kubectl/v1.33.0 (linux/amd64) kubernetes/abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(manager_name(&Query::default(), &h), "kubectl");
        let mut q = Query::default();
        q.insert("fieldManager".into(), "mine".into());
        assert_eq!(manager_name(&q, &h), "mine");
        assert_eq!(manager_name(&Query::default(), &HeaderMap::new()), "");
    }
}
