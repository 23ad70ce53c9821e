//! Deletion in the store: preconditions, finalizers added by the propagation policy,
//! deletionTimestamp, and the graceful deletion of pods bound to a node.

use std::sync::Arc;

use crate::json::{Value, json};

use super::{Result, Store, finalizers, meta_mut, meta_str};
use crate::resources::{Propagation, ResourceRef, well_known};
use crate::selector::at;
use crate::status::ApiError;

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Explicit propagation policy; `None` uses the resource's default.
    pub propagation: Option<Propagation>,
    /// Precondition on the uid.
    pub uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub resource_version: Option<String>,
    /// Grace period in seconds, for pods.
    pub grace_period_seconds: Option<i64>,
    /// Check everything and answer as the delete would, without deleting (`dryRun=All`).
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone; its last state at the deletion's resourceVersion (for an
    /// immediate delete, the object as it was stored, without a deletionTimestamp), as the
    /// real server answers; for an immediate delete of a resource whose delete answers a
    /// `Status`, the stored object as it is (only its uid is read). A dry run answers the
    /// stored object at its own version.
    Gone(Arc<Value>),
    /// The object is terminating (finalizers or a graceful pod delete); its new state.
    Terminating(Arc<Value>),
}

impl Store {
    /// Deletes an object, honouring preconditions, finalizers, propagation and pod grace.
    pub fn delete(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted> {
        if def == well_known::namespaces() {
            let ns = self.delete_namespace(name, opts)?;
            let gone = self.lookup(def, "", name).is_none() && !opts.dry_run;
            return Ok(if gone {
                Deleted::Gone(ns)
            } else {
                Deleted::Terminating(ns)
            });
        }
        let propagation = opts.propagation.unwrap_or(def.default_propagation);
        let is_pod = def == well_known::pods();
        let now = self.clock.now_rfc3339_seconds();
        let mut gone = false;
        // The closure reads the stored object and changes only the metadata of the new one,
        // or answers that it goes as it is.
        let obj = self.write_or_remove(def, ns, name, opts.dry_run, true, |obj| {
            if let Some(uid) = &opts.uid
                && meta_str(obj, "uid") != Some(uid.as_str()) {
                    return Err(ApiError::conflict(
                        def,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta_str(obj, "uid").unwrap_or_default()
                        ),
                    ));
                }
            if let Some(rv) = &opts.resource_version
                && meta_str(obj, "resourceVersion") != Some(rv.as_str()) {
                    return Err(ApiError::conflict(
                        def,
                        name,
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            meta_str(obj, "resourceVersion").unwrap_or_default()
                        ),
                    ));
                }
            let mut fins = finalizers(obj);
            let add = match propagation {
                Propagation::Orphan => Some("orphan"),
                Propagation::Foreground => Some("foregroundDeletion"),
                Propagation::Background => None,
            };
            if let Some(f) = add
                && !fins.iter().any(|x| x == f) {
                    fins.push(f.to_owned());
                }
            // A definition stays until its objects are gone (see `crate::crd`).
            if crate::crd::is_crd(def) && !fins.iter().any(|x| x == crate::crd::CLEANUP_FINALIZER) {
                fins.push(crate::crd::CLEANUP_FINALIZER.to_owned());
            }
            let bound = at(obj, "/spec/nodeName").and_then(Value::as_str).is_some();
            let grace = if is_pod && bound {
                let default = at(obj, "/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30);
                let requested = opts.grace_period_seconds.unwrap_or(default).max(0);
                // A second delete can only shorten the grace period.
                match at(obj, "/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                {
                    Some(current) => current.min(requested),
                    None => requested,
                }
            } else {
                0
            };
            gone = fins.is_empty() && grace == 0;
            // Only a pod is deleted gracefully: the real server writes its deletionTimestamp
            // (and a zero grace period) before it removes it. Any other object that nothing
            // holds goes as it is stored, without a write first, so its DELETED event shows
            // no deletionTimestamp.
            if gone && !is_pod {
                return Ok(None);
            }
            let mut next = obj.clone();
            let m = meta_mut(&mut next);
            if !fins.is_empty() {
                m.insert("finalizers".into(), json!(fins));
            }
            if !m.contains_key("deletionTimestamp") {
                // The first marking of an object that stays (finalizers, a grace period) is
                // a new generation, as the real server's `markAsDeleting` and
                // `rest.BeforeDelete` count it (for objects that have a generation).
                if !gone
                    && let Some(g) = m
                        .get("generation")
                        .and_then(Value::as_i64)
                        .filter(|&g| g > 0)
                {
                    m.insert("generation".into(), json!(g + 1));
                }
                m.insert("deletionTimestamp".into(), json!(now));
            }
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            Ok(Some(next))
        })?;
        if gone {
            Ok(Deleted::Gone(obj))
        } else {
            Ok(Deleted::Terminating(obj))
        }
    }
}
