//! `metadata.managedFields`: which field manager owns which fields, kept on every write as
//! the API server's field manager keeps it (`k8s.io/apiserver/pkg/endpoints/handlers/
//! fieldmanager`, `k8s.io/apimachinery/pkg/util/managedfields`, structured-merge-diff's
//! `merge.Updater`).
//!
//! - A create, update or non-apply patch is an `Update` by its manager: the manager takes
//!   the fields it added or changed (from anyone), fields it removed leave every owner, and
//!   its entry's time is set when it took anything. An update of an object that has no
//!   managed fields leaves it without; `managedFields: []` (or `[{}]`) clears them.
//! - A server-side apply is an `Apply`: the manager owns exactly the fields of its
//!   configuration; fields it applied before and no longer applies are removed from the
//!   object unless another manager owns them; changing a field another manager owns is a
//!   conflict (409) unless `force`, which takes it over. Applying the value another manager
//!   already set shares the field.
//! - `apiVersion`, `kind`, and the server's own metadata (`name`, `namespace`, `uid`,
//!   `resourceVersion`, `generation`, `creationTimestamp`, `managedFields`) are never owned;
//!   on a resource with a `status` subresource, writes to the main resource own nothing in
//!   `status`, and writes to `status` own only `status`.
//! - Entries are sorted by operation, time, manager, apiVersion and subresource; an entry
//!   whose set becomes empty goes.
//!
//! - The first apply to an object that has no managed fields (one written by the fake's own
//!   controllers, say) gives the fields it had to `before-first-apply` first.
//! - `kubectl apply --server-side` (manager `kubectl`) may take over, without `force`, the
//!   fields its client-side apply last applied (the `last-applied-configuration`
//!   annotation, where the object still has those values), and keeps that annotation in
//!   step with what it applies.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cmdreporter_fake_cluster::FakeCluster;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, Patch, PatchParams};
//! use serde_json::json;
//!
//! let cluster = FakeCluster::builder().build().await?;
//! let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
//! let cfg = |v: &str| Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "cfg"}, "data": {"k": v}}));
//! // The apply creates the object; its manager owns `data.k`.
//! let cm = cms.patch("cfg", &PatchParams::apply("alpha"), &cfg("1")).await?;
//! let entry = &cm.metadata.managed_fields.unwrap()[0];
//! assert_eq!((entry.manager.as_deref(), entry.operation.as_deref()), (Some("alpha"), Some("Apply")));
//! assert_eq!(entry.fields_v1.as_ref().unwrap().0, json!({"f:data": {"f:k": {}}}));
//! // Another manager changing it is a conflict...
//! let err = cms.patch("cfg", &PatchParams::apply("beta"), &cfg("2")).await.unwrap_err();
//! let kube::Error::Api(status) = err else { panic!() };
//! assert_eq!(status.code, 409);
//! assert_eq!(status.message, "Apply failed with 1 conflict: conflict with \"alpha\": .data.k");
//! // ...unless it forces, and takes the field over.
//! let cm = cms.patch("cfg", &PatchParams::apply("beta").force(), &cfg("2")).await?;
//! assert_eq!(cm.data.unwrap()["k"], "2");
//! # Ok(())
//! # }
//! ```
//!
//! Not done: the cap of 10 Update managers (older ones merged into `ancient-changes`) and
//! conversion of managed fields between versions of a resource.

use crate::json::{Map, Value, json};

use crate::field_sets::{self, Changes};
use crate::fieldpath::{FieldSet, Path, PathElement, path_string};
use crate::selector::{at, at_mut};
use crate::status::ApiError;
use crate::type_schema::Shape;

/// The operation of a managedFields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// A server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// `manager`.
    pub name: String,
    /// `operation`.
    pub operation: Operation,
    /// `apiVersion` of the request that wrote the fields.
    pub api_version: String,
    /// `subresource`, empty for the main resource.
    pub subresource: String,
    /// `time` (RFC 3339, whole seconds).
    pub time: Option<String>,
    /// The fields owned.
    pub fields: FieldSet,
}

impl Manager {
    /// Whether two entries are the same manager: appliers by name and subresource, updaters
    /// also by apiVersion.
    fn same(&self, name: &str, op: Operation, api_version: &str, subresource: &str) -> bool {
        self.name == name
            && self.operation == op
            && self.subresource == subresource
            && (op == Operation::Apply || self.api_version == api_version)
    }

