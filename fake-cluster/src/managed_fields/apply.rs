//! Server-side apply ([`apply`]): the applier owns exactly the fields of its configuration,
//! changing a field another manager owns is a conflict ([`conflict_error`]) unless forced,
//! the first apply gives what was there to `before-first-apply`, and `kubectl` may take over
//! what its client-side apply last applied.

use crate::json::{Value, json};

use super::{Manager, Operation, Write, baseline, decode, encode, take_over};
use crate::field_sets;
use crate::fieldpath::{FieldSet, Path, PathElement, path_string};
use crate::selector::{at, at_mut};
use crate::status::ApiError;

/// A 409 for apply conflicts, as the API server writes it.
pub fn conflict_error(mut conflicts: Vec<(Manager, Path)>) -> ApiError {
    conflicts.sort_by(|a, b| {
        (&a.0.name, a.0.operation, &a.0.subresource)
            .cmp(&(&b.0.name, b.0.operation, &b.0.subresource))
            .then_with(|| a.1.cmp(&b.1))
    });
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", m.describe()),
                "field": path_string(p),
            })
        })
        .collect();
    let message = if let [(m, p)] = conflicts.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            m.describe(),
            path_string(p)
        )
    } else {
        let mut lines = Vec::new();
        let mut last: Option<String> = None;
        for (m, p) in &conflicts {
            let who = m.describe();
            if last.as_ref() != Some(&who) {
                lines.push(format!("conflicts with {who}:"));
                last = Some(who);
            }
            lines.push(format!("- {}", path_string(p)));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(json!({"causes": causes}));
    e
}

/// Server-side apply of `config` by `manager` onto `live` (`None`: the object does not
/// exist yet): the merged object, with its managedFields.
pub fn apply(
    w: &Write<'_>,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    if at(config, "/metadata/managedFields").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let mut managers = live
        .map(decode)
        .transpose()
        .unwrap_or_default()
        .unwrap_or_default();
    let base = baseline(config);
    let live_obj = live.unwrap_or(&base);
    // The first apply to an object nobody manages gives its fields to "before-first-apply".
    if let Some(l) = live
        && managers.is_empty()
    {
        let fields = w.changes(&baseline(l), l).changed;
        if !fields.is_empty() {
            managers.push(Manager {
                name: BEFORE_FIRST_APPLY.to_owned(),
                operation: Operation::Update,
                api_version: w.api_version.clone(),
                subresource: w.subresource.clone(),
                time: Some(w.now.clone()),
                fields,
            });
        }
    }
    let mut merged = field_sets::merge(Some(live_obj), config, w.shape);
    let applied = field_sets::to_field_set(config, w.shape)
        .map_err(|e| ApiError::internal(format!("failed to create typed patch object: {e}")))?;
    let mut applied = applied;
    w.filter(&mut applied);
    let me = match managers
        .iter()
        .position(|m| m.same(manager, Operation::Apply, &w.api_version, &w.subresource))
    {
        Some(i) => i,
        None => {
            managers.push(Manager {
                name: manager.to_owned(),
                operation: Operation::Apply,
                api_version: w.api_version.clone(),
                subresource: w.subresource.clone(),
                time: None,
                fields: FieldSet::new(),
            });
            managers.len() - 1
        }
    };
    let previous = std::mem::replace(&mut managers[me].fields, applied);
    managers[me].api_version = w.api_version.clone();
    // Fields this manager stopped applying go, unless someone else still owns them.
    let owned = |p: &[PathElement]| managers.iter().any(|m| m.fields.has_prefix(p));
    for p in previous.difference(&managers[me].fields).paths() {
        if !owned(&p) {
            field_sets::remove(&mut merged, &p, w.shape);
            let keep = |q: &[PathElement]| managers.iter().any(|m| m.fields.has(q));
            field_sets::collapse_empty(&mut merged, &p, w.shape, &keep);
        }
    }
    let cmp = w.changes(live_obj, &merged);
    let found = take_over(&mut managers, &cmp, Some(me), true);
    let mut conflicts: Vec<(Manager, Path)> = found
        .into_iter()
        .map(|(i, p)| (managers[i].clone(), p))
        .collect();
    if manager == KUBECTL && !conflicts.is_empty() {
        // kubectl's server-side apply takes over what its client-side apply last applied.
        let allowed = live.map(|l| last_applied_fields(w, l)).unwrap_or_default();
        conflicts.retain(|(_, p)| !allowed.has(p));
    }
    if !force && !conflicts.is_empty() {
        return Err(conflict_error(conflicts));
    }
    if manager == KUBECTL
        && let Some(l) = live
        && l.pointer(LAST_APPLIED_POINTER).is_some()
    {
        set_last_applied(&mut merged, config);
    }
    let changed = match live {
        Some(l) => strip_managed(l) != strip_managed(&merged),
        None => true,
    };
    if changed {
        managers[me].time = Some(w.now.clone());
    }
    encode(&mut merged, managers);
    Ok(merged)
}

/// The manager that owns what an object had before its first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The manager `kubectl apply --server-side` uses by default.
const KUBECTL: &str = "kubectl";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const LAST_APPLIED_POINTER: &str =
    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration";

/// The fields of the object's last-applied configuration that still have the applied
/// values.
fn last_applied_fields(w: &Write<'_>, live: &Value) -> FieldSet {
    let Some(last) = live
        .pointer(LAST_APPLIED_POINTER)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return FieldSet::new();
    };
    let Ok(set) = field_sets::to_field_set(&last, w.shape) else {
        return FieldSet::new();
    };
    let cmp = field_sets::changes(Some(&last), Some(live), w.shape);
    let mut set = set;
    set.subtract(&cmp.changed);
    set.subtract(&cmp.removed);
    set
}

/// Keeps the last-applied annotation in step with what kubectl applied server-side.
fn set_last_applied(obj: &mut Value, config: &Value) {
    let mut applied = config.clone();
    if let Some(a) = at_mut(&mut applied, "/metadata/annotations").and_then(Value::as_object_mut) {
        a.remove(LAST_APPLIED);
    }
    let text = format!("{applied}\n");
    if let Some(a) = at_mut(obj, "/metadata/annotations").and_then(Value::as_object_mut) {
        a.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

fn strip_managed(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}
