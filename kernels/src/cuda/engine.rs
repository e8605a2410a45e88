//! [`DlrmEngine`]: the DLRM forward pass on one GPU.
//!
//! Per request the host writes the inputs into pinned buffers and launches one CUDA graph; the
//! graph copies the inputs in, runs the embedding bag (for ids), the bottom MLP, the dot
//! interaction, the top MLP and the sigmoid, and copies the scores out. A batch runs in the
//! graph of the smallest bucket (1, 2, 4, ... up to the largest batch) that holds it; the rows
//! past the batch are zeros whose scores are dropped. Graphs are captured on first use of a
//! bucket (or all at once with [`DlrmEngine::warm_up`]).

use std::path::PathBuf;
use std::sync::Arc;

use cudarc::driver::sys::{self, CUstreamCaptureMode};
use cudarc::driver::{result, CudaContext, CudaGraph, CudaStream};

use super::blas::{BlasLt, MatmulPlan};
use super::buffers::{Device, Pinned};
use super::error::{CudaError, CudaErrorKind};
use super::kernels::{check_kernel_limits, EmbeddingBagLaunch, Kernels, Shape};
use super::library;
use super::row_table::DeviceRowTable;
use crate::dlrm::{DlrmModel, Pooling, SparseBags, TableLayout};

/// Default largest batch: HugeCTR's published DLRM inference batch.
pub const BATCH_SIZE_MAX_DEFAULT: usize = 1024;
/// Upper bound on the largest batch; the buffers for it stay in the low hundreds of MB.
pub const BATCH_SIZE_MAX_LIMIT: usize = 1 << 16;
/// Default capacity for ids per batch, per sparse feature and sample: multi-hot bags of up to
/// this many ids on average fit without reconfiguring.
pub const IDS_PER_BAG_DEFAULT: usize = 4;
/// How a [`DlrmEngine`] is set up.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The CUDA device to run on.
    pub device_ordinal: usize,
    /// The largest batch one graph launch scores; larger requests are split. Rounded up to a
    /// power of two; at most [`BATCH_SIZE_MAX_LIMIT`].
    pub batch_size_max: usize,
    /// Room for ids in one launch of [`DlrmEngine::score_bags`]; `None` gives
    /// `batch_size_max * F * IDS_PER_BAG_DEFAULT`.
    pub ids_per_batch_max: Option<usize>,
    /// How the embedding bag combines the rows of a bag.
    pub pooling: Pooling,
    /// NVRTC's library file; `None` uses `$EMBER_NVRTC_LIB` or the system's.
    pub nvrtc_library: Option<PathBuf>,
    /// cuBLASLt's library file; `None` uses `$EMBER_CUBLASLT_LIB` or the system's.
    pub cublaslt_library: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            device_ordinal: 0,
            batch_size_max: BATCH_SIZE_MAX_DEFAULT,
            ids_per_batch_max: None,
            pooling: Pooling::Sum,
            nvrtc_library: None,
            cublaslt_library: None,
        }
    }
}

/// The device an engine would run on, as [`probe`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Device memory in bytes.
    pub memory_bytes: usize,
}

/// Finds CUDA device `ordinal` without panicking when there is no driver or device: the check
/// a server runs at start-up to say whether the native CUDA path is available.
///
/// # Errors
/// [`CudaErrorKind::NoDriver`] ("no CUDA driver: libcuda.so.1 not found"),
/// [`CudaErrorKind::NoDevice`], or [`CudaErrorKind::Driver`].
pub fn probe(ordinal: usize) -> Result<DeviceInfo, CudaError> {
    library::guard(|| {
        library::require_driver()?;
        let context = open_context(ordinal)?;
        device_info(&context)
    })
}

