//! Label and field selectors, parsed from query strings and matched against JSON objects.

use crate::json::{Map, Value};

use crate::resources::ResourceDef;
use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`a=b,c!=d,e in (f,g),h,!i`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelReq>);

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    /// Parses a selector; 400 BadRequest when it is malformed.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::bad_request(format!(
                "unable to parse requirement: invalid label selector: {s:?}"
            ))
        };
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let req = if let Some(k) = part.strip_prefix('!') {
                LabelReq::NotExists(k.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("!=") {
                LabelReq::NotEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==") {
                LabelReq::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once('=') {
                LabelReq::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, set)) = part.split_once(" notin ") {
                LabelReq::NotIn(k.trim().to_owned(), parse_set(set).ok_or_else(bad)?)
            } else if let Some((k, set)) = part.split_once(" in ") {
                LabelReq::In(k.trim().to_owned(), parse_set(set).ok_or_else(bad)?)
            } else if part.contains(' ') || part.contains('(') {
                return Err(bad());
            } else {
                LabelReq::Exists(part.to_owned())
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether the object's labels satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, set) => get(k).is_some_and(|x| set.iter().any(|s| s == x)),
            LabelReq::NotIn(k, set) => !get(k).is_some_and(|x| set.iter().any(|s| s == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }

    /// A label that every matching object has set to one of a few values: the first
    /// `key=value` requirement, else the first `key in (...)` (an empty set matches
    /// nothing); `None` when the selector has neither.
    pub fn required_values(&self) -> Option<(&str, &[String])> {
        let eq = self.0.iter().find_map(|r| match r {
            LabelReq::Eq(k, v) => Some((k.as_str(), std::slice::from_ref(v))),
            _ => None,
        });
        eq.or_else(|| {
            self.0.iter().find_map(|r| match r {
                LabelReq::In(k, set) => Some((k.as_str(), set.as_slice())),
                _ => None,
            })
        })
    }
}

/// Maps with at most this many keys are searched by [`small_get`]'s walk.
const SMALL_MAP: usize = 16;

/// `map.get(key)` for the small maps of an object (its top level, its metadata, its
/// labels): the keys are walked in order and compared by length before their bytes, so
/// nearly every key is passed over without a byte comparison, where the tree search calls
/// `memcmp` for every key it passes. Keys are unique, so the key found is the one `get`
/// finds. Larger maps are searched by `get`.
fn small_get<'a>(map: &'a Map, key: &str) -> Option<&'a Value> {
    if map.len() > SMALL_MAP {
        return map.get(key);
    }
    map.iter()
        .find(|(k, _)| k.len() == key.len() && k.as_str() == key)
        .map(|(_, v)| v)
}

/// The string value of label `key` of an object, as label selectors read it (found with
/// [`small_get`]: the store reads it for every change it dispatches and for every object
/// or change a watch with a label starts from).
pub(crate) fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    let meta = small_get(obj.as_object()?, "metadata")?.as_object()?;
    small_get(small_get(meta, "labels")?.as_object()?, key)?.as_str()
}

/// A parsed field selector (`metadata.name=x,status.phase!=Running`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// The value at a JSON pointer made of plain `/`-separated keys (no `~` escapes), found
/// without the allocations of [`Value::pointer`].
pub(crate) fn at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    keys(path).try_fold(obj, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// [`at`] for changing the value found.
pub(crate) fn at_mut<'a>(obj: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    keys(path).try_fold(obj, |v, key| match v {
        Value::Object(m) => m.get_mut(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// The keys of a pointer: what `path.split('/').skip(1)` yields, found with a plain byte
/// scan (short paths make `str::split`'s searcher the larger cost).
fn keys(path: &str) -> impl Iterator<Item = &str> {
    let slash = |from: usize| {
        path.as_bytes()
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b'/'))
            .map(|i| from + i)
    };
    let mut start = slash(0).map(|i| i + 1);
    std::iter::from_fn(move || {
        let s = start?;
        match slash(s) {
            Some(end) => {
                start = Some(end + 1);
                path.get(s..end)
            }
            None => {
                start = None;
                path.get(s..)
            }
        }
    })
}

