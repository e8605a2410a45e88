//! Which backend runs a model, and building it: every backend is reached through ember-kernels'
//! `Backend` trait, so the batcher, RECOMMEND and AI.MODELEXECUTE never name one.
//!
//! | name           | runs on | what                                                            |
//! |----------------|---------|-----------------------------------------------------------------|
//! | `ort-cpu`      | CPU     | ONNX Runtime's CPU provider (any ONNX graph)                     |
//! | `ort-cuda`     | GPU     | ONNX Runtime's CUDA provider (needs the onnxruntime-gpu library) |
//! | `ort-tensorrt` | GPU     | ONNX Runtime's TensorRT provider, CUDA for the rest             |
//! | `native`       | GPU     | ember-kernels' CUDA engine (DLRMs as `models/generate.py` writes) |
//!
//! AI.MODELSTORE's device picks among them: `CPU` is `ort-cpu`, `GPU` and `GPU:n` are the GPU
//! backend configured (`--backend` when it names a GPU backend, else `ort-cuda`) on device n.

use std::path::{Path, PathBuf};

use ember_kernels::cuda::library::{CUBLASLT_WHEEL_LIBRARY, NVRTC_WHEEL_LIBRARY};
use ember_kernels::cuda::{self, EngineOptions};
use ember_kernels::{Backend, Device, ErrorKind, OrtRuntime, OrtSession, SessionConfig};

/// A backend kind, as `--backend` and `--model ...,backend=` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// ONNX Runtime, CPU provider.
    OrtCpu,
    /// ONNX Runtime, CUDA provider.
    OrtCuda,
    /// ONNX Runtime, TensorRT provider.
    OrtTensorRt,
    /// The native CUDA engine.
    Native,
}

/// Every kind, in the order start-up and errors list them.
pub const BACKEND_KINDS: [BackendKind; 4] = [
    BackendKind::OrtCpu,
    BackendKind::OrtCuda,
    BackendKind::OrtTensorRt,
    BackendKind::Native,
];

impl BackendKind {
    /// The name flags and INFO use.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::OrtCpu => "ort-cpu",
            BackendKind::OrtCuda => "ort-cuda",
            BackendKind::OrtTensorRt => "ort-tensorrt",
            BackendKind::Native => "native",
        }
    }

    /// Parses a name (case-insensitive).
    ///
    /// # Errors
    /// A message listing the names.
    pub fn parse(text: &str) -> Result<BackendKind, String> {
        BACKEND_KINDS
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let names: Vec<&str> = BACKEND_KINDS.iter().map(|kind| kind.name()).collect();
                format!("unknown backend '{text}' (expected {})", names.join(", "))
            })
    }

    /// True for the backends that run on a GPU.
    pub fn is_gpu(self) -> bool {
        self != BackendKind::OrtCpu
    }
}

/// A backend and, for a GPU backend, the device ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendChoice {
    /// Which backend.
    pub kind: BackendKind,
    /// The CUDA device ordinal (0 for the CPU backend).
    pub device_id: u32,
}

impl BackendChoice {
    /// `ort-cpu`, or `native:1`: the backend and device as errors and logs name them.
    pub fn label(&self) -> String {
        if self.kind.is_gpu() {
            format!("{}:{}", self.kind.name(), self.device_id)
        } else {
            self.kind.name().to_string()
        }
    }
}

/// How every "this backend is not on this machine" error starts, so that start-up can tell it from a bad model.
pub const UNAVAILABLE_PREFIX: &str = "ERR Could not load backend";

/// What building a backend needs besides the model.
pub struct BuildContext<'a> {
    /// The ONNX Runtime, loaded on first use (only the `ort-*` kinds call it).
    pub runtime: &'a dyn Fn() -> Result<OrtRuntime, String>,
    /// TensorRT's engine cache folder.
    pub tensorrt_cache: &'a Path,
    /// The largest batch the model runs at once (the native engine sizes its buffers and graphs for it).
    pub batch_rows_max: usize,
}

