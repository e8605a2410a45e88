//! The NVRTC-compiled kernels of `kernels/cuda/`, loaded for one device, and their launches.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::sys::{self, CUdeviceptr};
use cudarc::driver::{result, CudaContext, CudaFunction};
use cudarc::nvrtc::Ptx;

use super::compile::{self, CompileTarget, KernelSource, ACTIVATION, EMBEDDING_BAG, INTERACTION};
use super::error::{CudaError, CudaErrorKind};

/// Static shared memory a block may use without opting in; the interaction kernel stages one
/// sample's vectors there.
const SHARED_MEMORY_BYTES_MAX: usize = 48 * 1024;
/// PTX target when NVRTC cannot build a CUBIN for the device (Ampere, the oldest Ember targets).
const PTX_FALLBACK_ARCHITECTURE: &str = "compute_80";
/// Threads per block of the interaction kernel: 351 pairs take three passes.
const INTERACTION_THREADS: u32 = 128;
/// Threads per block of the element-wise kernels and the embedding bag.
const BLOCK_THREADS: usize = 256;

/// The model's shapes, as the kernels need them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) dense_width: usize,
    pub(crate) feature_count: usize,
    pub(crate) dim: usize,
    pub(crate) interaction_width: usize,
}

/// The arguments of one embedding-bag launch (see `kernels/cuda/embedding_bag.cu`).
pub(crate) struct EmbeddingBagLaunch {
    /// The concatenated tables, `[table_row_count, dim]`.
    pub(crate) table: CUdeviceptr,
    pub(crate) table_row_count: u64,
    /// Rows of the concatenated tables, `offsets[bag_count]` of them.
    pub(crate) rows: CUdeviceptr,
    /// `bag_count + 1` offsets into `rows`.
    pub(crate) offsets: CUdeviceptr,
    pub(crate) bag_count: usize,
    pub(crate) dim: usize,
    pub(crate) mean: bool,
    /// `[bag_count, dim]` pooled rows.
    pub(crate) out: CUdeviceptr,
}

/// The three kernels, compiled for the device.
pub(crate) struct Kernels {
    embedding_bag: CudaFunction,
    interaction: CudaFunction,
    sigmoid: CudaFunction,
}

impl Kernels {
    /// Compiles (with NVRTC) and loads every kernel for a device of `compute_capability`.
    pub(crate) fn load(
        context: &Arc<CudaContext>,
        compute_capability: (i32, i32),
    ) -> Result<Self, CudaError> {
        let architecture = format!("sm_{}{}", compute_capability.0, compute_capability.1);
        let load = |source: &KernelSource| -> Result<CudaFunction, CudaError> {
            let image = compile_for_device(source, &architecture)?;
            let module = context.load_module(image).map_err(|error| {
                CudaError::driver(&format!("loading {}", source.file_name), error)
            })?;
            module
                .load_function(source.function_names[0])
                .map_err(|error| {
                    CudaError::driver(&format!("finding {}", source.function_names[0]), error)
                })
        };
        Ok(Self {
            embedding_bag: load(&EMBEDDING_BAG)?,
            interaction: load(&INTERACTION)?,
            sigmoid: load(&ACTIVATION)?,
        })
    }

    /// Enqueues the embedding bag.
    ///
    /// # Safety
    /// Every address in `bag` must be a live device allocation of at least the size its field
    /// documents, and the offsets must be non-decreasing positions into `rows`.
    pub(crate) unsafe fn embedding_bag(
        &self,
        stream: sys::CUstream,
        bag: &EmbeddingBagLaunch,
    ) -> Result<(), CudaError> {
        let bags_per_block = (BLOCK_THREADS / bag.dim).max(1);
        let grid = bag.bag_count.div_ceil(bags_per_block) as u32;
        let (mut table, mut table_row_count) = (bag.table, bag.table_row_count);
        let (mut rows, mut offsets, mut out) = (bag.rows, bag.offsets, bag.out);
        let mut bag_count = bag.bag_count as u32;
        let mut dim = bag.dim as u32;
        let mut mean = i32::from(bag.mean);
        let mut params = [
            param(&mut table),
            param(&mut table_row_count),
            param(&mut rows),
            param(&mut offsets),
            param(&mut bag_count),
            param(&mut dim),
            param(&mut mean),
            param(&mut out),
        ];
        launch(
            &self.embedding_bag,
            (grid, 1, 1),
            (bag.dim as u32, bags_per_block as u32, 1),
            0,
            stream,
            &mut params,
        )
    }

