//! A cache of outcomes keyed by what determines them: image reference, argv, env and
//! transport. A hit makes no API request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::report::Outcome;
use crate::request::Request;

/// What an outcome depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    image: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    transport: String,
}

impl CacheKey {
    /// The key of a request run through `transport`.
    pub fn new(req: &Request, transport: &str) -> Self {
        Self {
            image: req.image.clone(),
            argv: req.argv.clone(),
            env: req.env.clone(),
            transport: transport.to_owned(),
        }
    }

    /// Whether the image is pinned by digest (`name@sha256:...`): its content cannot change.
    pub fn pinned(&self) -> bool {
        self.image.contains('@')
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