fn open_context(ordinal: usize) -> Result<Arc<CudaContext>, CudaError> {
    result::init().map_err(|error| CudaError::driver("cuInit", error))?;
    let count = CudaContext::device_count()
        .map_err(|error| CudaError::driver("cuDeviceGetCount", error))?;
    if ordinal >= count.max(0) as usize {
        return Err(CudaError::new(
            CudaErrorKind::NoDevice,
            format!("no CUDA device {ordinal}: the driver reports {count} devices"),
        ));
    }
    CudaContext::new(ordinal).map_err(|error| CudaError::driver("creating the CUDA context", error))
}

/// A context on device `ordinal` for a [`super::row_table::DeviceRowTable`] (one stream, so no
/// event tracking, as the engine) and the device's compute capability.
pub(crate) fn open_context_for_table(
    ordinal: usize,
) -> Result<(Arc<CudaContext>, (i32, i32)), CudaError> {
    let context = open_context(ordinal)?;
    // SAFETY: the table uses one stream for everything, as the engine does (see build).
    unsafe { context.disable_event_tracking() };
    let device = device_info(&context)?;
    Ok((context, device.compute_capability))
}

fn device_info(context: &Arc<CudaContext>) -> Result<DeviceInfo, CudaError> {
    let driver = |error| CudaError::driver("querying the device", error);
    Ok(DeviceInfo {
        name: context.name().map_err(driver)?,
        compute_capability: context.compute_capability().map_err(driver)?,
        memory_bytes: context.total_mem().map_err(driver)?,
    })
}

/// Which inputs a graph takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Dense features and pooled embeddings (the `dlrm_dense` serving split).
    Pooled = 0,
    /// Dense features and bags of ids into the engine's tables (the `dlrm` model).
    Bags = 1,
    /// Dense features and bags of slots into an external [`DeviceRowTable`] (the GPU embedding
    /// cache's), so pooled rows never cross PCIe.
    Slots = 2,
}

/// One fully connected layer on the device, with its output buffer and a plan per bucket.
struct Layer {
    weight: Device<f32>,
    _bias: Device<f32>,
    output: Device<f32>,
    plans: Vec<MatmulPlan>,
}

/// The DLRM forward pass on one GPU: NVRTC-compiled kernels, cuBLASLt layers with fused bias
/// and ReLU, a CUDA graph per batch bucket, pinned host buffers.
pub struct DlrmEngine {
    shape: Shape,
    pooling: Pooling,
    batch_size_max: usize,
    ids_per_batch_max: usize,
    device: DeviceInfo,
    // Field order is drop order: graphs first (they reference everything below), the context
    // last.
    graphs: [Vec<Option<CudaGraph>>; 3],
    /// The external table (device address, rows) the `Slots` graphs were captured with; the
    /// graphs are dropped and recaptured when a call passes another table.
    slot_table: Option<(u64, u64)>,
    bottom: Vec<Layer>,
    top: Vec<Layer>,
    blas: BlasLt,
    kernels: Kernels,
    tables: Option<(Device<f32>, u64)>,
    table_layout: Option<TableLayout>,
    dense: Device<f32>,
    pooled: Device<f32>,
    offsets: Device<u32>,
    rows: Device<u32>,
    top_input: Device<f32>,
    dense_host: Pinned<f32>,
    pooled_host: Pinned<f32>,
    offsets_host: Pinned<u32>,
    rows_host: Pinned<u32>,
    scores_host: Pinned<f32>,
    stream: Arc<CudaStream>,
    context: Arc<CudaContext>,
}

// SAFETY: the raw pointers inside are addresses of allocations the engine owns. CUDA contexts,
// streams, modules, graphs and cuBLASLt handles may be used from any thread as long as uses
// do not overlap, which `&mut self` on every method that touches them guarantees; each method
// makes the context current on the calling thread first.
unsafe impl Send for DlrmEngine {}

