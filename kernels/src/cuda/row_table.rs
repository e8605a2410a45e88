//! The GPU embedding cache's device side: a table of `capacity_rows` embedding rows in device
//! memory, rows written into slots as the host's bookkeeping assigns them (only the rows a
//! request misses cross PCIe), and the embedding bag run over slots, so the pooled rows are
//! computed where the hot rows live.
//!
//! Which key lives in which slot, what to evict and what a write invalidates is the caller's
//! bookkeeping (the server's `inference::gpu_cache::RowCache`); this table only stores rows and
//! pools them.

use std::path::Path;
use std::sync::Arc;

use cudarc::driver::{result, CudaContext, CudaStream};

use super::buffers::{Device, Pinned};
use super::engine::open_context_for_table;
use super::error::CudaError;
use super::kernels::{EmbeddingBagLaunch, Kernels};
use super::library;
use crate::dlrm::Pooling;

/// A device table of embedding rows addressed by slot. See the module docs.
pub struct DeviceRowTable {
    dim: usize,
    capacity_rows: usize,
    rows_per_write_max: usize,
    bag_count_max: usize,
    ids_max: usize,
    // Field order is drop order: device buffers before the context.
    kernels: Kernels,
    table: Device<f32>,
    slots: Device<u32>,
    offsets: Device<u32>,
    pooled: Device<f32>,
    write_host: Pinned<f32>,
    slots_host: Pinned<u32>,
    offsets_host: Pinned<u32>,
    pooled_host: Pinned<f32>,
    stream: Arc<CudaStream>,
    _context: Arc<CudaContext>,
}

// SAFETY: as for DlrmEngine: the raw addresses inside belong to allocations the table owns, and
// `&mut self` on every method that touches the stream keeps uses from overlapping; each method
// makes the context current first.
unsafe impl Send for DeviceRowTable {}

/// The sizes of a [`DeviceRowTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowTableShape {
    /// Rows the table holds.
    pub capacity_rows: usize,
    /// Floats per row.
    pub dim: usize,
    /// Most rows one [`DeviceRowTable::write_rows`] call copies.
    pub rows_per_write_max: usize,
    /// Most bags one [`DeviceRowTable::pool`] call pools.
    pub bag_count_max: usize,
    /// Most slots (ids) one [`DeviceRowTable::pool`] call reads.
    pub ids_max: usize,
}

impl DeviceRowTable {
    /// Allocates the table on device `ordinal` and compiles the embedding-bag kernel with NVRTC
    /// (`nvrtc_library`, else `$EMBER_NVRTC_LIB`, else the system's).
    ///
    /// # Errors
    /// [`super::CudaErrorKind::NoDriver`], [`super::CudaErrorKind::NoDevice`],
    /// [`super::CudaErrorKind::LibraryMissing`] (NVRTC), [`super::CudaErrorKind::InvalidModel`]
    /// for a zero size, [`super::CudaErrorKind::Compile`] or [`super::CudaErrorKind::Driver`].
    pub fn new(
        ordinal: usize,
        shape: RowTableShape,
        nvrtc_library: Option<&Path>,
    ) -> Result<Self, CudaError> {
        library::guard(|| {
            if shape.capacity_rows == 0
                || shape.dim == 0
                || shape.rows_per_write_max == 0
                || shape.bag_count_max == 0
                || shape.ids_max == 0
                || shape.capacity_rows > u32::MAX as usize
                || shape.ids_max > u32::MAX as usize
            {
                return Err(CudaError::invalid_model(format!(
                    "row table sizes must be positive and slots fit u32: {shape:?}"
                )));
            }
            library::require_driver()?;
            library::require_nvrtc(nvrtc_library)?;
            let (context, compute_capability) = open_context_for_table(ordinal)?;
            let stream = context
                .new_stream()
                .map_err(|error| CudaError::driver("creating a stream", error))?;
            let kernels = Kernels::load(&context, compute_capability)?;
            let table = Self {
                dim: shape.dim,
                capacity_rows: shape.capacity_rows,
                rows_per_write_max: shape.rows_per_write_max,
                bag_count_max: shape.bag_count_max,
                ids_max: shape.ids_max,
                kernels,
                table: Device::zeros(&stream, shape.capacity_rows * shape.dim)?,
                slots: Device::zeros(&stream, shape.ids_max)?,
                offsets: Device::zeros(&stream, shape.bag_count_max + 1)?,
                pooled: Device::zeros(&stream, shape.bag_count_max * shape.dim)?,
                write_host: Pinned::new(&context, shape.rows_per_write_max * shape.dim, true)?,
                slots_host: Pinned::new(&context, shape.ids_max, true)?,
                offsets_host: Pinned::new(&context, shape.bag_count_max + 1, true)?,
                pooled_host: Pinned::new(&context, shape.bag_count_max * shape.dim, false)?,
                stream,
                _context: context,
            };
            table.synchronize("allocating the row table")?;
            Ok(table)
        })
    }

