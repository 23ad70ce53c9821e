//! The structural schema of a custom resource version (`openAPIV3Schema`): validation of
//! types, required fields, enums and bounds, with the real server's messages
//! (`spec.replicas in body must be of type integer: "string"`), pruning of fields the
//! schema does not declare unless `x-kubernetes-preserve-unknown-fields` is set, and
//! `default` values.
//!
//! Not checked: `pattern`, `format`, `multipleOf`, `uniqueItems`, `oneOf`/`anyOf`/`allOf`/
//! `not`, and CEL `x-kubernetes-validations`.

use crate::json::{Map, Value};

use crate::status::FieldError;

/// Fields every object has at its root besides what its schema declares.
const ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn invalid(field: &str, value: &Value, detail: String) -> FieldError {
    FieldError {
        field: field.to_owned(),
        reason: "FieldValueInvalid",
        value: None,
        detail: format!("Invalid value: {}: {detail}", shown(value)),
    }
}

fn matches_type(expected: &str, v: &Value) -> bool {
    match expected {
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => type_name(v) == other,
    }
}

/// Checks a schema when its definition is written: the root must be `type: object`.
pub fn check_schema(schema: &Value, field: &str, causes: &mut Vec<FieldError>) {
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {}
        None => causes.push(FieldError::required(
            &format!("{field}.type"),
            "must not be empty at the root",
        )),
        Some(other) => causes.push(FieldError::invalid(
            &format!("{field}.type"),
            other,
            "must be object at the root",
        )),
    }
}

