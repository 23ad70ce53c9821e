//! An operator learns which version of a tool an image holds, as Rook learns the Ceph
//! version of `quay.io/ceph/ceph:v18`: it runs `bash --version` in the image as a Job,
//! reads the report, and parses the first line.
//!
//! ```sh
//! cargo run --example detect_version            # on the embedded fake cluster
//! cargo run --example detect_version -- IMAGE   # another image, still on the fake
//! ```
//!
//! On the fake cluster (process runtime) containers are local processes, so `bash` is this
//! machine's; the reporter image's `/cmdreporter` is this example's own executable, which
//! is why `main` answers `report` and `install` as the `cmdreporter` binary does. Against
//! a real cluster, build the client with `kube::Client::try_default()` instead and use a
//! reporter image that holds the static `cmdreporter` binary (see the README).

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_cli::{OsHost, courier_main};
use cmdreporter_configmap::ConfigMapChannel;
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_core::{JobRunner, Request, Runner};

/// What can go wrong when detecting a version.
#[derive(Debug, thiserror::Error)]
enum DetectError {
    #[error(transparent)]
    Run(#[from] cmdreporter_core::Error),
    #[error("`bash --version` exited with {0:?}: {1}")]
    Failed(cmdreporter_core::ExitStatus, String),
    #[error("no version in {0:?}")]
    Unparsable(String),
}

/// Runs `bash --version` in `image` and returns the version, e.g. `5.2.15`.
async fn bash_version(runner: &dyn Runner, image: &str) -> Result<String, DetectError> {
    let request = Request::new(image, ["bash", "--version"])
        .name("bash-version")
        .timeout(Duration::from_secs(90));
    let outcome = runner.run(request).await?;
    let stdout = String::from_utf8_lossy(&outcome.stdout.data).into_owned();
    if !outcome.exit.success() {
        let stderr = String::from_utf8_lossy(&outcome.stderr.data).into_owned();
        return Err(DetectError::Failed(outcome.exit, stderr));
    }
    parse_version(&stdout).ok_or(DetectError::Unparsable(stdout))
}

/// `GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)` gives `5.2.15`.
fn parse_version(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let after = first.split("version ").nth(1)?;
    let version: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!version.is_empty()).then_some(version)
}

async fn operator(image: &str) -> Result<String, Box<dyn std::error::Error>> {
    // The embedded fake cluster; a real operator would use kube::Client::try_default().
    let cluster =
        cmdreporter_cli::cluster::start_fake(&[DEFAULT_REPORTER_IMAGE.into()], &[]).await?;
    let client = cluster.client();
    let runner = JobRunner::new(client.clone(), Arc::new(ConfigMapChannel::new(client)));
    let version = bash_version(&runner, image).await;
    runner.shutdown().await;
    Ok(version?)
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    // In the fake cluster's pods this executable is the courier.
    if matches!(argv.get(1).map(String::as_str), Some("report" | "install")) {
        std::process::exit(courier_main(&argv, &OsHost::new()).await);
    }
    let image = argv
        .get(1)
        .map_or("docker.io/library/bash:5.2", String::as_str);
    match operator(image).await {
        Ok(v) => println!("{image} holds bash {v}"),
        Err(e) => {
            eprintln!("detect_version: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_bash_version_lines() {
        let line = "GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)\nCopyright";
        assert_eq!(super::parse_version(line).as_deref(), Some("5.2.15"));
        assert_eq!(super::parse_version("bash"), None);
    }
}
