//! The process runtime over loopback HTTPS with the real `cmdreporter` binary as the
//! courier: a whole run (Job, pod, init container installing the binary, main container
//! running `cmdreporter report`, the report back to the operator, cleanup) against spawning
//! `cmdreporter report` directly with the same command, in the same program run.
//!
//! The binary is the release `cmdreporter` next to this program (`cargo build --release -p
//! cmdreporter-cli` builds it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cmdreporter_core::job::REPORTER_BINARY;
use cmdreporter_core::reporter_image::DEFAULT_REPORTER_IMAGE;
use cmdreporter_core::{JobRunner, Request, Runner};
use cmdreporter_fake_cluster::{FakeCluster, ProcessRuntime};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use crate::Transport;

/// The command both ways.
const COMMAND: &str = "/bin/true";

/// The `cmdreporter` binary beside the running program, if built.
pub fn cmdreporter_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.join("cmdreporter");
    bin.is_file().then_some(bin)
}

/// Seconds per direct spawn of `cmdreporter report --transport logs -- /bin/true`, its
/// stdout (the framed report) read to the end, over `n` spawns.
fn direct(bin: &Path, n: usize) -> Result<f64, String> {
    let log = std::env::temp_dir().join(format!("cmdreporter-bench-{}", std::process::id()));
    let start = Instant::now();
    for i in 0..n {
        let out = Command::new(bin)
            .args(["report", "--transport", "logs", "--run-id"])
            .arg(format!("direct{i}"))
            .args(["--", COMMAND])
            .env("CMDREPORTER_JOB_NAME", "bench")
            .env("CMDREPORTER_JOB_UID", "bench-uid")
            .env("CMDREPORTER_NAMESPACE", "default")
            .env("CMDREPORTER_POD_UID", "bench-pod")
            .env("CMDREPORTER_TERMINATION_LOG", &log)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        if !out.status.success() || !out.stdout.starts_with(b"\ncmdreporter:v1:begin") {
            return Err(format!(
                "direct report failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    let _ = std::fs::remove_file(&log);
    Ok(per)
}

/// A cluster on the process runtime, served over loopback HTTPS, and an operator client
/// that reaches it through that server.
async fn served_cluster(
    bin: &Path,
) -> Result<
    (
        FakeCluster,
        cmdreporter_fake_cluster::ServedCluster,
        kube::Client,
    ),
    String,
> {
    let runtime = ProcessRuntime::new().map_err(|e| e.to_string())?;
    runtime.image_file(DEFAULT_REPORTER_IMAGE, REPORTER_BINARY, bin.to_path_buf());
    let cluster = FakeCluster::builder()
        .process(runtime)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let addr = ([127, 0, 0, 1], 0).into();
    let served = cluster.serve_https(addr).await.map_err(|e| e.to_string())?;
    let kc = Kubeconfig::from_yaml(&served.kubeconfig_yaml()).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    Ok((cluster, served, client))
}

/// Seconds per whole run with `transport`, over `n` runs one after the other (after one
/// warm-up run).
async fn whole(client: &kube::Client, transport: Transport, n: usize) -> Result<f64, String> {
    let runner = JobRunner::new(client.clone(), transport.channel(client.clone()));
    let req = || Request::new("busybox:1", [COMMAND]).timeout(Duration::from_secs(60));
    runner
        .run(req())
        .await
        .map_err(|e| format!("warm-up run: {e}"))?;
    let start = Instant::now();
    for i in 0..n {
        let o = runner
            .run(req())
            .await
            .map_err(|e| format!("run {i}: {e}"))?;
        if !o.exit.success() {
            return Err(format!("run {i}: {:?}", o.exit));
        }
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    runner.shutdown().await;
    Ok(per)
}

/// The whole section: one JSON line per transport, with the direct spawn's cost and the
/// ratio, measured in the same run.
pub async fn run(quick: bool) {
    let n = if quick { 10 } else { 50 };
    let Some(bin) = cmdreporter_binary() else {
        println!(
            "{}",
            json!({"section": "process", "error": "no cmdreporter binary beside this program: cargo build --release -p cmdreporter-cli"})
        );
        return;
    };
    let result = async {
        let direct_s = direct(&bin, n)?;
        let (cluster, _served, client) = served_cluster(&bin).await?;
        let mut lines = Vec::new();
        for &t in Transport::all() {
            let run_s = whole(&client, t, n).await?;
            lines.push(json!({"section": "process", "transport": format!("{t:?}"),
                "runs": n, "run_ms": run_s * 1e3, "direct_report_ms": direct_s * 1e3,
                "overhead_ms": (run_s - direct_s) * 1e3, "ratio": run_s / direct_s,
                "requests_per_run": cluster.journal().len() as f64 / (n + 1) as f64}));
            cluster.journal().clear();
        }
        Ok::<_, String>(lines)
    }
    .await;
    match result {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => println!("{}", json!({"section": "process", "error": e})),
    }
}
