//! Least privilege, proven on the fake cluster with authorization on: each transport's
//! whole flow (run, start/poll, and the retries after lost responses) passes with exactly
//! the roles `cmdreporter rbac` prints, the operator side acting as its own service
//! account; without any one verb it fails with a Forbidden error naming it. Both for the
//! namespaced Roles and for `--cluster-wide` (the objects it prints applied as they are,
//! the operator in its own namespace running errands in two others). Pod Security:
//! the default spec with `run_as_non_root` is admitted in a `restricted` namespace, a spec
//! that breaks the level is a pod-rejected error within seconds.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cmdreporter_cli::rbac::{
    Manifest, RbacOptions, operator_objects, operator_rules, pod_objects, pod_rules,
};
use cmdreporter_core::{Error, ExitStatus, JobRunner, Outcome, Request, RunStatus, Runner};
use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
use cmdreporter_fake_cluster::json::{Value, json};
use cmdreporter_fake_cluster::resources::{ResourceDef, well_known};
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_fake_cluster::{AdmissionCheck, ApiError, FakeCluster, ScriptedImage, rbac};
use cmdreporter_tests::{Transport, leftovers, scripted_runtime, wait_for_store};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

const IMAGE: &str = "tools:1.0";
const NS: &str = "errands";
/// With cluster-wide roles: the operator's namespace, and a second errand namespace.
const OPS: &str = "operators";
const NS_B: &str = "errands-b";
const UNPULLABLE: &str = "missing:1.0";
const REFUSED: &str = "refused:1.0";

/// Refuses pods of the image [`REFUSED`], as an admission webhook might.
struct RefusePods;

impl AdmissionCheck for RefusePods {
    fn admit(&self, def: &ResourceDef, _: &str, obj: &mut Value) -> Result<(), ApiError> {
        let refused = obj
            .pointer("/spec/containers/0/image")
            .is_some_and(|i| i == REFUSED);
        if def == well_known::pods() && refused {
            return Err(ApiError::new(
                403,
                "Forbidden",
                "pods is forbidden: refused by the test",
            ));
        }
        Ok(())
    }
}
const OPERATOR: &str = "operator";
const COURIER: &str = "courier";

fn tools() -> ScriptedImage {
    ScriptedImage::new().program("/bin/echo", |ctx: ProgramContext| async move {
        let line = ctx.argv[1..].join(" ");
        ctx.write_stdout(format!("{line}\n").as_bytes()).await;
        Exit::Code(0)
    })
}

/// A cluster with authorization on.
async fn base(faults: Option<FaultPlan>) -> FakeCluster {
    let rt = scripted_runtime();
    rt.image(IMAGE, tools());
    let mut b = FakeCluster::builder().scripted(rt).rbac(true);
    if let Some(plan) = faults {
        b = b.faults(plan);
    }
    b.build().await.unwrap()
}

/// Where the roles live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Roles in `errands`, where the operator's and the courier's accounts are.
    Namespace,
    /// `cmdreporter rbac --cluster-wide`: the operator in `operators`, errands in
    /// `errands` and `errands-b`.
    Cluster,
}

impl Scope {
    fn operator_namespace(self) -> &'static str {
        match self {
            Self::Namespace => NS,
            Self::Cluster => OPS,
        }
    }

    fn errand_namespaces(self) -> &'static [&'static str] {
        match self {
            Self::Namespace => &[NS],
            Self::Cluster => &[NS, NS_B],
        }
    }
}

/// A cluster for `scope`: with cluster-wide roles only the namespaces (the printed objects
/// bring the accounts).
async fn scoped_cluster(scope: Scope, faults: Option<FaultPlan>) -> FakeCluster {
    match scope {
        Scope::Namespace => cluster(faults).await,
        Scope::Cluster => {
            let c = base(faults).await;
            for ns in [OPS, NS, NS_B] {
                c.create_namespace(ns);
            }
            c
        }
    }
}

