//! The stored objects of one resource, by namespace and then name: looked up with borrowed
//! names (no key `String`s made per lookup), listed in (namespace, name) order; and, for
//! the few label keys that watches started from, the objects by their value of the label.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::json::Value;

use crate::selector::label;

/// How many label keys of one resource are indexed at most; a watch with a label of
/// another key starts from a scan of the objects, as every watch did before the index.
const MAX_INDEXED_KEYS: usize = 8;

/// The names of the objects with each value of one label, by namespace.
type ByValue = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// The objects of one resource; cluster-scoped objects are kept under the namespace "".
#[derive(Default)]
pub(super) struct Objects {
    by_name: BTreeMap<String, BTreeMap<String, Arc<Value>>>,
    /// For each indexed label key: the names of the objects by their value of the label
    /// (a label that is not a string has no value, as selectors read it) and namespace.
    by_label: BTreeMap<String, ByValue>,
}

impl Objects {
    /// The object `name` in `ns`.
    pub(super) fn get(&self, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.by_name.get(ns).and_then(|m| m.get(name))
    }

    /// Whether `ns` holds an object `name`.
    pub(super) fn contains(&self, ns: &str, name: &str) -> bool {
        self.get(ns, name).is_some()
    }

    /// Stores `obj` as `name` in `ns`.
    pub(super) fn insert(&mut self, ns: &str, name: &str, obj: Arc<Value>) {
        let names = match self.by_name.get_mut(ns) {
            Some(m) => m,
            None => self.by_name.entry(ns.to_owned()).or_default(),
        };
        let old = match names.get_mut(name) {
            Some(slot) => Some(std::mem::replace(slot, obj.clone())),
            None => {
                names.insert(name.to_owned(), obj.clone());
                None
            }
        };
        for (key, by_value) in &mut self.by_label {
            let before = old.as_deref().and_then(|o| label(o, key));
            let after = label(&obj, key);
            if before != after {
                unindex(by_value, before, ns, name);
                index(by_value, after, ns, name);
            }
        }
    }

    /// Removes `name` from `ns` (and `ns` when it is left empty).
    pub(super) fn remove(&mut self, ns: &str, name: &str) -> Option<Arc<Value>> {
        let names = self.by_name.get_mut(ns)?;
        let obj = names.remove(name);
        if names.is_empty() {
            self.by_name.remove(ns);
        }
        if let Some(o) = &obj {
            for (key, by_value) in &mut self.by_label {
                unindex(by_value, label(o, key), ns, name);
            }
        }
        obj
    }

    /// Whether `ns` holds any object.
    pub(super) fn has_namespace(&self, ns: &str) -> bool {
        self.by_name.get(ns).is_some_and(|m| !m.is_empty())
    }

    /// The objects of `ns`, by name.
    pub(super) fn in_namespace(&self, ns: &str) -> impl Iterator<Item = &Arc<Value>> {
        self.by_name.get(ns).into_iter().flat_map(BTreeMap::values)
    }

    /// Every object, by namespace and name.
    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<Value>> {
        self.by_name.values().flat_map(BTreeMap::values)
    }

    /// The objects of `ns` (of every namespace for `None`) whose label `key` has one of
    /// `values`, in (namespace, name) order: what filtering [`Objects::in_namespace`] or
    /// [`Objects::values`] on the label gives, from the label's index (made now if the
    /// key has none yet). `None` when the resource has [`MAX_INDEXED_KEYS`] other keys
    /// indexed: the caller then filters every object.
    pub(super) fn with_label(
        &mut self,
        ns: Option<&str>,
        key: &str,
        values: &[String],
    ) -> Option<Vec<Arc<Value>>> {
        if !self.by_label.contains_key(key) {
            if self.by_label.len() >= MAX_INDEXED_KEYS {
                return None;
            }
            let mut by_value = BTreeMap::new();
            for (ns, names) in &self.by_name {
                for (name, obj) in names {
                    index(&mut by_value, label(obj, key), ns, name);
                }
            }
            self.by_label.insert(key.to_owned(), by_value);
        }
        let by_value = self.by_label.get(key)?;
        let mut found: Vec<(&str, &str)> = Vec::new();
        for v in values {
            let Some(at) = by_value.get(v) else { continue };
            match ns {
                Some(ns) => found.extend(at.get_key_value(ns).into_iter().flat_map(pairs)),
                None => found.extend(at.iter().flat_map(pairs)),
            }
        }
        found.sort_unstable();
        found.dedup();
        Some(
            found
                .into_iter()
                .filter_map(|(ns, name)| self.get(ns, name).cloned())
                .collect(),
        )
    }