    /// Enqueues the dot interaction of `sample_count` samples into `out`
    /// (`[sample_count, shape.interaction_width]`).
    ///
    /// # Safety
    /// `bottom` must hold `sample_count * dim` floats, `pooled` `sample_count * F * dim` and
    /// `out` `sample_count * interaction_width`, all live on the device.
    pub(crate) unsafe fn interaction(
        &self,
        stream: sys::CUstream,
        shape: &Shape,
        sample_count: usize,
        bottom: CUdeviceptr,
        pooled: CUdeviceptr,
        out: CUdeviceptr,
    ) -> Result<(), CudaError> {
        let shared_bytes = interaction_shared_bytes(shape) as u32;
        let (mut bottom, mut pooled, mut out) = (bottom, pooled, out);
        let mut samples = sample_count as u32;
        let mut features = shape.feature_count as u32;
        let mut dim = shape.dim as u32;
        let mut params = [
            param(&mut bottom),
            param(&mut pooled),
            param(&mut samples),
            param(&mut features),
            param(&mut dim),
            param(&mut out),
        ];
        launch(
            &self.interaction,
            (sample_count as u32, 1, 1),
            (INTERACTION_THREADS, 1, 1),
            shared_bytes,
            stream,
            &mut params,
        )
    }

    /// Enqueues the sigmoid over `count` floats at `values`, in place.
    ///
    /// # Safety
    /// `values` must hold `count` floats on the device.
    pub(crate) unsafe fn sigmoid(
        &self,
        stream: sys::CUstream,
        values: CUdeviceptr,
        count: usize,
    ) -> Result<(), CudaError> {
        let grid = count.div_ceil(BLOCK_THREADS) as u32;
        let mut values = values;
        let mut count = count as u32;
        let mut params = [param(&mut values), param(&mut count)];
        launch(
            &self.sigmoid,
            (grid, 1, 1),
            (BLOCK_THREADS as u32, 1, 1),
            0,
            stream,
            &mut params,
        )
    }
}

/// A kernel parameter: the address of the argument's value, as cuLaunchKernel takes it.
fn param<T>(value: &mut T) -> *mut c_void {
    (value as *mut T).cast::<c_void>()
}

/// # Safety
/// `params` must point at live values of exactly the kernel's parameter types, in order, and
/// every device address among them must be valid for what the kernel reads and writes.
unsafe fn launch(
    function: &CudaFunction,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    shared_bytes: u32,
    stream: sys::CUstream,
    params: &mut [*mut c_void],
) -> Result<(), CudaError> {
    result::launch_kernel(
        function.cu_function(),
        grid,
        block,
        shared_bytes,
        stream,
        params,
    )
    .map_err(|error| CudaError::driver("launching a kernel", error))
}

pub(crate) fn interaction_shared_bytes(shape: &Shape) -> usize {
    (shape.feature_count + 1) * (shape.dim + 1) * std::mem::size_of::<f32>()
}

/// Rejects shapes the kernels' launch configurations cannot cover.
pub(crate) fn check_kernel_limits(shape: &Shape) -> Result<(), CudaError> {
    if shape.dim > 1024 {
        return Err(CudaError::invalid_model(format!(
            "embedding dimension {} exceeds the embedding bag's 1024 threads per block",
            shape.dim
        )));
    }
    let shared_bytes = interaction_shared_bytes(shape);
    if shared_bytes > SHARED_MEMORY_BYTES_MAX {
        return Err(CudaError::invalid_model(format!(
            "the interaction of {} vectors of {} floats needs {shared_bytes} bytes of shared memory, \
             more than {SHARED_MEMORY_BYTES_MAX}",
            shape.feature_count + 1,
            shape.dim
        )));
    }
    Ok(())
}

/// A CUBIN for the device's own architecture, so the driver runs it as is. An NVRTC older
/// than the device does not know its architecture; then PTX for the oldest architecture Ember
/// targets, which the driver compiles for the device when loading it.
fn compile_for_device(source: &KernelSource, architecture: &str) -> Result<Ptx, CudaError> {
    match compile::compile(
        source.file_name,
        source.text,
        architecture,
        CompileTarget::Cubin,
    ) {
        Ok(cubin) => Ok(Ptx::from_binary(cubin)),
        Err(cubin_error) => {
            let ptx = compile::compile(
                source.file_name,
                source.text,
                PTX_FALLBACK_ARCHITECTURE,
                CompileTarget::Ptx,
            )
            .map_err(|_| cubin_error)?;
            let text = String::from_utf8(ptx).map_err(|_| {
                CudaError::new(
                    CudaErrorKind::Compile,
                    "NVRTC returned PTX that is not UTF-8",
                )
            })?;
            Ok(Ptx::from_src(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_limits() {
        let dlrm = Shape {
            dense_width: 13,
            feature_count: 26,
            dim: 64,
            interaction_width: 415,
        };
        assert!(check_kernel_limits(&dlrm).is_ok());
        assert_eq!(interaction_shared_bytes(&dlrm), 27 * 65 * 4);
        let wide = Shape { dim: 2048, ..dlrm };
        assert_eq!(
            check_kernel_limits(&wide).unwrap_err().kind(),
            CudaErrorKind::InvalidModel
        );
        let many = Shape {
            feature_count: 200,
            ..dlrm
        };
        assert!(check_kernel_limits(&many)
            .unwrap_err()
            .message()
            .contains("shared memory"));
    }
}
