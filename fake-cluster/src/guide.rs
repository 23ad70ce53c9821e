//! # Guide: moving a test suite to the fake cluster
//!
//! From hand-written `tower-test` request scripts, or from `kube-fake-client`, to an
//! in-memory API server that `kube::Client` (and kubectl) cannot tell from a real one.
//! This page has no items; it is documentation with runnable examples.
//!
//! ## Why move
//!
//! A `tower_test::mock::pair` script answers the requests you predicted, in the order you
//! predicted: a refactor that adds a GET, or kube-runtime's watcher asking for a LIST
//! with different parameters, breaks the test although the code is right. A fake client
//! without watches cannot drive a kube-runtime `Controller`, `watcher` or
//! `await_condition`. The fake cluster keeps state instead of a script: objects with
//! resourceVersions, uids and generations, watches (resume, bookmarks, 410), server-side
//! apply, strategic merge patch, custom resources with their schema and subresources,
//! garbage collection, a Job controller and a kubelet. The test states what exists
//! first, runs the code, and checks what exists after, and how many requests it took.
//!
//! ## 1. The client
//!
//! Before, with `tower-test`:
//!
//! ```ignore
//! let (mock_service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
//! let client = kube::Client::new(mock_service, "default");
//! ```
//!
//! After: a cluster, and a client of it (in-process: no sockets, no TLS).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cmdreporter_fake_cluster::FakeCluster;
//! let cluster = FakeCluster::builder().build().await?;
//! let client: kube::Client = cluster.client();
//! # let _ = client;
//! # Ok(())
//! # }
//! ```
//!
//! With `kube-fake-client`, `ClientBuilder::new().build().await?` becomes the same two
//! lines. Keep the [`FakeCluster`](crate::FakeCluster) alive for the whole test: dropping
//! it stops its controllers.
//!
//! ## 2. Scripted answers become objects
//!
//! Before: the test plays the API server, request by request.
//!
//! ```ignore
//! tokio::spawn(async move {
//!     let (request, send) = handle.next_request().await.expect("a GET");
//!     assert_eq!(request.method(), http::Method::GET);
//!     assert_eq!(request.uri().path(), "/api/v1/namespaces/default/configmaps/settings");
//!     let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
//!         "metadata": {"name": "settings", "resourceVersion": "1"}, "data": {"mode": "fast"}});
//!     send.send_response(Response::builder().body(Body::from(serde_json::to_vec(&cm)?))?);
//! });
//! ```
//!
//! After: the objects exist, and the code asks for them however it likes. Seed them
//! through the API, or from YAML with [`harness::seed_yaml`](crate::harness::seed_yaml)
//! (`kube-fake-client`'s initial objects go here too):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cmdreporter_fake_cluster::{FakeCluster, harness};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::Api;
//!
//! let cluster = FakeCluster::builder().build().await?;
//! harness::seed_yaml(&cluster, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n")?;
//!
//! // The code under test:
//! let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
//! let mode = cms.get("settings").await?.data.unwrap_or_default().remove("mode");
//! assert_eq!(mode.as_deref(), Some("fast"));
//! # Ok(())
//! # }
//! ```
//!
//! ## 3. Custom resources
//!
//! `kube-fake-client` registers a CRD's type in its registry; here the definition is
//! served as a real server serves it: discovery, every served version, `status` and
//! `scale` subresources, schema validation (422 with causes) and pruning, printer columns
//! for kubectl, and deleting the definition deletes its objects. From a
//! `#[derive(CustomResource)]` type, in one line: [`FakeCluster::register`](crate::FakeCluster::register)
//! (or [`Builder::crd`](crate::Builder::crd) before start); a definition in YAML can be
//! seeded or `kubectl apply`-ed like any object.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cmdreporter_fake_cluster::FakeCluster;
//! use kube::api::{Api, Patch, PatchParams, PostParams};
//! use kube::CustomResource;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
//! #[kube(group = "example.com", version = "v1", kind = "Widget", namespaced, status = "WidgetStatus")]
//! pub struct WidgetSpec { size: i64 }
//! #[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
//! pub struct WidgetStatus { ready: bool }
//!
//! let cluster = FakeCluster::builder().crd::<Widget>().build().await?;
//! let widgets: Api<Widget> = Api::default_namespaced(cluster.client());
//! widgets.create(&PostParams::default(), &Widget::new("w", WidgetSpec { size: 3 })).await?;
//! let w = widgets
//!     .patch_status("w", &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": {"ready": true}})))
//!     .await?;
//! assert!(w.status.unwrap().ready);
//! // The schema is enforced: a string where an integer belongs is a 422.
//! use kube::{CustomResourceExt, api::DynamicObject};
//! let untyped: Api<DynamicObject> =
//!     Api::default_namespaced_with(cluster.client(), &Widget::api_resource());
//! let bad = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget",
//!     "metadata": {"name": "bad"}, "spec": {"size": "big"}});
//! let err = untyped.create(&PostParams::default(), &serde_json::from_value(bad)?).await;
//! assert!(matches!(err, Err(kube::Error::Api(s)) if s.code == 422));
//! # Ok(())
//! # }
//! ```
//!
//! ## 4. Asserting requests becomes asserting state, and counting
//!
//! Before, each `handle.next_request()` asserted one method and path, and the test failed
//! when the code sent one request more. After, assert the outcome (objects, their status,
//! Events), and where the number of requests matters, count them:
//! [`RequestCounts`](crate::harness::RequestCounts) groups the
//! [journal](crate::FakeCluster::journal) by verb and resource (`configmaps`,
//! `jobs.batch`, `widgets.example.com/status`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use cmdreporter_fake_cluster::FakeCluster;
//! # use k8s_openapi::api::core::v1::ConfigMap;
//! # use kube::api::{Api, PostParams};
//! use cmdreporter_fake_cluster::harness::RequestCounts;
//! # let cluster = FakeCluster::builder().build().await?;
//! # let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
//! # let mut cm = ConfigMap::default();
//! # cm.metadata.name = Some("a".into());
//! # cms.create(&PostParams::default(), &cm).await?;
//! let counts = RequestCounts::of(cluster.journal());
//! assert_eq!(counts.get("create", "configmaps"), 1);
//! assert_eq!(counts.get("list", "configmaps"), 0, "no needless list");
//! # Ok(())
//! # }
//! ```
//!
//! ## 5. Scripted errors become a fault plan
//!
//! Before, a script answered one request with a 409 or a 500. After, a seeded
//! [`FaultPlan`](crate::faults::FaultPlan) answers matching requests with errors, lost
//! answers, dropped connections or latency, the same way for the same seed; `kube-fake-client`
//! interceptors that refuse objects become an [`AdmissionCheck`](crate::AdmissionCheck).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cmdreporter_fake_cluster::FakeCluster;
//! use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
//! let plan = FaultPlan::new(42).rule(Some("update"), Some("configmaps"), 1.0, Fault::Status(409));
//! let cluster = FakeCluster::builder().faults(plan).build().await?;
//! // ... run the code; then `cluster.injected_faults()` says which requests were hit.
//! assert!(cluster.injected_faults().is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! ## 6. Waiting, time, and controllers
//!
//! A script needed no waiting: the test answered. Against the fake, code runs
//! concurrently with the cluster's controllers, so wait for the state on a watch with
//! [`harness::wait_for`](crate::harness::wait_for), never with a sleep. Run tests under
//! `#[tokio::test(start_paused = true)]`: timeouts, requeues, Job deadlines and back-offs
//! then cost no real time, and a wait's deadline passes only when nothing else can
//! happen first.
//!
//! With watches served, a kube-runtime `Controller` runs unchanged against
//! `cluster.client()`: `Controller::new(api, watcher::Config::default()).owns(jobs, ...)
//! .run(reconcile, error_policy, ctx)`. The Jobs it creates are run by the fake's Job
//! controller and kubelet on the scripted runtime
//! ([`ScriptedRuntime`](crate::ScriptedRuntime): behaviour per image), their pods get
//! statuses and logs, and owner references are garbage-collected. See
//! `fake-cluster/tests/operator.rs` for a complete operator test: reconcile on create and
//! on update, owned Jobs, status writes, and `Action::requeue` observed under paused time.
//!
//! ## 7. kubectl
//!
//! [`FakeCluster::serve_https`](crate::FakeCluster::serve_https) serves the same cluster
//! on loopback with its own CA and writes a kubeconfig
//! ([`ServedCluster::write_kubeconfig`](crate::ServedCluster::write_kubeconfig)), so a
//! test can run `kubectl apply -f` and `kubectl get` against what the code built,
//! custom resources with their printer columns included.
//!
//! ## What stays different from a real cluster
//!
//! No admission webhooks, conversion webhooks (only the `None` conversion strategy), CEL
//! validation rules, or aggregated APIs; OpenAPI documents are minimal for built-in kinds; the schema check covers types,
//! required fields, enums, bounds and lengths, not `pattern` or `format`. The crate
//! README lists the rest.
