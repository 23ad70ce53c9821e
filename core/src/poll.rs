//! Non-blocking runs for reconcile loops: [`JobRunner::start`] returns a small serialisable
//! [`RunKey`] to keep in a custom resource's status, and [`JobRunner::poll`] answers at
//! once. After an operator restart, a new runner polls the stored key and picks the run up
//! where it stands; cleanup still happens once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use crate::cache::CacheKey;
use crate::classify::{PodSignal, classify};
use crate::clock::{epoch_ms, from_epoch_ms, wall_now};
use crate::dispatcher::{DispatchedJob, RunContext, deleted_or};
use crate::error::{Error, Phase};
use crate::grace::{phase_of, polled_error};
use crate::report::{Outcome, Report, ReportedExit};
use crate::request::Request;
use crate::runner::JobRunner;

/// Everything needed to find a run again, even from another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunKey {
    /// Namespace of the Job.
    pub namespace: String,
    /// Name of the Job.
    pub job_name: String,
    /// Uid of the Job.
    pub job_uid: String,
    /// The run id.
    pub run_id: String,
    /// `argv[0]`, to name a command that could not start.
    pub command: String,
    /// When the run times out, in milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// The timeout the run was started with, in milliseconds.
    pub timeout_ms: u64,
    /// The run's key in the runner's result cache, when the runner has one: a poll that
    /// finds the outcome keeps it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<CacheKey>,
}

impl RunKey {
    fn run(&self) -> RunContext {
        RunContext {
            run_id: self.run_id.clone(),
            namespace: self.namespace.clone(),
            job_name: self.job_name.clone(),
        }
    }

    fn job(&self) -> DispatchedJob {
        DispatchedJob {
            name: self.job_name.clone(),
            namespace: self.namespace.clone(),
            uid: self.job_uid.clone(),
        }
    }
}

/// Where a polled run stands.
#[derive(Debug, Clone)]
pub enum RunStatus {
    /// Not finished; the phase it is in.
    Pending(Phase),
    /// Finished: the outcome or the error (shared: a run is finished once).
    Done(Arc<Result<Outcome, Error>>),
}

fn now_ms() -> u64 {
    epoch_ms(wall_now())
}

impl RunKey {
    /// When the run was started.
    pub fn started(&self) -> SystemTime {
        from_epoch_ms(self.deadline_ms.saturating_sub(self.timeout_ms))
    }
}

pub(crate) fn outcome_of(
    report: Report,
    run: &RunContext,
    command: &str,
) -> Result<Outcome, Error> {
    if report.run_id != run.run_id {
        return Err(Error::CorruptReport(format!(
            "report of run {:?} received for run {:?}",
            report.run_id, run.run_id
        )));
    }
    report.check_version()?;
    match report.exit {
        ReportedExit::Exited(exit) => Ok(Outcome {
            exit,
            stdout: report.stdout,
            stderr: report.stderr,
            run_id: run.run_id.clone(),
            job_name: run.job_name.clone(),
            image_id: None,
            elapsed: Duration::ZERO,
        }),
        ReportedExit::NotStarted { not_found, message } => Err(Error::CommandNotStarted {
            command: command.to_owned(),
            not_found,
            message,
        }),
    }
}

/// Refuses a report written in another pod than the run's (first) pod, when it is known.
pub(crate) fn check_pod(report: &Report, pod: Option<&Pod>) -> Result<(), Error> {
    match pod.and_then(|p| p.metadata.uid.as_deref()) {
        Some(uid) if uid != report.pod_uid => Err(Error::CorruptReport(format!(
            "report of pod {:?}, not of the watched pod {uid:?}",
            report.pod_uid
        ))),
        _ => Ok(()),
    }
}

/// The image ID the pod's main container ran, once its status shows it.
pub(crate) fn image_id(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == crate::job::MAIN_CONTAINER)
        .map(|c| c.image_id.clone())
        .filter(|i| !i.is_empty())
}

impl JobRunner {
    /// Validates and dispatches a run, and returns its key at once (one API request, the
    /// Job's creation). Follow it with [`poll`](Self::poll).
    pub async fn start(&self, req: Request) -> Result<RunKey, Error> {
        req.validate()?;
        let run_id = self.run_id();
        let run = RunContext {
            job_name: req.job_name(&run_id),
            namespace: req.namespace.clone(),
            run_id,
        };
        let courier = self.channel.courier(&run);
        self.channel.prepare(&run).await?;
        let job = match self.dispatcher.dispatch(&req, &run, &courier).await {
            Ok(job) => job,
            Err(e) => {
                let _ = self.dispatcher.cleanup(&run).await;
                return Err(e);
            }
        };
        let timeout_ms = u64::try_from(req.timeout.as_millis()).unwrap_or(u64::MAX);
        let cache_key = self
            .cache
            .as_ref()
            .map(|_| CacheKey::new(&req, self.channel.name()));
        Ok(RunKey {
            namespace: run.namespace,
            job_name: run.job_name,
            job_uid: job.uid,
            run_id: run.run_id,
            command: req.argv.first().cloned().unwrap_or_default(),
            deadline_ms: now_ms().saturating_add(timeout_ms),
            timeout_ms,
            cache_key,
        })
    }

