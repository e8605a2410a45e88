//! The crate's one error type: an opaque struct with a kind and a message that carries the numbers.

use std::fmt;

/// What went wrong, for callers that branch on it (the server maps kinds to RedisAI's error replies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The ONNX Runtime library is not where we were told, or no path was given.
    RuntimeMissing,
    /// The library exists but could not be loaded (not a library, wrong version, no `OrtGetApiBase`).
    RuntimeLoad,
    /// An execution provider (CUDA, TensorRT) could not be registered; no silent fall-back to CPU.
    ExecutionProvider,
    /// The model bytes are not a model ONNX Runtime accepts, or the model has an unsupported signature.
    InvalidModel,
    /// Inputs do not match the model: count, element type, rank, a fixed dimension, or batch lengths.
    InputMismatch,
    /// A tensor is malformed: its data length does not match its shape, or a bound is exceeded.
    InvalidTensor,
    /// ONNX Runtime failed while running the model.
    Inference,
    /// A file could not be read, or a file format (.npy) is malformed.
    Io,
    /// The device a backend needs is not on this machine: no GPU, no CUDA driver, or a CUDA
    /// library (NVRTC, cuBLASLt) missing. The message names the fix.
    DeviceMissing,
}

/// An error from ember-kernels: [`Error::kind`] to branch on, `Display` for people.
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

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message alone, without a prefix (the same text `Display` writes).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
