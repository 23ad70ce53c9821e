//! RBAC over the wire, through `kube::Client` as service accounts: ClusterRoleBindings,
//! Group subjects, resourceNames, the `*` wildcard for verbs, resources and API groups,
//! subresources, and the 403 Forbidden Status a denied request gets, as the real server
//! writes it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use cmdreporter_fake_cluster::{FakeCluster, FakeService};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// A cluster with authorization on, namespaces `team-a` and `team-b` with a ConfigMap
/// `allowed` and one `other`, and a service account `sa` in each.
async fn cluster() -> FakeCluster {
    let c = FakeCluster::builder().rbac(true).build().await.unwrap();
    for ns in ["team-a", "team-b"] {
        c.create_namespace(ns);
        Api::<ServiceAccount>::namespaced(c.client(), ns)
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": "sa"}})),
            )
            .await
            .unwrap();
        let cms = Api::<ConfigMap>::namespaced(c.client(), ns);
        for name in ["allowed", "other"] {
            cms.create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": name}})),
            )
            .await
            .unwrap();
        }
    }
    c
}

async fn cluster_role(c: &FakeCluster, name: &str, rules: Value) {
    Api::<ClusterRole>::all(c.client())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name}, "rules": rules})),
        )
        .await
        .unwrap();
}

async fn cluster_binding(c: &FakeCluster, role: &str, subjects: Value) {
    Api::<ClusterRoleBinding>::all(c.client())
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": subjects})),
        )
        .await
        .unwrap();
}

async fn role(c: &FakeCluster, ns: &str, name: &str, rules: Value) {
    Api::<Role>::namespaced(c.client(), ns)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name}, "rules": rules})),
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(c.client(), ns)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": ns}]})),
        )
        .await
        .unwrap();
}

fn sa(c: &FakeCluster, ns: &str) -> kube::Client {
    c.service_account_client(ns, "sa")
}

/// The 403 of a denied request.
fn forbidden<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 => *s,
        other => panic!("not a 403: {other:?}"),
    }
}

fn can<T>(r: Result<T, kube::Error>) -> bool {
    match r {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 403 => false,
        Err(e) => panic!("{e}"),
    }
}

async fn can_list_configmaps(client: kube::Client, ns: &str) -> bool {
    can(Api::<ConfigMap>::namespaced(client, ns)
        .list(&ListParams::default())
        .await)
}

#[tokio::test]
async fn a_cluster_role_binding_grants_in_every_namespace() {
    let c = cluster().await;
    assert!(!can_list_configmaps(sa(&c, "team-a"), "team-b").await);
    cluster_role(
        &c,
        "cm-reader",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
    )
    .await;
    cluster_binding(
        &c,
        "cm-reader",
        json!([{"kind": "ServiceAccount", "name": "sa", "namespace": "team-a"}]),
    )
    .await;
    for ns in ["team-a", "team-b", "default"] {
        assert!(can_list_configmaps(sa(&c, "team-a"), ns).await, "{ns}");
    }
    // Across all namespaces too, and only the bound account.
    assert!(can(Api::<ConfigMap>::all(sa(&c, "team-a"))
        .list(&ListParams::default())
        .await));
    assert!(!can_list_configmaps(sa(&c, "team-b"), "team-b").await);
    // Only the verb granted.
    let get = Api::<ConfigMap>::namespaced(sa(&c, "team-a"), "team-b")
        .get("allowed")
        .await;
    assert!(!can(get));
}

