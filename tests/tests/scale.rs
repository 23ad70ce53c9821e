//! A thousand concurrent runs on one API server: shared watches keep the number of open
//! watches constant, the bound on in-flight runs queues the rest, and the client-side rate
//! limit holds. Scripted runtime, paused time.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cmdreporter_configmap::ConfigMapChannel;
use cmdreporter_core::rate_limit::RateLimitLayer;
use cmdreporter_core::{JobDispatcher, JobRunner, Request, Runner};
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{FakeService, ScriptedImage};
use cmdreporter_tests::{cluster, leftovers, scripted_runtime, wait_for_store};
use http_body::{Body, Frame};
use tokio::time::Instant;
use tower::Layer;

/// What the operator's client sent: when each request left, and watches open at once.
#[derive(Default)]
struct Meter {
    sent: Mutex<Vec<Instant>>,
    open_watches: AtomicUsize,
    max_open_watches: AtomicUsize,
}

#[derive(Clone)]
struct Metered<S> {
    inner: S,
    meter: Arc<Meter>,
}

/// A response body that counts as an open watch until dropped.
struct WatchBody<B> {
    inner: B,
    meter: Option<Arc<Meter>>,
}

impl<B> Drop for WatchBody<B> {
    fn drop(&mut self) {
        if let Some(m) = &self.meter {
            m.open_watches.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for WatchBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
}

impl<S, B> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<cmdreporter_fake_cluster::api::ResponseBody>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<WatchBody<cmdreporter_fake_cluster::api::ResponseBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let meter = self.meter.clone();
        meter.sent.lock().unwrap().push(Instant::now());
        let is_watch = req.uri().query().is_some_and(|q| q.contains("watch=true"));
        if is_watch {
            let open = meter.open_watches.fetch_add(1, Ordering::SeqCst) + 1;
            meter.max_open_watches.fetch_max(open, Ordering::SeqCst);
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let (parts, inner) = resp.into_parts();
            let body = WatchBody {
                inner,
                meter: is_watch.then_some(meter),
            };
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

fn image() -> ScriptedImage {
    ScriptedImage::new().program("/bin/id", |ctx: ProgramContext| async move {
        // Each run prints its own argument, so a mixed-up report would show.
        let arg = ctx.argv[1].clone();
        tokio::time::sleep(Duration::from_millis(500)).await;
        ctx.write_stdout(arg.as_bytes()).await;
        Exit::Code(0)
    })
}

/// The largest number of requests sent within any window of `window`.
fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut q: VecDeque<Instant> = VecDeque::new();
    let mut best = 0;
    for &t in times {
        q.push_back(t);
        while let Some(&front) = q.front() {
            if t.duration_since(front) >= window {
                q.pop_front();
            } else {
                break;
            }
        }
        best = best.max(q.len());
    }
    best
}

#[tokio::test(start_paused = true)]
async fn a_thousand_runs_share_a_constant_number_of_watches() {
    const RUNS: usize = 1000;
    const QPS: f64 = 50.0;
    const BURST: u32 = 20;
    let rt = scripted_runtime();
    rt.image("tools:1", image());
    let cluster = cluster(rt).await;
    let meter = Arc::new(Meter::default());
    let service = RateLimitLayer::new(QPS, BURST).layer(Metered {
        inner: FakeService::new(cluster.api().clone()),
        meter: meter.clone(),
    });
    let client = kube::Client::new(service, "default");
    let dispatcher = Arc::new(JobDispatcher::new(client.clone()).shared_watches());
    let channel = Arc::new(ConfigMapChannel::new(client.clone()).shared_watches());
    let runner = Arc::new(
        JobRunner::with_dispatcher(dispatcher.clone(), channel.clone()).max_in_flight(200),
    );

    let mut tasks = Vec::new();
    for i in 0..RUNS {
        let runner = runner.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::new("tools:1", ["/bin/id".to_owned(), format!("run-{i}")])
                .name("scale")
                .timeout(Duration::from_secs(3600));
            (i, runner.run(req).await)
        }));
    }
    for t in tasks {
        let (i, result) = t.await.unwrap();
        let outcome = result.unwrap_or_else(|e| panic!("run {i}: {e}"));
        assert_eq!(outcome.stdout.data, format!("run-{i}").into_bytes());
    }
    runner.shutdown().await;

    let max_watches = meter.max_open_watches.load(Ordering::SeqCst);
    let server_peak = cluster.store().peak_open_watches();
    println!("max open watches: {max_watches} (client side), {server_peak} (server side)");
    assert_eq!(
        server_peak, max_watches,
        "the fake cluster counts the same watches"
    );
    // One pod watch and one ConfigMap watch for the namespace, plus at most one shared
    // FailedCreate event watch; restarts after an idle moment may overlap briefly.
    assert!(max_watches <= 4, "{max_watches} watches open at once");
    let sent = meter.sent.lock().unwrap().clone();
    let peak = max_in_window(&sent, Duration::from_secs(1));
    println!("requests: {}, most in one second: {peak}", sent.len());
    assert!(
        peak as f64 <= QPS + f64::from(BURST),
        "{peak} requests in one second"
    );
    assert!(
        sent.len() >= 2 * RUNS,
        "every run created and deleted its Job"
    );
    wait_for_store(&cluster, || leftovers(&cluster, "default").is_empty()).await;
    assert_eq!(
        dispatcher.open_shared_watches() + channel.open_shared_watches(),
        0,
        "idle hubs stop"
    );
}
