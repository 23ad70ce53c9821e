//! Runs per second and API requests per run, in-process (fake cluster, scripted runtime,
//! the real courier function), at several concurrencies, for each transport.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cmdreporter_core::{JobRunner, Request, Runner};
use cmdreporter_fake_cluster::ScriptedImage;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use serde_json::json;

use crate::{Transport, cluster, scripted_runtime};

/// The image of the benchmark runs.
pub const IMAGE: &str = "bench:1";

/// Its one program prints a version.
pub fn image() -> ScriptedImage {
    ScriptedImage::new().program("/bin/version", |ctx: ProgramContext| async move {
        ctx.write_stdout(b"v18.2.0\n").await;
        Exit::Code(0)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `total` runs with `concurrency` in flight; prints one JSON line and returns it.
pub async fn measure(transport: Transport, concurrency: usize, total: usize) -> serde_json::Value {
    let rt = scripted_runtime();
    rt.image(IMAGE, image());
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let runner = Arc::new(JobRunner::new(client.clone(), transport.channel(client)));
    super::alloc::reset_peak();
    let start_live = super::alloc::live();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let runner = runner.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let t = Instant::now();
                let req = Request::new(IMAGE, ["/bin/version"]).timeout(Duration::from_secs(600));
                match runner.run(req).await {
                    Ok(o) if o.stdout.data == b"v18.2.0\n" => latencies.push(t.elapsed()),
                    Ok(o) => panic!("wrong output {:?}", o.stdout),
                    Err(e) => panic!("run failed: {e}"),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    runner.shutdown().await;
    latencies.sort();
    let requests = cluster.journal().len();
    let result = json!({
        "section": "runs",
        "transport": format!("{transport:?}"),
        "concurrency": concurrency,
        "runs": latencies.len(),
        "seconds": elapsed.as_secs_f64(),
        "runs_per_second": latencies.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        "p99_ms": percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        "requests_per_run": requests as f64 / latencies.len().max(1) as f64,
        "peak_heap_mib": (super::alloc::peak().saturating_sub(start_live)) as f64 / 1048576.0,
    });
    println!("{result}");
    result
}

/// What the section measures: runs per concurrency, concurrencies, transports.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Runs per measurement at concurrency above 1 (a quarter of it at concurrency 1).
    pub total: usize,
    /// The concurrencies, in order.
    pub concurrencies: Vec<usize>,
    /// The transports, in order.
    pub transports: Vec<Transport>,
}

impl Plan {
    /// The default plan (2,000 runs, or 200 with `quick`; concurrency 1, 16 and 256; every
    /// transport), changed by the options `--runs=N`, `--concurrency=1,16,...` and
    /// `--transport=configmap|logs` among `args`.
    pub fn from_args(quick: bool, args: &[String]) -> Result<Self, String> {
        let mut plan = Plan {
            total: if quick { 200 } else { 2000 },
            concurrencies: vec![1, 16, 256],
            transports: Transport::all().to_vec(),
        };
        for a in args {
            if let Some(n) = a.strip_prefix("--runs=") {
                plan.total = n
                    .parse()
                    .map_err(|_| format!("--runs: not a number: {n}"))?;
            } else if let Some(list) = a.strip_prefix("--concurrency=") {
                plan.concurrencies = list
                    .split(',')
                    .map(|c| {
                        c.parse()
                            .map_err(|_| format!("--concurrency: not a number: {c}"))
                    })
                    .collect::<Result<_, _>>()?;
            } else if let Some(t) = a.strip_prefix("--transport=") {
                plan.transports = vec![match t {
                    "configmap" => Transport::ConfigMap,
                    "logs" => Transport::Logs,
                    _ => return Err(format!("--transport: configmap or logs, not {t}")),
                }];
            }
        }
        Ok(plan)
    }
}

/// The whole section; returns the ConfigMap transport's requests per run and seconds per
/// run at concurrency 1, for the floor ratio.
pub async fn run(plan: &Plan) -> Option<(f64, f64)> {
    let total = plan.total;
    let mut serial = None;
    for &t in &plan.transports {
        for &c in &plan.concurrencies {
            let r = measure(t, c, if c == 1 { (total / 4).max(1) } else { total }).await;
            if c == 1 && t == Transport::ConfigMap {
                let rps = r["runs_per_second"].as_f64().unwrap_or(0.0);
                let requests = r["requests_per_run"].as_f64().unwrap_or(0.0);
                if rps > 0.0 {
                    serial = Some((requests, 1.0 / rps));
                }
            }
        }
    }
    serial
}
