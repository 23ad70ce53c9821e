//! Namespaces as the API server's namespace strategy makes them (`Active`, held by the
//! `kubernetes` finalizer, which updates of the namespace keep), and namespace deletion as
//! the API server and the namespace controller do it: the namespace turns `Terminating`
//! (its `spec.finalizers` hold it), nothing new may be created in it (403), its content is
//! deleted with Background propagation, and the namespace goes once the last object in it
//! is gone (objects held by finalizers or a pod's grace period keep it `Terminating` until
//! then).

use std::sync::Arc;

use crate::json::{Value, json};

use super::{Change, ChangeType, DeleteOptions, Inner, Result, Store, key, meta_mut, meta_str};
use crate::resources::{Propagation, ResourceDef, well_known};
use crate::status::{ApiError, FieldError};

/// The finalizer the namespace controller removes once a namespace's content is gone.
const KUBERNETES: &str = "kubernetes";

/// A new namespace as the real namespace strategy's `PrepareForCreate` makes it: the status
/// is `{phase: Active}` whatever the request gave, and `spec.finalizers` ends with
/// `kubernetes` unless it holds it already.
pub(super) fn prepare_for_create(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    m.insert("status".into(), json!({"phase": "Active"}));
    let spec = m.entry("spec").or_insert(Value::Null);
    if spec.is_null() {
        *spec = json!({});
    }
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    match spec.get_mut("finalizers").and_then(Value::as_array_mut) {
        Some(f) if f.iter().any(|x| x.as_str() == Some(KUBERNETES)) => {}
        Some(f) => f.push(json!(KUBERNETES)),
        None => {
            spec.insert("finalizers".into(), json!([KUBERNETES]));
        }
    }
}

/// An update of the main resource keeps the stored `spec.finalizers`, as the namespace
/// strategy's `PrepareForUpdate` does (only the `finalize` subresource changes them; the
/// store keeps the status itself, as for every resource with a status subresource).
pub(super) fn keep_spec_finalizers(current: &Value, next: &mut Value) {
    match current.pointer("/spec/finalizers") {
        Some(f) => {
            if next.pointer("/spec/finalizers") != Some(f) {
                next["spec"]["finalizers"] = f.clone();
            }
        }
        None => {
            if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        }
    }
}

/// Finalizer names without a domain that validation accepts (`IsStandardFinalizerName`).
const STANDARD_FINALIZERS: [&str; 3] = [KUBERNETES, "orphan", "foregroundDeletion"];

/// A write to the `finalize` subresource, as the namespace registry's
/// `namespaceFinalizeStrategy.PrepareForUpdate` and `ValidateNamespaceFinalizeUpdate` make
/// it: the request's spec (its `finalizers`) and metadata, the stored status; every
/// `spec.finalizers` entry without a domain must be a standard finalizer name
/// (`validateKubeFinalizerName`). The caller keeps what every update keeps (uid, deletion
/// fields, ...).
pub(super) fn prepare_for_finalize(
    current: &Value,
    mut next: Value,
) -> std::result::Result<Value, Vec<FieldError>> {
    let causes: Vec<FieldError> = next
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, f)| {
            let f = f.as_str().unwrap_or_default();
            (!f.contains('/') && !STANDARD_FINALIZERS.contains(&f)).then(|| {
                FieldError::invalid(
                    &format!("spec.finalizers[{i}]"),
                    f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            })
        })
        .collect();
    if !causes.is_empty() {
        return Err(causes);
    }
    match current.get("status") {
        Some(status) => next["status"] = status.clone(),
        None => {
            if let Some(m) = next.as_object_mut() {
                m.remove("status");
            }
        }
    }
    Ok(next)
}

