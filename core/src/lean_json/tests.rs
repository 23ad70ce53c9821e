//! The lean pod reader against serde_json.

use rand::{Rng, SeedableRng};
use serde_json::json;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

/// The pod of one run at step `step`: scheduled from step 1, its containers' states
/// growing, deleted at step 5.
fn pod_line(step: usize) -> String {
    let mut spec = json!({"containers": [{"name": "cmd", "image": "bench:1",
        "command": ["/var/run/cmdreporter/cmdreporter", "report", "--", "/bin/x"],
        "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}],
        "resources": {}, "securityContext": {"capabilities": {"drop": ["ALL"]}}}],
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 30, "priority": 0,
        "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 300}],
        "volumes": [{"name": "v", "emptyDir": {}}]});
    if step >= 1 {
        spec["nodeName"] = json!("node-1");
    }
    let mut meta = json!({"name": "p-1", "namespace": "default", "uid": "u-1",
        "resourceVersion": (10 + step).to_string(), "labels": {"a": "b", "c": "d"},
        "creationTimestamp": "2026-12-01T14:03:55Z",
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j",
            "uid": "ju", "controller": true}]});
    if step >= 5 {
        meta["deletionTimestamp"] = json!("2026-12-01T14:03:56Z");
    }
    let states = ["waiting", "running", "terminated"];
    let state = states[step.min(2)];
    let status = json!({"phase": if step >= 3 { "Succeeded" } else { "Pending" },
        "conditions": [{"type": "PodScheduled", "status": "True",
            "lastTransitionTime": "2026-12-01T14:03:55Z", "lastProbeTime": null}],
        "containerStatuses": [{"name": "cmd", "image": "bench:1", "imageID": "sha",
            "ready": false, "restartCount": 0,
            "state": {state: if state == "terminated" { json!({"exitCode": 0}) } else { json!({}) }}}]});
    let ty = if step == 0 { "ADDED" } else { "MODIFIED" };
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": spec, "status": status});
    format!("{{\"type\":\"{ty}\",\"object\":{object}}}")
}

/// The outcome serde_json gives, and the reader's, side by side.
fn both(
    reader: &mut impl FnMut(&str) -> serde_json::Result<WatchEvent<Lean<Pod>>>,
    line: &str,
) -> (Result<String, String>, Result<String, String>) {
    let show = |r: serde_json::Result<WatchEvent<Lean<Pod>>>| match r {
        Ok(WatchEvent::Added(p)) => Ok(format!("added {:?}", p.0)),
        Ok(WatchEvent::Modified(p)) => Ok(format!("modified {:?}", p.0)),
        Ok(WatchEvent::Deleted(p)) => Ok(format!("deleted {:?}", p.0)),
        Ok(WatchEvent::Bookmark(b)) => Ok(format!("bookmark {:?}", b.metadata.resource_version)),
        Ok(WatchEvent::Error(e)) => Ok(format!("error {e:?}")),
        Err(e) => Err(e.to_string()),
    };
    (
        show(serde_json::from_str::<WatchEvent<Lean<Pod>>>(line)),
        show(reader(line)),
    )
}

#[test]
fn a_run_s_pod_events_read_as_serde_reads_them() {
    let mut reader = event_reader::<Pod>();
    for step in 0..7 {
        let (serde, ours) = both(&mut reader, &pod_line(step));
        assert!(serde.is_ok(), "{serde:?}");
        assert_eq!(ours, serde, "step {step}");
    }
}

#[test]
fn an_unchanged_spec_is_taken_from_the_last_pod() {
    let mut reader = PodReader::default();
    let object = |step| {
        let line = pod_line(step);
        envelope(&line)
            .map(|(_, o)| o.to_owned())
            .unwrap_or_default()
    };
    for step in 0..7 {
        let pod = reader.read(&object(step)).unwrap();
        let node = pod.spec.and_then(|s| s.node_name);
        assert_eq!(node.is_some(), step >= 1);
    }
    // Step 1 binds the pod (a new spec); steps 2 to 6 repeat it.
    assert_eq!(reader.reused, 5);
}

