//! `ember-bench load-embeddings` and `ember-bench infer`: the recommendation side of the benchmark.
//!
//! - `load-embeddings` writes the demo tables (`models/dlrm_embeddings.npy`, `models/dlrm_user_dense.npy`) into a
//!   running server as keys `emb:{field}:{id}` and `dense:{user}` (see `ember_kernels::recommend`), pipelined, and
//!   reads a sample back to check it.
//! - `infer` measures, in one run, samples per second and p50/p99 latency through the server (RECOMMEND on
//!   `dlrm_dense`, AI.MODELEXECUTE on `dlrm`) against the same models run in-process with ONNX Runtime at the same
//!   batch size, then RECOMMEND under open-loop load at 70% of its measured maximum. Every server reply is checked
//!   against the in-process scores (max abs error 1e-5 on the CPU, see [`score_tolerance`] on a GPU), so a fast
//!   wrong run fails. `--backend` runs the in-process side on the backend the server was started with
//!   (`ort-cpu`, `ort-cuda`, `ort-tensorrt`, `native`), so that "vs in-process" compares like with like.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_kernels::compare::score_within;
use ember_kernels::cuda::library::{CUBLASLT_WHEEL_LIBRARY, NVRTC_WHEEL_LIBRARY};
use ember_kernels::recommend::{demo_rows, top_k, Layout};
use ember_kernels::{
    npy, Backend, Device, OrtRuntime, OrtSession, SessionConfig, Tensor, TensorData,
};
use ember_resp::{encode, parse_frame, Frame};
use hdrhistogram::Histogram;

use crate::compare::median;

/// Largest difference allowed between a server score and the in-process score for the same row, on the CPU.
const SCORE_TOLERANCE: f32 = 1e-5;
/// The same on a GPU: the server merges requests into batches of other sizes, and a GPU library picks its
/// kernels (and their summation order) by batch size, so float32 scores differ by ~1e-7..1e-6; 1e-4 still catches
/// a wrong row.
const GPU_SCORE_TOLERANCE: f32 = 1e-4;
/// TensorRT allows TF32 matrix products on Ampere and later (ONNX Runtime exposes no switch), so its scores move
/// by up to ~1e-3 between engine shapes.
const TENSORRT_SCORE_TOLERANCE: f32 = 2e-3;
/// Pipeline depth for load-embeddings: enough to hide the round trip, small enough to bound the reply buffer.
const LOAD_PIPELINE: usize = 512;
/// Highest latency the histograms record (10 s); anything slower is clamped and shows as 10 s.
const LATENCY_MAX_US: u64 = 10_000_000;
/// Share of the measured maximum that the open-loop run offers.
const OPEN_LOOP_LOAD: f64 = 0.7;

const USAGE: &str = "\
usage: ember-bench infer [flags]        (a running server with dlrm_dense, dlrm and the demo rows)
       ember-bench load-embeddings [--host H] [--port P] [--models DIR]

  --host 127.0.0.1   --port 6379   server to measure
  --models models    directory with dlrm_dense.onnx, dlrm.onnx and the demo tables
  --ort-lib PATH     libonnxruntime.so for the in-process runs (default: $ORT_DYLIB_PATH, then
                     .deps/onnxruntime/libonnxruntime.so; the onnxruntime-gpu one for ort-cuda/ort-tensorrt)
  --backend ort-cpu  the in-process side's backend: ort-cpu, ort-cuda, ort-tensorrt or native, the
                     one the server's models run on (ember --backend B)
  --device 0         the GPU of a GPU backend
  --batch 1,64,256,1024   batch sizes (candidates per RECOMMEND, rows per AI.MODELEXECUTE)
  --rounds 3         rounds per batch size; each round measures in-process, RECOMMEND, in-process,
                     AI.MODELEXECUTE back to back, and the tables give medians over the rounds
  --seconds 3        length of each measurement
  --connections 4    client connections (closed loop: one request in flight each)
  --max-delay-us 2000  the server's max-delay-us, for the open-loop bound
  --user 7   --k 10  RECOMMEND's user and k";

