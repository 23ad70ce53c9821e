//! Creates: through the admission checks (from clients and controllers alike), then the
//! store; and a client's create request, with its checks of the body against the URL.

use std::sync::Arc;

use crate::json::Value;
use http::Response;

use super::route::Target;
use super::{ApiServer, ResponseBody, parse_body, with_warnings};
use crate::query::Query;
use crate::resources::ResourceRef;
use crate::status::ApiError;
use crate::store::meta_str;
use crate::{conversion, field_validation};

impl ApiServer {
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

    pub(super) fn create_request(
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
}
