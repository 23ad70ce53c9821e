//! Lean reads of watch event lines from their text (used by
//! [`watch_lean`](crate::watch::watch_lean)).
//!
//! A pod's watch events repeat its `spec` (2.7 KB of the 5 KB of a run's pod) unchanged
//! but for the binding, and the library reads only `spec.nodeName` of it: [`PodReader`]
//! keeps the text of the last spec it read, and when the next pod's spec is the same text
//! it takes the spec read then instead of reading it again. Everything else is read by
//! serde_json as before, member by member; on any text it does not expect (another layout,
//! a duplicate member, an escape in a key, an error) it reads the whole text with serde_json
//! as before, so values and errors are those of [`Lean`]'s `Deserialize`.

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use kube::api::WatchEvent;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::lean::{Lean, LeanRead, Meta, PodSpecView};

/// The start of every event line an API server writes.
const HEAD: &str = "{\"type\":\"";
/// What follows the event's type.
const OBJECT: &str = ",\"object\":";

/// A watch event line `{"type":"...","object":...}` as its type and its object's text.
fn envelope(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(HEAD)?;
    let (ty, rest) = rest.split_at(rest.find('"')?);
    let object = rest[1..].strip_prefix(OBJECT)?;
    let object = object
        .trim_end_matches([' ', '\t', '\n', '\r'])
        .strip_suffix('}')?;
    Some((ty, object))
}

/// Makes an event of an object.
type Wrap<K> = fn(Lean<K>) -> WatchEvent<Lean<K>>;

