//! The `scale` subresource of custom resources: an `autoscaling/v1` `Scale` read from and
//! written to the paths the definition names (`specReplicasPath`, `statusReplicasPath`,
//! `labelSelectorPath`), as `kubectl scale` and autoscalers use it.

use crate::json::{Value, json};

use crate::api::{ApiServer, ResponseBody, json_response, parse_body};
use crate::patch;
use crate::resources::ResourceRef;
use crate::status::{ApiError, FieldError};
use crate::store::meta_str;

/// `.spec.replicas` as the JSON pointer `/spec/replicas`.
fn pointer(json_path: &str) -> String {
    json_path
        .trim_start_matches('.')
        .split('.')
        .fold(String::new(), |mut p, seg| {
            p.push('/');
            p.push_str(seg);
            p
        })
}

fn path<'a>(def: &'a ResourceRef, key: &str) -> Option<&'a str> {
    def.custom
        .as_ref()
        .and_then(|c| c.scale.as_deref())
        .and_then(|s| s.get(key))
        .and_then(Value::as_str)
}

/// The `Scale` of an object.
pub fn to_scale(def: &ResourceRef, obj: &Value) -> Value {
    let int_at = |key: &str| {
        path(def, key)
            .and_then(|p| obj.pointer(&pointer(p)))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut status = json!({"replicas": int_at("statusReplicasPath")});
    if let Some(sel) = path(def, "labelSelectorPath")
        .and_then(|p| obj.pointer(&pointer(p)))
        .and_then(Value::as_str)
    {
        status["selector"] = json!(sel);
    }
    let mut meta = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{k}")) {
            meta[k] = v.clone();
        }
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
           "spec": {"replicas": int_at("specReplicasPath")}, "status": status})
}

impl ApiServer {
    /// `get`, `update` or `patch` of `<resource>/<name>/scale`.
    pub(crate) fn scale(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        verb: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<http::Response<ResponseBody>, ApiError> {
        let sdef = self.store.resources().storage_of(def);
        let stored = self.store.get(&sdef, ns, name)?;
        let current = to_scale(def, &stored);
        let wanted = match verb {
            "get" => return Ok(json_response(200, &current)),
            "update" => parse_body(body)?,
            "patch" => {
                let p = parse_body(body)?;
                let mut s = current.clone();
                match content_type.split(';').next().unwrap_or_default().trim() {
                    "application/json-patch+json" => patch::json_patch(&mut s, &p)?,
                    _ => patch::merge(&mut s, &p),
                }
                s
            }
            _ => return Err(ApiError::method_not_allowed()),
        };
        let Some(replicas) = wanted.pointer("/spec/replicas").and_then(Value::as_i64) else {
            return Err(ApiError::invalid(
                def,
                name,
                vec![FieldError::required("spec.replicas", "")],
            ));
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                def,
                name,
                vec![FieldError::invalid(
                    "spec.replicas",
                    &replicas.to_string(),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let precondition = meta_str(&wanted, "resourceVersion")
            .filter(|rv| verb == "update" || Some(*rv) != meta_str(&current, "resourceVersion"))
            .map(str::to_owned);
        let spec_path = pointer(path(def, "specReplicasPath").unwrap_or(".spec.replicas"));
        let updated = self.store.modify(&sdef, ns, name, |obj| {
            if let Some(rv) = &precondition
                && meta_str(obj, "resourceVersion") != Some(rv.as_str())
            {
                return Err(ApiError::stale(def, name));
            }
            set_pointer(obj, &spec_path, json!(replicas));
            Ok(())
        })?;
        Ok(json_response(200, &to_scale(def, &updated)))
    }
}

/// Sets the value at a JSON pointer, creating the objects on the way.
fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut at = obj;
    let segs: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, seg) in segs.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let Some(map) = at.as_object_mut() else {
            return;
        };
        if i + 1 == segs.len() {
            map.insert((*seg).into(), value);
            return;
        }
        at = map.entry((*seg).to_owned()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_become_pointers_and_are_set_through_missing_objects() {
        assert_eq!(pointer(".spec.replicas"), "/spec/replicas");
        let mut v = json!({"spec": {}});
        set_pointer(&mut v, "/spec/scale/replicas", json!(3));
        assert_eq!(v, json!({"spec": {"scale": {"replicas": 3}}}));
    }
}
