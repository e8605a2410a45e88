//! Fully connected layers through cuBLASLt, with the bias (and ReLU) fused into the matmul's
//! epilogue.
//!
//! cudarc's safe `CudaBlasLT` is not used: it computes f32 with TF32 tensor cores
//! (`CUBLAS_COMPUTE_32F_FAST_TF32`, about 1e-3 relative error, too coarse for the 1e-5 check
//! against the CPU reference), and it builds descriptors and asks the heuristic on every call.
//! Here each (layer, batch bucket) gets a plan once, with full f32 compute, and the plan's
//! launches are what the CUDA graphs capture.

use std::ffi::c_void;
use std::mem;
use std::sync::Arc;

use cudarc::cublaslt::result::{self, CublasError};
use cudarc::cublaslt::sys;
use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{CudaSlice, CudaStream};

use super::error::CudaError;

/// cuBLASLt workspace on Hopper and later, as NVIDIA recommends; 4 MiB before.
const WORKSPACE_BYTES_HOPPER: usize = 32 << 20;
const WORKSPACE_BYTES_OLDER: usize = 4 << 20;

/// A cuBLASLt handle with its workspace, bound to one stream.
pub(crate) struct BlasLt {
    handle: sys::cublasLtHandle_t,
    workspace: CudaSlice<u8>,
    workspace_ptr: CUdeviceptr,
    stream: Arc<CudaStream>,
}

impl BlasLt {
    pub(crate) fn new(stream: Arc<CudaStream>, compute_major: i32) -> Result<Self, CudaError> {
        let bytes = if compute_major >= 9 {
            WORKSPACE_BYTES_HOPPER
        } else {
            WORKSPACE_BYTES_OLDER
        };
        let workspace = stream
            .alloc_zeros::<u8>(bytes)
            .map_err(|error| CudaError::driver("allocating the cuBLASLt workspace", error))?;
        let workspace_ptr = super::device_ptr(&workspace, &stream);
        let handle =
            result::create_handle().map_err(|error| CudaError::blas("cublasLtCreate", error))?;
        Ok(Self {
            handle,
            workspace,
            workspace_ptr,
            stream,
        })
    }

    /// Plans `D[batch, out] = act(X[batch, in] W[in, out] + b)` with everything row-major.
    ///
    /// In cuBLASLt's column-major terms a row-major `[rows, cols]` buffer is the matrix
    /// `[cols, rows]` with leading dimension `cols`, so the product is computed as
    /// `D^T = W^T X^T` with no transposes: A = W^T (`[out, in]`, ld = out), B = X^T
    /// (`[in, batch]`, ld = in), D^T = `[out, batch]` (ld = out). The bias is a vector over
    /// D^T's rows, which is what the BIAS epilogues add to every column.
    pub(crate) fn plan(
        &self,
        batch: usize,
        in_features: usize,
        out_features: usize,
        bias: CUdeviceptr,
        relu: bool,
    ) -> Result<MatmulPlan, CudaError> {
        let (m, n, k) = (out_features as u64, batch as u64, in_features as u64);
        let context = format!("planning a {in_features}x{out_features} layer for batch {batch}");
        let blas = |error: CublasError| CudaError::blas(&context, error);
        let a_layout = Layout::new(m, k, m as i64).map_err(blas)?;
        let b_layout = Layout::new(k, n, k as i64).map_err(blas)?;
        let d_layout = Layout::new(m, n, m as i64).map_err(blas)?;
        let desc = Desc::new(bias, relu).map_err(blas)?;
        let preference = Preference::new(self.workspace.len()).map_err(blas)?;
        // SAFETY: every descriptor was created above and lives until the end of this function.
        let heuristic = unsafe {
            result::get_matmul_algo_heuristic(
                self.handle,
                desc.0,
                a_layout.0,
                b_layout.0,
                d_layout.0,
                d_layout.0,
                preference.0,
            )
        }
        .map_err(blas)?;
        Ok(MatmulPlan {
            desc,
            a_layout,
            b_layout,
            d_layout,
            algo: heuristic.algo,
        })
    }