    /// Number of objects.
    pub(super) fn len(&self) -> usize {
        self.by_name.values().map(BTreeMap::len).sum()
    }
}

/// The (namespace, name) pairs of one namespace's names.
fn pairs<'a>(
    (ns, names): (&'a String, &'a BTreeSet<String>),
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    names.iter().map(move |n| (ns.as_str(), n.as_str()))
}

/// Lists (`ns`, `name`) under its value of an indexed label, if it has one.
fn index(by_value: &mut ByValue, value: Option<&str>, ns: &str, name: &str) {
    if let Some(v) = value {
        by_value
            .entry(v.to_owned())
            .or_default()
            .entry(ns.to_owned())
            .or_default()
            .insert(name.to_owned());
    }
}

/// Unlists (`ns`, `name`) from its value of an indexed label, if it had one (and the
/// value and namespace left empty).
fn unindex(by_value: &mut ByValue, value: Option<&str>, ns: &str, name: &str) {
    let Some(v) = value else { return };
    let Some(at) = by_value.get_mut(v) else {
        return;
    };
    if let Some(names) = at.get_mut(ns) {
        names.remove(name);
        if names.is_empty() {
            at.remove(ns);
        }
    }
    if at.is_empty() {
        by_value.remove(v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::json::json;
    use rand::{Rng, SeedableRng};

    /// What `with_label` stands for: every object of `ns` (or all) filtered on the label.
    fn scanned(o: &Objects, ns: Option<&str>, key: &str, values: &[String]) -> Vec<Arc<Value>> {
        let all: Vec<&Arc<Value>> = match ns {
            Some(ns) => o.in_namespace(ns).collect(),
            None => o.values().collect(),
        };
        all.into_iter()
            .filter(|obj| label(obj, key).is_some_and(|v| values.iter().any(|w| w == v)))
            .cloned()
            .collect()
    }

    #[test]
    fn label_index_lists_what_a_scan_finds_in_the_same_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut o = Objects::default();
        let keys = ["app", "tier", "x", "y"];
        let values = |rng: &mut rand::rngs::StdRng| -> Vec<String> {
            (0..rng.random_range(1..4))
                .map(|_| format!("v{}", rng.random_range(0..4)))
                .collect()
        };
        let mut compared = 0;
        for step in 0..3000 {
            let ns = ["", "a", "b"][rng.random_range(0..3)];
            let name = format!("n{}", rng.random_range(0..30));
            match rng.random_range(0..10) {
                0..=5 => {
                    let mut labels = crate::json::Map::new();
                    for k in keys {
                        match rng.random_range(0..5) {
                            0 => {}
                            1 => {
                                labels.insert(k.into(), json!(7));
                            }
                            v => {
                                labels.insert(k.into(), json!(format!("v{}", v - 1)));
                            }
                        }
                    }
                    let obj = json!({"metadata": {"name": name, "labels": labels, "n": step}});
                    o.insert(ns, &name, Arc::new(obj));
                }
                6 | 7 => {
                    o.remove(ns, &name);
                }
                _ => {
                    let key = keys[rng.random_range(0..keys.len())];
                    let vs = values(&mut rng);
                    let within = [None, Some("a"), Some(""), Some("c")][rng.random_range(0..4)];
                    let got = o.with_label(within, key, &vs).unwrap();
                    let want = scanned(&o, within, key, &vs);
                    assert_eq!(got.len(), want.len(), "{key} {vs:?} {within:?}");
                    assert!(got.iter().zip(&want).all(|(a, b)| Arc::ptr_eq(a, b)));
                    compared += got.len();
                }
            }
        }
        assert!(compared > 1000, "{compared}");
        // Past the cap of indexed keys, the caller scans.
        for k in 0..MAX_INDEXED_KEYS {
            let _ = o.with_label(None, &format!("k{k}"), &[]);
        }
        assert!(o.with_label(None, "another", &["v".into()]).is_none());
        assert!(o.with_label(None, "app", &["v1".into()]).is_some());
    }
}