/// Options shared by both subcommands.
struct Options {
    host: String,
    port: u16,
    models_dir: PathBuf,
    ort_lib: Option<PathBuf>,
    backend: String,
    device_id: u32,
    batches: Vec<usize>,
    rounds: usize,
    seconds: f64,
    connections: usize,
    max_delay_us: u64,
    user: usize,
    k: usize,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        host: "127.0.0.1".into(),
        port: 6379,
        models_dir: PathBuf::from("models"),
        ort_lib: None,
        backend: "ort-cpu".into(),
        device_id: 0,
        batches: vec![1, 64, 256, 1024],
        rounds: 3,
        seconds: 3.0,
        connections: 4,
        max_delay_us: 2000,
        user: 7,
        k: 10,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: &String| {
            text.parse::<u64>()
                .map_err(|_| format!("{flag}: '{text}' is not a number"))
        };
        match flag.as_str() {
            "--host" => options.host = value()?.clone(),
            "--port" => {
                options.port =
                    u16::try_from(number(value()?)?).map_err(|_| "--port out of range")?
            }
            "--models" => options.models_dir = PathBuf::from(value()?),
            "--ort-lib" => options.ort_lib = Some(PathBuf::from(value()?)),
            "--backend" => {
                let backend = value()?.to_ascii_lowercase();
                if !["ort-cpu", "ort-cuda", "ort-tensorrt", "native"].contains(&backend.as_str()) {
                    return Err(format!(
                        "--backend: '{backend}' (expected ort-cpu, ort-cuda, ort-tensorrt or native)"
                    ));
                }
                options.backend = backend;
            }
            "--device" => {
                options.device_id =
                    u32::try_from(number(value()?)?).map_err(|_| "--device out of range")?
            }
            "--batch" => {
                options.batches = value()?
                    .split(',')
                    .map(|b| {
                        b.parse::<usize>()
                            .ok()
                            .filter(|&b| b > 0)
                            .ok_or(format!("--batch: bad size '{b}'"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => {
                options.seconds = value()?
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .ok_or("--seconds must be > 0")?
            }
            "--rounds" => options.rounds = number(value()?)?.clamp(1, 100) as usize,
            "--connections" => options.connections = number(value()?)?.clamp(1, 256) as usize,
            "--max-delay-us" => options.max_delay_us = number(value()?)?,
            "--user" => options.user = number(value()?)? as usize,
            "--k" => options.k = number(value()?)? as usize,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    Ok(options)
}

/// A blocking RESP2 connection.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    buffer: Vec<u8>,
    out: Vec<u8>,
}

impl Connection {
    fn open(options: &Options) -> Result<Connection, String> {
        let stream = TcpStream::connect((options.host.as_str(), options.port))
            .map_err(|e| format!("cannot connect to {}:{}: {e}", options.host, options.port))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Connection {
            reader: BufReader::with_capacity(1 << 16, stream),
            writer,
            buffer: Vec::new(),
            out: Vec::new(),
        })
    }

    fn queue(&mut self, args: &[&[u8]]) {
        encode::command(&mut self.out, args.iter().copied());
    }

    fn flush(&mut self) -> Result<(), String> {
        self.writer
            .write_all(&self.out)
            .map_err(|e| format!("write: {e}"))?;
        self.out.clear();
        Ok(())
    }

    fn read(&mut self) -> Result<Frame, String> {
        loop {
            if let Some((frame, used)) =
                parse_frame(&self.buffer).map_err(|e| format!("bad reply: {e:?}"))?
            {
                self.buffer.drain(..used);
                return Ok(frame);
            }
            let mut chunk = [0u8; 1 << 16];
            let n = self
                .reader
                .read(&mut chunk)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("server closed the connection".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<Frame, String> {
        self.queue(args);
        self.flush()?;
        self.read()
    }
}

fn expect_ok(frame: Frame, what: &str) -> Result<(), String> {
    match frame {
        Frame::Simple(_) => Ok(()),
        Frame::Error(e) => Err(format!("{what}: {}", String::from_utf8_lossy(&e))),
        other => Err(format!("{what}: unexpected reply {other:?}")),
    }
}

/// The demo tables, as the generator wrote them.
struct Tables {
    layout: Layout,
    rows_per_table: usize,
    embeddings: Vec<f32>,
    user_dense: Vec<f32>,
}

impl Tables {
    fn read(models_dir: &Path) -> Result<Tables, String> {
        let embeddings =
            npy::read(&models_dir.join("dlrm_embeddings.npy")).map_err(|e| e.to_string())?;
        let user_dense =
            npy::read(&models_dir.join("dlrm_user_dense.npy")).map_err(|e| e.to_string())?;
        let layout = Layout::DEMO;
        if embeddings.shape().len() != 3
            || embeddings.shape()[0] != layout.fields
            || embeddings.shape()[2] != layout.embedding_dim
            || user_dense.shape() != [embeddings.shape()[1], layout.dense_len]
        {
            return Err(format!(
                "unexpected table shapes {:?} and {:?}; regenerate with models/generate.py",
                embeddings.shape(),
                user_dense.shape()
            ));
        }
        let rows_per_table = embeddings.shape()[1];
        let (TensorData::Float(embeddings), TensorData::Float(user_dense)) =
            (embeddings.into_data(), user_dense.into_data())
        else {
            return Err("tables must be FLOAT".into());
        };
        Ok(Tables {
            layout,
            rows_per_table,
            embeddings,
            user_dense,
        })
    }

    fn row(&self, field: usize, id: usize) -> &[f32] {
        let dim = self.layout.embedding_dim;
        let start = (field * self.rows_per_table + id) * dim;
        &self.embeddings[start..start + dim]
    }

    fn dense(&self, user: usize) -> &[f32] {
        &self.user_dense[user * self.layout.dense_len..(user + 1) * self.layout.dense_len]
    }

    /// Candidate ids for a batch: 0, 1, 2, ... wrapping at the table size.
    fn candidates(&self, batch: usize) -> Vec<usize> {
        (0..batch).map(|i| i % self.rows_per_table).collect()
    }

    /// The dense model's inputs for RECOMMEND(user, candidates).
    fn recommend_inputs(&self, user: usize, candidates: &[usize]) -> Result<[Tensor; 2], String> {
        let user_rows: Vec<Vec<f32>> = self
            .layout
            .user_fields()
            .map(|f| self.row(f, user).to_vec())
            .collect();
        let candidate_rows: Vec<Vec<Vec<f32>>> = candidates
            .iter()
            .map(|&c| {
                self.layout
                    .candidate_fields()
                    .map(|f| self.row(f, c).to_vec())
                    .collect()
            })
            .collect();
        self.layout
            .assemble(self.dense(user), &user_rows, &candidate_rows)
            .map_err(|e| e.to_string())
    }

    /// The ids model's inputs for the same rows: the user's id in user fields, the candidate's in the rest.
    fn ids_inputs(&self, user: usize, candidates: &[usize]) -> Result<[Tensor; 2], String> {
        let fields = self.layout.fields;
        let mut dense = Vec::with_capacity(candidates.len() * self.layout.dense_len);
        let mut sparse = Vec::with_capacity(candidates.len() * fields);
        for &c in candidates {
            dense.extend_from_slice(self.dense(user));
            sparse.extend(self.layout.user_fields().map(|_| user as i64));
            sparse.extend(self.layout.candidate_fields().map(|_| c as i64));
        }
        let dense = Tensor::new(
            vec![candidates.len(), self.layout.dense_len],
            TensorData::Float(dense),
        );
        let sparse = Tensor::new(vec![candidates.len(), fields], TensorData::Int64(sparse));
        Ok([
            dense.map_err(|e| e.to_string())?,
            sparse.map_err(|e| e.to_string())?,
        ])
    }
}

/// `ember-bench load-embeddings [--host H] [--port P] [--models DIR]`.
///
/// # Errors
/// A message when the tables cannot be read, the server cannot be reached, or a reply is wrong.
pub fn load_embeddings_main(args: &[String]) -> Result<(), String> {
    let options = parse_options(args)?;
    let keys = demo_rows(&options.models_dir).map_err(|e| e.to_string())?;
    let mut connection = Connection::open(&options)?;
    let started = Instant::now();
    let mut pending = 0usize;
    let mut written = 0usize;
    for (key, value) in &keys {
        connection.queue(&[b"SET", key, value]);
        pending += 1;
        if pending == LOAD_PIPELINE {
            connection.flush()?;
            for _ in 0..pending {
                expect_ok(connection.read()?, "SET")?;
            }
            written += pending;
            pending = 0;
        }
    }
    connection.flush()?;
    for _ in 0..pending {
        expect_ok(connection.read()?, "SET")?;
    }
    written += pending;
    // Read a sample back: the last row of every field for the last id.
    let (key, value) = keys.last().ok_or("no rows to load")?;
    match connection.call(&[b"GET", key])? {
        Frame::Bulk(got) if got == *value => {}
        other => {
            return Err(format!(
                "read-back of {} gave {other:?}",
                String::from_utf8_lossy(key)
            ))
        }
    }
    println!(
        "load-embeddings: wrote {written} keys in {:.2} s; read-back checked",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Latencies and a count, for one measurement.
struct Measurement {
    samples: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl Measurement {
    fn new() -> Measurement {
        Measurement {
            samples: 0,
            elapsed: Duration::ZERO,
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
                .expect("valid histogram bounds"),
        }
    }

    fn record(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_MAX_US);
        self.latency_us
            .record(us)
            .expect("clamped into the histogram's range");
    }

    fn merge(&mut self, other: &Measurement) {
        self.samples += other.samples;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.latency_us.add(&other.latency_us).expect("same bounds");
    }

    fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn p50_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.5)
    }

    fn p99_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.99)
    }
}

/// One table row over the rounds: median samples/s, p50 and p99. With `reference` (the in-process runs of the
/// same rounds), each round's ratio to the in-process run measured just before it, and their median, so that a
/// drift of the machine's speed between rounds cancels out of the ratio.
fn summary_row(
    name: &str,
    batch: usize,
    runs: &[Measurement],
    reference: Option<&[Measurement]>,
) -> String {
    let rate = median(runs.iter().map(Measurement::samples_per_s).collect());
    let p50 = median(runs.iter().map(|m| m.p50_us() as f64).collect());
    let p99 = median(runs.iter().map(|m| m.p99_us() as f64).collect());
    let (ratio, per_round) = match reference {
        None => ("-".to_string(), "-".to_string()),
        Some(reference) => {
            let ratios: Vec<f64> = runs
                .iter()
                .zip(reference)
                .map(|(run, local)| run.samples_per_s() / local.samples_per_s().max(1e-9))
                .collect();
            let listed: Vec<String> = ratios
                .iter()
                .map(|r| format!("{:.0}%", 100.0 * r))
                .collect();
            (format!("{:.0}%", 100.0 * median(ratios)), listed.join(", "))
        }
    };
    format!("| {name} | {batch} | {rate:.0} | {ratio} | {per_round} | {p50:.0} | {p99:.0} |")
}

/// How close a server score must be to the in-process one on `backend`.
fn score_tolerance(backend: &str) -> f32 {
    match backend {
        "ort-cpu" => SCORE_TOLERANCE,
        "ort-tensorrt" => TENSORRT_SCORE_TOLERANCE,
        _ => GPU_SCORE_TOLERANCE,
    }
}

/// A setup-installed CUDA library, when it is there (relative to the working directory: the repository root).
fn setup_library(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(relative);
    path.exists().then_some(path)
}

/// The model `name` on the in-process backend `options.backend`.
fn open_backend(
    options: &Options,
    runtime: &dyn Fn() -> Result<OrtRuntime, String>,
    name: &str,
) -> Result<Box<dyn Backend>, String> {
    let path = options.models_dir.join(format!("{name}.onnx"));
    let device = match options.backend.as_str() {
        "native" => {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let engine = ember_kernels::cuda::EngineOptions {
                device_ordinal: options.device_id as usize,
                // One launch for the largest batch measured, as the server sizes its engine for max-batch.
                batch_size_max: options
                    .batches
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(1)
                    .min(ember_kernels::cuda::BATCH_SIZE_MAX_LIMIT),
                nvrtc_library: setup_library(NVRTC_WHEEL_LIBRARY),
                cublaslt_library: setup_library(CUBLASLT_WHEEL_LIBRARY),
                ..Default::default()
            };
            let backend = ember_kernels::dlrm_backend::native_cuda(&bytes, &engine)
                .map_err(|e| format!("native backend: {e}"))?;
            return Ok(Box::new(backend));
        }
        "ort-cuda" => Device::Cuda {
            device_id: options.device_id,
        },
        "ort-tensorrt" => Device::TensorRt {
            device_id: options.device_id,
            engine_cache_dir: std::env::temp_dir().join("ember-bench-tensorrt"),
        },
        _ => Device::Cpu,
    };
    let config = SessionConfig {
        device,
        ..SessionConfig::default()
    };
    let session = OrtSession::from_file(&runtime()?, &path, &config).map_err(|e| e.to_string())?;
    Ok(Box::new(session))
}

/// The model's scores for `inputs`, computed in this process: what every server reply is checked against.
fn scores(session: &mut dyn Backend, inputs: &[Tensor]) -> Result<Vec<f32>, String> {
    let scores = session.run(inputs).map_err(|e| e.to_string())?.remove(0);
    Ok(scores.as_f32().ok_or("score is not FLOAT")?.to_vec())
}

/// Runs the model in this process, one batch after another on one thread, as a shard would.
fn in_process(
    session: &mut dyn Backend,
    inputs: &[Tensor],
    seconds: f64,
) -> Result<Measurement, String> {
    let batch = inputs[0].batch_len() as u64;
    session.run(inputs).map_err(|e| e.to_string())?;
    let mut measurement = Measurement::new();
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        session.run(inputs).map_err(|e| e.to_string())?;
        measurement.record(t.elapsed());
        measurement.samples += batch;
    }
    measurement.elapsed = started.elapsed();
    Ok(measurement)
}

/// The commands of one server request and how to check its reply.
#[derive(Clone)]
enum Workload {
    /// RECOMMEND model user k CANDIDATES n ids...; checks the top-k ids and scores.
    Recommend {
        args: Vec<Vec<u8>>,
        want: Vec<(String, f32)>,
        tolerance: f32,
    },
    /// TENSORSET x2, AI.MODELEXECUTE, AI.TENSORGET, pipelined; checks every score.
    Execute {
        dense: Tensor,
        sparse: Tensor,
        want: Vec<f32>,
        tolerance: f32,
    },
}

impl Workload {
    fn samples(&self) -> u64 {
        match self {
            // RECOMMEND model user k CANDIDATES n: six words, then one id per sample.
            Workload::Recommend { args, .. } => (args.len() - 6) as u64,
            Workload::Execute { dense, .. } => dense.batch_len() as u64,
        }
    }

    /// How many replies one request produces.
    fn replies(&self) -> usize {
        match self {
            Workload::Recommend { .. } => 1,
            Workload::Execute { .. } => 4,
        }
    }

    /// Queues one request on `connection`.
    fn send(&self, connection: &mut Connection, id: usize) {
        match self {
            Workload::Recommend { args, .. } => {
                let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                connection.queue(&refs);
            }
            Workload::Execute { dense, sparse, .. } => {
                let (d, s, o) = (
                    format!("bench:{{{id}}}:dense"),
                    format!("bench:{{{id}}}:sparse"),
                    format!("bench:{{{id}}}:score"),
                );
                let shape = |t: &Tensor| {
                    t.shape()
                        .iter()
                        .map(|d| d.to_string().into_bytes())
                        .collect::<Vec<_>>()
                };
                for (key, tensor, dtype) in
                    [(&d, dense, &b"FLOAT"[..]), (&s, sparse, &b"INT64"[..])]
                {
                    let dims = shape(tensor);
                    let blob = tensor.to_le_bytes();
                    let mut args: Vec<&[u8]> = vec![b"AI.TENSORSET", key.as_bytes(), dtype];
                    args.extend(dims.iter().map(Vec::as_slice));
                    args.extend([&b"BLOB"[..], &blob]);
                    connection.queue(&args);
                }
                connection.queue(&[
                    b"AI.MODELEXECUTE",
                    b"dlrm",
                    b"INPUTS",
                    b"2",
                    d.as_bytes(),
                    s.as_bytes(),
                    b"OUTPUTS",
                    b"1",
                    o.as_bytes(),
                ]);
                connection.queue(&[b"AI.TENSORGET", o.as_bytes(), b"VALUES"]);
            }
        }
    }

    fn check(&self, replies: Vec<Frame>) -> Result<(), String> {
        let text = |f: &Frame| match f {
            Frame::Bulk(b) | Frame::Simple(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            Frame::Double(d) => Ok(d.to_string()),
            Frame::Error(e) => Err(format!("server error: {}", String::from_utf8_lossy(e))),
            other => Err(format!("unexpected reply {other:?}")),
        };
        match self {
            Workload::Recommend {
                want, tolerance, ..
            } => {
                let items = match replies.into_iter().next() {
                    Some(Frame::Array(items)) => items,
                    other => return Err(format!("RECOMMEND: expected an array, got {other:?}")),
                };
                if items.len() != want.len() * 2 {
                    return Err(format!(
                        "RECOMMEND returned {} items, expected {}",
                        items.len(),
                        want.len() * 2
                    ));
                }
                for (pair, (id, score)) in items.chunks(2).zip(want) {
                    let (got_id, got_score) = (
                        text(&pair[0])?,
                        text(&pair[1])?.parse::<f32>().map_err(|e| e.to_string())?,
                    );
                    // Two candidates whose scores are closer than the tolerance may swap ranks on a GPU; the
                    // score at each rank must still match.
                    let swapped = got_id != *id && *tolerance == SCORE_TOLERANCE;
                    if swapped || !score_within(got_score, *score, *tolerance) {
                        return Err(format!(
                            "RECOMMEND gave {got_id} {got_score}, expected {id} {score}"
                        ));
                    }
                }
                Ok(())
            }
            Workload::Execute {
                want, tolerance, ..
            } => {
                for reply in &replies[..3] {
                    text(reply)?;
                }
                let Some(Frame::Array(values)) = replies.into_iter().nth(3) else {
                    return Err("TENSORGET: not an array".into());
                };
                if values.len() != want.len() {
                    return Err(format!(
                        "TENSORGET returned {} values, expected {}",
                        values.len(),
                        want.len()
                    ));
                }
                for (value, want) in values.iter().zip(want) {
                    let got = text(value)?.parse::<f32>().map_err(|e| e.to_string())?;
                    if !score_within(got, *want, *tolerance) {
                        return Err(format!("AI.MODELEXECUTE score {got}, in-process {want}"));
                    }
                }
                Ok(())
            }
        }
    }
}

/// Closed loop: `connections` threads, each sending one request and waiting for its reply.
fn closed_loop(options: &Options, workload: &Workload) -> Result<Measurement, String> {
    let handles: Vec<_> = (0..options.connections)
        .map(|id| {
            let mut connection = Connection::open(options)?;
            let workload = workload.clone();
            let seconds = options.seconds;
            Ok(std::thread::spawn(
                move || -> Result<Measurement, String> {
                    let mut measurement = Measurement::new();
                    let started = Instant::now();
                    let mut checked = false;
                    while started.elapsed().as_secs_f64() < seconds {
                        let t = Instant::now();
                        workload.send(&mut connection, id);
                        connection.flush()?;
                        let frames = (0..workload.replies())
                            .map(|_| connection.read())
                            .collect::<Result<Vec<_>, _>>()?;
                        measurement.record(t.elapsed());
                        if !checked {
                            workload.check(frames)?;
                            checked = true;
                        }
                        measurement.samples += workload.samples();
                    }
                    measurement.elapsed = started.elapsed();
                    Ok(measurement)
                },
            ))
        })
        .collect::<Result<_, String>>()?;
    let mut total = Measurement::new();
    for handle in handles {
        total.merge(&handle.join().map_err(|_| "a load thread panicked")??);
    }
    Ok(total)
}

/// Open loop: requests leave on a fixed schedule at `rate_per_s` over `connections` connections; latency counts
/// from the scheduled send time, so a stall shows up in the percentiles instead of slowing the load (no
/// coordinated omission).
fn open_loop(
    options: &Options,
    workload: &Workload,
    rate_per_s: f64,
) -> Result<Measurement, String> {
    let connections = options.connections;
    let per_connection = rate_per_s / connections as f64;
    let interval = Duration::from_secs_f64(1.0 / per_connection.max(1e-3));
    let handles: Vec<_> = (0..options.connections)
        .map(|id| {
            let mut connection = Connection::open(options)?;
            // The reader thread reads replies on a clone of the same socket while this thread keeps sending.
            let stream = connection.writer.try_clone().map_err(|e| e.to_string())?;
            let mut reader = Connection {
                reader: BufReader::with_capacity(
                    1 << 16,
                    stream.try_clone().map_err(|e| e.to_string())?,
                ),
                writer: stream,
                buffer: Vec::new(),
                out: Vec::new(),
            };
            let workload = workload.clone();
            let seconds = options.seconds;
            let (tx, rx) = std::sync::mpsc::channel::<Instant>();
            let failed = Arc::new(AtomicBool::new(false));
            let failed_reader = Arc::clone(&failed);
            let replies = workload.replies();
            let reader_workload = workload.clone();
            let reader_handle = std::thread::spawn(move || -> Result<Measurement, String> {
                let mut measurement = Measurement::new();
                let mut checked = false;
                while let Ok(scheduled) = rx.recv() {
                    let frames = (0..replies)
                        .map(|_| reader.read())
                        .collect::<Result<Vec<_>, _>>();
                    let frames =
                        frames.inspect_err(|_| failed_reader.store(true, Ordering::Relaxed))?;
                    measurement.record(scheduled.elapsed());
                    measurement.samples += reader_workload.samples();
                    if !checked {
                        reader_workload.check(frames)?;
                        checked = true;
                    }
                }
                Ok(measurement)
            });
            Ok(std::thread::spawn(
                move || -> Result<Measurement, String> {
                    // Stagger the connections evenly across one interval, so that together they send at a steady
                    // `rate_per_s` instead of in bursts of one request per connection.
                    let started = Instant::now() + interval.mul_f64(id as f64 / connections as f64);
                    let mut next = started;
                    while next.duration_since(started).as_secs_f64() < seconds
                        && !failed.load(Ordering::Relaxed)
                    {
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        workload.send(&mut connection, id);
                        connection.flush()?;
                        tx.send(next).map_err(|_| "reader stopped")?;
                        next += interval;
                    }
                    drop(tx);
                    let mut measurement = reader_handle
                        .join()
                        .map_err(|_| "a reader thread panicked")??;
                    measurement.elapsed = started.elapsed();
                    Ok(measurement)
                },
            ))
        })
        .collect::<Result<_, String>>()?;
    let mut total = Measurement::new();
    for handle in handles {
        total.merge(&handle.join().map_err(|_| "a load thread panicked")??);
    }
    Ok(total)
}

fn default_ort_lib(options: &Options) -> Option<PathBuf> {
    options.ort_lib.clone().or_else(|| {
        let setup = PathBuf::from(ember_kernels::onnxruntime::SETUP_LIBRARY_PATH);
        (std::env::var_os("ORT_DYLIB_PATH").is_none() && setup.exists()).then_some(setup)
    })
}

/// `ember-bench infer [--host H] [--port P] [--models DIR] [--ort-lib PATH] [--batch 1,64,256,1024]
/// [--seconds S] [--connections C] [--max-delay-us US] [--user ID] [--k K]`: prints a markdown table.
///
/// # Errors
/// A message when the runtime, models or server are missing, or when any server score differs from the
/// in-process score by more than 1e-5.
pub fn main(args: &[String]) -> Result<(), String> {
    let options = parse_options(args)?;
    let tables = Tables::read(&options.models_dir)?;
    if options.user >= tables.rows_per_table {
        return Err(format!("--user must be below {}", tables.rows_per_table));
    }
    let runtime =
        || OrtRuntime::load(default_ort_lib(&options).as_deref()).map_err(|e| e.to_string());
    let (mut dense_session, mut ids_session) = (
        open_backend(&options, &runtime, "dlrm_dense")?,
        open_backend(&options, &runtime, "dlrm")?,
    );
    println!(
        "Medians over {} rounds of {} s per measurement; a round runs in-process, RECOMMEND, in-process, AI.MODELEXECUTE back to back. In-process backend: {}.",
        options.rounds,
        options.seconds,
        dense_session.device_name()
    );
    println!();
    println!(
        "| path | batch | samples/s | vs in-process | rounds (vs in-process) | p50 us | p99 us |"
    );
    println!("| --- | ---: | ---: | ---: | --- | ---: | ---: |");
    let mut open_loop_rows = Vec::new();
    for &batch in &options.batches {
        let candidates = tables.candidates(batch);
        let recommend_inputs = tables.recommend_inputs(options.user, &candidates)?;
        let scores_dense = scores(dense_session.as_mut(), &recommend_inputs)?;
        let [dense, sparse] = tables.ids_inputs(options.user, &candidates)?;
        let ids_inputs = [dense.clone(), sparse.clone()];
        let scores_ids = scores(ids_session.as_mut(), &ids_inputs)?;

        let k = options.k.min(batch);
        let want = top_k(&scores_dense, k)
            .into_iter()
            .map(|i| (candidates[i].to_string(), scores_dense[i]))
            .collect();
        let mut args: Vec<Vec<u8>> = vec![
            b"RECOMMEND".to_vec(),
            b"dlrm_dense".to_vec(),
            options.user.to_string().into_bytes(),
        ];
        args.extend([
            k.to_string().into_bytes(),
            b"CANDIDATES".to_vec(),
            batch.to_string().into_bytes(),
        ]);
        args.extend(candidates.iter().map(|c| c.to_string().into_bytes()));
        let tolerance = score_tolerance(&options.backend);
        let recommend = Workload::Recommend {
            args,
            want,
            tolerance,
        };
        let execute = Workload::Execute {
            dense,
            sparse,
            want: scores_ids,
            tolerance,
        };

        // Each server measurement follows the in-process one it is compared with, so the pair sees the same
        // machine; the rounds repeat the pairs and the medians drop the outliers a shared machine produces.
        let (mut local_dense, mut server_recommend, mut local_ids, mut server_execute) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..options.rounds {
            local_dense.push(in_process(
                dense_session.as_mut(),
                &recommend_inputs,
                options.seconds,
            )?);
            server_recommend.push(closed_loop(&options, &recommend)?);
            local_ids.push(in_process(
                ids_session.as_mut(),
                &ids_inputs,
                options.seconds,
            )?);
            server_execute.push(closed_loop(&options, &execute)?);
        }
        println!(
            "{}",
            summary_row("in-process dlrm_dense", batch, &local_dense, None)
        );
        println!(
            "{}",
            summary_row(
                "server RECOMMEND",
                batch,
                &server_recommend,
                Some(&local_dense)
            )
        );
        println!(
            "{}",
            summary_row("in-process dlrm", batch, &local_ids, None)
        );
        println!(
            "{}",
            summary_row(
                "server AI.MODELEXECUTE",
                batch,
                &server_execute,
                Some(&local_ids)
            )
        );

        let recommend_max = median(
            server_recommend
                .iter()
                .map(Measurement::samples_per_s)
                .collect(),
        );
        let rate = OPEN_LOOP_LOAD * recommend_max / batch as f64;
        let measured = open_loop(&options, &recommend, rate)?;
        let compute_us = median(local_dense.iter().map(|m| m.p50_us() as f64).collect()) as u64;
        let bound_us = options.max_delay_us + 2 * compute_us;
        open_loop_rows.push(format!(
            "| {batch} | {rate:.0} | {} | {} | {bound_us} | {} |",
            measured.latency_us.value_at_quantile(0.5),
            measured.latency_us.value_at_quantile(0.99),
            if measured.latency_us.value_at_quantile(0.99) <= bound_us {
                "yes"
            } else {
                "no"
            }
        ));
    }
    println!();
    println!("Open loop, RECOMMEND at 70% of the closed-loop maximum (the median above), one run (bound = max-delay-us {} + 2 x in-process p50):", options.max_delay_us);
    println!();
    println!("| batch | requests/s | p50 us | p99 us | bound us | p99 within bound |");
    println!("| ---: | ---: | ---: | ---: | ---: | --- |");
    for row in open_loop_rows {
        println!("{row}");
    }
    Ok(())
}
