//! Comparing two versions of an object: one walk of both together, building its results
//! level by level (each node fills its children's subtrees and says whether it is itself a
//! member), so no path is built or copied per field.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::json::{Key, Map, Value};

use super::{granular_list, is_empty_container, item_element};
use crate::fieldpath::{FieldSet, PathElement};
use crate::type_schema::{ListType, Shape};

/// What changed from one version of an object to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Fields only the new version has (a new object or list item counts itself too).
    pub added: FieldSet,
    /// Fields whose value changed.
    pub modified: FieldSet,
    /// Fields only the old version has.
    pub removed: FieldSet,
}

impl Comparison {
    /// Fields added or modified.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }

    /// Whether nothing changed.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// The comparison with `f` applied to each set.
    pub fn map(&self, f: impl Fn(&FieldSet) -> FieldSet) -> Comparison {
        Comparison {
            added: f(&self.added),
            modified: f(&self.modified),
            removed: f(&self.removed),
        }
    }
}

/// What changed from one version of an object to the next, as the field manager uses it:
/// [`Comparison::changed`] and [`Comparison::removed`], built in one walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Fields added or modified.
    pub changed: FieldSet,
    /// Fields only the old version has.
    pub removed: FieldSet,
}

/// Compares two versions (`None` for an absent object).
pub fn compare(old: Option<&Value>, new: Option<&Value>, shape: Shape<'_>) -> Comparison {
    let mut sets = Sets::default();
    Walker { modified: MODIFIED }.node(old, new, shape, &mut sets);
    let [added, modified, removed] = sets.0;
    Comparison {
        added,
        modified,
        removed,
    }
}

/// Compares two versions (`None` for an absent object): what [`compare`] gives, with the
/// added and modified fields in one set.
pub fn changes(old: Option<&Value>, new: Option<&Value>, shape: Shape<'_>) -> Changes {
    let mut sets = Sets::default();
    Walker { modified: ADDED }.node(old, new, shape, &mut sets);
    let [changed, _, removed] = sets.0;
    Changes { changed, removed }
}

/// [`Changes::changed`] of `old` to `new` in its FieldsV1 form (as
/// [`FieldSet::to_fields_v1`] writes it), built straight from the walk with no set in
/// between; `None` when a changed list item is keyed by a number that is not an integer
/// (such keys may be equal as set elements but not as text, so only the set gives the
/// exact form).
pub fn changed_fields_v1(
    old: Option<&Value>,
    new: Option<&Value>,
    shape: Shape<'_>,
) -> Option<Map> {
    let mut out = FieldsV1::default();
    Walker { modified: ADDED }.node(old, new, shape, &mut out);
    out.exact.then(|| Map::from(out.map))
}

/// Slots of the result sets.
const ADDED: usize = 0;
const MODIFIED: usize = 1;
const REMOVED: usize = 2;

/// A child of a node, as the walk names it.
#[derive(Clone, Copy)]
enum Elem<'a> {
    /// A field of an object.
    Field(&'a str),
    /// An item of a granular list.
    Item(&'a PathElement),
}

impl Elem<'_> {
    fn to_path_element(self) -> PathElement {
        match self {
            Elem::Field(name) => PathElement::Field(name.to_owned()),
            Elem::Item(pe) => pe.clone(),
        }
    }
}

/// What one level of a walk's result is.
trait Level: Default {
    /// Whether the level holds nothing (the walk then adds nothing for it).
    fn is_empty(&self) -> bool;
    /// Adds child `pe` with the results below it, `sub`, and as a member of slot `itself`.
    fn add(&mut self, pe: Elem<'_>, sub: Self, itself: Option<usize>);
}

/// The added, modified and removed sets (modified may be merged into added).
#[derive(Default)]
struct Sets([FieldSet; 3]);

impl Level for Sets {
    fn is_empty(&self) -> bool {
        self.0.iter().all(FieldSet::is_empty)
    }

    fn add(&mut self, pe: Elem<'_>, sub: Self, itself: Option<usize>) {
        let pe = pe.to_path_element();
        for (set, s) in self.0.iter_mut().zip(sub.0) {
            if !s.is_empty() {
                set.insert_child(pe.clone(), s);
            }
        }
        if let Some(slot) = itself {
            self.0[slot].insert_member(pe);
        }
    }
}

/// The added-or-modified fields in FieldsV1 form: each key is an element (`f:name`,
/// `k:{...}`), a member with nothing below is `{}`, one with something below has `"."`.
/// A level's members are gathered in a plain B-tree (nothing allocated while it is empty)
/// and become an object when the level is added to its parent.
struct FieldsV1 {
    map: BTreeMap<Key, Value>,
    /// False once an element was met whose text may not say whether it equals another.
    exact: bool,
}

/// Whether set elements equal as values are also equal as text: no number that is not an
/// integer (`compare_values` compares those as floats).
fn plain_numbers(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_i64().is_some(),
        Value::Array(a) => a.iter().all(plain_numbers),
        Value::Object(m) => m.values().all(plain_numbers),
        _ => true,
    }
}

impl Default for FieldsV1 {
    fn default() -> Self {
        FieldsV1 {
            map: BTreeMap::new(),
            exact: true,
        }
    }
}

impl Level for FieldsV1 {
    fn is_empty(&self) -> bool {
        self.map.is_empty() && self.exact
    }

