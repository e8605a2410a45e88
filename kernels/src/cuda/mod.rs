//! Native CUDA backend: NVRTC-compiled kernels from `kernels/cuda/*.cu`, the DLRM MLPs through
//! cuBLASLt with fused bias and ReLU epilogues, one CUDA graph per padded batch-size bucket, and
//! pinned host buffers for the copies in and out.
//!
//! Everything here loads the CUDA libraries at run time (cudarc's `dynamic-loading`), so the
//! crate builds and its CPU tests run on a machine with no CUDA at all. Every entry point checks
//! for the libraries first and returns a [`CudaError`] (for example
//! "no CUDA driver: libcuda.so.1 not found") instead of letting cudarc panic.

pub mod compile;
pub mod error;
pub mod library;

pub use error::{CudaError, CudaErrorKind};
