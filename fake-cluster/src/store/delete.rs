//! Deletion in the store, as the real registry's `Store.Delete` does it: preconditions,
//! the garbage collector's finalizers set by the propagation policy, the deletionTimestamp,
//! and the graceful deletion of pods (written first even with a zero grace period, then
//! removed when nothing holds them).

use std::sync::Arc;

use crate::json::{Value, json};

use super::write::Write;
use super::{Result, Store, finalizers, meta_mut, meta_str};
use crate::resources::{Propagation, ResourceRef, well_known};
use crate::selector::at;
use crate::status::ApiError;

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Explicit propagation policy; `None` uses the resource's default.
    pub propagation: Option<Propagation>,
    /// Precondition on the uid.
    pub uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub resource_version: Option<String>,
    /// Grace period in seconds, for pods.
    pub grace_period_seconds: Option<i64>,
    /// Check everything and answer as the delete would, without deleting (`dryRun=All`).
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone; its last state at the deletion's resourceVersion (for an
    /// immediate delete, the object as it was stored, without a deletionTimestamp), as the
    /// real server answers; for an immediate delete of a resource whose delete answers a
    /// `Status`, the stored object as it is (only its uid is read). A dry run answers the
    /// stored object at its own version.
    Gone(Arc<Value>),
    /// The object is terminating (finalizers or a graceful pod delete); its new state.
    Terminating(Arc<Value>),
}

impl Store {
    /// Deletes an object, honouring preconditions, finalizers, propagation and pod grace.
    pub fn delete(
        &self,
        def: &ResourceRef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted> {
        if def == well_known::namespaces() {
            let ns = self.delete_namespace(name, opts)?;
            let gone = self.lookup(def, "", name).is_none() && !opts.dry_run;
            return Ok(if gone {
                Deleted::Gone(ns)
            } else {
                Deleted::Terminating(ns)
            });
        }
        let is_pod = def == well_known::pods();
        let now = self.clock.now_rfc3339_seconds();
        let mut gone = false;
        // The closure reads the stored object and changes only the metadata of the new one,
        // or answers that it goes as it is.
        let write = Write {
            spec_kept: true,
            marking: true,
        };
        let obj = self.write_or_remove(def, ns, name, opts.dry_run, write, |obj| {
            if let Some(uid) = &opts.uid
                && meta_str(obj, "uid") != Some(uid.as_str()) {
                    return Err(ApiError::conflict(
                        def,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta_str(obj, "uid").unwrap_or_default()
                        ),
                    ));
                }
            if let Some(rv) = &opts.resource_version
                && meta_str(obj, "resourceVersion") != Some(rv.as_str()) {
                    return Err(ApiError::conflict(
                        def,
                        name,
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            meta_str(obj, "resourceVersion").unwrap_or_default()
                        ),
                    ));
                }
            let marked = meta_str(obj, "deletionTimestamp").is_some();
            // A pod's graceful deletion: its new deletionTimestamp and grace period.
            let graceful = match is_pod.then(|| pod_grace(obj, opts, &now)) {
                Some(PodGrace::Pending) => return Ok(Some(obj.clone())),
                Some(PodGrace::Mark(at, grace)) => Some((at, grace)),
                Some(PodGrace::AtZero) | None => None,
            };
            let stored = finalizers(obj);
            let mut fins = gc_finalizers(&stored, opts.propagation, def.default_propagation);
            // A definition stays until its objects are gone (see `crate::crd`).
            if crate::crd::is_crd(def) && !fins.iter().any(|x| x == crate::crd::CLEANUP_FINALIZER) {
                fins.push(crate::crd::CLEANUP_FINALIZER.to_owned());
            }
            gone = fins.is_empty() && graceful.as_ref().is_none_or(|(_, g)| *g == 0);
            // An object that nothing holds and that is not deleted gracefully goes as it is
            // stored, without a write first, so its DELETED event shows no deletionTimestamp.
            // A pod's graceful deletion is written first even with a zero grace period
            // (the store then removes it: two changes, MODIFIED and DELETED).
            if gone && graceful.is_none() {
                return Ok(None);
            }
            let mut next = obj.clone();
            let m = meta_mut(&mut next);
            if fins != stored {
                if fins.is_empty() {
                    m.remove("finalizers");
                } else {
                    m.insert("finalizers".into(), json!(fins));
                }
            }
            // The first marking is a new generation, as the real server's `markAsDeleting`
            // and `rest.BeforeDelete` count it (for objects that have a generation).
            if !marked
                && let Some(g) = m
                    .get("generation")
                    .and_then(Value::as_i64)
                    .filter(|&g| g > 0)
            {
                m.insert("generation".into(), json!(g + 1));
            }
            match graceful {
                Some((at, grace)) => {
                    m.insert("deletionTimestamp".into(), json!(at));
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
                // `markAsDeleting`: now, unless already set; a zero grace period.
                None => {
                    if !marked {
                        m.insert("deletionTimestamp".into(), json!(now));
                    }
                    m.insert("deletionGracePeriodSeconds".into(), json!(0));
                }
            }
            Ok(Some(next))
        })?;
        if gone {
            Ok(Deleted::Gone(obj))
        } else {
            Ok(Deleted::Terminating(obj))
        }
    }
}