/// Creates one printed object, as the admin.
async fn apply(c: &FakeCluster, m: Manifest) {
    let pp = PostParams::default();
    let ns = |meta: &ObjectMeta| meta.namespace.clone().unwrap();
    match m {
        Manifest::ServiceAccount(o) => {
            let api = Api::<ServiceAccount>::namespaced(c.client(), &ns(&o.metadata));
            api.create(&pp, &o).await.map(|_| ())
        }
        Manifest::Role(o) => {
            let api = Api::<Role>::namespaced(c.client(), &ns(&o.metadata));
            api.create(&pp, &o).await.map(|_| ())
        }
        Manifest::RoleBinding(o) => {
            let api = Api::<RoleBinding>::namespaced(c.client(), &ns(&o.metadata));
            api.create(&pp, &o).await.map(|_| ())
        }
        Manifest::ClusterRole(o) => Api::<ClusterRole>::all(c.client())
            .create(&pp, &o)
            .await
            .map(|_| ()),
        Manifest::ClusterRoleBinding(o) => Api::<ClusterRoleBinding>::all(c.client())
            .create(&pp, &o)
            .await
            .map(|_| ()),
    }
    .unwrap();
}

/// Gives the operator `operator` and the courier `pod`: as Roles, or as the objects
/// `cmdreporter rbac --cluster-wide` prints with their ClusterRoles' rules replaced.
async fn install(
    c: &FakeCluster,
    scope: Scope,
    t: Transport,
    operator: &[PolicyRule],
    pod: &[PolicyRule],
) {
    if scope == Scope::Namespace {
        grant(c, "cmdreporter-operator", OPERATOR, operator.to_vec()).await;
        if !pod.is_empty() {
            grant(c, "cmdreporter-courier", COURIER, pod.to_vec()).await;
        }
        return;
    }
    let opts = RbacOptions {
        transport: transport_name(t).into(),
        namespace: OPS.into(),
        service_account: OPERATOR.into(),
        pod_service_account: COURIER.into(),
        cluster_wide: true,
        errand_namespaces: vec![NS.into(), NS_B.into()],
    };
    let printed = operator_objects(&opts)
        .unwrap()
        .into_iter()
        .chain(pod_objects(&opts).unwrap());
    for mut m in printed {
        if let Manifest::ClusterRole(role) = &mut m {
            let mine = match role.metadata.name.as_deref() {
                Some("cmdreporter-operator") => operator,
                _ => pod,
            };
            role.rules = Some(mine.to_vec());
        }
        apply(c, m).await;
    }
}

/// A cluster with authorization on, namespace `errands` and the two service accounts.
async fn cluster(faults: Option<FaultPlan>) -> FakeCluster {
    let cluster = base(faults).await;
    cluster.create_namespace(NS);
    let sas: Api<ServiceAccount> = Api::namespaced(cluster.client(), NS);
    for name in [OPERATOR, COURIER] {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        sas.create(&PostParams::default(), &sa).await.unwrap();
    }
    cluster
}

/// Applies a Role with `rules` bound to `sa`, as the admin.
async fn grant(cluster: &FakeCluster, name: &str, sa: &str, rules: Vec<PolicyRule>) {
    let meta = ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    };
    Api::<Role>::namespaced(cluster.client(), NS)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta.clone(),
                rules: Some(rules),
            },
        )
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: sa.into(),
            namespace: Some(NS.into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(cluster.client(), NS)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::ConfigMap => "configmap",
        Transport::Logs => "logs",
    }
}

fn req(t: Transport) -> Request {
    req_image(t, IMAGE)
}

fn req_image(t: Transport, image: &str) -> Request {
    req_in(t, NS, image)
}

fn req_in(t: Transport, ns: &str, image: &str) -> Request {
    let r = Request::new(image, ["/bin/echo", "hi"])
        .namespace(ns)
        .timeout(Duration::from_secs(120));
    match t {
        Transport::ConfigMap => r.service_account(COURIER),
        Transport::Logs => r,
    }
}

/// Every (verb, resource) a set of rules grants, resources with their subresource.
fn grants(rules: &[PolicyRule]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in rules {
        for res in r.resources.iter().flatten() {
            for v in &r.verbs {
                out.push((v.clone(), res.clone()));
            }
        }
    }
    out
}

