//! Create-time defaulting and validation hooks, per resource, as the API server applies them.

use crate::json::{Map, Value};

use crate::resources::ResourceDef;
use crate::selector::{at, at_mut};
use crate::status::FieldError;
use crate::validation::is_label_value;

/// Largest ConfigMap or Secret the API server accepts, in bytes of its JSON form.
pub const MAX_CONFIGMAP_BYTES: usize = 1_048_576;

/// Applies the resource's defaults to a new object (its uid is already set).
pub fn apply(def: &ResourceDef, obj: &mut Value) {
    if let Some(default) = defaulter(def) {
        default(obj);
    }
}

/// Whether [`apply`] may change objects of `def` at all (only Jobs and pods have defaults
/// here); for the others it leaves every object as it is.
pub fn has_defaults(def: &ResourceDef) -> bool {
    defaulter(def).is_some()
}

/// The defaulting of `def`'s objects, if it has any.
fn defaulter(def: &ResourceDef) -> Option<fn(&mut Value)> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("batch", "jobs") => Some(default_job),
        ("", "pods") => Some(default_pod),
        _ => None,
    }
}

fn default_pod(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        default_pod_spec(spec);
    }
    if obj.get("status").is_none_or(|s| !s.is_object()) {
        obj["status"] = Value::Object(Map::new());
    }
    if at(obj, "/status/phase").is_none() {
        obj["status"]["phase"] = Value::from("Pending");
        obj["status"]["qosClass"] = Value::from("BestEffort");
    }
}

/// Validates a new or updated object: every cause found, empty when valid.
pub fn validate(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    let mut causes = Vec::new();
    if let Some(labels) = at(obj, "/metadata/labels").and_then(Value::as_object) {
        for v in labels.values() {
            let v = v.as_str().unwrap_or_default();
            if !is_label_value(v) {
                causes.push(FieldError::invalid(
                    "metadata.labels",
                    v,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ));
            }
        }
    }
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "configmaps") => validate_configmap(obj, &mut causes),
        ("", "pods") => {
            if let Some(spec) = obj.get("spec") {
                validate_pod_spec("spec", spec, &mut causes);
            } else {
                causes.push(FieldError::required("spec.containers", ""));
            }
        }
        ("batch", "jobs") => match at(obj, "/spec/template/spec") {
            Some(spec) => {
                validate_pod_spec("spec.template.spec", spec, &mut causes);
                let policy = spec
                    .get("restartPolicy")
                    .and_then(Value::as_str)
                    .unwrap_or("Always");
                if policy != "Never" && policy != "OnFailure" {
                    causes.push(FieldError::not_supported(
                        "spec.template.spec.restartPolicy",
                        policy,
                        &["OnFailure", "Never"],
                    ));
                }
            }
            None => causes.push(FieldError::required("spec.template.spec.containers", "")),
        },
        _ => {}
    }
    crate::crd::validate(def, obj, &mut causes);
    causes
}