/// A setup-installed CUDA library (relative to the working directory, as `make run` starts ember from the
/// repository root), when it is there; otherwise the engine looks in $EMBER_NVRTC_LIB / $EMBER_CUBLASLT_LIB
/// and then the system's library path.
fn setup_library(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(relative);
    path.exists().then_some(path)
}

/// Engine options for the native backend on `device_id`, batches up to `batch_rows_max` per launch.
pub fn native_options(device_id: u32, batch_rows_max: usize) -> EngineOptions {
    EngineOptions {
        device_ordinal: device_id as usize,
        // One launch covers a whole batch where it can; past the engine's limit it splits the batch itself.
        batch_size_max: batch_rows_max.clamp(1, cuda::BATCH_SIZE_MAX_LIMIT),
        nvrtc_library: setup_library(NVRTC_WHEEL_LIBRARY),
        cublaslt_library: setup_library(CUBLASLT_WHEEL_LIBRARY),
        ..EngineOptions::default()
    }
}

/// Builds `choice` for the ONNX model `blob`.
///
/// # Errors
/// `ERR Could not load backend <label>: ...` when the backend is not on this machine (no GPU, no driver, no
/// CUDA library, a runtime without the provider) or its runtime cannot load; `ERR ...` when the model is
/// refused. The caller keeps serving either way.
pub fn build(
    choice: BackendChoice,
    blob: &[u8],
    context: &BuildContext<'_>,
) -> Result<Box<dyn Backend>, String> {
    let unavailable = |message: &dyn std::fmt::Display| {
        format!("{UNAVAILABLE_PREFIX} {}: {message}", choice.label())
    };
    let explain = |error: ember_kernels::Error| match error.kind() {
        ErrorKind::DeviceMissing
        | ErrorKind::ExecutionProvider
        | ErrorKind::RuntimeMissing
        | ErrorKind::RuntimeLoad => unavailable(&error),
        _ => format!("ERR {error}"),
    };
    let device = match choice.kind {
        BackendKind::Native => {
            let options = native_options(choice.device_id, context.batch_rows_max);
            let backend =
                ember_kernels::dlrm_backend::native_cuda(blob, &options).map_err(explain)?;
            return Ok(Box::new(backend));
        }
        BackendKind::OrtCpu => Device::Cpu,
        BackendKind::OrtCuda => Device::Cuda {
            device_id: choice.device_id,
        },
        BackendKind::OrtTensorRt => Device::TensorRt {
            device_id: choice.device_id,
            engine_cache_dir: context.tensorrt_cache.to_path_buf(),
        },
    };
    let runtime = (context.runtime)()?;
    if choice.kind.is_gpu() {
        let wanted = if choice.kind == BackendKind::OrtCuda {
            "cuda"
        } else {
            "tensorrt"
        };
        if !runtime.providers().contains(&wanted) {
            return Err(unavailable(&format!(
                "the ONNX Runtime at {} has no {wanted} provider (providers: {}); start ember with \
                 --ort-lib .deps/onnxruntime-gpu/libonnxruntime.so after `EMBER_ORT_GPU=1 make setup`",
                runtime.library_path().display(),
                runtime.providers().join(", ")
            )));
        }
    }
    let config = SessionConfig {
        device,
        ..SessionConfig::default()
    };
    let session = OrtSession::from_bytes(&runtime, blob, &config).map_err(explain)?;
    Ok(Box::new(session))
}