    /// Enqueues `plan` on the stream: `output = act(input W + b)`.
    ///
    /// # Safety
    /// `weight`, `input` and `output` must be live device allocations of at least the plan's
    /// `in * out`, `batch * in` and `batch * out` floats, and the bias given to `plan` must still
    /// be live; all on this handle's stream's context.
    pub(crate) unsafe fn run(
        &self,
        plan: &MatmulPlan,
        weight: CUdeviceptr,
        input: CUdeviceptr,
        output: CUdeviceptr,
    ) -> Result<(), CudaError> {
        let alpha: f32 = 1.0;
        let beta: f32 = 0.0;
        result::matmul(
            self.handle,
            plan.desc.0,
            (&alpha as *const f32).cast::<c_void>(),
            (&beta as *const f32).cast::<c_void>(),
            weight as *const c_void,
            plan.a_layout.0,
            input as *const c_void,
            plan.b_layout.0,
            output as *const c_void,
            plan.d_layout.0,
            output as *mut c_void,
            plan.d_layout.0,
            &plan.algo,
            self.workspace_ptr as *mut c_void,
            self.workspace.len(),
            self.stream.cu_stream() as sys::cudaStream_t,
        )
        .map_err(|error| CudaError::blas("cublasLtMatmul", error))
    }
}

impl Drop for BlasLt {
    fn drop(&mut self) {
        // SAFETY: the handle was created in new and is destroyed only here; a failure leaks it.
        let _ = unsafe { result::destroy_handle(self.handle) };
    }
}

/// Descriptors and the chosen algorithm for one layer at one batch size.
pub(crate) struct MatmulPlan {
    desc: Desc,
    a_layout: Layout,
    b_layout: Layout,
    d_layout: Layout,
    algo: sys::cublasLtMatmulAlgo_t,
}

struct Layout(sys::cublasLtMatrixLayout_t);

impl Layout {
    fn new(rows: u64, cols: u64, leading_dimension: i64) -> Result<Self, CublasError> {
        result::create_matrix_layout(
            sys::cudaDataType_t::CUDA_R_32F,
            rows,
            cols,
            leading_dimension,
        )
        .map(Self)
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        // SAFETY: created in Layout::new, destroyed only here.
        let _ = unsafe { result::destroy_matrix_layout(self.0) };
    }
}

struct Desc(sys::cublasLtMatmulDesc_t);

impl Desc {
    /// Full f32 compute, no transposes (see [`BlasLt::plan`]), bias (and ReLU) in the epilogue.
    fn new(bias: CUdeviceptr, relu: bool) -> Result<Self, CublasError> {
        let desc = Self(result::create_matmul_desc(
            sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            sys::cudaDataType_t::CUDA_R_32F,
        )?);
        let epilogue = if relu {
            sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_RELU_BIAS
        } else {
            sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS
        };
        use sys::cublasLtMatmulDescAttributes_t as Attribute;
        // SAFETY: each value is a live local of the type the attribute expects, passed with its
        // exact size; the descriptor was created above.
        unsafe {
            set(desc.0, Attribute::CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue)?;
            set(desc.0, Attribute::CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias)?;
        }
        Ok(desc)
    }
}

/// Sets one matmul descriptor attribute from a typed value.
///
/// # Safety
/// `desc` must be live and `T` must be the attribute's documented type.
unsafe fn set<T>(
    desc: sys::cublasLtMatmulDesc_t,
    attribute: sys::cublasLtMatmulDescAttributes_t,
    value: &T,
) -> Result<(), CublasError> {
    result::set_matmul_desc_attribute(
        desc,
        attribute,
        (value as *const T).cast::<c_void>(),
        mem::size_of::<T>(),
    )
}

impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: created in Desc::new, destroyed only here.
        let _ = unsafe { result::destroy_matmul_desc(self.0) };
    }
}

struct Preference(sys::cublasLtMatmulPreference_t);

impl Preference {
    fn new(workspace_bytes: usize) -> Result<Self, CublasError> {
        let preference = Self(result::create_matmul_pref()?);
        // SAFETY: the attribute's type is size_t; the value is a live local.
        unsafe {
            result::set_matmul_pref_attribute(
                preference.0,
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                (&workspace_bytes as *const usize).cast::<c_void>(),
                mem::size_of::<usize>(),
            )?;
        }
        Ok(preference)
    }
}

impl Drop for Preference {
    fn drop(&mut self) {
        // SAFETY: created in Preference::new, destroyed only here.
        let _ = unsafe { result::destroy_matmul_pref(self.0) };
    }
}
