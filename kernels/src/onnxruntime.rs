//! The ONNX Runtime backend, through the `ort` crate with `load-dynamic`: nothing links against ONNX Runtime at
//! build time; [`OrtRuntime::load`] opens the library from the onnxruntime wheel (CPU) or the onnxruntime-gpu
//! wheel (CUDA and TensorRT execution providers) at run time, and every session comes from a loaded runtime, so
//! no `ort` call can run before the library is there (`ort` panics in that case; we never let it).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::ep;
use ort::session::{Session, SessionInputValue};
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::backend::{check_inputs, Backend, TensorSpec};
use crate::error::{Error, ErrorKind, Result};
use crate::tensor::{DataType, Tensor, TensorData, TensorView};

/// The environment variable that names the library when no explicit path is given (the same one `ort` reads).
pub const LIBRARY_PATH_ENV: &str = "ORT_DYLIB_PATH";

/// Where `make setup` puts the CPU library, relative to the repository root.
pub const SETUP_LIBRARY_PATH: &str = ".deps/onnxruntime/libonnxruntime.so";

/// Where `EMBER_ORT_GPU=1 make setup` puts the GPU library (CUDA and TensorRT providers beside it).
pub const SETUP_GPU_LIBRARY_PATH: &str = ".deps/onnxruntime-gpu/libonnxruntime.so";

/// What to do about a missing runtime; every such error ends with it.
const FIX_HINT: &str = "run `make setup` (it installs the onnxruntime 1.31 wheel into .deps/onnxruntime), then pass \
                        --ort-lib .deps/onnxruntime/libonnxruntime.so or set ORT_DYLIB_PATH to that file";

/// Intra-op threads per session by default: one, because a shard's core is the unit of parallelism.
pub const INTRA_OP_THREADS_DEFAULT: usize = 1;

/// A loaded ONNX Runtime library and its one process-wide environment. Cheap to clone; shards share it (it is
/// read-only configuration) and each builds its own sessions from it.
#[derive(Clone, Debug)]
pub struct OrtRuntime {
    inner: Arc<RuntimeInner>,
}

#[derive(Debug)]
struct RuntimeInner {
    path: PathBuf,
    environment: ort::environment::Environment,
}

/// ONNX Runtime allows one library and one environment per process; this holds them once loaded.
static LOADED: Mutex<Option<OrtRuntime>> = Mutex::new(None);