    fn add(&mut self, pe: Elem<'_>, sub: Self, itself: Option<usize>) {
        let FieldsV1 { mut map, exact } = sub;
        self.exact &= exact;
        let member = itself == Some(ADDED);
        if !member && map.is_empty() {
            return;
        }
        let key = match pe {
            Elem::Field(name) => Key::prefixed("f:", name),
            Elem::Item(pe) => {
                let plain = match pe {
                    PathElement::Key(fields) => fields.iter().all(|(_, v)| plain_numbers(v)),
                    PathElement::Value(v) => plain_numbers(v),
                    _ => true,
                };
                self.exact &= plain;
                pe.fields_v1_key().into()
            }
        };
        let level = if map.is_empty() {
            empty_object()
        } else {
            if member {
                map.insert(".".into(), empty_object());
            }
            Value::Object(Map::from(map))
        };
        // Two children with one key would be merged in a set: leave that to the set.
        if self.map.insert(key, level).is_some() {
            self.exact = false;
        }
    }
}

/// `{}`, the value of most FieldsV1 members: all of them share one empty map (a copy is a
/// reference count; whoever writes to one gets a map of its own).
fn empty_object() -> Value {
    static EMPTY: LazyLock<Map> = LazyLock::new(Map::new);
    Value::Object(EMPTY.clone())
}

/// A walk of two versions of an object together, building its result level by level:
/// each node fills the levels of its own children and says in which slot (if any) it is
/// itself a member.
struct Walker {
    /// The slot modified fields go to (`ADDED` to merge them with the added ones).
    modified: usize,
}

/// The items of a granular list with their path elements (by index when an item has
/// none).
fn index_items<'v>(kind: ListType<'_>, list: Option<&'v Value>) -> Vec<(PathElement, &'v Value)> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let pe = item_element(kind, item, i, &[]).unwrap_or(PathElement::Index(i));
                    (pe, item)
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Walker {
    /// The slot of a leaf that differs.
    fn leaf(&self, old: Option<&Value>, new: Option<&Value>) -> Option<usize> {
        match (old, new) {
            (None, None) => None,
            (None, Some(_)) => Some(ADDED),
            (Some(_), None) => Some(REMOVED),
            (Some(a), Some(b)) if a != b => Some(self.modified),
            _ => None,
        }
    }

    /// Compares the child `pe` of the current node into `here` (the current node's
    /// level); `pe` is named only when something below or at it changed.
    fn child<L: Level>(
        &self,
        pe: Elem<'_>,
        old: Option<&Value>,
        new: Option<&Value>,
        shape: Shape<'_>,
        here: &mut L,
    ) {
        let mut sub = L::default();
        let itself = self.node(old, new, shape, &mut sub);
        if itself.is_none() && sub.is_empty() {
            return;
        }
        here.add(pe, sub, itself);
    }

    /// Compares one node, filling `here` with the changes below it; the slot the node
    /// itself goes to.
    fn node<L: Level>(
        &self,
        old: Option<&Value>,
        new: Option<&Value>,
        shape: Shape<'_>,
        here: &mut L,
    ) -> Option<usize> {
        if old.is_none() && new.is_none() {
            return None;
        }
        // `null` is the zero value of a map or list the object always serializes.
        let objects = old.is_none_or(|v| v.is_object() || v.is_null())
            && new.is_none_or(|v| v.is_object() || v.is_null());
        let arrays = old.is_none_or(|v| v.is_array() || v.is_null())
            && new.is_none_or(|v| v.is_array() || v.is_null());
        let both_empty = is_empty_container(old) && is_empty_container(new);
        if shape.is_atomic() || both_empty || !(objects || arrays) {
            return self.leaf(old, new);
        }
        if objects {
            let (om, nm) = (
                old.and_then(Value::as_object),
                new.and_then(Value::as_object),
            );
            if let Some(om) = om {
                for (k, ov) in om {
                    let nv = nm.and_then(|n| n.get(k));
                    self.child(Elem::Field(k), Some(ov), nv, shape.field(k), here);
                }
            }
            if let Some(nm) = nm {
                for (k, nv) in nm {
                    if om.is_some_and(|o| o.contains_key(k)) {
                        continue;
                    }
                    self.child(Elem::Field(k), None, Some(nv), shape.field(k), here);
                }
            }
        } else {
            let Some((kind, item_shape)) = granular_list(shape) else {
                return self.leaf(old, new);
            };
            let (oi, ni) = (index_items(kind, old), index_items(kind, new));
            let mut seen: Vec<&PathElement> = Vec::new();
            for (pe, _) in oi.iter().chain(ni.iter()) {
                if seen.contains(&pe) {
                    continue;
                }
                seen.push(pe);
                let mut o = oi.iter().filter(|(p, _)| p == pe).map(|(_, v)| *v);
                let mut n = ni.iter().filter(|(p, _)| p == pe).map(|(_, v)| *v);
                let (o1, o2) = (o.next(), o.next());
                let (n1, n2) = (n.next(), n.next());
                if o2.is_some() || n2.is_some() {
                    // A key given twice: the item counts as modified.
                    here.add(Elem::Item(pe), L::default(), Some(self.modified));
                } else {
                    self.child(Elem::Item(pe), o1, n1, item_shape, here);
                }
            }
        }
        // A map, list or list item that appears or goes counts itself (a `null` is there).
        if old.is_none() {
            Some(ADDED)
        } else if new.is_none() {
            Some(REMOVED)
        } else {
            None
        }
    }
}
