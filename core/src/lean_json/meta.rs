//! A lean object's `metadata` read from its text as [`Meta`](crate::lean::Meta)'s
//! `Deserialize` reads it (all but `managedFields` and `selfLink`, a member twice an
//! error), and the values every lean reader shares: strings, string maps, timestamps.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde::de::value::BorrowedStrDeserializer;

use super::scan::Scan;

/// Timestamps read lately, text and value. Reading one is a pure function of its text, so
/// the same text is the same value; a pod's events repeat a few timestamps many times.
#[derive(Default)]
pub(super) struct Times {
    seen: Vec<(String, Timestamp)>,
    /// The entry to replace next.
    next: usize,
}

/// How many timestamps [`Times`] keeps.
const TIMES: usize = 4;

impl Times {
    /// A `Time` as k8s-openapi reads one (jiff's `Timestamp` from the string).
    pub(super) fn time(&mut self, s: &mut Scan<'_>) -> Option<Time> {
        let text = s.string()?;
        if let Some((_, t)) = self.seen.iter().find(|(seen, _)| **seen == *text) {
            return Some(Time(*t));
        }
        let t = Timestamp::deserialize(BorrowedStrDeserializer::<serde::de::value::Error>::new(
            &text,
        ))
        .ok()?;
        if self.seen.len() < TIMES {
            self.seen.push((text.into_owned(), t));
        } else if let Some(slot) = self.seen.get_mut(self.next) {
            *slot = (text.into_owned(), t);
            self.next = (self.next + 1) % TIMES;
        }
        Some(Time(t))
    }

    /// An optional `Time`.
    pub(super) fn opt_time(&mut self, s: &mut Scan<'_>) -> Option<Option<Time>> {
        s.opt(|s| self.time(s))
    }
}

/// A map of strings (labels, annotations): a key given twice keeps its last value, as
/// serde's `BTreeMap` does.
pub(super) fn string_map(s: &mut Scan<'_>) -> Option<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    s.object(|s, key| {
        map.insert(key.to_owned(), s.owned()?);
        Some(())
    })?;
    Some(map)
}

/// `Option<String>`, the most common member.
pub(super) fn opt_string(s: &mut Scan<'_>) -> Option<Option<String>> {
    s.opt(Scan::owned)
}

/// The members of `OwnerReference`, as k8s-openapi names them.
pub(super) const OWNER_REFERENCE: &[&str] = &[
    "apiVersion",
    "blockOwnerDeletion",
    "controller",
    "kind",
    "name",
    "uid",
];

/// An `OwnerReference` as k8s-openapi reads one: a member given twice keeps its last value,
/// `null` is the default, an unknown member is skipped.
fn owner_reference(s: &mut Scan<'_>) -> Option<OwnerReference> {
    let mut o = OwnerReference::default();
    s.object(|s, key| {
        match key {
            "apiVersion" => o.api_version = opt_string(s)?.unwrap_or_default(),
            "blockOwnerDeletion" => o.block_owner_deletion = s.opt(Scan::bool)?,
            "controller" => o.controller = s.opt(Scan::bool)?,
            "kind" => o.kind = opt_string(s)?.unwrap_or_default(),
            "name" => o.name = opt_string(s)?.unwrap_or_default(),
            "uid" => o.uid = opt_string(s)?.unwrap_or_default(),
            _ => s.skip()?,
        }
        Some(())
    })?;
    Some(o)
}

/// The members of [`Meta`](crate::lean::Meta).
#[cfg(test)]
pub(super) const META: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "uid",
];

/// `metadata` as `Option<Meta>` reads it, `null` as the default metadata.
pub(super) fn meta(s: &mut Scan<'_>, times: &mut Times) -> Option<ObjectMeta> {
    let mut m = ObjectMeta::default();
    // The members read so far (serde's derive: a member twice is an error).
    let mut seen = 0u32;
    let mut first = |n: u32| {
        let bit = 1 << n;
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        Some(())
    };
    // `null` is the default metadata.
    s.opt(|s| {
        s.object(|s, key| {
            match key {
                "annotations" => {
                    first(0)?;
                    m.annotations = s.opt(string_map)?;
                }
                "creationTimestamp" => {
                    first(1)?;
                    m.creation_timestamp = times.opt_time(s)?;
                }
                "deletionGracePeriodSeconds" => {
                    first(2)?;
                    m.deletion_grace_period_seconds = s.opt(Scan::int)?;
                }
                "deletionTimestamp" => {
                    first(3)?;
                    m.deletion_timestamp = times.opt_time(s)?;
                }
                "finalizers" => {
                    first(4)?;
                    m.finalizers = s.opt(|s| s.vec(Scan::owned))?;
                }
                "generateName" => {
                    first(5)?;
                    m.generate_name = opt_string(s)?;
                }
                "generation" => {
                    first(6)?;
                    m.generation = s.opt(Scan::int)?;
                }
                "labels" => {
                    first(7)?;
                    m.labels = s.opt(string_map)?;
                }
                "name" => {
                    first(8)?;
                    m.name = opt_string(s)?;
                }
                "namespace" => {
                    first(9)?;
                    m.namespace = opt_string(s)?;
                }
                "ownerReferences" => {
                    first(10)?;
                    m.owner_references = s.opt(|s| s.vec(owner_reference))?;
                }
                "resourceVersion" => {
                    first(11)?;
                    m.resource_version = opt_string(s)?;
                }
                "uid" => {
                    first(12)?;
                    m.uid = opt_string(s)?;
                }
                // `managedFields`, `selfLink` and anything else: not read.
                _ => s.skip()?,
            }
            Some(())
        })
    })?;
    Some(m)
}
