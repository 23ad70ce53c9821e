//! The validation of a definition ([`validate_definition`]) and of an update of one
//! ([`validate_definition_update`]), with the real server's field paths.

use crate::json::Value;

use super::{schema, str_at, versions};
use crate::status::FieldError;
use crate::validation::is_dns1123_subdomain;

/// Validates a definition: names, group, scope, versions (exactly one storage version),
/// schemas and scale paths, with the real server's field paths.
pub fn validate_definition(obj: &Value) -> Vec<FieldError> {
    let mut causes = Vec::new();
    let group = str_at(obj, "/spec/group").unwrap_or_default();
    let plural = str_at(obj, "/spec/names/plural").unwrap_or_default();
    let name = str_at(obj, "/metadata/name").unwrap_or_default();
    if group.is_empty() {
        causes.push(FieldError::required("spec.group", ""));
    } else if !is_dns1123_subdomain(group) || !group.contains('.') {
        causes.push(FieldError::invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(FieldError::required("spec.names.plural", ""));
    }
    if str_at(obj, "/spec/names/kind")
        .unwrap_or_default()
        .is_empty()
    {
        causes.push(FieldError::required("spec.names.kind", ""));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match str_at(obj, "/spec/scope") {
        Some("Namespaced" | "Cluster") => {}
        None => causes.push(FieldError::required("spec.scope", "")),
        Some(other) => causes.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    let vs = versions(obj);
    if vs.is_empty() {
        causes.push(FieldError::invalid(
            "spec.versions",
            "[]",
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = vs
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        if storage != 1 {
            causes.push(FieldError::invalid(
                "spec.versions",
                &format!("{storage} storage versions"),
                "must have exactly one version marked as storage version",
            ));
        }
        if !vs
            .iter()
            .any(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        {
            causes.push(FieldError::invalid(
                "spec.versions",
                "no served versions",
                "must have at least one served version",
            ));
        }
    }
    for (i, v) in vs.iter().enumerate() {
        let at = format!("spec.versions[{i}]");
        if v.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(FieldError::required(&format!("{at}.name"), ""));
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None => causes.push(FieldError::required(
                &format!("{at}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(s) => {
                schema::check_schema(s, &format!("{at}.schema.openAPIV3Schema"), &mut causes)
            }
        }
        if let Some(scale) = v.pointer("/subresources/scale") {
            for (key, required) in [
                ("specReplicasPath", true),
                ("statusReplicasPath", true),
                ("labelSelectorPath", false),
            ] {
                let field = format!("{at}.subresources.scale.{key}");
                match scale.get(key).and_then(Value::as_str) {
                    None if required => causes.push(FieldError::required(&field, "")),
                    Some(p) if !p.starts_with('.') => causes.push(FieldError::invalid(
                        &field,
                        p,
                        "should be a json path starting with .",
                    )),
                    _ => {}
                }
            }
        }
    }
    causes
}

/// Checks that a definition update keeps what may not change (`spec.scope`,
/// `spec.group`, `spec.names.plural`).
pub fn validate_definition_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut causes = Vec::new();
    for (pointer, field) in [("/spec/scope", "spec.scope"), ("/spec/group", "spec.group")] {
        if old.pointer(pointer) != new.pointer(pointer) {
            causes.push(FieldError::invalid(
                field,
                str_at(new, pointer).unwrap_or_default(),
                "field is immutable",
            ));
        }
    }
    causes
}
