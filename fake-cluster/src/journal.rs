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
    /// HTTP status code of the answer; 0 when the connection was dropped without one (see
    /// [`crate::faults::Fault::Disconnect`]).
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
#[derive(Debug)]
pub struct Journal {
    entries: Mutex<Vec<JournalEntry>>,
    /// The number of entries, for [`Journal::wait_for`].
    recorded: tokio::sync::watch::Sender<usize>,
}

impl Default for Journal {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            recorded: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Journal {
    /// Records one request. A watch is recorded once the server has registered it, before
    /// its first event is sent.
    pub fn record(&self, entry: JournalEntry) {
        tracing::debug!(%entry, "api request");
        let n = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.push(entry);
            entries.len()
        };
        self.recorded.send_replace(n);
    }

    /// Waits until a recorded request satisfies `pred` (at once if one already does), and
    /// returns it: for a test to act only after, say, a client's watch is in place.
    pub async fn wait_for(&self, pred: impl Fn(&JournalEntry) -> bool) -> JournalEntry {
        let mut rx = self.recorded.subscribe();
        let mut checked = 0;
        loop {
            {
                let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                if entries.len() < checked {
                    // Cleared meanwhile.
                    checked = 0;
                }
                if let Some(e) = entries.iter().skip(checked).find(|e| pred(e)) {
                    return e.clone();
                }
                checked = entries.len();
            }
            // The sender lives as long as `self`, so `changed` cannot fail while we wait.
            let _ = rx.changed().await;
        }
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

    /// Forgets every request recorded so far, and frees the memory they held.
    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clear();
        entries.shrink_to_fit();
        drop(entries);
        self.recorded.send_replace(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(verb: &str) -> JournalEntry {
        JournalEntry {
            verb: verb.into(),
            path: "/api/v1/configmaps".into(),
            status: 200,
            user_agent: "test".into(),
        }
    }

    #[tokio::test]
    async fn wait_for_returns_once_a_matching_request_is_recorded() {
        let journal = std::sync::Arc::new(Journal::default());
        journal.record(entry("list"));
        assert_eq!(journal.wait_for(|e| e.verb == "list").await.verb, "list");
        let waiter = {
            let journal = journal.clone();
            tokio::spawn(async move { journal.wait_for(|e| e.verb == "watch").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        journal.record(entry("get"));
        journal.record(entry("watch"));
        assert_eq!(waiter.await.unwrap().verb, "watch");
    }
}
