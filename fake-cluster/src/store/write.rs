//! The write path of [`Store::modify`] and [`Store::update`]: the new object is made from
//! the stored one outside the store's lock, under a lock of its own object, and committed
//! (resourceVersion, storage, publication) under the store's lock.
//!
//! Making the new object (a deep copy of the stored one, the caller's change, the checks
//! and the no-op comparison) is most of a write's work; done under the store's lock, it
//! made every other request and controller wait. Equivalence: every write of an existing
//! object goes through [`Store::write_inner`] holding its object's writer lock, from the
//! read of the stored object to the commit, so the object cannot change in between, and the
//! resourceVersion is still drawn and the change still published under the store's lock, in
//! the same order. Namespaces (which the store also removes itself when their last object
//! goes) and CustomResourceDefinitions (checked against each other) are written wholly under
//! the store's lock, as before.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::json::{Value, json};

use super::{
    Change, ChangeType, Inner, Result, Store, finalizers, key, meta, meta_mut, meta_str, namespace,
};
use crate::crd;
use crate::resources::{ResourceRef, well_known};
use crate::status::ApiError;

/// What kind of write [`Store::write_or_remove`] makes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Write {
    /// The new object is made from the stored one changing only its `status` and
    /// `metadata` (a status subresource write, a delete's marking).
    pub(super) spec_kept: bool,
    /// A delete's marking: when nothing holds the object after it, it is written and then
    /// removed (the real registry's graceful deletion of a pod with a zero grace period),
    /// instead of being removed unwritten as after an update.
    pub(super) marking: bool,
}

/// How many locks the writers of objects are spread over.
const WRITER_LOCKS: usize = 64;

/// Locks that writers of the same object take in turn; objects are spread over them by a
/// hash of their resource, namespace and name (two objects may share one).
pub(super) struct Writers([Mutex<()>; WRITER_LOCKS]);

impl Default for Writers {
    fn default() -> Self {
        Self(std::array::from_fn(|_| Mutex::new(())))
    }
}

