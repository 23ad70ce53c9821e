//! `cmdreporter run`: run an errand on a cluster and summarise what happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cmdreporter_core::{Error, JobDispatcher, JobRunner, Outcome, Request, Runner};
use tokio::signal::unix::{SignalKind, signal};

use crate::cluster::{ClusterError, Target, connect};
use crate::progress::{Progress, ProgressChannel, ProgressDispatcher, Sink};
use crate::transport::{self, TransportError};

/// Options of `cmdreporter run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The cluster.
    pub target: Target,
    /// Namespace of the Job (`None`: the kubeconfig context's, or `default`).
    pub namespace: Option<String>,
    /// Target image.
    pub image: String,
    /// Reporter image.
    pub reporter_image: String,
    /// Transport name.
    pub transport: String,
    /// Base name of the Job.
    pub name: String,
    /// Timeout of the run.
    pub timeout: Duration,
    /// Service account of the pod.
    pub service_account: Option<String>,
    /// The command.
    pub argv: Vec<String>,
}

/// Errors of `cmdreporter run` itself.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The transport cannot be used.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// No cluster.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The run failed.
    #[error(transparent)]
    Run(#[from] Error),
    /// The process could not set itself up (signal handlers).
    #[error("{0}")]
    Setup(String),
    /// A signal stopped the run; the Job was deleted.
    #[error("interrupted by signal {signal}; the run's Job was deleted")]
    Interrupted {
        /// The signal number.
        signal: i32,
    },
}

/// What a run did.
#[derive(Debug)]
pub struct RunSummary {
    /// The outcome or the error.
    pub result: Result<Outcome, RunError>,
    /// The transport.
    pub transport: String,
    /// The namespace.
    pub namespace: String,
    /// The Job's name, once created.
    pub job: Option<String>,
    /// From the start of `run` to the end of cleanup.
    pub duration: Duration,
    /// API requests of the whole run (operator and courier), when known (with the fake).
    pub api_requests: Option<usize>,
}

impl RunOptions {
    fn request(&self, namespace: &str) -> Request {
        let mut req = Request::new(self.image.clone(), self.argv.clone())
            .namespace(namespace)
            .name(self.name.clone())
            .reporter_image(self.reporter_image.clone())
            .timeout(self.timeout);
        if let Some(sa) = &self.service_account {
            req = req.service_account(sa.clone());
        }
        req
    }
}

/// Runs the errand; progress lines go to `sink`.
pub async fn run(opts: &RunOptions, sink: Option<Sink>) -> RunSummary {
    let started = Instant::now();
    let mut summary = RunSummary {
        result: Err(RunError::Interrupted { signal: 0 }),
        transport: opts.transport.clone(),
        namespace: opts.namespace.clone().unwrap_or_else(|| "default".into()),
        job: None,
        duration: Duration::ZERO,
        api_requests: None,
    };
    summary.result = run_inner(opts, sink, &mut summary).await;
    summary.duration = started.elapsed();
    summary
}

async fn run_inner(
    opts: &RunOptions,
    sink: Option<Sink>,
    summary: &mut RunSummary,
) -> Result<Outcome, RunError> {
    transport::check(&opts.transport)?;
    // Invalid input fails before any connection is made.
    opts.request(&summary.namespace)
        .validate()
        .map_err(Error::from)?;
    let cluster = connect(&opts.target).await?;
    if opts.namespace.is_none() {
        summary.namespace = cluster.default_namespace.clone();
    }
    let request = opts.request(&summary.namespace);
    let progress = Progress::new(sink);
    let channel = transport::channel(&opts.transport, cluster.client.clone())?;
    let runner = JobRunner::with_dispatcher(
        Arc::new(ProgressDispatcher::new(
            Arc::new(JobDispatcher::new(cluster.client.clone())),
            progress.clone(),
        )),
        Arc::new(ProgressChannel::new(channel, progress.clone())),
    );
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            return Err(RunError::Setup(format!("cannot handle signals: {e}")));
        }
    };
    let result = tokio::select! {
        r = runner.run(request) => r.map_err(RunError::from),
        _ = int.recv() => Err(RunError::Interrupted { signal: 2 }),
        _ = term.recv() => Err(RunError::Interrupted { signal: 15 }),
    };
    // A dropped run hands its cleanup to the runner: wait for it.
    runner.shutdown().await;
    summary.job = progress.job().map(|j| j.name);
    summary.api_requests = cluster.fake.as_ref().map(|c| c.journal().len());
    result
}
