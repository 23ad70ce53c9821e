//! The TTL-after-finished controller: a Job with `ttlSecondsAfterFinished` is deleted that
//! long after it finished (its `Complete` or `Failed` condition), with foreground
//! propagation and a uid precondition, as `pkg/controller/ttlafterfinished` does.

use std::time::Duration;

use crate::json::Value;

use super::{Controllers, Work, field};
use crate::resources::{Propagation, well_known};
use crate::store::{DeleteOptions, meta_str};

/// When the Job finished, in seconds since the epoch, if it has.
fn finished_at(job: &Value) -> Option<i64> {
    field(job, &["status", "conditions"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
}

impl Controllers {
    /// Time left before the Job expires; `None` if it has no TTL or has not finished.
    fn ttl_left(&self, job: &Value) -> Option<Duration> {
        let ttl = field(job, &["spec", "ttlSecondsAfterFinished"])?.as_u64()?;
        let done = finished_at(job)?;
        let now = self.api.store.clock().since_epoch().as_secs_f64();
        let left = (done as f64 + ttl as f64 - now).max(0.0);
        Some(Duration::from_secs_f64(left))
    }

    pub(super) fn arm_ttl(&mut self, ns: &str, name: &str) {
        let Some(job) = self.api.store.lookup(well_known::jobs(), ns, name) else {
            return;
        };
        // Without a TTL `ttl_left` is `None` whatever else holds: the checks before it
        // only read, so a Job without one (most) is done with at once.
        if field(&job, &["spec", "ttlSecondsAfterFinished"]).is_none()
            || meta_str(&job, "deletionTimestamp").is_some()
        {
            return;
        }
        let uid = meta_str(&job, "uid").unwrap_or_default();
        if self.ttl_armed.contains(uid) {
            return;
        }
        if let Some(left) = self.ttl_left(&job) {
            self.ttl_armed.insert(uid.to_owned());
            self.requeue_after(
                left,
                Work::Ttl(ns.to_owned(), name.to_owned(), uid.to_owned()),
            );
        }
    }

    pub(super) fn ttl_expired(&mut self, ns: &str, name: &str, uid: &str) {
        self.ttl_armed.remove(uid);
        let Some(job) = self.api.store.lookup(well_known::jobs(), ns, name) else {
            return;
        };
        if meta_str(&job, "uid") != Some(uid) || meta_str(&job, "deletionTimestamp").is_some() {
            return;
        }
        match self.ttl_left(&job) {
            Some(left) if left.is_zero() => {
                let opts = DeleteOptions {
                    propagation: Some(Propagation::Foreground),
                    uid: Some(uid.to_owned()),
                    ..Default::default()
                };
                if let Err(e) = self.api.store.delete(well_known::jobs(), ns, name, &opts) {
                    tracing::debug!(%e, name, "ttl controller could not delete a job");
                }
            }
            // The TTL changed: look again.
            _ => self.arm_ttl(ns, name),
        }
    }
}