    /// As conflict messages name a manager: `"mgr"`, `"mgr" using v1` for an updater.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.name);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        entry_json(self, self.fields.to_fields_v1())
    }

    fn from_json(v: &Value) -> Result<Manager, String> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        if s("fieldsType") != "FieldsV1" {
            return Err(format!(
                "unsupported fieldsType {:?} in managed fields entry",
                s("fieldsType")
            ));
        }
        let operation = match s("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => return Err(format!("invalid operation {other:?}")),
        };
        let fields = match v.get("fieldsV1") {
            Some(f) => FieldSet::from_fields_v1(f)?,
            None => FieldSet::new(),
        };
        Ok(Manager {
            name: s("manager"),
            operation,
            api_version: s("apiVersion"),
            subresource: s("subresource"),
            time: v.get("time").and_then(Value::as_str).map(str::to_owned),
            fields,
        })
    }
}

/// One managedFields entry of `m` with these fields (`m.fields` is not read). Built as a
/// map, not with `json!`, which would copy the fields through a serializer.
fn entry_json(m: &Manager, fields_v1: Value) -> Value {
    let mut e = Map::new();
    let mut put = |k: &str, v: Value| e.insert(k.into(), v);
    if !m.name.is_empty() {
        put("manager", Value::String(m.name.clone()));
    }
    put("operation", Value::String(m.operation.as_str().to_owned()));
    put("apiVersion", Value::String(m.api_version.clone()));
    put("fieldsType", Value::String("FieldsV1".to_owned()));
    put("fieldsV1", fields_v1);
    if let Some(t) = &m.time {
        put("time", Value::String(t.clone()));
    }
    if !m.subresource.is_empty() {
        put("subresource", Value::String(m.subresource.clone()));
    }
    Value::Object(e)
}

/// The entries of an object's `metadata.managedFields`.
pub fn decode(obj: &Value) -> Result<Vec<Manager>, String> {
    match at(obj, "/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => entries.iter().map(Manager::from_json).collect(),
        Some(_) => Err("managedFields must be a list".into()),
    }
}

/// Writes the entries, sorted as the API server sorts them, into `obj` (none: the field
/// goes).
pub fn encode(obj: &mut Value, mut managers: Vec<Manager>) {
    managers.retain(|m| !m.fields.is_empty());
    managers.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    put_entries(obj, managers.iter().map(Manager::to_json).collect());
}

/// Sets `metadata.managedFields` of `obj` to `entries` (none: the field goes).
fn put_entries(obj: &mut Value, entries: Vec<Value>) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(entries));
    }
}

/// Whether a written object asks for its managed fields to be cleared: `[]` or `[{}]`.
fn is_reset(obj: &Value) -> bool {
    match at(obj, "/metadata/managedFields") {
        Some(Value::Array(a)) => {
            a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(|m| m.is_empty()))
        }
        _ => false,
    }
}

/// What one write is: the object's shape and the request's version, subresource and time.
#[derive(Debug, Clone)]
pub struct Write<'a> {
    /// The shape of the object.
    pub shape: Shape<'a>,
    /// The request's `apiVersion`.
    pub api_version: String,
    /// The subresource written, empty for the main resource.
    pub subresource: String,
    /// Whether the resource has a `status` subresource (so the main resource owns no
    /// status).
    pub has_status: bool,
    /// Now, RFC 3339 in whole seconds.
    pub now: String,
}

/// `metadata` fields the server sets itself, which nobody owns.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

fn is_field(pe: &PathElement, names: &[&str]) -> bool {
    matches!(pe, PathElement::Field(n) if names.contains(&n.as_str()))
}

impl Write<'_> {
    /// Keeps only the fields a manager of this write may own: `apiVersion`, `kind`,
    /// `metadata` itself and the server's metadata fields go (as exact paths: what is below
    /// them stays); `status` and all below it goes from a write to the main resource of a
    /// resource with a status subresource, everything but `status` from a status write.
    fn filter(&self, set: &mut FieldSet) {
        set.remove_members(|pe| is_field(pe, &["apiVersion", "kind", "metadata"]));
        if let Some(meta) = set.field_child_mut("metadata") {
            meta.remove_members(|pe| is_field(pe, SERVER_METADATA));
        }
        set.drop_empty_child("metadata");
        if self.subresource == "status" {
            set.retain_top(|pe| is_field(pe, &["status"]));
        } else if self.has_status {
            set.retain_top(|pe| !is_field(pe, &["status"]));
        }
    }

    /// [`Write::filter`] of a set in its FieldsV1 form (a member is a key whose body is
    /// empty or holds `"."`).
    fn filter_fields_v1(&self, set: &mut Map) {
        fn unown(level: &mut Map, names: &[&str]) {
            let named = |k: &str| k.strip_prefix("f:").is_some_and(|n| names.contains(&n));
            for (k, body) in level.iter_mut() {
                if named(k)
                    && let Some(b) = body.as_object_mut()
                {
                    b.remove(".");
                }
            }
            level.retain(|k, body| !(named(k) && body.as_object().is_some_and(Map::is_empty)));
        }
        unown(set, &["apiVersion", "kind", "metadata"]);
        if let Some(meta) = set.get_mut("f:metadata").and_then(Value::as_object_mut) {
            unown(meta, SERVER_METADATA);
            if meta.is_empty() {
                set.remove("f:metadata");
            }
        }
        if self.subresource == "status" {
            set.retain(|k, _| k == "f:status");
        } else if self.has_status {
            set.remove("f:status");
        }
    }

    /// What changed from `old` to `new` that a manager of this write may own.
    fn changes(&self, old: &Value, new: &Value) -> Changes {
        let mut c = field_sets::changes(Some(old), Some(new), self.shape);
        self.filter(&mut c.changed);
        self.filter(&mut c.removed);
        c
    }
}

