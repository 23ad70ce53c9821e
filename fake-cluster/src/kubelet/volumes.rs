//! The content of a pod's volumes that the kubelet writes before the containers start:
//! projected volumes (service account token, ConfigMap and Secret items, downward API),
//! `configMap` and `secret` volumes. `emptyDir` volumes start empty.

use crate::json::Value;

use crate::resources::{core, well_known};
use crate::selector::at;
use crate::store::Store;

/// Files of one volume: (relative path, content).
pub(crate) type VolumeFiles = Vec<(String, Vec<u8>)>;

fn decode(b64: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_default()
}

/// Keys of a ConfigMap (`data` and `binaryData`) or Secret (`data`), decoded.
fn source_keys(
    store: &Store,
    ns: &str,
    name: &str,
    secret: bool,
) -> Option<Vec<(String, Vec<u8>)>> {
    let def = if secret {
        core("secrets")?
    } else {
        well_known::configmaps()
    };
    let obj = store.lookup(def, ns, name)?;
    let mut out = Vec::new();
    for (k, v) in obj
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let s = v.as_str().unwrap_or_default();
        out.push((
            String::from(k),
            if secret {
                decode(s)
            } else {
                s.as_bytes().to_vec()
            },
        ));
    }
    if !secret {
        for (k, v) in obj
            .get("binaryData")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            out.push((String::from(k), decode(v.as_str().unwrap_or_default())));
        }
    }
    Some(out)
}

fn items(keys: Vec<(String, Vec<u8>)>, spec: &Value) -> VolumeFiles {
    match spec.get("items").and_then(Value::as_array) {
        None => keys,
        Some(items) => items
            .iter()
            .filter_map(|i| {
                let key = i.get("key")?.as_str()?;
                let path = i.get("path").and_then(Value::as_str).unwrap_or(key);
                keys.iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| (path.to_owned(), v.clone()))
            })
            .collect(),
    }
}

/// The files of every volume of `pod` that has content, by volume name.
pub(crate) fn volume_files(store: &Store, pod: &Value) -> Vec<(String, VolumeFiles)> {
    let ns = at(pod, "/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let sa = at(pod, "/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let mut out = Vec::new();
    for v in at(pod, "/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = v.get("name").and_then(Value::as_str) else {
            continue;
        };
        let mut files = VolumeFiles::new();
        if let Some(cm) = v.get("configMap") {
            let src = cm.get("name").and_then(Value::as_str).unwrap_or_default();
            files.extend(items(
                source_keys(store, ns, src, false).unwrap_or_default(),
                cm,
            ));
        } else if let Some(s) = v.get("secret") {
            let src = s
                .get("secretName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            files.extend(items(
                source_keys(store, ns, src, true).unwrap_or_default(),
                s,
            ));
        } else if let Some(sources) = at(v, "/projected/sources").and_then(Value::as_array) {
            for s in sources {
                if let Some(t) = s.get("serviceAccountToken") {
                    let path = t.get("path").and_then(Value::as_str).unwrap_or("token");
                    let token = format!("fake-token:system:serviceaccount:{ns}:{sa}");
                    files.push((path.to_owned(), token.into_bytes()));
                } else if let Some(cm) = s.get("configMap") {
                    let src = cm.get("name").and_then(Value::as_str).unwrap_or_default();
                    files.extend(items(
                        source_keys(store, ns, src, false).unwrap_or_default(),
                        cm,
                    ));
                } else if let Some(sec) = s.get("secret") {
                    let src = sec.get("name").and_then(Value::as_str).unwrap_or_default();
                    files.extend(items(
                        source_keys(store, ns, src, true).unwrap_or_default(),
                        sec,
                    ));
                } else if let Some(d) = s.get("downwardAPI") {
                    for item in d
                        .get("items")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let path = item.get("path").and_then(Value::as_str).unwrap_or_default();
                        let field = at(item, "/fieldRef/fieldPath")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let value = crate::env::field_value(pod, field).unwrap_or_default();
                        files.push((path.to_owned(), value.into_bytes()));
                    }
                }
            }
        } else {
            continue;
        }
        out.push((name.to_owned(), files));
    }
    out
}
