//! The [`Runner`] trait and [`JobRunner`]: validate, prepare, dispatch, await the report and
//! the pod's progress together under the timeout, and clean up on every path.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use std::collections::HashMap;

use crate::cache::{CacheKey, ResultCache};
use crate::channel::ResultChannel;
use crate::dispatcher::{Dispatcher, JobDispatcher, PhaseCell, RunContext};
use crate::error::{Error, Phase};
use crate::poll::{check_pod, image_id, outcome_of};
use crate::report::{Outcome, Report};
use crate::request::{RUN_ID_LEN, Request};

/// Runs requests to their outcome. Object-safe.
#[async_trait]
pub trait Runner: Send + Sync {
    /// Runs one request: the command's outcome, or the typed error that ended the run.
    async fn run(&self, request: Request) -> Result<Outcome, Error>;
}

/// Runs requests as Jobs, with one transport.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use cmdreporter_core::{JobRunner, Request, ResultChannel, Runner};
/// # async fn demo(client: kube::Client, channel: Arc<dyn ResultChannel>) -> Result<(), cmdreporter_core::Error> {
/// let runner = JobRunner::new(client, channel);
/// let outcome = runner.run(Request::new("busybox:1.36", ["uname", "-r"])).await?;
/// println!("{}", String::from_utf8_lossy(&outcome.stdout.data));
/// runner.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct JobRunner {
    pub(crate) dispatcher: Arc<dyn Dispatcher>,
    pub(crate) channel: Arc<dyn ResultChannel>,
    pub(crate) cleanups: TaskTracker,
    ids: Mutex<StdRng>,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    pub(crate) cache: Option<Arc<ResultCache>>,
    /// Runs that [`poll`](Self::poll) found finished, by run id.
    pub(crate) done: Mutex<HashMap<String, Arc<Result<Outcome, Error>>>>,
}

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// How many more times a cleanup that failed with a transient error (an API outage longer
/// than the dispatcher's own retries) is tried, in the background, and the pause between
/// tries: with the dispatcher's retries, about five minutes in all.
const CLEANUP_ROUNDS: u32 = 10;
/// The pause between two rounds of [`CLEANUP_ROUNDS`].
const CLEANUP_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Cleans up, trying again for a while when the API answers with transient errors (leaving
/// the Job to its TTL is the last resort).
pub(crate) async fn clean_up_patiently(
    dispatcher: &dyn Dispatcher,
    run: &RunContext,
) -> Result<(), Error> {
    let mut round = 0;
    loop {
        match dispatcher.cleanup(run).await {
            Err(e) if e.is_transient() && round < CLEANUP_ROUNDS => {
                round += 1;
                tracing::debug!(job = %run.job_name, error = %e, round, "cleanup failed; trying again");
                tokio::time::sleep(CLEANUP_PAUSE).await;
            }
            other => return other,
        }
    }
}

/// Deletes the run's objects when dropped unless already done: a dropped run future hands
/// its cleanup to the runner's tracker.
struct CleanupGuard {
    dispatcher: Arc<dyn Dispatcher>,
    run: Option<RunContext>,
    tracker: TaskTracker,
}

impl CleanupGuard {
    async fn finish(mut self) {
        // The run stays armed until the cleanup has finished: a run dropped in the middle of
        // its own cleanup hands it to the tracker like any other dropped run.
        if let Some(run) = self.run.clone() {
            match self.dispatcher.cleanup(&run).await {
                Ok(()) => {}
                // The API is having trouble: the run returns now, and the runner's tracker
                // keeps trying (see `shutdown`).
                Err(e) if e.is_transient() => {
                    tracing::debug!(job = %run.job_name, error = %e, "cleanup failed; trying again in the background");
                    let dispatcher = self.dispatcher.clone();
                    let run = run.clone();
                    self.tracker.spawn(async move {
                        if let Err(e) = clean_up_patiently(dispatcher.as_ref(), &run).await {
                            tracing::warn!(job = %run.job_name, error = %e, "cleanup failed");
                        }
                    });
                }
                Err(e) => tracing::warn!(job = %run.job_name, error = %e, "cleanup failed"),
            }
            self.run = None;
        }
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        let Some(run) = self.run.take() else { return };
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!(job = %run.job_name, "run dropped outside a runtime; the Job's TTL will remove it");
            return;
        }
        let dispatcher = self.dispatcher.clone();
        self.tracker.spawn(async move {
            if let Err(e) = clean_up_patiently(dispatcher.as_ref(), &run).await {
                tracing::warn!(job = %run.job_name, error = %e, "cleanup of a dropped run failed");
            }
        });
    }
}