/// `rules` without one verb on one resource.
fn without(rules: &[PolicyRule], verb: &str, resource: &str) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for r in rules {
        for res in r.resources.iter().flatten() {
            let verbs: Vec<String> = r
                .verbs
                .iter()
                .filter(|v| !(v.as_str() == verb && res == resource))
                .cloned()
                .collect();
            if !verbs.is_empty() {
                out.push(PolicyRule {
                    resources: Some(vec![res.clone()]),
                    verbs,
                    ..r.clone()
                });
            }
        }
    }
    out
}

/// Some failures do not reach the run's result: the runner only logs a failed cleanup,
/// and a courier whose read-back is refused after a lost answer exits 1 although its report
/// was delivered. A Job left behind or any refused request is a failure, reported with the
/// 403s as the server sent them (from the audit).
fn nothing_denied_or_left(c: &FakeCluster) -> Result<(), Error> {
    let (jobs, _) = c.store().list(well_known::jobs(), None);
    let denied: Vec<String> = c
        .audit()
        .iter()
        .filter(|e| !e.allowed)
        .map(|e| rbac::forbidden(&e.user, &e.attributes, "").message)
        .collect();
    if jobs.is_empty() && denied.is_empty() {
        return Ok(());
    }
    Err(Error::CorruptReport(format!(
        "{} Job(s) left behind; denied: {}",
        jobs.len(),
        denied.join("; ")
    )))
}

/// Starts a run and polls it after every change in the store until it is done: the
/// outcome, or the run's error as text (it is shared and not Clone).
async fn poll_to_end(
    c: &FakeCluster,
    r: &JobRunner,
    req: Request,
) -> Result<Result<Outcome, String>, Error> {
    let mut changes = c.store().subscribe_controller();
    let key = r.start(req).await?;
    loop {
        match r.poll(&key).await? {
            RunStatus::Done(result) => {
                return Ok(match &*result {
                    Ok(o) => Ok(o.clone()),
                    Err(e) => Err(e.to_string()),
                });
            }
            RunStatus::Pending(_) => {
                changes
                    .recv()
                    .await
                    .expect("the store changes until the run ends");
            }
        }
    }
}

/// The whole flow, operator side as its service account: in each errand namespace one
/// run, one start/poll, and failures seen through the pod and the Events; then one run
/// whose Job create and report create lose their answers (so the retries read them back).
/// The first error, if any.
async fn whole_flow(
    t: Transport,
    scope: Scope,
    operator: Vec<PolicyRule>,
    pod: Vec<PolicyRule>,
) -> Result<(), Error> {
    // Seed 1 loses the first answer of each create and not the retry's (asserted below).
    let plan = FaultPlan::new(1)
        .rule(Some("create"), Some("jobs"), 0.5, Fault::LostResponse)
        .rule(Some("create"), Some("configmaps"), 0.5, Fault::LostResponse);
    let plain = scoped_cluster(scope, None).await;
    plain.add_admission(Arc::new(RefusePods));
    let lossy = scoped_cluster(scope, Some(plan)).await;
    for c in [&plain, &lossy] {
        install(c, scope, t, &operator, &pod).await;
    }
    let runner = |c: &FakeCluster| {
        let client = c.service_account_client(scope.operator_namespace(), OPERATOR);
        JobRunner::new(client.clone(), t.channel(client))
    };
    let r = runner(&plain);
    for ns in scope.errand_namespaces() {
        let o = r.run(req_in(t, ns, IMAGE)).await?;
        assert_eq!(
            (o.exit, o.stdout.data.as_slice()),
            (ExitStatus::Code(0), &b"hi\n"[..])
        );
        let o = poll_to_end(&plain, &r, req_in(t, ns, IMAGE))
            .await?
            .map_err(Error::CorruptReport)?;
        assert_eq!(o.stdout.data, b"hi\n");
        // Failures are seen through the pod watch (an image that cannot be pulled) and
        // the Events watch (a pod refused at admission).
        match r.run(req_in(t, ns, UNPULLABLE)).await {
            Err(Error::ImagePull { .. }) => {}
            Err(e) => return Err(e),
            Ok(o) => panic!("{o:?}"),
        }
        match r.run(req_in(t, ns, REFUSED)).await {
            Err(Error::PodRejected { .. }) => {}
            Err(e) => return Err(e),
            Ok(o) => panic!("{o:?}"),
        }
        match poll_to_end(&plain, &r, req_in(t, ns, REFUSED)).await? {
            Err(m) if m.starts_with("pod rejected") => {}
            Err(m) => return Err(Error::CorruptReport(m)),
            Ok(o) => panic!("{o:?}"),
        }
    }
    r.shutdown().await;
    nothing_denied_or_left(&plain)?;
    let r = runner(&lossy);
    for ns in scope.errand_namespaces() {
        let o = r.run(req_in(t, ns, IMAGE)).await?;
        assert_eq!(o.stdout.data, b"hi\n");
    }
    r.shutdown().await;
    nothing_denied_or_left(&lossy)?;
    let lost: Vec<String> = lossy
        .injected_faults()
        .iter()
        .map(|f| f.path.clone())
        .collect();
    assert!(lost.iter().any(|p| p.contains("/jobs")), "{lost:?}");
    if t == Transport::ConfigMap {
        assert!(lost.iter().any(|p| p.contains("/configmaps")), "{lost:?}");
    }
    for c in [&plain, &lossy] {
        for ns in scope.errand_namespaces() {
            wait_for_store(c, || leftovers(c, ns).is_empty()).await;
        }
    }
    Ok(())
}

