//! `cmdreporter rbac`: the printed YAML parses as Kubernetes objects, and holds exactly the
//! rules each side needs.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{assert_code, assert_error_line, cmdreporter, stdout};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde_json::Value;

#[derive(Default)]
struct Parsed {
    accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    bindings: Vec<RoleBinding>,
    cluster_roles: Vec<ClusterRole>,
    cluster_bindings: Vec<ClusterRoleBinding>,
}

fn parse(yaml: &str) -> Parsed {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("valid YAML");
    let mut p = Parsed::default();
    for doc in docs {
        match doc["kind"].as_str().unwrap() {
            "ServiceAccount" => p.accounts.push(serde_json::from_value(doc).unwrap()),
            "Role" => p.roles.push(serde_json::from_value(doc).unwrap()),
            "RoleBinding" => p.bindings.push(serde_json::from_value(doc).unwrap()),
            "ClusterRole" => p.cluster_roles.push(serde_json::from_value(doc).unwrap()),
            "ClusterRoleBinding" => p
                .cluster_bindings
                .push(serde_json::from_value(doc).unwrap()),
            other => panic!("unexpected kind {other}"),
        }
    }
    p
}

fn rules(role: &Role) -> Vec<(String, String, Vec<String>)> {
    flatten(role.rules.clone().unwrap())
}

fn flatten(list: Vec<PolicyRule>) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for PolicyRule {
        api_groups,
        resources,
        verbs,
        ..
    } in list
    {
        for g in api_groups.unwrap() {
            for r in resources.clone().unwrap() {
                out.push((g.clone(), r, verbs.clone()));
            }
        }
    }
    out
}

fn rbac(args: &[&str]) -> Parsed {
    let mut all = vec!["rbac"];
    all.extend_from_slice(args);
    let o = cmdreporter(&all);
    assert_code(&o, 0);
    parse(&stdout(&o))
}

fn v(verbs: &[&str]) -> Vec<String> {
    verbs.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn configmap_rbac_for_both_sides() {
    let p = rbac(&[
        "--transport",
        "configmap",
        "-n",
        "rook-ceph",
        "--service-account",
        "rook-ceph-operator",
    ]);
    assert_eq!(p.accounts.len(), 2);
    assert_eq!(p.roles.len(), 2);
    assert_eq!(p.bindings.len(), 2);
    for a in &p.accounts {
        assert_eq!(a.metadata.namespace.as_deref(), Some("rook-ceph"));
    }
    let operator = &p.roles[0];
    assert_eq!(
        rules(operator),
        vec![
            (
                "batch".into(),
                "jobs".into(),
                v(&["create", "get", "delete"])
            ),
            // list and get: for Runner::start/poll (tests/tests/least_privilege.rs).
            ("".into(), "pods".into(), v(&["list", "watch"])),
            ("".into(), "events".into(), v(&["list", "watch"])),
            ("".into(), "configmaps".into(), v(&["get", "watch"])),
        ]
    );
    let courier = &p.roles[1];
    assert_eq!(
        rules(courier),
        vec![("".into(), "configmaps".into(), v(&["create", "get"]))]
    );
    // Each binding ties its role to its service account.
    let b = &p.bindings[0];
    assert_eq!(b.role_ref.name, operator.metadata.name.clone().unwrap());
    let subject = &b.subjects.as_ref().unwrap()[0];
    assert_eq!(subject.name, "rook-ceph-operator");
    assert_eq!(subject.namespace.as_deref(), Some("rook-ceph"));
    assert_eq!(
        p.bindings[1].subjects.as_ref().unwrap()[0].name,
        "cmdreporter-courier"
    );
}

#[test]
fn logs_rbac_gives_the_pod_nothing() {
    let p = rbac(&["--transport", "logs", "-n", "ops"]);
    assert_eq!(p.accounts.len(), 1, "the operator's only");
    assert_eq!(p.roles.len(), 1);
    assert_eq!(p.bindings.len(), 1);
    let r = rules(&p.roles[0]);
    assert!(
        r.contains(&("".into(), "pods/log".into(), v(&["get"]))),
        "{r:?}"
    );
    assert!(!r.iter().any(|(_, res, _)| res == "configmaps"), "{r:?}");
}

#[test]
fn an_unknown_transport_exits_125() {
    let o = cmdreporter(&["rbac", "--transport", "smoke"]);
    assert_error_line(&o, "unknown transport \"smoke\"");
}

#[test]
fn cluster_wide_rbac_gives_cluster_roles_and_binds_the_courier_per_namespace() {
    let p = rbac(&[
        "--cluster-wide",
        "-n",
        "ops",
        "--errand-namespace",
        "team-a",
        "--errand-namespace",
        "team-b",
    ]);
    assert!(p.roles.is_empty(), "no namespaced Role");
    assert_eq!(p.cluster_roles.len(), 2);
    let (operator, courier) = (&p.cluster_roles[0], &p.cluster_roles[1]);
    assert!(operator.metadata.namespace.is_none());
    assert_eq!(
        flatten(operator.rules.clone().unwrap()),
        flatten(cmdreporter_cli::rbac::operator_rules("configmap").unwrap())
    );
    assert_eq!(
        flatten(courier.rules.clone().unwrap()),
        vec![("".into(), "configmaps".into(), v(&["create", "get"]))]
    );
    // The operator: one ClusterRoleBinding to its account in its namespace.
    assert_eq!(p.cluster_bindings.len(), 1);
    let b = &p.cluster_bindings[0];
    assert_eq!(
        (b.role_ref.kind.as_str(), b.role_ref.name.as_str()),
        ("ClusterRole", operator.metadata.name.as_deref().unwrap())
    );
    let subject = &b.subjects.as_ref().unwrap()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        ("cmdreporter-operator", Some("ops"))
    );
    // The courier: its account and a RoleBinding to the ClusterRole in each errand
    // namespace, never a ClusterRoleBinding.
    let ns_of = |a: &ServiceAccount| a.metadata.namespace.clone().unwrap();
    let accounts: Vec<String> = p.accounts.iter().map(ns_of).collect();
    assert_eq!(accounts, ["ops", "team-a", "team-b"]);
    assert_eq!(p.bindings.len(), 2);
    for (b, ns) in p.bindings.iter().zip(["team-a", "team-b"]) {
        assert_eq!(b.metadata.namespace.as_deref(), Some(ns));
        assert_eq!(b.role_ref.kind, "ClusterRole");
        assert_eq!(b.role_ref.name, courier.metadata.name.clone().unwrap());
        let s = &b.subjects.as_ref().unwrap()[0];
        assert_eq!(
            (s.name.as_str(), s.namespace.as_deref()),
            ("cmdreporter-courier", Some(ns))
        );
    }
}

#[test]
fn an_invalid_errand_namespace_is_named() {
    let o = cmdreporter(&["rbac", "--cluster-wide", "--errand-namespace", "Team_A"]);
    assert_error_line(&o, "--errand-namespace \"Team_A\"");
}