impl JobRunner {
    /// A runner creating Jobs with `client` and receiving reports through `channel`.
    pub fn new(client: kube::Client, channel: Arc<dyn ResultChannel>) -> Self {
        Self::with_dispatcher(Arc::new(JobDispatcher::new(client)), channel)
    }

    /// A runner with its own dispatcher.
    pub fn with_dispatcher(
        dispatcher: Arc<dyn Dispatcher>,
        channel: Arc<dyn ResultChannel>,
    ) -> Self {
        Self {
            dispatcher,
            channel,
            cleanups: TaskTracker::new(),
            ids: Mutex::new(StdRng::from_os_rng()),
            slots: None,
            cache: None,
            done: Mutex::new(HashMap::new()),
        }
    }

    /// Answers repeated requests (same image, argv, env and transport) from a cache for
    /// `ttl` (forever for a digest-pinned image): a hit makes no API request.
    #[must_use]
    pub fn cache(mut self, ttl: std::time::Duration) -> Self {
        self.cache = Some(Arc::new(ResultCache::new(ttl)));
        self
    }

    /// Runs at most `n` requests at once; the others wait in line, and the wait counts in
    /// their timeout (phase [`Phase::Queued`]).
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.slots = Some(Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        self
    }

    /// Draws run ids from a seeded generator (for reproducible tests).
    #[must_use]
    pub fn seed_run_ids(self, seed: u64) -> Self {
        *self.ids.lock().unwrap_or_else(|e| e.into_inner()) = StdRng::seed_from_u64(seed);
        self
    }

    pub(crate) fn run_id(&self) -> String {
        let mut rng = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        (0..RUN_ID_LEN)
            .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
            .collect()
    }

    /// Waits for every pending cleanup (of dropped runs) to finish.
    pub async fn shutdown(&self) {
        self.cleanups.close();
        self.cleanups.wait().await;
        self.cleanups.reopen();
    }

    async fn run_inner(
        &self,
        req: &Request,
        run: &RunContext,
        phase: &PhaseCell,
        started: Instant,
    ) -> Result<Outcome, Error> {
        let _slot = match &self.slots {
            Some(s) => {
                phase.set(Phase::Queued);
                let permit = s.clone().acquire_owned().await.ok();
                phase.set(Phase::Dispatching);
                permit
            }
            None => None,
        };
        let courier = self.channel.courier(run);
        self.channel.prepare(run).await?;
        let job = self.dispatcher.dispatch(req, run, &courier).await?;
        phase.set(Phase::WaitingForPod);
        let (pods_tx, pods_rx) = tokio::sync::watch::channel(None);
        let report: Report = tokio::select! {
            biased;
            report = self.channel.receive(run, &job, pods_rx.clone()) => report?,
            err = self.dispatcher.progress(&job, pods_tx, phase.clone()) => return Err(err),
        };
        // Only the report of the watched pod (the Job's first) counts.
        let pod = pods_rx.borrow().clone();
        check_pod(&report, pod.as_ref())?;
        let command = req.argv.first().map_or("", String::as_str);
        let mut outcome = outcome_of(report, run, command)?;
        outcome.image_id = pod.as_ref().and_then(image_id);
        outcome.elapsed = started.elapsed();
        Ok(outcome)
    }
}

#[async_trait]
impl Runner for JobRunner {
    async fn run(&self, req: Request) -> Result<Outcome, Error> {
        req.validate()?;
        let cache_key = self
            .cache
            .as_ref()
            .map(|_| CacheKey::new(&req, self.channel.name()));
        if let (Some(cache), Some(key)) = (&self.cache, &cache_key)
            && let Some(hit) = cache.get(key)
        {
            return Ok(hit);
        }
        let result = self.run_uncached(req).await;
        if let (Some(cache), Some(key), Ok(outcome)) = (&self.cache, cache_key, &result) {
            cache.insert(key, outcome.clone());
        }
        result
    }
}