impl OrtRuntime {
    /// Loads ONNX Runtime from `path`, or from `$ORT_DYLIB_PATH` when `path` is `None`. Loading the same library
    /// again returns the runtime already loaded.
    ///
    /// # Errors
    /// [`ErrorKind::RuntimeMissing`] when no path is configured or nothing is at the path;
    /// [`ErrorKind::RuntimeLoad`] when the file is not an ONNX Runtime library of version 1.31 or later, or when a
    /// different library is already loaded in this process. Every message says how to fix it.
    pub fn load(path: Option<&Path>) -> Result<OrtRuntime> {
        let path = match path {
            Some(path) => path.to_path_buf(),
            None => match std::env::var_os(LIBRARY_PATH_ENV) {
                Some(value) if !value.is_empty() => PathBuf::from(value),
                _ => {
                    return Err(Error::new(
                        ErrorKind::RuntimeMissing,
                        format!("ONNX Runtime library not configured (no --ort-lib, {LIBRARY_PATH_ENV} unset): {FIX_HINT}"),
                    ))
                }
            },
        };
        let resolved = std::fs::canonicalize(&path).map_err(|e| {
            Error::new(
                ErrorKind::RuntimeMissing,
                format!(
                    "ONNX Runtime library not found at {}: {e}; {FIX_HINT}",
                    path.display()
                ),
            )
        })?;
        // A poisoned lock only means another thread panicked mid-load; the Option inside is still consistent.
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(runtime) = loaded.as_ref() {
            if runtime.inner.path == resolved {
                return Ok(runtime.clone());
            }
            return Err(Error::new(
                ErrorKind::RuntimeLoad,
                format!(
                    "ONNX Runtime is already loaded from {} in this process; cannot also load {} (one library per process)",
                    runtime.inner.path.display(),
                    resolved.display()
                ),
            ));
        }
        let builder = ort::init_from(&resolved).map_err(|e| {
            Error::new(
                ErrorKind::RuntimeLoad,
                format!(
                    "cannot load ONNX Runtime from {}: {e}; {FIX_HINT}",
                    path.display()
                ),
            )
        })?;
        let environment = builder
            .with_name("ember")
            .with_telemetry(false)
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::RuntimeLoad,
                    format!("cannot start ONNX Runtime: {e}"),
                )
            })?;
        let runtime = OrtRuntime {
            inner: Arc::new(RuntimeInner {
                path: resolved,
                environment,
            }),
        };
        *loaded = Some(runtime.clone());
        Ok(runtime)
    }

    /// The library file this runtime was loaded from (symbolic links resolved).
    pub fn library_path(&self) -> &Path {
        &self.inner.path
    }

    /// The library's version as its file name gives it (`libonnxruntime.so.1.31.1`: `1.31.1`); the wheel's
    /// library always carries it, and `ort` checked at load that the API is at least 1.31.
    pub fn version(&self) -> Option<&str> {
        self.inner
            .path
            .file_name()?
            .to_str()?
            .strip_prefix("libonnxruntime.so.")
    }

    /// The execution providers this library was built with, of those Ember uses: `cpu` always, `cuda` and
    /// `tensorrt` in the onnxruntime-gpu build. Built with does not mean usable: registering CUDA still needs a
    /// GPU and the CUDA libraries, which a session reports as [`ErrorKind::ExecutionProvider`].
    pub fn providers(&self) -> Vec<&'static str> {
        use ort::ep::ExecutionProvider;
        let mut providers = vec!["cpu"];
        // An error here means ONNX Runtime could not list its providers; report what is known.
        if ep::CUDA::is_available().unwrap_or(false) {
            providers.push("cuda");
        }
        if ep::TensorRT::is_available().unwrap_or(false) {
            providers.push("tensorrt");
        }
        providers
    }

    /// ONNX Runtime's build description (commit, flags).
    pub fn build_info(&self) -> &'static str {
        ort::info()
    }
}

/// Where a session runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// The CUDA execution provider on one GPU (needs the onnxruntime-gpu library).
    Cuda {
        /// The CUDA device ordinal.
        device_id: u32,
    },
    /// The TensorRT execution provider on one GPU, with CUDA for nodes TensorRT does not take. Built engines are
    /// cached on disk so that a restart does not rebuild them (minutes for large models).
    TensorRt {
        /// The CUDA device ordinal.
        device_id: u32,
        /// Folder for TensorRT's engine and timing caches; created when missing.
        engine_cache_dir: PathBuf,
    },
}

impl Device {
    /// A short name for INFO and errors: `cpu`, `cuda:0`, `tensorrt:0`.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda { device_id } => format!("cuda:{device_id}"),
            Device::TensorRt { device_id, .. } => format!("tensorrt:{device_id}"),
        }
    }
}

/// How to build a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Where the session runs.
    pub device: Device,
    /// Intra-op threads ([`INTRA_OP_THREADS_DEFAULT`]: one per shard).
    pub intra_op_threads: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            device: Device::Cpu,
            intra_op_threads: INTRA_OP_THREADS_DEFAULT,
        }
    }
}

/// One model in one ONNX Runtime session: the [`Backend`] a shard runs.
pub struct OrtSession {
    session: Session,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    device_name: String,
}

impl std::fmt::Debug for OrtSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtSession")
            .field("device", &self.device_name)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

fn ort_error(kind: ErrorKind, context: &str, error: impl std::fmt::Display) -> Error {
    Error::new(kind, format!("{context}: {error}"))
}

