//! Built-in admission: the ServiceAccount admission plugin
//! (`plugin/pkg/admission/serviceaccount`), run on every pod create before the pod is
//! stored. Tests add their own checks through [`crate::AdmissionCheck`].
//!
//! - an empty `serviceAccountName` becomes `default`;
//! - a pod naming a service account that does not exist is refused with 403 Forbidden,
//!   `pods "<name or generateName>" is forbidden: error looking up service account
//!   <ns>/<sa>: serviceaccount "<sa>" not found`;
//! - unless `automountServiceAccountToken` is false (on the pod, or else on the service
//!   account), a projected volume `kube-api-access-<5 characters>` (token, `ca.crt` from
//!   the `kube-root-ca.crt` ConfigMap, namespace) is added, and mounted read-only at
//!   `/var/run/secrets/kubernetes.io/serviceaccount` in every container and init container
//!   that does not already mount something there.

use std::sync::{Arc, LazyLock};

use crate::json::{Value, json};

use crate::api::AdmissionCheck;
use crate::resources::{ResourceDef, well_known};
use crate::status::ApiError;
use crate::store::Store;

/// Where the service account's token, CA and namespace are mounted in a container.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Prefix of the injected projected volume's name.
pub const API_ACCESS_VOLUME_PREFIX: &str = "kube-api-access-";

/// The ServiceAccount admission plugin.
pub struct ServiceAccountAdmission {
    store: Arc<Store>,
}

impl ServiceAccountAdmission {
    /// The plugin, looking service accounts up in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

/// The injected volume named `name`: a copy of one built once (a copy shares the members
/// of its objects, so only the root, which gets the name, is a map of its own).
fn projected_volume(name: &str) -> Value {
    static VOLUME: LazyLock<Value> = LazyLock::new(|| {
        json!({"name": "", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}})
    });
    let mut v = VOLUME.clone();
    v["name"] = Value::String(name.to_owned());
    v
}

/// The mount of the injected volume `name` in a container, built as [`projected_volume`].
fn api_access_mount(name: &str) -> Value {
    static MOUNT: LazyLock<Value> =
        LazyLock::new(|| json!({"name": "", "readOnly": true, "mountPath": SERVICE_ACCOUNT_DIR}));
    let mut v = MOUNT.clone();
    v["name"] = Value::String(name.to_owned());
    v
}

impl AdmissionCheck for ServiceAccountAdmission {
    fn admit(&self, def: &ResourceDef, namespace: &str, obj: &mut Value) -> Result<(), ApiError> {
        if def != well_known::pods() {
            return Ok(());
        }
        let spec = &mut obj["spec"];
        if !spec.is_object() {
            return Ok(());
        }
        let sa = spec
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                spec.get("serviceAccount")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or("default")
            .to_owned();
        spec["serviceAccountName"] = Value::from(sa.as_str());
        let account = match self
            .store
            .lookup(well_known::serviceaccounts(), namespace, &sa)
        {
            Some(a) => a,
            None => {
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .or_else(|| {
                        obj.pointer("/metadata/generateName")
                            .and_then(Value::as_str)
                    })
                    .unwrap_or("Unknown");
                let mut e = ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "pods \"{name}\" is forbidden: error looking up service account {namespace}/{sa}: serviceaccount \"{sa}\" not found"
                    ),
                );
                e.details = Some(json!({"name": name, "kind": "pods"}));
                return Err(e);
            }
        };
        let spec = &mut obj["spec"];
        let automount = spec
            .get("automountServiceAccountToken")
            .and_then(Value::as_bool)
            .or_else(|| {
                account
                    .get("automountServiceAccountToken")
                    .and_then(Value::as_bool)
            })
            .unwrap_or(true);
        if !automount {
            return Ok(());
        }
        let volume = format!("{API_ACCESS_VOLUME_PREFIX}{}", self.store.random_suffix());
        if !spec["volumes"].is_array() {
            spec["volumes"] = Value::Array(Vec::new());
        }
        if let Some(v) = spec["volumes"].as_array_mut() {
            v.push(projected_volume(&volume));
        }
        for list in ["initContainers", "containers"] {
            for c in spec
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if !c["volumeMounts"].is_array() {
                    c["volumeMounts"] = Value::Array(Vec::new());
                }
                if let Some(mounts) = c["volumeMounts"].as_array_mut()
                    && !mounts.iter().any(|m| m["mountPath"] == SERVICE_ACCOUNT_DIR)
                {
                    mounts.push(api_access_mount(&volume));
                }
            }
        }
        Ok(())
    }
}
