//! Inference on one shard: the models it serves (one backend each, reached through ember-kernels' `Backend`
//! trait: an ONNX Runtime session with one intra-op thread, the core being the unit, or the native CUDA engine
//! with its own stream; see [`backends`]) and the dynamic batcher. RedisAI tensors are keys of the keyspace ([`tensors`]).
//!
//! Batching follows Triton: requests from every connection of the shard join one queue per model; a batch
//! leaves when its rows reach max-batch or its oldest request has waited max-delay-us; replies are split back to
//! each request. The batch runs in the shard's low-share task queue, in slices of `slice_rows` rows with a yield
//! between slices, so a cache command waits at most one slice's compute time behind a large batch.

pub mod backends;
pub mod batch_queue;
pub mod device_rows;
pub mod gpu_cache;
pub mod input_buffers;
pub mod signal;
pub mod tensors;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ember_kernels::{Backend, OrtRuntime, Tensor};

use self::backends::{BackendChoice, BackendKind, BuildContext};
use self::batch_queue::{BatchPolicy, BatchQueue};
use self::input_buffers::InputBuffers;
use self::signal::{reply_channel, Notify, ReplySender};
use self::tensors::TensorRead;
use crate::shard::HoldToken;

/// Rows per slice by default on the CPU: the default max-batch, so a batch of that size runs in one call. ONNX
/// Runtime's cost per row falls with the rows per call up to about 256 (the demo model on one core, thread CPU
/// time per row: 9.0 and 8.7 us in 64-row calls, 8.3 and 8.5 us in 256-row calls), and 64-row slices cost
/// RECOMMEND about 4% of its throughput at batch 256. The price is latency: a cache command queued behind a
/// batch waits up to one slice, about 2 ms of the demo model instead of 0.5 ms (`--inference-slice-rows 64`
/// buys it back).
pub const SLICE_ROWS_DEFAULT: usize = 256;
/// Rows per slice by default on a GPU backend. The shard waits for the device either way, and a launch costs
/// about the same for 64 rows as for 1024, so small slices only multiply launches: measured on an H200 with the
/// demo model (bench/RESULTS.md, "GPU inference"), the native engine gives 609k samples/s in 64-row launches,
/// 1.17M in 1024-row ones (0.87 ms each, about the CPU slice's millisecond) and 1.02M in 4096-row ones.
pub const SLICE_ROWS_GPU_DEFAULT: usize = 1024;
/// Default max-batch for models loaded without one: the batch size the goal is stated at.
pub const BATCH_ROWS_MAX_DEFAULT: usize = 256;
/// Default max-delay-us: Triton's examples use 100 us to a few ms; 500 us keeps p99 well under the 2 ms a
/// recommendation call usually budgets for ranking.
pub const DELAY_MAX_US_DEFAULT: u64 = 500;
/// Default max-delay-us on a GPU backend: a launch costs about the same for 64 rows as for 1024, so a GPU is
/// worth feeding bigger batches; 2 ms stays inside a ranking call's budget and far below MLPerf's 60 ms DLRM bound.
pub const DELAY_MAX_US_GPU_DEFAULT: u64 = 2000;
/// Default `--gpu-cache-rows`: one million rows per shard, 256 MiB of 64-float rows, which holds the demo
/// tables (26 fields x 1000 ids) many times over and a production table's hot rows; a shard's table is further
/// capped at [`device_rows::DEVICE_MEMORY_SHARE_DIVISOR`]'s share of the GPU, so the default fits any GPU.
pub const GPU_CACHE_ROWS_DEFAULT: usize = 1 << 20;
/// Default `--gpu-slot-rows`: a RECOMMEND of at least this many candidates on the native backend, with the GPU
/// cache on, is scored from the cache's slots at once instead of joining the batcher (see
/// `commands::recommend::slots`). Measured on an H200 with the demo model (bench/RESULTS.md, "GPU inference"), the
/// engine alone scores 953k samples/s in 256-row launches, 78% of its 1.22M in 1024-row ones, so a request this
/// large loses little by running alone and saves the batcher's wait (max-delay-us 2000 on a GPU) and the pooled
/// rows' trips through host memory; smaller ones (602k samples/s at 64 rows) gain more from being merged.
pub const GPU_SLOT_ROWS_DEFAULT: usize = 256;

/// A model to load at start (`--model name=path[,max-batch=N][,max-delay-us=US][,backend=B][,device=N]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The model's key.
    pub name: String,
    /// The ONNX file.
    pub path: PathBuf,
    /// max-batch, when given.
    pub batch_rows_max: Option<usize>,
    /// max-delay-us, when given.
    pub delay_max_us: Option<u64>,
    /// backend, when given (else `--backend`).
    pub backend: Option<BackendKind>,
    /// device: the GPU ordinal for a GPU backend.
    pub device_id: u32,
}

impl ModelSpec {
    /// Parses `name=path[,max-batch=N][,max-delay-us=US][,backend=B][,device=N]`.
    ///
    /// # Errors
    /// A message naming the part that is wrong.
    pub fn parse(text: &str) -> Result<ModelSpec, String> {
        let (name, rest) = text
            .split_once('=')
            .ok_or_else(|| format!("--model {text}: expected name=path"))?;
        let mut parts = rest.split(',');
        let path = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("--model {text}: missing path"))?;
        let mut spec = ModelSpec {
            name: name.to_string(),
            path: PathBuf::from(path),
            batch_rows_max: None,
            delay_max_us: None,
            backend: None,
            device_id: 0,
        };
        for part in parts {
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("--model {text}: '{v}' is not a number"))
            };
            match part.split_once('=') {
                Some(("max-batch", v)) => spec.batch_rows_max = Some(number(v)? as usize),
                Some(("max-delay-us", v)) => spec.delay_max_us = Some(number(v)?),
                Some(("backend", v)) => {
                    spec.backend =
                        Some(BackendKind::parse(v).map_err(|e| format!("--model {text}: {e}"))?)
                }
                Some(("device", v)) => {
                    spec.device_id = u32::try_from(number(v)?)
                        .map_err(|_| format!("--model {text}: device '{v}' is out of range"))?
                }
                _ => {
                    return Err(format!(
                        "--model {text}: unknown option '{part}' (max-batch=N, max-delay-us=US, backend=B, device=N)"
                    ))
                }
            }
        }
        if name.is_empty() {
            return Err(format!("--model {text}: empty name"));
        }
        Ok(spec)
    }
}