/// CUDA with TF32 off: FP32 models keep FP32 math, so GPU scores match the CPU's within the test tolerance.
fn cuda_provider(device_id: u32) -> ep::ExecutionProviderDispatch {
    ep::CUDA::default()
        .with_device_id(device_id as i32)
        .with_tf32(false)
        .build()
        .error_on_failure()
}

/// The providers for a device, each set to fail loudly: a GPU session that cannot get its GPU is an error, never a
/// CPU session in disguise.
fn execution_providers(device: &Device) -> Result<Vec<ep::ExecutionProviderDispatch>> {
    Ok(match device {
        Device::Cpu => Vec::new(),
        Device::Cuda { device_id } => vec![cuda_provider(*device_id)],
        Device::TensorRt {
            device_id,
            engine_cache_dir,
        } => {
            std::fs::create_dir_all(engine_cache_dir).map_err(|e| {
                Error::new(
                    ErrorKind::ExecutionProvider,
                    format!(
                        "cannot create the TensorRT engine cache {}: {e}",
                        engine_cache_dir.display()
                    ),
                )
            })?;
            let cache = engine_cache_dir.display().to_string();
            vec![
                ep::TensorRT::default()
                    .with_device_id(*device_id as i32)
                    .with_engine_cache(true)
                    .with_engine_cache_path(&cache)
                    .with_timing_cache(true)
                    .with_timing_cache_path(&cache)
                    .build()
                    .error_on_failure(),
                cuda_provider(*device_id),
            ]
        }
    })
}

fn data_type(ty: TensorElementType) -> Option<DataType> {
    match ty {
        TensorElementType::Float32 => Some(DataType::Float),
        TensorElementType::Float64 => Some(DataType::Double),
        TensorElementType::Int32 => Some(DataType::Int32),
        TensorElementType::Int64 => Some(DataType::Int64),
        _ => None,
    }
}

fn tensor_spec(name: &str, value_type: &ValueType) -> Result<TensorSpec> {
    let ValueType::Tensor { ty, shape, .. } = value_type else {
        return Err(Error::new(
            ErrorKind::InvalidModel,
            format!("model value '{name}' is not a tensor ({value_type})"),
        ));
    };
    let dtype = data_type(*ty).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidModel,
            format!("model value '{name}' has element type {ty}; Ember serves FLOAT, DOUBLE, INT32 and INT64"),
        )
    })?;
    let shape = shape.iter().map(|&d| usize::try_from(d).ok()).collect();
    Ok(TensorSpec {
        name: name.to_string(),
        dtype,
        shape,
    })
}

impl OrtSession {
    /// Builds a session from model bytes (an ONNX protobuf).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidModel`] when the bytes are not a model ONNX Runtime accepts or the model has inputs or
    /// outputs of a type Ember does not serve; [`ErrorKind::ExecutionProvider`] when the device's provider cannot be
    /// registered.
    pub fn from_bytes(
        runtime: &OrtRuntime,
        model: &[u8],
        config: &SessionConfig,
    ) -> Result<OrtSession> {
        if model.is_empty() {
            return Err(Error::new(ErrorKind::InvalidModel, "model blob is empty"));
        }
        let providers = execution_providers(&config.device)?;
        let builder = Session::builder(&runtime.inner.environment)
            .map_err(|e| ort_error(ErrorKind::InvalidModel, "cannot create session options", e))?;
        let builder = builder
            .with_intra_threads(config.intra_op_threads.max(1))
            .map_err(|e| ort_error(ErrorKind::InvalidModel, "cannot set intra-op threads", e))?;
        let builder = builder
            .with_inter_threads(1)
            .map_err(|e| ort_error(ErrorKind::InvalidModel, "cannot set inter-op threads", e))?;
        let mut builder = builder.with_execution_providers(&providers).map_err(|e| {
            ort_error(
                ErrorKind::ExecutionProvider,
                &format!(
                    "cannot register the {} execution provider",
                    config.device.name()
                ),
                e,
            )
        })?;
        let session = builder
            .commit_from_memory(model)
            .map_err(|e| ort_error(ErrorKind::InvalidModel, "ONNX Runtime refused the model", e))?;
        let inputs = session
            .inputs()
            .iter()
            .map(|o| tensor_spec(o.name(), o.dtype()))
            .collect::<Result<Vec<_>>>()?;
        let outputs = session
            .outputs()
            .iter()
            .map(|o| tensor_spec(o.name(), o.dtype()))
            .collect::<Result<Vec<_>>>()?;
        let device_name = format!("onnxruntime-{}", config.device.name());
        Ok(OrtSession {
            session,
            inputs,
            outputs,
            device_name,
        })
    }