impl DlrmEngine {
    /// Loads `model` onto the device: checks for the driver, NVRTC and cuBLASLt, compiles the
    /// kernels for the device's architecture, copies the weights (and tables), allocates the
    /// buffers for `options.batch_size_max` and plans every layer for every bucket.
    ///
    /// # Errors
    /// [`CudaErrorKind::NoDriver`] ("no CUDA driver: libcuda.so.1 not found"),
    /// [`CudaErrorKind::NoDevice`], [`CudaErrorKind::LibraryMissing`] (NVRTC or cuBLASLt, with
    /// the fix), [`CudaErrorKind::InvalidModel`] for options or shapes the kernels cannot run,
    /// [`CudaErrorKind::Compile`], [`CudaErrorKind::Driver`], [`CudaErrorKind::Blas`], or
    /// [`CudaErrorKind::Panicked`] if a binding panicked anyway.
    pub fn new(model: &DlrmModel, options: &EngineOptions) -> Result<Self, CudaError> {
        library::guard(|| {
            library::require_driver()?;
            library::require_nvrtc(options.nvrtc_library.as_deref())?;
            library::require_cublaslt(options.cublaslt_library.as_deref())?;
            Self::build(model, options)
        })
    }

    fn build(model: &DlrmModel, options: &EngineOptions) -> Result<Self, CudaError> {
        let shape = Shape {
            dense_width: model.dense_feature_count(),
            feature_count: model.sparse_feature_count(),
            dim: model.embedding_dim(),
            interaction_width: model.interaction_width(),
        };
        check_kernel_limits(&shape)?;
        let batch_size_max = bucket_size(options.batch_size_max)?;
        let bag_count_max = batch_size_max * shape.feature_count;
        let ids_per_batch_max = options
            .ids_per_batch_max
            .unwrap_or(bag_count_max * IDS_PER_BAG_DEFAULT)
            .max(1);
        if ids_per_batch_max > u32::MAX as usize {
            return Err(CudaError::invalid_model(format!(
                "ids_per_batch_max {ids_per_batch_max} exceeds u32 offsets"
            )));
        }

        let context = open_context(options.device_ordinal)?;
        // SAFETY: the engine uses one stream for everything, so cudarc's cross-stream event
        // tracking has nothing to order; turning it off keeps graph capture free of event calls.
        unsafe { context.disable_event_tracking() };
        let device = device_info(&context)?;
        let stream = context
            .new_stream()
            .map_err(|error| CudaError::driver("creating a stream", error))?;
        let kernels = Kernels::load(&context, device.compute_capability)?;
        let blas = BlasLt::new(stream.clone(), device.compute_capability.0)?;
        let bucket_count = batch_size_max.trailing_zeros() as usize + 1;
        let bottom = upload_layers(&stream, &blas, model.bottom(), batch_size_max, bucket_count)?;
        let top = upload_layers(&stream, &blas, model.top(), batch_size_max, bucket_count)?;
        let tables = match model.tables() {
            Some(tables) => Some((
                Device::from_host(&stream, tables.rows())?,
                tables.total_row_count() as u64,
            )),
            None => None,
        };
        let engine = Self {
            shape,
            pooling: options.pooling,
            batch_size_max,
            ids_per_batch_max,
            device,
            graphs: [
                (0..bucket_count).map(|_| None).collect(),
                (0..bucket_count).map(|_| None).collect(),
                (0..bucket_count).map(|_| None).collect(),
            ],
            slot_table: None,
            bottom,
            top,
            blas,
            kernels,
            tables,
            table_layout: model.tables().map(|tables| tables.layout().clone()),
            dense: Device::zeros(&stream, batch_size_max * shape.dense_width)?,
            pooled: Device::zeros(&stream, bag_count_max * shape.dim)?,
            offsets: Device::zeros(&stream, bag_count_max + 1)?,
            rows: Device::zeros(&stream, ids_per_batch_max)?,
            top_input: Device::zeros(&stream, batch_size_max * shape.interaction_width)?,
            dense_host: Pinned::new(&context, batch_size_max * shape.dense_width, true)?,
            pooled_host: Pinned::new(&context, bag_count_max * shape.dim, true)?,
            offsets_host: Pinned::new(&context, bag_count_max + 1, true)?,
            rows_host: Pinned::new(&context, ids_per_batch_max, true)?,
            scores_host: Pinned::new(&context, batch_size_max, false)?,
            stream,
            context,
        };
        engine
            .stream
            .synchronize()
            .map_err(|error| CudaError::driver("uploading the model", error))?;
        Ok(engine)
    }

