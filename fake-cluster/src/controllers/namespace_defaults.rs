//! What every namespace holds, as kube-controller-manager keeps it: the serviceaccounts
//! controller's `default` ServiceAccount and the root-ca-cert-publisher's
//! `kube-root-ca.crt` ConfigMap (its `ca.crt` is the PEM of the CA pods trust). Both are
//! created when a namespace is added (through the API or at start) and created again when
//! deleted, unless the namespace is terminating.

use crate::json::{Value, json};

use super::Controllers;
use crate::resources::well_known;
use crate::selector::at;
use crate::store::{Change, ChangeType, Store, meta_str};

/// The root CA ConfigMap's name.
const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

fn terminating(ns: &Value) -> bool {
    meta_str(ns, "deletionTimestamp").is_some()
        || at(ns, "/status/phase").and_then(Value::as_str) == Some("Terminating")
}

/// Creates what namespace `ns` lacks of its defaults (nothing in a terminating or missing
/// namespace).
pub(crate) fn ensure(store: &Store, ns: &str, root_ca: &str) {
    match store.lookup(well_known::namespaces(), "", ns) {
        Some(n) if !terminating(&n) => {}
        _ => return,
    }
    if store
        .lookup(well_known::serviceaccounts(), ns, "default")
        .is_none()
    {
        let _ = store.create(
            well_known::serviceaccounts(),
            ns,
            json!({"metadata": {"name": "default"}}),
        );
    }
    if store
        .lookup(well_known::configmaps(), ns, ROOT_CA_CONFIGMAP)
        .is_none()
    {
        let _ = store.create(
            well_known::configmaps(),
            ns,
            json!({"metadata": {"name": ROOT_CA_CONFIGMAP, "annotations":
                {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": root_ca}}),
        );
    }
}

impl Controllers {
    /// A namespace was added, or one of its defaults deleted: put them (back) in place.
    pub(super) fn namespace_defaults(&self, c: &Change) {
        let ns = if c.resource == well_known::namespaces() {
            if c.kind != ChangeType::Added {
                return;
            }
            c.name.as_str()
        } else if c.kind == ChangeType::Deleted
            && ((c.resource == well_known::serviceaccounts() && c.name == "default")
                || (c.resource == well_known::configmaps() && c.name == ROOT_CA_CONFIGMAP))
        {
            c.namespace.as_str()
        } else {
            return;
        };
        ensure(&self.api.store, ns, &self.root_ca);
    }
}