#[test]
fn other_layouts_bookmarks_and_errors_read_as_serde_reads_them() {
    let mut reader = event_reader::<Pod>();
    let good = pod_line(2);
    let object = good
        .strip_prefix("{\"type\":\"MODIFIED\",\"object\":")
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_default()
        .to_owned();
    let lines = [
        good.clone(),
        format!("{{\"object\":{object},\"type\":\"MODIFIED\"}}"),
        format!("{{\"type\":\"MODIFIED\",\"object\":{object} }}\r\n"),
        format!("{{\"type\":\"MODIFIED\",\"object\":{object},\"x\":1}}"),
        format!("{{\"type\":\"GONE\",\"object\":{object}}}"),
        "{\"type\":\"MODIFIED\",\"object\":null}".to_owned(),
        "{\"type\":\"MODIFIED\",\"object\":{}}".to_owned(),
        "{\"type\":\"MODIFIED\",\"object\":{\"spec\":null,\"metadata\":null}}".to_owned(),
        "{\"type\":\"MODIFIED\",\"object\":{\"spec\":{},\"spec\":{}}}".to_owned(),
        "{\"type\":\"MODIFIED\",\"object\":{\"me\\u0074adata\":{\"name\":\"x\"}}}".to_owned(),
        "{\"type\":\"MODIFIED\",\"object\":[{\"name\":\"x\"}]}".to_owned(),
        "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"12\"}}}".to_owned(),
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"gone\",\"reason\":\"Expired\",\"code\":410}}".to_owned(),
        good,
    ];
    for line in &lines {
        let (serde, ours) = both(&mut reader, line);
        assert_eq!(ours, serde, "{line}");
    }
}

/// Lines broken at seeded places (a byte dropped, replaced or doubled), read after a
/// good line of the same pod (so that the remembered spec is offered): the reader gives
/// what serde_json gives, value or error.
#[test]
fn broken_lines_read_as_serde_reads_them() {
    let bytes = b"{}[]\",:\\ 0an-";
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x2545_f491_4f6c_dd1d);
    let mut next = |n: usize| rng.random_range(0..n);
    let mut differed = 0;
    for round in 0..3_000 {
        let mut reader = event_reader::<Pod>();
        let good = pod_line(1 + round % 5);
        let _ = reader(&pod_line(1));
        let mut broken = good.clone().into_bytes();
        let at = next(broken.len());
        match next(3) {
            0 => {
                broken.remove(at);
            }
            1 => broken[at] = bytes[next(bytes.len())],
            _ => broken.insert(at, broken[at]),
        }
        let Ok(line) = String::from_utf8(broken) else {
            continue;
        };
        let (serde, ours) = both(&mut reader, &line);
        differed += usize::from(serde.is_err());
        assert_eq!(ours, serde, "{line}");
    }
    assert!(differed > 500, "only {differed} broken lines were errors");
}

/// Watch event lines of pods written by the fake cluster in the end-to-end tests (runs
/// that succeed, fail to pull, fail to start, are deleted; messages with quotes).
const FIXTURE: &str = include_str!("testdata/pod_events.jsonl");

#[test]
fn the_fake_cluster_s_pod_events_read_as_serde_reads_them() {
    let mut reader = PodReader::default();
    let mut events = 0;
    for line in FIXTURE.lines() {
        let Some((_, object)) = envelope(line) else {
            continue;
        };
        events += 1;
        let serde = serde_json::from_str::<Lean<Pod>>(object).map(|l| l.0);
        let ours = reader.read(object);
        assert_eq!(ours.as_ref().ok(), serde.as_ref().ok(), "{line}");
        assert!(serde.is_ok());
    }
    assert!(events >= 20);
    // Every one of them read here, not by serde_json.
    assert_eq!(reader.read_here, events);
}

/// Raw JSON texts put in place of a value.
const VALUES: &[&str] = &[
    "null",
    "-1",
    "0",
    "-0",
    "2147483647",
    "2147483648",
    "-2147483649",
    "1.0",
    "1e2",
    "12345678901234567890",
    "007",
    "true",
    "false",
    "[]",
    "{}",
    "[[[]]]",
    "{\"zz\":[1,{\"a\":null}],\"y\":-2.5e-3}",
    "\"a\\u00e9\\n\\\"q\\\\ \\/ \\b\\f\\r\\t\"",
    "\"\\ud83d\\ude00 x\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"é€😀\"",
    "\"bad \\x\"",
    "\"tab\there\"",
    "\"2026-12-02T00:47:29Z\"",
    "\"2026-12-02T00:47:29.5+01:00\"",
    "\"2026-13-02T00:47:29Z\"",
    "\"x\"",
    "[\"a\",\"b\"]",
    "[{\"ip\":\"10.0.0.9\"}]",
    "{\"a\":\"b\",\"a\":\"c\"}",
];

/// Member names put in an object: unknown ones, and ones the readers leave to serde_json.
const NAMES: &[&str] = &[
    "zzUnknown",
    "managedFields",
    "resourceClaimStatuses",
    "allocatedResources",
    "resources",
    "user",
    "volumeStatus",
    "ip",
    "type",
    "name",
];

/// `v` written with `"@@MUT@@"` standing for `raw`.
fn with_raw(v: &serde_json::Value, raw: &str) -> String {
    v.to_string().replace("\"@@MUT@@\"", raw)
}

