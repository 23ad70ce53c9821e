//! The members of a JSON object, shared between copies until one of them changes.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::sync::Arc;

use super::key::KeyStr;
use super::{Key, Value};

/// An object's members in key order, as `serde_json::Map` (without `preserve_order`), with
/// [`Key`]s for keys (they read as `str`). A clone shares the members; every method that
/// changes them first copies them when they are shared (that copy clones the members of
/// this one object: nested objects stay shared, keys are copied without allocating).
#[derive(Clone, Default)]
pub struct Map(Arc<BTreeMap<Key, Value>>);

/// A member of a [`Map`] looked up for [`Map::entry`].
pub type Entry<'a> = btree_map::Entry<'a, Key, Value>;

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map (the capacity is not kept: a B-tree allocates as it grows).
    pub fn with_capacity(_capacity: usize) -> Self {
        Self::default()
    }

    /// A map of these members.
    pub(super) fn from_members(members: BTreeMap<Key, Value>) -> Self {
        Map(Arc::new(members))
    }

    /// Whether no other map shares these members: then a change needs no copy, and a
    /// change that finds no member (`get_mut`, `remove` of a missing key) looks up once
    /// instead of checking for the key before copying.
    fn owns_members(&mut self) -> bool {
        Arc::get_mut(&mut self.0).is_some()
    }

    /// The members, for writing: copied first when shared with another map.
    fn members(&mut self) -> &mut BTreeMap<Key, Value> {
        Arc::make_mut(&mut self.0)
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        if Arc::get_mut(&mut self.0).is_some_and(|m| {
            m.clear();
            true
        }) {
            return;
        }
        self.0 = Arc::default();
    }

    /// The member `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(KeyStr::new(key))
    }

    /// The member `key` and its key.
    pub fn get_key_value(&self, key: &str) -> Option<(&Key, &Value)> {
        self.0.get_key_value(KeyStr::new(key))
    }

    /// Whether there is a member `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(KeyStr::new(key))
    }

    /// The member `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        if !self.owns_members() && !self.0.contains_key(KeyStr::new(key)) {
            return None;
        }
        self.members().get_mut(KeyStr::new(key))
    }

    /// Sets the member `key`; the value it had.
    pub fn insert(&mut self, key: Key, value: Value) -> Option<Value> {
        self.members().insert(key, value)
    }

    /// Removes the member `key`; its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.owns_members() && !self.0.contains_key(KeyStr::new(key)) {
            return None;
        }
        self.members().remove(KeyStr::new(key))
    }

    /// Removes the member `key`; its key and value.
    pub fn remove_entry(&mut self, key: &str) -> Option<(Key, Value)> {
        if !self.owns_members() && !self.0.contains_key(KeyStr::new(key)) {
            return None;
        }
        self.members().remove_entry(KeyStr::new(key))
    }

    /// Moves every member of `other` into this map.
    pub fn append(&mut self, other: &mut Map) {
        if other.is_empty() {
            return;
        }
        let mut taken = std::mem::take(other).into_members();
        self.members().append(&mut taken);
    }

    /// The member `key`, to read, insert or change in place.
    pub fn entry<S: Into<Key>>(&mut self, key: S) -> Entry<'_> {
        self.members().entry(key.into())
    }

    /// Keeps the members for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Key, &mut Value) -> bool) {
        self.members().retain(|k, v| keep(k, v));
    }

    /// The members in key order.
    pub fn iter(&self) -> btree_map::Iter<'_, Key, Value> {
        self.0.iter()
    }

    /// The members in key order, their values mutable.
    pub fn iter_mut(&mut self) -> btree_map::IterMut<'_, Key, Value> {
        self.members().iter_mut()
    }

    /// The keys in order.
    pub fn keys(&self) -> btree_map::Keys<'_, Key, Value> {
        self.0.keys()
    }

    /// The values in key order.
    pub fn values(&self) -> btree_map::Values<'_, Key, Value> {
        self.0.values()
    }

    /// The values in key order, mutable.
    pub fn values_mut(&mut self) -> btree_map::ValuesMut<'_, Key, Value> {
        self.members().values_mut()
    }

    /// The members, owned: taken when not shared, else copied.
    fn into_members(self) -> BTreeMap<Key, Value> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Whether two maps are the same members in memory (then they are equal).
    pub fn ptr_eq(&self, other: &Map) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        self.ptr_eq(other) || self.0 == other.0
    }
}

impl Eq for Map {}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;

    /// The member `key`; panics when there is none, as `serde_json::Map`.
    fn index(&self, key: &str) -> &Value {
        &self.0[KeyStr::new(key)]
    }
}

impl std::ops::IndexMut<&str> for Map {
    /// The member `key`, mutable; panics when there is none, as `serde_json::Map`.
    #[allow(clippy::expect_used)]
    fn index_mut(&mut self, key: &str) -> &mut Value {
        self.get_mut(key).expect("no entry found for key")
    }
}

impl<K: Into<Key>> FromIterator<(K, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        Map(Arc::new(
            iter.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        ))
    }
}

impl From<BTreeMap<Key, Value>> for Map {
    /// A map of these members (no copy of them).
    fn from(members: BTreeMap<Key, Value>) -> Self {
        Map(Arc::new(members))
    }
}

impl<K: Into<Key>> Extend<(K, Value)> for Map {
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, iter: I) {
        self.members()
            .extend(iter.into_iter().map(|(k, v)| (k.into(), v)));
    }
}

impl IntoIterator for Map {
    type Item = (Key, Value);
    type IntoIter = btree_map::IntoIter<Key, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_members().into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a Key, &'a Value);
    type IntoIter = btree_map::Iter<'a, Key, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map {
    type Item = (&'a Key, &'a mut Value);
    type IntoIter = btree_map::IterMut<'a, Key, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}
