//! Container logs as the kubelet keeps them: per pod uid and container, stdout and stderr
//! interleaved, each line with its timestamp, rotated at a size limit with only the current
//! file served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

/// Default rotation size, as the kubelet's `containerLogMaxSize`.
pub const DEFAULT_MAX_LOG_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Default)]
struct ContainerLog {
    /// Lines of the current file: (RFC 3339 nanosecond timestamp, bytes including '\n').
    lines: Vec<(String, Bytes)>,
    size: usize,
    /// How often the file was rotated (a follower's cursor names the file it read).
    rotations: u64,
    /// Whether the container has ended (its log will not grow).
    finished: bool,
    /// A partial line not yet ended by '\n', per stream (0 stdout, 1 stderr).
    partial: [BytesMut; 2],
}

/// Logs of every container the kubelet ran, until their pod is deleted.
///
/// Kept per pod, then per container, so that forgetting a pod and reading a container cost
/// the same however many pods there are; a follower is woken by its own pod's logs only.
#[derive(Debug)]
pub struct LogStore {
    logs: Mutex<Logs>,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Logs {
    /// By pod uid, then container name.
    pods: HashMap<String, HashMap<String, ContainerLog>>,
    /// By pod uid: what wakes the followers of the pod's logs. Dropped with the pod's logs
    /// (its followers then end), and pruned of pods nobody follows any more.
    followers: HashMap<String, watch::Sender<u64>>,
    /// Followers' entries are pruned when there are this many.
    prune_at: usize,
}

impl Logs {
    /// The log of a container, made empty if it has none yet; `None` when the pod's logs
    /// are not kept (never opened, or already forgotten).
    fn container(&mut self, pod_uid: &str, container: &str) -> Option<&mut ContainerLog> {
        let pod = self.pods.get_mut(pod_uid)?;
        if !pod.contains_key(container) {
            pod.insert(container.to_owned(), ContainerLog::default());
        }
        pod.get_mut(container)
    }

    fn get(&self, pod_uid: &str, container: &str) -> Option<&ContainerLog> {
        self.pods.get(pod_uid)?.get(container)
    }

    /// Wakes the followers of a pod's logs.
    fn changed(&self, pod_uid: &str) {
        if let Some(tx) = self.followers.get(pod_uid) {
            tx.send_modify(|n| *n += 1);
        }
    }
}

/// Where a follower of a log stands: the file (by rotations) and the line in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCursor {
    rotations: u64,
    line: usize,
}

/// Options of a log read, as the `pods/log` query gives them.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Keep only the last N lines.
    pub tail_lines: Option<usize>,
    /// Cut the answer after this many bytes.
    pub limit_bytes: Option<usize>,
    /// Prefix each line with its RFC 3339 timestamp and a space.
    pub timestamps: bool,
    /// Keep only the lines written at or after this time since the Unix epoch
    /// (`sinceSeconds`, `sinceTime`); applied after `tail_lines`, as the kubelet does.
    pub since: Option<std::time::Duration>,
}

/// The first line of `log` that `q` serves: the last `tail_lines`, then none written before
/// `since` (a log's lines are in time order).
fn first_line(log: &ContainerLog, q: &LogQuery) -> usize {
    let tail = q
        .tail_lines
        .map_or(0, |n| log.lines.len().saturating_sub(n));
    let Some(since) = q.since else {
        return tail;
    };
    let before = |ts: &str| {
        ts.parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| {
                std::time::Duration::try_from(t.duration_since(jiff::Timestamp::UNIX_EPOCH)).ok()
            })
            .is_some_and(|t| t < since)
    };
    tail + log.lines[tail..].partition_point(|(ts, _)| before(ts))
}

