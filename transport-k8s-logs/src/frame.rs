//! The frame: how a payload is written into a log as lines, and how one line is read.
//!
//! ```text
//!                                                   (an empty line: the frame starts with '\n')
//! cmdreporter:v1:begin run=<run id> pod=<pod uid> enc=<identity|deflate> len=<n> raw=<m> sha256=<hex>
//! cmdreporter:v1:0:<base64 of bytes 0..3048 of the transmitted payload>
//! cmdreporter:v1:1:<base64 of the next 3048 bytes>
//! ...
//! cmdreporter:v1:end run=<run id> chunks=<k>
//! ```
//!
//! `len` and `sha256` are those of the transmitted bytes (after compression), `raw` the size
//! of the payload before it. Every data line but the last carries exactly [`CHUNK_BYTES`]
//! bytes, so a line is at most 4,096 bytes with its newline: under the 8 KiB and 16 KiB at
//! which container runtimes split long lines. The leading newline puts the header at the
//! start of a line even after output that did not end with one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The prefix of every line of a frame of this version.
pub const PREFIX: &str = "cmdreporter:v1:";
/// The prefix of a frame line of any version.
pub const ANY_VERSION_PREFIX: &str = "cmdreporter:v";
/// The frame version this crate writes and reads.
pub const FRAME_VERSION: &str = "v1";
/// Payload bytes per data line (base64: 4,064 characters).
pub const CHUNK_BYTES: usize = 3048;
/// The longest line a frame of this version holds, newline included.
pub const MAX_FRAME_LINE: usize = 4096;

/// How the transmitted bytes relate to the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is.
    Identity,
    /// Raw deflate (RFC 1951).
    Deflate,
}

impl Encoding {
    /// The name in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Deflate => "deflate",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "identity" => Some(Self::Identity),
            "deflate" => Some(Self::Deflate),
            _ => None,
        }
    }
}

/// The header line of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The run id of the report.
    pub run_id: String,
    /// The uid of the pod the courier ran in.
    pub pod_uid: String,
    /// How the payload was encoded before base64.
    pub encoding: Encoding,
    /// Transmitted bytes.
    pub len: u64,
    /// Payload bytes (before compression).
    pub raw_len: u64,
    /// SHA-256 of the transmitted bytes.
    pub sha256: [u8; 32],
}

fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'=')
}

impl Header {
    /// The header line, without its newline. `None` when the run id or pod uid cannot be
    /// written as a token (empty, spaces, `=`, over 253 bytes).
    pub fn line(&self) -> Option<String> {
        if !valid_token(&self.run_id) || !valid_token(&self.pod_uid) {
            return None;
        }
        let sha: String = self.sha256.iter().map(|b| format!("{b:02x}")).collect();
        Some(format!(
            "{PREFIX}begin run={} pod={} enc={} len={} raw={} sha256={sha}",
            self.run_id,
            self.pod_uid,
            self.encoding.as_str(),
            self.len,
            self.raw_len
        ))
    }

    fn parse(rest: &str) -> Result<Self, String> {
        let mut run_id = None;
        let mut pod_uid = None;
        let mut encoding = None;
        let mut len = None;
        let mut raw_len = None;
        let mut sha256 = None;
        for token in rest.split(' ').filter(|t| !t.is_empty()) {
            let Some((k, v)) = token.split_once('=') else {
                return Err(format!("header token {token:?} is not key=value"));
            };
            let number = || {
                v.parse::<u64>()
                    .map_err(|_| format!("{k}={v:?} is not a size"))
            };
            match k {
                "run" => run_id = Some(v.to_owned()),
                "pod" => pod_uid = Some(v.to_owned()),
                "enc" => {
                    encoding =
                        Some(Encoding::parse(v).ok_or_else(|| format!("unknown encoding {v:?}"))?)
                }
                "len" => len = Some(number()?),
                "raw" => raw_len = Some(number()?),
                "sha256" => sha256 = Some(parse_sha(v).ok_or("sha256 is not 64 hex digits")?),
                // Keys of later minor versions are ignored.
                _ => {}
            }
        }
        let missing = |k: &str| format!("header has no {k}");
        let len = len.ok_or_else(|| missing("len"))?;
        Ok(Self {
            run_id: run_id.ok_or_else(|| missing("run"))?,
            pod_uid: pod_uid.ok_or_else(|| missing("pod"))?,
            encoding: encoding.ok_or_else(|| missing("enc"))?,
            len,
            raw_len: raw_len.unwrap_or(len),
            sha256: sha256.ok_or_else(|| missing("sha256"))?,
        })
    }
}

