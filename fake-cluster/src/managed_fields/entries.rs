//! The entries of `metadata.managedFields`: one manager's entry ([`Manager`]) and its
//! operation, read from an object ([`decode`]) and written back sorted as the API server
//! sorts them ([`encode`]).

use crate::json::{Map, Value};

use crate::fieldpath::FieldSet;
use crate::selector::at;

/// The operation of a managedFields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// A server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// `manager`.
    pub name: String,
    /// `operation`.
    pub operation: Operation,
    /// `apiVersion` of the request that wrote the fields.
    pub api_version: String,
    /// `subresource`, empty for the main resource.
    pub subresource: String,
    /// `time` (RFC 3339, whole seconds).
    pub time: Option<String>,
    /// The fields owned.
    pub fields: FieldSet,
}

impl Manager {
    /// Whether two entries are the same manager: appliers by name and subresource, updaters
    /// also by apiVersion.
    pub(super) fn same(
        &self,
        name: &str,
        op: Operation,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.name == name
            && self.operation == op
            && self.subresource == subresource
            && (op == Operation::Apply || self.api_version == api_version)
    }

    /// As conflict messages name a manager: `"mgr"`, `"mgr" using v1` for an updater.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.name);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        entry_json(self, self.fields.to_fields_v1())
    }

    fn from_json(v: &Value) -> Result<Manager, String> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        if s("fieldsType") != "FieldsV1" {
            return Err(format!(
                "unsupported fieldsType {:?} in managed fields entry",
                s("fieldsType")
            ));
        }
        let operation = match s("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => return Err(format!("invalid operation {other:?}")),
        };
        let fields = match v.get("fieldsV1") {
            Some(f) => FieldSet::from_fields_v1(f)?,
            None => FieldSet::new(),
        };
        Ok(Manager {
            name: s("manager"),
            operation,
            api_version: s("apiVersion"),
            subresource: s("subresource"),
            time: v.get("time").and_then(Value::as_str).map(str::to_owned),
            fields,
        })
    }
}

/// One managedFields entry of `m` with these fields (`m.fields` is not read). Built as a
/// map, not with `json!`, which would copy the fields through a serializer.
pub(super) fn entry_json(m: &Manager, fields_v1: Value) -> Value {
    let mut e = Map::new();
    let mut put = |k: &str, v: Value| e.insert(k.into(), v);
    if !m.name.is_empty() {
        put("manager", Value::String(m.name.clone()));
    }
    put("operation", Value::String(m.operation.as_str().to_owned()));
    put("apiVersion", Value::String(m.api_version.clone()));
    put("fieldsType", Value::String("FieldsV1".to_owned()));
    put("fieldsV1", fields_v1);
    if let Some(t) = &m.time {
        put("time", Value::String(t.clone()));
    }
    if !m.subresource.is_empty() {
        put("subresource", Value::String(m.subresource.clone()));
    }
    Value::Object(e)
}

/// The entries of an object's `metadata.managedFields`.
pub fn decode(obj: &Value) -> Result<Vec<Manager>, String> {
    match at(obj, "/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => entries.iter().map(Manager::from_json).collect(),
        Some(_) => Err("managedFields must be a list".into()),
    }
}

/// Writes the entries, sorted as the API server sorts them, into `obj` (none: the field
/// goes).
pub fn encode(obj: &mut Value, mut managers: Vec<Manager>) {
    managers.retain(|m| !m.fields.is_empty());
    managers.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    put_entries(obj, managers.iter().map(Manager::to_json).collect());
}

/// Sets `metadata.managedFields` of `obj` to `entries` (none: the field goes).
pub(super) fn put_entries(obj: &mut Value, entries: Vec<Value>) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(entries));
    }
}

/// Whether a written object asks for its managed fields to be cleared: `[]` or `[{}]`.
pub(super) fn is_reset(obj: &Value) -> bool {
    match at(obj, "/metadata/managedFields") {
        Some(Value::Array(a)) => {
            a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(|m| m.is_empty()))
        }
        _ => false,
    }
}
