//! The README's main command: the real `cmdreporter` binary, `run --fake`, with the fake
//! cluster's process runtime running the same binary as the courier.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

fn cmdreporter(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cmdreporter"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn echo_hi_through_the_whole_flow() {
    let out = cmdreporter(&["run", "--fake", "--", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn streams_and_exit_code_pass_through() {
    let out = cmdreporter(&[
        "run",
        "--fake",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn a_missing_command_exits_127() {
    let out = cmdreporter(&["run", "--fake", "--", "/no/such/command"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_input_exits_125_with_the_field() {
    let out = cmdreporter(&["run", "--fake", "--name", "Bad_Name", "--", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid request: name"), "{err}");
}
