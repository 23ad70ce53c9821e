//! The payload a frame carries: a report in a binary layout, so that output bytes are
//! base64-encoded once (by the frame) and never twice.
//!
//! Layout: the length of the metadata as 4 bytes big-endian, the metadata as JSON
//! ([`Meta`]: schema version, run id, pod uid, exit, and per stream its kept length, total
//! size and omission), then stdout's kept bytes, then stderr's.

use std::io::{self, Write};

use cmdreporter_core::report::{Captured, Omission, Report, ReportedExit};
use serde::{Deserialize, Serialize};

use crate::error::ReadError;

/// The largest metadata block a reader accepts.
pub const MAX_META_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamMeta {
    len: u64,
    total_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    omitted: Option<Omission>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    schema_version: String,
    run_id: String,
    pod_uid: String,
    exit: ReportedExit,
    stdout: StreamMeta,
    stderr: StreamMeta,
}

fn stream_meta(c: &Captured) -> StreamMeta {
    StreamMeta {
        len: c.data.len() as u64,
        total_bytes: c.total_bytes,
        omitted: c.omitted,
    }
}

/// The metadata block of `report` with the streams `stdout` and `stderr` (the report's own
/// or trimmed ones), length prefix included: the payload is this block, then
/// `stdout.data`, then `stderr.data`.
pub fn meta_block(report: &Report, stdout: &Captured, stderr: &Captured) -> Vec<u8> {
    let meta = Meta {
        schema_version: report.schema_version.clone(),
        run_id: report.run_id.clone(),
        pod_uid: report.pod_uid.clone(),
        exit: report.exit.clone(),
        stdout: stream_meta(stdout),
        stderr: stream_meta(stderr),
    };
    // Serializing plain strings and numbers cannot fail.
    let json = serde_json::to_vec(&meta).unwrap_or_default();
    let mut head = Vec::with_capacity(4 + json.len());
    head.extend_from_slice(&(json.len() as u32).to_be_bytes());
    head.extend_from_slice(&json);
    head
}

/// The payload of `report` as one buffer.
#[cfg(test)]
pub fn encode_to_vec(report: &Report) -> Vec<u8> {
    let mut out = meta_block(report, &report.stdout, &report.stderr);
    out.reserve_exact(report.stdout.data.len() + report.stderr.data.len());
    out.extend_from_slice(&report.stdout.data);
    out.extend_from_slice(&report.stderr.data);
    out
}

enum State {
    /// Collecting the metadata length and then the metadata.
    Meta(Vec<u8>),
    /// Filling stdout, then stderr.
    Streams {
        meta: Box<Meta>,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    Failed,
}

/// Rebuilds a report from its payload as it arrives, in bounded memory: the streams are
/// allocated once, at their declared sizes, after those are checked against the declared
/// payload size.
pub struct Decoder {
    state: State,
    /// The payload size the frame declares.
    declared: u64,
    received: u64,
    error: Option<ReadError>,
}

impl Decoder {
    /// A decoder of a payload that should be `declared` bytes long.
    pub fn new(declared: u64) -> Self {
        Self {
            state: State::Meta(Vec::new()),
            declared,
            received: 0,
            error: None,
        }
    }

    fn fail(&mut self, e: ReadError) -> io::Error {
        let msg = e.to_string();
        self.error.get_or_insert(e);
        self.state = State::Failed;
        io::Error::new(io::ErrorKind::InvalidData, msg)
    }

    /// The error that stopped decoding, if any.
    pub fn take_error(&mut self) -> Option<ReadError> {
        self.error.take()
    }