impl JobRunner {
    async fn run_uncached(&self, req: Request) -> Result<Outcome, Error> {
        let run_id = self.run_id();
        let run = RunContext {
            job_name: req.job_name(&run_id),
            namespace: req.namespace.clone(),
            run_id,
        };
        let span = tracing::info_span!("run", job = %run.job_name, transport = self.channel.name());
        async {
            let started = Instant::now();
            let phase = PhaseCell::new(Phase::Dispatching);
            let guard = CleanupGuard {
                dispatcher: self.dispatcher.clone(),
                run: Some(run.clone()),
                tracker: self.cleanups.clone(),
            };
            let result = match tokio::time::timeout(
                req.timeout,
                self.run_inner(&req, &run, &phase, started),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout {
                    timeout: req.timeout,
                    phase: phase.get(),
                }),
            };
            guard.finish().await;
            match &result {
                Ok(o) => tracing::debug!(exit = ?o.exit, "run finished"),
                Err(e) => tracing::debug!(error = %e, "run failed"),
            }
            result
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::future::{BoxFuture, pending};
    use k8s_openapi::api::core::v1::Pod;
    use tokio::sync::watch;

    use super::*;
    use crate::channel::PodState;
    use crate::dispatcher::{DispatchedJob, PhaseCell};
    use crate::job::CourierSpec;
    use crate::report::{Captured, ExitStatus, ReportedExit, SCHEMA_VERSION};

    type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

    // The signatures are those `async_trait` expands the traits' methods to, so that an
    // expectation can return a future that never resolves.
    mockall::mock! {
        Disp {}
        impl Dispatcher for Disp {
            fn dispatch<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 self, req: &'life1 Request, run: &'life2 RunContext, courier: &'life3 CourierSpec)
                -> Fut<'async_trait, Result<DispatchedJob, Error>>
                where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn progress<'life0, 'life1, 'async_trait>(&'life0 self, job: &'life1 DispatchedJob, pods: watch::Sender<Option<Pod>>, phase: PhaseCell)
                -> Fut<'async_trait, Error>
                where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
            fn cleanup<'life0, 'life1, 'async_trait>(&'life0 self, run: &'life1 RunContext) -> Fut<'async_trait, Result<(), Error>>
                where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
        }
    }

    mockall::mock! {
        Chan {}
        impl ResultChannel for Chan {
            fn name(&self) -> &str;
            fn courier(&self, run: &RunContext) -> CourierSpec;
            fn prepare<'life0, 'life1, 'async_trait>(&'life0 self, run: &'life1 RunContext) -> Fut<'async_trait, Result<(), Error>>
                where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
            fn receive<'life0, 'life1, 'life2, 'async_trait>(&'life0 self, run: &'life1 RunContext, job: &'life2 DispatchedJob, pod: PodState)
                -> Fut<'async_trait, Result<Report, Error>>
                where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, Self: 'async_trait;
        }
    }

    fn job() -> DispatchedJob {
        DispatchedJob {
            name: "j".into(),
            namespace: "default".into(),
            uid: "u".into(),
        }
    }

    fn report(run_id: &str) -> Report {
        Report {
            schema_version: SCHEMA_VERSION.into(),
            run_id: run_id.into(),
            pod_uid: "p".into(),
            exit: ReportedExit::Exited(ExitStatus::Code(0)),
            stdout: Captured::complete(b"ok".to_vec()),
            stderr: Captured::default(),
        }
    }

    /// A dispatcher whose dispatch succeeds and whose cleanup must run exactly once.
    fn dispatcher(progress: impl Fn() -> BoxFuture<'static, Error> + Send + 'static) -> MockDisp {
        let mut d = MockDisp::new();
        d.expect_dispatch()
            .returning(|_, _, _| Box::pin(async { Ok(job()) }));
        d.expect_progress().returning(move |_, _, _| progress());
        d.expect_cleanup()
            .times(1)
            .returning(|_| Box::pin(async { Ok(()) }));
        d
    }

    fn channel(
        receive: impl Fn(String) -> BoxFuture<'static, Result<Report, Error>> + Send + 'static,
    ) -> MockChan {
        let mut c = MockChan::new();
        c.expect_name().return_const("mock".to_owned());
        c.expect_courier().returning(|_| CourierSpec::default());
        c.expect_prepare().returning(|_| Box::pin(async { Ok(()) }));
        c.expect_receive()
            .returning(move |run, _, _| receive(run.run_id.clone()));
        c
    }

    fn runner(d: MockDisp, c: MockChan) -> JobRunner {
        JobRunner::with_dispatcher(Arc::new(d), Arc::new(c))
    }

    fn request() -> Request {
        Request::new("busybox", ["true"]).timeout(Duration::from_secs(10))
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_report_wins_over_a_progress_error() {
        let d = dispatcher(|| {
            Box::pin(async {
                Error::Unschedulable {
                    message: "no".into(),
                }
            })
        });
        let c = channel(|id| Box::pin(async move { Ok(report(&id)) }));
        let outcome = runner(d, c).run(request()).await.unwrap();
        assert_eq!(outcome.stdout.data, b"ok");
    }

    #[tokio::test(start_paused = true)]
    async fn a_progress_error_ends_a_run_without_report() {
        let d = dispatcher(|| {
            Box::pin(async {
                Error::Unschedulable {
                    message: "0/1 nodes".into(),
                }
            })
        });
        let c = channel(|_| Box::pin(pending()));
        let err = runner(d, c).run(request()).await.unwrap_err();
        assert!(matches!(err, Error::Unschedulable { .. }), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_carries_the_phase_the_progress_watch_set() {
        let mut d = MockDisp::new();
        d.expect_dispatch()
            .returning(|_, _, _| Box::pin(async { Ok(job()) }));
        d.expect_progress().returning(|_, _, phase| {
            phase.set(Phase::Scheduling);
            Box::pin(pending())
        });
        d.expect_cleanup()
            .times(1)
            .returning(|_| Box::pin(async { Ok(()) }));
        let c = channel(|_| Box::pin(pending()));
        let err = runner(d, c).run(request()).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    phase: Phase::Scheduling,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_report_of_another_run_is_refused() {
        let d = dispatcher(|| Box::pin(pending()));
        let c = channel(|_| Box::pin(async { Ok(report("someone-else")) }));
        let err = runner(d, c).run(request()).await.unwrap_err();
        assert!(matches!(err, Error::CorruptReport(_)), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn cleanup_runs_when_dispatch_fails() {
        let mut d = MockDisp::new();
        d.expect_dispatch().returning(|_, _, _| {
            Box::pin(async {
                Err(Error::JobFailed {
                    reason: "x".into(),
                    message: "y".into(),
                })
            })
        });
        d.expect_progress().never();
        d.expect_cleanup()
            .times(1)
            .returning(|_| Box::pin(async { Ok(()) }));
        let c = channel(|_| Box::pin(pending()));
        assert!(runner(d, c).run(request()).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_request_touches_nothing() {
        let mut d = MockDisp::new();
        d.expect_dispatch().never();
        d.expect_cleanup().never();
        let mut c = MockChan::new();
        c.expect_prepare().never();
        let err = runner(d, c)
            .run(Request::new("busybox", Vec::<String>::new()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(e) if e.field == "argv"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_run_hands_its_cleanup_to_shutdown() {
        let waiting = Arc::new(tokio::sync::Notify::new());
        let notify = waiting.clone();
        let d = dispatcher(move || {
            notify.notify_one();
            Box::pin(pending())
        });
        let c = channel(|_| Box::pin(pending()));
        let runner = Arc::new(runner(d, c));
        let task = {
            let runner = runner.clone();
            tokio::spawn(async move { runner.run(request()).await })
        };
        // Drop the run once it waits for its pod.
        waiting.notified().await;
        task.abort();
        let _ = task.await;
        // `times(1)` on cleanup is checked when the mock drops, after shutdown ran it.
        runner.shutdown().await;
    }
}
