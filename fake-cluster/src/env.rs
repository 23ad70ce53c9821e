//! A container's environment as the kubelet builds it: literal values, the downward API,
//! ConfigMap and Secret keys, and `$(VAR)` expansion in values, command and args.

use crate::json::Value;

use crate::resources::{core, well_known};
use crate::selector::at;
use crate::store::Store;

/// Why a container's config could not be built (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Expands `$(VAR)` from `env` in `input`; `$$` escapes; unknown references stay as written.
pub fn expand(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The value of a downward API `fieldRef` path for `pod` (`metadata.name`,
/// `metadata.labels['k']`, `spec.nodeName`, `status.podIP`, ...).
pub fn field_value(pod: &Value, path: &str) -> Result<String, ConfigError> {
    field_ref(pod, path)
}

fn field_ref(pod: &Value, path: &str) -> Result<String, ConfigError> {
    let s = |p: &str| {
        at(pod, p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let map_key = |prefix: &str, map: &str| -> Option<String> {
        let key = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(
            at(pod, &format!("/metadata/{map}"))
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    };
    Ok(match path {
        "metadata.name" => s("/metadata/name"),
        "metadata.namespace" => s("/metadata/namespace"),
        "metadata.uid" => s("/metadata/uid"),
        "spec.nodeName" => s("/spec/nodeName"),
        "spec.serviceAccountName" => s("/spec/serviceAccountName"),
        "status.hostIP" => s("/status/hostIP"),
        "status.podIP" => s("/status/podIP"),
        "status.hostIPs" => s("/status/hostIP"),
        "status.podIPs" => s("/status/podIP"),
        p if p.starts_with("metadata.labels") => map_key("metadata.labels", "labels")
            .ok_or_else(|| ConfigError(format!("unsupported fieldRef: {p}")))?,
        p if p.starts_with("metadata.annotations") => {
            map_key("metadata.annotations", "annotations")
                .ok_or_else(|| ConfigError(format!("unsupported fieldRef: {p}")))?
        }
        p => return Err(ConfigError(format!("unsupported fieldRef: {p}"))),
    })
}

fn key_ref(
    store: &Store,
    ns: &str,
    r: &Value,
    secret: bool,
) -> Result<Option<String>, ConfigError> {
    let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
    let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
    let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
    let (def, kind) = if secret {
        (core("secrets"), "secret")
    } else {
        (Some(well_known::configmaps()), "configmap")
    };
    let obj = def.and_then(|d| store.lookup(d, ns, name));
    let Some(obj) = obj else {
        return if optional {
            Ok(None)
        } else {
            Err(ConfigError(format!("{kind} \"{name}\" not found")))
        };
    };
    let value = if secret {
        at(&obj, "/data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .and_then(|b| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(b).ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .or_else(|| {
                at(&obj, "/stringData")
                    .and_then(|d| d.get(key))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
    } else {
        at(&obj, "/data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match value {
        Some(v) => Ok(Some(v)),
        None if optional => Ok(None),
        None => Err(ConfigError(format!(
            "couldn't find key {key} in {kind} {ns}/{name}"
        ))),
    }
}

/// Builds the environment of a container of `pod`.
pub fn container_env(
    store: &Store,
    pod: &Value,
    container: &Value,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = at(pod, "/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut env: Vec<(String, String)> = Vec::new();
    for e in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            Some(expand(v, &env))
        } else if let Some(from) = e.get("valueFrom") {
            if let Some(path) = at(from, "/fieldRef/fieldPath").and_then(Value::as_str) {
                Some(field_ref(pod, path)?)
            } else if let Some(r) = from.get("configMapKeyRef") {
                key_ref(store, ns, r, false)?
            } else if let Some(r) = from.get("secretKeyRef") {
                key_ref(store, ns, r, true)?
            } else {
                None
            }
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            env.retain(|(k, _)| *k != name);
            env.push((name, v));
        }
    }
    Ok(env)
}

/// `command` followed by `args`, each with `$(VAR)` expanded.
pub fn container_argv(container: &Value, env: &[(String, String)]) -> Vec<String> {
    ["command", "args"]
        .iter()
        .filter_map(|k| container.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| expand(a, env))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    #[test]
    fn expansion_follows_the_kubelet() {
        let env = vec![("A".to_owned(), "x".to_owned())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
    }

    #[test]
    fn downward_api_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "n", "uid": "u",
            "labels": {"batch.kubernetes.io/controller-uid": "j"}}, "spec": {"nodeName": "node-1"}});
        assert_eq!(
            field_ref(
                &pod,
                "metadata.labels['batch.kubernetes.io/controller-uid']"
            )
            .unwrap(),
            "j"
        );
        assert_eq!(field_ref(&pod, "metadata.uid").unwrap(), "u");
        assert_eq!(field_ref(&pod, "spec.nodeName").unwrap(), "node-1");
        assert!(field_ref(&pod, "spec.bogus").is_err());
    }
}
