//! Custom resources: CustomResourceDefinitions (`apiextensions.k8s.io/v1`) and what serving
//! their resources takes.
//!
//! A definition is served like any other object. Every write of one, by any path, goes
//! through [`prepare`] (names defaulted, `status` with `acceptedNames`, the
//! `NamesAccepted` and `Established` conditions and `storedVersions`, as the
//! apiextensions controllers write them) and [`validate_definition`]; once stored, the
//! store's registry serves its versions (see [`served_versions`]), so discovery, routing
//! and watches see the resource at once. Deleting a definition sets the
//! `customresourcecleanup.apiextensions.k8s.io` finalizer and the `Terminating`
//! condition; the cleanup controller then deletes every object of the resource, and the
//! definition goes with the last one.
//!
//! Objects of a custom resource are stored once, at the storage version, and served at
//! every served version (conversion strategy `None`: only `apiVersion` changes, see
//! [`crate::conversion`]). Their schema is enforced by [`schema`]: types, required
//! fields, enums and bounds, and pruning of unknown fields.

mod naming;
pub mod register;
pub mod scale;
pub mod schema;
mod validation;

pub use naming::prepare;
pub use validation::{validate_definition, validate_definition_update};

use std::sync::Arc;

use crate::json::{Value, strings_at};

use crate::resources::{Propagation, ResourceDef, ResourceRef};
use crate::status::FieldError;

/// The API group of CustomResourceDefinitions.
pub const GROUP: &str = "apiextensions.k8s.io";

/// The finalizer the API server sets on a definition being deleted, removed once every
/// object of its resource is gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Refuses to create objects of a custom resource whose definition is being deleted, as
/// the real server does (405 `create not allowed while custom resource definition is
/// terminating`). Installed on every cluster.
pub struct TerminatingDefinitionCheck {
    store: Arc<crate::store::Store>,
}

impl TerminatingDefinitionCheck {
    /// The check over this store.
    pub fn new(store: Arc<crate::store::Store>) -> Self {
        Self { store }
    }
}

impl crate::api::AdmissionCheck for TerminatingDefinitionCheck {
    fn admit(
        &self,
        def: &ResourceDef,
        _ns: &str,
        _obj: &mut Value,
    ) -> Result<(), crate::status::ApiError> {
        if def.custom.is_none() {
            return Ok(());
        }
        let crds = crate::resources::well_known::crds();
        match self.store.lookup(crds, "", &def.qualified_plural()) {
            Some(d) if d.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(crate::status::ApiError::new(
                    405,
                    "MethodNotAllowed",
                    "create not allowed while custom resource definition is terminating",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// What one served version of a custom resource carries besides its [`ResourceDef`]
/// fields.
#[derive(Debug, Clone)]
pub struct CustomVersion {
    /// The version objects are stored at (the one with `storage: true`).
    pub storage_version: String,
    /// The version's `schema.openAPIV3Schema`, if it has one.
    pub schema: Option<Arc<Value>>,
    /// The version's `additionalPrinterColumns`.
    pub printer_columns: Arc<Vec<Value>>,
    /// `subresources.scale`: `specReplicasPath`, `statusReplicasPath`, `labelSelectorPath`.
    pub scale: Option<Arc<Value>>,
    /// The fields of `selectableFields` (`spec.colour` for the JSONPath `.spec.colour`),
    /// which field selectors may name besides `metadata.name` and `metadata.namespace`.
    pub selectable_fields: Vec<String>,
}

/// Whether `def` is the CustomResourceDefinition resource itself.
pub fn is_crd(def: &ResourceDef) -> bool {
    def.group == GROUP && def.plural == "customresourcedefinitions"
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn versions(crd: &Value) -> &[Value] {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The served versions of a stored definition, as the registry serves them; empty for a
/// definition that is not valid.
pub fn served_versions(crd: &Value) -> Vec<ResourceRef> {
    let group = str_at(crd, "/spec/group").unwrap_or_default();
    let names = crd
        .pointer("/status/acceptedNames")
        .or_else(|| crd.pointer("/spec/names"))
        .cloned()
        .unwrap_or(Value::Null);
    let plural = str_at(&names, "/plural").unwrap_or_default();
    let kind = str_at(&names, "/kind").unwrap_or_default();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let Some(storage) = versions(crd)
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let singular = str_at(&names, "/singular")
        .map(str::to_owned)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = str_at(crd, "/spec/scope") != Some("Cluster");
    versions(crd)
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| {
            let name = v.get("name").and_then(Value::as_str)?;
            let mut def = ResourceDef::new(group, name, plural, &singular, kind, namespaced);
            def.short_names = strings_at(&names, "/shortNames");
            def.categories = strings_at(&names, "/categories");
            if v.pointer("/subresources/status").is_some() {
                def.subresources.push("status".into());
            }
            if v.pointer("/subresources/scale").is_some() {
                def.subresources.push("scale".into());
            }
            def.default_propagation = Propagation::Background;
            def.delete_returns_object = true;
            def.has_generation = true;
            def.custom = Some(CustomVersion {
                storage_version: storage.to_owned(),
                schema: v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new),
                printer_columns: Arc::new(
                    v.get("additionalPrinterColumns")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                ),
                scale: v.pointer("/subresources/scale").cloned().map(Arc::new),
                selectable_fields: v
                    .get("selectableFields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|p| p.trim_start_matches('.').to_owned())
                    .collect(),
            });
            Some(ResourceRef::new(def))
        })
        .collect()
}
/// What the API server does to a new object of a custom resource before validation: its
/// `status` dropped when the resource has a status subresource, then [`normalize`].
pub fn prepare_create(def: &ResourceDef, obj: &mut Value) {
    if is_crd(def)
        && let Some(m) = obj.as_object_mut()
    {
        // A new definition's status is the server's to write.
        m.remove("status");
    }
    if def.custom.is_none() {
        return;
    }
    if def.has_subresource("status")
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    normalize(def, obj);
}

/// What the API server does to an object of a custom resource it is about to write: the
/// fields its schema does not declare pruned, then the schema's `default`s filled in where
/// a field is missing. Does nothing to other resources.
pub fn normalize(def: &ResourceDef, obj: &mut Value) {
    if let Some(s) = def.custom.as_ref().and_then(|c| c.schema.as_deref()) {
        schema::prune(s, obj);
        schema::apply_defaults(s, obj);
    }
}

/// Prunes the fields of an object of a custom resource that its schema does not declare
/// (nothing for other resources); the paths removed.
pub fn prune(def: &ResourceDef, obj: &mut Value) -> Vec<String> {
    match def.custom.as_ref().and_then(|c| c.schema.as_deref()) {
        Some(s) => schema::prune(s, obj),
        None => Vec::new(),
    }
}

/// The validation of definitions and of objects of custom resources against their schema,
/// added to `causes`.
pub fn validate(def: &ResourceDef, obj: &Value, causes: &mut Vec<FieldError>) {
    if is_crd(def) {
        causes.extend(validate_definition(obj));
    } else if let Some(s) = def.custom.as_ref().and_then(|c| c.schema.as_deref()) {
        schema::validate(s, obj, "", causes);
    }
}

/// Whether a write changes what `metadata.generation` counts: `spec` for built-in
/// resources; everything but `metadata` and `status` for custom resources and
/// definitions, as their registries count it.
pub fn generation_changes(def: &ResourceDef, old: &Value, new: &Value) -> bool {
    if def.custom.is_none() && !is_crd(def) {
        return old.get("spec") != new.get("spec");
    }
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests;
