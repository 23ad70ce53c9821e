//! Why a report could not be read from a container log.

/// Why a report could not be read from a container log. Each variant is a distinct
/// situation an operator may want to tell apart; [`From<ReadError>`] for
/// [`cmdreporter_core::Error`] keeps the distinction in the message.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The log holds no frame at all (and no piece of one).
    #[error("no report in the container log")]
    NoReport,

    /// A frame of this run is incomplete: its header without its end (the log was cut),
    /// or its end without its header (the kubelet rotated the log, `containerLogMaxSize`,
    /// and serves only the current file).
    #[error("truncated report: {0}")]
    Truncated(String),

    /// A frame of this run is damaged: checksum, sequence, base64, lengths or layout.
    #[error("corrupt report: {0}")]
    Corrupt(String),

    /// A frame declares more than the reader accepts.
    #[error("report too large: {what} is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// What is too large (`payload`, `inflated payload`).
        what: &'static str,
        /// Its size in bytes (declared or reached).
        size: u64,
        /// The reader's limit.
        limit: u64,
    },

    /// The log holds a report, but of another run or another pod: refused.
    #[error(
        "report of another run refused: found run {found_run:?} of pod {found_pod:?}, expected run {expected_run:?}"
    )]
    OtherRun {
        /// The run id the frame carries.
        found_run: String,
        /// The pod uid the frame carries.
        found_pod: String,
        /// The run id this reader waits for.
        expected_run: String,
    },

    /// A frame of a version this reader does not know.
    #[error("report frame version {found} is not supported (this reader reads {supported})")]
    Unsupported {
        /// The version the frame carries.
        found: String,
        /// The version this reader reads.
        supported: String,
    },

    /// The log could not be read to its end.
    #[error("reading the log: {0}")]
    Io(#[source] std::io::Error),
}

impl ReadError {
    /// A short, stable name of the variant (`no-report`, `truncated`, `corrupt`,
    /// `too-large`, `other-run`, `unsupported`, `io`), also the first word of the message
    /// of the [`cmdreporter_core::Error`] it becomes.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoReport => "no-report",
            Self::Truncated(_) => "truncated",
            Self::Corrupt(_) => "corrupt",
            Self::TooLarge { .. } => "too-large",
            Self::OtherRun { .. } => "other-run",
            Self::Unsupported { .. } => "unsupported",
            Self::Io(_) => "io",
        }
    }
}

/// Every log problem but I/O and an unsupported schema becomes
/// [`cmdreporter_core::Error::Transport`] with this error as its source (downcast it to match
/// on the kind).
impl From<ReadError> for cmdreporter_core::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(io) => Self::Api(Box::new(kube::Error::ReadEvents(io))),
            ReadError::Unsupported { found, supported } => {
                Self::UnsupportedReport { found, supported }
            }
            other => Self::Transport {
                transport: crate::TRANSPORT,
                source: Box::new(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_the_kind() {
        let e: cmdreporter_core::Error = ReadError::Truncated("end missing".into()).into();
        assert_eq!(
            e.to_string(),
            "logs transport: truncated report: end missing"
        );
        match e {
            cmdreporter_core::Error::Transport { source, .. } => {
                let read = source.downcast_ref::<ReadError>().expect("a ReadError");
                assert_eq!(read.kind(), "truncated");
            }
            other => panic!("unexpected {other:?}"),
        }
        let e: cmdreporter_core::Error = ReadError::Io(std::io::Error::other("reset")).into();
        assert!(matches!(e, cmdreporter_core::Error::Api(_)));
    }
}