    /// The device the engine runs on.
    pub fn device(&self) -> &DeviceInfo {
        &self.device
    }

    /// The largest batch one launch scores (a power of two); larger requests are split.
    pub fn batch_size_max(&self) -> usize {
        self.batch_size_max
    }

    /// The padded batch sizes that have a graph each: 1, 2, 4, ... up to the largest batch.
    pub fn bucket_sizes(&self) -> Vec<usize> {
        (0..self.graphs[0].len())
            .map(|bucket| 1 << bucket)
            .collect()
    }

    /// Captures the graph of every bucket (for ids too when the model has tables), so that no
    /// request pays for a capture.
    ///
    /// # Errors
    /// [`CudaErrorKind::Driver`] or [`CudaErrorKind::Blas`] when a capture fails.
    pub fn warm_up(&mut self) -> Result<(), CudaError> {
        library::guard(|| {
            self.bind()?;
            let modes: &[Mode] = if self.tables.is_some() {
                &[Mode::Pooled, Mode::Bags]
            } else {
                &[Mode::Pooled]
            };
            for &mode in modes {
                for bucket in 0..self.graphs[mode as usize].len() {
                    self.ensure_graph(mode, bucket)?;
                }
            }
            Ok(())
        })
    }

    /// Scores samples from dense features (`[n, D]`) and pooled embeddings (`[n, F, d]`), one
    /// score per sample into `scores` (`[n]`).
    ///
    /// # Errors
    /// [`CudaErrorKind::InvalidInput`] when the lengths do not match the model or each other;
    /// [`CudaErrorKind::Driver`] or [`CudaErrorKind::Blas`] when the GPU work fails.
    pub fn score_pooled(
        &mut self,
        dense: &[f32],
        pooled: &[f32],
        scores: &mut [f32],
    ) -> Result<(), CudaError> {
        library::guard(|| {
            let sample_count = self.check_dense(dense, scores)?;
            let per_sample = self.shape.feature_count * self.shape.dim;
            if pooled.len() != sample_count * per_sample {
                return Err(CudaError::invalid_input(format!(
                    "pooled has {} floats, expected {sample_count} samples x {} features x {}",
                    pooled.len(),
                    self.shape.feature_count,
                    self.shape.dim
                )));
            }
            self.bind()?;
            let dense_width = self.shape.dense_width;
            for start in (0..sample_count).step_by(self.batch_size_max) {
                let end = (start + self.batch_size_max).min(sample_count);
                self.run_pooled(
                    &dense[start * dense_width..end * dense_width],
                    &pooled[start * per_sample..end * per_sample],
                    &mut scores[start..end],
                )?;
            }
            Ok(())
        })
    }

    /// Scores samples from dense features (`[n, D]`) and bags of ids into the model's tables,
    /// pooled as [`EngineOptions::pooling`] says; one score per sample into `scores`.
    ///
    /// # Errors
    /// [`CudaErrorKind::InvalidInput`] when the model has no tables, the lengths or offsets do
    /// not match, an id is outside its table, or one batch of `batch_size_max` samples holds
    /// more ids than `ids_per_batch_max`; [`CudaErrorKind::Driver`] or [`CudaErrorKind::Blas`]
    /// when the GPU work fails.
    pub fn score_bags(
        &mut self,
        dense: &[f32],
        bags: &SparseBags<'_>,
        scores: &mut [f32],
    ) -> Result<(), CudaError> {
        library::guard(|| {
            let sample_count = self.check_dense(dense, scores)?;
            let layout = self.table_layout.as_ref().ok_or_else(|| {
                CudaError::invalid_input(
                    "this engine's model has no embedding tables: give pooled embeddings instead",
                )
            })?;
            let rows = layout.global_rows(sample_count, bags)?;
            self.bind()?;
            self.run_ids_batched(Mode::Bags, dense, bags.offsets, &rows, scores)
        })
    }