    /// The cached outcome of a request like `req`, if the runner has a cache and it holds
    /// one: no API request. A reconcile loop asks this before [`start`](Self::start); a poll
    /// that finds a run done fills the cache.
    pub fn cached(&self, req: &Request) -> Option<Outcome> {
        let cache = self.cache.as_ref()?;
        cache.get(&CacheKey::new(req, self.channel.name()))
    }

    /// Where the run stands, without waiting: at most two API requests (the Job's pods, then
    /// the transport's one look, or the Job's events when it has no pod), none once the run
    /// is done. When a poll finds the run finished, the Job's deletion is handed to the
    /// runner's cleanup tasks (see [`shutdown`](Self::shutdown)).
    ///
    /// A condition that can still clear ends the run only once its grace period (the
    /// dispatcher's [`GracePeriods`](crate::GracePeriods), as for
    /// [`run`](crate::Runner::run)) is over, counted from the pod's own timestamps, so that
    /// it holds across operator restarts; the Job's `FailedCreate` events are looked at
    /// only once the pod-creation grace has passed since the start.
    pub async fn poll(&self, key: &RunKey) -> Result<RunStatus, Error> {
        if let Some(done) = self.finished(&key.run_id) {
            return Ok(RunStatus::Done(done));
        }
        let run = key.run();
        let job = key.job();
        let graces = self.dispatcher.graces();
        let started = key.started();
        let look_for_events = wall_now() >= started + graces.pod_creation;
        let inspection = self.dispatcher.inspect(&job, look_for_events).await?;
        let result = match &inspection.pod {
            None => inspection
                .failed_create
                .clone()
                .map(|message| Err(Error::PodRejected { message })),
            Some(pod) => match self.channel.try_receive(&run, &job, Some(pod)).await? {
                Some(report) => Some(check_pod(&report, Some(pod)).and_then(|()| {
                    outcome_of(report, &run, &key.command).map(|mut o| {
                        o.image_id = image_id(pod);
                        o
                    })
                })),
                None => polled_error(
                    pod,
                    deleted_or(pod, classify(pod)),
                    &graces,
                    started,
                    wall_now(),
                )
                .map(Err),
            },
        };
        let phase = match &inspection.pod {
            None => Phase::WaitingForPod,
            Some(p) => match classify(p) {
                PodSignal::CourierEnded { exit_code: 0, .. } => Phase::Reporting,
                signal => phase_of(&signal),
            },
        };
        let result = match result {
            Some(r) => r,
            None if now_ms() >= key.deadline_ms => Err(Error::Timeout {
                timeout: Duration::from_millis(key.timeout_ms),
                phase,
            }),
            None => return Ok(RunStatus::Pending(phase)),
        };
        Ok(RunStatus::Done(self.finish(key, result)))
    }

    /// Gives a run up, for a reconcile loop whose resource changed while it ran: the Job's
    /// deletion is handed to the runner's cleanup tasks (see [`shutdown`](Self::shutdown)),
    /// as when a poll finds a run done, and a later poll of the key answers `Done` with
    /// [`Error::JobFailed`] of reason `Cancelled`. Nothing when the run is already done
    /// (its cleanup is under way). Makes no request itself; works with a key stored by
    /// another process.
    pub fn cancel(&self, key: &RunKey) {
        let cancelled = Error::JobFailed {
            reason: "Cancelled".into(),
            message: format!("run {} was cancelled by its operator", key.run_id),
        };
        let _ = self.finish(key, Err(cancelled));
    }

    fn finished(&self, run_id: &str) -> Option<Arc<Result<Outcome, Error>>> {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(run_id)
            .cloned()
    }

    /// Records a finished run once and hands its cleanup to the tracker.
    fn finish(&self, key: &RunKey, result: Result<Outcome, Error>) -> Arc<Result<Outcome, Error>> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = done.get(&key.run_id) {
            return existing.clone();
        }
        if let (Some(cache), Some(cache_key), Ok(outcome)) = (&self.cache, &key.cache_key, &result)
        {
            cache.insert(cache_key.clone(), outcome.clone());
        }
        let result = Arc::new(result);
        done.insert(key.run_id.clone(), result.clone());
        drop(done);
        let dispatcher = self.dispatcher.clone();
        let run = key.run();
        self.cleanups.spawn(async move {
            if let Err(e) = crate::runner::clean_up_patiently(dispatcher.as_ref(), &run).await {
                tracing::warn!(job = %run.job_name, error = %e, "cleanup of a polled run failed");
            }
        });
        result
    }
}
