//! Helpers of the binary's tests: run the built `cmdreporter`, serve the fake cluster.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cmdreporter");

/// Runs the binary with `args`, no kubeconfig of this machine in sight.
pub fn cmdreporter(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

/// The command, with an environment that cannot see this machine's kubeconfig.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("CMDREPORTER_LOG")
        .env("HOME", "/nonexistent-home");
    c
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing stderr when it differs.
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stderr: {}", stderr(o));
}

/// Asserts that stderr is exactly one line starting with `cmdreporter: ` and containing
/// `needle`, and the exit code 125.
pub fn assert_error_line(o: &Output, needle: &str) {
    assert_code(o, 125);
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("cmdreporter: "), "{err:?}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
}

/// `cmdreporter fake-cluster serve` running in the background; killed when dropped.
pub struct Served {
    child: Child,
    /// The server's URL.
    pub url: String,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts serving with extra arguments and waits for the URL line.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut args = vec![
            "fake-cluster",
            "serve",
            "--kubeconfig-out",
            kubeconfig.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let mut child = command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned();
        assert!(url.starts_with("http"), "no URL in {first:?}");
        assert!(kubeconfig.exists());
        Self {
            child,
            url,
            kubeconfig,
            _dir: dir,
        }
    }

    /// A command with `KUBECONFIG` naming this server.
    pub fn with_kubeconfig(&self, program: &str, args: &[&str]) -> Command {
        let mut c = if program == BIN {
            command(args)
        } else {
            let mut c = Command::new(program);
            c.args(args);
            c
        };
        c.env("KUBECONFIG", &self.kubeconfig);
        c
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SIGTERM, as Ctrl-C would, then reap.
        unsafe_free_terminate(self.child.id());
        let _ = self.child.wait();
    }
}

fn unsafe_free_terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| Path::new(&d).join(program).is_file()))
        .unwrap_or(false)
}