    /// Scores samples from dense features (`[n, D]`) and bags of slots into `table` (the GPU
    /// embedding cache's rows), pooled as [`EngineOptions::pooling`] says: the embedding bag runs
    /// on the device over the table, so only slots, offsets and dense features go in and only
    /// scores come back. `bags.offsets` has `n * F + 1` entries from 0; `bags.ids` are slots.
    ///
    /// The borrow of `table` lasts the whole call and every launch is synchronised before it
    /// returns, so the table's rows outlive every use of its device address.
    ///
    /// # Errors
    /// [`CudaErrorKind::InvalidInput`] when the table's row width is not the model's, it lives
    /// in another context (another device), the lengths or offsets do not match, a slot is past
    /// the table, or one batch holds more ids than `ids_per_batch_max`;
    /// [`CudaErrorKind::Driver`] or [`CudaErrorKind::Blas`] when the GPU work fails.
    pub fn score_slots(
        &mut self,
        table: &DeviceRowTable,
        dense: &[f32],
        bags: &SparseBags<'_>,
        scores: &mut [f32],
    ) -> Result<(), CudaError> {
        library::guard(|| {
            let sample_count = self.check_dense(dense, scores)?;
            let (address, row_count, dim, context) = table.device_rows();
            if dim != self.shape.dim {
                return Err(CudaError::invalid_input(format!(
                    "the row table holds rows of {dim} floats, the model pools {}",
                    self.shape.dim
                )));
            }
            // Primary contexts of one device are one context, so the table's addresses are valid
            // here exactly when the contexts are the same.
            if context.cu_ctx() != self.context.cu_ctx() {
                return Err(CudaError::invalid_input(
                    "the row table lives in another CUDA context than the engine",
                ));
            }
            bags.validate(sample_count, self.shape.feature_count)?;
            if let Some(slot) = bags.ids.iter().find(|&&slot| slot as u64 >= row_count) {
                return Err(CudaError::invalid_input(format!(
                    "slot {slot} is past the table's {row_count} rows"
                )));
            }
            self.bind()?;
            // SAFETY (of the `Slots` graphs' table address): `table` is borrowed for this whole
            // call and `launch` synchronises the stream before returning, so the rows outlive
            // every launch that reads them; `write_rows` needs `&mut` and synchronises its own
            // stream, so no write is in flight; graphs captured with another table are dropped
            // here, before any launch (a new table at a freed table's address with the same row
            // count is a valid target for them).
            if self.slot_table != Some((address, row_count)) {
                // The captured graphs hold the old table's address: drop them before anything
                // can launch them against this table.
                self.graphs[Mode::Slots as usize]
                    .iter_mut()
                    .for_each(|graph| *graph = None);
                self.slot_table = Some((address, row_count));
            }
            self.run_ids_batched(Mode::Slots, dense, bags.offsets, bags.ids, scores)
        })
    }

    /// Runs validated bags (`offsets` over `ids`, `F` bags a sample) in batches of at most
    /// `batch_size_max` samples.
    fn run_ids_batched(
        &mut self,
        mode: Mode,
        dense: &[f32],
        offsets: &[u32],
        ids: &[u32],
        scores: &mut [f32],
    ) -> Result<(), CudaError> {
        let (dense_width, features) = (self.shape.dense_width, self.shape.feature_count);
        let sample_count = scores.len();
        for start in (0..sample_count).step_by(self.batch_size_max) {
            let end = (start + self.batch_size_max).min(sample_count);
            let chunk = &offsets[start * features..=end * features];
            let first = chunk[0] as usize;
            let last = chunk[chunk.len() - 1] as usize;
            self.run_ids(
                mode,
                &dense[start * dense_width..end * dense_width],
                chunk,
                &ids[first..last],
                &mut scores[start..end],
            )?;
        }
        Ok(())
    }