impl Writers {
    /// Waits for the other writers of this object.
    fn lock(&self, resource: &str, ns: &str, name: &str) -> MutexGuard<'_, ()> {
        // FNV-1a, each part ended by a byte no UTF-8 text has.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [resource, ns, name] {
            for b in part.bytes().chain(std::iter::once(0xff)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        let i = usize::try_from(h % WRITER_LOCKS as u64).unwrap_or_default();
        self.0[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a write makes of the stored object.
enum Next {
    /// The same object: nothing is written.
    Same,
    /// The new object (without its resourceVersion), and whether it is to be removed
    /// (terminating, with nothing left that holds it).
    Write(Value, bool),
    /// The stored object is removed as it is: an immediate delete of an object that
    /// nothing holds, which (as on the real server) writes no deletionTimestamp first.
    Remove,
    /// A delete's marking of an object that nothing holds after it (a pod deleted with a
    /// zero grace period): written, then removed, as two changes.
    WriteThenRemove(Value),
}

impl Store {
    /// [`Store::modify`] of the status alone: `f` sees the stored object and changes the
    /// new object's `status` (made `null` first when the object has none), and nothing
    /// else of it can change (the store still stamps the resourceVersion and removes an
    /// object left terminating without finalizers, as for any write).
    pub fn modify_status(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        f: impl FnOnce(&Value, &mut Value) -> Result<()>,
    ) -> Result<Arc<Value>> {
        self.write_scoped(def, ns, name, false, true, |current| {
            let mut next = current.clone();
            match next.as_object_mut() {
                Some(m) => f(current, m.entry("status").or_insert(Value::Null))?,
                None => return Err(ApiError::bad_request("the stored object is not an object")),
            }
            Ok(next)
        })
    }

    /// [`Store::modify`] as the real `pods/binding` subresource writes: a storage-level
    /// read-modify-write that runs no update strategy, so a change of `spec` (the
    /// `nodeName` it sets) is no new generation (`BindingREST.setPodNodeAndMetadata`
    /// updates the stored pod with `GuaranteedUpdate`, never through `PrepareForUpdate`).
    pub fn modify_as_binding(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Arc<Value>> {
        // `spec_kept` skips the generation's comparison of the specs, its only effect.
        self.write_scoped(def, ns, name, false, true, |current| {
            let mut next = current.clone();
            f(&mut next)?;
            Ok(next)
        })
    }

    /// The write under [`Store::modify_inner`] and [`Store::update_with`]: `next_of` makes
    /// the new object from the stored one, and the store stamps and stores it.
    pub(super) fn write_inner(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        dry_run: bool,
        next_of: impl FnOnce(&Value) -> Result<Value>,
    ) -> Result<Arc<Value>> {
        self.write_scoped(def, ns, name, dry_run, false, next_of)
    }

    /// [`Store::write_inner`]; `spec_kept` when `next_of` makes the new object from the
    /// stored one changing only its `status` and `metadata` (a status subresource write, a
    /// delete's marking), or when the write must not move a built-in resource's
    /// generation ([`Store::modify_as_binding`]).
    pub(super) fn write_scoped(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        dry_run: bool,
        spec_kept: bool,
        next_of: impl FnOnce(&Value) -> Result<Value>,
    ) -> Result<Arc<Value>> {
        let write = Write {
            spec_kept,
            marking: false,
        };
        self.write_or_remove(def, ns, name, dry_run, write, |current| {
            next_of(current).map(Some)
        })
    }

    /// [`Store::write_scoped`], where `next_of` may instead answer `None`: the stored object
    /// is removed as it is (an immediate delete, which writes nothing before it removes),
    /// and returned at the deletion's resourceVersion (a dry run returns it as stored).
    pub(super) fn write_or_remove(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        dry_run: bool,
        write: Write,
        next_of: impl FnOnce(&Value) -> Result<Option<Value>>,
    ) -> Result<Arc<Value>> {
        let ns = if def.namespaced { ns } else { "" };
        if def == well_known::namespaces() || crd::is_crd(def) {
            let inner = self.lock();
            let current = Self::stored(&inner, def, ns, name)?;
            let next = self.next_or_removal(def, &current, next_of, write, Some(&inner))?;
            return Ok(match Self::to_commit(next, &current, dry_run) {
                ControlFlow::Break(answer) => answer,
                ControlFlow::Continue(next) => {
                    self.commit_next(inner, def, ns, name, current, next)
                }
            });
        }
        let _writer = self.writers.lock(def.storage_key(), ns, name);
        let current = Self::stored(&self.lock(), def, ns, name)?;
        let next = self.next_or_removal(def, &current, next_of, write, None)?;
        let next = match Self::to_commit(next, &current, dry_run) {
            ControlFlow::Break(answer) => return Ok(answer),
            ControlFlow::Continue(next) => next,
        };
        let inner = self.lock();
        // Never otherwise: only a writer holding this object's lock replaces or removes it.
        if !Self::stored(&inner, def, ns, name).is_ok_and(|o| Arc::ptr_eq(&o, &current)) {
            return Err(ApiError::stale(def, name));
        }
        Ok(self.commit_next(inner, def, ns, name, current, next))
    }

    /// What a write answers when it stores nothing (nothing changed, or a dry run: the
    /// object as it would be), or the write to commit.
    fn to_commit(next: Next, current: &Arc<Value>, dry_run: bool) -> ControlFlow<Arc<Value>, Next> {
        match next {
            Next::Same => ControlFlow::Break(current.clone()),
            Next::Remove if dry_run => ControlFlow::Break(current.clone()),
            Next::Write(next, _) | Next::WriteThenRemove(next) if dry_run => {
                ControlFlow::Break(Arc::new(next))
            }
            next => ControlFlow::Continue(next),
        }
    }

    /// Commits a write or a removal (see [`Store::to_commit`] for the rest).
    fn commit_next(
        &self,
        inner: MutexGuard<'_, Inner>,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        current: Arc<Value>,
        next: Next,
    ) -> Arc<Value> {
        match next {
            Next::Write(next, gone) => self.commit(inner, def, ns, name, current, next, gone),
            Next::Remove => self.commit_removal(inner, def, ns, name, current),
            Next::WriteThenRemove(next) => {
                let mut inner = inner;
                let written = self.store_write(&mut inner, def, ns, name, current, next);
                self.commit_removal(inner, def, ns, name, written)
            }
            Next::Same => current,
        }
    }

    /// [`Store::next_state`] of what `next_of` makes of the stored object, or
    /// [`Next::Remove`] when it answers `None`; a delete's marking that leaves nothing
    /// holding the object is [`Next::WriteThenRemove`].
    fn next_or_removal(
        &self,
        def: &ResourceRef,
        current: &Value,
        next_of: impl FnOnce(&Value) -> Result<Option<Value>>,
        write: Write,
        inner: Option<&Inner>,
    ) -> Result<Next> {
        match next_of(current)? {
            None => Ok(Next::Remove),
            Some(next) => match self.next_state(def, current, next, write.spec_kept, inner)? {
                Next::Write(next, true) if write.marking => Ok(Next::WriteThenRemove(next)),
                next => Ok(next),
            },
        }
    }

    /// The stored object, or 404.
    fn stored(inner: &Inner, def: &ResourceRef, ns: &str, name: &str) -> Result<Arc<Value>> {
        inner
            .objects
            .get(key(def))
            .and_then(|m| m.get(ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))
    }

    /// `next`, the new state of `current`, with the fields the store keeps or stamps (all
    /// but the resourceVersion); `inner` is the locked store for a definition.
    fn next_state(
        &self,
        def: &ResourceRef,
        current: &Value,
        mut next: Value,
        spec_kept: bool,
        inner: Option<&Inner>,
    ) -> Result<Next> {
        if let Some(inner) = inner
            && crd::is_crd(def)
        {
            crd::prepare(
                def,
                &mut next,
                &self.clock.now_rfc3339_seconds(),
                &Self::definitions(inner, def),
            );
        }
        // Each field is written only where it differs (the same result, without a fresh
        // String per field and write).
        let api_version = def.storage_api_version();
        if next.get("apiVersion").and_then(Value::as_str) != Some(api_version.as_ref()) {
            next["apiVersion"] = json!(api_version);
        }
        if next.get("kind").and_then(Value::as_str) != Some(def.kind.as_str()) {
            next["kind"] = json!(def.kind);
        }
        {
            let cur_meta = meta(current);
            let m = meta_mut(&mut next);
            // resourceVersion too, so that a write changing nothing compares equal.
            for k in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "resourceVersion",
            ] {
                match cur_meta.and_then(|c| c.get(k)) {
                    Some(v) if m.get(k) == Some(v) => {}
                    Some(v) => {
                        m.insert(k.into(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
        }
        if same_object(&next, current) {
            // No-op writes do not bump the resourceVersion, as on the real server.
            return Ok(Next::Same);
        }
        // A built-in resource's generation counts changes of `spec` alone; a write of the
        // status or the metadata alone made the new object from the stored one and kept its
        // `spec` (nothing above touches it), so the comparison of the two specs, a walk of
        // both, would be false. Custom resources and definitions compare more than `spec`
        // (and their status writes are normalised against the schema): compared as before.
        let builtin_spec_kept = spec_kept && def.custom.is_none() && !crd::is_crd(def);
        if def.has_generation && !builtin_spec_kept && crd::generation_changes(def, current, &next)
        {
            let generation = meta(current)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            meta_mut(&mut next).insert("generation".into(), json!(generation + 1));
        }
        let gone = meta_str(&next, "deletionTimestamp").is_some()
            && finalizers(&next).is_empty()
            && !Self::awaits_kubelet(def, &next)
            && !namespace::held_by_spec_finalizers(def, &next);
        Ok(Next::Write(next, gone))
    }

    /// Stores the new state of an object under the store's lock, with the next
    /// resourceVersion, and publishes the change; or, when `gone` (the write leaves a
    /// terminating object with nothing that holds it), removes the stored object instead.
    ///
    /// The removal is the real registry's: `Store.Update` sees that the update leaves no
    /// finalizers on an object with a deletionTimestamp (`ShouldDeleteDuringUpdate`), does
    /// not write it, and deletes the stored object as it is (`deleteWithoutFinalizers`).
    /// The DELETED event therefore carries the stored state (still holding the finalizers
    /// the update removed) at the deletion's resourceVersion, and the update answers the
    /// object it would have written, at the resourceVersion it was read at ("clients are
    /// expecting an updated object if a PUT succeeded", the real code says).
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        current: Arc<Value>,
        next: Value,
        gone: bool,
    ) -> Arc<Value> {
        if gone {
            let rv = Self::next_rv(&mut inner);
            self.publish_removal(&mut inner, def, ns, name, current.clone(), current, rv);
            return Arc::new(next);
        }
        self.store_write(&mut inner, def, ns, name, current, next)
    }

    /// Stores `next`, the new state of `current`, with the next resourceVersion, and
    /// publishes the change.
    pub(super) fn store_write(
        &self,
        inner: &mut Inner,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        current: Arc<Value>,
        mut next: Value,
    ) -> Arc<Value> {
        let rv = Self::next_rv(inner);
        super::set_resource_version(&mut next, rv.to_string());
        let next = Arc::new(next);
        inner
            .objects
            .entry(def.storage_key().clone())
            .or_default()
            .insert(ns, name, next.clone());
        self.publish(
            inner,
            Change {
                kind: ChangeType::Modified,
                resource: def.clone(),
                namespace: ns.to_owned(),
                name: name.to_owned(),
                object: next.clone(),
                previous: Some(current),
                rv,
            },
        );
        next
    }

    /// Removes `name` from the stored objects and publishes its deletion at `rv` with
    /// `object` (its last state) and `previous` (what was stored).
    #[allow(clippy::too_many_arguments)]
    fn publish_removal(
        &self,
        inner: &mut Inner,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        object: Arc<Value>,
        previous: Arc<Value>,
        rv: u64,
    ) {
        if let Some(m) = inner.objects.get_mut(key(def)) {
            m.remove(ns, name);
        }
        self.publish(
            inner,
            Change {
                kind: ChangeType::Deleted,
                resource: def.clone(),
                namespace: ns.to_owned(),
                name: name.to_owned(),
                object,
                previous: Some(previous),
                rv,
            },
        );
        if def.namespaced {
            self.finalize_namespace_if_empty(inner, ns);
        }
    }

    /// Removes the stored object `current` as it is under the store's lock, and publishes
    /// its deletion with the next resourceVersion. The change's object is `current` itself,
    /// not a copy: its `metadata.resourceVersion` is that of its last write, and the
    /// deletion's is the change's `rv` (which watches write into the DELETED event, as the
    /// real server's watch sends the last state with the deletion's revision).
    ///
    /// For a resource whose delete answers the object (pods, ServiceAccounts, custom
    /// resources), the answer is the removed object at the deletion's resourceVersion: the real
    /// server's storage decodes the removed object at the delete's revision (since 1.26,
    /// kubernetes#113369). The copy shares every member but the top level and the
    /// metadata. Any other delete answers a `Status` that reads only the uid: `current`
    /// itself is returned, without the copy (~10 k instructions a run for the three).
    fn commit_removal(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        current: Arc<Value>,
    ) -> Arc<Value> {
        let rv = Self::next_rv(&mut inner);
        self.publish_removal(
            &mut inner,
            def,
            ns,
            name,
            current.clone(),
            current.clone(),
            rv,
        );
        drop(inner);
        if !def.delete_returns_object {
            return current;
        }
        let mut answer = (*current).clone();
        super::set_resource_version(&mut answer, rv.to_string());
        Arc::new(answer)
    }
}

/// `a == b`, comparing `status` and then `metadata` first: what a write changes is
/// nearly always there, so a real change is found before the (equal) spec is walked.
fn same_object(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && ["status", "metadata"].iter().all(|k| a.get(k) == b.get(k))
                && a.iter().all(|(k, v)| {
                    matches!(k.as_str(), "status" | "metadata") || b.get(k) == Some(v)
                })
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
