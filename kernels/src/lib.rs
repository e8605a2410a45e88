//! ember-kernels: Ember's inference backends and the reference numeric kernels.
//!
//! Every backend implements one trait, [`Backend`]: tensors in, tensors out, batch dimension first. The ONNX
//! Runtime backend ([`OrtSession`]) loads the library at run time ([`OrtRuntime::load`]), so the crate builds on
//! any machine and a missing library is an error that names the fix:
//!
//! The native CUDA engine is a [`Backend`] too ([`dlrm_backend::native_cuda`]), so a caller picks a backend
//! and never names its type again.
//!
//! ```no_run
//! use ember_kernels::{Backend, OrtRuntime, OrtSession, SessionConfig, Tensor, TensorData};
//! # fn main() -> Result<(), ember_kernels::Error> {
//! let runtime = OrtRuntime::load(Some(".deps/onnxruntime/libonnxruntime.so".as_ref()))?;
//! let mut session = OrtSession::from_file(&runtime, "models/dlrm_dense.onnx".as_ref(), &SessionConfig::default())?;
//! let dense = Tensor::new(vec![1, 13], TensorData::Float(vec![0.5; 13]))?;
//! let pooled = Tensor::new(vec![1, 26, 64], TensorData::Float(vec![0.01; 26 * 64]))?;
//! let scores = session.run(&[dense, pooled])?;
//! println!("{:?}", scores[0].as_f32());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod backend;
pub mod compare;
pub mod cuda;
pub mod dlrm;
pub mod dlrm_backend;
pub mod dot;
pub mod error;
pub mod npy;
pub mod onnx_weights;
pub mod onnxruntime;
pub mod recommend;
pub mod reference;
pub mod tensor;

pub use backend::{check_inputs, Backend, TensorSpec};
pub use error::{Error, ErrorKind, Result};
pub use onnxruntime::{Device, OrtRuntime, OrtSession, SessionConfig};
pub use tensor::{DataType, Tensor, TensorData, TensorView};