/// Removes from every manager but `skip` the fields `cmp` removed, and the fields it
/// changed; drops managers left with nothing. With `conflicts`, the fields changed that
/// another manager owned (the conflicts, by manager index).
fn take_over(
    managers: &mut [Manager],
    cmp: &Changes,
    skip: Option<usize>,
    conflicts: bool,
) -> Vec<(usize, Path)> {
    let mut found = Vec::new();
    if cmp.changed.is_empty() && cmp.removed.is_empty() {
        return found;
    }
    for (i, m) in managers.iter_mut().enumerate() {
        if Some(i) == skip {
            continue;
        }
        if conflicts {
            let taken = m.fields.intersection(&cmp.changed);
            found.extend(taken.paths().into_iter().map(|p| (i, p)));
        }
        // Taking `m ∩ changed` from `m` is taking `changed` from it.
        m.fields.subtract(&cmp.changed);
        m.fields.subtract(&cmp.removed);
    }
    found
}

/// Records an `Update` of `live` into `new` by `manager` in `new`'s managedFields. `live`
/// is `None` for a create.
pub fn update(w: &Write<'_>, live: Option<&Value>, new: &mut Value, manager: &str) {
    if is_reset(new) {
        encode(new, Vec::new());
        return;
    }
    let sent = if w.subresource.is_empty() {
        decode(new).ok().filter(|m| !m.is_empty())
    } else {
        None
    };
    let mut managers = match sent {
        Some(m) => m,
        None => match live.map(decode) {
            Some(Ok(m)) => m,
            Some(Err(_)) | None => Vec::new(),
        },
    };
    // An object that has no managed fields gets none from an update, as on the real server.
    if managers.is_empty() && live.is_some() {
        encode(new, Vec::new());
        return;
    }
    let baseline = baseline(new);
    if managers.is_empty()
        && let Some(mut fields) = field_sets::changed_fields_v1(Some(&baseline), Some(new), w.shape)
    {
        // A create nobody else manages: its manager's entry is what the general path below
        // would encode, written straight from the walk with no field set in between.
        w.filter_fields_v1(&mut fields);
        let mut entries = Vec::new();
        if !fields.is_empty() {
            let me = Manager {
                name: manager.to_owned(),
                operation: Operation::Update,
                api_version: w.api_version.clone(),
                subresource: w.subresource.clone(),
                time: Some(w.now.clone()),
                fields: FieldSet::new(),
            };
            entries.push(entry_json(&me, Value::Object(fields)));
        }
        put_entries(new, entries);
        return;
    }
    let cmp = w.changes(live.unwrap_or(&baseline), new);
    take_over(&mut managers, &cmp, None, false);
    let current = cmp.changed;
    if !current.is_empty() {
        match managers
            .iter_mut()
            .find(|m| m.same(manager, Operation::Update, &w.api_version, &w.subresource))
        {
            Some(m) => {
                m.fields.extend(current);
                m.time = Some(w.now.clone());
            }
            None => managers.push(Manager {
                name: manager.to_owned(),
                operation: Operation::Update,
                api_version: w.api_version.clone(),
                subresource: w.subresource.clone(),
                time: Some(w.now.clone()),
                fields: current,
            }),
        }
    }
    encode(new, managers);
}

/// The object a create starts from, as the server's empty object of the kind: its
/// metadata, and the spec and status it always has.
fn baseline(obj: &Value) -> Value {
    // Built member by member (json! would build a serde_json value and convert it).
    fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
        Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }
    let mut b = object([("metadata", object([]))]);
    for k in ["spec", "status"] {
        if obj.get(k).is_some_and(Value::is_object) {
            b[k] = object([]);
        }
    }
    // A pod spec always serializes its containers, as null when empty.
    if at(obj, "/spec/containers").is_some() {
        b["spec"]["containers"] = Value::Null;
    }
    if at(obj, "/spec/template").is_some_and(Value::is_object) {
        b["spec"]["template"] = object([
            ("metadata", object([])),
            ("spec", object([("containers", Value::Null)])),
        ]);
    }
    b
}

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

#[cfg(test)]
mod tests;
