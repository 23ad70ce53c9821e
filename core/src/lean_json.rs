//! Lean reads of watch event lines from their text (used by
//! [`watch_lean`](crate::watch::watch_lean)).
//!
//! [`PodReader`] reads a pod's members itself, with a strict JSON cursor ([`scan`]) and
//! readers of the metadata ([`meta`]) and the status ([`status`]) that give the values
//! k8s-openapi's and [`Lean`]'s `Deserialize` give, without serde's machinery: that is
//! most of a watch event's cost to the operator. On any text they do not expect (another
//! layout, a member twice where that is an error, an escape in a key, a member they leave
//! to serde, a value serde_json would refuse) they give up, and serde_json reads the whole
//! text as before, so values and errors are those of [`Lean`]'s `Deserialize`.
//!
//! A pod's watch events also repeat its `spec` (2.7 KB of the 5 KB of a run's pod)
//! unchanged but for the binding, and the library reads only `spec.nodeName` of it: the
//! reader keeps the text of the last spec it read, and when the next pod's spec is the same
//! text it takes the spec read then instead of reading it again.

mod fields;
mod meta;
mod scan;
mod status;
#[cfg(test)]
mod tests;

use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::api::WatchEvent;

use crate::lean::{Lean, LeanRead};
use meta::Times;
use scan::Scan;

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

/// Reads successive pods lean (see the [module](self) docs).
pub(crate) struct PodReader {
    /// The text of the last spec read, and the lean spec it is.
    spec: Option<(String, Option<PodSpec>)>,
    /// How many specs were taken from the last one.
    reused: u64,
    /// How many pods were read without serde_json.
    read_here: u64,
    /// Timestamps read lately.
    times: Times,
    /// Whether the readers know every member of k8s-openapi's types (else serde_json reads
    /// every pod).
    known: bool,
}

impl Default for PodReader {
    fn default() -> Self {
        Self {
            spec: None,
            reused: 0,
            read_here: 0,
            times: Times::default(),
            known: fields::readers_know_every_member(),
        }
    }
}

impl PodReader {
    /// Reads `json` as `Lean<Pod>`'s `Deserialize` reads it.
    pub(crate) fn read(&mut self, json: &str) -> serde_json::Result<Pod> {
        if self.known
            && let Some(pod) = self.members(json)
        {
            self.read_here += 1;
            return Ok(pod);
        }
        serde_json::from_str::<Lean<Pod>>(json).map(|l| l.0)
    }

    /// The spec at the cursor as `Option<PodSpecView>` reads it (only `nodeName`).
    fn spec(&mut self, s: &mut Scan<'_>) -> Option<Option<PodSpec>> {
        s.ws();
        let text = s.rest();
        if let Some((raw, spec)) = &self.spec
            && text.starts_with(raw.as_str())
        {
            // The same text as the last spec read: a JSON value ends where its own text
            // says, so the value here is that one (what follows it is checked by the
            // caller).
            self.reused += 1;
            s.advance(raw.len());
            return Some(spec.clone());
        }
        let start = s.at();
        let spec = s.opt(|s| {
            let mut node_name = None;
            let mut seen = false;
            s.object(|s, key| {
                match key {
                    // serde's derive: a member twice is an error.
                    "nodeName" if seen => return None,
                    "nodeName" => {
                        seen = true;
                        node_name = meta::opt_string(s)?;
                    }
                    _ => s.skip()?,
                }
                Some(())
            })?;
            Some(PodSpec {
                node_name,
                ..PodSpec::default()
            })
        })?;
        let raw = text.get(..s.at() - start)?;
        self.spec = Some((raw.to_owned(), spec.clone()));
        Some(spec)
    }

    /// The pod read member by member, or `None` for anything unexpected.
    fn members(&mut self, json: &str) -> Option<Pod> {
        let mut s = Scan::new(json);
        let mut metadata = None;
        let mut spec = None;
        let mut status = None;
        s.object(|s, key| {
            match key {
                "metadata" if metadata.is_none() => {
                    metadata = Some(meta::meta(s, &mut self.times)?);
                }
                "spec" if spec.is_none() => spec = Some(self.spec(s)?),
                "status" if status.is_none() => {
                    status = Some(status::status(s, &mut self.times)?);
                }
                // A duplicate: serde's error.
                "metadata" | "spec" | "status" => return None,
                _ => s.skip()?,
            }
            Some(())
        })?;
        s.ws();
        if s.at() != json.len() {
            return None;
        }
        Some(Pod {
            metadata: metadata.unwrap_or_default(),
            spec: spec.flatten(),
            status: status.flatten(),
        })
    }
}

/// Reads a Job's text as `Lean<Job>`'s `Deserialize` reads it (the response to its create):
/// the metadata with this module's reader, the spec skipped, the status by serde_json from
/// its own text (a value is read the same wherever its text is); anything unexpected by
/// serde_json whole.
pub(crate) fn read_job(json: &str) -> serde_json::Result<Job> {
    if fields::readers_know_every_member()
        && let Some(job) = job_members(json)
    {
        return Ok(job);
    }
    serde_json::from_str::<Lean<Job>>(json).map(|l| l.0)
}

/// The Job read member by member, or `None` for anything unexpected.
fn job_members(json: &str) -> Option<Job> {
    let mut s = Scan::new(json);
    let mut times = Times::default();
    let mut metadata = None;
    let mut status = None;
    s.object(|s, key| {
        match key {
            "metadata" if metadata.is_none() => metadata = Some(meta::meta(s, &mut times)?),
            "status" if status.is_none() => {
                s.ws();
                let (start, text) = (s.at(), s.rest());
                s.skip()?;
                let text = text.get(..s.at() - start)?;
                status = Some(serde_json::from_str::<Option<JobStatus>>(text).ok()?);
            }
            // A duplicate: serde's error.
            "metadata" | "status" => return None,
            _ => s.skip()?,
        }
        Some(())
    })?;
    s.ws();
    if s.at() != json.len() {
        return None;
    }
    Some(Job {
        metadata: metadata.unwrap_or_default(),
        spec: None,
        status: status.flatten(),
    })
}