    /// Bytes of device memory the rows take.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity_rows * self.dim * std::mem::size_of::<f32>()
    }

    /// Copies `rows` (`slots.len()` rows of `dim` floats, in order) into their slots.
    ///
    /// # Errors
    /// [`super::CudaErrorKind::InvalidInput`] when the lengths disagree, a slot is past the
    /// capacity or there are more than `rows_per_write_max` rows; [`super::CudaErrorKind::Driver`].
    pub fn write_rows(&mut self, slots: &[u32], rows: &[f32]) -> Result<(), CudaError> {
        library::guard(|| {
            if rows.len() != slots.len() * self.dim || slots.len() > self.rows_per_write_max {
                return Err(CudaError::invalid_input(format!(
                    "{} floats for {} slots of {} (at most {} rows a write)",
                    rows.len(),
                    slots.len(),
                    self.dim,
                    self.rows_per_write_max
                )));
            }
            if let Some(slot) = slots.iter().find(|&&s| s as usize >= self.capacity_rows) {
                return Err(CudaError::invalid_input(format!(
                    "slot {slot} is past the table's {} rows",
                    self.capacity_rows
                )));
            }
            self.bind()?;
            self.write_host.as_mut_slice()[..rows.len()].copy_from_slice(rows);
            let row_bytes = self.dim * std::mem::size_of::<f32>();
            // One copy per run of consecutive slots, not per row: a driver call costs microseconds,
            // and the rows of one call (fresh slots of a new table, a caller's scratch range) are
            // mostly consecutive.
            for (index, first_slot, row_count) in slot_runs(slots) {
                let source =
                    &self.write_host.as_slice()[index * self.dim..(index + row_count) * self.dim];
                // SAFETY: the destination is rows first_slot .. first_slot + row_count of the
                // table: each of those slots is in `slots`, so below capacity_rows (checked
                // above), and the table holds capacity_rows * dim floats; the pinned source holds
                // those rows and is not touched by the host until the stream is synchronised below.
                unsafe {
                    result::memcpy_htod_async(
                        self.table.pointer + (first_slot as u64) * row_bytes as u64,
                        source,
                        self.stream.cu_stream(),
                    )
                }
                .map_err(|error| CudaError::driver("copying rows to the device", error))?;
            }
            self.synchronize("copying rows to the device")
        })
    }

    /// Pools bags of slots: bag `b` sums (or averages) the rows in slots
    /// `slots[offsets[b]..offsets[b + 1]]`; `out` gets `[bag_count, dim]`.
    ///
    /// # Errors
    /// [`super::CudaErrorKind::InvalidInput`] when the offsets are not a valid bag layout over
    /// `slots`, a slot is past the capacity, `out` has the wrong length, or the sizes pass
    /// `bag_count_max` / `ids_max`; [`super::CudaErrorKind::Driver`].
    pub fn pool(
        &mut self,
        offsets: &[u32],
        slots: &[u32],
        pooling: Pooling,
        out: &mut [f32],
    ) -> Result<(), CudaError> {
        library::guard(|| {
            let bag_count = offsets.len().saturating_sub(1);
            let valid = !offsets.is_empty()
                && offsets[0] == 0
                && offsets.windows(2).all(|pair| pair[0] <= pair[1])
                && offsets[bag_count] as usize == slots.len();
            if !valid
                || bag_count > self.bag_count_max
                || slots.len() > self.ids_max
                || out.len() != bag_count * self.dim
            {
                return Err(CudaError::invalid_input(format!(
                    "{} offsets over {} slots into {} floats (bags of {} floats; at most {} bags, {} slots)",
                    offsets.len(),
                    slots.len(),
                    out.len(),
                    self.dim,
                    self.bag_count_max,
                    self.ids_max
                )));
            }
            if let Some(slot) = slots.iter().find(|&&s| s as usize >= self.capacity_rows) {
                return Err(CudaError::invalid_input(format!(
                    "slot {slot} is past the table's {} rows",
                    self.capacity_rows
                )));
            }
            if bag_count == 0 {
                return Ok(());
            }
            self.bind()?;
            self.offsets_host.as_mut_slice()[..offsets.len()].copy_from_slice(offsets);
            self.slots_host.as_mut_slice()[..slots.len()].copy_from_slice(slots);
            let stream = self.stream.cu_stream();
            let copy = |error| CudaError::driver("copying bags to the device", error);
            // SAFETY: each buffer was sized for the maxima checked above; the pinned sources are not
            // touched by the host until the stream is synchronised; the launch reads only slots
            // below capacity_rows (checked) of a table of capacity_rows * dim floats.
            unsafe {
                result::memcpy_htod_async(
                    self.offsets.pointer,
                    &self.offsets_host.as_slice()[..offsets.len()],
                    stream,
                )
                .map_err(copy)?;
                if !slots.is_empty() {
                    result::memcpy_htod_async(
                        self.slots.pointer,
                        &self.slots_host.as_slice()[..slots.len()],
                        stream,
                    )
                    .map_err(copy)?;
                }
                self.kernels.embedding_bag(
                    stream,
                    &EmbeddingBagLaunch {
                        table: self.table.pointer,
                        table_row_count: self.capacity_rows as u64,
                        rows: self.slots.pointer,
                        offsets: self.offsets.pointer,
                        bag_count,
                        dim: self.dim,
                        mean: pooling == Pooling::Mean,
                        out: self.pooled.pointer,
                    },
                )?;
                result::memcpy_dtoh_async(
                    &mut self.pooled_host.as_mut_slice()[..out.len()],
                    self.pooled.pointer,
                    stream,
                )
                .map_err(|error| CudaError::driver("copying pooled rows back", error))?;
            }
            self.synchronize("pooling rows")?;
            out.copy_from_slice(&self.pooled_host.as_slice()[..out.len()]);
            Ok(())
        })
    }

    /// The table's device address, row count, row width and context, for
    /// [`super::DlrmEngine::score_slots`]; the address is valid while `self` is borrowed.
    pub(crate) fn device_rows(&self) -> (u64, u64, usize, &Arc<CudaContext>) {
        (
            self.table.pointer,
            self.capacity_rows as u64,
            self.dim,
            &self._context,
        )
    }

    fn bind(&self) -> Result<(), CudaError> {
        self._context
            .bind_to_thread()
            .map_err(|error| CudaError::driver("making the context current", error))
    }

    fn synchronize(&self, what: &str) -> Result<(), CudaError> {
        self.stream
            .synchronize()
            .map_err(|error| CudaError::driver(what, error))
    }
}

