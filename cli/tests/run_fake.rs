//! `cmdreporter run --fake`: the built binary, the embedded fake cluster with the process
//! runtime, and the same binary as courier. Exit codes, signals, JSON, and every error of
//! cmdreporter itself exiting 125 with one line.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use common::{assert_code, assert_error_line, cmdreporter, stderr, stdout};
use serde_json::Value;

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} / {}", stdout(o), stderr(o)))
}

#[test]
fn exit_codes_pass_through() {
    for code in [0, 1, 42, 255] {
        let o = cmdreporter(&["run", "--fake", "--", "sh", "-c", &format!("exit {code}")]);
        assert_code(&o, code);
    }
}

#[test]
fn a_signal_exits_128_plus_its_number() {
    let o = cmdreporter(&["run", "--fake", "--", "sh", "-c", "kill -TERM $$"]);
    assert_code(&o, 143);
    let o = cmdreporter(&["run", "--fake", "--", "sh", "-c", "kill -KILL $$"]);
    assert_code(&o, 137);
}

#[test]
fn a_command_that_cannot_be_executed_exits_126() {
    // A file of the image that is not executable. As root on Linux the fake runs the
    // container in its own mount namespace, with this machine's root filesystem but a fresh
    // /tmp, so a file written here under /tmp would not be there.
    let file = "/etc/passwd";
    let mode = std::fs::metadata(file).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0, "{file} is executable here");
    let o = cmdreporter(&["run", "--fake", "--", file]);
    assert_code(&o, 126);
    assert!(
        stderr(&o).contains("could not be started"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn json_for_utf8_output() {
    let o = cmdreporter(&[
        "run",
        "--fake",
        "--output",
        "json",
        "--",
        "sh",
        "-c",
        "printf 'h\\303\\251llo\\n'; printf 'warn\\n' >&2; exit 3",
    ]);
    assert_code(&o, 3);
    assert!(o.stderr.is_empty(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "one object on one line");
    let v = json(&o);
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["signal"], Value::Null);
    assert_eq!(v["stdout"], "héllo\n");
    assert_eq!(v["stderr"], "warn\n");
    assert!(v.get("stdout_base64").is_none());
    assert_eq!(v["stdout_truncated"], false);
    assert_eq!(v["stderr_truncated"], false);
    assert_eq!(v["transport"], "configmap");
    assert_eq!(v["namespace"], "default");
    assert!(v["job"].as_str().unwrap().starts_with("cmdreporter-"));
    assert!(v["duration_ms"].as_u64().is_some());
    // Create the Job, watch its pod and the ConfigMap, the courier's create, the delete.
    assert!(v["api_requests"].as_u64().unwrap() >= 4, "{v}");
}

#[test]
fn json_for_non_utf8_output_is_base64_byte_for_byte() {
    let o = cmdreporter(&[
        "run",
        "--fake",
        "--output=json",
        "--",
        "sh",
        "-c",
        "printf '\\377\\000\\376'; printf 'ok' >&2",
    ]);
    assert_code(&o, 0);
    let v = json(&o);
    assert!(v.get("stdout").is_none(), "{v}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v["stdout_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, [0xff, 0x00, 0xfe]);
    assert_eq!(v["stderr"], "ok");
    assert_eq!(v["exit_code"], 0);
}

#[test]
fn json_for_a_signal() {
    let o = cmdreporter(&[
        "run",
        "--fake",
        "--output",
        "json",
        "--",
        "sh",
        "-c",
        "kill -INT $$",
    ]);
    assert_code(&o, 130);
    let v = json(&o);
    assert_eq!(v["exit_code"], Value::Null);
    assert_eq!(v["signal"], 2);
}

#[test]
fn json_for_a_command_not_found() {
    let o = cmdreporter(&["run", "--fake", "--output", "json", "--", "/no/such/cmd"]);
    assert_code(&o, 127);
    let v = json(&o);
    assert_eq!(v["exit_code"], 127);
    assert_eq!(v["not_started"]["not_found"], true);
}

#[test]
fn json_for_an_error_of_cmdreporter() {
    let o = cmdreporter(&[
        "run",
        "--fake",
        "--output",
        "json",
        "--transport",
        "carrier-pigeon",
        "--",
        "true",
    ]);
    assert_code(&o, 125);
    let v = json(&o);
    assert_eq!(v["error"]["kind"], "unknown_transport");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("carrier-pigeon")
    );
    // A flag that does not parse, with --output json before it.
    let o = cmdreporter(&["run", "--output", "json", "--no-such-flag", "--", "true"]);
    assert_code(&o, 125);
    assert_eq!(json(&o)["error"]["kind"], "bad_flag");
}

#[test]
fn a_bad_flag_exits_125_with_one_line() {
    let o = cmdreporter(&["run", "--fake", "--no-such-flag", "--", "true"]);
    assert_error_line(&o, "bad flag: unexpected argument '--no-such-flag'");
    let o = cmdreporter(&["run", "--fake"]);
    assert_error_line(
        &o,
        "bad flag: the following required arguments were not provided",
    );
    let o = cmdreporter(&["run", "--fake", "--timeout", "5 minutes", "--", "true"]);
    assert_error_line(&o, "bad flag: invalid value '5 minutes' for '--timeout");
    let o = cmdreporter(&["run", "--fake", "--output", "yaml", "--", "true"]);
    assert_error_line(&o, "bad flag: invalid value 'yaml' for '--output");
}

#[test]
fn an_unknown_transport_exits_125_with_one_line() {
    let o = cmdreporter(&["run", "--fake", "--transport", "smoke", "--", "true"]);
    assert_error_line(&o, "unknown transport \"smoke\"");
}

#[test]
fn the_logs_transport_passes_everything_through() {
    let o = cmdreporter(&[
        "run",
        "--fake",
        "--transport",
        "logs",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_code(&o, 5);
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    let o = cmdreporter(&[
        "run",
        "--fake",
        "--transport",
        "logs",
        "--output",
        "json",
        "--",
        "sh",
        "-c",
        "printf '\\377'; kill -TERM $$",
    ]);
    assert_code(&o, 143);
    let v = json(&o);
    assert_eq!(v["transport"], "logs");
    assert_eq!(v["signal"], 15);
    assert_eq!(v["stdout_base64"], "/w==");
}

#[test]
fn invalid_input_exits_125_naming_the_field() {
    let o = cmdreporter(&["run", "--fake", "--name", "Bad_Name", "--", "true"]);
    assert_error_line(&o, "invalid request: name");
    let o = cmdreporter(&["run", "--fake", "--image", "Not An Image", "--", "true"]);
    assert_error_line(&o, "invalid request: image");
    let o = cmdreporter(&["run", "--fake", "--timeout", "0s", "--", "true"]);
    assert_error_line(&o, "invalid request: timeout");
}

#[test]
fn a_timeout_exits_125_naming_its_phase() {
    let o = cmdreporter(&["run", "--fake", "--timeout", "2s", "--", "sleep", "30"]);
    assert_error_line(&o, "timed out after 2s while running the command");
}

#[test]
fn an_unreachable_cluster_exits_125_with_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:1'}\n\
         users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n\
         current-context: x\n",
    )
    .unwrap();
    let o = cmdreporter(&["run", "--kubeconfig", kc.to_str().unwrap(), "--", "true"]);
    assert_error_line(&o, "cannot reach the cluster at http://127.0.0.1:1/");
    let o = cmdreporter(&[
        "run",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "missing",
        "--",
        "true",
    ]);
    assert_error_line(&o, "no usable cluster configuration");
}

#[test]
fn no_cluster_configuration_exits_125() {
    // No KUBECONFIG, a HOME without .kube, not in a pod.
    let o = cmdreporter(&["run", "--", "true"]);
    assert_error_line(&o, "no usable cluster configuration");
}

#[test]
fn progress_shows_on_a_terminal_only() {
    // Not a terminal: stderr carries the command's stderr and nothing else.
    let o = cmdreporter(&["run", "--fake", "--", "sh", "-c", "echo e >&2"]);
    assert_eq!(stderr(&o), "e\n");
    if !common::on_path("script") {
        eprintln!("skipped the terminal half: `script` (util-linux) is not installed");
        return;
    }
    // A pseudo-terminal through script(1): progress lines appear; -q silences them.
    let run = |quiet: &str| {
        let cmd = format!("{} run --fake {quiet} -- echo hi", common::BIN);
        let o = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("HOME", "/nonexistent-home")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).replace('\r', "")
    };
    let loud = run("");
    for milestone in [
        "created",
        "scheduled",
        "pulled",
        "report received",
        "deleted",
    ] {
        assert!(loud.contains(milestone), "{milestone:?} not in {loud:?}");
    }
    let quiet = run("-q");
    assert_eq!(quiet.trim(), "hi", "{quiet:?}");
}
