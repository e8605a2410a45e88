//! One shard's GPU embedding cache as RECOMMEND uses it: the device table of rows
//! (`ember_kernels::cuda::DeviceRowTable`) joined to its bookkeeping ([`RowCache`]), and the gather that
//! serves a request's embedding rows from it.
//!
//! A RECOMMEND on the native backend hands the rows its shard owns to [`DeviceRows::gather`]: their keys
//! resolve to slots; only the rows that miss are read from the keyspace and copied to the device; then the
//! embedding-bag kernel pools every row on the device (each field of a RECOMMEND is a bag of one row, so the
//! pooled row is the row) and the pooled batch comes back for the engine's `score_pooled`. A key the cache
//! does not keep (missing, not a row of the model's width, with a TTL) goes back to the caller, which reads it
//! from the keyspace as the CPU path does and gives the same reply or error.
//!
//! Rows of keys other shards own are not cached here: this shard's keyspace observer hears only its own keys'
//! writes, so a copy of another shard's row could outlive a SET. Those rows travel as on the CPU path.
//!
//! A large RECOMMEND skips the pooled rows' round trip: [`DeviceRows::slots`] resolves its rows to slots (copying
//! the misses) and writes the rows other shards sent into scratch slots past the cache's own, for that call only;
//! the engine's `score_slots` then runs the embedding bag over [`DeviceRows::table`] and only scores come back.
//!
//! Everything here runs on the shard's thread with no await inside, so no write can come between resolving a
//! slot and reading it; every device error becomes the RECOMMEND's error, never a panic.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::Path;
use std::rc::Rc;

use ember_kernels::cuda::{self, DeviceRowTable, RowTableShape};
use ember_kernels::dlrm::Pooling;
use ember_store::{Keyspace, Value};

use super::gpu_cache::{CacheInvalidator, ResolveError, RowCache, RowCacheStats, RowSlot};

/// Rows one `write_rows` copies: 4096 rows of 64 floats is a 1 MiB pinned staging buffer; a request with more
/// misses copies in several calls.
pub const ROWS_PER_WRITE_MAX: usize = 4096;
/// Bags (rows) one `pool` gathers: a batch of 4096 candidates with 13 candidate fields is 53,248 rows, so four
/// calls at most; 16,384 rows of 64 floats is a 4 MiB pinned buffer for the pooled rows.
pub const BAG_COUNT_MAX: usize = 16_384;
/// A shard's table takes at most 1/(this x shards) of the GPU's memory: the engine's weights, activations and
/// graphs, ONNX Runtime's arena and other processes need the rest.
pub const DEVICE_MEMORY_SHARE_DIVISOR: u64 = 8;
/// Scratch rows past the cache's own slots, where [`DeviceRows::slots`] writes the rows of keys other shards own for
/// one call (they are never cached: this shard does not hear their writes). A chunk of 4096 candidates (the largest
/// max-batch the GPU benchmark runs) with 13 user and 13 candidate fields has at most 13 + 4096 x 13 = 53,261 such
/// rows; 65,536 rows of 64 floats are 16 MiB a shard. A chunk with more takes the pooled path.
pub const FOREIGN_ROWS_MAX: usize = 65_536;

/// The device table and its bookkeeping for one shard. See the module docs.
pub struct DeviceRows {
    table: DeviceRowTable,
    rows: Rc<RefCell<RowCache>>,
    device_id: u32,
    dim: usize,
    /// Slots and rows read from the keyspace for this call's misses, reused between calls.
    staged_slots: Vec<u32>,
    staged_rows: Vec<f32>,
    /// The slots the kernel pools, one bag each, reused between calls.
    bag_slots: Vec<u32>,
    /// `0, 1, ..., BAG_COUNT_MAX`: every call's bags are one row each, so every call's offsets are a prefix.
    bag_offsets: Vec<u32>,
    /// Rows [`RowCache`] manages: slots `0..capacity_rows`; the scratch slots for other shards' rows follow.
    capacity_rows: usize,
    /// The scratch slots, `capacity_rows ..capacity_rows + FOREIGN_ROWS_MAX`, written in pieces.
    scratch_slots: Vec<u32>,
    /// RECOMMEND chunks scored from slots, and those that took the pooled path instead.
    slot_counts: SlotCounts,
}

/// What the slot path did, for INFO.
#[derive(Clone, Copy, Debug, Default)]
struct SlotCounts {
    calls: u64,
    samples: u64,
    fallbacks: u64,
}