fn parse_sha(v: &str) -> Option<[u8; 32]> {
    if v.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(v.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// One log line, as the reader sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A header of this version, or why it cannot be read.
    Begin(Result<Header, String>),
    /// A data line: its sequence number and base64 text.
    Data {
        /// Sequence number, from 0.
        seq: u64,
        /// Base64 text.
        text: &'a str,
    },
    /// An end line, or why it cannot be read.
    End(Result<(String, u64), String>),
    /// A line of a frame of another version.
    OtherVersion(String),
    /// Anything else: output of the courier or the runtime, skipped.
    Foreign,
}

/// Classifies one line (without its newline; a trailing `\r` is ignored).
pub fn classify(line: &[u8]) -> Line<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Line::Foreign;
    };
    let Some(rest) = line.strip_prefix(PREFIX) else {
        if let Some(v) = line.strip_prefix(ANY_VERSION_PREFIX) {
            let version: String = v.chars().take_while(char::is_ascii_digit).collect();
            let after = &v[version.len()..];
            if !version.is_empty() && after.starts_with(":begin ") {
                return Line::OtherVersion(format!("v{version}"));
            }
        }
        return Line::Foreign;
    };
    if let Some(h) = rest.strip_prefix("begin ") {
        return Line::Begin(Header::parse(h));
    }
    if let Some(e) = rest.strip_prefix("end ") {
        return Line::End(parse_end(e));
    }
    match rest.split_once(':') {
        Some((seq, text)) if !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) => {
            match seq.parse() {
                Ok(seq) => Line::Data { seq, text },
                Err(_) => Line::Foreign,
            }
        }
        _ => Line::Foreign,
    }
}

fn parse_end(rest: &str) -> Result<(String, u64), String> {
    let mut run = None;
    let mut chunks = None;
    for token in rest.split(' ').filter(|t| !t.is_empty()) {
        match token.split_once('=') {
            Some(("run", v)) => run = Some(v.to_owned()),
            Some(("chunks", v)) => {
                chunks = Some(v.parse().map_err(|_| format!("chunks={v:?}"))?);
            }
            _ => {}
        }
    }
    Ok((
        run.ok_or("end line has no run")?,
        chunks.ok_or("end line has no chunks")?,
    ))
}

/// Writes a frame: the header, then the transmitted bytes given as consecutive slices,
/// then the end line, in batches of whole lines.
///
/// ```
/// use cmdreporter_k8s_logs::frame::{Encoding, FrameWriter, Header};
/// let header = Header {
///     run_id: "abc".into(),
///     pod_uid: "uid-1".into(),
///     encoding: Encoding::Identity,
///     len: 5,
///     raw_len: 5,
///     sha256: [0; 32],
/// };
/// let batches: Vec<Vec<u8>> = FrameWriter::new(&header, &[b"hel", b"lo"], 64 * 1024)
///     .unwrap()
///     .collect();
/// let text = String::from_utf8(batches.concat()).unwrap();
/// assert!(text.starts_with("\ncmdreporter:v1:begin run=abc "));
/// assert!(text.contains("\ncmdreporter:v1:0:aGVsbG8=\n"));
/// assert!(text.ends_with("cmdreporter:v1:end run=abc chunks=1\n"));
/// ```
pub struct FrameWriter<'a> {
    header: Option<String>,
    run_id: String,
    parts: Vec<&'a [u8]>,
    part: usize,
    offset: usize,
    seq: u64,
    batch_bytes: usize,
    done: bool,
}

