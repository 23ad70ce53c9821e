//! The garbage collector: ownerReferences with background, foreground and orphan
//! propagation, as `pkg/controller/garbagecollector` does it.
//!
//! - An object whose owners are all absent is deleted (background). An owner counts as
//!   absent when no object of its kind has its name and uid in the dependent's namespace (or
//!   cluster-wide, for cluster-scoped owners): a reference to an owner in another namespace
//!   therefore reads as absent, as the real GC treats it. Dangling references next to a live
//!   owner are removed from the dependent instead.
//! - An owner with the `orphan` finalizer: its dependents lose their reference to it, then
//!   the finalizer goes.
//! - An owner with the `foregroundDeletion` finalizer: its dependents are deleted (with
//!   foreground propagation for those that own others in turn), and the finalizer goes once
//!   no dependent with `blockOwnerDeletion: true` is left.

use crate::json::Value;

use super::{Controllers, has_finalizer, owner_refs};
use crate::resources::{Propagation, ResourceRef};
use crate::store::{Change, ChangeType, DeleteOptions, meta_str};

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

impl Controllers {
    pub(super) fn garbage_collect(&mut self, c: &Change) {
        match c.kind {
            ChangeType::Deleted => {
                // Walked in place: nothing below changes the owner index (the deletes come
                // back as changes, applied to it in turn).
                let uid = meta_str(&c.object, "uid").unwrap_or_default();
                for (def, ns, name) in self.index.dependents_of(uid) {
                    self.attempt_to_delete(def, ns, name);
                }
                // A blocking dependent went: its owners in foreground deletion may go now.
                self.recheck_foreground_owners(c);
            }
            ChangeType::Added => {
                if owner_refs(&c.object).next().is_some() {
                    self.attempt_to_delete(&c.resource, &c.namespace, &c.name);
                }
            }
            ChangeType::Modified => {}
        }
        if c.kind != ChangeType::Deleted && meta_str(&c.object, "deletionTimestamp").is_some() {
            self.process_finalizers(&c.resource, &c.namespace, &c.name);
        }
    }

    /// The live owner a reference names, as seen from a dependent in `dependent_ns`.
    fn owner_of(&self, r: &Value, dependent_ns: &str) -> Option<std::sync::Arc<Value>> {
        let def = self
            .api
            .store
            .resources()
            .by_kind(r["apiVersion"].as_str()?, r["kind"].as_str()?)?;
        let name = r["name"].as_str()?;
        let uid = r["uid"].as_str()?;
        self.api
            .store
            .lookup(&def, dependent_ns, name)
            .filter(|o| meta_str(o, "uid") == Some(uid))
    }

    /// Deletes a dependent whose owners are all absent or being deleted in the foreground;
    /// drops references to absent owners when a live owner remains.
    fn attempt_to_delete(&self, def: &ResourceRef, ns: &str, name: &str) {
        let Some(obj) = self.api.store.lookup(def, ns, name) else {
            return;
        };
        if owner_refs(&obj).next().is_none() {
            return;
        }
        let mut absent = Vec::new();
        let mut solid = 0;
        let mut waiting = 0;
        for r in owner_refs(&obj) {
            match self.owner_of(r, ns) {
                None => absent.push(r["uid"].clone()),
                Some(o) if has_finalizer(&o, FOREGROUND) => waiting += 1,
                Some(o) if meta_str(&o, "deletionTimestamp").is_some() => waiting += 1,
                Some(_) => solid += 1,
            }
        }
        if solid > 0 {
            if !absent.is_empty() {
                let _ = self.api.store.modify(def, ns, name, |d| {
                    if let Some(list) = d
                        .get_mut("metadata")
                        .and_then(|m| m.get_mut("ownerReferences"))
                        .and_then(Value::as_array_mut)
                    {
                        list.retain(|r| !absent.contains(&r["uid"]));
                    }
                    Ok(())
                });
            }
            return;
        }
        if absent.is_empty() && waiting == 0 {
            return;
        }
        if meta_str(&obj, "deletionTimestamp").is_some() {
            return;
        }
        let uid = meta_str(&obj, "uid").map(str::to_owned);
        let has_dependents = self.index.has_dependents(uid.as_deref().unwrap_or(""));
        let propagation = if waiting > 0 && has_dependents {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        let opts = DeleteOptions {
            propagation: Some(propagation),
            uid,
            ..Default::default()
        };
        if let Err(e) = self.api.store.delete(def, ns, name, &opts) {
            tracing::debug!(%e, name, "garbage collector could not delete a dependent");
        }
    }

    fn process_finalizers(&self, def: &ResourceRef, ns: &str, name: &str) {
        let Some(obj) = self.api.store.lookup(def, ns, name) else {
            return;
        };
        let uid = meta_str(&obj, "uid").unwrap_or_default().to_owned();
        if has_finalizer(&obj, ORPHAN) {
            for (dd, dns, dname) in self.index.dependents_of(&uid) {
                let _ = self.api.store.modify(dd, dns, dname, |d| {
                    if let Some(refs) = d
                        .get_mut("metadata")
                        .and_then(|m| m.get_mut("ownerReferences"))
                        .and_then(Value::as_array_mut)
                    {
                        refs.retain(|r| r["uid"] != uid.as_str());
                        if refs.is_empty()
                            && let Some(m) = d["metadata"].as_object_mut()
                        {
                            m.remove("ownerReferences");
                        }
                    }
                    Ok(())
                });
            }
            self.remove_finalizer(def, ns, name, ORPHAN);
        } else if has_finalizer(&obj, FOREGROUND) {
            let mut blocking = 0;
            for (dd, dns, dname) in self.index.dependents_of(&uid) {
                let Some(d) = self.api.store.lookup(dd, dns, dname) else {
                    continue;
                };
                if owner_refs(&d)
                    .any(|r| r["uid"] == uid.as_str() && r["blockOwnerDeletion"] == true)
                {
                    blocking += 1;
                }
                self.attempt_to_delete(dd, dns, dname);
            }
            if blocking == 0 {
                self.remove_finalizer(def, ns, name, FOREGROUND);
            }
        }
    }

    /// After a dependent went, its owners waiting in foreground deletion are looked at again.
    fn recheck_foreground_owners(&self, c: &Change) {
        for r in owner_refs(&c.object) {
            if let Some(owner) = self.owner_of(r, &c.namespace)
                && has_finalizer(&owner, FOREGROUND)
                && let Some(def) = r["apiVersion"]
                    .as_str()
                    .zip(r["kind"].as_str())
                    .and_then(|(a, k)| self.api.store.resources().by_kind(a, k))
            {
                let name = meta_str(&owner, "name").unwrap_or_default().to_owned();
                let ns = meta_str(&owner, "namespace").unwrap_or_default().to_owned();
                self.process_finalizers(&def, &ns, &name);
            }
        }
    }

    pub(super) fn remove_finalizer(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        finalizer: &str,
    ) {
        let _ = self.api.store.modify(def, ns, name, |o| {
            if let Some(f) = o
                .get_mut("metadata")
                .and_then(|m| m.get_mut("finalizers"))
                .and_then(Value::as_array_mut)
            {
                f.retain(|x| x != finalizer);
                if f.is_empty()
                    && let Some(m) = o["metadata"].as_object_mut()
                {
                    m.remove("finalizers");
                }
            }
            Ok(())
        });
    }
}