    fn push(&mut self, mut data: &[u8]) -> Result<(), ReadError> {
        self.received += data.len() as u64;
        if self.received > self.declared {
            return Err(ReadError::Corrupt(format!(
                "the payload is longer than the {} bytes its header declares",
                self.declared
            )));
        }
        while !data.is_empty() {
            match &mut self.state {
                State::Failed => return Ok(()),
                State::Meta(buf) => {
                    if buf.len() < 4 {
                        let take = (4 - buf.len()).min(data.len());
                        buf.extend_from_slice(&data[..take]);
                        data = &data[take..];
                        continue;
                    }
                    let mut n = [0u8; 4];
                    n.copy_from_slice(&buf[..4]);
                    let meta_len = u32::from_be_bytes(n) as usize;
                    if meta_len == 0 || meta_len > MAX_META_BYTES {
                        return Err(ReadError::Corrupt(format!(
                            "metadata block of {meta_len} bytes (1 to {MAX_META_BYTES})"
                        )));
                    }
                    let take = (4 + meta_len - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if buf.len() == 4 + meta_len {
                        let meta = self.parse_meta()?;
                        self.state = State::Streams {
                            stdout: Vec::with_capacity(meta.stdout.len as usize),
                            stderr: Vec::with_capacity(meta.stderr.len as usize),
                            meta: Box::new(meta),
                        };
                    }
                }
                State::Streams {
                    meta,
                    stdout,
                    stderr,
                } => {
                    let (buf, len) = if (stdout.len() as u64) < meta.stdout.len {
                        (stdout, meta.stdout.len)
                    } else {
                        (stderr, meta.stderr.len)
                    };
                    let take = ((len - buf.len() as u64) as usize).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                }
            }
        }
        Ok(())
    }

    fn parse_meta(&mut self) -> Result<Meta, ReadError> {
        let State::Meta(buf) = &self.state else {
            return Err(ReadError::Corrupt("metadata parsed twice".into()));
        };
        let meta: Meta = serde_json::from_slice(&buf[4..])
            .map_err(|e| ReadError::Corrupt(format!("metadata: {e}")))?;
        let expected = (buf.len() as u64)
            .checked_add(meta.stdout.len)
            .and_then(|n| n.checked_add(meta.stderr.len));
        if expected != Some(self.declared) {
            return Err(ReadError::Corrupt(format!(
                "metadata and streams of {} + {} + {} bytes do not make the declared {} bytes",
                buf.len(),
                meta.stdout.len,
                meta.stderr.len,
                self.declared
            )));
        }
        Ok(meta)
    }

    /// The report, once the whole payload has arrived.
    pub fn finish(mut self) -> Result<Report, ReadError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.received != self.declared {
            return Err(ReadError::Corrupt(format!(
                "payload of {} bytes, {} declared",
                self.received, self.declared
            )));
        }
        match self.state {
            State::Streams {
                meta,
                stdout,
                stderr,
            } => {
                let meta = *meta;
                cmdreporter_core::report::check_schema_version(&meta.schema_version).map_err(
                    |_| ReadError::Unsupported {
                        found: format!("schema {}", meta.schema_version),
                        supported: format!("schema {}", cmdreporter_core::report::SCHEMA_VERSION),
                    },
                )?;
                Ok(Report {
                    schema_version: meta.schema_version,
                    run_id: meta.run_id,
                    pod_uid: meta.pod_uid,
                    exit: meta.exit,
                    stdout: Captured {
                        data: stdout,
                        total_bytes: meta.stdout.total_bytes,
                        omitted: meta.stdout.omitted,
                    },
                    stderr: Captured {
                        data: stderr,
                        total_bytes: meta.stderr.total_bytes,
                        omitted: meta.stderr.omitted,
                    },
                })
            }
            State::Meta(_) | State::Failed => Err(ReadError::Corrupt(
                "the payload ends inside its metadata".into(),
            )),
        }
    }
}

impl Write for Decoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if matches!(self.state, State::Failed) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "payload rejected",
            ));
        }
        match self.push(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmdreporter_core::ExitStatus;

    fn report() -> Report {
        Report {
            schema_version: "1.0".into(),
            run_id: "run1".into(),
            pod_uid: "pod1".into(),
            exit: ReportedExit::Exited(ExitStatus::Signal(9)),
            stdout: Captured::complete(b"\xff\xfe\x00".to_vec()),
            stderr: Captured {
                data: b"ab".to_vec(),
                total_bytes: 10,
                omitted: Some(Omission { at: 1, bytes: 8 }),
            },
        }
    }

    #[test]
    fn round_trips_byte_by_byte() {
        let bytes = encode_to_vec(&report());
        let mut d = Decoder::new(bytes.len() as u64);
        for b in &bytes {
            d.write_all(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(d.finish().unwrap(), report());
    }

    #[test]
    fn refuses_inconsistent_lengths() {
        let bytes = encode_to_vec(&report());
        let mut d = Decoder::new(bytes.len() as u64 + 1);
        assert!(d.write_all(&bytes).is_err());
        assert!(matches!(d.take_error(), Some(ReadError::Corrupt(_))));
        let mut d = Decoder::new(bytes.len() as u64);
        d.write_all(&bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(d.finish(), Err(ReadError::Corrupt(_))));
    }
}