fn default_job(job: &mut Value) {
    let uid = at(job, "/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = at(job, "/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !job.get("spec").is_some_and(Value::is_object) {
        job["spec"] = Value::Object(Map::new());
    }
    let spec = &mut job["spec"];
    let manual = spec
        .get("manualSelector")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !manual {
        let mut match_labels = Map::new();
        match_labels.insert(
            "batch.kubernetes.io/controller-uid".into(),
            Value::from(uid.as_str()),
        );
        let mut selector = Map::new();
        selector.insert("matchLabels".into(), Value::Object(match_labels));
        spec["selector"] = Value::Object(selector);
        if !at(spec, "/template/metadata").is_some_and(Value::is_object) {
            if !spec.get("template").is_some_and(Value::is_object) {
                spec["template"] = Value::Object(Map::new());
            }
            spec["template"]["metadata"] = Value::Object(Map::new());
        }
        let tmeta = &mut spec["template"]["metadata"];
        if !tmeta.get("labels").is_some_and(Value::is_object) {
            tmeta["labels"] = Value::Object(Map::new());
        }
        let labels = &mut tmeta["labels"];
        labels["batch.kubernetes.io/controller-uid"] = Value::from(uid.as_str());
        labels["batch.kubernetes.io/job-name"] = Value::from(name.as_str());
        labels["controller-uid"] = Value::from(uid.as_str());
        labels["job-name"] = Value::from(name.as_str());
    }
    let both_unset = spec.get("completions").is_none() && spec.get("parallelism").is_none();
    if both_unset {
        spec["completions"] = Value::from(1);
        spec["parallelism"] = Value::from(1);
    } else if spec.get("parallelism").is_none() {
        spec["parallelism"] = Value::from(1);
    }
    set_default(spec, "backoffLimit", || Value::from(6));
    set_default(spec, "completionMode", || Value::from("NonIndexed"));
    set_default(spec, "suspend", || Value::Bool(false));
    set_default(spec, "podReplacementPolicy", || {
        Value::from("TerminatingOrFailed")
    });
    set_default(spec, "manualSelector", || Value::Null);
    if spec.get("manualSelector").is_some_and(Value::is_null)
        && let Some(m) = spec.as_object_mut()
    {
        m.remove("manualSelector");
    }
    if let Some(pod_spec) = at_mut(spec, "/template/spec") {
        default_pod_spec(pod_spec);
    }
    if !job.get("status").is_some_and(Value::is_object) {
        job["status"] = Value::Object(Map::new());
    }
}

/// Sets `key` to `value()` where the object has no `key` (nothing is allocated when it has).
fn set_default(obj: &mut Value, key: &str, value: impl FnOnce() -> Value) {
    if let Some(m) = obj.as_object_mut()
        && !m.contains_key(key)
    {
        m.insert(key.into(), value());
    }
}

/// Sets the string field `key` to `value` where it is missing, `null` or empty, as the
/// real defaulters test a string field (`if obj.SchedulerName == ""`): a client that sends
/// `""` gets the default.
fn set_default_string(obj: &mut Value, key: &str, value: &str) {
    if let Some(m) = obj.as_object_mut()
        && m.get(key)
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
    {
        m.insert(key.into(), Value::from(value));
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match name.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_containers(list: Option<&mut Value>) {
    let Some(Value::Array(containers)) = list else {
        return;
    };
    for c in containers {
        let image = c
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // `SetDefaults_Container` and `SetDefaults_ContainerPort` test these strings
        // against "", as `SetDefaults_PodSpec` does its own: an empty one is defaulted too.
        set_default_string(c, "terminationMessagePath", "/dev/termination-log");
        set_default_string(c, "terminationMessagePolicy", "File");
        set_default_string(c, "imagePullPolicy", image_pull_policy(&image));
        set_default(c, "resources", || Value::Object(Map::new()));
        if let Some(Value::Array(ports)) = c.get_mut("ports") {
            for port in ports {
                set_default_string(port, "protocol", "TCP");
            }
        }
    }
}

/// Applies the API server's pod spec defaults (`SetDefaults_PodSpec` and its kin in
/// pkg/apis/core/v1/defaults.go).
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default_string(spec, "restartPolicy", "Always");
    set_default(spec, "terminationGracePeriodSeconds", || Value::from(30));
    set_default_string(spec, "dnsPolicy", "ClusterFirst");
    set_default_string(spec, "schedulerName", "default-scheduler");
    set_default(spec, "securityContext", || Value::Object(Map::new()));
    set_default(spec, "enableServiceLinks", || Value::Bool(true));
    set_default(spec, "priority", || Value::from(0));
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| spec.get("serviceAccount").and_then(Value::as_str))
        .unwrap_or("default")
        .to_owned();
    // Written only where it differs (the same value again would change nothing, but
    // copy a spec shared with another version first).
    for k in ["serviceAccountName", "serviceAccount"] {
        if spec.get(k).and_then(Value::as_str) != Some(sa.as_str()) {
            spec[k] = Value::from(sa.as_str());
        }
    }
    default_containers(spec.get_mut("initContainers"));
    default_containers(spec.get_mut("containers"));
}

fn validate_pod_spec(path: &str, spec: &Value, causes: &mut Vec<FieldError>) {
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        causes.push(FieldError::required(&format!("{path}.containers"), ""));
    }
    let mut names = Vec::new();
    for (list, items) in [
        (
            "initContainers",
            spec.get("initContainers").and_then(Value::as_array),
        ),
        ("containers", containers),
    ] {
        for (i, c) in items.into_iter().flatten().enumerate() {
            let field = format!("{path}.{list}[{i}]");
            match c.get("name").and_then(Value::as_str) {
                None | Some("") => causes.push(FieldError::required(&format!("{field}.name"), "")),
                Some(n) => {
                    if names.contains(&n) {
                        causes.push(FieldError {
                            field: format!("{field}.name"),
                            reason: "FieldValueDuplicate",
                            value: Some(n.to_owned()),
                            detail: format!("Duplicate value: \"{n}\""),
                        });
                    }
                    names.push(n);
                }
            }
            if c.get("image")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(FieldError::required(&format!("{field}.image"), ""));
            }
        }
    }
}