impl<'a> FrameWriter<'a> {
    /// A writer of `parts` (whose lengths must add up to `header.len`) in batches of about
    /// `batch_bytes`. `None` when the header cannot be written (see [`Header::line`]).
    pub fn new(header: &Header, parts: &[&'a [u8]], batch_bytes: usize) -> Option<Self> {
        Some(Self::with_line(
            header.line()?,
            header.run_id.clone(),
            parts,
            batch_bytes,
        ))
    }

    /// A writer with a header line already made by [`Header::line`].
    pub(crate) fn with_line(
        line: String,
        run_id: String,
        parts: &[&'a [u8]],
        batch_bytes: usize,
    ) -> Self {
        Self {
            header: Some(line),
            run_id,
            parts: parts.iter().copied().filter(|p| !p.is_empty()).collect(),
            part: 0,
            offset: 0,
            seq: 0,
            batch_bytes: batch_bytes.max(MAX_FRAME_LINE),
            done: false,
        }
    }

    /// Fills `chunk` with up to [`CHUNK_BYTES`] next bytes.
    fn next_chunk(&mut self, chunk: &mut Vec<u8>) {
        chunk.clear();
        while chunk.len() < CHUNK_BYTES && self.part < self.parts.len() {
            let p = self.parts[self.part];
            let take = (CHUNK_BYTES - chunk.len()).min(p.len() - self.offset);
            chunk.extend_from_slice(&p[self.offset..self.offset + take]);
            self.offset += take;
            if self.offset == p.len() {
                self.part += 1;
                self.offset = 0;
            }
        }
    }
}

impl Iterator for FrameWriter<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(self.batch_bytes.min(1 << 20) + MAX_FRAME_LINE);
        if let Some(h) = self.header.take() {
            out.push(b'\n');
            out.extend_from_slice(h.as_bytes());
            out.push(b'\n');
        }
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        while out.len() < self.batch_bytes {
            self.next_chunk(&mut chunk);
            if chunk.is_empty() {
                out.extend_from_slice(
                    format!("{PREFIX}end run={} chunks={}\n", self.run_id, self.seq).as_bytes(),
                );
                self.done = true;
                break;
            }
            out.extend_from_slice(format!("{PREFIX}{}:", self.seq).as_bytes());
            let start = out.len();
            out.resize(
                start + base64::encoded_len(chunk.len(), true).unwrap_or(0),
                0,
            );
            let written = B64
                .encode_slice(&chunk, &mut out[start..])
                .unwrap_or_default();
            out.truncate(start + written);
            out.push(b'\n');
            self.seq += 1;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            run_id: "r1".into(),
            pod_uid: "p1".into(),
            encoding: Encoding::Deflate,
            len: 7,
            raw_len: 70,
            sha256: [0xab; 32],
        }
    }

    #[test]
    fn header_round_trips_and_refuses_bad_tokens() {
        let line = header().line().unwrap();
        assert!(line.len() < 200);
        assert_eq!(classify(line.as_bytes()), Line::Begin(Ok(header())));
        let bad = Header {
            run_id: "a b".into(),
            ..header()
        };
        assert_eq!(bad.line(), None);
    }

    #[test]
    fn classifies_lines() {
        assert_eq!(classify(b"hello"), Line::Foreign);
        assert_eq!(classify(b"\xff\xfe"), Line::Foreign);
        assert_eq!(
            classify(b"cmdreporter:v1:12:QUJD\r"),
            Line::Data {
                seq: 12,
                text: "QUJD"
            }
        );
        assert_eq!(
            classify(b"cmdreporter:v1:end run=r1 chunks=3"),
            Line::End(Ok(("r1".into(), 3)))
        );
        assert_eq!(
            classify(b"cmdreporter:v2:begin run=x"),
            Line::OtherVersion("v2".into())
        );
        assert!(matches!(
            classify(b"cmdreporter:v1:begin run=x"),
            Line::Begin(Err(_))
        ));
    }

    #[test]
    fn lines_stay_under_4_kib() {
        let data = vec![7u8; CHUNK_BYTES * 3 + 1];
        let h = Header {
            len: data.len() as u64,
            raw_len: data.len() as u64,
            ..header()
        };
        let all = FrameWriter::new(&h, &[&data], 1)
            .unwrap()
            .collect::<Vec<_>>()
            .concat();
        let lines: Vec<&[u8]> = all.split(|b| *b == b'\n').collect();
        assert!(lines.iter().all(|l| l.len() < MAX_FRAME_LINE));
        // Empty first line, header, 4 data lines, end, and the empty rest after '\n'.
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[6], b"cmdreporter:v1:end run=r1 chunks=4");
    }
}
