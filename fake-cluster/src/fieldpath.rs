//! Field paths and sets of them, as the API server writes them in `metadata.managedFields`
//! (`fieldsType: FieldsV1`, structured-merge-diff's `fieldpath` package).
//!
//! A path is a list of elements: a field name (`f:name`), the key of an item of an
//! associative list (`k:{"name":"main"}`), an item of a set (`v:"value"`) or an index
//! (`i:0`). A set is a tree: its members are the paths it holds, its children the
//! subtrees below an element. In FieldsV1 each element is a JSON key, a member with no
//! children is `{}`, and a member that also has children is marked by `".": {}` inside its
//! subtree.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::json::{Map, Value};

/// One element of a field path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathElement {
    /// A field of a struct or a key of a map: `f:name`.
    Field(String),
    /// An item of an associative list, by its key fields (sorted by name): `k:{...}`.
    Key(Vec<(String, Value)>),
    /// An item of a set (a list of scalars): `v:value`.
    Value(Value),
    /// An item of a list by position: `i:0`.
    Index(usize),
}

/// A path from the object's root.
pub type Path = Vec<PathElement>;

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// A total order on JSON values: by type, then by value.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => {
                let (f, g) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                f.partial_cmp(&g).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = compare_values(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((k1, v1), (k2, v2)) in x.iter().zip(y) {
                let c = k1.cmp(k2).then_with(|| compare_values(v1, v2));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            Self::Field(_) => 0,
            Self::Key(_) => 1,
            Self::Value(_) => 2,
            Self::Index(_) => 3,
        }
    }

    /// The FieldsV1 key: `f:name`, `k:{"name":"main"}`, `v:"x"`, `i:0`.
    pub fn fields_v1_key(&self) -> String {
        match self {
            Self::Field(name) => {
                let mut s = String::with_capacity(name.len() + 2);
                s.push_str("f:");
                s.push_str(name);
                s
            }
            // Written as `format!` with the value's `Display` writes them, without building
            // the object first when the fields are already in its (sorted, unique) order.
            Self::Key(fields) => crate::encoding::prefixed_string("k:", |out| {
                if fields.windows(2).all(|w| w[0].0 < w[1].0) {
                    let members = fields.iter().map(|(k, v)| (k.as_str(), v));
                    crate::encoding::write_entries(out, members);
                } else {
                    let map: Map = fields.iter().cloned().collect();
                    crate::encoding::write_value(out, &Value::Object(map));
                }
            }),
            Self::Value(v) => {
                crate::encoding::prefixed_string("v:", |out| crate::encoding::write_value(out, v))
            }
            Self::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a FieldsV1 key.
    pub fn parse_fields_v1_key(s: &str) -> Result<Self, String> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("invalid path element {s:?}"))?;
        let json = || serde_json::from_str::<Value>(rest).map_err(|e| format!("{s:?}: {e}"));
        match kind {
            "f" => Ok(Self::Field(rest.to_owned())),
            "k" => match json()? {
                Value::Object(m) => Ok(Self::Key(
                    m.into_iter().map(|(k, v)| (String::from(k), v)).collect(),
                )),
                _ => Err(format!("invalid key in {s:?}")),
            },
            "v" => Ok(Self::Value(json()?)),
            "i" => rest
                .parse()
                .map(Self::Index)
                .map_err(|_| format!("invalid index in {s:?}")),
            _ => Err(format!("invalid path element {s:?}")),
        }
    }
}

