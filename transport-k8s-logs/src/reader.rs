//! The operator's reader: finds this run's frame in a container log read as a stream, in
//! bounded memory, and rebuilds the report.

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cmdreporter_core::Report;
use flate2::write::DeflateDecoder;
use futures::io::{AsyncBufRead, AsyncBufReadExt};
use sha2::{Digest, Sha256};

use crate::error::ReadError;
use crate::frame::{CHUNK_BYTES, Encoding, FRAME_VERSION, Header, Line, MAX_FRAME_LINE, PREFIX};
use crate::payload::Decoder;

/// What a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The most transmitted bytes a frame may declare (default 64 MiB).
    pub max_payload: u64,
    /// The most a compressed payload may inflate to (default 64 MiB).
    pub max_inflated: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_payload: 64 * 1024 * 1024,
            max_inflated: 64 * 1024 * 1024,
        }
    }
}

/// Whose report the reader waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The run id.
    pub run_id: String,
    /// The uid of the pod whose log is read, when known: a frame of the run from another
    /// pod is refused too.
    pub pod_uid: Option<String>,
}

/// The longest line kept in memory; longer lines are skipped (or, inside this run's frame,
/// make it corrupt).
const MAX_LINE: usize = 2 * MAX_FRAME_LINE;

enum Body {
    Identity(Decoder),
    Deflate(Box<DeflateDecoder<Decoder>>),
}

struct OpenFrame {
    header: Header,
    next_seq: u64,
    received: u64,
    ended_short: bool,
    hasher: Sha256,
    body: Body,
}

impl OpenFrame {
    fn new(header: Header) -> Self {
        let decoder = Decoder::new(header.raw_len);
        let body = match header.encoding {
            Encoding::Identity => Body::Identity(decoder),
            Encoding::Deflate => Body::Deflate(Box::new(DeflateDecoder::new(decoder))),
        };
        Self {
            header,
            next_seq: 0,
            received: 0,
            ended_short: false,
            hasher: Sha256::new(),
            body,
        }
    }

    fn data(&mut self, seq: u64, text: &str, chunk: &mut [u8]) -> Result<(), ReadError> {
        if seq != self.next_seq {
            return Err(ReadError::Corrupt(format!(
                "sequence: data line {seq} where line {} was expected",
                self.next_seq
            )));
        }
        if self.ended_short {
            return Err(ReadError::Corrupt(format!(
                "sequence: data line {seq} after a short (last) line"
            )));
        }
        let n = B64
            .decode_slice(text.as_bytes(), chunk)
            .map_err(|e| ReadError::Corrupt(format!("data line {seq}: base64: {e}")))?;
        self.received += n as u64;
        if self.received > self.header.len {
            return Err(ReadError::Corrupt(format!(
                "more than the {} bytes the header declares",
                self.header.len
            )));
        }
        self.ended_short = n < CHUNK_BYTES;
        self.next_seq += 1;
        self.hasher.update(&chunk[..n]);
        let written = match &mut self.body {
            Body::Identity(d) => d.write_all(&chunk[..n]).map_err(|e| (d.take_error(), e)),
            Body::Deflate(d) => d
                .write_all(&chunk[..n])
                .map_err(|e| (d.get_mut().take_error(), e)),
        };
        written.map_err(|(typed, io)| {
            typed.unwrap_or_else(|| ReadError::Corrupt(format!("deflate: {io}")))
        })
    }

