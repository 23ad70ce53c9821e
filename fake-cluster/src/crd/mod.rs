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

pub mod register;
pub mod scale;
pub mod schema;

use std::sync::Arc;

use crate::json::{Value, json};

use crate::resources::{Propagation, ResourceDef, ResourceRef};
use crate::status::FieldError;
use crate::validation::is_dns1123_subdomain;

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

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
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

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "lastTransitionTime": now,
           "reason": reason, "message": message})
}

/// Keeps a condition's `lastTransitionTime` when its status did not change.
fn carry_transition(new: &mut Value, old: &[Value]) {
    let kind = new.get("type").cloned();
    if let Some(prev) = old.iter().find(|c| c.get("type") == kind.as_ref())
        && prev.get("status") == new.get("status")
        && let Some(t) = prev.get("lastTransitionTime")
    {
        new["lastTransitionTime"] = t.clone();
    }
}

/// Defaults and status of a definition about to be written: `singular` and `listKind`
/// defaulted, `status.acceptedNames`, conditions and `storedVersions` as the
/// apiextensions controllers set them. Does nothing to other objects.
///
/// `others` are the other definitions stored: a name (plural, singular, short name, kind
/// or list kind) that another definition of the same group has accepted is a conflict, and
/// then `NamesAccepted` is False with the real reason (`SingularConflict`,
/// `ShortNamesConflict`, `KindConflict`, `ListKindConflict`), the previously accepted
/// names stay, and a definition never established is not (so not served). A conflict is
/// not looked at again when the other definition goes.
pub fn prepare(def: &ResourceDef, obj: &mut Value, now: &str, others: &[Arc<Value>]) {
    if !is_crd(def) {
        return;
    }
    if let Some(names) = obj.pointer_mut("/spec/names")
        && let Some(kind) = names.get("kind").and_then(Value::as_str).map(str::to_owned)
    {
        if names.get("singular").is_none_or(|s| s.as_str() == Some("")) {
            names["singular"] = json!(kind.to_lowercase());
        }
        if names.get("listKind").is_none_or(|s| s.as_str() == Some("")) {
            names["listKind"] = json!(format!("{kind}List"));
        }
    }
    if obj.pointer("/spec/conversion").is_none() && obj.get("spec").is_some() {
        obj["spec"]["conversion"] = json!({"strategy": "None"});
    }
    let old_conditions = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut stored = strings_at(obj, "/status/storedVersions");
    if let Some(storage) = versions(obj)
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        && !stored.iter().any(|s| s == storage)
    {
        stored.push(storage.to_owned());
    }
    let terminating = obj.pointer("/metadata/deletionTimestamp").is_some();
    let conflict = name_conflict(obj, others);
    let was_established = old_conditions
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    let established = || {
        condition(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
            now,
        )
    };
    let mut conditions = match &conflict {
        None => vec![
            condition(
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
                now,
            ),
            established(),
        ],
        Some((reason, message)) => vec![
            condition("NamesAccepted", "False", reason, message, now),
            if was_established {
                established()
            } else {
                condition(
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                    now,
                )
            },
        ],
    };
    if terminating {
        conditions.push(condition(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            now,
        ));
    }
    for c in &mut conditions {
        carry_transition(c, &old_conditions);
    }
    let accepted = match conflict {
        None => obj.pointer("/spec/names").cloned().unwrap_or(json!({})),
        // Never accepted: empty names, as the real server writes them.
        Some(_) => obj
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or(json!({"plural": "", "kind": ""})),
    };
    obj["status"] = json!({
        "acceptedNames": accepted,
        "conditions": conditions,
        "storedVersions": stored,
    });
}

