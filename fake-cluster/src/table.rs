//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io, ..., application/json`).
//!
//! Served for custom resources, with the columns of the version's
//! `additionalPrinterColumns` after `Name` (or `Name` and `Age` when it has none), as the
//! apiextensions server's table convertor does: `date` columns become ages (`5m`),
//! missing values `null` (kubectl prints them empty). Each row carries its object as a
//! `PartialObjectMetadata` (`includeObject=Metadata`, the default), the whole object
//! (`Object`) or nothing (`None`). Watches asked for Tables send each event's object as a
//! one-row Table (what `kubectl get --watch` prints). Built-in resources answer plain
//! JSON, which kubectl prints with its own default columns.

use std::time::Duration;

use crate::json::{Value, json};
use http::HeaderMap;

use crate::query::Query;
use crate::resources::ResourceDef;

/// What a Table row carries of its object (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

/// Whether the request asks for a `meta.k8s.io/v1` Table, and with what objects.
pub fn wanted(headers: &HeaderMap, q: &Query) -> Option<IncludeObject> {
    let accept = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"as=Table")
                && params.contains(&"g=meta.k8s.io")
                && params.contains(&"v=v1")
        });
    accept?;
    Some(match q.get("includeObject").map(String::as_str) {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    })
}

/// Whether this resource is printed by the server.
pub fn printed(def: &ResourceDef) -> bool {
    def.custom.is_some()
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The printer columns of `def`: `(definition, jsonPath, type)`.
fn columns(def: &ResourceDef) -> Vec<(Value, String, String)> {
    let mut out = vec![(
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}),
        ".metadata.name".to_owned(),
        "string".to_owned(),
    )];
    let declared = def
        .custom
        .as_ref()
        .map(|c| c.printer_columns.as_slice())
        .unwrap_or_default();
    if declared.is_empty() {
        out.push((
            json!({"name": "Age", "type": "date", "format": "", "description": AGE_DESCRIPTION, "priority": 0}),
            ".metadata.creationTimestamp".to_owned(),
            "date".to_owned(),
        ));
    }
    for c in declared {
        let kind = c.get("type").and_then(Value::as_str).unwrap_or("string");
        out.push((
            json!({"name": c.get("name").cloned().unwrap_or(json!("")), "type": kind,
                   "format": c.get("format").cloned().unwrap_or(json!("")),
                   "description": c.get("description").cloned().unwrap_or(json!("")),
                   "priority": c.get("priority").cloned().unwrap_or(json!(0))}),
            c.get("jsonPath")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            kind.to_owned(),
        ));
    }
    out
}

/// The Table of a list (as clients of `def` see it) at `now` (since the epoch).
pub fn of_list(def: &ResourceDef, list: &Value, include: IncludeObject, now: Duration) -> Value {
    let items = list
        .get("items")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    table(def, items, list.get("metadata").cloned(), include, now)
}

/// The Table of one object.
pub fn of_object(def: &ResourceDef, obj: &Value, include: IncludeObject, now: Duration) -> Value {
    let rv = obj.pointer("/metadata/resourceVersion").cloned();
    table(
        def,
        std::slice::from_ref(obj),
        Some(json!({"resourceVersion": rv})),
        include,
        now,
    )
}