impl std::fmt::Debug for DeviceRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRows")
            .field("device_id", &self.device_id)
            .field("dim", &self.dim)
            .field("stats", &self.rows.borrow().stats())
            .finish()
    }
}

/// The rows a shard's table holds: `rows_wanted`, capped so that `shard_count` tables of `dim` floats a row
/// take at most 1/[`DEVICE_MEMORY_SHARE_DIVISOR`] of `device_memory_bytes`; at least one row.
pub fn capacity_rows(
    rows_wanted: usize,
    dim: usize,
    shard_count: usize,
    device_memory_bytes: usize,
) -> usize {
    let row_bytes = (dim * std::mem::size_of::<f32>()).max(1) as u64;
    let share =
        device_memory_bytes as u64 / DEVICE_MEMORY_SHARE_DIVISOR / shard_count.max(1) as u64;
    let cap = (share / row_bytes).max(1);
    (rows_wanted as u64)
        .min(cap)
        .min(super::gpu_cache::CAPACITY_ROWS_MAX as u64) as usize
}

impl DeviceRows {
    /// A table of `rows_wanted` rows (capped, see [`capacity_rows`]) of `dim` floats on device `device_id`, and
    /// the keyspace observer that invalidates its rows (the caller installs it before the first gather).
    ///
    /// # Errors
    /// `ERR GPU embedding cache ...` naming the device and the cause (no driver or device, NVRTC missing, out of
    /// device memory).
    pub fn new(
        device_id: u32,
        dim: usize,
        rows_wanted: usize,
        shard_count: usize,
        nvrtc_library: Option<&Path>,
    ) -> Result<(DeviceRows, CacheInvalidator), String> {
        let failed = |error: &dyn std::fmt::Display| {
            format!(
                "ERR GPU embedding cache on device {device_id}: {error} (start ember with --gpu-cache-rows 0 to \
                 read every row from the keyspace)"
            )
        };
        let device = cuda::probe(device_id as usize).map_err(|e| failed(&e))?;
        let capacity = capacity_rows(rows_wanted, dim, shard_count, device.memory_bytes);
        let shape = RowTableShape {
            capacity_rows: capacity + FOREIGN_ROWS_MAX,
            dim,
            rows_per_write_max: ROWS_PER_WRITE_MAX,
            bag_count_max: BAG_COUNT_MAX,
            ids_max: BAG_COUNT_MAX,
        };
        let table = DeviceRowTable::new(device_id as usize, shape, nvrtc_library)
            .map_err(|e| failed(&e))?;
        let rows = Rc::new(RefCell::new(RowCache::new(
            capacity,
            dim * std::mem::size_of::<f32>(),
        )));
        let invalidator = CacheInvalidator::new(Rc::clone(&rows));
        let device_rows = DeviceRows {
            table,
            rows,
            device_id,
            dim,
            staged_slots: Vec::new(),
            staged_rows: Vec::new(),
            bag_slots: Vec::new(),
            bag_offsets: (0..=BAG_COUNT_MAX as u32).collect(),
            capacity_rows: capacity,
            scratch_slots: (capacity..capacity + FOREIGN_ROWS_MAX)
                .map(|slot| {
                    u32::try_from(slot).expect("the table's slots fit u32 (checked by the table)")
                })
                .collect(),
            slot_counts: SlotCounts::default(),
        };
        Ok((device_rows, invalidator))
    }

    /// The device the table is on.
    pub fn device_id(&self) -> u32 {
        self.device_id
    }

    /// Floats per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The cache's counters, with the slot path's.
    pub fn stats(&self) -> RowCacheStats {
        RowCacheStats {
            slot_calls: self.slot_counts.calls,
            slot_samples: self.slot_counts.samples,
            slot_fallbacks: self.slot_counts.fallbacks,
            ..self.rows.borrow().stats()
        }
    }

    /// The device table, for the engine's `score_slots` over the slots [`DeviceRows::slots`] returned.
    pub fn table(&self) -> &DeviceRowTable {
        &self.table
    }

    /// Counts a RECOMMEND chunk of `samples` candidates scored from slots.
    pub fn count_slot_call(&mut self, samples: usize) {
        self.slot_counts.calls += 1;
        self.slot_counts.samples += samples as u64;
    }