/// The finalizers of `obj` after a delete with `propagation`, as the real registry's
/// `deletionFinalizersForGarbageCollection` sets them: `orphan` and `foregroundDeletion`
/// removed, then the one the policy asks for appended. Without a policy, one of the two
/// already on the object decides, or else the resource's default. The old and new lists
/// are compared as sets, as that function does (`sets.NewString(...).Equal`): the same set
/// keeps the stored list as it is, order and repeats included (no write); a different one
/// is the new list, with the repeats of the other finalizers kept.
fn gc_finalizers(
    stored: &[String],
    propagation: Option<Propagation>,
    default: Propagation,
) -> Vec<String> {
    const ORPHAN: &str = "orphan";
    const FOREGROUND: &str = "foregroundDeletion";
    let mut fins = stored.to_vec();
    let policy = propagation.unwrap_or_else(|| {
        match fins.iter().find(|f| *f == ORPHAN || *f == FOREGROUND) {
            Some(f) if f == ORPHAN => Propagation::Orphan,
            Some(_) => Propagation::Foreground,
            None => default,
        }
    });
    fins.retain(|f| f != ORPHAN && f != FOREGROUND);
    match policy {
        Propagation::Orphan => fins.push(ORPHAN.to_owned()),
        Propagation::Foreground => fins.push(FOREGROUND.to_owned()),
        Propagation::Background => {}
    }
    let same_set =
        fins.iter().all(|f| stored.contains(f)) && stored.iter().all(|f| fins.contains(f));
    if same_set { stored.to_vec() } else { fins }
}

/// What a delete does to a pod, as the real `rest.BeforeDelete` and the pod strategy's
/// `CheckGracefulDelete` decide it.
enum PodGrace {
    /// A graceful deletion is pending and the request does not shorten it: nothing
    /// changes, not even the finalizers (`finalizeDelete` of the object as it is).
    Pending,
    /// Already marked with a zero grace period (held by finalizers): deleted as an object
    /// without graceful deletion is (finalizers, then removed once none is left).
    AtZero,
    /// The marking to write: deletionTimestamp and grace period.
    Mark(String, i64),
}

