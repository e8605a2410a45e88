//! Host and device buffers whose addresses are taken once, at allocation, so that recording
//! a CUDA graph never goes through cudarc's per-use bookkeeping.

use std::sync::Arc;

use cudarc::driver::sys::{self, CUdeviceptr};
use cudarc::driver::{
    CudaContext, CudaSlice, CudaStream, DeviceRepr, PinnedHostSlice, ValidAsZeroBits,
};

use super::error::CudaError;

/// A page-locked host buffer with its address taken once, so that graph capture never calls
/// into cudarc's event tracking.
pub(crate) struct Pinned<T> {
    _owner: PinnedHostSlice<T>,
    pub(crate) pointer: *mut T,
    len: usize,
}

impl<T: DeviceRepr + ValidAsZeroBits> Pinned<T> {
    pub(crate) fn new(
        context: &Arc<CudaContext>,
        len: usize,
        write_combined: bool,
    ) -> Result<Self, CudaError> {
        // Write-combined memory is fast for the GPU to read and slow for the CPU to read: only
        // for buffers the host writes.
        let flags = if write_combined {
            sys::CU_MEMHOSTALLOC_WRITECOMBINED
        } else {
            0
        };
        // SAFETY: the memory is zeroed right below, before anything reads it.
        let mut owner = unsafe { context.alloc_pinned_with_flags::<T>(len, flags) }
            .map_err(|error| CudaError::driver("allocating pinned host memory", error))?;
        let pointer = owner
            .as_mut_ptr()
            .map_err(|error| CudaError::driver("pinned host memory", error))?;
        // SAFETY: `pointer` addresses `len` elements of T that this struct owns; all-zero bits
        // are a valid T (ValidAsZeroBits).
        unsafe { std::ptr::write_bytes(pointer, 0, len) };
        Ok(Self {
            _owner: owner,
            pointer,
            len,
        })
    }

    /// The buffer, for the host to fill or read.
    ///
    /// Sound because the engine synchronises its stream after every launch (so no copy that
    /// reads or writes this memory is in flight when the host touches it) and `&mut self`
    /// keeps the host's uses exclusive.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: see above; the pointer and length come from the owning allocation.
        unsafe { std::slice::from_raw_parts_mut(self.pointer, self.len) }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY: as for as_mut_slice.
        unsafe { std::slice::from_raw_parts(self.pointer, self.len) }
    }
}

/// A device buffer and its address.
pub(crate) struct Device<T> {
    _owner: CudaSlice<T>,
    pub(crate) pointer: CUdeviceptr,
}

impl<T: DeviceRepr + ValidAsZeroBits> Device<T> {
    pub(crate) fn zeros(stream: &Arc<CudaStream>, len: usize) -> Result<Self, CudaError> {
        let owner = stream
            .alloc_zeros::<T>(len.max(1))
            .map_err(|error| CudaError::driver("allocating device memory", error))?;
        let pointer = super::device_ptr(&owner, stream);
        Ok(Self {
            _owner: owner,
            pointer,
        })
    }

    pub(crate) fn from_host(stream: &Arc<CudaStream>, values: &[T]) -> Result<Self, CudaError> {
        let owner = stream
            .clone_htod(values)
            .map_err(|error| CudaError::driver("copying weights to the device", error))?;
        let pointer = super::device_ptr(&owner, stream);
        Ok(Self {
            _owner: owner,
            pointer,
        })
    }
}
