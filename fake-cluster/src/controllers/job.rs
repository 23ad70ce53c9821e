//! The Job controller, after `pkg/controller/job` (Kubernetes 1.33), for NonIndexed Jobs:
//!
//! - pods from the template, `generateName: <job>-`, a controller ownerReference
//!   (`controller` and `blockOwnerDeletion` true) and the `batch.kubernetes.io/job-tracking`
//!   finalizer, which the controller removes once it has counted the finished pod into
//!   `status.succeeded` or `status.failed` (so counts survive the pod's deletion);
//! - up to `parallelism` active pods, a new one for each failed pod while the failures stay
//!   within `backoffLimit`, after the controller's back-off (10 s doubling per failure, at
//!   most 6 min, as `DefaultJobPodFailureBackOff`);
//! - a deleted pod counts as failed unless `podReplacementPolicy: Failed` or a
//!   `podFailurePolicy` is set, in which case only a pod in phase Failed does;
//! - terminal conditions after the pods have ended: `SuccessCriteriaMet` then `Complete`,
//!   `FailureTarget` then `Failed` (reasons `BackoffLimitExceeded`, `DeadlineExceeded`,
//!   `PodFailurePolicy`); active pods are deleted gracefully once a failure target is set;
//! - Events SuccessfulCreate, FailedCreate (`Error creating: <server message>`, retried with
//!   back-off), SuccessfulDelete, Completed, and the failure reason.

use std::sync::Arc;
use std::time::Duration;

use crate::json::{Value, json};
use tokio::time::Instant;

use super::active_pods;
use super::pod_failure_policy::{Verdict, judge};
use super::{Controllers, JobMemo, Work, field, has_condition, has_finalizer, owner_refs};
use crate::resources::well_known;
use crate::store::{Change, DeleteOptions, meta_str};

/// The finalizer the Job controller puts on its pods until it has counted them.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// Back-off before replacing a failed pod: 10 s, doubled per further failure.
const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// The longest back-off before replacing a failed pod.
const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(360);

