//! The checks of the Pod Security levels on a pod spec: `baseline` (host namespaces,
//! privileged, non-default capabilities, hostPath volumes, host ports, Unconfined seccomp)
//! and, for `restricted`, also allowPrivilegeEscalation, capabilities, volume types,
//! runAsNonRoot, runAsUser=0 and the seccomp profile; each violation with the real message.

use crate::json::{Value, json, strings_at};

use crate::selector::at;

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// `container "a"` or `containers "a", "b"`.
fn containers(prefix: &str, names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let noun = if names.len() == 1 {
        "container"
    } else {
        "containers"
    };
    format!("{prefix}{noun} {}", quoted.join(", "))
}

/// The violations of `spec` at `restricted` (else baseline), as `(reason, detail)` in the
/// order of the checks' ids.
pub fn violations(spec: &Value, restricted: bool) -> Vec<(String, String)> {
    let list: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec.get(*k).and_then(Value::as_array).into_iter().flatten())
        .collect();
    let name = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let sc = |c: &Value, p: &str| c.get("securityContext").and_then(|s| s.get(p)).cloned();
    let pod_sc = |p: &str| spec.get("securityContext").and_then(|s| s.get(p)).cloned();
    let select = |f: &dyn Fn(&Value) -> bool| -> Vec<String> {
        list.iter().filter(|c| f(c)).map(|c| name(c)).collect()
    };
    // The containers that add capabilities beyond those `allowed` lets through, in one
    // detail with every such capability once, sorted, as `CheckCapabilitiesBaseline` and
    // `CheckCapabilitiesRestricted` word it (`joinQuote(badContainers)`,
    // `joinQuote(forbiddenCapabilities.List())`).
    let added_beyond = |allowed: &dyn Fn(&str) -> bool| -> Option<String> {
        let mut bad = Vec::new();
        let mut caps = std::collections::BTreeSet::new();
        for c in &list {
            let extra: Vec<String> = strings_at(c, "/securityContext/capabilities/add")
                .into_iter()
                .filter(|a| !allowed(a))
                .collect();
            if !extra.is_empty() {
                bad.push(name(c));
                caps.extend(extra);
            }
        }
        let quoted: Vec<String> = caps.iter().map(|a| format!("\"{a}\"")).collect();
        (!bad.is_empty()).then(|| {
            format!(
                "{} must not include {} in securityContext.capabilities.add",
                containers("", &bad),
                quoted.join(", ")
            )
        })
    };
    let volumes: Vec<&Value> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let volume_type = |v: &Value| {
        v.as_object()
            .and_then(|o| o.keys().find(|k| *k != "name").map(String::from))
            .unwrap_or_default()
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |reason: &str, details: Vec<String>| {
        if !details.is_empty() {
            out.push((reason.to_owned(), details.join("; ")));
        }
    };
    // allowPrivilegeEscalation
    if restricted {
        let bad = select(&|c| sc(c, "allowPrivilegeEscalation") != Some(json!(false)));
        if !bad.is_empty() {
            push(
                "allowPrivilegeEscalation != false",
                vec![format!(
                    "{} must set securityContext.allowPrivilegeEscalation=false",
                    containers("", &bad)
                )],
            );
        }
    }
    // capabilities_baseline (overridden by capabilities_restricted)
    if !restricted {
        push(
            "non-default capabilities",
            added_beyond(&|a| BASELINE_CAPABILITIES.contains(&a))
                .into_iter()
                .collect(),
        );
    } else {
        // capabilities_restricted
        let mut details = Vec::new();
        let no_drop = select(&|c| {
            !at(c, "/securityContext/capabilities/drop")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x == "ALL"))
        });
        if !no_drop.is_empty() {
            details.push(format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                containers("", &no_drop)
            ));
        }
        details.extend(added_beyond(&|a| a == "NET_BIND_SERVICE"));
        push("unrestricted capabilities", details);
    }
    // hostNamespaces
    let hosts: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| spec.get(**k) == Some(&json!(true)))
        .map(|k| format!("{k}=true"))
        .collect();
    if !hosts.is_empty() {
        push("host namespaces", vec![hosts.join(", ")]);
    }
    // hostPathVolumes (overridden by restrictedVolumes)
    let host_paths: Vec<String> = volumes
        .iter()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| {
            format!(
                "\"{}\"",
                v.get("name").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    if !restricted && !host_paths.is_empty() {
        let noun = if host_paths.len() == 1 {
            "volume"
        } else {
            "volumes"
        };
        push(
            "hostPath volumes",
            vec![format!("{noun} {}", host_paths.join(", "))],
        );
    }
    // hostPorts
    let mut port_details = Vec::new();
    for c in &list {
        let ports: Vec<String> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect();
        if !ports.is_empty() {
            let (verb, noun) = if ports.len() == 1 {
                ("uses", "hostPort")
            } else {
                ("uses", "hostPorts")
            };
            port_details.push(format!(
                "{} {verb} {noun} {}",
                containers("", &[name(c)]),
                ports.join(", ")
            ));
        }
    }
    push("hostPort", port_details);
    // privileged
    let privileged = select(&|c| sc(c, "privileged") == Some(json!(true)));
    if !privileged.is_empty() {
        push(
            "privileged",
            vec![format!(
                "{} must not set securityContext.privileged=true",
                containers("", &privileged)
            )],
        );
    }
    if restricted {
        // restrictedVolumes
        let bad: Vec<String> = volumes
            .iter()
            .filter(|v| !RESTRICTED_VOLUMES.contains(&volume_type(v).as_str()))
            .map(|v| {
                format!(
                    "volume \"{}\" uses restricted volume type \"{}\"",
                    v.get("name").and_then(Value::as_str).unwrap_or_default(),
                    volume_type(v)
                )
            })
            .collect();
        push("restricted volume types", bad);
        // runAsNonRoot
        let pod_level = pod_sc("runAsNonRoot");
        let mut details = Vec::new();
        if pod_level == Some(json!(false)) {
            details.push("pod must not set securityContext.runAsNonRoot=false".to_owned());
        }
        let explicit_false = select(&|c| sc(c, "runAsNonRoot") == Some(json!(false)));
        if !explicit_false.is_empty() {
            details.push(format!(
                "{} must not set securityContext.runAsNonRoot=false",
                containers("", &explicit_false)
            ));
        }
        if pod_level != Some(json!(true)) {
            let unset = select(&|c| sc(c, "runAsNonRoot").is_none());
            if !unset.is_empty() {
                details.push(format!(
                    "{} must set securityContext.runAsNonRoot=true",
                    containers("pod or ", &unset)
                ));
            }
        }
        push("runAsNonRoot != true", details);
        // runAsUser
        let mut details = Vec::new();
        if pod_sc("runAsUser") == Some(json!(0)) {
            details.push("pod must not set runAsUser=0".to_owned());
        }
        let root = select(&|c| sc(c, "runAsUser") == Some(json!(0)));
        if !root.is_empty() {
            details.push(format!(
                "{} must not set runAsUser=0",
                containers("", &root)
            ));
        }
        push("runAsUser=0", details);
    }
    // seccompProfile (baseline: no Unconfined; restricted: also set to a valid type)
    let ty =
        |v: Option<Value>| v.and_then(|p| p.get("type").and_then(Value::as_str).map(str::to_owned));
    let pod_type = ty(pod_sc("seccompProfile"));
    let mut details = Vec::new();
    if pod_type.as_deref() == Some("Unconfined") {
        details.push(
            "pod must not set securityContext.seccompProfile.type to \"Unconfined\"".to_owned(),
        );
    }
    let unconfined = select(&|c| ty(sc(c, "seccompProfile")).as_deref() == Some("Unconfined"));
    if !unconfined.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            containers("", &unconfined)
        ));
    }
    if restricted && !matches!(pod_type.as_deref(), Some("RuntimeDefault" | "Localhost")) {
        let unset = select(&|c| ty(sc(c, "seccompProfile")).is_none());
        if !unset.is_empty() {
            details.push(format!(
                "{} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers("pod or ", &unset)
            ));
        }
    }
    push("seccompProfile", details);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_container_breaks_restricted_in_the_real_order() {
        let spec = json!({"containers": [{"name": "c", "image": "x"}]});
        let v = violations(&spec, true);
        let reasons: Vec<&str> = v.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "allowPrivilegeEscalation != false",
                "unrestricted capabilities",
                "runAsNonRoot != true",
                "seccompProfile"
            ]
        );
        assert_eq!(
            v[0].1,
            "container \"c\" must set securityContext.allowPrivilegeEscalation=false"
        );
        assert!(violations(&spec, false).is_empty());
    }

    #[test]
    fn baseline_refuses_host_access() {
        let spec = json!({"hostNetwork": true, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}}}]});
        let reasons: Vec<String> = violations(&spec, false)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(
            reasons,
            [
                "non-default capabilities",
                "host namespaces",
                "hostPath volumes",
                "hostPort",
                "privileged"
            ]
        );
    }

    #[test]
    fn a_restricted_spec_passes() {
        let sc = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
        let spec = json!({"volumes": [{"name": "b", "emptyDir": {}}],
            "initContainers": [{"name": "i", "securityContext": sc}],
            "containers": [{"name": "c", "securityContext": sc}]});
        assert_eq!(violations(&spec, true), Vec::<(String, String)>::new());
    }

    #[test]
    fn added_capabilities_are_one_detail_naming_the_containers_and_each_capability_once() {
        // `CheckCapabilitiesBaseline` / `CheckCapabilitiesRestricted`: one detail, the bad
        // containers in order, the capabilities as a sorted set.
        let spec = json!({"containers": [
            {"name": "a", "securityContext": {"capabilities": {"add": ["SYS_TIME", "CHOWN", "NET_ADMIN"]}}},
            {"name": "b", "securityContext": {"capabilities":
                {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}},
            {"name": "c", "securityContext": {"capabilities": {"add": ["SYS_TIME"]}}}]});
        let of = |restricted: bool, reason: &str| {
            violations(&spec, restricted)
                .into_iter()
                .find(|(r, _)| r == reason)
                .map(|(_, d)| d)
        };
        assert_eq!(
            of(false, "non-default capabilities").as_deref(),
            Some(
                "containers \"a\", \"c\" must not include \"NET_ADMIN\", \"SYS_TIME\" in securityContext.capabilities.add"
            )
        );
        assert_eq!(
            of(true, "unrestricted capabilities").as_deref(),
            Some(
                "containers \"a\", \"c\" must set securityContext.capabilities.drop=[\"ALL\"]; containers \"a\", \"c\" must not include \"CHOWN\", \"NET_ADMIN\", \"SYS_TIME\" in securityContext.capabilities.add"
            )
        );
    }
}