#[tokio::test]
async fn group_subjects_match_the_groups_of_service_accounts_and_authenticated_users() {
    let c = cluster().await;
    let rules = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]);
    cluster_role(&c, "per-ns", rules.clone()).await;
    cluster_binding(&c, "per-ns", json!([{"kind": "Group", "name": "system:serviceaccounts:team-a", "apiGroup": "rbac.authorization.k8s.io"}])).await;
    assert!(can_list_configmaps(sa(&c, "team-a"), "default").await);
    assert!(!can_list_configmaps(sa(&c, "team-b"), "default").await);

    cluster_role(
        &c,
        "all-sa",
        json!([{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list"]}]),
    )
    .await;
    cluster_binding(&c, "all-sa", json!([{"kind": "Group", "name": "system:serviceaccounts", "apiGroup": "rbac.authorization.k8s.io"}])).await;
    for ns in ["team-a", "team-b"] {
        assert!(can(Api::<Job>::namespaced(sa(&c, ns), ns)
            .list(&ListParams::default())
            .await));
    }

    // system:authenticated: every account, never the anonymous user.
    let anonymous = kube::Client::new(FakeService::new(c.api().clone()), "default");
    let namespaces = |client| async move {
        can(Api::<Namespace>::all(client)
            .list(&ListParams::default())
            .await)
    };
    assert!(!namespaces(sa(&c, "team-b")).await);
    cluster_role(
        &c,
        "ns-lister",
        json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]),
    )
    .await;
    cluster_binding(&c, "ns-lister", json!([{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}])).await;
    assert!(namespaces(sa(&c, "team-b")).await);
    let status = forbidden(
        Api::<Namespace>::all(anonymous)
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        status.message,
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
}

#[tokio::test]
async fn resource_names_limit_a_rule_to_named_objects() {
    let c = cluster().await;
    role(
        &c,
        "team-a",
        "one-cm",
        json!([{"apiGroups": [""], "resources": ["configmaps"],
        "resourceNames": ["allowed"], "verbs": ["get", "list", "watch", "delete"]}]),
    )
    .await;
    let cms = Api::<ConfigMap>::namespaced(sa(&c, "team-a"), "team-a");
    assert!(can(cms.get("allowed").await));
    let status = forbidden(cms.get("other").await);
    assert_eq!(
        status.message,
        "configmaps \"other\" is forbidden: User \"system:serviceaccount:team-a:sa\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"team-a\""
    );
    let details = status.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.kind.as_str(),
            details.group.as_str()
        ),
        ("other", "configmaps", "")
    );
    // A list names no object, unless its field selector names the one allowed.
    assert!(!can(cms.list(&ListParams::default()).await));
    assert!(can(cms
        .list(&ListParams::default().fields("metadata.name=allowed"))
        .await));
    assert!(!can(cms.delete("other", &DeleteParams::default()).await));
    assert!(can(cms.delete("allowed", &DeleteParams::default()).await));
}

#[tokio::test]
async fn wildcards_grant_every_verb_resource_and_group_of_a_namespace() {
    let c = cluster().await;
    role(
        &c,
        "team-a",
        "admin",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    )
    .await;
    let client = sa(&c, "team-a");
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "team-a");
    assert!(can(cms
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "new"}}))
        )
        .await));
    assert!(can(cms.delete("other", &DeleteParams::default()).await));
    let jobs = Api::<Job>::namespaced(client.clone(), "team-a");
    assert!(can(jobs.list(&ListParams::default()).await));
    // Only in its namespace: another one, and cluster-scoped resources, stay closed.
    assert!(!can_list_configmaps(client.clone(), "team-b").await);
    let status = forbidden(
        Api::<Namespace>::all(client)
            .list(&ListParams::default())
            .await,
    );
    assert!(
        status.message.ends_with("at the cluster scope"),
        "{}",
        status.message
    );
    // A denied request in a group says so.
    let status = forbidden(
        Api::<Job>::namespaced(sa(&c, "team-b"), "team-b")
            .delete("j", &DeleteParams::default())
            .await,
    );
    assert_eq!(
        status.message,
        "jobs.batch \"j\" is forbidden: User \"system:serviceaccount:team-b:sa\" cannot delete resource \"jobs\" in API group \"batch\" in the namespace \"team-b\""
    );
    assert_eq!(status.reason, "Forbidden");
    assert_eq!(status.details.unwrap().group, "batch");
}

#[tokio::test]
async fn subresources_are_granted_apart_from_their_resource() {
    let c = cluster().await;
    Api::<Pod>::namespaced(c.client(), "team-a")
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "none:1"}]}})),
        )
        .await
        .unwrap();
    role(
        &c,
        "team-a",
        "status-only",
        json!([{"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get"]}]),
    )
    .await;
    let pods = Api::<Pod>::namespaced(sa(&c, "team-a"), "team-a");
    assert!(can(pods.get_status("p").await));
    let status = forbidden(pods.get("p").await);
    assert!(
        status.message.contains("cannot get resource \"pods\""),
        "{}",
        status.message
    );
    let status = forbidden(pods.logs("p", &Default::default()).await);
    assert!(
        status
            .message
            .contains("cannot get resource \"pods/log\" in API group \"\""),
        "{}",
        status.message
    );
    // `*/status` covers the status of every resource.
    role(
        &c,
        "team-b",
        "any-status",
        json!([{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]}]),
    )
    .await;
    let namespaces = Api::<Namespace>::all(sa(&c, "team-b"));
    // As the real request info has it, a namespace object's own namespace is its name, so
    // a Role in team-b reaches team-b's status, and no other namespace's.
    assert!(can(namespaces.get_status("team-b").await));
    let status = forbidden(namespaces.get_status("team-a").await);
    assert_eq!(
        status.message,
        "namespaces \"team-a\" is forbidden: User \"system:serviceaccount:team-b:sa\" cannot get resource \"namespaces/status\" in API group \"\" in the namespace \"team-a\""
    );
    assert!(!can(namespaces.get("team-b").await), "status only");
}