/// Reads event lines of `K` lean, each object with `K`'s [`LeanRead::json_reader`];
/// bookmarks, errors and any line of another layout as serde_json reads
/// `WatchEvent<Lean<K>>`.
pub(crate) fn event_reader<K: LeanRead + 'static>()
-> impl FnMut(&str) -> serde_json::Result<WatchEvent<Lean<K>>> + Send {
    let mut object = K::json_reader();
    move |line| {
        if let Some((ty, json)) = envelope(line) {
            let wrap: Option<Wrap<K>> = match ty {
                "ADDED" => Some(WatchEvent::Added),
                "MODIFIED" => Some(WatchEvent::Modified),
                "DELETED" => Some(WatchEvent::Deleted),
                _ => None,
            };
            if let Some(wrap) = wrap
                && let Ok(k) = object(json)
            {
                return Ok(wrap(Lean(k)));
            }
        }
        serde_json::from_str(line)
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// One JSON value at the start of `text` (no leading whitespace) and where it ends.
fn value<'a, T: Deserialize<'a>>(text: &'a str) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<T>();
    let v = values.next()?.ok()?;
    Some((v, values.byte_offset()))
}

/// Reads successive pods lean (see the [module](self) docs).
#[derive(Default)]
pub(crate) struct PodReader {
    /// The text of the last spec read, and the lean spec it is.
    spec: Option<(String, Option<PodSpec>)>,
    /// How many specs were taken from the last one.
    reused: u64,
}

impl PodReader {
    /// Reads `json` as `Lean<Pod>`'s `Deserialize` reads it.
    pub(crate) fn read(&mut self, json: &str) -> serde_json::Result<Pod> {
        if let Some(pod) = self.members(json) {
            return Ok(pod);
        }
        serde_json::from_str::<Lean<Pod>>(json).map(|l| l.0)
    }

    /// The spec at the start of `text`, and where it ends.
    fn spec(&mut self, text: &str) -> Option<(Option<PodSpec>, usize)> {
        if let Some((raw, spec)) = &self.spec
            && text.starts_with(raw.as_str())
        {
            // The same text as the last spec read: a JSON object ends where its own text
            // says, so the value here is that one (what follows it is checked by the
            // caller).
            self.reused += 1;
            return Some((spec.clone(), raw.len()));
        }
        let (view, end) = value::<Option<PodSpecView>>(text)?;
        let spec = view.map(|s| PodSpec {
            node_name: s.node_name,
            ..PodSpec::default()
        });
        self.spec = Some((text[..end].to_owned(), spec.clone()));
        Some((spec, end))
    }

    /// The pod read member by member, or `None` for anything unexpected.
    fn members(&mut self, json: &str) -> Option<Pod> {
        let b = json.as_bytes();
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = ws(b, i + 1);
        let mut metadata: Option<Option<Meta>> = None;
        let mut spec: Option<Option<PodSpec>> = None;
        let mut status: Option<Option<PodStatus>> = None;
        if b.get(i) != Some(&b'}') {
            loop {
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                let end = i + 1 + json[i + 1..].find('"')?;
                let key = &json[i + 1..end];
                if key.contains('\\') {
                    return None;
                }
                i = ws(b, end + 1);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i = ws(b, i + 1);
                let text = &json[i..];
                i += match key {
                    "metadata" if metadata.is_none() => {
                        let (v, n) = value(text)?;
                        metadata = Some(v);
                        n
                    }
                    "spec" if spec.is_none() => {
                        let (v, n) = self.spec(text)?;
                        spec = Some(v);
                        n
                    }
                    "status" if status.is_none() => {
                        let (v, n) = value(text)?;
                        status = Some(v);
                        n
                    }
                    // A duplicate: serde's error.
                    "metadata" | "spec" | "status" => return None,
                    _ => value::<IgnoredAny>(text)?.1,
                };
                i = ws(b, i);
                match b.get(i) {
                    Some(b',') => i = ws(b, i + 1),
                    Some(b'}') => break,
                    _ => return None,
                }
            }
        }
        if ws(b, i + 1) != b.len() {
            return None;
        }
        Some(Pod {
            metadata: metadata.flatten().unwrap_or_default().into(),
            spec: spec.flatten(),
            status: status.flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;

    /// The pod of one run at step `step`: scheduled from step 1, its containers' states
    /// growing, deleted at step 5.
    fn pod_line(step: usize) -> String {
        let mut spec = json!({"containers": [{"name": "cmd", "image": "bench:1",
            "command": ["/var/run/cmdreporter/cmdreporter", "report", "--", "/bin/x"],
            "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}],
            "resources": {}, "securityContext": {"capabilities": {"drop": ["ALL"]}}}],
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 30, "priority": 0,
            "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 300}],
            "volumes": [{"name": "v", "emptyDir": {}}]});
        if step >= 1 {
            spec["nodeName"] = json!("node-1");
        }
        let mut meta = json!({"name": "p-1", "namespace": "default", "uid": "u-1",
            "resourceVersion": (10 + step).to_string(), "labels": {"a": "b", "c": "d"},
            "creationTimestamp": "2026-12-01T14:03:55Z",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j",
                "uid": "ju", "controller": true}]});
        if step >= 5 {
            meta["deletionTimestamp"] = json!("2026-12-01T14:03:56Z");
        }
        let states = ["waiting", "running", "terminated"];
        let state = states[step.min(2)];
        let status = json!({"phase": if step >= 3 { "Succeeded" } else { "Pending" },
            "conditions": [{"type": "PodScheduled", "status": "True",
                "lastTransitionTime": "2026-12-01T14:03:55Z", "lastProbeTime": null}],
            "containerStatuses": [{"name": "cmd", "image": "bench:1", "imageID": "sha",
                "ready": false, "restartCount": 0,
                "state": {state: if state == "terminated" { json!({"exitCode": 0}) } else { json!({}) }}}]});
        let ty = if step == 0 { "ADDED" } else { "MODIFIED" };
        let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": spec, "status": status});
        format!("{{\"type\":\"{ty}\",\"object\":{object}}}")
    }

    /// The outcome serde_json gives, and the reader's, side by side.
    fn both(
        reader: &mut impl FnMut(&str) -> serde_json::Result<WatchEvent<Lean<Pod>>>,
        line: &str,
    ) -> (Result<String, String>, Result<String, String>) {
        let show = |r: serde_json::Result<WatchEvent<Lean<Pod>>>| match r {
            Ok(WatchEvent::Added(p)) => Ok(format!("added {:?}", p.0)),
            Ok(WatchEvent::Modified(p)) => Ok(format!("modified {:?}", p.0)),
            Ok(WatchEvent::Deleted(p)) => Ok(format!("deleted {:?}", p.0)),
            Ok(WatchEvent::Bookmark(b)) => {
                Ok(format!("bookmark {:?}", b.metadata.resource_version))
            }
            Ok(WatchEvent::Error(e)) => Ok(format!("error {e:?}")),
            Err(e) => Err(e.to_string()),
        };
        (
            show(serde_json::from_str::<WatchEvent<Lean<Pod>>>(line)),
            show(reader(line)),
        )
    }

    #[test]
    fn a_run_s_pod_events_read_as_serde_reads_them() {
        let mut reader = event_reader::<Pod>();
        for step in 0..7 {
            let (serde, ours) = both(&mut reader, &pod_line(step));
            assert!(serde.is_ok(), "{serde:?}");
            assert_eq!(ours, serde, "step {step}");
        }
    }

    #[test]
    fn an_unchanged_spec_is_taken_from_the_last_pod() {
        let mut reader = PodReader::default();
        let object = |step| {
            let line = pod_line(step);
            envelope(&line)
                .map(|(_, o)| o.to_owned())
                .unwrap_or_default()
        };
        for step in 0..7 {
            let pod = reader.read(&object(step)).unwrap();
            let node = pod.spec.and_then(|s| s.node_name);
            assert_eq!(node.is_some(), step >= 1);
        }
        // Step 1 binds the pod (a new spec); steps 2 to 6 repeat it.
        assert_eq!(reader.reused, 5);
    }

    #[test]
    fn other_layouts_bookmarks_and_errors_read_as_serde_reads_them() {
        let mut reader = event_reader::<Pod>();
        let good = pod_line(2);
        let object = good
            .strip_prefix("{\"type\":\"MODIFIED\",\"object\":")
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or_default()
            .to_owned();
        let lines = [
            good.clone(),
            format!("{{\"object\":{object},\"type\":\"MODIFIED\"}}"),
            format!("{{\"type\":\"MODIFIED\",\"object\":{object} }}\r\n"),
            format!("{{\"type\":\"MODIFIED\",\"object\":{object},\"x\":1}}"),
            format!("{{\"type\":\"GONE\",\"object\":{object}}}"),
            "{\"type\":\"MODIFIED\",\"object\":null}".to_owned(),
            "{\"type\":\"MODIFIED\",\"object\":{}}".to_owned(),
            "{\"type\":\"MODIFIED\",\"object\":{\"spec\":null,\"metadata\":null}}".to_owned(),
            "{\"type\":\"MODIFIED\",\"object\":{\"spec\":{},\"spec\":{}}}".to_owned(),
            "{\"type\":\"MODIFIED\",\"object\":{\"me\\u0074adata\":{\"name\":\"x\"}}}".to_owned(),
            "{\"type\":\"MODIFIED\",\"object\":[{\"name\":\"x\"}]}".to_owned(),
            "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"12\"}}}".to_owned(),
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"gone\",\"reason\":\"Expired\",\"code\":410}}".to_owned(),
            good,
        ];
        for line in &lines {
            let (serde, ours) = both(&mut reader, line);
            assert_eq!(ours, serde, "{line}");
        }
    }

    /// Lines broken at seeded places (a byte dropped, replaced or doubled), read after a
    /// good line of the same pod (so that the remembered spec is offered): the reader gives
    /// what serde_json gives, value or error.
    #[test]
    fn broken_lines_read_as_serde_reads_them() {
        let bytes = b"{}[]\",:\\ 0an-";
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.random_range(0..n);
        let mut differed = 0;
        for round in 0..3_000 {
            let mut reader = event_reader::<Pod>();
            let good = pod_line(1 + round % 5);
            let _ = reader(&pod_line(1));
            let mut broken = good.clone().into_bytes();
            let at = next(broken.len());
            match next(3) {
                0 => {
                    broken.remove(at);
                }
                1 => broken[at] = bytes[next(bytes.len())],
                _ => broken.insert(at, broken[at]),
            }
            let Ok(line) = String::from_utf8(broken) else {
                continue;
            };
            let (serde, ours) = both(&mut reader, &line);
            differed += usize::from(serde.is_err());
            assert_eq!(ours, serde, "{line}");
        }
        assert!(differed > 500, "only {differed} broken lines were errors");
    }
}
