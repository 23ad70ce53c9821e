//! `cmdreporter run`: run an errand and pass its output and exit status through.

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_core::job::REPORTER_BINARY;
use cmdreporter_core::{Error, JobRunner, Outcome, Request, Runner};
use cmdreporter_fake_cluster::{FakeCluster, ProcessRuntime};

/// Options of `cmdreporter run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Use the embedded fake cluster.
    pub fake: bool,
    /// Namespace.
    pub namespace: String,
    /// Target image.
    pub image: String,
    /// Reporter image.
    pub reporter_image: String,
    /// Base name of the Job.
    pub name: String,
    /// Timeout of the run.
    pub timeout: Duration,
    /// The command.
    pub argv: Vec<String>,
}

/// Errors of `cmdreporter run` itself (exit code 125).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cluster could not be reached or started.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The run failed.
    #[error(transparent)]
    Run(Error),
}

/// Runs the errand and returns its outcome.
pub async fn run(opts: &RunOptions) -> Result<Outcome, RunError> {
    let request = Request::new(opts.image.clone(), opts.argv.clone())
        .namespace(opts.namespace.clone())
        .name(opts.name.clone())
        .reporter_image(opts.reporter_image.clone())
        .timeout(opts.timeout);
    request.validate().map_err(|e| RunError::Run(e.into()))?;
    let (client, _cluster) = if opts.fake {
        let runtime = ProcessRuntime::new().map_err(|e| RunError::Cluster(e.to_string()))?;
        let me = std::env::current_exe().map_err(|e| RunError::Cluster(e.to_string()))?;
        runtime.image_file(&opts.reporter_image, REPORTER_BINARY, me);
        let cluster = FakeCluster::builder()
            .process(runtime)
            .build()
            .await
            .map_err(|e| RunError::Cluster(e.to_string()))?;
        (cluster.client(), Some(cluster))
    } else {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| RunError::Cluster(format!("cannot reach a cluster: {e}")))?;
        (client, None)
    };
    let channel = Arc::new(cmdreporter_configmap::ConfigMapChannel::new(client.clone()));
    let runner = JobRunner::new(client, channel);
    let result = runner.run(request).await;
    runner.shutdown().await;
    result.map_err(RunError::Run)
}

/// The exit code `cmdreporter run` ends with for a result.
pub fn exit_code(result: &Result<Outcome, RunError>) -> i32 {
    match result {
        Ok(o) => o.exit.shell_code(),
        Err(RunError::Run(Error::CommandNotStarted {
            not_found: true, ..
        })) => 127,
        Err(RunError::Run(Error::CommandNotStarted {
            not_found: false, ..
        })) => 126,
        Err(_) => crate::EXIT_CMDREPORTER_ERROR,
    }
}