fn table(
    def: &ResourceDef,
    objects: &[Value],
    metadata: Option<Value>,
    include: IncludeObject,
    now: Duration,
) -> Value {
    let cols = columns(def);
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = cols
                .iter()
                .map(|(_, path, kind)| cell(obj, path, kind, now))
                .collect();
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => row["object"] = obj.clone(),
                IncludeObject::Metadata => {
                    row["object"] = json!({"kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))});
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata.unwrap_or(json!({})),
        "columnDefinitions": cols.into_iter().map(|(d, _, _)| d).collect::<Vec<_>>(),
        "rows": rows,
    })
}

fn cell(obj: &Value, path: &str, kind: &str, now: Duration) -> Value {
    let found = json_path(obj, path);
    let Some(first) = found.first() else {
        return Value::Null;
    };
    match kind {
        "date" => first
            .as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map_or(Value::Null, |t| {
                let secs = u64::try_from(t.as_second()).unwrap_or_default();
                json!(human_duration(
                    now.saturating_sub(Duration::from_secs(secs))
                ))
            }),
        "integer" | "number" | "boolean" if found.len() == 1 => (*first).clone(),
        _ => {
            let shown: Vec<String> = found
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            json!(shown.join(" "))
        }
    }
}

/// Evaluates a simple JSONPath (`.spec.size`, `.items[0]`, `.status.conditions[?(@.type=="Ready")].status`,
/// `.spec.list[*].name`) against `obj`: every value it names.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut current = vec![obj];
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            if key.is_empty() {
                continue;
            }
            current = current.into_iter().filter_map(|v| v.get(key)).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Vec::new();
            };
            let selector = &r[..end];
            rest = &r[end + 1..];
            current = current
                .into_iter()
                .flat_map(|v| select(v, selector))
                .collect();
        } else {
            return Vec::new();
        }
    }
    current
}

fn select<'a>(v: &'a Value, selector: &str) -> Vec<&'a Value> {
    let Some(items) = v.as_array() else {
        return Vec::new();
    };
    if selector == "*" {
        return items.iter().collect();
    }
    if let Ok(i) = selector.parse::<usize>() {
        return items.get(i).into_iter().collect();
    }
    // ?(@.field=="value")
    let Some(filter) = selector
        .strip_prefix("?(@.")
        .and_then(|f| f.strip_suffix(')'))
    else {
        return Vec::new();
    };
    let Some((field, wanted)) = filter.split_once("==") else {
        return Vec::new();
    };
    let wanted = wanted.trim().trim_matches(|c| c == '"' || c == '\'');
    items
        .iter()
        .filter(|item| {
            json_path(item, &format!(".{}", field.trim()))
                .first()
                .is_some_and(|x| match x {
                    Value::String(s) => s == wanted,
                    other => {
                        let shown = other.to_string();
                        shown == wanted
                    }
                })
        })
        .collect()
}

/// An age as kubectl prints it: `45s`, `5m30s`, `12m`, `3h5m`, `20h`, `2d3h`, `30d`,
/// `2y10d`, `9y`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (m, h, day, year) = (60, 3600, 86_400, 365 * 86_400);
    match s {
        _ if s < 2 * m => format!("{s}s"),
        _ if s < 10 * m => match s % m {
            0 => format!("{}m", s / m),
            r => format!("{}m{r}s", s / m),
        },
        _ if s < 3 * h => format!("{}m", s / m),
        _ if s < 8 * h => match (s % h) / m {
            0 => format!("{}h", s / h),
            r => format!("{}h{r}m", s / h),
        },
        _ if s < 2 * day => format!("{}h", s / h),
        _ if s < 8 * day => match (s % day) / h {
            0 => format!("{}d", s / day),
            r => format!("{}d{r}h", s / day),
        },
        _ if s < 2 * year => format!("{}d", s / day),
        _ if s < 8 * year => match (s % year) / day {
            0 => format!("{}y", s / year),
            r => format!("{}y{r}d", s / year),
        },
        _ => format!("{}y", s / year),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_cover_what_printer_columns_use() {
        let obj = json!({"spec": {"size": 3, "items": [{"name": "a"}, {"name": "b"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}});
        assert_eq!(json_path(&obj, ".spec.size"), [&json!(3)]);
        assert_eq!(json_path(&obj, ".spec.items[1].name"), [&json!("b")]);
        assert_eq!(
            json_path(&obj, ".spec.items[*].name"),
            [&json!("a"), &json!("b")]
        );
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"Synced\")].status"),
            [&json!("False")]
        );
        assert!(json_path(&obj, ".spec.missing").is_empty());
    }

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let cases = [
            (45, "45s"),
            (330, "5m30s"),
            (720, "12m"),
            (3 * 3600 + 300, "3h5m"),
            (20 * 3600, "20h"),
            (2 * 86_400 + 3 * 3600, "2d3h"),
            (30 * 86_400, "30d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want);
        }
    }
}