/// Whether a namespace object still holds its `spec.finalizers` (`kubernetes`).
pub(super) fn held_by_spec_finalizers(def: &ResourceDef, obj: &Value) -> bool {
    def == well_known::namespaces()
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

/// 403 for a create in a namespace being deleted, with the real server's message.
pub(super) fn check_not_terminating(
    inner: &Inner,
    def: &ResourceDef,
    ns: &str,
    name: &str,
) -> Result<()> {
    let terminating = inner
        .objects
        .get(key(well_known::namespaces()))
        .and_then(|m| m.get("", ns))
        .is_some_and(|n| meta_str(n, "deletionTimestamp").is_some());
    if terminating {
        let mut e = ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                def.qualified_plural()
            ),
        );
        e.details = Some(def.details(name));
        return Err(e);
    }
    Ok(())
}

fn is_empty(inner: &Inner, ns: &str) -> bool {
    // Cluster-scoped objects are kept under the namespace "", which no namespace is named.
    inner.objects.values().all(|m| !m.has_namespace(ns))
}

impl Store {
    /// Deletes a namespace: marks it Terminating, deletes its content, and removes it once
    /// empty. Answers the namespace as it is after the content pass.
    pub(super) fn delete_namespace(&self, name: &str, opts: &DeleteOptions) -> Result<Arc<Value>> {
        let def = well_known::namespaces();
        let now = self.clock.now_rfc3339_seconds();
        let marked = self.modify_inner(def, "", name, opts.dry_run, |ns| {
            if let Some(uid) = &opts.uid
                && meta_str(ns, "uid") != Some(uid.as_str())
            {
                return Err(ApiError::conflict(
                    def,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(ns, "uid").unwrap_or_default()
                    ),
                ));
            }
            // A namespace already terminating that its `spec.finalizers` hold: the namespace
            // registry's `Delete` refuses (the controller removes it once it is empty).
            if meta_str(ns, "deletionTimestamp").is_some() && held_by_spec_finalizers(def, ns) {
                return Err(ApiError::conflict(
                    def,
                    name,
                    "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
                ));
            }
            // The namespace registry's `Delete` sets the deletionTimestamp alone (no
            // deletionGracePeriodSeconds, unlike the generic store's `markAsDeleting`).
            let m = meta_mut(ns);
            if !m.contains_key("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), json!(now));
            }
            ns["status"]["phase"] = json!("Terminating");
            Ok(())
        })?;
        if opts.dry_run {
            return Ok(marked);
        }
        // The namespace controller's pass over the content.
        let content = DeleteOptions {
            propagation: Some(Propagation::Background),
            ..DeleteOptions::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for d in self.resources.all().iter().filter(|d| d.namespaced) {
            // Each storage once: not through events.k8s.io Events, nor once per version of
            // a custom resource.
            if self.resources.storage_of(d) != *d || !seen.insert(d.storage_key().clone()) {
                continue;
            }
            let (items, _) = self.list(d, Some(name));
            for item in items {
                let n = meta_str(&item, "name").unwrap_or_default();
                if let Err(e) = self.delete(d, name, n, &content)
                    && e.code != 404
                {
                    tracing::debug!(%e, resource = d.plural, n, "namespace deletion left an object");
                }
            }
        }
        let mut inner = self.lock();
        self.finalize_namespace_if_empty(&mut inner, name);
        Ok(inner
            .objects
            .get(key(def))
            .and_then(|m| m.get("", name))
            .cloned()
            .unwrap_or(marked))
    }