    fn end(self, run: &str, chunks: u64) -> Result<Report, ReadError> {
        let h = &self.header;
        if run != h.run_id || chunks != self.next_seq {
            return Err(ReadError::Corrupt(format!(
                "end line of run {run:?} after {chunks} lines, but {} lines of run {:?} were read",
                self.next_seq, h.run_id
            )));
        }
        if self.received != h.len {
            return Err(ReadError::Corrupt(format!(
                "{} bytes received, {} declared",
                self.received, h.len
            )));
        }
        if self.hasher.finalize().as_slice() != h.sha256 {
            return Err(ReadError::Corrupt("SHA-256 checksum mismatch".into()));
        }
        let decoder = match self.body {
            Body::Identity(d) => d,
            Body::Deflate(d) => d
                .finish()
                .map_err(|e| ReadError::Corrupt(format!("deflate: {e}")))?,
        };
        let report = decoder.finish()?;
        if report.run_id != h.run_id || report.pod_uid != h.pod_uid {
            return Err(ReadError::Corrupt(format!(
                "the payload is of run {:?} pod {:?}, its header of run {:?} pod {:?}",
                report.run_id, report.pod_uid, h.run_id, h.pod_uid
            )));
        }
        Ok(report)
    }
}

enum State {
    /// Outside any frame.
    Outside,
    /// Inside this run's frame.
    Open(Box<OpenFrame>),
    /// Inside a frame that is skipped (another run's, or one already found broken).
    Skipping,
}

/// What was seen besides a good frame, to name the right error at the end.
#[derive(Default)]
struct Findings {
    ours: Option<ReadError>,
    bad_header: Option<String>,
    orphan: bool,
    other_version: Option<String>,
    other_run: Option<ReadError>,
}

impl Findings {
    fn into_error(self) -> ReadError {
        if let Some(e) = self.ours {
            return e;
        }
        if let Some(m) = self.bad_header {
            return ReadError::Corrupt(format!("unreadable frame header: {m}"));
        }
        if self.orphan {
            return ReadError::Truncated(
                "frame lines without their header: the start of the log is gone (rotated by \
                 the kubelet at containerLogMaxSize, which serves only the current file)"
                    .into(),
            );
        }
        if let Some(found) = self.other_version {
            return ReadError::Unsupported {
                found,
                supported: FRAME_VERSION.into(),
            };
        }
        self.other_run.unwrap_or(ReadError::NoReport)
    }
}

/// Reads the next line into `line` (without its newline), keeping at most [`MAX_LINE`]
/// bytes of it. `Ok(None)` at the end; `Ok(Some(true))` when the line was longer.
async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut overlong = false;
    let mut any = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(any.then_some(overlong));
        }
        any = true;
        let (part, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        if part.len() > room {
            overlong = true;
        }
        line.extend_from_slice(&part[..part.len().min(room)]);
        let found_newline = done == part.len() + 1;
        reader.consume_unpin(done);
        if found_newline {
            return Ok(Some(overlong));
        }
    }
}

