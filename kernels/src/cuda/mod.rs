//! Native CUDA backend: NVRTC-compiled kernels from `kernels/cuda/*.cu`, the DLRM MLPs through
//! cuBLASLt with fused bias and ReLU epilogues, one CUDA graph per padded batch-size bucket, and
//! pinned host buffers for the copies in and out. [`DlrmEngine`] is the entry point; [`probe`]
//! says at start-up whether a device is there.
//!
//! Everything here loads the CUDA libraries at run time (cudarc's `dynamic-loading`), so the
//! crate builds and its CPU tests run on a machine with no CUDA at all. Every entry point checks
//! for the libraries first and returns a [`CudaError`] (for example
//! "no CUDA driver: libcuda.so.1 not found") instead of letting cudarc panic, and catches any
//! panic that still escapes a binding.
//!
//! ```no_run
//! use ember_kernels::cuda::{DlrmEngine, EngineOptions};
//! use ember_kernels::onnx_weights::dlrm_from_onnx;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The serving split: dense features and pooled embeddings in, one score per sample out.
//! let model = dlrm_from_onnx(&std::fs::read("models/dlrm_dense.onnx")?)?;
//! let mut engine = DlrmEngine::new(&model, &EngineOptions::default())?;
//! let dense = vec![0.5f32; 13];
//! let pooled = vec![0.01f32; 26 * 64];
//! let mut scores = [0.0f32; 1];
//! engine.score_pooled(&dense, &pooled, &mut scores)?;
//! println!("{}: score {}", engine.device().name, scores[0]);
//! # Ok(()) }
//! ```

mod blas;
mod buffers;
pub mod compile;
mod engine;
pub mod error;
mod kernels;
pub mod library;
pub mod row_table;

use std::sync::Arc;

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};

pub use engine::{
    probe, DeviceInfo, DlrmEngine, EngineOptions, BATCH_SIZE_MAX_DEFAULT, BATCH_SIZE_MAX_LIMIT,
    IDS_PER_BAG_DEFAULT,
};
pub use error::{CudaError, CudaErrorKind};
pub use row_table::{DeviceRowTable, RowTableShape};

impl From<crate::dlrm::DlrmError> for CudaError {
    fn from(error: crate::dlrm::DlrmError) -> Self {
        let kind = match error.kind() {
            crate::dlrm::DlrmErrorKind::InvalidModel => CudaErrorKind::InvalidModel,
            _ => CudaErrorKind::InvalidInput,
        };
        CudaError::new(kind, error.message())
    }
}

/// The device address of `slice`. Event tracking is off on the engine's context (one stream),
/// so the guard cudarc returns has nothing to record and is dropped at once.
fn device_ptr<T>(slice: &CudaSlice<T>, stream: &Arc<CudaStream>) -> CUdeviceptr {
    let (pointer, _guard) = slice.device_ptr(stream);
    pointer
}
