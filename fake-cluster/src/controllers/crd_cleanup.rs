//! The cleanup of a CustomResourceDefinition being deleted: every object of its resource
//! is deleted, and once none is left the `customresourcecleanup.apiextensions.k8s.io`
//! finalizer goes, and the definition with it (the apiextensions finalizing controller).

use crate::json::{Value, json};

use super::Controllers;
use crate::crd::{self, CLEANUP_FINALIZER};
use crate::resources::well_known;
use crate::selector::at;
use crate::store::{Change, DeleteOptions, meta_str};

impl Controllers {
    /// Reacts to a change of a definition being deleted, or to the deletion of an object of
    /// a custom resource whose definition is being deleted.
    pub(super) fn crd_cleanup(&self, c: &Change) {
        if crd::is_crd(&c.resource) {
            if meta_str(&c.object, "deletionTimestamp").is_some() {
                self.cleanup_definition(&c.object);
            }
        } else if c.resource.custom.is_some() && c.kind == crate::store::ChangeType::Deleted {
            let name = c.resource.qualified_plural();
            if let Some(def) = self.api.store.lookup(well_known::crds(), "", &name)
                && meta_str(&def, "deletionTimestamp").is_some()
            {
                self.cleanup_definition(&def);
            }
        }
    }

    fn cleanup_definition(&self, definition: &Value) {
        let name = meta_str(definition, "name").unwrap_or_default().to_owned();
        let has_finalizer = at(definition, "/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == CLEANUP_FINALIZER));
        if !has_finalizer {
            return;
        }
        let store = &self.api.store;
        let storage = crd::served_versions(definition)
            .into_iter()
            .map(|d| store.resources().storage_of(&d))
            .next();
        let mut left = 0;
        if let Some(def) = storage {
            let opts = DeleteOptions {
                propagation: Some(crate::resources::Propagation::Background),
                ..DeleteOptions::default()
            };
            let (items, _) = store.list(&def, None);
            for item in items {
                let ns = meta_str(&item, "namespace").unwrap_or_default();
                let n = meta_str(&item, "name").unwrap_or_default();
                match store.delete(&def, ns, n, &opts) {
                    Ok(crate::store::Deleted::Gone(_)) => {}
                    Ok(crate::store::Deleted::Terminating(_)) => left += 1,
                    Err(e) if e.code == 404 => {}
                    Err(e) => {
                        tracing::warn!(%e, definition = %name, "custom resource cleanup");
                        left += 1;
                    }
                }
            }
        }
        if left > 0 {
            return;
        }
        let _ = store.modify(well_known::crds(), "", &name, |d| {
            if let Some(f) = d
                .get_mut("metadata")
                .and_then(|m| m.get_mut("finalizers"))
                .and_then(Value::as_array_mut)
            {
                f.retain(|x| x != CLEANUP_FINALIZER);
            }
            if at(d, "/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                d["metadata"]["finalizers"] = json!(null);
                if let Some(m) = d.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("finalizers");
                }
            }
            Ok(())
        });
    }
}
