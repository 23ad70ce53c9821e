//! The stored objects of one resource, by namespace and then name: looked up with borrowed
//! names (no key `String`s made per lookup), listed in (namespace, name) order.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// The objects of one resource; cluster-scoped objects are kept under the namespace "".
#[derive(Default)]
pub(super) struct Objects(BTreeMap<String, BTreeMap<String, Arc<Value>>>);

impl Objects {
    /// The object `name` in `ns`.
    pub(super) fn get(&self, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.0.get(ns).and_then(|m| m.get(name))
    }

    /// Whether `ns` holds an object `name`.
    pub(super) fn contains(&self, ns: &str, name: &str) -> bool {
        self.get(ns, name).is_some()
    }

    /// Stores `obj` as `name` in `ns`.
    pub(super) fn insert(&mut self, ns: &str, name: &str, obj: Arc<Value>) {
        let names = match self.0.get_mut(ns) {
            Some(m) => m,
            None => self.0.entry(ns.to_owned()).or_default(),
        };
        match names.get_mut(name) {
            Some(slot) => *slot = obj,
            None => {
                names.insert(name.to_owned(), obj);
            }
        }
    }

    /// Removes `name` from `ns` (and `ns` when it is left empty).
    pub(super) fn remove(&mut self, ns: &str, name: &str) -> Option<Arc<Value>> {
        let names = self.0.get_mut(ns)?;
        let obj = names.remove(name);
        if names.is_empty() {
            self.0.remove(ns);
        }
        obj
    }

    /// Whether `ns` holds any object.
    pub(super) fn has_namespace(&self, ns: &str) -> bool {
        self.0.get(ns).is_some_and(|m| !m.is_empty())
    }

    /// The objects of `ns`, by name.
    pub(super) fn in_namespace(&self, ns: &str) -> impl Iterator<Item = &Arc<Value>> {
        self.0.get(ns).into_iter().flat_map(BTreeMap::values)
    }

    /// Every object, by namespace and name.
    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<Value>> {
        self.0.values().flat_map(BTreeMap::values)
    }

    /// Number of objects.
    pub(super) fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }
}