fn is_config_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && k != "."
        && k != ".."
}

fn validate_configmap(obj: &Value, causes: &mut Vec<FieldError>) {
    let empty = Map::new();
    let data = obj.get("data").and_then(Value::as_object).unwrap_or(&empty);
    let binary = obj
        .get("binaryData")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (field, map) in [("data", data), ("binaryData", binary)] {
        for k in map.keys() {
            if !is_config_key(k) {
                causes.push(FieldError::invalid(
                    &format!("{field}[{k}]"),
                    k,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    for k in binary.keys() {
        if data.contains_key(k) {
            causes.push(FieldError::invalid(
                &format!("binaryData[{k}]"),
                k,
                "duplicate of key present in data",
            ));
        }
    }
    let size: usize = data
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .chain(binary.iter().map(|(k, v)| {
            // binaryData values are base64 in JSON: count the decoded bytes.
            k.len() + v.as_str().map_or(0, |s| s.len() / 4 * 3)
        }))
        .sum();
    if size > MAX_CONFIGMAP_BYTES {
        causes.push(FieldError::too_long("", MAX_CONFIGMAP_BYTES));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;
    use crate::resources::well_known;

    #[test]
    fn job_defaults_as_the_api_server() {
        let mut job = json!({"metadata": {"name": "j", "uid": "u1"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}});
        apply(well_known::jobs(), &mut job);
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["job-name"], "j");
        assert_eq!(labels["controller-uid"], "u1");
        assert_eq!(labels["batch.kubernetes.io/job-name"], "j");
        assert_eq!(job["spec"]["backoffLimit"], 6);
        assert_eq!(job["spec"]["completions"], 1);
        assert_eq!(job["spec"]["parallelism"], 1);
        let c = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(
            job["spec"]["template"]["spec"]["serviceAccountName"],
            "default"
        );
    }

    #[test]
    fn job_restart_policy_always_is_invalid() {
        let job = json!({"spec": {"template": {"spec": {"restartPolicy": "Always",
            "containers": [{"name": "c", "image": "busybox"}]}}}});
        let causes = validate(well_known::jobs(), &job);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template.spec.restartPolicy");
    }

    #[test]
    fn configmap_rules() {
        let cm = json!({"data": {"a": "x", "bad/key": "y"}, "binaryData": {"a": "eA=="}});
        let causes = validate(well_known::configmaps(), &cm);
        let fields: Vec<_> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["data[bad/key]", "binaryData[a]"]);
        let big = json!({"data": {"a": "x".repeat(MAX_CONFIGMAP_BYTES)}});
        assert_eq!(
            validate(well_known::configmaps(), &big)[0].reason,
            "FieldValueTooLong"
        );
    }
}
