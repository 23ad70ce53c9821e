//! The journal: every API request with its verb, path and status code.

use std::sync::Mutex;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection,
    /// or the HTTP method for non-resource paths.
    pub verb: String,
    /// Path and query.
    pub path: String,
    /// HTTP status code of the answer.
    pub status: u16,
    /// Who sent it, from the User-Agent header.
    pub user_agent: String,
}

impl std::fmt::Display for JournalEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} ({})",
            self.status, self.verb, self.path, self.user_agent
        )
    }
}

/// The list of requests, shared by the server and tests.
#[derive(Debug, Default)]
pub struct Journal {
    entries: Mutex<Vec<JournalEntry>>,
}

impl Journal {
    /// Records one request.
    pub fn record(&self, entry: JournalEntry) {
        tracing::debug!(%entry, "api request");
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// Every request so far.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Number of requests so far.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no request was made.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every request recorded so far.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