    /// Counts a RECOMMEND chunk that was meant for the slot path and took the pooled path.
    pub fn count_slot_fallback(&mut self) {
        self.slot_counts.fallbacks += 1;
    }

    /// Puts on the device every row a RECOMMEND chunk reads and says where: `slots` gets the slot of each of
    /// `keys` (in `db`, keys this shard owns), hits as they are and misses after their rows are copied from the
    /// keyspace; `foreign_rows` (rows of keys other shards own, `dim` floats each, already read by the caller) are
    /// copied into scratch slots for this call only, and the returned range holds their slots in order.
    ///
    /// `Ok(None)` when the chunk cannot be scored from slots: a key holds no row the cache keeps (missing, not a
    /// row of the model's width, with a TTL), the keys need more rows than the cache holds, or there are more than
    /// [`FOREIGN_ROWS_MAX`] foreign rows. The caller then takes the pooled path, which reads such keys from the
    /// keyspace and gives the CPU path's reply or error. The rows copied before that stay cached (they are valid).
    ///
    /// The slots are valid until the next call that writes the table (this one, [`DeviceRows::gather`]) or an
    /// invalidation: the caller scores them with no await in between.
    ///
    /// # Errors
    /// `ERR GPU embedding cache ...` when a copy fails; the rows this call would have added are dropped again.
    ///
    /// # Panics
    /// When `foreign_rows` is not whole rows.
    pub fn slots(
        &mut self,
        keyspace: &Keyspace,
        db: usize,
        keys: &[&[u8]],
        now_ms: u64,
        foreign_rows: &[f32],
        slots: &mut Vec<u32>,
    ) -> Result<Option<std::ops::Range<u32>>, String> {
        assert_eq!(
            foreign_rows.len() % self.dim,
            0,
            "foreign rows are whole rows"
        );
        slots.clear();
        let foreign_count = foreign_rows.len() / self.dim;
        if foreign_count > FOREIGN_ROWS_MAX {
            return Ok(None);
        }
        let resolved = match self.rows.borrow_mut().resolve(db, keys.iter().copied()) {
            Ok(resolved) => resolved,
            Err(ResolveError::CapacityExceeded { .. }) => return Ok(None),
        };
        let released = self.stage_misses(keyspace, db, keys, &resolved, now_ms);
        if let Err(error) = self.write_staged() {
            self.release_staged();
            return Err(self.error(&error));
        }
        if !released.is_empty() {
            return Ok(None);
        }
        let floats_per_write = ROWS_PER_WRITE_MAX * self.dim;
        for (scratch, rows) in self
            .scratch_slots
            .chunks(ROWS_PER_WRITE_MAX)
            .zip(foreign_rows.chunks(floats_per_write))
        {
            // The last piece has fewer rows than ROWS_PER_WRITE_MAX: as many slots as rows.
            let scratch = &scratch[..rows.len() / self.dim];
            self.table
                .write_rows(scratch, rows)
                .map_err(|error| self.error(&error))?;
        }
        slots.extend(resolved.iter().map(|slot| slot.slot()));
        let first = self.capacity_rows as u32;
        Ok(Some(first..first + foreign_count as u32))
    }

    /// Serves the rows of `keys` (in `db`, keys this shard owns) from the device: `pooled` gets, in order, the
    /// row of every key whose flag in the result is true; a false flag leaves that key to the caller, which
    /// reads it from the keyspace. All false when the keys need more distinct rows than the table holds.
    ///
    /// # Errors
    /// `ERR GPU embedding cache ...` when a copy or the kernel fails; the rows this call would have added are
    /// dropped again, so the next call copies them afresh.
    pub fn gather(
        &mut self,
        keyspace: &Keyspace,
        db: usize,
        keys: &[&[u8]],
        now_ms: u64,
        pooled: &mut Vec<f32>,
    ) -> Result<Vec<bool>, String> {
        pooled.clear();
        let slots = match self.rows.borrow_mut().resolve(db, keys.iter().copied()) {
            Ok(slots) => slots,
            Err(ResolveError::CapacityExceeded { .. }) => return Ok(vec![false; keys.len()]),
        };
        let released = self.stage_misses(keyspace, db, keys, &slots, now_ms);
        if let Err(error) = self.write_staged() {
            self.release_staged();
            return Err(self.error(&error));
        }
        let mut on_device = Vec::with_capacity(keys.len());
        self.bag_slots.clear();
        for slot in &slots {
            let slot = slot.slot();
            let here = !released.contains(&slot);
            if here {
                self.bag_slots.push(slot);
            }
            on_device.push(here);
        }
        if let Err(error) = self.pool(pooled) {
            self.release_staged();
            return Err(self.error(&error));
        }
        Ok(on_device)
    }