/// [`PodGrace`] of a delete of `pod` with `opts`:
///
/// - A negative requested grace period counts as 1 s.
/// - First delete: the requested grace period, or the spec's
///   `terminationGracePeriodSeconds`; zero for a pod not bound to a node and for a pod in
///   a terminal phase (Succeeded, Failed). The deletionTimestamp is now plus the grace.
/// - Already marked with a grace period above zero: only a shorter one is taken, and the
///   deletionTimestamp moves by the difference.
fn pod_grace(pod: &Value, opts: &DeleteOptions, now: &str) -> PodGrace {
    let requested = opts.grace_period_seconds.map(|g| if g < 0 { 1 } else { g });
    let marked_grace = at(pod, "/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
    match meta_str(pod, "deletionTimestamp") {
        Some(_) if marked_grace.is_none_or(|g| g <= 0) => PodGrace::AtZero,
        Some(marked_at) => {
            let current = marked_grace.unwrap_or_default();
            match requested {
                Some(r) if r < current => {
                    let at = shift(marked_at, r - current).unwrap_or_else(|| now.to_owned());
                    PodGrace::Mark(at, r)
                }
                _ => PodGrace::Pending,
            }
        }
        None => {
            let bound = at(pod, "/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let terminal = matches!(
                at(pod, "/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            );
            let grace = if !bound || terminal {
                0
            } else {
                requested
                    .or_else(|| {
                        at(pod, "/spec/terminationGracePeriodSeconds").and_then(Value::as_i64)
                    })
                    .unwrap_or(0)
            };
            let grace = if grace < 0 { 1 } else { grace };
            let at = match grace {
                0 => None,
                g => shift(now, g),
            };
            PodGrace::Mark(at.unwrap_or_else(|| now.to_owned()), grace)
        }
    }
}

/// An RFC 3339 time moved by `seconds`, in whole seconds.
fn shift(time: &str, seconds: i64) -> Option<String> {
    let t: jiff::Timestamp = time.parse().ok()?;
    let secs = u64::try_from(t.as_second().checked_add(seconds)?).ok()?;
    Some(crate::clock::format_rfc3339(
        std::time::Duration::from_secs(secs),
        false,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_policy_replaces_the_other_gc_finalizer_and_none_keeps_the_one_there() {
        let with = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let held = with(&["example.com/a", "orphan"]);
        assert_eq!(
            gc_finalizers(
                &held,
                Some(Propagation::Foreground),
                Propagation::Background
            ),
            ["example.com/a", "foregroundDeletion"]
        );
        assert_eq!(
            gc_finalizers(&held, Some(Propagation::Background), Propagation::Orphan),
            ["example.com/a"]
        );
        // No policy: the finalizer already there decides, not the resource's default.
        let fg = with(&["foregroundDeletion"]);
        assert_eq!(
            gc_finalizers(&fg, None, Propagation::Orphan),
            ["foregroundDeletion"]
        );
        assert_eq!(
            gc_finalizers(&with(&[]), None, Propagation::Orphan),
            ["orphan"]
        );
        // The same set keeps the stored order: nothing to write.
        let first = with(&["orphan", "example.com/a"]);
        assert_eq!(gc_finalizers(&first, None, Propagation::Background), first);
        // Sets, not counts: a repeated finalizer is the same set, kept as stored.
        let repeated = with(&["orphan", "example.com/a", "orphan"]);
        assert_eq!(
            gc_finalizers(&repeated, None, Propagation::Background),
            repeated
        );
        assert_eq!(
            gc_finalizers(
                &repeated,
                Some(Propagation::Orphan),
                Propagation::Background
            ),
            repeated
        );
        // A different set: the new list, the other finalizers' repeats kept.
        let twice = with(&["example.com/a", "example.com/a"]);
        assert_eq!(
            gc_finalizers(
                &twice,
                Some(Propagation::Foreground),
                Propagation::Background
            ),
            ["example.com/a", "example.com/a", "foregroundDeletion"]
        );
    }

    #[test]
    fn a_pod_grace_period_is_shortened_only_and_its_deadline_moves_with_it() {
        let now = "2026-01-01T00:00:00Z";
        let opts = |g: Option<i64>| DeleteOptions {
            grace_period_seconds: g,
            ..Default::default()
        };
        let bound = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30},
            "status": {"phase": "Running"}, "metadata": {}});
        let PodGrace::Mark(at, 30) = pod_grace(&bound, &opts(None), now) else {
            panic!("the spec's grace period");
        };
        assert_eq!(at, "2026-01-01T00:00:30Z");
        let PodGrace::Mark(_, 1) = pod_grace(&bound, &opts(Some(-5)), now) else {
            panic!("a negative grace period counts as 1 s");
        };
        let mut marked = bound.clone();
        marked["metadata"] = json!({"deletionTimestamp": at, "deletionGracePeriodSeconds": 30});
        assert!(matches!(
            pod_grace(&marked, &opts(None), now),
            PodGrace::Pending
        ));
        assert!(matches!(
            pod_grace(&marked, &opts(Some(40)), now),
            PodGrace::Pending
        ));
        let PodGrace::Mark(at, 10) = pod_grace(&marked, &opts(Some(10)), now) else {
            panic!("a shorter grace period is taken");
        };
        assert_eq!(at, "2026-01-01T00:00:10Z");
        let mut ended = bound.clone();
        ended["status"]["phase"] = json!("Succeeded");
        assert!(matches!(
            pod_grace(&ended, &opts(Some(20)), now),
            PodGrace::Mark(_, 0)
        ));
    }
}
