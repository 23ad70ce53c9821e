//! Writing an existing object through the store's entry points: [`Store::update`] (a
//! replacement of the main resource or of its `status` subresource, with the checks of a
//! replacement) and [`Store::modify`] (read-modify-write); both go down the write path of
//! [`write`](super::write).

use std::sync::Arc;

use crate::json::Value;

use super::{Result, Store, meta, meta_mut, meta_str, namespace};
use crate::resources::{ResourceRef, well_known};
use crate::status::{ApiError, FieldError};
use crate::{crd, defaults};

impl Store {
    /// Replaces an object (the main resource, or its `status` subresource).
    ///
    /// A resourceVersion in the new object must match the stored one (409 Conflict otherwise).
    pub fn update(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        new: Value,
        subresource: Option<&str>,
    ) -> Result<Arc<Value>> {
        self.update_with(def, ns, name, new, subresource, false)
    }

    /// [`Store::update`], or with `dry_run` every check and the object it would store,
    /// without storing it.
    pub fn update_with(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        new: Value,
        subresource: Option<&str>,
        dry_run: bool,
    ) -> Result<Arc<Value>> {
        if meta_str(&new, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&new, "name").unwrap_or_default()
            )));
        }
        let precondition = meta_str(&new, "resourceVersion").map(str::to_owned);
        // A replacement builds the new object from the request, not from a copy of the
        // stored one (which `modify` would make and this would throw away).
        let spec_kept = subresource == Some("status");
        self.write_scoped(def, ns, name, dry_run, spec_kept, |current| {
            if let Some(rv) = &precondition
                && meta_str(current, "resourceVersion") != Some(rv.as_str())
            {
                return Err(ApiError::stale(def, name));
            }
            let mut next = new;
            // A custom resource's status write takes nothing of the request's metadata.
            if !(subresource == Some("status") && def.custom.is_some()) {
                check_uid(def, name, current, &next)?;
            }
            match subresource {
                Some("status") => {
                    // The field manager's bookkeeping of this write (see `managed_fields`).
                    let managed = crate::selector::at(&next, "/metadata/managedFields").cloned();
                    // The status, and the metadata the resource's status strategy lets through.
                    next = crate::status_strategy::prepare(def, current, &next);
                    match managed {
                        Some(Value::Array(a)) if a.is_empty() => {
                            meta_mut(&mut next).remove("managedFields");
                        }
                        Some(mf) => {
                            meta_mut(&mut next).insert("managedFields".into(), mf);
                        }
                        None => {}
                    }
                    crate::status_strategy::forbid_new_finalizers(def, name, current, &next)?;
                    if def.custom.is_some() {
                        crd::normalize(def, &mut next);
                    }
                    let mut causes = defaults::validate(def, &next);
                    causes.extend(crate::status_strategy::validate(def, &next));
                    if !causes.is_empty() {
                        return Err(ApiError::invalid(def, name, causes));
                    }
                }
                // Only namespaces serve it (the router refuses it for others).
                Some("finalize") => {
                    next = namespace::prepare_for_finalize(current, next)
                        .map_err(|causes| ApiError::invalid(def, name, causes))?;
                    let causes = defaults::validate(def, &next);
                    if !causes.is_empty() {
                        return Err(ApiError::invalid(def, name, causes));
                    }
                    crate::status_strategy::forbid_new_finalizers(def, name, current, &next)?;
                    keep_identity(current, &mut next);
                }
                _ => {
                    crd::normalize(def, &mut next);
                    let mut causes = defaults::validate(def, &next);
                    if crd::is_crd(def) {
                        causes.extend(crd::validate_definition_update(current, &next));
                    }
                    if !causes.is_empty() {
                        return Err(ApiError::invalid(def, name, causes));
                    }
                    if def == well_known::namespaces() {
                        namespace::keep_spec_finalizers(current, &mut next);
                    }
                    match current.get("status") {
                        Some(status) if def.has_subresource("status") => {
                            next["status"] = status.clone();
                        }
                        // A custom resource's main endpoint never writes status.
                        None if def.custom.is_some() && def.has_subresource("status") => {
                            if let Some(m) = next.as_object_mut() {
                                m.remove("status");
                            }
                        }
                        _ => {}
                    }
                    crate::status_strategy::forbid_new_finalizers(def, name, current, &next)?;
                    keep_identity(current, &mut next);
                }
            }
            Ok(next)
        })
    }

    /// Read-modify-write of one object: the closure changes the object and the store stamps
    /// the new resourceVersion (and generation on a spec change). An object that is
    /// terminating and has no finalizers left is removed. Writes of the same object are
    /// serialised; the closure runs outside the store's lock (it must not write through the
    /// store), except for a Namespace or a CustomResourceDefinition, whose closure runs under
    /// the store's lock and so must not call the store at all, not even to read.
    pub fn modify(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Arc<Value>> {
        self.modify_inner(def, ns, name, false, f)
    }

    /// [`Store::modify`]; with `dry_run`, the new state is computed and returned (with the
    /// current resourceVersion) but neither stored nor published.
    pub(crate) fn modify_inner(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        dry_run: bool,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Arc<Value>> {
        // The copy is needed: the stored object stays as it is for the change's
        // `previous`, the history and whoever holds it, and `f` may fail half-way.
        self.write_inner(def, ns, name, dry_run, |current| {
            let mut next = current.clone();
            f(&mut next)?;
            Ok(next)
        })
    }
}

/// 422 for an update whose `metadata.uid` is not the stored one, as
/// `ValidateObjectMetaUpdate` (`ValidateImmutableField`) refuses it after
/// `rest.BeforeUpdate` has given an empty uid the stored one: a replacement built from an
/// earlier object of the same name does not overwrite its successor.
fn check_uid(def: &ResourceRef, name: &str, current: &Value, next: &Value) -> Result<()> {
    match meta_str(next, "uid").filter(|u| !u.is_empty()) {
        Some(uid) if Some(uid) != meta_str(current, "uid") => Err(ApiError::invalid(
            def,
            name,
            vec![FieldError::invalid(
                "metadata.uid",
                uid,
                "field is immutable",
            )],
        )),
        _ => Ok(()),
    }
}

/// What every update keeps from the stored object (`rest.BeforeUpdate`).
fn keep_identity(current: &Value, next: &mut Value) {
    use crate::status_strategy::{KEPT_BY_EVERY_UPDATE, keep_stored};
    keep_stored(meta(current), meta_mut(next), &KEPT_BY_EVERY_UPDATE);
}
