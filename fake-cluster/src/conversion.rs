//! Between the version a client asks for and the version the store keeps: `events.k8s.io/v1`
//! Events kept as core Events (see [`crate::events`]), and custom resources kept at their
//! storage version and served at every served version with the `None` conversion strategy,
//! under which only `apiVersion` changes.

use std::borrow::Cow;

use crate::json::{Value, json};

use crate::events;
use crate::resources::ResourceDef;

/// Converts a stored object into the form clients of `def` see.
pub fn to_wire<'a>(def: &ResourceDef, obj: &'a Value) -> Cow<'a, Value> {
    if events::is_converted(def) {
        return events::to_wire(def, obj);
    }
    if def.custom.is_none() {
        return Cow::Borrowed(obj);
    }
    let api_version = def.api_version();
    if obj.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str()) {
        return Cow::Borrowed(obj);
    }
    let mut out = obj.clone();
    if out.is_object() {
        out["apiVersion"] = json!(api_version);
    }
    Cow::Owned(out)
}

/// Converts an object sent as `def` into the form its storage keeps (the store stamps the
/// storage version's `apiVersion` itself).
pub fn to_storage(def: &ResourceDef, obj: Value) -> Value {
    events::to_storage(def, obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::CustomVersion;
    use std::sync::Arc;

    #[test]
    fn a_custom_resource_read_at_another_version_changes_only_its_api_version() {
        let mut def = ResourceDef::new(
            "example.com",
            "v1beta1",
            "widgets",
            "widget",
            "Widget",
            true,
        );
        def.custom = Some(CustomVersion {
            storage_version: "v1".into(),
            schema: None,
            printer_columns: Arc::new(Vec::new()),
            scale: None,
            selectable_fields: Vec::new(),
        });
        let stored = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": {"size": 3}});
        let wire = to_wire(&def, &stored);
        assert_eq!(wire["apiVersion"], "example.com/v1beta1");
        assert_eq!(wire["spec"], stored["spec"]);
        assert_eq!(wire["kind"], "Widget");
    }
}
