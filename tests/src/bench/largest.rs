//! The largest result each transport carries intact, and the peak heap while a run of that
//! size is received: for each transport, a binary search (to 1 KiB) over the size of a
//! command's stdout of random bytes (incompressible, and not UTF-8, so the ConfigMap
//! transport puts it in `binaryData`), each step a whole run on the fake cluster (scripted
//! runtime, the real courier function, in-process API); then one more run of the largest
//! size with the heap measured.
//!
//! The peak is of the whole process over the run, above the live heap when the run starts:
//! the operator's copies (the response or watch event, the decoded report) **plus** the
//! in-process courier's and fake API server's (request body, stored object, event line),
//! which a real cluster keeps out of the operator's process; it is an upper bound of the
//! operator's own.

use std::time::{Duration, Instant};

use cmdreporter_core::{JobRunner, Request, Runner};
use cmdreporter_fake_cluster::ScriptedImage;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use serde_json::json;

use crate::{Transport, cluster, scripted_runtime};

const IMAGE: &str = "bench-largest:1";
/// The search's upper end: above what either transport carries.
const CEILING: usize = 16 * 1024 * 1024;
/// The search's resolution.
const STEP: usize = 1024;

/// `len` pseudo-random bytes, the same for the same `len`.
pub fn noise(len: usize) -> Vec<u8> {
    crate::noise(len, 0x9e37_79b9_7f4a_7c15)
}

/// One run printing `len` bytes; whether they came back whole (not truncated, byte-exact),
/// with the peak heap above the start of the run and the run's time.
async fn carry(transport: Transport, len: usize) -> (bool, usize, Duration) {
    let rt = scripted_runtime();
    rt.image(
        IMAGE,
        ScriptedImage::new().program("/bin/noise", move |ctx: ProgramContext| async move {
            for chunk in noise(len).chunks(64 * 1024) {
                ctx.write_stdout(chunk).await;
            }
            Exit::Code(0)
        }),
    );
    let cluster = cluster(rt).await;
    let client = cluster.client();
    let runner = JobRunner::new(client.clone(), transport.channel(client));
    let expected = noise(len);
    let base = super::alloc::live();
    super::alloc::reset_peak();
    let started = Instant::now();
    let result = runner
        .run(Request::new(IMAGE, ["/bin/noise"]).timeout(Duration::from_secs(120)))
        .await;
    let took = started.elapsed();
    let peak = super::alloc::peak().saturating_sub(base);
    runner.shutdown().await;
    let whole = result.is_ok_and(|o| {
        o.stdout.total_bytes == len as u64 && o.stdout.data == expected && o.exit.success()
    });
    (whole, peak, took)
}

/// The largest size carried whole, to [`STEP`], searched between 0 and [`CEILING`].
async fn largest(transport: Transport) -> (usize, usize) {
    let (mut lo, mut hi) = (0, CEILING);
    let mut steps = 0;
    if carry(transport, hi).await.0 {
        return (hi, 1);
    }
    while hi - lo > STEP {
        let mid = (lo + (hi - lo) / 2) / STEP * STEP;
        let mid = mid.max(lo + STEP);
        steps += 1;
        if carry(transport, mid).await.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo, steps)
}

/// The section: one JSON line per transport.
pub async fn run(_quick: bool) {
    for &t in Transport::all() {
        let (size, steps) = largest(t).await;
        let (whole, peak, took) = carry(t, size).await;
        println!(
            "{}",
            json!({"section": "largest", "transport": format!("{t:?}"),
                "largest_whole_bytes": size, "largest_whole_mib": size as f64 / 1048576.0,
                "resolution_bytes": STEP, "search_runs": steps + 1, "byte_exact": whole,
                "peak_heap_bytes": peak, "peak_heap_mib": peak as f64 / 1048576.0,
                "peak_over_payload": peak as f64 / size.max(1) as f64,
                "run_ms": took.as_secs_f64() * 1e3})
        );
    }
}
