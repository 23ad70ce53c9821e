//! Dispatch of changes to the open watches of one resource: watches are indexed by what
//! they can match (namespace, a required label value, a required field value), so that a
//! change is offered only to the watches that may want it, not to every open watch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::json::Value;

use super::Change;
use super::history::WatchSlot;
use crate::selector::{field_text, label};

/// What a watcher can want, for the store to offer it only the changes (and, at its
/// start, the objects) that may concern it.
///
/// It must admit every change the watcher's [`Wants`](super::Wants) is true for, and every
/// object it would send as a synthetic ADDED event; it may admit more (`wants` and the
/// watcher still decide).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interest {
    /// Only changes in this namespace, if set.
    pub namespace: Option<String>,
    /// Only changes whose object, before or after the change, meets this, if set.
    pub requires: Option<Requirement>,
}

/// An equality every object a watcher wants meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Label `key` set to one of `values`.
    Label {
        /// The label.
        key: String,
        /// Its values.
        values: Vec<String>,
    },
    /// `value` at the JSON pointer `path`, read as field selectors read fields (a missing
    /// or null field is empty, a non-string is its JSON text).
    Field {
        /// The JSON pointer.
        path: String,
        /// The value.
        value: String,
    },
}

impl Requirement {
    /// Whether the object meets the requirement.
    pub fn admits(&self, obj: &Value) -> bool {
        match self {
            Self::Label { key, values } => {
                label(obj, key).is_some_and(|v| values.iter().any(|w| w == v))
            }
            Self::Field { path, value } => field_text(obj, path) == value.as_str(),
        }
    }
}

impl Interest {
    /// Whether an object stored in namespace `ns` may concern the watcher.
    pub fn admits(&self, ns: &str, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.requires.as_ref().is_none_or(|r| r.admits(obj))
    }

    /// Whether a change may concern the watcher (its object before or after it does).
    pub fn admits_change(&self, c: &Change) -> bool {
        self.admits(&c.namespace, &c.object)
            || c.previous
                .as_deref()
                .is_some_and(|p| self.admits(&c.namespace, p))
    }
}

/// Watcher ids by the value they need (of one label, or one field).
type ByValue = HashMap<String, Vec<u64>>;

/// The open watches of one resource, in registration order, with their indexes: a watcher
/// with a requirement is listed under it, else one with a namespace under that, else it
/// is offered every change.
#[derive(Default)]
pub(crate) struct WatchSet {
    next_id: u64,
    /// Every watcher by id; ids grow with registration, so this is registration order.
    slots: BTreeMap<u64, (WatchSlot, Interest)>,
    /// Watchers offered every change, sorted.
    any: Vec<u64>,
    by_namespace: HashMap<String, Vec<u64>>,
    by_label: BTreeMap<String, ByValue>,
    by_field: BTreeMap<String, ByValue>,
    /// Watchers left after the last sweep of closed ones.
    kept_at_sweep: usize,
}

impl WatchSet {
    /// Adds a watcher. Watchers that went away without a change offered to them are swept
    /// out now and then, so that the set stays proportional to the open watches.
    pub(super) fn register(&mut self, slot: WatchSlot, interest: Interest) {
        if self.slots.len() >= 2 * self.kept_at_sweep.max(32) {
            self.sweep();
        }
        let id = self.next_id;
        self.next_id += 1;
        match (&interest.requires, &interest.namespace) {
            (Some(Requirement::Label { key, values }), _) => {
                let by_value = self.by_label.entry(key.clone()).or_default();
                for v in dedup(values) {
                    by_value.entry(v.clone()).or_default().push(id);
                }
            }
            (Some(Requirement::Field { path, value }), _) => self
                .by_field
                .entry(path.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .push(id),
            (None, Some(ns)) => self.by_namespace.entry(ns.clone()).or_default().push(id),
            (None, None) => self.any.push(id),
        }
        self.slots.insert(id, (slot, interest));
    }

    /// Offers a change to every watcher whose interest admits it, in registration order
    /// (the order every watcher was offered every change before the indexes), and drops
    /// the watchers that are gone or fell behind.
    pub(super) fn dispatch(&mut self, change: &Arc<Change>) {
        let mut ids = self.candidates(change);
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            if let Some((slot, _)) = self.slots.get(&id)
                && !slot.offer(change)
            {
                self.remove(id);
            }
        }
    }