    fn check_dense(&self, dense: &[f32], scores: &[f32]) -> Result<usize, CudaError> {
        let width = self.shape.dense_width;
        if dense.len() % width != 0 || dense.len() / width != scores.len() {
            return Err(CudaError::invalid_input(format!(
                "dense has {} floats and scores room for {}, expected {width} floats per score",
                dense.len(),
                scores.len()
            )));
        }
        Ok(scores.len())
    }

    fn bind(&self) -> Result<(), CudaError> {
        self.context
            .bind_to_thread()
            .map_err(|error| CudaError::driver("making the context current", error))
    }

    fn run_pooled(
        &mut self,
        dense: &[f32],
        pooled: &[f32],
        scores: &mut [f32],
    ) -> Result<(), CudaError> {
        let bucket = bucket_index(scores.len());
        let padded = 1usize << bucket;
        fill_padded(
            self.dense_host.as_mut_slice(),
            dense,
            padded * self.shape.dense_width,
            0.0,
        );
        let pooled_len = padded * self.shape.feature_count * self.shape.dim;
        fill_padded(self.pooled_host.as_mut_slice(), pooled, pooled_len, 0.0);
        self.launch(Mode::Pooled, bucket, scores)
    }

    /// One chunk of ids (`Mode::Bags`) or slots (`Mode::Slots`).
    fn run_ids(
        &mut self,
        mode: Mode,
        dense: &[f32],
        offsets: &[u32],
        rows: &[u32],
        scores: &mut [f32],
    ) -> Result<(), CudaError> {
        if rows.len() > self.ids_per_batch_max {
            return Err(CudaError::invalid_input(format!(
                "{} ids in a batch of {} samples, more than the engine's ids_per_batch_max {}",
                rows.len(),
                scores.len(),
                self.ids_per_batch_max
            )));
        }
        let bucket = bucket_index(scores.len());
        let padded = 1usize << bucket;
        // Capture first (if this bucket has no graph yet), so the ids copy below is never
        // pending on the stream while a capture begins.
        self.ensure_graph(mode, bucket)?;
        fill_padded(
            self.dense_host.as_mut_slice(),
            dense,
            padded * self.shape.dense_width,
            0.0,
        );
        let padded_offsets = padded * self.shape.feature_count + 1;
        rebase_offsets(
            offsets,
            &mut self.offsets_host.as_mut_slice()[..padded_offsets],
        );
        self.rows_host.as_mut_slice()[..rows.len()].copy_from_slice(rows);
        if !rows.is_empty() {
            // The ids vary in count, so they are copied outside the graph, ahead of it on the
            // same stream.
            // SAFETY: both buffers hold at least rows.len() u32 (checked above); the pinned
            // source is not touched by the host until the stream is synchronised in launch.
            unsafe {
                result::memcpy_htod_async(
                    self.rows.pointer,
                    &self.rows_host.as_slice()[..rows.len()],
                    self.stream.cu_stream(),
                )
            }
            .map_err(|error| CudaError::driver("copying ids to the device", error))?;
        }
        self.launch(mode, bucket, scores)
    }

    fn launch(&mut self, mode: Mode, bucket: usize, scores: &mut [f32]) -> Result<(), CudaError> {
        self.ensure_graph(mode, bucket)?;
        let graph = self.graphs[mode as usize][bucket]
            .as_ref()
            .ok_or_else(|| CudaError::new(CudaErrorKind::Driver, "graph missing after capture"))?;
        graph
            .launch()
            .map_err(|error| CudaError::driver("launching the graph", error))?;
        self.stream
            .synchronize()
            .map_err(|error| CudaError::driver("running the graph", error))?;
        scores.copy_from_slice(&self.scores_host.as_slice()[..scores.len()]);
        Ok(())
    }