/// Inference settings, read-only and shared by every shard.
#[derive(Clone, Debug, PartialEq)]
pub struct InferenceConfig {
    /// `--ort-lib`: the ONNX Runtime library; `None` reads ORT_DYLIB_PATH.
    pub ort_lib: Option<PathBuf>,
    /// `--max-batch`: max-batch for models that do not set one.
    pub batch_rows_max: usize,
    /// `--max-delay-us`: max-delay-us for models that do not set one (None: by backend,
    /// [`DELAY_MAX_US_DEFAULT`] on the CPU and [`DELAY_MAX_US_GPU_DEFAULT`] on a GPU).
    pub delay_max_us: Option<u64>,
    /// `--inference-slice-rows`: rows per slice of a running batch (None: by backend, [`SLICE_ROWS_DEFAULT`] on
    /// the CPU and [`SLICE_ROWS_GPU_DEFAULT`] on a GPU).
    pub slice_rows: Option<usize>,
    /// `--model`: models loaded at start.
    pub models: Vec<ModelSpec>,
    /// `--demo-embeddings DIR`: load `DIR/dlrm_embeddings.npy` and `DIR/dlrm_user_dense.npy` at start.
    pub demo_embeddings: Option<PathBuf>,
    /// `--embedding-default zero`: RECOMMEND uses a zero row for a missing embedding instead of failing.
    pub embedding_default_zero: bool,
    /// `--backend`: the backend of `--model` models that do not name one.
    pub backend: BackendKind,
    /// What AI.MODELSTORE's `GPU` device means: `--backend` when it names a GPU backend, `--ort-gpu-provider`
    /// (cuda or tensorrt), else `ort-cuda`.
    pub gpu_backend: BackendKind,
    /// `--tensorrt-cache DIR`: TensorRT's engine cache.
    pub tensorrt_cache: PathBuf,
    /// `--gpu-cache-rows N`: embedding rows each shard keeps on the GPU for RECOMMEND on the native backend
    /// (0: off, RECOMMEND copies every row from the keyspace as on the CPU).
    pub gpu_cache_rows: usize,
    /// `--gpu-slot-rows N`: a RECOMMEND of at least N candidates on the native backend with the GPU cache on is
    /// scored from the cache's slots, bypassing the batcher (0: never; every RECOMMEND takes the pooled path).
    pub gpu_slot_rows_min: usize,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            ort_lib: None,
            batch_rows_max: BATCH_ROWS_MAX_DEFAULT,
            delay_max_us: None,
            slice_rows: None,
            models: Vec::new(),
            demo_embeddings: None,
            embedding_default_zero: false,
            backend: BackendKind::OrtCpu,
            gpu_backend: BackendKind::OrtCuda,
            tensorrt_cache: PathBuf::from(".deps/tensorrt-cache"),
            gpu_cache_rows: GPU_CACHE_ROWS_DEFAULT,
            gpu_slot_rows_min: GPU_SLOT_ROWS_DEFAULT,
        }
    }
}

