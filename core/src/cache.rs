//! A cache of outcomes keyed by what determines them: image reference, argv, env and
//! transport. A hit makes no API request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::report::Outcome;
use crate::request::Request;

/// What an outcome depends on: a fingerprint (SHA-256) of the image reference, argv, env
/// and transport, small enough to keep in a [`RunKey`](crate::RunKey) (the env may hold
/// secrets, so it is never kept itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheKey {
    fingerprint: String,
    pinned: bool,
}

/// Writes `field` with its length first, so that no two lists of fields write the same.
fn field(hasher: &mut Sha256, field: &str) {
    hasher.update((field.len() as u64).to_be_bytes());
    hasher.update(field.as_bytes());
}

impl CacheKey {
    /// The key of a request run through `transport`.
    pub fn new(req: &Request, transport: &str) -> Self {
        let mut h = Sha256::new();
        field(&mut h, transport);
        field(&mut h, &req.image);
        h.update((req.argv.len() as u64).to_be_bytes());
        for arg in &req.argv {
            field(&mut h, arg);
        }
        h.update((req.env.len() as u64).to_be_bytes());
        for (name, value) in &req.env {
            field(&mut h, name);
            field(&mut h, value);
        }
        let fingerprint = h
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        Self {
            fingerprint,
            pinned: req.image.contains('@'),
        }
    }

    /// Whether the image is pinned by digest (`name@sha256:...`): its content cannot change.
    pub fn pinned(&self) -> bool {
        self.pinned
    }
}

/// Outcomes kept for a time to live; a digest-pinned image's outcome never expires.
#[derive(Debug)]
pub struct ResultCache {
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, (Instant, Outcome)>>,
}

impl ResultCache {
    /// A cache whose entries live `ttl` (forever for digest-pinned images).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached outcome, if any and fresh.
    pub fn get(&self, key: &CacheKey) -> Option<Outcome> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = match entries.get(key) {
            Some((at, _)) => key.pinned() || at.elapsed() < self.ttl,
            None => return None,
        };
        if fresh {
            entries.get(key).map(|(_, o)| o.clone())
        } else {
            entries.remove(key);
            None
        }
    }

    /// Keeps an outcome.
    pub fn insert(&self, key: CacheKey, outcome: Outcome) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (Instant::now(), outcome));
    }

    /// Number of entries (fresh or not).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_what_the_outcome_depends_on() {
        let req = Request::new("ceph:v18", ["ceph", "--version"]).env("A", "1");
        let key = CacheKey::new(&req, "configmap");
        assert_eq!(key, CacheKey::new(&req.clone().name("other"), "configmap"));
        assert_ne!(key, CacheKey::new(&req, "logs"));
        assert_ne!(key, CacheKey::new(&req.clone().env("B", "2"), "configmap"));
        // Fields do not run into each other.
        let split = CacheKey::new(&Request::new("x", ["ab", "c"]), "t");
        let joined = CacheKey::new(&Request::new("x", ["a", "bc"]), "t");
        assert_ne!(split, joined);
        assert!(!key.pinned());
        assert!(
            !serde_json::to_string(&key).unwrap().contains("ceph"),
            "the key names nothing of the request"
        );
    }
}
