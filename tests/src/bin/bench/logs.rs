//! Section `logs`: the operator's peak heap while it reads a 6 MiB report of random bytes
//! from a pod log (target: under three times the payload), two ways:
//! - `codec`: the reader alone over the log bytes, fed in 16 KiB reads as an HTTP body
//!   arrives; the log itself is allocated before the measurement starts;
//! - `e2e`: a whole run on the fake cluster (scripted runtime, the real courier), measured
//!   from the termination of the main container to the report, inside `receive`: the
//!   operator's GET and parse, plus the in-process fake API server's copy of the log body
//!   (a real API server's copy is not in the operator's process).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cmdreporter_core::channel::{PodState, ResultChannel};
use cmdreporter_core::dispatcher::{DispatchedJob, RunContext};
use cmdreporter_core::job::{CourierSpec, MAIN_CONTAINER};
use cmdreporter_core::{
    Captured, Error, ExitStatus, JobRunner, Report, ReportedExit, Request, Runner,
};
use cmdreporter_fake_cluster::ScriptedImage;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_k8s_logs::reader::{Expected, ReadLimits, read_report};
use cmdreporter_k8s_logs::{LogsChannel, encode_frame};
use cmdreporter_tests::bench::alloc;
use cmdreporter_tests::{cluster, scripted_runtime};
use serde_json::json;

const PAYLOAD: usize = 6 * 1024 * 1024;
const IMAGE: &str = "bench-logs:1";

fn mib(n: usize) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

async fn codec() {
    let report = Report {
        schema_version: "1.0".into(),
        run_id: "bench".into(),
        pod_uid: "pod".into(),
        exit: ReportedExit::Exited(ExitStatus::Code(0)),
        stdout: Captured::complete(cmdreporter_tests::bench::largest::noise(PAYLOAD)),
        stderr: Captured::default(),
    };
    let log = encode_frame(&report, &Default::default())
        .map(|f| f.to_bytes())
        .unwrap_or_default();
    let expected = Expected {
        run_id: "bench".into(),
        pod_uid: Some("pod".into()),
    };
    let base = alloc::live();
    alloc::reset_peak();
    let started = Instant::now();
    let body = futures::io::BufReader::with_capacity(16 * 1024, &log[..]);
    let got = read_report(body, &expected, &ReadLimits::default()).await;
    let took = started.elapsed();
    let peak = alloc::peak() - base;
    let ok = got
        .as_ref()
        .is_ok_and(|r| r.stdout.data == report.stdout.data);
    println!(
        "{}",
        json!({"section": "logs", "measure": "codec", "payload_bytes": PAYLOAD, "log_bytes": log.len(),
            "peak_heap_bytes": peak, "peak_mib": mib(peak), "ratio_to_payload": peak as f64 / PAYLOAD as f64,
            "read_ms": took.as_millis(), "byte_exact": ok})
    );
}

/// The logs channel, measuring the heap from the main container's termination (the log
/// is complete and the courier gone) to the report.
struct Measured {
    inner: LogsChannel,
    peak: Arc<std::sync::Mutex<Option<(usize, Duration)>>>,
}

#[async_trait]
impl ResultChannel for Measured {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn courier(&self, run: &RunContext) -> CourierSpec {
        self.inner.courier(run)
    }

    async fn receive(
        &self,
        run: &RunContext,
        job: &DispatchedJob,
        mut pod: PodState,
    ) -> Result<Report, Error> {
        loop {
            let ended = pod.borrow_and_update().as_ref().is_some_and(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c.name == MAIN_CONTAINER
                            && c.state.as_ref().is_some_and(|s| s.terminated.is_some())
                    })
            });
            if ended {
                break;
            }
            if pod.changed().await.is_err() {
                return futures::future::pending().await;
            }
        }
        let base = alloc::live();
        alloc::reset_peak();
        let started = Instant::now();
        let report = self.inner.receive(run, job, pod).await;
        let took = started.elapsed();
        *self.peak.lock().unwrap_or_else(|e| e.into_inner()) = Some((alloc::peak() - base, took));
        report
    }
}

async fn e2e() {
    let rt = scripted_runtime();
    rt.image(
        IMAGE,
        ScriptedImage::new().program("/bin/noise", |ctx: ProgramContext| async move {
            for chunk in cmdreporter_tests::bench::largest::noise(PAYLOAD).chunks(64 * 1024) {
                ctx.write_stdout(chunk).await;
            }
            Exit::Code(0)
        }),
    );
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let peak = Arc::new(std::sync::Mutex::new(None));
    let channel = Arc::new(Measured {
        inner: LogsChannel::new(client.clone()),
        peak: peak.clone(),
    });
    let runner = JobRunner::new(client, channel);
    let started = Instant::now();
    let result = runner
        .run(Request::new(IMAGE, ["/bin/noise"]).timeout(Duration::from_secs(600)))
        .await;
    let total = started.elapsed();
    runner.shutdown().await;
    let ok = result
        .as_ref()
        .is_ok_and(|o| o.stdout.data == cmdreporter_tests::bench::largest::noise(PAYLOAD));
    if let Err(e) = &result {
        eprintln!("bench logs e2e: run failed: {e}");
    }
    let (peak, took) = peak
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_default();
    println!(
        "{}",
        json!({"section": "logs", "measure": "e2e", "payload_bytes": PAYLOAD,
            "peak_heap_bytes": peak, "peak_mib": mib(peak), "ratio_to_payload": peak as f64 / PAYLOAD as f64,
            "receive_ms": took.as_millis(), "run_ms": total.as_millis(),
            "requests": cluster.journal().len(), "byte_exact": ok})
    );
}

/// Runs the section (`quick` changes nothing: one measurement each).
pub async fn run(_quick: bool) {
    codec().await;
    e2e().await;
}
