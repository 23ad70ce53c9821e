//! Courier side: fit the report into the log's capacity (compressing when it pays,
//! trimming with the truncation stated when it must), then print it as one frame on the
//! courier's own stdout.

use std::borrow::Cow;
use std::io::Write;

use async_trait::async_trait;
use cmdreporter_core::Report;
use cmdreporter_core::capture::CaptureLimits;
use cmdreporter_core::courier::{CourierHost, CourierIdentity, Delivery};
use cmdreporter_core::report::{Captured, Omission};
use flate2::Compression as Level;
use flate2::write::DeflateEncoder;
use sha2::{Digest, Sha256};

use crate::frame::{CHUNK_BYTES, Encoding, FrameWriter, Header, MAX_FRAME_LINE};
use crate::payload::meta_block;

/// The kubelet's default `containerLogMaxSize`: it serves only the current file.
pub const DEFAULT_LOG_BYTES: u64 = 10 * 1024 * 1024;
/// Log bytes left for everything else the container prints (the courier's warnings).
pub const LOG_RESERVE: u64 = 64 * 1024;
/// Bytes of each output stream the courier keeps (head and tail) before fitting.
pub const CAPTURE_PER_STREAM: usize = 8 * 1024 * 1024;
/// Bytes written to stdout at once.
const BATCH_BYTES: usize = 64 * 1024;

/// The most transmitted payload bytes whose frame fits in a log file of `log_bytes`:
/// 7,766,304 bytes (about 7.4 MiB) for the default 10 MiB.
///
/// ```
/// use cmdreporter_k8s_logs::send::{DEFAULT_LOG_BYTES, payload_capacity};
/// assert_eq!(payload_capacity(DEFAULT_LOG_BYTES), 7_766_304);
/// ```
pub const fn payload_capacity(log_bytes: u64) -> u64 {
    // A data line: prefix, sequence number, base64 of CHUNK_BYTES, newline.
    let line = MAX_FRAME_LINE as u64 - 8;
    (log_bytes.saturating_sub(LOG_RESERVE) / line) * CHUNK_BYTES as u64
}

/// When the courier compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Never.
    Never,
    /// When a sample of the output compresses well, or when the output does not fit
    /// otherwise.
    Auto,
    /// Always.
    Always,
}

/// How the courier encodes a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The most transmitted bytes (see [`payload_capacity`]).
    pub capacity: u64,
    /// When to compress.
    pub compression: Compression,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            capacity: payload_capacity(DEFAULT_LOG_BYTES),
            compression: Compression::Auto,
        }
    }
}

/// Why a report cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The run id or pod uid cannot be written in a header.
    #[error("run id {run_id:?} or pod uid {pod_uid:?} cannot be written in a frame header")]
    Identity {
        /// The run id.
        run_id: String,
        /// The pod uid.
        pod_uid: String,
    },
    /// Not even the metadata fits in the capacity.
    #[error("a capacity of {capacity} bytes cannot hold the report's metadata")]
    NoRoom {
        /// The capacity.
        capacity: u64,
    },
    /// Compression failed.
    #[error("compressing the report: {0}")]
    Compress(#[source] std::io::Error),
}

/// A report ready to print: its header and the transmitted bytes.
#[derive(Debug)]
pub struct EncodedFrame<'a> {
    header: Header,
    line: String,
    parts: Vec<Cow<'a, [u8]>>,
    trimmed: bool,
}

impl EncodedFrame<'_> {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Whether output was left out to fit the capacity (the report states how much).
    pub fn trimmed(&self) -> bool {
        self.trimmed
    }

    /// The frame in batches of whole lines of about `batch_bytes`.
    pub fn batches(&self, batch_bytes: usize) -> FrameWriter<'_> {
        let parts: Vec<&[u8]> = self.parts.iter().map(|p| p.as_ref()).collect();
        FrameWriter::with_line(
            self.line.clone(),
            self.header.run_id.clone(),
            &parts,
            batch_bytes,
        )
    }

    /// The whole frame as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.batches(usize::MAX / 2).collect::<Vec<_>>().concat()
    }
}