fn phase(p: &Value) -> &str {
    field(p, &["status", "phase"])
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

fn terminal(p: &Value) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

fn deleting(p: &Value) -> bool {
    meta_str(p, "deletionTimestamp").is_some()
}

fn int(job: &Value, path: &[&str], default: u64) -> u64 {
    field(job, path).and_then(Value::as_u64).unwrap_or(default)
}

fn start_time_missing(job: &Value) -> bool {
    field(job, &["status", "startTime"]).is_none()
}

fn controller_uid(pod: &Value) -> Option<&str> {
    owner_refs(pod)
        .find(|r| r["controller"] == true && r["kind"] == "Job")
        .and_then(|r| r["uid"].as_str())
}

impl Controllers {
    /// A pod changed: its Job (if any) is queued for reconciliation; a tracked pod whose Job is gone loses
    /// its finalizer, as the real controller does for orphan pods.
    pub(super) fn job_pod_changed(&mut self, c: &Change) {
        let owner = owner_refs(&c.object)
            .find(|r| r["kind"] == "Job" && r["controller"] == true)
            .and_then(|r| Some((r["name"].as_str()?, r["uid"].as_str()?)));
        let tracked = has_finalizer(&c.object, TRACKING_FINALIZER);
        match owner {
            Some((name, uid)) => {
                let live = self
                    .api
                    .store
                    .lookup(well_known::jobs(), &c.namespace, name)
                    .is_some_and(|j| meta_str(&j, "uid") == Some(uid));
                if live {
                    self.enqueue_job(&c.namespace, name);
                } else if tracked {
                    self.remove_finalizer(
                        well_known::pods(),
                        &c.namespace,
                        &c.name,
                        TRACKING_FINALIZER,
                    );
                }
            }
            None if tracked && c.kind != crate::store::ChangeType::Deleted => {
                self.remove_finalizer(
                    well_known::pods(),
                    &c.namespace,
                    &c.name,
                    TRACKING_FINALIZER,
                );
            }
            None => {}
        }
    }

    fn job_pods(&self, ns: &str, uid: &str) -> Vec<Arc<Value>> {
        let pods = well_known::pods();
        self.index
            .dependents_of(uid)
            .filter(|(def, pns, _)| *def == pods && *pns == ns)
            .filter_map(|(_, _, name)| self.api.store.lookup(pods, ns, name))
            .filter(|p| controller_uid(p) == Some(uid))
            .collect()
    }

    pub(super) fn reconcile_job(&mut self, ns: &str, name: &str) {
        let jobs = well_known::jobs();
        let Some(job) = self.api.store.lookup(jobs, ns, name) else {
            return;
        };
        // `Complete` or `Failed` True, in one walk of the conditions.
        if field(&job, &["status", "conditions"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| {
                matches!(
                    c.get("type").and_then(Value::as_str),
                    Some("Complete" | "Failed")
                ) && c["status"] == "True"
            })
        {
            return;
        }
        let uid = meta_str(&job, "uid").unwrap_or_default().to_owned();
        let clock = self.api.store.clock().clone();
        let now = clock.now_rfc3339_seconds();
        let pods = self.job_pods(ns, &uid);
        let policy = field(&job, &["spec", "podFailurePolicy"]);
        let only_failed = policy.is_some()
            || field(&job, &["spec", "podReplacementPolicy"]).and_then(Value::as_str)
                == Some("Failed");

        // Count finished pods that still carry the tracking finalizer.
        let mut succeeded = int(&job, &["status", "succeeded"], 0);
        let mut failed = int(&job, &["status", "failed"], 0);
        let mut failure: Option<(String, String)> = None;
        let mut newly_failed = 0;
        for p in &pods {
            if !has_finalizer(p, TRACKING_FINALIZER) {
                continue;
            }
            let pname = meta_str(p, "name").unwrap_or_default();
            let unbound = field(p, &["spec", "nodeName"]).is_none();
            let p_phase = phase(p);
            let is_failed = p_phase == "Failed"
                || (deleting(p) && p_phase != "Succeeded" && (!only_failed || unbound));
            if p_phase == "Succeeded" {
                succeeded += 1;
            } else if is_failed {
                match policy.map(|pol| judge(pol, p)) {
                    Some(Verdict::Ignore) => {}
                    Some(Verdict::FailJob(msg)) => {
                        failed += 1;
                        newly_failed += 1;
                        failure.get_or_insert(("PodFailurePolicy".into(), msg));
                    }
                    Some(Verdict::Count) | None => {
                        failed += 1;
                        newly_failed += 1;
                    }
                }
            } else {
                continue;
            }
            self.remove_finalizer(well_known::pods(), ns, pname, TRACKING_FINALIZER);
        }
        let memo = self.jobs.entry(uid.clone()).or_default();
        if start_time_missing(&job) {
            memo.started.get_or_insert_with(Instant::now);
        }
        if newly_failed > 0 {
            let exp = (failed.saturating_sub(1)).min(10) as u32;
            let backoff = POD_FAILURE_BACKOFF
                .saturating_mul(2u32.saturating_pow(exp))
                .min(MAX_POD_FAILURE_BACKOFF);
            memo.not_before = Some(Instant::now() + backoff);
        }

        let active: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| !terminal(p) && !deleting(p))
            .collect();
        let terminating = pods.iter().filter(|p| !terminal(p) && deleting(p)).count();
        let ready = active.iter().filter(|p| has_condition(p, "Ready")).count();
        let backoff_limit = int(&job, &["spec", "backoffLimit"], 6);
        let completions = int(&job, &["spec", "completions"], 1);
        let parallelism = int(&job, &["spec", "parallelism"], 1);
        let started_at = field(&job, &["status", "startTime"])
            .and_then(Value::as_str)
            .unwrap_or(&now);

        // Deadline: measured from the start (startTime, or the exact instant this controller
        // set it), checked again by a timer.
        if let Some(secs) = field(&job, &["spec", "activeDeadlineSeconds"]).and_then(Value::as_u64)
        {
            let elapsed = match memo.started {
                Some(t) => t.elapsed().as_secs_f64(),
                None => started_at
                    .parse::<jiff::Timestamp>()
                    .map(|t| clock.since_epoch().as_secs_f64() - t.as_second() as f64)
                    .unwrap_or(0.0),
            };
            if elapsed >= secs as f64 {
                if failure.is_none() {
                    failure = Some((
                        "DeadlineExceeded".into(),
                        "Job was active longer than specified deadline".into(),
                    ));
                }
            } else if !memo.deadline_armed {
                memo.deadline_armed = true;
                let left = Duration::from_secs_f64(secs as f64 - elapsed);
                self.requeue_after(left, Work::Job(ns.to_owned(), name.to_owned()));
            }
        }
        if failure.is_none() && failed > backoff_limit {
            failure = Some((
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into(),
            ));
        }

        // The conditions read (borrowed) and those this reconcile adds: the status gets
        // both, in this order, when there are any.
        let read_conditions: &[Value] = field(&job, &["status", "conditions"])
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let mut conditions: Vec<Value> = Vec::new();
        let cond = |kind: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": "True", "reason": reason, "message": message,
                   "lastProbeTime": now, "lastTransitionTime": now})
        };
        let existing_target = read_conditions
            .iter()
            .find(|c| c["type"] == "FailureTarget" && c["status"] == "True")
            .map(|c| {
                (
                    c["reason"].as_str().unwrap_or_default().to_owned(),
                    c["message"].as_str().unwrap_or_default().to_owned(),
                )
            });
        let mut finished: Option<(&str, String, String)> = None;
        let mut created = 0;
        let mut removed = 0;
        let mut to_delete: Vec<&Arc<Value>> = Vec::new();
        if let Some((reason, message)) = existing_target.or(failure.clone()) {
            if !has_condition(&job, "FailureTarget") {
                conditions.push(cond("FailureTarget", &reason, &message));
            }
            to_delete = active.clone();
            if active.is_empty() && terminating == 0 {
                conditions.push(cond("Failed", &reason, &message));
                finished = Some(("Failed", reason, message));
            }
        } else if succeeded >= completions {
            if !has_condition(&job, "SuccessCriteriaMet") {
                conditions.push(cond(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
            }
            to_delete = active.clone();
            if active.is_empty() && terminating == 0 {
                conditions.push(cond(
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
                finished = Some(("Complete", String::new(), String::new()));
            }
        } else if !deleting(&job) && field(&job, &["spec", "suspend"]) != Some(&Value::Bool(true)) {
            let want_active = parallelism.min(completions.saturating_sub(succeeded));
            // Too many active pods (a second pod for the same Job): `manageJob` deletes the
            // excess, its tracking finalizer removed first so it is not counted as failed.
            let excess = (active.len() as u64).saturating_sub(want_active) as usize;
            let excess = active_pods::for_removal(&active, excess);
            let busy = active.len() as u64 + if only_failed { terminating as u64 } else { 0 };
            let want = want_active.saturating_sub(busy);
            let memo = self.jobs.entry(uid.clone()).or_default();
            let wait = memo.not_before.filter(|t| *t > Instant::now());
            for p in excess {
                let pname = meta_str(p, "name").unwrap_or_default();
                self.remove_finalizer(well_known::pods(), ns, pname, TRACKING_FINALIZER);
                if self
                    .api
                    .store
                    .delete(well_known::pods(), ns, pname, &DeleteOptions::default())
                    .is_ok()
                {
                    removed += 1;
                    self.event(
                        &job,
                        "job-controller",
                        "Normal",
                        "SuccessfulDelete",
                        &format!("Deleted pod: {pname}"),
                    );
                }
            }
            if want > 0 {
                match wait {
                    Some(t) => {
                        let left = t - Instant::now();
                        self.requeue_after(left, Work::Job(ns.to_owned(), name.to_owned()));
                    }
                    None => {
                        for _ in 0..want {
                            if self.create_pod(&job) {
                                created += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
            }
        }
        for p in to_delete {
            let pname = meta_str(p, "name").unwrap_or_default();
            if self
                .api
                .store
                .delete(well_known::pods(), ns, pname, &DeleteOptions::default())
                .is_ok()
            {
                self.event(
                    &job,
                    "job-controller",
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {pname}"),
                );
            }
        }
        let complete = matches!(finished, Some(("Complete", _, _)));
        let apply = |status: &mut Value| {
            if !status.is_object() {
                *status = json!({});
            }
            if status.get("startTime").is_none() {
                status["startTime"] = json!(started_at);
            }
            let active_now = if finished.is_some() {
                0
            } else {
                active.len() + created - removed
            };
            let set = |status: &mut Value, k: &str, v: u64| match status.as_object_mut() {
                Some(m) if v == 0 => {
                    m.remove(k);
                }
                _ => status[k] = json!(v),
            };
            set(status, "active", active_now as u64);
            set(status, "succeeded", succeeded);
            set(status, "failed", failed);
            status["ready"] = json!(ready);
            status["terminating"] = json!(terminating);
            status["uncountedTerminatedPods"] = json!({});
            if !read_conditions.is_empty() || !conditions.is_empty() {
                status["conditions"] =
                    Value::Array(read_conditions.iter().chain(&conditions).cloned().collect());
            }
            if complete {
                status["completionTime"] = json!(now);
            }
        };
        // As the real controller, write the status only when it changes (a write copies
        // the whole Job). Whether `apply` would change the status read is decided from the
        // values it would write, without copying the status to apply it.
        let current = job.get("status");
        let unchanged = current.and_then(Value::as_object).is_some_and(|m| {
            let number = |k: &str, v: u64| m.get(k) == Some(&Value::from(v));
            let active_now = if finished.is_some() {
                0
            } else {
                (active.len() + created - removed) as u64
            };
            // `set`: a zero removes the field, anything else writes it.
            let kept = |k: &str, v: u64| {
                if v == 0 {
                    !m.contains_key(k)
                } else {
                    number(k, v)
                }
            };
            m.contains_key("startTime")
                && kept("active", active_now)
                && kept("succeeded", succeeded)
                && kept("failed", failed)
                && number("ready", ready as u64)
                && number("terminating", terminating as u64)
                && m.get("uncountedTerminatedPods") == Some(&json!({}))
                // No condition added: the ones read are written back as they are (an
                // added one always makes the list differ from the one read).
                && conditions.is_empty()
                && (!complete
                    || m.get("completionTime").and_then(Value::as_str) == Some(now.as_str()))
        });
        #[cfg(debug_assertions)]
        {
            let mut applied = current.cloned().unwrap_or(Value::Null);
            apply(&mut applied);
            debug_assert_eq!(
                unchanged,
                current == Some(&applied),
                "status check of {name}"
            );
        }
        if unchanged {
            return;
        }
        // A status-only write: the store then knows the spec (and so the generation) is
        // unchanged. `apply` runs on the store's copy of the stored status: for a Job
        // unchanged since it was read, a copy of the status read, so this writes what
        // applying to a copy made here would (without that second copy); a Job changed
        // meanwhile gets `apply` on its own status, as always.
        let result = self.api.store.modify_status(jobs, ns, name, |_, s| {
            apply(s);
            Ok(())
        });
        match (&finished, result) {
            (Some(("Complete", _, _)), Ok(j)) => {
                self.event(&j, "job-controller", "Normal", "Completed", "Job completed");
            }
            (Some((_, reason, message)), Ok(j)) => {
                self.event(&j, "job-controller", "Warning", reason, message);
            }
            _ => {}
        }
    }

    /// Creates one pod of `job`; false (with a FailedCreate Event and a retry after a
    /// back-off) when the server refuses it.
    fn create_pod(&mut self, job: &Value) -> bool {
        let ns = meta_str(job, "namespace").unwrap_or_default().to_owned();
        let name = meta_str(job, "name").unwrap_or_default().to_owned();
        let uid = meta_str(job, "uid").unwrap_or_default().to_owned();
        let template = field(job, &["spec", "template"]);
        let part = |k: &str| {
            template
                .and_then(|t| t.get(k))
                .cloned()
                .unwrap_or(json!({}))
        };
        // Built directly: `json!` would serialise the two copies into a third.
        let mut pod = Value::Object(crate::json::Map::from_iter([
            ("metadata".to_owned(), part("metadata")),
            ("spec".to_owned(), part("spec")),
        ]));
        let meta = &mut pod["metadata"];
        meta["generateName"] = json!(format!("{name}-"));
        meta["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": name,
            "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
        meta["finalizers"] = json!([TRACKING_FINALIZER]);
        if let Some(m) = meta.as_object_mut() {
            m.remove("name");
            m.remove("namespace");
        }
        match self.api.create(well_known::pods(), &ns, pod) {
            Ok(p) => {
                self.jobs.entry(uid).or_default().create_failures = 0;
                let msg = format!("Created pod: {}", meta_str(&p, "name").unwrap_or_default());
                self.event(job, "job-controller", "Normal", "SuccessfulCreate", &msg);
                true
            }
            Err(e) => {
                let memo: &mut JobMemo = self.jobs.entry(uid).or_default();
                memo.create_failures += 1;
                let exp = memo.create_failures.min(7) - 1;
                let backoff = Duration::from_millis(500 * 2u64.pow(exp));
                memo.not_before = Some(Instant::now() + backoff);
                self.requeue_after(backoff, Work::Job(ns, name));
                self.event(
                    job,
                    "job-controller",
                    "Warning",
                    "FailedCreate",
                    &format!("Error creating: {}", e.message),
                );
                false
            }
        }
    }
}