    /// The watchers that may want `change` (with repeats): those of any change, of its
    /// namespace, and of the label or field values its object has before or after it.
    fn candidates(&self, change: &Change) -> Vec<u64> {
        let mut ids = self.any.clone();
        if let Some(w) = self.by_namespace.get(&change.namespace) {
            ids.extend_from_slice(w);
        }
        let states = std::iter::once(&*change.object).chain(change.previous.as_deref());
        for (key, by_value) in &self.by_label {
            for obj in states.clone() {
                if let Some(w) = label(obj, key).and_then(|v| by_value.get(v)) {
                    ids.extend_from_slice(w);
                }
            }
        }
        for (path, by_value) in &self.by_field {
            for obj in states.clone() {
                if let Some(w) = by_value.get(field_text(obj, path).as_ref()) {
                    ids.extend_from_slice(w);
                }
            }
        }
        ids
    }

    fn remove(&mut self, id: u64) {
        let Some((_, interest)) = self.slots.remove(&id) else {
            return;
        };
        let unlist = |ids: &mut Vec<u64>| ids.retain(|&i| i != id);
        match (interest.requires, interest.namespace) {
            (Some(Requirement::Label { key, values }), _) => {
                if let Some(by_value) = self.by_label.get_mut(&key) {
                    for v in &values {
                        unlist_in(by_value, v, unlist);
                    }
                    if by_value.is_empty() {
                        self.by_label.remove(&key);
                    }
                }
            }
            (Some(Requirement::Field { path, value }), _) => {
                if let Some(by_value) = self.by_field.get_mut(&path) {
                    unlist_in(by_value, &value, unlist);
                    if by_value.is_empty() {
                        self.by_field.remove(&path);
                    }
                }
            }
            (None, Some(ns)) => unlist_in(&mut self.by_namespace, &ns, unlist),
            (None, None) => unlist(&mut self.any),
        }
    }

    /// Drops the watchers whose receiver is gone.
    fn sweep(&mut self) {
        let gone: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, (slot, _))| slot.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.remove(id);
        }
        self.kept_at_sweep = self.slots.len();
    }

    /// Number of registered watchers (some may be gone and not yet swept).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }
}

fn unlist_in(map: &mut HashMap<String, Vec<u64>>, k: &str, unlist: impl Fn(&mut Vec<u64>)) {
    if let Some(ids) = map.get_mut(k) {
        unlist(ids);
        if ids.is_empty() {
            map.remove(k);
        }
    }
}