const SCOPES: [Scope; 2] = [Scope::Namespace, Scope::Cluster];

#[tokio::test(start_paused = true)]
async fn each_transport_passes_with_exactly_the_printed_roles() {
    for scope in SCOPES {
        for &t in Transport::all() {
            let op = operator_rules(transport_name(t)).unwrap();
            let pod = pod_rules(transport_name(t)).unwrap();
            whole_flow(t, scope, op, pod)
                .await
                .unwrap_or_else(|e| panic!("{scope:?} {t:?}: {e}"));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn without_any_one_verb_the_flow_fails_naming_it() {
    for scope in SCOPES {
        for &t in Transport::all() {
            let op = operator_rules(transport_name(t)).unwrap();
            let pod = pod_rules(transport_name(t)).unwrap();
            for (side, rules) in [("operator", &op), ("pod", &pod)] {
                for (verb, resource) in grants(rules) {
                    let cut = without(rules, &verb, &resource);
                    let (o, p) = if side == "operator" {
                        (cut, pod.clone())
                    } else {
                        (op.clone(), cut)
                    };
                    let err = whole_flow(t, scope, o, p).await.expect_err(&format!(
                        "{scope:?} {t:?}: {side} without {verb} {resource} passed"
                    ));
                    let text = format!("{err}");
                    let wanted = format!("cannot {verb} resource \"{resource}\"");
                    assert!(
                        text.contains(&wanted),
                        "{scope:?} {t:?} {side}: {text} lacks {wanted}"
                    );
                    assert!(text.contains("forbidden"), "{text}");
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_logs_pod_makes_no_api_request() {
    let c = cluster(None).await;
    grant(
        &c,
        "cmdreporter-operator",
        OPERATOR,
        operator_rules("logs").unwrap(),
    )
    .await;
    let client = c.service_account_client(NS, OPERATOR);
    let r = JobRunner::new(client.clone(), Transport::Logs.channel(client));
    let before = c.journal().len();
    r.run(req(Transport::Logs)).await.unwrap();
    r.shutdown().await;
    let audit = c.audit();
    let operator = format!("system:serviceaccount:{NS}:{OPERATOR}");
    assert!(audit.iter().all(|e| e.allowed), "{audit:?}");
    let others: Vec<_> = audit
        .iter()
        .filter(|e| e.user != operator && e.user != "fake-admin")
        .collect();
    assert!(
        others.is_empty(),
        "requests not from the operator: {others:?}"
    );
    // Every request after the setup is in the audit as the operator's.
    let by_operator = audit.iter().filter(|e| e.user == operator).count();
    assert_eq!(c.journal().len() - before, by_operator);
}

#[tokio::test(start_paused = true)]
async fn a_configmap_not_owned_by_the_job_is_never_accepted_nor_overwritten() {
    let c = cluster(None).await;
    grant(
        &c,
        "cmdreporter-operator",
        OPERATOR,
        operator_rules("configmap").unwrap(),
    )
    .await;
    grant(
        &c,
        "cmdreporter-courier",
        COURIER,
        pod_rules("configmap").unwrap(),
    )
    .await;
    let client = c.service_account_client(NS, OPERATOR);
    let r = Arc::new(JobRunner::new(
        client.clone(),
        Transport::ConfigMap.channel(client),
    ));
    // A forged report under the run's name, created by someone else as soon as the Job
    // exists (so before the courier can), with no owner.
    let admin = c.client();
    let forger = tokio::spawn({
        let store = c.store().clone();
        let admin = admin.clone();
        async move {
            let mut changes = store.subscribe_controller();
            let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(admin.clone(), NS);
            let name = loop {
                if let Some(j) = jobs.list(&Default::default()).await.unwrap().items.first() {
                    break j.metadata.name.clone().unwrap();
                }
                changes.recv().await.unwrap();
            };
            let cm: ConfigMap = cmdreporter_fake_cluster::json::from_value(json!({
                "metadata": {"name": name},
                "data": {"stdout": "forged", "stderr": "", "retcode": "0"}
            }))
            .unwrap();
            Api::<ConfigMap>::namespaced(admin, NS)
                .create(&PostParams::default(), &cm)
                .await
                .unwrap();
            name
        }
    });
    let err = r.run(req(Transport::ConfigMap)).await.unwrap_err();
    let name = forger.await.unwrap();
    // The courier's create finds the name taken and does not replace it.
    assert!(
        matches!(&err, Error::CourierFailed { message, .. } if message.contains("already exists")),
        "{err:?}"
    );
    let cm = Api::<ConfigMap>::namespaced(admin, NS)
        .get(&name)
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["stdout"], "forged");
    // The courier could not overwrite it even if it tried: it may only create.
    let courier = Api::<ConfigMap>::namespaced(c.service_account_client(NS, COURIER), NS);
    let patch = courier
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"stdout": "x"}})),
        )
        .await
        .unwrap_err();
    assert!(
        format!("{patch}").contains("cannot patch resource \"configmaps\""),
        "{patch}"
    );
    r.shutdown().await;
}

async fn label_restricted(c: &FakeCluster) {
    Api::<Namespace>::all(c.client())
        .patch(
            NS,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})),
        )
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restricted_namespace_admits_the_default_spec_with_run_as_non_root() {
    for &t in Transport::all() {
        let c = cluster(None).await;
        label_restricted(&c).await;
        grant(
            &c,
            "courier",
            COURIER,
            pod_rules(transport_name(t)).unwrap(),
        )
        .await;
        let r = JobRunner::new(c.client(), t.channel(c.client()));
        let o = r
            .run(req(t).run_as_non_root(true))
            .await
            .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        assert_eq!(o.stdout.data, b"hi\n");
        r.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_spec_that_breaks_restricted_is_rejected_within_seconds() {
    for &t in Transport::all() {
        let c = cluster(None).await;
        label_restricted(&c).await;
        let r = JobRunner::new(c.client(), t.channel(c.client()));
        let start = tokio::time::Instant::now();
        // Without run_as_non_root the default spec leaves runAsNonRoot unset.
        let err = r.run(req(t)).await.unwrap_err();
        match &err {
            Error::PodRejected { message } => {
                assert!(
                    message.ends_with("is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot != true (pod or containers \"install-reporter\", \"cmd\" must set securityContext.runAsNonRoot=true)"),
                    "{message}"
                );
            }
            other => panic!("{t:?}: {other:?}"),
        }
        assert!(
            start.elapsed() <= Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        r.shutdown().await;
        wait_for_store(&c, || leftovers(&c, NS).is_empty()).await;
    }
}