/// Reads a container log to the first good frame of the expected run and returns its
/// report, skipping every other line. Memory: one line, one chunk, and the report itself
/// (allocated once at its declared size, which `limits` bound).
///
/// ```
/// # use cmdreporter_core::{Captured, ExitStatus, Report, ReportedExit};
/// # use cmdreporter_k8s_logs::reader::{Expected, ReadLimits, read_report};
/// # use cmdreporter_k8s_logs::send::{EncodeOptions, encode_frame};
/// # futures::executor::block_on(async {
/// let report = Report {
///     schema_version: "1.0".into(),
///     run_id: "abc".into(),
///     pod_uid: "uid-1".into(),
///     exit: ReportedExit::Exited(ExitStatus::Code(3)),
///     stdout: Captured::complete(b"out".to_vec()),
///     stderr: Captured::complete(b"err".to_vec()),
/// };
/// let mut log = b"a warning of the courier\n".to_vec();
/// log.extend(encode_frame(&report, &EncodeOptions::default()).unwrap().to_bytes());
/// let expected = Expected { run_id: "abc".into(), pod_uid: Some("uid-1".into()) };
/// let got = read_report(&log[..], &expected, &ReadLimits::default()).await.unwrap();
/// assert_eq!(got, report);
/// # });
/// ```
pub async fn read_report<R: AsyncBufRead + Unpin>(
    mut reader: R,
    expected: &Expected,
    limits: &ReadLimits,
) -> Result<Report, ReadError> {
    let mut line = Vec::with_capacity(MAX_LINE);
    let mut chunk = vec![0u8; CHUNK_BYTES + 3];
    let mut state = State::Outside;
    let mut seen = Findings::default();
    while let Some(overlong) = next_line(&mut reader, &mut line)
        .await
        .map_err(ReadError::Io)?
    {
        if overlong {
            if matches!(state, State::Open(_)) && line.starts_with(PREFIX.as_bytes()) {
                seen.ours.get_or_insert(ReadError::Corrupt(format!(
                    "a frame line longer than {MAX_LINE} bytes"
                )));
                state = State::Skipping;
            }
            continue;
        }
        match crate::frame::classify(&line) {
            Line::Foreign => {}
            Line::Begin(header) => {
                if let State::Open(f) = &state {
                    seen.ours.get_or_insert(ReadError::Truncated(format!(
                        "a new frame starts after {} of the {} bytes of the frame of run {:?}",
                        f.received, f.header.len, f.header.run_id
                    )));
                }
                state = match header {
                    Err(m) => {
                        seen.bad_header.get_or_insert(m);
                        State::Skipping
                    }
                    Ok(h) => match open(h, expected, limits) {
                        Ok(f) => State::Open(Box::new(f)),
                        Err((e, ours)) => {
                            tracing::debug!(error = %e, "skipping a frame");
                            if ours {
                                seen.ours.get_or_insert(e);
                            } else {
                                seen.other_run.get_or_insert(e);
                            }
                            State::Skipping
                        }
                    },
                };
            }
            Line::Data { seq, text } => match &mut state {
                State::Open(f) => {
                    if let Err(e) = f.data(seq, text, &mut chunk) {
                        seen.ours.get_or_insert(e);
                        state = State::Skipping;
                    }
                }
                State::Outside => seen.orphan = true,
                State::Skipping => {}
            },
            Line::End(end) => match (std::mem::replace(&mut state, State::Outside), end) {
                (State::Open(f), Ok((run, chunks))) => match f.end(&run, chunks) {
                    Ok(report) => return Ok(report),
                    Err(e) => {
                        seen.ours.get_or_insert(e);
                    }
                },
                (State::Open(_), Err(m)) => {
                    seen.ours
                        .get_or_insert(ReadError::Corrupt(format!("end line: {m}")));
                }
                (State::Outside, Ok((run, _))) if run == expected.run_id => seen.orphan = true,
                _ => {}
            },
            Line::OtherVersion(v) => {
                seen.other_version.get_or_insert(v);
            }
        }
    }
    if let State::Open(f) = state {
        seen.ours.get_or_insert(ReadError::Truncated(format!(
            "the log ends after {} of the {} bytes of the frame (the courier was stopped or \
             the log was cut)",
            f.received, f.header.len
        )));
    }
    Err(seen.into_error())
}

/// Opens a frame of the expected run; otherwise the error and whether the frame was of
/// this run.
fn open(
    h: Header,
    expected: &Expected,
    limits: &ReadLimits,
) -> Result<OpenFrame, (ReadError, bool)> {
    let other_pod = expected.pod_uid.as_ref().is_some_and(|p| *p != h.pod_uid);
    if h.run_id != expected.run_id || other_pod {
        return Err((
            ReadError::OtherRun {
                found_run: h.run_id,
                found_pod: h.pod_uid,
                expected_run: expected.run_id.clone(),
            },
            false,
        ));
    }
    if h.len > limits.max_payload {
        return Err((
            ReadError::TooLarge {
                what: "payload",
                size: h.len,
                limit: limits.max_payload,
            },
            true,
        ));
    }
    if h.raw_len > limits.max_inflated {
        return Err((
            ReadError::TooLarge {
                what: "inflated payload",
                size: h.raw_len,
                limit: limits.max_inflated,
            },
            true,
        ));
    }
    if h.encoding == Encoding::Identity && h.raw_len != h.len {
        return Err((
            ReadError::Corrupt(format!(
                "identity frame of {} bytes declares {} raw bytes",
                h.len, h.raw_len
            )),
            true,
        ));
    }
    Ok(OpenFrame::new(h))
}
