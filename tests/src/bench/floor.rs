//! The floor: the same number of `kube::Client` round trips as a run makes, against an echo
//! service that answers each request with its own body, in the same process and run. A
//! run's cost divided by this is its ratio to the floor.

use std::convert::Infallible;
use std::time::Instant;

use bytes::Bytes;
use cmdreporter_core::Request;
use cmdreporter_core::job::{CourierSpec, build_job};
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};
use serde_json::json;

/// Seconds per round trip through `kube::Client` against the echo service, over `n` trips.
///
/// The trips are made from a task of the runtime, as the runs are (each run is a spawned
/// task): from the thread blocked in `block_on`, every trip also paid for waking a worker
/// thread for the client's buffer task and being woken back, which the runs' own requests
/// mostly do not, and the floor read 27-55 µs per trip instead of 9-10 µs.
pub async fn seconds_per_round_trip(n: usize) -> f64 {
    match tokio::spawn(trips(n)).await {
        Ok(seconds) => seconds,
        // A failed measurement fails the program, as it did when the trips ran here.
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the floor's task was cancelled: {e}"),
        },
    }
}

async fn trips(n: usize) -> f64 {
    let echo = tower::service_fn(|req: http::Request<kube::client::Body>| async move {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, Infallible>(http::Response::new(Full::<Bytes>::new(body)))
    });
    let client = kube::Client::new(echo, "default");
    let api: Api<Job> = Api::namespaced(client, "default");
    let job = build_job(
        &Request::new("busybox:1", ["/bin/version"]),
        "abcdefghij",
        &CourierSpec::default(),
    );
    let pp = PostParams::default();
    // Warm up.
    for _ in 0..100 {
        let _ = api.create(&pp, &job).await;
    }
    let start = Instant::now();
    for _ in 0..n {
        if api.create(&pp, &job).await.is_err() {
            break;
        }
    }
    start.elapsed().as_secs_f64() / n as f64
}

/// Prints the floor for `requests_per_run` round trips.
pub async fn run(requests_per_run: f64, quick: bool) -> f64 {
    let per_trip = seconds_per_round_trip(if quick { 2_000 } else { 20_000 }).await;
    let per_run = per_trip * requests_per_run;
    println!(
        "{}",
        json!({"section": "floor", "round_trip_us": per_trip * 1e6,
               "requests_per_run": requests_per_run, "floor_per_run_us": per_run * 1e6,
               "floor_runs_per_second": 1.0 / per_run})
    );
    per_run
}