    /// Builds a session from a model file.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the file cannot be read, then as [`OrtSession::from_bytes`].
    pub fn from_file(
        runtime: &OrtRuntime,
        path: &Path,
        config: &SessionConfig,
    ) -> Result<OrtSession> {
        let model = std::fs::read(path).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot read model {}: {e}", path.display()),
            )
        })?;
        OrtSession::from_bytes(runtime, &model, config)
    }
}

/// Rows of a tensor as an ONNX Runtime input that borrows the elements in place (no copy).
fn input_value(tensor: &Tensor, rows: std::ops::Range<usize>) -> Result<SessionInputValue<'_>> {
    let (shape, view) = tensor.rows_view(rows)?;
    let value: SessionInputValue<'_> = match view {
        TensorView::Float(v) => TensorRef::from_array_view((shape, v)).map(Into::into),
        TensorView::Double(v) => TensorRef::from_array_view((shape, v)).map(Into::into),
        TensorView::Int32(v) => TensorRef::from_array_view((shape, v)).map(Into::into),
        TensorView::Int64(v) => TensorRef::from_array_view((shape, v)).map(Into::into),
    }
    .map_err(|e| ort_error(ErrorKind::InvalidTensor, "cannot wrap an input tensor", e))?;
    Ok(value)
}

fn output_tensor(spec: &TensorSpec, value: &ort::value::DynValue) -> Result<Tensor> {
    fn extract<T: ort::value::PrimitiveTensorElementType + Copy + std::fmt::Debug>(
        value: &ort::value::DynValue,
        name: &str,
    ) -> Result<(Vec<usize>, Vec<T>)> {
        let (shape, data) = value.try_extract_tensor::<T>().map_err(|e| {
            ort_error(
                ErrorKind::Inference,
                &format!("cannot read output '{name}'"),
                e,
            )
        })?;
        let shape = shape
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(0))
            .collect();
        Ok((shape, data.to_vec()))
    }
    let (shape, data) = match spec.dtype {
        DataType::Float => {
            extract::<f32>(value, &spec.name).map(|(s, d)| (s, TensorData::Float(d)))?
        }
        DataType::Double => {
            extract::<f64>(value, &spec.name).map(|(s, d)| (s, TensorData::Double(d)))?
        }
        DataType::Int32 => {
            extract::<i32>(value, &spec.name).map(|(s, d)| (s, TensorData::Int32(d)))?
        }
        DataType::Int64 => {
            extract::<i64>(value, &spec.name).map(|(s, d)| (s, TensorData::Int64(d)))?
        }
    };
    Tensor::new(shape, data)
}

impl Backend for OrtSession {
    fn device_name(&self) -> &str {
        &self.device_name
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let rows = inputs.first().map_or(0, Tensor::batch_len);
        self.run_rows(inputs, 0..rows)
    }

    fn run_rows(&mut self, inputs: &[Tensor], rows: std::ops::Range<usize>) -> Result<Vec<Tensor>> {
        check_inputs(&self.inputs, inputs)?;
        let values = inputs
            .iter()
            .map(|t| input_value(t, rows.clone()))
            .collect::<Result<Vec<_>>>()?;
        let outputs = self.session.run(values.as_slice()).map_err(|e| {
            ort_error(
                ErrorKind::Inference,
                "ONNX Runtime failed to run the model",
                e,
            )
        })?;
        self.outputs
            .iter()
            .enumerate()
            .map(|(i, spec)| output_tensor(spec, &outputs[i]))
            .collect()
    }
}