/// The first name of `crd` that another definition of its group has accepted: the
/// condition's reason and message.
fn name_conflict(crd: &Value, others: &[Arc<Value>]) -> Option<(&'static str, String)> {
    let group = str_at(crd, "/spec/group")?;
    let me = str_at(crd, "/metadata/name");
    let mut names: Vec<String> = Vec::new();
    let mut kinds: Vec<String> = Vec::new();
    for o in others
        .iter()
        .filter(|o| str_at(o, "/spec/group") == Some(group) && str_at(o, "/metadata/name") != me)
    {
        let accepted = o
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or(json!({}));
        for key in ["plural", "singular"] {
            names.extend(str_at(&accepted, &format!("/{key}")).map(str::to_owned));
        }
        names.extend(strings_at(&accepted, "/shortNames"));
        for key in ["kind", "listKind"] {
            kinds.extend(str_at(&accepted, &format!("/{key}")).map(str::to_owned));
        }
    }
    let taken = |v: &str, pool: &[String]| !v.is_empty() && pool.iter().any(|n| n == v);
    let in_use = |v: &str| format!("{v:?} is already in use");
    let names_of = |key: &str| str_at(crd, &format!("/spec/names/{key}")).unwrap_or_default();
    if taken(names_of("plural"), &names) {
        return Some(("PluralConflict", in_use(names_of("plural"))));
    }
    if taken(names_of("singular"), &names) {
        return Some(("SingularConflict", in_use(names_of("singular"))));
    }
    if let Some(short) = strings_at(crd, "/spec/names/shortNames")
        .into_iter()
        .find(|s| taken(s, &names))
    {
        return Some(("ShortNamesConflict", in_use(&short)));
    }
    if taken(names_of("kind"), &kinds) {
        return Some(("KindConflict", in_use(names_of("kind"))));
    }
    if taken(names_of("listKind"), &kinds) {
        return Some(("ListKindConflict", in_use(names_of("listKind"))));
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object"}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}},
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1alpha1", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn a_definition_serves_its_served_versions_with_one_storage_version() {
        let mut crd = widget_crd();
        prepare(
            crate::resources::well_known::crds(),
            &mut crd,
            "2026-01-01T00:00:00Z",
            &[],
        );
        let served = served_versions(&crd);
        let versions: Vec<&str> = served.iter().map(|d| d.version.as_str()).collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        assert!(
            served
                .iter()
                .all(|d| d.custom.as_ref().unwrap().storage_version == "v1")
        );
        assert!(served[0].has_subresource("scale") && served[0].has_subresource("status"));
        assert!(!served[1].has_subresource("status"));
        assert_eq!(served[0].short_names, ["wd"]);
        assert_eq!(served[0].singular, "widget");
        assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
    }

    #[test]
    fn a_name_another_definition_of_the_group_accepted_is_a_conflict() {
        let crds = crate::resources::well_known::crds();
        let now = "2026-01-01T00:00:00Z";
        let mut first = widget_crd();
        prepare(crds, &mut first, now, &[]);
        let mut second = widget_crd();
        second["metadata"]["name"] = json!("gizmos.example.com");
        second["spec"]["names"] =
            json!({"plural": "gizmos", "kind": "Gizmo", "shortNames": ["wd"]});
        prepare(crds, &mut second, now, &[Arc::new(first.clone())]);
        let conds = &second["status"]["conditions"];
        assert_eq!(conds[0]["status"], "False");
        assert_eq!(conds[0]["reason"], "ShortNamesConflict");
        assert_eq!(conds[0]["message"], "\"wd\" is already in use");
        assert_eq!(conds[1]["status"], "False");
        assert!(served_versions(&second).is_empty(), "not served");
        let mut third = widget_crd();
        third["metadata"]["name"] = json!("things.example.com");
        third["spec"]["names"] = json!({"plural": "things", "singular": "thing", "kind": "Widget"});
        prepare(crds, &mut third, now, &[Arc::new(first)]);
        assert_eq!(third["status"]["conditions"][0]["reason"], "KindConflict");
    }

    #[test]
    fn an_invalid_definition_names_each_bad_field() {
        let mut crd = widget_crd();
        crd["metadata"]["name"] = json!("widgets");
        crd["spec"]["scope"] = json!("Galaxy");
        crd["spec"]["versions"][1]["storage"] = json!(true);
        let fields: Vec<String> = validate_definition(&crd)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["metadata.name", "spec.scope", "spec.versions"]);
        assert!(validate_definition(&widget_crd()).is_empty());
    }
}