/// Every JSON pointer in `v`.
fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// A pod event line changed at one seeded place, still JSON (mostly): a value replaced, a
/// member added, removed, doubled or its key escaped, whitespace added.
fn mutate(object: &str, next: &mut impl FnMut(usize) -> usize) -> String {
    let mut v: serde_json::Value = serde_json::from_str(object).unwrap();
    let mut all = Vec::new();
    pointers(&v, String::new(), &mut all);
    let at = all[next(all.len())].clone();
    let pick = |n: &mut dyn FnMut(usize) -> usize, list: &[&'static str]| list[n(list.len())];
    match next(6) {
        0 => {
            let raw = pick(next, VALUES);
            *v.pointer_mut(&at).unwrap() = "@@MUT@@".into();
            with_raw(&v, raw)
        }
        1 => {
            let raw = pick(next, VALUES);
            let name = pick(next, NAMES);
            match v.pointer_mut(&at).unwrap() {
                serde_json::Value::Object(m) => {
                    m.insert(name.into(), "@@MUT@@".into());
                }
                other => *other = serde_json::json!({name: "@@MUT@@"}),
            }
            with_raw(&v, raw)
        }
        2 => {
            if let Some((parent, key)) = at.rsplit_once('/')
                && let Some(serde_json::Value::Object(m)) = v.pointer_mut(parent)
            {
                m.remove(key);
            }
            v.to_string()
        }
        kind => {
            // Doubled (3), key escaped (4) or spaced out (5), written as raw text.
            let node = v.pointer(&at).unwrap().clone();
            let raw = match (&node, kind) {
                (serde_json::Value::Object(m), 3 | 4) if !m.is_empty() => {
                    let (k, x) = m.iter().nth(next(m.len())).unwrap();
                    let rest = node.to_string();
                    let key = if kind == 4 {
                        let mut chars = k.chars();
                        let c = chars.next().unwrap();
                        format!("\\u{:04x}{}", c as u32, chars.as_str())
                    } else {
                        k.clone()
                    };
                    let first = if kind == 3 {
                        format!("\"{key}\":{},", x)
                    } else {
                        String::new()
                    };
                    if kind == 3 {
                        format!("{{{first}{}", &rest[1..])
                    } else {
                        rest.replacen(&format!("\"{k}\":"), &format!("\"{key}\":"), 1)
                    }
                }
                _ => serde_json::to_string_pretty(&node).unwrap(),
            };
            *v.pointer_mut(&at).unwrap() = "@@MUT@@".into();
            with_raw(&v, &raw)
        }
    }
}

/// Real pod events changed at one seeded place each, read after the previous event of the
/// same watch (so that its spec may be taken from the last): the reader gives what
/// serde_json gives, value or error, and reads most of them itself.
#[test]
fn changed_pod_events_read_as_serde_reads_them() {
    let lines: Vec<&str> = FIXTURE
        .lines()
        .filter(|l| l.contains("\"kind\":\"Pod\""))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    let mut next = |n: usize| rng.random_range(0..n);
    let (mut errors, mut here, rounds) = (0, 0, 4_000);
    for round in 0..rounds {
        let i = round % lines.len();
        let mut reader = PodReader::default();
        let _ = reader.read(envelope(lines[i.saturating_sub(1)]).unwrap().1);
        let before = reader.read_here;
        let line = mutate(envelope(lines[i]).unwrap().1, &mut next);
        let object = line.as_str();
        let serde = serde_json::from_str::<Lean<Pod>>(object).map(|l| l.0);
        let ours = reader.read(object);
        match (&serde, &ours) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{line}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{line}"),
            _ => panic!("serde {serde:?}, ours {ours:?}: {line}"),
        }
        errors += usize::from(serde.is_err());
        here += usize::try_from(reader.read_here - before).unwrap();
    }
    assert!(errors > rounds / 10, "only {errors} errors");
    assert!(here > rounds / 2, "only {here} read without serde_json");
}

