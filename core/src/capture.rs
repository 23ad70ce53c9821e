//! The courier's command execution: spawn argv directly, drain stdout and stderr at once
//! into bounded buffers (head and tail kept), wait, and record the exit code or signal.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::report::{Captured, ExitStatus, Omission, ReportedExit};

/// A started command: its output streams and its end.
pub struct Spawned {
    /// Standard output.
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// Standard error.
    pub stderr: Pin<Box<dyn AsyncRead + Send>>,
    /// Resolves when it ends.
    pub wait: BoxFuture<'static, io::Result<ExitStatus>>,
}

/// Starts commands: the operating system in a real pod, or a scripted runtime in tests.
pub trait Exec: Send + Sync {
    /// Starts `argv` with stdin closed and stdout and stderr piped.
    fn spawn(&self, argv: &[String]) -> io::Result<Spawned>;
}

/// Starts commands as processes of this machine, with stdin an empty pipe (closed at once)
/// rather than `/dev/null`: an image built `FROM scratch` run outside a container runtime
/// (a chroot) has no `/dev`, and a missing `/dev/null` must not pass for a missing command.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsExec;

impl Exec for OsExec {
    fn spawn(&self, argv: &[String]) -> io::Result<Spawned> {
        use std::os::unix::process::ExitStatusExt;
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        // Closing our end gives the command end-of-file on stdin.
        drop(child.stdin.take());
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr pipe"))?;
        Ok(Spawned {
            stdout: Box::pin(stdout),
            stderr: Box::pin(stderr),
            wait: Box::pin(async move {
                let status = child.wait().await?;
                Ok(match (status.code(), status.signal()) {
                    (Some(c), _) => ExitStatus::Code(c),
                    (None, Some(s)) => ExitStatus::Signal(s),
                    (None, None) => ExitStatus::Code(-1),
                })
            }),
        })
    }
}

/// How much of each stream is kept: the first `head` bytes and the last `tail` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureLimits {
    /// Bytes kept from the start.
    pub head: usize,
    /// Bytes kept from the end.
    pub tail: usize,
}

impl CaptureLimits {
    /// Keeps up to `total` bytes, half from the head and half from the tail.
    pub fn split(total: usize) -> Self {
        Self {
            head: total / 2,
            tail: total - total / 2,
        }
    }
}

/// A bounded buffer that keeps the head and the tail of a stream.
#[derive(Debug)]
pub struct Capture {
    limits: CaptureLimits,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Capture {
    /// An empty capture.
    pub fn new(limits: CaptureLimits) -> Self {
        Self {
            limits,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    /// Adds bytes.
    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.limits.head.saturating_sub(self.head.len());
        let take = room.min(data.len());
        self.head.extend_from_slice(&data[..take]);
        data = &data[take..];
        if self.limits.tail == 0 {
            return;
        }
        if data.len() >= self.limits.tail {
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.limits.tail..]);
        } else {
            let overflow = (self.tail.len() + data.len()).saturating_sub(self.limits.tail);
            self.tail.drain(..overflow);
            self.tail.extend(data);
        }
    }

    /// The kept bytes and what was left out.
    pub fn finish(self) -> Captured {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let omitted = (self.total > kept).then(|| Omission {
            at: self.head.len() as u64,
            bytes: self.total - kept,
        });
        let mut data = self.head;
        data.extend(self.tail);
        Captured {
            data,
            total_bytes: self.total,
            omitted,
        }
    }
}

/// The most read from a stream at once.
const READ_CHUNK: usize = 64 * 1024;

async fn drain(mut r: Pin<Box<dyn AsyncRead + Send>>, limits: CaptureLimits) -> Captured {
    let mut cap = Capture::new(limits);
    // Read into spare capacity (`read_buf`) rather than a zero-filled buffer: zeroing 64 KiB
    // per stream cost more than a short command's whole output.
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        buf.clear();
        match r.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return cap.finish(),
            Ok(n) => cap.push(&buf[..n]),
        }
    }
}

/// Runs `argv` once and captures its output within `limits` per stream.
pub async fn execute(
    exec: &dyn Exec,
    argv: &[String],
    limits: CaptureLimits,
) -> (ReportedExit, Captured, Captured) {
    let spawned = match exec.spawn(argv) {
        Ok(s) => s,
        Err(e) => {
            let not_found = e.kind() == io::ErrorKind::NotFound;
            let command = argv.first().cloned().unwrap_or_default();
            let message = if not_found {
                format!("{command}: command not found")
            } else {
                format!("{command}: {e}")
            };
            return (
                ReportedExit::NotStarted { not_found, message },
                Captured::default(),
                Captured::default(),
            );
        }
    };
    let (stdout, stderr, status) = tokio::join!(
        drain(spawned.stdout, limits),
        drain(spawned.stderr, limits),
        spawned.wait
    );
    let exit = match status {
        Ok(s) => ReportedExit::Exited(s),
        Err(e) => ReportedExit::NotStarted {
            not_found: false,
            message: format!("waiting for the command: {e}"),
        },
    };
    (exit, stdout, stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_exactly() {
        let mut c = Capture::new(CaptureLimits { head: 3, tail: 4 });
        for chunk in [&b"ab"[..], b"cdef", b"gh", b"ijklm"] {
            c.push(chunk);
        }
        let got = c.finish();
        assert_eq!(got.data, b"abcjklm");
        assert_eq!(got.total_bytes, 13);
        assert_eq!(got.omitted, Some(Omission { at: 3, bytes: 6 }));
    }

    #[test]
    fn small_streams_are_whole() {
        let mut c = Capture::new(CaptureLimits::split(10));
        c.push(b"hello");
        assert_eq!(c.finish(), Captured::complete(b"hello".to_vec()));
    }

    #[tokio::test]
    async fn runs_real_commands_and_sees_signals() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (exit, out, err) = execute(
            &OsExec,
            &argv(&["sh", "-c", "printf out; printf err >&2; exit 3"]),
            CaptureLimits::split(1024),
        )
        .await;
        assert_eq!(exit, ReportedExit::Exited(ExitStatus::Code(3)));
        assert_eq!(
            (out.data.as_slice(), err.data.as_slice()),
            (&b"out"[..], &b"err"[..])
        );
        let (exit, _, _) = execute(
            &OsExec,
            &argv(&["sh", "-c", "kill -9 $$"]),
            CaptureLimits::split(8),
        )
        .await;
        assert_eq!(exit, ReportedExit::Exited(ExitStatus::Signal(9)));
        let (exit, _, _) =
            execute(&OsExec, &argv(&["/no/such/cmd"]), CaptureLimits::split(8)).await;
        assert!(matches!(
            exit,
            ReportedExit::NotStarted {
                not_found: true,
                ..
            }
        ));
    }
}