    /// Reads the row of every miss from the keyspace into the staging buffers; a miss whose key holds no row
    /// the cache keeps gives its slot back. Returns the slots given back.
    fn stage_misses(
        &mut self,
        keyspace: &Keyspace,
        db: usize,
        keys: &[&[u8]],
        slots: &[RowSlot],
        now_ms: u64,
    ) -> HashSet<u32> {
        let row_bytes = self.dim * std::mem::size_of::<f32>();
        let mut released = HashSet::new();
        self.staged_slots.clear();
        self.staged_rows.clear();
        let mut rows = self.rows.borrow_mut();
        for (key, slot) in keys.iter().zip(slots) {
            let RowSlot::Miss(slot) = *slot else {
                continue;
            };
            // A row with a TTL is left to the keyspace: its expiry is noticed lazily, and a cached copy must not
            // outlive it. EXPIRE on a cached row is a write, which invalidates it.
            let row = keyspace
                .peek(db, key, now_ms)
                .filter(|entry| entry.expire_at_ms().is_none())
                .and_then(|entry| match &entry.value {
                    Value::Str(bytes) if bytes.len() == row_bytes => Some(&bytes[..]),
                    _ => None,
                });
            match row {
                Some(bytes) => {
                    self.staged_slots.push(slot);
                    self.staged_rows.extend(
                        bytes
                            .chunks_exact(4)
                            .map(|chunk| f32::from_le_bytes(chunk.try_into().expect("4 bytes"))),
                    );
                }
                None => {
                    rows.release(slot);
                    released.insert(slot);
                }
            }
        }
        released
    }

    /// Copies the staged rows into their slots.
    fn write_staged(&mut self) -> Result<(), cuda::CudaError> {
        let floats_per_write = ROWS_PER_WRITE_MAX * self.dim;
        for (slots, rows) in self
            .staged_slots
            .chunks(ROWS_PER_WRITE_MAX)
            .zip(self.staged_rows.chunks(floats_per_write))
        {
            self.table.write_rows(slots, rows)?;
        }
        Ok(())
    }

    /// Gives back the slots of this call's misses (their rows may not be on the device).
    fn release_staged(&mut self) {
        let mut rows = self.rows.borrow_mut();
        for &slot in &self.staged_slots {
            rows.release(slot);
        }
    }

    /// Pools `bag_slots`, one row a bag, into `pooled`.
    fn pool(&mut self, pooled: &mut Vec<f32>) -> Result<(), cuda::CudaError> {
        pooled.resize(self.bag_slots.len() * self.dim, 0.0);
        for (slots, out) in self
            .bag_slots
            .chunks(BAG_COUNT_MAX)
            .zip(pooled.chunks_mut(BAG_COUNT_MAX * self.dim))
        {
            let offsets = &self.bag_offsets[..=slots.len()];
            self.table.pool(offsets, slots, Pooling::Sum, out)?;
        }
        Ok(())
    }

    fn error(&self, error: &cuda::CudaError) -> String {
        format!(
            "ERR GPU embedding cache on device {}: {error}",
            self.device_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_fits_the_device_share() {
        const GIB: usize = 1 << 30;
        // (rows asked, dim, shards, device bytes, rows given)
        let cases = [
            (
                "the default fits an H200",
                1 << 20,
                64,
                2,
                141 * GIB,
                1 << 20,
            ),
            // 16 GiB / 8 / 16 shards = 128 MiB a shard = 524,288 rows of 256 bytes.
            ("capped on a small GPU", 1 << 20, 64, 16, 16 * GIB, 524_288),
            (
                "wider rows, fewer of them",
                1 << 20,
                256,
                16,
                16 * GIB,
                131_072,
            ),
            ("a tiny device still holds a row", 1 << 20, 64, 1, 100, 1),
            ("no shard count is one shard", 10, 64, 0, GIB, 10),
        ];
        for (name, wanted, dim, shards, bytes, want) in cases {
            assert_eq!(capacity_rows(wanted, dim, shards, bytes), want, "{name}");
        }
    }
}