/// A scalar as structured-merge-diff prints it in a path: strings quoted.
fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl std::fmt::Display for PathElement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            Self::Value(v) => write!(f, "[={}]", value_string(v)),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as conflict messages print it: `.spec.containers[name="main"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    let mut s = String::new();
    for pe in path {
        let _ = write!(s, "{pe}");
    }
    s
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Field(a), Self::Field(b)) => a.cmp(b),
            (Self::Key(a), Self::Key(b)) => {
                for ((n1, v1), (n2, v2)) in a.iter().zip(b) {
                    let c = n1.cmp(n2).then_with(|| compare_values(v1, v2));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Self::Value(a), Self::Value(b)) => compare_values(a, b),
            (Self::Index(a), Self::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A set of paths, kept as a tree with no empty subtrees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path (the empty path is ignored).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether the set holds this path.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether the set holds this path or any path below it.
    pub fn has_prefix(&self, path: &[PathElement]) -> bool {
        match path {
            [] => !self.is_empty(),
            [last] => self.members.contains(last) || self.children.contains_key(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has_prefix(rest)),
        }
    }

    /// The elements of the top level: members and roots of children.
    pub fn top_level(&self) -> Vec<PathElement> {
        let all: BTreeSet<&PathElement> = self.members.iter().chain(self.children.keys()).collect();
        all.into_iter().cloned().collect()
    }

    /// The subtree below one element.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// Adds `pe` as a member of the top level.
    pub(crate) fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Adds the paths of `sub` below `pe` (nothing when `sub` is empty, so no empty subtree
    /// is ever kept).
    pub(crate) fn insert_child(&mut self, pe: PathElement, sub: FieldSet) {
        if sub.is_empty() {
            return;
        }
        match self.children.entry(pe) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(sub);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().extend(sub),
        }
    }

    /// Keeps only the top-level elements (members and subtrees) `keep` accepts.
    pub(crate) fn retain_top(&mut self, keep: impl Fn(&PathElement) -> bool) {
        self.members.retain(|pe| keep(pe));
        self.children.retain(|pe, _| keep(pe));
    }

    /// Removes the top-level members `drop` accepts (subtrees below them stay).
    pub(crate) fn remove_members(&mut self, drop: impl Fn(&PathElement) -> bool) {
        self.members.retain(|pe| !drop(pe));
    }

    /// The subtree below the top-level field `name`, to change in place; the caller must
    /// not leave it empty (see [`FieldSet::drop_empty_child`]).
    pub(crate) fn field_child_mut(&mut self, name: &str) -> Option<&mut FieldSet> {
        self.children
            .iter_mut()
            .find(|(pe, _)| matches!(pe, PathElement::Field(n) if n == name))
            .map(|(_, c)| c)
    }

    /// Drops the subtree below the top-level field `name` if it holds nothing.
    pub(crate) fn drop_empty_child(&mut self, name: &str) {
        self.children
            .retain(|pe, c| !(matches!(pe, PathElement::Field(n) if n == name) && c.is_empty()));
    }

    /// Adds every path of `other` (the union, in place, moving `other`'s elements).
    pub fn extend(&mut self, other: FieldSet) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.members.extend(other.members);
        for (pe, c) in other.children {
            self.insert_child(pe, c);
        }
    }

    /// Removes every path `other` holds (the [`FieldSet::difference`], in place).
    pub fn subtract(&mut self, other: &FieldSet) {
        if self.is_empty() || other.is_empty() {
            return;
        }
        if !other.members.is_empty() {
            self.members.retain(|pe| !other.members.contains(pe));
        }
        if !other.children.is_empty() {
            self.children.retain(|pe, c| {
                if let Some(o) = other.children.get(pe) {
                    c.subtract(o);
                }
                !c.is_empty()
            });
        }
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths of `self` that `other` does not hold (paths below a member of `other` stay).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            let rest = match other.children.get(pe) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    /// Paths held by both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let both = c.intersection(o);
                if !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    /// Paths of `self` that are neither in `other` nor below one of its members.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let rest = match other.children.get(pe) {
                Some(o) => c.recursive_difference(o),
                None => c.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    /// Every path, members of a level before its children, each level in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The FieldsV1 form.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        // Members and subtree roots in order, each once: a merge of the two sorted
        // sequences (as iterating their union would give).
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let (pe, body) = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(m), Some((c, sub))) => match (*m).cmp(*c) {
                    Ordering::Less => (members.next(), Map::new()),
                    Ordering::Greater => {
                        let body = sub.emit(false);
                        (children.next().map(|(c, _)| c), body)
                    }
                    Ordering::Equal => {
                        let body = sub.emit(true);
                        members.next();
                        (children.next().map(|(c, _)| c), body)
                    }
                },
                (Some(_), None) => (members.next(), Map::new()),
                (None, Some((_, sub))) => {
                    let body = sub.emit(false);
                    (children.next().map(|(c, _)| c), body)
                }
            };
            if let Some(pe) = pe {
                out.insert(pe.fields_v1_key().into(), Value::Object(body));
            }
        }
        out
    }

    /// Parses the FieldsV1 form.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let map = v
            .as_object()
            .ok_or_else(|| "FieldsV1 must be an object".to_owned())?;
        let mut out = FieldSet::new();
        for (k, body) in map {
            if k == "." {
                continue;
            }
            let pe = PathElement::parse_fields_v1_key(k)?;
            let body_map = body
                .as_object()
                .ok_or_else(|| format!("the value of {k:?} must be an object"))?;
            if body_map.is_empty() || body_map.contains_key(".") {
                out.members.insert(pe.clone());
            }
            let child = FieldSet::from_fields_v1(body)?;
            if !child.is_empty() {
                out.children.insert(pe, child);
            }
        }
        Ok(out)
    }
}

/// A path from field names only (`["metadata", "name"]`).
pub fn fields(names: &[&str]) -> Path {
    names
        .iter()
        .map(|n| PathElement::Field((*n).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    fn key(name: &str) -> PathElement {
        PathElement::Key(vec![("name".into(), json!(name))])
    }

    #[test]
    fn fields_v1_round_trips_with_dot_for_members_that_have_children() {
        let mut s = FieldSet::new();
        s.insert(&fields(&["data", "k"]));
        s.insert(&fields(&["metadata", "labels"]));
        s.insert(&fields(&["metadata", "labels", "app"]));
        let mut c = fields(&["spec", "containers"]);
        c.push(key("main"));
        s.insert(&c);
        let mut image = c.clone();
        image.push(PathElement::Field("image".into()));
        s.insert(&image);
        let v = s.to_fields_v1();
        assert_eq!(
            v,
            json!({
                "f:data": {"f:k": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:image": {}}}},
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&v).unwrap(), s);
        assert_eq!(path_string(&image), ".spec.containers[name=\"main\"].image");
    }

    #[test]
    fn fields_v1_keys_are_written_as_the_value_displays() {
        let unsorted = vec![
            ("protocol".to_owned(), json!("TCP")),
            ("containerPort".to_owned(), json!(80)),
            ("containerPort".to_owned(), json!(81)),
        ];
        let sorted = vec![
            ("containerPort".to_owned(), json!(80)),
            ("name".to_owned(), json!("a\"b\n")),
            ("x".to_owned(), json!({"z": 1.5, "a": [null, true]})),
        ];
        for fields in [sorted, unsorted] {
            let map: Map = fields.iter().cloned().collect();
            assert_eq!(
                PathElement::Key(fields).fields_v1_key(),
                format!("k:{}", Value::Object(map))
            );
        }
        let v = json!({"b": "é\u{1}", "a": [1, -2, 0.25]});
        assert_eq!(
            PathElement::Value(v.clone()).fields_v1_key(),
            format!("v:{v}")
        );
    }

    #[test]
    fn set_operations() {
        let mut a = FieldSet::new();
        a.insert(&fields(&["data", "a"]));
        a.insert(&fields(&["data", "b"]));
        let mut b = FieldSet::new();
        b.insert(&fields(&["data", "b"]));
        b.insert(&fields(&["data", "c"]));
        assert_eq!(a.intersection(&b).paths(), vec![fields(&["data", "b"])]);
        assert_eq!(a.difference(&b).paths(), vec![fields(&["data", "a"])]);
        assert_eq!(a.union(&b).paths().len(), 3);
        let mut data = FieldSet::new();
        data.insert(&fields(&["data"]));
        assert!(a.recursive_difference(&data).is_empty());
        assert!(a.difference(&data).has(&fields(&["data", "a"])));
        assert!(a.has_prefix(&fields(&["data"])));
    }
}
