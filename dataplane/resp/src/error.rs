//! Protocol errors: what went wrong, and where in the stream the parser noticed.

use std::fmt;

/// Why a request stream was refused. The connection that sent it is closed after the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolErrorKind {
    /// A `*` header that is not a number, or exceeds the multibulk limit.
    InvalidMultibulkLength,
    /// A `$` header that is not a number, is negative, or exceeds the bulk limit.
    InvalidBulkLength,
    /// Inside a multibulk request, an argument that does not start with `$`.
    ExpectedBulk {
        /// The byte found instead of `$`.
        found: u8,
    },
    /// An inline request line longer than the inline limit.
    InlineTooBig,
    /// A `*` header line longer than the inline limit without its line end.
    MultibulkCountTooBig,
    /// A `$` header line longer than the inline limit without its line end.
    BulkCountTooBig,
    /// An inline request with an unterminated quote.
    UnbalancedQuotes,
    /// A reply frame (client side) with an unknown type byte or a malformed body.
    InvalidFrame,
}

/// A protocol error with the byte offset, counted from the start of the request being parsed,
/// at which it was detected (the FPGA tokenizer reports the same offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError {
    kind: ProtocolErrorKind,
    offset: usize,
}

impl ProtocolError {
    pub(crate) fn new(kind: ProtocolErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// What went wrong.
    pub fn kind(&self) -> ProtocolErrorKind {
        self.kind
    }

    /// Byte offset, from the start of the request that failed, where the error was detected.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The message Redis 7.2 sends for this error, without the leading `-` and line end.
    pub fn redis_message(&self) -> String {
        match self.kind {
            ProtocolErrorKind::InvalidMultibulkLength => {
                "ERR Protocol error: invalid multibulk length".into()
            }
            ProtocolErrorKind::InvalidBulkLength => {
                "ERR Protocol error: invalid bulk length".into()
            }
            ProtocolErrorKind::ExpectedBulk { found } => {
                format!("ERR Protocol error: expected '$', got '{}'", found as char)
            }
            ProtocolErrorKind::InlineTooBig => "ERR Protocol error: too big inline request".into(),
            ProtocolErrorKind::MultibulkCountTooBig => {
                "ERR Protocol error: too big mbulk count string".into()
            }
            ProtocolErrorKind::BulkCountTooBig => {
                "ERR Protocol error: too big bulk count string".into()
            }
            ProtocolErrorKind::UnbalancedQuotes => {
                "ERR Protocol error: unbalanced quotes in request".into()
            }
            ProtocolErrorKind::InvalidFrame => "ERR Protocol error: invalid frame".into(),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.redis_message(), self.offset)
    }
}

impl std::error::Error for ProtocolError {}