/// The inference flags, for `ember --help`.
pub const USAGE: &str = "
Inference (README, \"Recommendations\"; backends ort-cpu, ort-cuda, ort-tensorrt, native):
  --ort-lib PATH           libonnxruntime.so (default: $ORT_DYLIB_PATH; `make setup` installs
                           .deps/onnxruntime/libonnxruntime.so)
  --model NAME=PATH[,max-batch=N][,max-delay-us=US][,backend=B][,device=N]
                           load an ONNX model at start (repeatable)
  --backend ort-cpu        backend of --model models; a GPU backend (ort-cuda, ort-tensorrt,
                           native) is also what AI.MODELSTORE ... GPU[:n] runs on
  --max-batch 256          rows at which a batch leaves at once (AI.MODELSTORE BATCHSIZE overrides)
  --max-delay-us N         longest the oldest request waits for a batch to fill
                           (default 500 on the CPU, 2000 on a GPU)
  --inference-slice-rows N  rows run between two yields to cache commands
                           (default 256 on the CPU, 1024 on a GPU)
  --demo-embeddings DIR    load DIR/dlrm_embeddings.npy and DIR/dlrm_user_dense.npy as keys
  --embedding-default zero   RECOMMEND reads a missing embedding row as zeros instead of failing
  --ort-gpu-provider cuda  AI.MODELSTORE ... GPU uses ONNX Runtime's cuda (or tensorrt) provider
  --tensorrt-cache DIR     TensorRT engine cache (default .deps/tensorrt-cache)
  --gpu-cache-rows 1048576 embedding rows each shard keeps in GPU memory for RECOMMEND on the
                           native backend (capped at an eighth of the GPU over the shards; 0: off)
  --gpu-slot-rows 256      RECOMMEND of at least this many candidates on the native backend with
                           the GPU cache on is scored from the cache at once, rows staying on the
                           GPU, instead of joining the batcher (0: never)";

impl InferenceConfig {
    /// Takes the inference flags out of the command line and returns the rest for the Redis-named options.
    ///
    /// # Errors
    /// A message naming a flag with a missing or bad value.
    pub fn extract(args: &[String]) -> Result<(InferenceConfig, Vec<String>), String> {
        let mut config = InferenceConfig::default();
        let mut rest = Vec::with_capacity(args.len());
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let flag = arg.as_str();
            let known = [
                "--ort-lib",
                "--model",
                "--max-batch",
                "--max-delay-us",
                "--inference-slice-rows",
                "--demo-embeddings",
                "--embedding-default",
                "--ort-gpu-provider",
                "--tensorrt-cache",
                "--backend",
                "--gpu-cache-rows",
                "--gpu-slot-rows",
            ];
            if !known.contains(&flag) {
                rest.push(arg.clone());
                continue;
            }
            let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: '{value}' is not a number"))
            };
            match flag {
                "--ort-lib" => config.ort_lib = Some(PathBuf::from(value)),
                "--model" => config.models.push(ModelSpec::parse(value)?),
                "--max-batch" => config.batch_rows_max = number()? as usize,
                "--max-delay-us" => config.delay_max_us = Some(number()?),
                "--inference-slice-rows" => config.slice_rows = Some((number()? as usize).max(1)),
                "--demo-embeddings" => config.demo_embeddings = Some(PathBuf::from(value)),
                "--embedding-default" => match value.as_str() {
                    "zero" => config.embedding_default_zero = true,
                    "none" => config.embedding_default_zero = false,
                    _ => {
                        return Err(format!(
                            "--embedding-default: '{value}' (expected zero or none)"
                        ))
                    }
                },
                "--backend" => {
                    config.backend =
                        BackendKind::parse(value).map_err(|e| format!("--backend: {e}"))?;
                    if config.backend.is_gpu() {
                        config.gpu_backend = config.backend;
                    }
                }
                "--ort-gpu-provider" => match value.as_str() {
                    "cuda" => config.gpu_backend = BackendKind::OrtCuda,
                    "tensorrt" => config.gpu_backend = BackendKind::OrtTensorRt,
                    _ => {
                        return Err(format!(
                            "--ort-gpu-provider: '{value}' (expected cuda or tensorrt)"
                        ))
                    }
                },
                "--tensorrt-cache" => config.tensorrt_cache = PathBuf::from(value),
                "--gpu-cache-rows" => {
                    let rows = number()?;
                    if rows > gpu_cache::CAPACITY_ROWS_MAX as u64 {
                        return Err(format!(
                            "{flag}: {rows} is over the most a cache holds ({})",
                            gpu_cache::CAPACITY_ROWS_MAX
                        ));
                    }
                    config.gpu_cache_rows = rows as usize;
                }
                "--gpu-slot-rows" => {
                    config.gpu_slot_rows_min = usize::try_from(number()?)
                        .map_err(|_| format!("{flag}: '{value}' is out of range"))?
                }
                _ => unreachable!("every known flag has an arm"),
            }
        }
        Ok((config, rest))
    }

    /// The backend for a RedisAI device: `CPU` (None) is `ort-cpu`, `GPU:n` the GPU backend on device n.
    pub fn backend_for_device(&self, gpu: Option<u32>) -> BackendChoice {
        match gpu {
            None => BackendChoice {
                kind: BackendKind::OrtCpu,
                device_id: 0,
            },
            Some(device_id) => BackendChoice {
                kind: self.gpu_backend,
                device_id,
            },
        }
    }

    /// Rows per slice for a model on `kind`.
    pub fn slice_rows_for(&self, kind: BackendKind) -> usize {
        self.slice_rows.unwrap_or(if kind.is_gpu() {
            SLICE_ROWS_GPU_DEFAULT
        } else {
            SLICE_ROWS_DEFAULT
        })
    }

    /// max-delay-us for a model on `kind` that does not set its own.
    pub fn delay_max_us_for(&self, kind: BackendKind) -> u64 {
        self.delay_max_us.unwrap_or(if kind.is_gpu() {
            DELAY_MAX_US_GPU_DEFAULT
        } else {
            DELAY_MAX_US_DEFAULT
        })
    }
}

/// What AI.MODELGET and AI.INFO report about a model.
#[derive(Clone, Debug)]
pub struct ModelMeta {
    /// The backend and device that run it (RECOMMEND gathers through the GPU embedding cache on `native`).
    pub backend: BackendChoice,
    /// The device as stored (`CPU`, `GPU:0`).
    pub device_text: String,
    /// The backend that runs it, as the backend names itself (`onnxruntime-cpu`, `native-cuda:0`).
    pub backend_name: String,
    /// TAG.
    pub tag: Vec<u8>,
    /// BATCHSIZE as stored (max-batch).
    pub batch_size: u64,
    /// MINBATCHSIZE as stored.
    pub min_batch_size: u64,
    /// max-delay-us in force.
    pub delay_max_us: u64,
    /// Input names, model order.
    pub input_names: Vec<String>,
    /// Output names, model order.
    pub output_names: Vec<String>,
    /// The ONNX bytes, for AI.MODELGET BLOB.
    pub blob: Rc<Vec<u8>>,
}

/// Counters for AI.INFO (RedisAI's duration, samples, calls, errors) and Ember's batching figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Microseconds spent running the model.
    pub duration_us: u64,
    /// Rows run.
    pub samples: u64,
    /// Requests served (each AI.MODELEXECUTE or RECOMMEND slice is one).
    pub calls: u64,
    /// Requests that got an error.
    pub errors: u64,
    /// Batches run: fewer than calls when requests were merged.
    pub batches: u64,
    /// Most requests merged into one batch.
    pub batch_requests_max: u64,
    /// Most rows in one batch.
    pub batch_rows_max: u64,
}

/// One queued request.
struct Pending {
    inputs: Vec<Tensor>,
    reply: ReplySender<Result<Vec<Tensor>, String>>,
    deadline: Option<Instant>,
    /// The inputs were built in buffers of the model's pool ([`ShardModel::run_recycling`]): they go back to it.
    recycle: bool,
}

/// A model on one shard.
pub struct ShardModel {
    /// What it reports.
    pub meta: ModelMeta,
    session: RefCell<Box<dyn Backend>>,
    queue: RefCell<BatchQueue<Pending>>,
    stats: Cell<ModelStats>,
    wake: Notify,
    retired: Cell<bool>,
    /// Buffers that RECOMMEND builds its inputs in, given back after each batch.
    input_buffers: InputBuffers,
}

impl ShardModel {
    /// The counters.
    pub fn stats(&self) -> ModelStats {
        self.stats.get()
    }

    /// Zeroes the counters (AI.INFO key RESETSTAT).
    pub fn reset_stats(&self) {
        self.stats.set(ModelStats::default());
    }

    /// The model's inputs as the session declares them.
    pub fn input_specs(&self) -> Vec<ember_kernels::TensorSpec> {
        self.session.borrow().inputs().to_vec()
    }