    fn ensure_graph(&mut self, mode: Mode, bucket: usize) -> Result<(), CudaError> {
        if self.graphs[mode as usize][bucket].is_some() {
            return Ok(());
        }
        self.stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|error| CudaError::driver("beginning graph capture", error))?;
        let enqueued = self.enqueue(mode, bucket);
        // End the capture even when enqueueing failed, so the stream is usable again.
        let captured = self
            .stream
            .end_capture(sys::CUgraphInstantiate_flags(0))
            .map_err(|error| CudaError::driver("ending graph capture", error));
        enqueued?;
        let graph = captured?.ok_or_else(|| {
            CudaError::new(CudaErrorKind::Driver, "graph capture recorded nothing")
        })?;
        graph
            .upload()
            .map_err(|error| CudaError::driver("uploading the graph", error))?;
        self.graphs[mode as usize][bucket] = Some(graph);
        Ok(())
    }

    /// Enqueues one forward pass for `1 << bucket` samples (what the graph records).
    fn enqueue(&self, mode: Mode, bucket: usize) -> Result<(), CudaError> {
        let padded = 1usize << bucket;
        let shape = self.shape;
        let stream = self.stream.cu_stream();
        let copy_in = |error| CudaError::driver("copying inputs to the device", error);
        // SAFETY (all copies and launches below): every device and pinned buffer was sized for
        // batch_size_max >= padded samples in build, and they live as long as the graph (the
        // engine drops its graphs first).
        unsafe {
            result::memcpy_htod_async(
                self.dense.pointer,
                &self.dense_host.as_slice()[..padded * shape.dense_width],
                stream,
            )
            .map_err(copy_in)?;
            match mode {
                Mode::Pooled => result::memcpy_htod_async(
                    self.pooled.pointer,
                    &self.pooled_host.as_slice()[..padded * shape.feature_count * shape.dim],
                    stream,
                )
                .map_err(copy_in)?,
                Mode::Bags | Mode::Slots => {
                    let bag_count = padded * shape.feature_count;
                    result::memcpy_htod_async(
                        self.offsets.pointer,
                        &self.offsets_host.as_slice()[..bag_count + 1],
                        stream,
                    )
                    .map_err(copy_in)?;
                    let table = match mode {
                        Mode::Slots => self.slot_table,
                        _ => self
                            .tables
                            .as_ref()
                            .map(|(table, rows)| (table.pointer, *rows)),
                    };
                    let (table, table_row_count) = table.ok_or_else(|| {
                        CudaError::invalid_input("no embedding table to run the bags over")
                    })?;
                    let bag = EmbeddingBagLaunch {
                        table,
                        table_row_count,
                        rows: self.rows.pointer,
                        offsets: self.offsets.pointer,
                        bag_count,
                        dim: shape.dim,
                        mean: self.pooling == Pooling::Mean,
                        out: self.pooled.pointer,
                    };
                    self.kernels.embedding_bag(stream, &bag)?;
                }
            }
            let mut input = self.dense.pointer;
            for layer in &self.bottom {
                self.blas.run(
                    &layer.plans[bucket],
                    layer.weight.pointer,
                    input,
                    layer.output.pointer,
                )?;
                input = layer.output.pointer;
            }
            self.kernels.interaction(
                stream,
                &shape,
                padded,
                input,
                self.pooled.pointer,
                self.top_input.pointer,
            )?;
            let mut input = self.top_input.pointer;
            for layer in &self.top {
                self.blas.run(
                    &layer.plans[bucket],
                    layer.weight.pointer,
                    input,
                    layer.output.pointer,
                )?;
                input = layer.output.pointer;
            }
            self.kernels.sigmoid(stream, input, padded)?;
            result::memcpy_dtoh_async(
                &mut std::slice::from_raw_parts_mut(self.scores_host.pointer, padded)[..],
                input,
                stream,
            )
            .map_err(|error| CudaError::driver("copying scores to the host", error))?;
        }
        Ok(())
    }
}

