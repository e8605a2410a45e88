//! The crate's one error type: an opaque struct with a kind and the numbers that explain it.

use std::fmt;

/// What went wrong, coarsely; match on this, read the `Display` text for the details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An operating-system call failed (mmap, memfd_create, sendmsg, eventfd...).
    Io,
    /// A configuration value is outside its bound (bucket count, log size, key or value size...).
    Config,
    /// The peer sent something that does not follow the protocol (bad hello, bad message).
    Protocol,
    /// The peer went away (socket closed, process died).
    Disconnected,
    /// A bounded wait ran out: a completion or a reply did not arrive in time.
    Timeout,
    /// A queue is full (send ring, outstanding work requests); try again after polling.
    WouldBlock,
    /// The provider cannot run here: no RDMA device, no libibverbs, or support not built.
    Unavailable,
    /// A key or value exceeds the configured limit.
    TooLarge,
    /// The server answered a request with an error.
    Server,
}

/// An ember-rdma error: a kind plus a message naming the values that explain it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An `Io` error from the last OS error, prefixed with what was being done.
    pub(crate) fn last_os(what: &str) -> Self {
        let os = std::io::Error::last_os_error();
        Self::new(ErrorKind::Io, format!("{what}: {os}"))
    }

    pub(crate) fn io(what: &str, error: &std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("{what}: {error}"))
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