/// Every way `value` breaks `schema` (`path` is the field path of `value`, empty at the
/// root).
pub fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Vec<FieldError>) {
    if value.is_null() && flag(schema, "nullable") {
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if int_or_string {
        if !(value.is_string() || matches_type("integer", value)) {
            causes.push(FieldError {
                field: path.to_owned(),
                reason: "FieldValueTypeInvalid",
                value: None,
                detail: format!(
                    "Invalid value: {:?}: {path} in body must be of type integer,string: {}",
                    type_name(value),
                    shown(value)
                ),
            });
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !matches_type(expected, value)
    {
        causes.push(FieldError {
            field: path.to_owned(),
            reason: "FieldValueTypeInvalid",
            value: None,
            detail: format!(
                "Invalid value: {:?}: {path} in body must be of type {expected}: {}",
                type_name(value),
                shown(value)
            ),
        });
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        causes.push(FieldError::not_supported(
            path,
            &value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned),
            &names,
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && (n < min || (flag(schema, "exclusiveMinimum") && n == min))
        {
            let op = if flag(schema, "exclusiveMinimum") {
                "greater than"
            } else {
                "greater than or equal to"
            };
            causes.push(invalid(
                path,
                value,
                format!("{path} in body should be {op} {}", schema["minimum"]),
            ));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && (n > max || (flag(schema, "exclusiveMaximum") && n == max))
        {
            let op = if flag(schema, "exclusiveMaximum") {
                "less than"
            } else {
                "less than or equal to"
            };
            causes.push(invalid(
                path,
                value,
                format!("{path} in body should be {op} {}", schema["maximum"]),
            ));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            causes.push(FieldError {
                field: path.to_owned(),
                reason: "FieldValueTooLong",
                value: None,
                detail: format!("Too long: may not be more than {max} bytes"),
            });
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            causes.push(invalid(
                path,
                value,
                format!("{path} in body should be at least {min} chars long"),
            ));
        }
    }
    match value {
        Value::Object(map) => validate_object(schema, map, path, causes),
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                causes.push(FieldError {
                    field: path.to_owned(),
                    reason: "FieldValueTooMany",
                    value: None,
                    detail: format!("Too many: {}: must have at most {max} items", items.len()),
                });
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                causes.push(invalid(
                    path,
                    value,
                    format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item_schema, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

fn validate_object(schema: &Value, map: &Map, path: &str, causes: &mut Vec<FieldError>) {
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(required) {
            causes.push(FieldError::required(&join(path, required), ""));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in map {
        if path.is_empty() && ROOT_FIELDS.contains(&k.as_str()) {
            continue;
        }
        if let Some(sub) = properties.and_then(|p| p.get(k)).or(additional) {
            validate(sub, v, &join(path, k), causes);
        }
    }
}

/// Fills in the `default` of every field the schema declares one for and `value` lacks,
/// in objects that are present (a missing parent object is not created), as the API
/// server defaults custom resources on writes. Defaults are not applied on reads.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if !map.contains_key(k)
                        && let Some(d) = sub.get("default")
                    {
                        map.insert(k.clone(), d.clone());
                    }
                    if let Some(v) = map.get_mut(k) {
                        apply_defaults(sub, v);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let declared = schema.get("properties").and_then(Value::as_object);
                for (k, v) in map.iter_mut() {
                    if declared.is_none_or(|p| !p.contains_key(k)) {
                        apply_defaults(additional, v);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// Removes the fields `schema` does not declare, as the API server prunes them, and
/// returns their paths (`spec.colour`). At the root, `apiVersion`, `kind` and `metadata`
/// stay; so do they in an `x-kubernetes-embedded-resource`.
pub fn prune(schema: &Value, value: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    prune_at(schema, value, "", true, &mut removed);
    removed
}

fn prune_at(schema: &Value, value: &mut Value, path: &str, root: bool, removed: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<_> = map.keys().cloned().collect();
            for k in keys {
                if embedded && ROOT_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let field = join(path, &k);
                let sub = properties
                    .and_then(|p| p.get(&k))
                    .or_else(|| additional.filter(|a| a.is_object()));
                match sub {
                    Some(sub) => {
                        if let Some(v) = map.get_mut(&k) {
                            prune_at(sub, v, &field, false, removed);
                        }
                    }
                    None if preserve || additional.and_then(Value::as_bool) == Some(true) => {}
                    None => {
                        map.remove(&k);
                        removed.push(field);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item_schema, item, &format!("{path}[{i}]"), false, removed);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 0},
                "colour": {"type": "string", "enum": ["red", "blue"]},
                "port": {"x-kubernetes-int-or-string": true},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "items": {"type": "string"}}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}})
    }

    fn fields(value: &Value) -> Vec<(String, String)> {
        let mut causes = Vec::new();
        validate(&schema(), value, "", &mut causes);
        causes
            .into_iter()
            .map(|c| (c.field.clone(), c.to_string()))
            .collect()
    }

    #[test]
    fn types_required_enums_and_bounds_are_checked_with_the_real_messages() {
        assert!(fields(&json!({"spec": {"size": 1, "port": "http", "tags": ["a"]}})).is_empty());
        let got =
            fields(&json!({"spec": {"size": "big", "colour": "pink", "port": true, "tags": [1]}}));
        let got: Vec<&str> = got.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            got,
            [
                "spec.colour: Unsupported value: \"pink\": supported values: \"red\", \"blue\"",
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: true",
                "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"big\"",
                "spec.tags[0]: Invalid value: \"integer\": spec.tags[0] in body must be of type string: 1",
            ]
        );
        let got = fields(&json!({"spec": {"size": -1}}));
        assert_eq!(
            got[0].1,
            "spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0"
        );
        assert_eq!(
            fields(&json!({"spec": {}}))[0].1,
            "spec.size: Required value"
        );
    }

    #[test]
    fn defaults_fill_missing_fields_of_present_objects() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "fast"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean", "default": false}}}}});
        let mut v = json!({"spec": {"mode": "slow", "ports": [{}, {"protocol": "UDP"}]}});
        apply_defaults(&schema, &mut v);
        assert_eq!(
            v,
            json!({"spec": {"size": 1, "mode": "slow",
            "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}]}})
        );
    }

    #[test]
    fn unknown_fields_are_pruned_unless_preserved() {
        let mut v = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
            "spec": {"size": 1, "colour2": "red", "extra": {"anything": {"goes": 1}}},
            "status": {"ready": true, "phase": "Up"}, "top": 1});
        let removed = prune(&schema(), &mut v);
        assert_eq!(removed, ["spec.colour2", "status.phase", "top"]);
        assert_eq!(v["spec"]["extra"]["anything"]["goes"], 1);
        assert_eq!(v["metadata"]["name"], "w");
        assert!(v.get("top").is_none());
    }
}