    /// Removes a Terminating namespace that holds nothing any more.
    pub(super) fn finalize_namespace_if_empty(&self, inner: &mut Inner, ns: &str) {
        let def = well_known::namespaces();
        let Some(current) = inner
            .objects
            .get(key(def))
            .and_then(|m| m.get("", ns))
            .cloned()
        else {
            return;
        };
        if meta_str(&current, "deletionTimestamp").is_none() {
            return;
        }
        if !is_empty(inner, ns) {
            // The namespace controller's pass found content left: it says so in the
            // namespace's conditions (written only when they change).
            let now = self.clock.now_rfc3339_seconds();
            let conditions = deletion_conditions(inner, ns, &current, &now);
            if current.pointer("/status/conditions") != Some(&conditions) {
                let mut next = (*current).clone();
                next["status"]["conditions"] = conditions;
                self.store_write(inner, def, "", ns, current, next);
            }
            return;
        }
        // The namespace controller's finalize (an update emptying `spec.finalizers`) is
        // not written: the real registry deletes the stored namespace instead
        // (`ShouldDeleteNamespaceDuringUpdate`, then `deleteWithoutFinalizers`), so the
        // DELETED event carries it as stored, `spec.finalizers` still holding
        // `kubernetes`, at the deletion's resourceVersion (which watches write in).
        let rv = Self::next_rv(inner);
        if let Some(m) = inner.objects.get_mut(key(def)) {
            m.remove("", ns);
        }
        self.publish(
            inner,
            Change {
                kind: ChangeType::Deleted,
                resource: def.clone(),
                namespace: String::new(),
                name: ns.to_owned(),
                object: current.clone(),
                previous: Some(current),
                rv,
            },
        );
    }
}

/// The conditions the namespace controller writes on a Terminating namespace that still
/// holds content, as `ProcessContentTotals` and `updateConditions`
/// (pkg/controller/namespace/deletion/status_condition_utils.go) make them: the five types
/// in their order, each `False` with its "ok" reason unless content or finalizers remain;
/// a condition keeps its lastTransitionTime unless its status changes. Discovery, parsing
/// and deletion never fail here.
fn deletion_conditions(inner: &Inner, ns: &str, current: &Value, now: &str) -> Value {
    use std::collections::BTreeMap;
    let mut resources: Vec<String> = Vec::new();
    let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
    for (key, objects) in &inner.objects {
        let mut count = 0;
        for obj in objects.in_namespace(ns) {
            count += 1;
            for f in super::finalizers(obj) {
                *finalizers.entry(f).or_default() += 1;
            }
        }
        if count > 0 {
            let (group, plural) = key.split_once('/').unwrap_or(("", key));
            resources.push(format!("{plural}.{group} has {count} resource instances"));
        }
    }
    resources.sort();
    let mut held: Vec<String> = finalizers
        .iter()
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    held.sort();
    let remaining = |items: &[String], reason: &str, prefix: &str, ok: (&str, &str)| {
        if items.is_empty() {
            ("False", ok.0.to_owned(), ok.1.to_owned())
        } else {
            (
                "True",
                reason.to_owned(),
                format!("{prefix}{}", items.join(", ")),
            )
        }
    };
    let wanted = [
        (
            "NamespaceDeletionDiscoveryFailure",
            (
                "False",
                "ResourcesDiscovered".to_owned(),
                "All resources successfully discovered".to_owned(),
            ),
        ),
        (
            "NamespaceDeletionGroupVersionParsingFailure",
            (
                "False",
                "ParsedGroupVersions".to_owned(),
                "All legacy kube types successfully parsed".to_owned(),
            ),
        ),
        (
            "NamespaceDeletionContentFailure",
            (
                "False",
                "ContentDeleted".to_owned(),
                "All content successfully deleted, may be waiting on finalization".to_owned(),
            ),
        ),
        (
            "NamespaceContentRemaining",
            remaining(
                &resources,
                "SomeResourcesRemain",
                "Some resources are remaining: ",
                ("ContentRemoved", "All content successfully removed"),
            ),
        ),
        (
            "NamespaceFinalizersRemaining",
            remaining(
                &held,
                "SomeFinalizersRemain",
                "Some content in the namespace has finalizers remaining: ",
                (
                    "ContentHasNoFinalizers",
                    "All content-preserving finalizers finished",
                ),
            ),
        ),
    ];
    let old: Vec<&Value> = current
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let conditions: Vec<Value> = wanted
        .into_iter()
        .map(|(kind, (status, reason, message))| {
            let before = old.iter().find(|c| c["type"] == kind);
            let since = before
                .filter(|c| c["status"] == status)
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now));
            json!({"type": kind, "status": status, "lastTransitionTime": since,
                "reason": reason, "message": message})
        })
        .collect();
    Value::Array(conditions)
}