/// `batch_size_max` rounded up to a power of two, checked against the limit.
fn bucket_size(batch_size_max: usize) -> Result<usize, CudaError> {
    if batch_size_max == 0 || batch_size_max > BATCH_SIZE_MAX_LIMIT {
        return Err(CudaError::invalid_model(format!(
            "batch_size_max is {batch_size_max}, expected 1..={BATCH_SIZE_MAX_LIMIT}"
        )));
    }
    Ok(batch_size_max.next_power_of_two())
}

/// The bucket of a batch of `sample_count` (1..=batch_size_max) samples: log2 of its padded size.
fn bucket_index(sample_count: usize) -> usize {
    debug_assert!(sample_count > 0);
    sample_count.next_power_of_two().trailing_zeros() as usize
}

/// Writes one chunk's bag offsets into `padded` (the bucket's `padded_samples * F + 1` slots):
/// shifted to start at 0, since the chunk's ids are copied from the start of the ids buffer,
/// and extended with empty bags (the last offset repeated) for the padding samples.
fn rebase_offsets(offsets: &[u32], padded: &mut [u32]) {
    let base = offsets[0];
    for (slot, &offset) in padded.iter_mut().zip(offsets) {
        *slot = offset - base;
    }
    let end = offsets[offsets.len() - 1] - base;
    padded[offsets.len()..].fill(end);
}

/// Copies `values` to the front of `buffer` and fills the rest of `buffer[..padded_len]`.
fn fill_padded<T: Copy>(buffer: &mut [T], values: &[T], padded_len: usize, fill: T) {
    buffer[..values.len()].copy_from_slice(values);
    buffer[values.len()..padded_len].fill(fill);
}

fn upload_layers(
    stream: &Arc<CudaStream>,
    blas: &BlasLt,
    layers: &[crate::dlrm::DenseLayer],
    batch_size_max: usize,
    bucket_count: usize,
) -> Result<Vec<Layer>, CudaError> {
    layers
        .iter()
        .map(|layer| {
            let bias = Device::from_host(stream, layer.bias())?;
            let plans = (0..bucket_count)
                .map(|bucket| {
                    blas.plan(
                        1 << bucket,
                        layer.in_features(),
                        layer.out_features(),
                        bias.pointer,
                        layer.relu(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Layer {
                weight: Device::from_host(stream, layer.weight())?,
                _bias: bias,
                output: Device::zeros(stream, batch_size_max * layer.out_features())?,
                plans,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        let cases = [
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (1000, 10),
            (1024, 10),
        ];
        for (sample_count, bucket) in cases {
            assert_eq!(bucket_index(sample_count), bucket, "{sample_count} samples");
        }
        assert_eq!(bucket_size(1000), Ok(1024));
        assert_eq!(bucket_size(1), Ok(1));
        assert_eq!(
            bucket_size(0).unwrap_err().kind(),
            CudaErrorKind::InvalidModel
        );
        assert_eq!(
            bucket_size(BATCH_SIZE_MAX_LIMIT + 1).unwrap_err().kind(),
            CudaErrorKind::InvalidModel
        );
    }

    #[test]
    fn offsets_rebase_and_pad_with_empty_bags() {
        // A chunk whose bags start at id 7: bags of 2, 0 and 3 ids, padded to 5 bags.
        let mut padded = [99u32; 6];
        rebase_offsets(&[7, 9, 9, 12], &mut padded);
        assert_eq!(padded, [0, 2, 2, 5, 5, 5]);
        let mut exact = [99u32; 3];
        rebase_offsets(&[0, 1, 4], &mut exact);
        assert_eq!(exact, [0, 1, 4]);
    }

    #[test]
    fn padding_fills_the_tail() {
        let mut buffer = [9.0f32; 6];
        fill_padded(&mut buffer, &[1.0, 2.0], 4, 0.0);
        assert_eq!(buffer, [1.0, 2.0, 0.0, 0.0, 9.0, 9.0]);
    }
}