/// Keeps at most `keep` bytes of `c`, head and tail, one gap, its size stated.
fn trim(c: &Captured, keep: usize) -> Captured {
    let len = c.data.len();
    if len <= keep {
        return c.clone();
    }
    let (at, before) = c.omitted.map_or((len / 2, 0), |o| (o.at as usize, o.bytes));
    let tail = (len - at.min(len)).min(keep - keep / 2);
    let head = at.min(keep - tail);
    let mut data = Vec::with_capacity(head + tail);
    data.extend_from_slice(&c.data[..head]);
    data.extend_from_slice(&c.data[len - tail..]);
    Captured {
        data,
        total_bytes: c.total_bytes,
        omitted: Some(Omission {
            at: head as u64,
            bytes: before + (len - head - tail) as u64,
        }),
    }
}

/// Shares `budget` bytes between the streams: a stream under half keeps all of it.
fn fit(out: &Captured, err: &Captured, budget: usize) -> (Captured, Captured) {
    let (o, e) = (out.data.len(), err.data.len());
    let half = budget / 2;
    let (ko, ke) = if e <= half {
        (budget - e, e)
    } else if o <= half {
        (o, budget - o)
    } else {
        (half, budget - half)
    };
    (trim(out, ko), trim(err, ke))
}

fn deflate(parts: &[&[u8]]) -> Result<Vec<u8>, EncodeError> {
    let mut enc = DeflateEncoder::new(Vec::new(), Level::fast());
    for p in parts {
        enc.write_all(p).map_err(EncodeError::Compress)?;
    }
    enc.finish().map_err(EncodeError::Compress)
}

/// Whether a sample of the output shrinks by a tenth or more.
fn compresses_well(parts: &[&[u8]]) -> Result<bool, EncodeError> {
    const SAMPLE: usize = 64 * 1024;
    let mut sample = Vec::with_capacity(SAMPLE);
    for p in parts {
        sample.extend_from_slice(&p[..p.len().min(SAMPLE - sample.len())]);
    }
    if sample.len() < 1024 {
        return Ok(false);
    }
    Ok(deflate(&[&sample])?.len() * 10 < sample.len() * 9)
}

fn frame<'a>(
    report: &Report,
    parts: Vec<Cow<'a, [u8]>>,
    encoding: Encoding,
    raw_len: u64,
    trimmed: bool,
) -> Result<EncodedFrame<'a>, EncodeError> {
    let mut sha = Sha256::new();
    let mut len = 0u64;
    for p in &parts {
        sha.update(p);
        len += p.len() as u64;
    }
    let header = Header {
        run_id: report.run_id.clone(),
        pod_uid: report.pod_uid.clone(),
        encoding,
        len,
        raw_len,
        sha256: sha.finalize().into(),
    };
    let Some(line) = header.line() else {
        return Err(EncodeError::Identity {
            run_id: report.run_id.clone(),
            pod_uid: report.pod_uid.clone(),
        });
    };
    Ok(EncodedFrame {
        header,
        line,
        parts,
        trimmed,
    })
}