    /// Queues a request and waits for its result. `TIMEDOUT` comes back as `Err("TIMEDOUT")`, RedisAI's reply.
    ///
    /// # Errors
    /// A RedisAI-style `ERR ...` message for mismatched inputs, a full queue, a deleted model or a failed run.
    pub async fn run(
        &self,
        inputs: Vec<Tensor>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Tensor>, String> {
        self.run_queued(inputs, timeout, false).await
    }

    /// As [`ShardModel::run`] with no timeout, for inputs built in buffers from [`ShardModel::input_buffer`]:
    /// once the batch has run, their float buffers go back to the model's pool.
    ///
    /// # Errors
    /// As [`ShardModel::run`].
    pub async fn run_recycling(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
        self.run_queued(inputs, None, true).await
    }

    /// An empty float buffer with room for `len` floats, from the model's pool when one is free.
    pub fn input_buffer(&self, len: usize) -> Vec<f32> {
        self.input_buffers.take(len)
    }

    async fn run_queued(
        &self,
        inputs: Vec<Tensor>,
        timeout: Option<Duration>,
        recycle: bool,
    ) -> Result<Vec<Tensor>, String> {
        let specs = self.session.borrow().inputs().to_vec();
        if let Err(e) = ember_kernels::check_inputs(&specs, &inputs) {
            self.count_error();
            return Err(format!("ERR {e}"));
        }
        let rows = inputs.first().map_or(0, Tensor::batch_len);
        if rows == 0 {
            self.count_error();
            return Err("ERR inputs have an empty batch dimension".into());
        }
        let now = Instant::now();
        let (reply, receiver) = reply_channel();
        let pending = Pending {
            inputs,
            reply,
            deadline: timeout.map(|t| now + t),
            recycle,
        };
        if self.queue.borrow_mut().push(pending, rows, now).is_err() {
            self.count_error();
            return Err(format!(
                "ERR inference queue full ({} requests waiting)",
                batch_queue::QUEUE_REQUESTS_MAX
            ));
        }
        self.wake.notify();
        // The batch worker runs in another task queue: a spinning shard lets it run now.
        crate::spin::hand_back_soon();
        receiver
            .await
            .unwrap_or_else(|| Err("ERR model was deleted while the request waited".into()))
    }

    /// Scores one RECOMMEND chunk from `bags` of slots into `table` (the shard's GPU embedding cache) on the
    /// native engine, at once and on this thread: the batcher is bypassed, the rows never leave the device, and the
    /// counters count it as one call and one batch. The caller holds no await between writing the table's rows and
    /// this call, so every slot holds the row it was resolved to.
    ///
    /// # Errors
    /// `ERR ...` when the model is not on the native engine or the engine refuses the inputs or fails (the caller
    /// then takes the pooled path); not counted as the model's error, since the request is not failed by it.
    pub fn score_slots(
        &self,
        table: &ember_kernels::cuda::DeviceRowTable,
        dense: &[f32],
        bags: &ember_kernels::dlrm::SparseBags<'_>,
        scores: &mut [f32],
    ) -> Result<(), String> {
        let started = Instant::now();
        {
            let mut session = self.session.borrow_mut();
            let engine = session
                .native_engine()
                .ok_or("ERR the model does not run on the native engine")?;
            engine
                .score_slots(table, dense, bags, scores)
                .map_err(|e| format!("ERR {e}"))?;
        }
        let mut stats = self.stats.get();
        stats.duration_us += started.elapsed().as_micros() as u64;
        stats.batches += 1;
        stats.calls += 1;
        stats.samples += scores.len() as u64;
        stats.batch_requests_max = stats.batch_requests_max.max(1);
        stats.batch_rows_max = stats.batch_rows_max.max(scores.len() as u64);
        self.stats.set(stats);
        Ok(())
    }

    fn count_error(&self) {
        let mut stats = self.stats.get();
        stats.errors += 1;
        self.stats.set(stats);
    }

    /// Stops the worker and fails every waiting request (the model was deleted or replaced).
    fn retire(&self) {
        self.retired.set(true);
        for pending in self.queue.borrow_mut().drain() {
            pending
                .reply
                .send(Err("ERR model was deleted while the request waited".into()));
        }
        self.wake.notify();
    }

    /// Runs `inputs` in slices of `slice_rows`, yielding between slices.
    async fn run_sliced(
        &self,
        inputs: &[Tensor],
        slice_rows: usize,
    ) -> Result<Vec<Tensor>, String> {
        let rows = inputs[0].batch_len();
        let mut outputs: Vec<Vec<Tensor>> = Vec::with_capacity(rows.div_ceil(slice_rows));
        for start in (0..rows).step_by(slice_rows) {
            let slice = start..rows.min(start + slice_rows);
            // The session reads each slice's rows in place; only the outputs are new.
            let result = self
                .session
                .borrow_mut()
                .run_rows(inputs, slice)
                .map_err(|e| format!("ERR {e}"))?;
            outputs.push(result);
            if start + slice_rows < rows {
                crate::runtime::yield_if_needed().await;
            }
        }
        if outputs.len() == 1 {
            return Ok(outputs.pop().expect("one slice"));
        }
        let output_count = outputs[0].len();
        (0..output_count)
            .map(|o| {
                let parts: Vec<&Tensor> = outputs.iter().map(|slice| &slice[o]).collect();
                Tensor::concat_batch(&parts).map_err(|e| format!("ERR {e}"))
            })
            .collect()
    }

    /// Gives a request's inputs back to the pool when they were built in its buffers.
    fn recycle(&self, inputs: Vec<Tensor>, recycle: bool) {
        if recycle {
            self.input_buffers.give_tensors(inputs);
        }
    }

    /// Runs one batch of requests and answers each. A batch that fails is retried request by request, so one
    /// bad request (say an id past its table) gets the error and the others their results.
    async fn serve_batch(&self, batch: Vec<(Pending, usize)>, slice_rows: usize) {
        let now = Instant::now();
        let (mut live, expired): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|(p, _)| p.deadline.is_none_or(|d| d > now));
        for (pending, _) in expired {
            self.count_error();
            pending.reply.send(Err("TIMEDOUT".into()));
        }
        if live.is_empty() {
            return;
        }
        let lens: Vec<usize> = live.iter().map(|(_, rows)| *rows).collect();
        let rows: usize = lens.iter().sum();
        let started = Instant::now();
        let alone = live.len() == 1;
        let merged = if alone {
            // One request: run its tensors as they are; a failure goes to it alone, so nothing is kept for a retry.
            Ok(std::mem::take(&mut live[0].0.inputs))
        } else {
            (0..live[0].0.inputs.len())
                .map(|i| {
                    Tensor::concat_batch(
                        &live.iter().map(|(p, _)| &p.inputs[i]).collect::<Vec<_>>(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("ERR {e}"))
        };
        let outputs = match &merged {
            Ok(inputs) => self.run_sliced(inputs, slice_rows).await,
            Err(e) => Err(e.clone()),
        };
        // A merged batch's inputs are new tensors of the batch's size and are freed; the pool keeps only the
        // buffers that requests were built in.
        if let (true, Ok(inputs)) = (alone && live[0].0.recycle, merged) {
            self.input_buffers.give_tensors(inputs);
        }
        let split = outputs.and_then(|outputs| {
            let per_output: Vec<Vec<Tensor>> = outputs
                .iter()
                .map(|t| t.split_batch(&lens))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ERR {e}"))?;
            Ok((0..live.len())
                .map(|r| {
                    per_output
                        .iter()
                        .map(|parts| parts[r].clone())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>())
        });
        let mut stats = self.stats.get();
        stats.duration_us += started.elapsed().as_micros() as u64;
        stats.batches += 1;
        stats.batch_requests_max = stats.batch_requests_max.max(live.len() as u64);
        stats.batch_rows_max = stats.batch_rows_max.max(rows as u64);
        stats.calls += live.len() as u64;
        stats.samples += rows as u64;
        self.stats.set(stats);
        match split {
            Ok(results) => {
                for ((pending, _), result) in live.into_iter().zip(results) {
                    self.recycle(pending.inputs, pending.recycle);
                    pending.reply.send(Ok(result));
                }
            }
            Err(error) if live.len() == 1 => {
                self.count_error();
                let (pending, _) = live.into_iter().next().expect("one request");
                pending.reply.send(Err(error));
            }
            Err(_) => {
                for (pending, _) in live {
                    let result = self.run_sliced(&pending.inputs, slice_rows).await;
                    if result.is_err() {
                        self.count_error();
                    }
                    self.recycle(pending.inputs, pending.recycle);
                    pending.reply.send(result);
                }
            }
        }
    }
}

/// The batch worker of one model on one shard: waits for a due batch, runs it, repeats until retired.
async fn batch_worker(model: Rc<ShardModel>, slice_rows: usize) {
    loop {
        if model.retired.get() {
            return;
        }
        let due_at = model.queue.borrow().due_at();
        match due_at {
            None => model.wake.notified().await,
            Some(due) if due > Instant::now() => {
                // Wake at the deadline, or earlier when a request arrives (it may fill the batch).
                let wait = due - Instant::now();
                futures_lite::future::or(model.wake.notified(), crate::runtime::sleep(wait)).await;
            }
            Some(_) => {
                let batch = model.queue.borrow_mut().take_batch();
                model.serve_batch(batch, slice_rows).await;
            }
        }
    }
}

/// The parameters of AI.MODELSTORE or `--model`; sent to every shard, each builds its own session.
#[derive(Clone, Debug)]
pub struct StoreRequest {
    /// The model's key.
    pub name: Vec<u8>,
    /// The ONNX bytes.
    pub blob: Vec<u8>,
    /// Which backend runs it, on which device.
    pub backend: BackendChoice,
    /// What MODELGET reports as the device.
    pub device_text: String,
    /// TAG.
    pub tag: Vec<u8>,
    /// BATCHSIZE, max-batch (0: no batching, as in RedisAI).
    pub batch_size: u64,
    /// MINBATCHSIZE.
    pub min_batch_size: u64,
    /// max-delay-us (None: the server default).
    pub delay_max_us: Option<u64>,
    /// INPUTS names to check, when given.
    pub inputs: Option<Vec<String>>,
    /// OUTPUTS names to check, when given.
    pub outputs: Option<Vec<String>>,
}

/// Share of the inference task queue against the connections' 1000: a batch runs when cache requests leave
/// the core idle, and yields between slices.
const INFERENCE_SHARES: usize = 100;

/// One shard's inference state.
pub struct Inference {
    config: Rc<InferenceConfig>,
    queue: std::cell::OnceCell<crate::runtime::TaskQueueHandle>,
    runtime: RefCell<Option<OrtRuntime>>,
    models: RefCell<HashMap<Vec<u8>, Rc<ShardModel>>>,
    /// The GPU embedding cache, started by the first RECOMMEND on the native backend.
    device_rows: RefCell<DeviceRowsState>,
}

/// Where a shard's GPU embedding cache stands.
enum DeviceRowsState {
    /// Not started yet (or `--gpu-cache-rows 0`, which never starts it).
    Idle,
    /// Serving.
    Ready(Box<device_rows::DeviceRows>),
    /// Starting failed: every RECOMMEND that would use it gets this error, rather than a new attempt (each
    /// compiles a kernel) or a silent fallback that hides a broken GPU.
    Failed(String),
}

impl Inference {
    /// Empty state; the runtime loads on first use.
    pub fn new(config: Rc<InferenceConfig>) -> Inference {
        Inference {
            config,
            queue: std::cell::OnceCell::new(),
            runtime: RefCell::new(None),
            models: RefCell::new(HashMap::new()),
            device_rows: RefCell::new(DeviceRowsState::Idle),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &InferenceConfig {
        &self.config
    }

    /// The shard's low-share task queue for batch workers, created on first use (inside the executor).
    fn queue(&self) -> crate::runtime::TaskQueueHandle {
        *self
            .queue
            .get_or_init(|| crate::runtime::background_queue("inference", INFERENCE_SHARES))
    }

    /// The ONNX Runtime version, once loaded (for AI.INFO).
    pub fn onnx_version(&self) -> Option<String> {
        self.runtime
            .borrow()
            .as_ref()?
            .version()
            .map(str::to_string)
    }

    /// The ONNX Runtime, loaded on first use (the native backend never loads it).
    ///
    /// # Errors
    /// `ERR Could not load backend: ...` with the fix, when the library is missing or broken.
    pub fn runtime(&self) -> Result<OrtRuntime, String> {
        if let Some(runtime) = self.runtime.borrow().as_ref() {
            return Ok(runtime.clone());
        }
        let runtime = OrtRuntime::load(self.config.ort_lib.as_deref())
            .map_err(|e| format!("ERR Could not load backend: {e}"))?;
        *self.runtime.borrow_mut() = Some(runtime.clone());
        Ok(runtime)
    }

    /// Builds a session and starts its batch worker in the low-share queue; replaces a model of the same name.
    ///
    /// # Errors
    /// A RedisAI-style message when the runtime is missing, the blob is refused, the device cannot be used, or
    /// the INPUTS/OUTPUTS names do not match the model.
    pub fn store_model(&self, request: StoreRequest) -> Result<(), String> {
        // RedisAI's meaning: BATCHSIZE 0 (or none) runs every request alone; `--model` passes the server's max-batch.
        let batch_rows_max = request.batch_size as usize;
        let runtime = || self.runtime();
        let context = BuildContext {
            runtime: &runtime,
            tensorrt_cache: &self.config.tensorrt_cache,
            // With no batching a request's rows still run in launches as large as the server's max-batch.
            batch_rows_max: if batch_rows_max == 0 {
                self.config.batch_rows_max
            } else {
                batch_rows_max
            },
        };
        let session = backends::build(request.backend, &request.blob, &context)?;
        let input_names: Vec<String> = session.inputs().iter().map(|s| s.name.clone()).collect();
        let output_names: Vec<String> = session.outputs().iter().map(|s| s.name.clone()).collect();
        for (given, actual, what) in [
            (&request.inputs, &input_names, "INPUTS"),
            (&request.outputs, &output_names, "OUTPUTS"),
        ] {
            if let Some(given) = given {
                if given != actual {
                    return Err(format!(
                        "ERR {what} {given:?} do not match the model's {actual:?}"
                    ));
                }
            }
        }
        let delay_max_us = request
            .delay_max_us
            .unwrap_or(self.config.delay_max_us_for(request.backend.kind));
        let policy = BatchPolicy {
            batch_rows_max,
            delay_max: Duration::from_micros(delay_max_us),
        };
        let model = Rc::new(ShardModel {
            meta: ModelMeta {
                backend: request.backend,
                device_text: request.device_text,
                backend_name: session.device_name().to_string(),
                tag: request.tag,
                batch_size: batch_rows_max as u64,
                min_batch_size: request.min_batch_size,
                delay_max_us,
                input_names,
                output_names,
                blob: Rc::new(request.blob),
            },
            session: RefCell::new(session),
            queue: RefCell::new(BatchQueue::new(policy)),
            stats: Cell::new(ModelStats::default()),
            wake: Notify::default(),
            retired: Cell::new(false),
            input_buffers: InputBuffers::default(),
        });
        crate::runtime::spawn_into(
            batch_worker(
                Rc::clone(&model),
                self.config.slice_rows_for(request.backend.kind).max(1),
            ),
            self.queue(),
        );
        if let Some(old) = self.models.borrow_mut().insert(request.name, model) {
            old.retire();
        }
        Ok(())
    }

    /// Whether a RECOMMEND of a model on `backend` with rows of `dim` floats gathers them through the GPU
    /// embedding cache: on the native backend with `--gpu-cache-rows` above 0, once the cache has started on
    /// the model's device (the first such call starts it, and installs its keyspace observer through
    /// `add_observer`). A cache already on another device, or holding rows of another width, leaves the model
    /// on the host path.
    ///
    /// # Errors
    /// `ERR GPU embedding cache ...` when the cache cannot start (then and on every later call).
    pub fn uses_device_rows(
        &self,
        backend: BackendChoice,
        dim: usize,
        shard_count: usize,
        add_observer: impl FnOnce(Box<dyn ember_store::KeyObserver>),
    ) -> Result<bool, String> {
        if backend.kind != BackendKind::Native || self.config.gpu_cache_rows == 0 {
            return Ok(false);
        }
        let mut state = self.device_rows.borrow_mut();
        match &*state {
            DeviceRowsState::Ready(rows) => {
                return Ok(rows.device_id() == backend.device_id && rows.dim() == dim)
            }
            DeviceRowsState::Failed(error) => return Err(error.clone()),
            DeviceRowsState::Idle => {}
        }
        let nvrtc = backends::native_options(backend.device_id, 1).nvrtc_library;
        match device_rows::DeviceRows::new(
            backend.device_id,
            dim,
            self.config.gpu_cache_rows,
            shard_count,
            nvrtc.as_deref(),
        ) {
            Ok((rows, invalidator)) => {
                add_observer(Box::new(invalidator));
                *state = DeviceRowsState::Ready(Box::new(rows));
                Ok(true)
            }
            Err(error) => {
                *state = DeviceRowsState::Failed(error.clone());
                Err(error)
            }
        }
    }

    /// Runs `gather` on the GPU embedding cache; `None` when it has not started.
    pub fn with_device_rows<R>(
        &self,
        gather: impl FnOnce(&mut device_rows::DeviceRows) -> R,
    ) -> Option<R> {
        match &mut *self.device_rows.borrow_mut() {
            DeviceRowsState::Ready(rows) => Some(gather(rows)),
            _ => None,
        }
    }

    /// The GPU embedding cache's counters (all zero before it starts).
    pub fn device_rows_stats(&self) -> gpu_cache::RowCacheStats {
        match &*self.device_rows.borrow() {
            DeviceRowsState::Ready(rows) => rows.stats(),
            _ => gpu_cache::RowCacheStats::default(),
        }
    }

    /// The model of that name on this shard.
    pub fn model(&self, name: &[u8]) -> Option<Rc<ShardModel>> {
        self.models.borrow().get(name).cloned()
    }

    /// Removes a model; true when it existed.
    pub fn delete_model(&self, name: &[u8]) -> bool {
        match self.models.borrow_mut().remove(name) {
            Some(model) => {
                model.retire();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs_parse() {
        let spec =
            ModelSpec::parse("dlrm=models/dlrm.onnx,max-batch=128,max-delay-us=250").unwrap();
        assert_eq!(spec.name, "dlrm");
        assert_eq!(spec.path, PathBuf::from("models/dlrm.onnx"));
        assert_eq!(
            (spec.batch_rows_max, spec.delay_max_us),
            (Some(128), Some(250))
        );
        assert_eq!(ModelSpec::parse("m=x.onnx").unwrap().batch_rows_max, None);
        let gpu = ModelSpec::parse("m=x.onnx,backend=native,device=1").unwrap();
        assert_eq!((gpu.backend, gpu.device_id), (Some(BackendKind::Native), 1));
        for bad in [
            "m",
            "=x.onnx",
            "m=",
            "m=x.onnx,max-batch=x",
            "m=x.onnx,speed=9",
            "m=x.onnx,backend=tpu",
            "m=x.onnx,device=-1",
            "m=x.onnx,device=99999999999",
        ] {
            assert!(ModelSpec::parse(bad).is_err(), "{bad}");
        }
    }

    fn extract(line: &str) -> Result<InferenceConfig, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        InferenceConfig::extract(&args).map(|(config, rest)| {
            assert!(rest.is_empty(), "{line}: left {rest:?}");
            config
        })
    }

    #[test]
    fn backend_flags_choose_what_each_device_runs_on() {
        use BackendKind::*;
        // (flags, --model backend, what GPU means, max-delay-us on the CPU and on a GPU)
        let cases = [
            ("", OrtCpu, OrtCuda, 500, 2000),
            ("--backend native", Native, Native, 500, 2000),
            (
                "--backend ort-tensorrt",
                OrtTensorRt,
                OrtTensorRt,
                500,
                2000,
            ),
            (
                "--backend ort-cpu --ort-gpu-provider tensorrt",
                OrtCpu,
                OrtTensorRt,
                500,
                2000,
            ),
            (
                "--ort-gpu-provider cuda --backend NATIVE",
                Native,
                Native,
                500,
                2000,
            ),
            (
                "--max-delay-us 100 --backend native",
                Native,
                Native,
                100,
                100,
            ),
        ];
        for (line, backend, gpu, cpu_delay_us, gpu_delay_us) in cases {
            let config = extract(line).unwrap();
            assert_eq!(
                (config.backend, config.gpu_backend),
                (backend, gpu),
                "{line}"
            );
            assert_eq!(
                config.backend_for_device(None),
                BackendChoice {
                    kind: OrtCpu,
                    device_id: 0
                },
                "{line}"
            );
            assert_eq!(
                config.backend_for_device(Some(3)),
                BackendChoice {
                    kind: gpu,
                    device_id: 3
                },
                "{line}"
            );
            assert_eq!(config.delay_max_us_for(OrtCpu), cpu_delay_us, "{line}");
            assert_eq!(config.delay_max_us_for(gpu), gpu_delay_us, "{line}");
        }
        assert_eq!(extract("").unwrap().gpu_cache_rows, GPU_CACHE_ROWS_DEFAULT);
        assert_eq!(
            extract("").unwrap().gpu_slot_rows_min,
            GPU_SLOT_ROWS_DEFAULT
        );
        assert_eq!(extract("--gpu-slot-rows 0").unwrap().gpu_slot_rows_min, 0);
        assert_eq!(extract("--gpu-slot-rows 1").unwrap().gpu_slot_rows_min, 1);
        assert_eq!(extract("--gpu-cache-rows 0").unwrap().gpu_cache_rows, 0);
        assert_eq!(
            extract("--gpu-cache-rows 4096").unwrap().gpu_cache_rows,
            4096
        );
        for (line, error) in [
            (
                "--gpu-cache-rows x",
                "--gpu-cache-rows: 'x' is not a number",
            ),
            (
                "--gpu-cache-rows 4294967295",
                "--gpu-cache-rows: 4294967295 is over the most a cache holds",
            ),
            (
                "--gpu-slot-rows -1",
                "--gpu-slot-rows: '-1' is not a number",
            ),
            ("--backend", "--backend needs a value"),
            ("--backend gpu", "--backend: unknown backend 'gpu'"),
            ("--ort-gpu-provider native", "--ort-gpu-provider: 'native'"),
        ] {
            let got = extract(line).unwrap_err();
            assert!(got.starts_with(error), "{line}: {got}");
        }
    }
}

/// Inference work one shard asks of another.
#[derive(Debug)]
pub enum InferenceRequest {
    /// Store tensors at keys this shard owns, in database `db` of its keyspace.
    TensorSet {
        /// The client's database.
        db: usize,
        /// Keys and tensors.
        entries: Vec<(Vec<u8>, Tensor)>,
        /// The client's hold inside MULTI/EXEC: the write waits at the gate like any keyed command.
        token: Option<HoldToken>,
    },
    /// Copies of tensors at keys this shard owns, in database `db` of its keyspace.
    TensorGet {
        /// The client's database.
        db: usize,
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// The client's hold inside MULTI/EXEC.
        token: Option<HoldToken>,
    },
    /// Build a session for a model (every shard holds every model).
    ModelStore(Box<StoreRequest>),
    /// Delete a model.
    ModelDel {
        /// The model's key.
        key: Vec<u8>,
    },
    /// A model's counters, optionally zeroed after reading.
    Stats {
        /// The model's key.
        key: Vec<u8>,
        /// AI.INFO key RESETSTAT.
        reset: bool,
    },
}

/// A shard's answer to an [`InferenceRequest`].
#[derive(Debug)]
pub enum InferenceReply {
    /// What each key asked held, in the order asked.
    Tensors(Vec<TensorRead>),
    /// A tensor write's result (WRONGTYPE when a key held another type).
    TensorsStored(Result<(), String>),
    /// A model store's result.
    Stored(Result<(), String>),
    /// Whether a deleted model existed.
    Deleted(bool),
    /// A model's counters, when the shard has it.
    Stats(Option<ModelStats>),
}

impl InferenceRequest {
    /// For a request that touches the keyspace (tensors), the hold token it passes the shard's gate with, so it
    /// waits while another client holds the shard (a cross-shard MULTI/EXEC) as keyed commands do; `None` for
    /// model requests, which never wait.
    pub fn gate_token(&self) -> Option<Option<HoldToken>> {
        match self {
            InferenceRequest::TensorSet { token, .. }
            | InferenceRequest::TensorGet { token, .. } => Some(*token),
            _ => None,
        }
    }
}

/// Answers an [`InferenceRequest`] against this shard's state (callers have passed the gate, see
/// [`InferenceRequest::gate_token`]).
pub fn answer(shard: &crate::shard::Shard, request: InferenceRequest) -> InferenceReply {
    let inference = &shard.inference;
    match request {
        InferenceRequest::TensorSet { db, entries, .. } => {
            let now_ms = crate::stats::unix_time_ms();
            let mut keyspace = shard.keyspace.borrow_mut();
            InferenceReply::TensorsStored(tensors::write(&mut keyspace, db, entries, now_ms))
        }
        InferenceRequest::TensorGet { db, keys, .. } => {
            let now_ms = crate::stats::unix_time_ms();
            let mut keyspace = shard.keyspace.borrow_mut();
            InferenceReply::Tensors(tensors::read(&mut keyspace, db, &keys, now_ms, |hit| {
                shard.stats.count_lookup(hit)
            }))
        }
        InferenceRequest::ModelStore(request) => {
            InferenceReply::Stored(inference.store_model(*request))
        }
        InferenceRequest::ModelDel { key } => InferenceReply::Deleted(inference.delete_model(&key)),
        InferenceRequest::Stats { key, reset } => {
            InferenceReply::Stats(inference.model(&key).map(|model| {
                let stats = model.stats();
                if reset {
                    model.reset_stats();
                }
                stats
            }))
        }
    }
}

/// Sends `request` to shard `owner` (answered here when it is this shard).
pub async fn call(
    shard: &Rc<crate::shard::Shard>,
    owner: usize,
    request: InferenceRequest,
) -> InferenceReply {
    use crate::shard::{ShardReply, ShardRequest};
    if owner == shard.index {
        if let Some(token) = request.gate_token() {
            shard.gate.enter(token).await;
        }
        return answer(shard, request);
    }
    match shard.call(owner, ShardRequest::Inference(request)).await {
        ShardReply::Inference(reply) => reply,
        ShardReply::Reply(reply) => InferenceReply::Stored(Err(reply
            .error_message()
            .unwrap_or("ERR unexpected shard answer")
            .to_owned())),
        other => panic!("an inference request was answered with {other:?}"),
    }
}

/// Start-up on one shard: the models of `--model` (each shard builds its own backend) and the demo embedding
/// rows this shard owns. A model whose backend is not on this machine (no GPU, no driver, a runtime without the
/// provider) is left out with a message, and the cache serves without it; AI.MODELSTORE can add it later.
///
/// # Errors
/// A message naming the model or file and the fix, so that `ember` stops instead of serving a model file it
/// cannot read or a graph its backend refuses.
pub fn start(shard: &crate::shard::Shard) -> Result<(), String> {
    let config = shard.inference.config().clone();
    let mut loaded = Vec::new();
    for spec in &config.models {
        let blob = std::fs::read(&spec.path).map_err(|e| {
            format!(
                "--model {}: cannot read {}: {e}",
                spec.name,
                spec.path.display()
            )
        })?;
        let backend = BackendChoice {
            kind: spec.backend.unwrap_or(config.backend),
            device_id: spec.device_id,
        };
        let request = StoreRequest {
            name: spec.name.as_bytes().to_vec(),
            blob,
            backend,
            device_text: if backend.kind.is_gpu() {
                format!("GPU:{}", backend.device_id)
            } else {
                "CPU".to_string()
            },
            tag: Vec::new(),
            batch_size: spec.batch_rows_max.unwrap_or(config.batch_rows_max) as u64,
            min_batch_size: 0,
            delay_max_us: spec.delay_max_us,
            inputs: None,
            outputs: None,
        };
        match shard.inference.store_model(request) {
            Ok(()) => loaded.push(format!("{} on {}", spec.name, backend.label())),
            Err(error) if error.starts_with(backends::UNAVAILABLE_PREFIX) => {
                if shard.index == 0 {
                    eprintln!(
                        "ember: inference: --model {} left out, the cache serves without it: {}",
                        spec.name,
                        error.trim_start_matches("ERR ")
                    );
                }
            }
            Err(error) => {
                return Err(format!(
                    "--model {}: {}",
                    spec.name,
                    error.trim_start_matches("ERR ")
                ))
            }
        }
    }
    if let Some(dir) = &config.demo_embeddings {
        let rows = ember_kernels::recommend::demo_rows(dir)
            .map_err(|e| format!("--demo-embeddings {}: {e}", dir.display()))?;
        let now_ms = crate::stats::unix_time_ms();
        let mut keyspace = shard.keyspace.borrow_mut();
        for (key, value) in rows {
            if shard.owner_of(&key) == shard.index {
                keyspace.insert(0, &key, ember_store::Value::from_vec(value), None, now_ms);
            }
        }
    }
    if shard.index == 0 && !loaded.is_empty() {
        eprintln!(
            "ember: inference: models {} (ONNX Runtime {}, max-batch {}, max-delay-us {})",
            loaded.join(", "),
            shard
                .inference
                .onnx_version()
                .unwrap_or_else(|| "not loaded".into()),
            config.batch_rows_max,
            config
                .delay_max_us
                .map_or_else(|| "by backend".to_string(), |us| us.to_string())
        );
    }
    Ok(())
}