/// The values without repeats, in order (a watcher is listed once per value).
fn dedup(values: &[String]) -> impl Iterator<Item = &String> {
    values
        .iter()
        .enumerate()
        .filter(move |(i, v)| !values[..*i].contains(v))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::Clock;
    use crate::json::json;
    use crate::resources::well_known;
    use crate::selector::{FieldSelector, LabelSelector};
    use crate::store::{DeleteOptions, Store, WatchReceiver, WatchStart, meta_str};

    fn store() -> Store {
        let s = Store::new(1, 1000, Clock::new());
        for ns in ["a", "b"] {
            s.create(
                well_known::namespaces(),
                "",
                json!({"metadata": {"name": ns}}),
            )
            .unwrap();
        }
        s
    }

    fn cm(name: &str, app: &str, tier: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": app, "tier": tier}}, "data": {"n": "1"}})
    }

    /// What a watch with this namespace and these selectors matches.
    type Matcher = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

    fn matcher(ns: Option<&str>, labels: &str, fields: &str) -> Matcher {
        let ns = ns.map(str::to_owned);
        let labels = LabelSelector::parse(labels).unwrap();
        let fields = FieldSelector::parse(well_known::configmaps(), fields).unwrap();
        Arc::new(move |o: &Value| {
            ns.as_deref()
                .is_none_or(|n| meta_str(o, "namespace") == Some(n))
                && labels.matches(o)
                && fields.matches(o)
        })
    }

    /// The changes such a watch wants, as `watch::start` asks for them.
    fn wants(m: &Matcher) -> super::super::Wants {
        let m = m.clone();
        Box::new(move |c: &Change| m(&c.object) || c.previous.as_deref().is_some_and(|p| m(p)))
    }

    fn drain(rx: &mut WatchReceiver) -> Vec<u64> {
        std::iter::from_fn(|| rx.try_recv()).map(|c| c.rv).collect()
    }

    /// The resourceVersions a watch starts with, those the watch would send first, and
    /// how many the store handed it.
    fn started(start: &WatchStart, m: &Matcher) -> (Vec<String>, usize) {
        let rv = |o: &Value| {
            meta_str(o, "resourceVersion")
                .unwrap_or_default()
                .to_owned()
        };
        match start {
            WatchStart::Initial(objects, _) => (
                objects.iter().filter(|o| m(o)).map(|o| rv(o)).collect(),
                objects.len(),
            ),
            WatchStart::Resume(changes, _) => {
                let w = wants(m);
                (
                    changes
                        .iter()
                        .filter(|c| w(c))
                        .map(|c| c.rv.to_string())
                        .collect(),
                    changes.len(),
                )
            }
        }
    }

    fn label(key: &str, values: &[&str]) -> Option<Requirement> {
        Some(Requirement::Label {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        })
    }

    /// Creates and relabels objects, or relabels and deletes them, in one namespace or the
    /// other: they enter and leave every selector of the test.
    fn churn(s: &Store, round: usize) {
        let cms = well_known::configmaps();
        let ns = ["a", "b"][round % 2];
        for (name, app, tier) in [("c1", "x", "db"), ("c2", "y", "web"), ("c3", "x", "cache")] {
            let existed = s.get(cms, ns, name).is_ok();
            if !existed {
                s.create(cms, ns, cm(name, app, tier)).unwrap();
            }
            s.modify(cms, ns, name, |o| {
                o["metadata"]["labels"]["app"] = json!(if app == "x" { "y" } else { "x" });
                Ok(())
            })
            .unwrap();
            s.modify(cms, ns, name, |o| {
                o["metadata"]["labels"]["tier"] = json!(if existed { "db" } else { "web" });
                Ok(())
            })
            .unwrap();
            if existed {
                s.delete(cms, ns, name, &DeleteOptions::default()).unwrap();
            }
        }
    }

    #[test]
    fn indexed_watchers_get_exactly_what_a_full_scan_gives_them() {
        let s = store();
        let cms = well_known::configmaps();
        let field = |path: &str, value: &str| {
            Some(Requirement::Field {
                path: path.into(),
                value: value.into(),
            })
        };
        let cases = [
            (None, label("app", &["x"]), "app=x", ""),
            (
                Some("a"),
                label("tier", &["db", "web", "db"]),
                "tier in (db,web),app!=y",
                "",
            ),
            (None, field("/metadata/name", "c1"), "", "metadata.name=c1"),
            (
                Some("b"),
                field("/metadata/name", "c2"),
                "app=x",
                "metadata.name=c2",
            ),
            (Some("b"), None, "", ""),
        ];
        let mut watches = Vec::new();
        let (_, mut every, _) = s.watch(cms, None, |_: &Change| true).unwrap();
        let mut fewer = 0;
        for round in 0..4 {
            let from = s.resource_version();
            churn(&s, round);
            for (ns, requires, l, f) in &cases {
                let m = matcher(*ns, l, f);
                let interest = Interest {
                    namespace: ns.map(str::to_owned),
                    requires: requires.clone(),
                };
                for from in [None, Some(from)] {
                    let (start, indexed, _) = s
                        .watch_with(cms, from, interest.clone(), wants(&m), Vec::new())
                        .unwrap();
                    let (all, scanned, _) = s
                        .watch_with(cms, from, Interest::default(), wants(&m), Vec::new())
                        .unwrap();
                    let (first, handed) = started(&start, &m);
                    let (first_all, handed_all) = started(&all, &m);
                    assert_eq!(first, first_all, "{l} {f} from {from:?}");
                    assert!(handed <= handed_all);
                    fewer += usize::from(handed < handed_all);
                    watches.push((indexed, scanned));
                }
            }
        }
        // The store handed the indexed watches fewer objects and changes to look at.
        assert!(fewer > 20, "{fewer}");
        for round in 4..7 {
            churn(&s, round);
        }
        let all = drain(&mut every).len();
        let mut got = Vec::new();
        for (mut indexed, mut scanned) in watches {
            let (i, a) = (drain(&mut indexed), drain(&mut scanned));
            assert_eq!(i, a);
            got.push(i.len());
        }
        // Every watcher got some of the changes, none all of them.
        assert!(got.iter().all(|&n| n > 0 && n < all), "{got:?} of {all}");
    }

    /// How labels were read before `selector::label` walked small maps.
    fn reference<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
        obj.get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }

    #[test]
    fn labels_are_read_as_label_selectors_read_them() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let keys = [
            "a", "b", "ab", "app", "tier", "x/y", "labels", "metadata", "zz",
        ];
        let mut objects = vec![
            json!(null),
            json!([1]),
            json!({"metadata": []}),
            json!({"metadata": {"labels": "x"}}),
            json!({"metadata": {"labels": {"app": 1}}}),
        ];
        for _ in 0..400 {
            // Up to 30 labels and metadata fields: maps past `SMALL_MAP` too.
            let mut labels = crate::json::Map::new();
            for _ in 0..rng.random_range(0..30) {
                let k = if rng.random_bool(0.5) {
                    keys[rng.random_range(0..keys.len())].to_owned()
                } else {
                    format!("k{}", rng.random_range(0..40))
                };
                labels.insert(k.into(), json!(format!("v{}", rng.random_range(0..3))));
            }
            let mut meta = crate::json::Map::new();
            for i in 0..rng.random_range(0..25) {
                meta.insert(format!("f{i}").into(), json!(i));
            }
            if rng.random_bool(0.9) {
                meta.insert("labels".into(), Value::Object(labels));
            }
            objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}));
        }
        let mut found = 0;
        for o in &objects {
            for k in keys.iter().copied().chain(["k3", "k17", ""]) {
                assert_eq!(crate::selector::label(o, k), reference(o, k), "{k} in {o}");
                found += usize::from(crate::selector::label(o, k).is_some());
            }
        }
        assert!(found > 500, "{found}");
    }

    #[test]
    fn watchers_gone_unoffered_are_swept_out() {
        let s = store();
        let cms = well_known::configmaps();
        let interest = |v: &str| Interest {
            namespace: None,
            requires: label("app", &[v]),
        };
        for v in 0..1000 {
            let m = matcher(None, &format!("app={v}"), "");
            let (_, rx, _) = s
                .watch_with(cms, None, interest(&v.to_string()), wants(&m), Vec::new())
                .unwrap();
            drop(rx);
        }
        let m = matcher(None, "app=7", "");
        let (_, mut kept, _) = s
            .watch_with(cms, None, interest("7"), wants(&m), Vec::new())
            .unwrap();
        let len = s
            .lock()
            .watchers
            .get(cms.storage_key())
            .map_or(0, WatchSet::len);
        assert!(len <= 64, "{len} watchers registered");
        s.create(cms, "a", cm("c", "7", "db")).unwrap();
        assert_eq!(drain(&mut kept).len(), 1);
    }
}