/// Encodes `report` for the log: uncompressed when it fits and does not compress well,
/// deflated when that pays or is needed to fit, and otherwise trimmed (head and tail kept,
/// the gap stated in the report) to fit `opts.capacity`.
///
/// ```
/// # use cmdreporter_core::{Captured, ExitStatus, Report, ReportedExit};
/// use cmdreporter_k8s_logs::frame::Encoding;
/// use cmdreporter_k8s_logs::send::{EncodeOptions, encode_frame};
/// let report = Report {
///     schema_version: "1.0".into(),
///     run_id: "abc".into(),
///     pod_uid: "uid-1".into(),
///     exit: ReportedExit::Exited(ExitStatus::Code(0)),
///     stdout: Captured::complete(b"yes\n".repeat(100_000)),
///     stderr: Captured::default(),
/// };
/// let frame = encode_frame(&report, &EncodeOptions::default()).unwrap();
/// assert_eq!(frame.header().encoding, Encoding::Deflate);
/// assert!(frame.header().len < 10_000);
/// assert!(!frame.trimmed());
/// ```
pub fn encode_frame<'a>(
    report: &'a Report,
    opts: &EncodeOptions,
) -> Result<EncodedFrame<'a>, EncodeError> {
    let cap = opts.capacity;
    let meta = meta_block(report, &report.stdout, &report.stderr);
    let streams = [report.stdout.data.as_slice(), report.stderr.data.as_slice()];
    let raw_len = (meta.len() + streams[0].len() + streams[1].len()) as u64;
    let all: [&[u8]; 3] = [&meta, streams[0], streams[1]];
    let try_deflate = match opts.compression {
        Compression::Never => false,
        Compression::Always => true,
        Compression::Auto => raw_len > cap || compresses_well(&streams)?,
    };
    let mut ratio = 1.0;
    if try_deflate {
        let packed = deflate(&all)?;
        if (packed.len() as u64) <= cap && (packed.len() as u64) < raw_len {
            return frame(
                report,
                vec![Cow::Owned(packed)],
                Encoding::Deflate,
                raw_len,
                false,
            );
        }
        ratio = (packed.len() as f64 / raw_len.max(1) as f64).min(1.0);
    }
    if raw_len <= cap {
        let parts = vec![
            Cow::Owned(meta),
            Cow::Borrowed(report.stdout.data.as_slice()),
            Cow::Borrowed(report.stderr.data.as_slice()),
        ];
        return frame(report, parts, Encoding::Identity, raw_len, false);
    }
    // Too large: trim. First to what should fit once compressed, then uncompressed.
    let slack = meta.len() as u64 + 256;
    let raw_budget = cap
        .checked_sub(slack)
        .ok_or(EncodeError::NoRoom { capacity: cap })?;
    if try_deflate && ratio < 0.9 {
        let budget = ((raw_budget as f64 / ratio) * 0.9) as usize;
        let (out, err) = fit(&report.stdout, &report.stderr, budget);
        let meta = meta_block(report, &out, &err);
        let packed = deflate(&[&meta, &out.data, &err.data])?;
        if (packed.len() as u64) <= cap {
            let raw = (meta.len() + out.data.len() + err.data.len()) as u64;
            return frame(
                report,
                vec![Cow::Owned(packed)],
                Encoding::Deflate,
                raw,
                true,
            );
        }
    }
    let (out, err) = fit(&report.stdout, &report.stderr, raw_budget as usize);
    let meta = meta_block(report, &out, &err);
    let raw = (meta.len() + out.data.len() + err.data.len()) as u64;
    let parts = vec![Cow::Owned(meta), Cow::Owned(out.data), Cow::Owned(err.data)];
    frame(report, parts, Encoding::Identity, raw, true)
}

/// Delivers a report as a frame on the courier's own stdout. The pod needs no API access.
///
/// ```
/// use cmdreporter_core::courier::Delivery;
/// use cmdreporter_k8s_logs::LogsDelivery;
/// let delivery = LogsDelivery::new();
/// assert_eq!(delivery.limits().head + delivery.limits().tail, 8 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogsDelivery {
    opts: EncodeOptions,
}

impl LogsDelivery {
    /// The delivery with the default options (10 MiB log files, automatic compression).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the encoding options.
    #[must_use]
    pub fn options(mut self, opts: EncodeOptions) -> Self {
        self.opts = opts;
        self
    }
}

#[async_trait]
impl Delivery for LogsDelivery {
    fn limits(&self) -> CaptureLimits {
        CaptureLimits::split(CAPTURE_PER_STREAM)
    }

    async fn deliver(
        &self,
        host: &dyn CourierHost,
        _who: &CourierIdentity,
        report: &Report,
    ) -> Result<(), String> {
        let frame = encode_frame(report, &self.opts).map_err(|e| e.to_string())?;
        let h = frame.header();
        if frame.trimmed() {
            let msg = format!(
                "cmdreporter: output trimmed to fit the container log ({} payload bytes at most); the report states what was left out\n",
                self.opts.capacity
            );
            host.write_stderr(msg.as_bytes()).await;
        }
        tracing::debug!(
            len = h.len,
            raw = h.raw_len,
            encoding = h.encoding.as_str(),
            "printing the report frame"
        );
        for batch in frame.batches(BATCH_BYTES) {
            host.write_stdout(&batch)
                .await
                .map_err(|e| format!("writing the report to stdout: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_keeps_one_gap_and_counts_it() {
        let c = Captured::complete(b"0123456789".to_vec());
        let t = trim(&c, 4);
        assert_eq!(t.data, b"0189");
        assert_eq!(t.omitted, Some(Omission { at: 2, bytes: 6 }));
        // Trimming again widens the same gap.
        let t2 = trim(&t, 2);
        assert_eq!(t2.data, b"09");
        assert_eq!(t2.omitted, Some(Omission { at: 1, bytes: 8 }));
        assert_eq!(t2.total_bytes, 10);
    }

    #[test]
    fn fit_gives_the_small_stream_all_it_needs() {
        let out = Captured::complete(vec![1; 100]);
        let err = Captured::complete(vec![2; 10]);
        let (o, e) = fit(&out, &err, 50);
        assert_eq!((o.data.len(), e.data.len()), (40, 10));
        assert!(e.omitted.is_none());
    }
}