fn field_path(def: &ResourceDef, field: &str) -> Option<&'static str> {
    if crate::events::is_converted(def) {
        return crate::events::field_path(field);
    }
    let common = match field {
        "metadata.name" => Some("/metadata/name"),
        "metadata.namespace" => Some("/metadata/namespace"),
        _ => None,
    };
    common.or(match (def.plural.as_str(), field) {
        ("pods", "status.phase") => Some("/status/phase"),
        ("pods", "spec.nodeName") => Some("/spec/nodeName"),
        ("pods", "spec.serviceAccountName") => Some("/spec/serviceAccountName"),
        ("pods", "spec.restartPolicy") => Some("/spec/restartPolicy"),
        ("pods", "spec.schedulerName") => Some("/spec/schedulerName"),
        ("pods", "status.podIP") => Some("/status/podIP"),
        ("pods", "status.nominatedNodeName") => Some("/status/nominatedNodeName"),
        ("events", "involvedObject.kind") => Some("/involvedObject/kind"),
        ("events", "involvedObject.name") => Some("/involvedObject/name"),
        ("events", "involvedObject.namespace") => Some("/involvedObject/namespace"),
        ("events", "involvedObject.uid") => Some("/involvedObject/uid"),
        ("events", "involvedObject.apiVersion") => Some("/involvedObject/apiVersion"),
        ("events", "involvedObject.resourceVersion") => Some("/involvedObject/resourceVersion"),
        ("events", "involvedObject.fieldPath") => Some("/involvedObject/fieldPath"),
        ("events", "reason") => Some("/reason"),
        ("events", "type") => Some("/type"),
        ("events", "source") => Some("/source/component"),
        ("jobs", "status.successful") => Some("/status/succeeded"),
        ("secrets", "type") => Some("/type"),
        _ => None,
    })
}

/// The JSON pointer of a field a custom resource declares in `selectableFields`.
fn selectable_path(def: &ResourceDef, field: &str) -> Option<String> {
    let custom = def.custom.as_ref()?;
    custom
        .selectable_fields
        .iter()
        .any(|f| f == field)
        .then(|| format!("/{}", field.replace('.', "/")))
}

impl FieldSelector {
    /// Parses a field selector for a resource; 400 for a field the resource does not support.
    pub fn parse(def: &ResourceDef, s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let (field, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let Some(path) = field_path(def, field)
                .map(str::to_owned)
                .or_else(|| selectable_path(def, field))
            else {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            };
            reqs.push((path, eq, value.trim().to_owned()));
        }
        Ok(Self(reqs))
    }

    /// Whether the object satisfies every requirement (a missing field reads as empty).
    pub fn matches(&self, obj: &Value) -> bool {
        self.0
            .iter()
            .all(|(path, eq, want)| (field_text(obj, path) == want.as_str()) == *eq)
    }

    /// The first `field=value` requirement, as the JSON pointer it reads (see
    /// `field_text`) and the value every matching object has there.
    pub fn required_value(&self) -> Option<(&str, &str)> {
        self.0
            .iter()
            .find(|(_, eq, _)| *eq)
            .map(|(path, _, want)| (path.as_str(), want.as_str()))
    }
}

/// The field at a JSON pointer as field selectors compare it: a string as itself, a missing
/// or null field as empty, anything else as its JSON text.
pub(crate) fn field_text<'a>(obj: &'a Value, path: &str) -> std::borrow::Cow<'a, str> {
    match at(obj, path) {
        Some(Value::String(s)) => std::borrow::Cow::Borrowed(s),
        Some(Value::Null) | None => std::borrow::Cow::Borrowed(""),
        Some(v) => std::borrow::Cow::Owned(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;
    use crate::resources::well_known;

    fn obj() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x", "tier": "db"}},
               "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selector_operators() {
        let o = obj();
        for (sel, want) in [
            ("app=x", true),
            ("app==x", true),
            ("app!=x", false),
            ("app in (x, y)", true),
            ("app notin (x)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing,app=x", true),
            ("app=x,tier=web", false),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn at_walks_objects_and_arrays_like_pointer() {
        let o = json!({"a": {"b": [{"c": 1}, {"c": 2}]}});
        for path in ["/a", "/a/b", "/a/b/1/c", "/a/b/2", "/a/x", "/a/b/x", ""] {
            assert_eq!(at(&o, path), o.pointer(path), "{path}");
            let mut m = o.clone();
            assert_eq!(
                at_mut(&mut m, path).cloned(),
                o.pointer(path).cloned(),
                "{path}"
            );
        }
        for path in ["", "/", "/a/", "a/b", "//x", "/a//b", "/é/ü"] {
            let split: Vec<&str> = path.split('/').skip(1).collect();
            assert_eq!(keys(path).collect::<Vec<_>>(), split, "{path:?}");
        }
    }

    #[test]
    fn field_selector_by_resource() {
        let o = obj();
        let pods = well_known::pods();
        assert!(
            FieldSelector::parse(pods, "status.phase=Running")
                .unwrap()
                .matches(&o)
        );
        assert!(
            !FieldSelector::parse(pods, "metadata.name!=p")
                .unwrap()
                .matches(&o)
        );
        let err =
            FieldSelector::parse(well_known::configmaps(), "status.phase=Running").unwrap_err();
        assert_eq!(err.message, "field label not supported: status.phase");
    }
}
