//! Creating an object: its name (given or generated from `generateName`), its uid drawn
//! from the store's seeded generator, the checks of a create in the server's order, and the
//! commit; and the store's other generated names ([`Store::random_suffix`]).

use std::sync::Arc;

use crate::json::{Value, json};
use rand::Rng;

use super::{Change, ChangeType, Inner, Result, Store, key, meta_mut, meta_str, namespace};
use crate::resources::{ResourceRef, well_known};
use crate::status::{ApiError, FieldError};
use crate::{crd, defaults, validation};

const GENERATE_NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Store {
    fn uid(inner: &mut Inner) -> String {
        let b: [u8; 16] = inner.rng.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
            (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
            u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
        )
    }

    /// Creates an object. Fills name (from generateName), namespace, uid, resourceVersion,
    /// creationTimestamp and generation.
    pub fn create(&self, def: &ResourceRef, ns: &str, obj: Value) -> Result<Arc<Value>> {
        self.create_inner(def, ns, obj, false)
    }

    /// What [`Store::create`] would store, after every check, without storing it
    /// (`dryRun=All`): no resourceVersion, nothing published.
    pub fn create_dry_run(&self, def: &ResourceRef, ns: &str, obj: Value) -> Result<Arc<Value>> {
        self.create_inner(def, ns, obj, true)
    }

    /// A create in three steps: the checks and the draws from the seeded generator (name,
    /// uid) under the store's lock; the new object filled, defaulted and validated outside
    /// it; the checks again (the namespace may have gone, the name been taken meanwhile),
    /// the creationTimestamp, the resourceVersion and the publication under the lock. For a
    /// sequence of creates, the same errors in the same order and the same objects as when
    /// all of it ran under the lock. A definition is prepared and validated under the lock
    /// (it is checked against the stored ones).
    fn create_inner(
        &self,
        def: &ResourceRef,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Value>> {
        let ns = if def.namespaced { ns } else { "" };
        let (name, uid) = {
            let mut inner = self.lock();
            let name = self.admit_create(&mut inner, def, ns, &obj)?;
            (name, Self::uid(&mut inner))
        };
        obj["apiVersion"] = json!(def.storage_api_version());
        obj["kind"] = json!(def.kind);
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if def.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.remove("resourceVersion");
        m.remove("creationTimestamp");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        if def.has_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        defaults::apply(def, &mut obj);
        if def == well_known::namespaces() {
            namespace::prepare_for_create(&mut obj);
        }
        crd::prepare_create(def, &mut obj);
        let is_crd = crd::is_crd(def);
        if !is_crd {
            Self::check_new(def, &name, &obj)?;
        }
        let mut inner = self.lock();
        Self::admit_name(&inner, def, ns, &name)?;
        let now = self.clock.now_rfc3339_seconds();
        meta_mut(&mut obj).insert("creationTimestamp".into(), json!(now));
        if is_crd {
            crd::prepare(def, &mut obj, &now, &Self::definitions(&inner, def));
            Self::check_new(def, &name, &obj)?;
        }
        if dry_run {
            return Ok(Arc::new(obj));
        }
        let rv = Self::next_rv(&mut inner);
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let obj = Arc::new(obj);
        inner
            .objects
            .entry(def.storage_key().clone())
            .or_default()
            .insert(ns, &name, obj.clone());
        self.publish(
            &mut inner,
            Change {
                kind: ChangeType::Added,
                resource: def.clone(),
                namespace: ns.to_owned(),
                name,
                object: obj.clone(),
                previous: None,
                rv,
            },
        );
        Ok(obj)
    }

    /// The checks of a create before the object is made, in the order the server makes
    /// them, and its name (drawn for a generateName).
    fn admit_create(
        &self,
        inner: &mut Inner,
        def: &ResourceRef,
        ns: &str,
        obj: &Value,
    ) -> Result<String> {
        if def.namespaced && !Self::namespace_exists(inner, ns) {
            return Err(ApiError::namespace_not_found(ns));
        }
        let name = match meta_str(obj, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match meta_str(obj, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let mut name = String::with_capacity(prefix.len() + 5);
                    name.push_str(prefix);
                    name.push_str(&Self::suffix(inner));
                    name
                }
                None => {
                    return Err(ApiError::invalid(
                        def,
                        "",
                        vec![FieldError::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ));
                }
            },
        };
        validation::validate_name(def, &name)?;
        Self::admit_name(inner, def, ns, &name)?;
        Ok(name)
    }

    /// The namespace exists, is not terminating, and holds no object `name` of `def`.
    fn admit_name(inner: &Inner, def: &ResourceRef, ns: &str, name: &str) -> Result<()> {
        if def.namespaced {
            if !Self::namespace_exists(inner, ns) {
                return Err(ApiError::namespace_not_found(ns));
            }
            namespace::check_not_terminating(inner, def, ns, name)?;
        }
        if inner
            .objects
            .get(key(def))
            .is_some_and(|m| m.contains(ns, name))
        {
            return Err(ApiError::already_exists(def, name));
        }
        Ok(())
    }

    /// 422 for a new object that does not validate.
    fn check_new(def: &ResourceRef, name: &str, obj: &Value) -> Result<()> {
        let causes = defaults::validate(def, obj);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(def, name, causes))
        }
    }

    /// Five characters from the generateName alphabet, drawn from the store's seeded
    /// generator (for names the server makes up, such as `kube-api-access-xxxxx`).
    pub fn random_suffix(&self) -> String {
        Self::suffix(&mut self.lock())
    }

    /// Five characters from the generateName alphabet (the server's
    /// `SimpleNameGenerator`), drawn from `inner`'s seeded generator.
    fn suffix(inner: &mut Inner) -> String {
        (0..5)
            .map(|_| {
                let i = inner.rng.random_range(0..GENERATE_NAME_ALPHABET.len());
                GENERATE_NAME_ALPHABET[i] as char
            })
            .collect()
    }
}