impl LogStore {
    /// A store rotating each container's log at `max_bytes`.
    pub fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            logs: Mutex::new(Logs::default()),
            max_bytes,
        })
    }

    /// Starts keeping the logs of a pod (the kubelet does it before it runs the pod's
    /// containers): output of a pod that was never opened, or written after
    /// [`LogStore::remove_pod`] (a container still stopping when its pod went), is dropped.
    pub fn open_pod(&self, pod_uid: &str) {
        self.lock().pods.entry(pod_uid.to_owned()).or_default();
    }

    /// Appends output of one stream (0 stdout, 1 stderr) of a container of an open pod.
    pub fn append(&self, pod_uid: &str, container: &str, stream: usize, data: &[u8], now: &str) {
        let mut logs = self.lock();
        let Some(log) = logs.container(pod_uid, container) else {
            return;
        };
        let mut partial = std::mem::take(&mut log.partial[stream.min(1)]);
        partial.extend_from_slice(data);
        while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
            let line = partial.split_to(pos + 1).freeze();
            Self::push_line(log, self.max_bytes, now, line);
        }
        log.partial[stream.min(1)] = partial;
        logs.changed(pod_uid);
    }

    fn push_line(log: &mut ContainerLog, max_bytes: usize, now: &str, line: Bytes) {
        if log.size + line.len() > max_bytes && !log.lines.is_empty() {
            // Rotation: the kubelet serves only the current file.
            log.lines.clear();
            log.size = 0;
            log.rotations += 1;
        }
        log.size += line.len();
        log.lines.push((now.to_owned(), line));
    }

    /// Flushes partial lines of a container that ended (they are logged without a newline).
    pub fn finish(&self, pod_uid: &str, container: &str, now: &str) {
        let mut logs = self.lock();
        let Some(log) = logs.container(pod_uid, container) else {
            return;
        };
        log.finished = true;
        for i in 0..2 {
            if !log.partial[i].is_empty() {
                let line = std::mem::take(&mut log.partial[i]).freeze();
                Self::push_line(log, self.max_bytes, now, line);
            }
        }
        logs.changed(pod_uid);
    }

    /// For `follow`: the lines after `cursor` (`None`: the start, honouring `tailLines`), the
    /// cursor after them, and whether the log will not grow: the container has ended, or
    /// its pod's logs are not kept (forgotten, its containers gone). A rotation since the
    /// cursor continues at the start of the new file, as the kubelet's follower does.
    pub fn read_since(
        &self,
        pod_uid: &str,
        container: &str,
        q: &LogQuery,
        cursor: Option<LogCursor>,
    ) -> (Bytes, LogCursor, bool) {
        let logs = self.lock();
        let Some(log) = logs.get(pod_uid, container) else {
            // A container of an open pod that has written nothing yet may still write.
            let open = logs.pods.contains_key(pod_uid);
            return (Bytes::new(), LogCursor::default(), !open);
        };
        let start = match cursor {
            Some(c) if c.rotations == log.rotations => c.line.min(log.lines.len()),
            Some(_) => 0,
            None => first_line(log, q),
        };
        let mut out = BytesMut::new();
        for (ts, line) in &log.lines[start..] {
            if q.timestamps {
                out.extend_from_slice(ts.as_bytes());
                out.extend_from_slice(b" ");
            }
            out.extend_from_slice(line);
        }
        let next = LogCursor {
            rotations: log.rotations,
            line: log.lines.len(),
        };
        (out.freeze(), next, log.finished)
    }

    /// Reads a container's current log file.
    pub fn read(&self, pod_uid: &str, container: &str, q: &LogQuery) -> Bytes {
        let logs = self.lock();
        let Some(log) = logs.get(pod_uid, container) else {
            return Bytes::new();
        };
        let start = first_line(log, q);
        let mut out = BytesMut::new();
        for (ts, line) in &log.lines[start..] {
            if q.timestamps {
                out.extend_from_slice(ts.as_bytes());
                out.extend_from_slice(b" ");
            }
            out.extend_from_slice(line);
            if q.limit_bytes.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        if let Some(l) = q.limit_bytes {
            out.truncate(l);
        }
        out.freeze()
    }

    /// The tail of a container's log, as `FallbackToLogsOnError` uses it: at most 2048 bytes
    /// or 80 lines.
    pub fn fallback_tail(&self, pod_uid: &str, container: &str) -> String {
        let all = self.read(
            pod_uid,
            container,
            &LogQuery {
                tail_lines: Some(80),
                ..Default::default()
            },
        );
        let start = all.len().saturating_sub(2048);
        String::from_utf8_lossy(&all[start..]).into_owned()
    }

    /// Forgets the logs of a deleted pod. Its followers' receivers see the sender gone.
    pub fn remove_pod(&self, pod_uid: &str) {
        let mut logs = self.lock();
        logs.pods.remove(pod_uid);
        logs.followers.remove(pod_uid);
    }

    /// A receiver that changes whenever a log of the pod `pod_uid` grows or ends (for
    /// `follow`), and whose sender is gone once the pod's logs are forgotten.
    pub fn subscribe(&self, pod_uid: &str) -> watch::Receiver<u64> {
        let mut logs = self.lock();
        if let Some(tx) = logs.followers.get(pod_uid) {
            return tx.subscribe();
        }
        // Entries nobody follows any more (their pods ended without being forgotten, or
        // were forgotten before the follower came) are pruned each time the map doubles.
        if logs.followers.len() >= logs.prune_at {
            logs.followers.retain(|_, tx| tx.receiver_count() > 0);
            logs.prune_at = (2 * logs.followers.len()).max(16);
        }
        let (tx, rx) = watch::channel(0);
        logs.followers.insert(pod_uid.to_owned(), tx);
        rx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Logs> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of containers whose logs are kept.
    pub fn len(&self) -> usize {
        self.lock().pods.values().map(HashMap::len).sum()
    }

    /// Whether no log is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_interleave_and_rotate() {
        let logs = LogStore::new(12);
        logs.open_pod("u");
        logs.append("u", "c", 0, b"hello\nwor", "t1");
        logs.append("u", "c", 1, b"oops\n", "t2");
        assert_eq!(
            &logs.read("u", "c", &LogQuery::default())[..],
            b"hello\noops\n"
        );
        logs.finish("u", "c", "t3");
        // "wor" would overflow 12 bytes: the file rotates and only it is served.
        assert_eq!(&logs.read("u", "c", &LogQuery::default())[..], b"wor");
        let q = LogQuery {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(&logs.read("u", "c", &q)[..], b"t3 wor");
    }

    #[test]
    fn tail_and_limit() {
        let logs = LogStore::new(1000);
        logs.open_pod("u");
        logs.append("u", "c", 0, b"a\nb\nc\n", "t");
        let q = LogQuery {
            tail_lines: Some(2),
            limit_bytes: Some(3),
            ..Default::default()
        };
        assert_eq!(&logs.read("u", "c", &q)[..], b"b\nc");
    }

    #[test]
    fn a_follower_wakes_for_its_own_pod_and_ends_with_it() {
        let logs = LogStore::new(1000);
        logs.open_pod("a");
        logs.open_pod("b");
        let a = logs.subscribe("a");
        let mut b = logs.subscribe("b");
        logs.append("b", "c", 0, b"x\n", "t");
        logs.finish("b", "c", "t");
        assert!(
            !a.has_changed().unwrap(),
            "pod b's log woke pod a's follower"
        );
        assert!(b.has_changed().unwrap());
        b.borrow_and_update();
        logs.append("a", "c", 1, b"y\n", "t");
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        // Forgetting a pod ends its followers and keeps the other pod's logs.
        logs.remove_pod("b");
        assert!(b.has_changed().is_err());
        assert!(a.has_changed().is_ok());
        assert_eq!(logs.len(), 1);
        assert_eq!(&logs.read("a", "c", &LogQuery::default())[..], b"y\n");
    }

    #[test]
    fn followers_of_pods_nobody_follows_any_more_are_pruned() {
        let logs = LogStore::new(1000);
        logs.open_pod("kept");
        let kept = logs.subscribe("kept");
        for i in 0..100 {
            drop(logs.subscribe(&format!("gone-{i}")));
        }
        let entries = logs.lock().followers.len();
        assert!(entries <= 33, "{entries} followers' entries for 1 follower");
        assert!(logs.lock().followers.contains_key("kept"));
        logs.append("kept", "c", 0, b"z\n", "t");
        assert!(kept.has_changed().unwrap());
    }

    #[test]
    fn output_of_a_forgotten_pod_is_not_kept_and_its_followers_see_the_end() {
        let logs = LogStore::new(1000);
        logs.open_pod("u");
        logs.append("u", "c", 0, b"a\n", "t");
        // A container of an open pod that has written nothing yet may still write.
        let (_, _, ended) = logs.read_since("u", "quiet", &LogQuery::default(), None);
        assert!(!ended);
        logs.remove_pod("u");
        // A container still stopping when its pod went writes and ends after that.
        logs.append("u", "c", 0, b"late\n", "t");
        logs.finish("u", "c", "t");
        assert!(logs.is_empty(), "{} containers' logs kept", logs.len());
        assert!(logs.lock().pods.is_empty());
        // Output of a pod never opened is not kept either.
        logs.append("never", "c", 0, b"x\n", "t");
        assert!(logs.lock().pods.is_empty());
        // A follower that comes after the pod's logs went ends at once.
        let (bytes, _, ended) = logs.read_since("u", "c", &LogQuery::default(), None);
        assert!(bytes.is_empty());
        assert!(ended, "a follower of forgotten logs would wait for ever");
    }

    #[test]
    fn since_keeps_the_lines_written_from_then_after_the_tail() {
        let logs = LogStore::new(1000);
        logs.open_pod("u");
        logs.append("u", "c", 0, b"a\n", "1970-01-01T00:00:10.000000000Z");
        logs.append("u", "c", 0, b"b\n", "1970-01-01T00:00:20.000000000Z");
        logs.append("u", "c", 0, b"c\n", "1970-01-01T00:00:30.500000000Z");
        let since = |secs: u64, tail: Option<usize>| LogQuery {
            since: Some(std::time::Duration::from_secs(secs)),
            tail_lines: tail,
            ..Default::default()
        };
        // A line written at `since` exactly is kept.
        assert_eq!(&logs.read("u", "c", &since(20, None))[..], b"b\nc\n");
        assert_eq!(&logs.read("u", "c", &since(31, None))[..], b"");
        assert_eq!(&logs.read("u", "c", &since(0, None))[..], b"a\nb\nc\n");
        // The tail first, then `since`.
        assert_eq!(&logs.read("u", "c", &since(5, Some(1)))[..], b"c\n");
        assert_eq!(&logs.read("u", "c", &since(25, Some(3)))[..], b"c\n");
        let (first, _, _) = logs.read_since("u", "c", &since(15, None), None);
        assert_eq!(&first[..], b"b\nc\n");
    }
}
