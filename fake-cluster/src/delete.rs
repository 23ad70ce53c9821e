//! The `delete` and `deletecollection` verbs: options from the body or the query,
//! preconditions, the per-resource default propagation (with the Job warning), and the
//! answer the real server gives (a `Status`, or the object, or 202 for a legacy cascading
//! request left in place).

use crate::json::{Value, json};
use http::{Response, header};

use crate::api::{
    ApiServer, JOB_ORPHAN_WARNING, ResponseBody, item_key, json_response, parse_body,
};
use crate::query::Query;
use crate::resources::{Propagation, ResourceDef, ResourceRef, well_known};
use crate::selector::{FieldSelector, LabelSelector, at};
use crate::status::{ApiError, FieldError};
use crate::store::{DeleteOptions, Deleted, meta_str};

/// DeleteOptions of one request.
struct Options {
    store: DeleteOptions,
    /// The legacy `orphanDependents`, as given.
    orphan_dependents: Option<bool>,
}

fn options(q: &Query, body: &[u8]) -> Result<Options, ApiError> {
    let body = if body.is_empty() {
        json!({})
    } else {
        parse_body(body)?
    };
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| q.get("propagationPolicy").cloned());
    let orphan_dependents = body
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or_else(|| q.get("orphanDependents").and_then(|v| v.parse().ok()));
    // As the real handler's `ValidateDeleteOptions`, before anything is read.
    let policy = policy.filter(|p| !p.is_empty());
    let mut causes = Vec::new();
    if let (Some(_), Some(p)) = (orphan_dependents, &policy) {
        causes.push(FieldError::invalid(
            "propagationPolicy",
            p,
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    let propagation = policy.as_deref().and_then(Propagation::parse);
    if let (Some(p), None) = (&policy, propagation) {
        causes.push(FieldError::not_supported(
            "propagationPolicy",
            p,
            &["Foreground", "Background", "Orphan"],
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid_options("DeleteOptions", causes));
    }
    let propagation = propagation.or(match orphan_dependents {
        Some(true) => Some(Propagation::Orphan),
        Some(false) => Some(Propagation::Background),
        None => None,
    });
    Ok(Options {
        store: DeleteOptions {
            propagation,
            uid: at(&body, "/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resource_version: at(&body, "/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            grace_period_seconds: body
                .get("gracePeriodSeconds")
                .and_then(Value::as_i64)
                .or_else(|| q.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
            dry_run: crate::query::dry_run(q, "DeleteOptions")?
                || body
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|v| v == "All")),
        },
        orphan_dependents,
    })
}

fn with_job_warning(
    def: &ResourceDef,
    opts: &Options,
    mut resp: Response<ResponseBody>,
) -> Response<ResponseBody> {
    if opts.store.propagation.is_none() && def == well_known::jobs() {
        resp.headers_mut().insert(
            header::WARNING,
            header::HeaderValue::from_static(JOB_ORPHAN_WARNING),
        );
    }
    resp
}

impl ApiServer {
    /// `DELETE` of one object.
    pub(crate) fn delete(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        q: &Query,
        body: &[u8],
    ) -> Result<Response<ResponseBody>, ApiError> {
        let opts = options(q, body)?;
        let deleted = self.store.delete(
            &self.store.resources().storage_of(def),
            ns,
            name,
            &opts.store,
        )?;
        let resp = match deleted {
            Deleted::Gone(obj) if !def.delete_returns_object => {
                let mut details = def.details(name);
                details["uid"] = json!(meta_str(&obj, "uid"));
                json_response(
                    200,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Success", "details": details}),
                )
            }
            Deleted::Gone(obj) => self.object_response(def, 200, &obj),
            // The real server answers 202 for an object left in place only when the
            // request asked for cascading deletion with the legacy `orphanDependents: false`.
            Deleted::Terminating(obj) => {
                let code = if opts.orphan_dependents == Some(false) {
                    202
                } else {
                    200
                };
                self.object_response(def, code, &obj)
            }
        };
        Ok(with_job_warning(def, &opts, resp))
    }

    /// `DELETE` of a collection: every object matching the selectors, each deleted as a
    /// single delete would; the answer is the list of the matched objects, as the real
    /// server's `DeleteCollection` returns it.
    pub(crate) fn delete_collection(
        &self,
        def: &ResourceRef,
        namespace: Option<&str>,
        q: &Query,
        body: &[u8],
    ) -> Result<Response<ResponseBody>, ApiError> {
        let opts = options(q, body)?;
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
        let fields = FieldSelector::parse(def, q.get("fieldSelector").map_or("", String::as_str))?;
        let sdef = self.store.resources().storage_of(def);
        let (items, _) = self.store.list(&sdef, namespace);
        let mut deleted = Vec::new();
        for item in items
            .iter()
            .filter(|i| labels.matches(i) && fields.matches(i))
        {
            let ns = meta_str(item, "namespace").unwrap_or_default();
            let name = meta_str(item, "name").unwrap_or_default();
            match self.store.delete(&sdef, ns, name, &opts.store) {
                Ok(_) => deleted.push(crate::conversion::to_wire(def, item).into_owned()),
                // Gone meanwhile (a controller deleted it): not an error.
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        deleted.sort_by_key(item_key);
        let body = crate::api::list_body(
            def,
            json!({"resourceVersion": self.store.resource_version().to_string()}),
            deleted,
        );
        Ok(with_job_warning(def, &opts, json_response(200, &body)))
    }
}
