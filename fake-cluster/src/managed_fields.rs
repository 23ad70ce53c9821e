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

use crate::json::{Map, Value};

use crate::field_sets::{self, Changes};
use crate::fieldpath::{FieldSet, Path, PathElement};
use crate::selector::at;
use crate::type_schema::Shape;

mod apply;
mod entries;

pub use apply::{apply, conflict_error};
pub use entries::{Manager, Operation, decode, encode};
use entries::{entry_json, is_reset, put_entries};

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

#[cfg(test)]
mod tests;