/// The devices and backends on this machine, for the start-up line and INFO: `cpu; gpu: none (...);
/// backends: ort-cpu`, or `cpu; gpu 0: NVIDIA H200 (sm_90, 141 GiB); backends: ort-cpu, native`.
/// Probing loads the CUDA driver and the configured ONNX Runtime; neither is required.
pub fn hardware_summary(ort_lib: Option<&Path>) -> String {
    let mut parts = vec!["cpu".to_string()];
    let mut gpu_count = 0;
    match cuda::probe(0) {
        Ok(_) => {
            // Ordinals are dense: list them until the first that is not there (bounded: a host has a handful).
            const GPU_LISTED_MAX: usize = 16;
            for ordinal in 0..GPU_LISTED_MAX {
                let Ok(device) = cuda::probe(ordinal) else {
                    break;
                };
                gpu_count += 1;
                parts.push(format!(
                    "gpu {ordinal}: {} (sm_{}{}, {} MiB)",
                    device.name,
                    device.compute_capability.0,
                    device.compute_capability.1,
                    device.memory_bytes >> 20
                ));
            }
        }
        Err(error) => {
            let nodes = nvidia_device_nodes();
            parts.push(format!(
                "gpu: none ({error}{})",
                if nodes > 0 {
                    format!("; {nodes} /dev/nvidia device nodes present")
                } else {
                    String::new()
                }
            ));
        }
    }
    let mut backends = Vec::new();
    let mut missing = Vec::new();
    match OrtRuntime::load(ort_lib) {
        Ok(runtime) => {
            let providers = runtime.providers();
            backends.push(format!(
                "ort-cpu (onnxruntime {})",
                runtime.version().unwrap_or("?")
            ));
            for (provider, kind) in [
                ("cuda", BackendKind::OrtCuda),
                ("tensorrt", BackendKind::OrtTensorRt),
            ] {
                if !providers.contains(&provider) {
                    missing.push(format!(
                        "{}: the onnxruntime library has no {provider} provider",
                        kind.name()
                    ));
                } else if gpu_count == 0 {
                    missing.push(format!("{}: no GPU", kind.name()));
                } else {
                    backends.push(kind.name().to_string());
                }
            }
        }
        Err(error) => missing.push(format!("ort-*: {error}")),
    }
    if gpu_count == 0 {
        missing.push("native: no GPU".to_string());
    } else {
        let libraries = cuda::library::require_nvrtc(setup_library(NVRTC_WHEEL_LIBRARY).as_deref())
            .and_then(|()| {
                cuda::library::require_cublaslt(setup_library(CUBLASLT_WHEEL_LIBRARY).as_deref())
            });
        match libraries {
            Ok(()) => backends.push("native".to_string()),
            Err(error) => missing.push(format!("native: {error}")),
        }
    }
    parts.push(format!(
        "backends: {}",
        if backends.is_empty() {
            "none".to_string()
        } else {
            backends.join(", ")
        }
    ));
    if !missing.is_empty() {
        parts.push(format!("unavailable: {}", missing.join("; ")));
    }
    parts.join("; ")
}

/// How many NVIDIA device nodes (`/dev/nvidia0`, `/dev/nvidiactl`, ...) this machine shows.
fn nvidia_device_nodes() -> usize {
    std::fs::read_dir("/dev").map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("nvidia"))
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for kind in BACKEND_KINDS {
            assert_eq!(BackendKind::parse(kind.name()), Ok(kind));
            assert_eq!(
                BackendKind::parse(&kind.name().to_ascii_uppercase()),
                Ok(kind)
            );
        }
        let error = BackendKind::parse("tpu").unwrap_err();
        assert_eq!(
            error,
            "unknown backend 'tpu' (expected ort-cpu, ort-cuda, ort-tensorrt, native)"
        );
    }

    #[test]
    fn labels_name_the_device_of_gpu_backends() {
        let cases = [
            (BackendKind::OrtCpu, 0, "ort-cpu"),
            (BackendKind::OrtCuda, 1, "ort-cuda:1"),
            (BackendKind::OrtTensorRt, 0, "ort-tensorrt:0"),
            (BackendKind::Native, 2, "native:2"),
        ];
        for (kind, device_id, label) in cases {
            assert_eq!(BackendChoice { kind, device_id }.label(), label);
        }
    }

    #[test]
    fn native_options_bound_the_batch() {
        let cases = [(0, 1), (256, 256), (usize::MAX, cuda::BATCH_SIZE_MAX_LIMIT)];
        for (rows, want) in cases {
            assert_eq!(native_options(3, rows).batch_size_max, want, "{rows}");
            assert_eq!(native_options(3, rows).device_ordinal, 3);
        }
    }
}