/// The runs of consecutive slots in `slots`, in order: (index of the run's first entry in
/// `slots`, its slot, how many entries), each entry `i` of a run being slot `first + i`. A slot
/// repeated or out of order starts a new run, so the copies keep the order of `slots`.
fn slot_runs(slots: &[u32]) -> Vec<(usize, u32, usize)> {
    let mut runs: Vec<(usize, u32, usize)> = Vec::new();
    for (index, &slot) in slots.iter().enumerate() {
        match runs.last_mut() {
            Some((_, first, count)) if u64::from(*first) + *count as u64 == u64::from(slot) => {
                *count += 1
            }
            _ => runs.push((index, slot, 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_slots_make_one_run() {
        // (what, slots, runs)
        let cases: [(&str, &[u32], &[(usize, u32, usize)]); 6] = [
            ("none", &[], &[]),
            ("one", &[7], &[(0, 7, 1)]),
            ("a scratch range", &[100, 101, 102, 103], &[(0, 100, 4)]),
            ("two runs", &[5, 6, 9, 10, 11], &[(0, 5, 2), (2, 9, 3)]),
            ("a repeat starts a run", &[3, 3, 4], &[(0, 3, 1), (1, 3, 2)]),
            ("descending", &[2, 1, 0], &[(0, 2, 1), (1, 1, 1), (2, 0, 1)]),
        ];
        for (what, slots, runs) in cases {
            assert_eq!(slot_runs(slots), runs, "{what}");
            // Every entry is in exactly one run, in order.
            let covered: usize = runs.iter().map(|run| run.2).sum();
            assert_eq!(covered, slots.len(), "{what}");
        }
        // The largest slot does not overflow the check.
        assert_eq!(slot_runs(&[u32::MAX, 0]), [(0, u32::MAX, 1), (1, 0, 1)]);
    }
}
