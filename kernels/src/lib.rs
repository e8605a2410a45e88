//! ember-kernels: Ember's inference backends and the reference numeric kernels.
#![deny(missing_docs)]

pub mod cuda;
pub mod dlrm;
pub mod dot;
pub mod onnx_weights;
pub mod reference;