/// Every member the readers know, per type, given a value no type of theirs reads
/// (`[[[]]]`): serde_json refuses it, so the reader must not skip it as unknown; an unknown
/// member in the same place is skipped, as serde does.
#[test]
fn no_known_member_is_skipped() {
    use super::meta::{META, OWNER_REFERENCE};
    use super::status::*;
    assert!(fields::readers_know_every_member());
    let places: &[(&str, &[&[&str]])] = &[
        ("{\"metadata\":@}", &[META]),
        (
            "{\"metadata\":{\"ownerReferences\":[@]}}",
            &[OWNER_REFERENCE],
        ),
        ("{\"spec\":@}", &[&["nodeName"]]),
        ("{\"status\":@}", &[STATUS_READ, STATUS_LEFT]),
        ("{\"status\":{\"conditions\":[@]}}", &[CONDITION]),
        ("{\"status\":{\"hostIPs\":[@]}}", &[IP]),
        ("{\"status\":{\"podIPs\":[@]}}", &[IP]),
        (
            "{\"status\":{\"containerStatuses\":[@]}}",
            &[CONTAINER_READ, CONTAINER_LEFT],
        ),
        (
            "{\"status\":{\"initContainerStatuses\":[{\"volumeMounts\":[@]}]}}",
            &[MOUNT_READ, MOUNT_LEFT],
        ),
        (
            "{\"status\":{\"ephemeralContainerStatuses\":[{\"state\":@}]}}",
            &[STATE],
        ),
        (
            "{\"status\":{\"containerStatuses\":[{\"lastState\":{\"running\":@}}]}}",
            &[RUNNING],
        ),
        (
            "{\"status\":{\"containerStatuses\":[{\"state\":{\"terminated\":@}}]}}",
            &[TERMINATED],
        ),
        (
            "{\"status\":{\"containerStatuses\":[{\"state\":{\"waiting\":@}}]}}",
            &[WAITING],
        ),
    ];
    for (place, names) in places {
        for name in names.iter().flat_map(|n| n.iter()).chain(&["zzUnknown"]) {
            let text = place.replace('@', &format!("{{\"{name}\":[[[]]]}}"));
            let mut reader = PodReader::default();
            let serde = serde_json::from_str::<Lean<Pod>>(&text).map(|l| l.0);
            let ours = reader.read(&text);
            let left = [STATUS_LEFT, CONTAINER_LEFT, MOUNT_LEFT]
                .iter()
                .any(|l| l.contains(name));
            if *name == "zzUnknown" {
                assert!(serde.is_ok(), "{text}");
                assert_eq!(reader.read_here, 1, "{text}");
            } else if left {
                // Left to serde_json (which knows it or not, by Kubernetes version).
                assert_eq!(reader.read_here, 0, "{text}");
            } else {
                assert!(serde.is_err(), "{text}");
                assert_eq!(reader.read_here, 0, "{text}");
            }
            assert_eq!(
                ours.map_err(|e| e.to_string()),
                serde.map_err(|e| e.to_string())
            );
        }
    }
}

#[test]
fn a_timestamp_read_again_is_the_same_value() {
    let mut times = Times::default();
    let texts = [
        "\"2026-12-02T00:47:29Z\"",
        "\"2026-12-02T00:47:30Z\"",
        "\"2026-12-02T01:00:00+01:00\"",
    ];
    for round in 0..3 {
        for (i, text) in texts.iter().chain(&texts[..1]).enumerate() {
            let want: Time = serde_json::from_str(text).unwrap();
            let got = times.time(&mut Scan::new(text));
            assert_eq!(got, Some(want), "round {round}, {i}");
        }
    }
    assert_eq!(times.time(&mut Scan::new("\"yesterday\"")), None);
}

/// A Job as the API server answers its create (managedFields of the whole spec).
fn job_json() -> serde_json::Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "j", "namespace": "default", "uid": "ju", "resourceVersion": "7",
            "generation": 1, "creationTimestamp": "2026-12-02T00:47:29Z",
            "labels": {"cmdreporter.io/run-id": "r1", "app.kubernetes.io/managed-by": "cmdreporter"},
            "managedFields": [{"manager": "cmdreporter", "operation": "Update", "apiVersion": "batch/v1",
                "time": "2026-12-02T00:47:29Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers":
                    {"k:{\"name\":\"cmd\"}": {".": {}, "f:image": {}}}}}}}}]},
        "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [{"name": "cmd",
            "image": "bench:1", "command": ["/x", "--", "a \"b\""]}], "restartPolicy": "Never"}}},
        "status": {"active": 1, "startTime": "2026-12-02T00:47:29Z",
            "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": null}]}})
}

/// A Job's text, and seeded changes of it, read as serde_json reads `Lean<Job>`.
#[test]
fn jobs_read_as_serde_reads_them() {
    let text = job_json().to_string();
    let job = read_job(&text).unwrap();
    assert_eq!(job.metadata.uid.as_deref(), Some("ju"));
    assert!(job.metadata.managed_fields.is_none() && job.spec.is_none());
    assert_eq!(job.status.as_ref().and_then(|s| s.active), Some(1));
    assert!(job_members(&text).is_some());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x51_7cc1_b727_220a);
    let mut next = |n: usize| rng.random_range(0..n);
    let (mut errors, mut here) = (0, 0);
    for _ in 0..2_000 {
        let changed = mutate(&text, &mut next);
        let serde = serde_json::from_str::<Lean<Job>>(&changed).map(|l| l.0);
        let ours = read_job(&changed);
        match (&serde, &ours) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{changed}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{changed}"),
            _ => panic!("serde {serde:?}, ours {ours:?}: {changed}"),
        }
        errors += usize::from(serde.is_err());
        here += usize::from(job_members(&changed).is_some());
    }
    assert!(
        errors > 100 && here > 1_000,
        "{errors} errors, {here} read here"
    );
}
