//! The native CUDA backend's error: an opaque struct with a kind and a message that carries the
//! numbers (sizes, indices, status codes) that explain it.

use std::fmt;

/// What went wrong in the native CUDA backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CudaErrorKind {
    /// The CUDA driver library (libcuda.so.1) is not installed on this machine.
    NoDriver,
    /// The driver loaded but reports no usable device (or the ordinal is out of range).
    NoDevice,
    /// A CUDA library other than the driver (libnvrtc, libcublasLt) could not be loaded.
    LibraryMissing,
    /// NVRTC rejected one of the kernel sources.
    Compile,
    /// A CUDA driver call failed.
    Driver,
    /// A cuBLASLt call failed or found no algorithm.
    Blas,
    /// The model's weights are inconsistent (shapes that do not chain, wrong lengths).
    InvalidModel,
    /// A request's inputs do not match the model (lengths, ids outside a table).
    InvalidInput,
    /// A CUDA binding panicked; the panic was caught at the backend's boundary.
    Panicked,
}

/// An error from the native CUDA backend or from the DLRM model description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CudaError {
    kind: CudaErrorKind,
    message: String,
}

impl CudaError {
    pub(crate) fn new(kind: CudaErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> CudaErrorKind {
        self.kind
    }

    /// The human-readable explanation, with the numbers that explain it.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn driver(context: &str, error: cudarc::driver::DriverError) -> Self {
        Self::new(CudaErrorKind::Driver, format!("{context}: {error:?}"))
    }

    pub(crate) fn blas(context: &str, error: cudarc::cublaslt::result::CublasError) -> Self {
        Self::new(CudaErrorKind::Blas, format!("{context}: {error:?}"))
    }

    pub(crate) fn invalid_model(message: impl Into<String>) -> Self {
        Self::new(CudaErrorKind::InvalidModel, message)
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(CudaErrorKind::InvalidInput, message)
    }
}

impl fmt::Display for CudaError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for CudaError {}
