//! The real `kubectl` (on PATH; it picks its version from the server's `/version`) against
//! a cluster served over HTTPS with its own CA.
//!
//! kubectl must be installed: when it is missing a test using it fails, it does not skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use cmdreporter_fake_cluster::FakeCluster;
use tokio::process::Command;

pub fn find_kubectl() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubectl is not on PATH ({}): the kubectl conformance test needs it; install kubectl",
                path.to_string_lossy()
            )
        })
}

/// A kubectl with its own kubeconfig, cache and home.
pub struct Kubectl {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    /// A kubectl command.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl to the end: (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 60 s"))
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs kubectl and asserts success: its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    /// Writes a file in the kubectl's directory: its path.
    pub fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }
}

/// A cluster served over HTTPS and a kubectl configured for it.
pub async fn served() -> (
    FakeCluster,
    cmdreporter_fake_cluster::ServedCluster,
    Kubectl,
) {
    let bin = find_kubectl();
    let cluster = FakeCluster::builder().build().await.unwrap();
    let served = cluster
        .serve_https("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    served
        .write_kubeconfig(&dir.path().join("kubeconfig"))
        .unwrap();
    (cluster, served, Kubectl { bin, dir })
}
