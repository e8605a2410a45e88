//! ONNX Runtime's CUDA and TensorRT execution providers against the generator's test vectors. Needs a GPU and the
//! onnxruntime-gpu library (`EMBER_ORT_GPU=1 make setup`, or EMBER_ORT_GPU_LIB); skips with a message without them
//! (and fails instead with EMBER_REQUIRE_GPU=1).
//! Its own test binary: a process loads one ONNX Runtime library, and this one loads the GPU build.

mod common;

use std::path::PathBuf;

use common::*;
use ember_kernels::{Backend, Device, OrtRuntime, OrtSession, SessionConfig, Tensor};

/// TensorRT builds FP32 engines with TF32 math allowed on Ampere and later GPUs (ONNX Runtime exposes no switch
/// for it), so its scores get a looser bound than the exact CPU and CUDA paths.
const TENSORRT_TOLERANCE: f32 = 2e-3;

fn gpu_library() -> Option<PathBuf> {
    if !has_nvidia_device() {
        skip_gpu_test("no NVIDIA GPU (/dev/nvidia0 and /dev/nvidiactl are absent)");
        return None;
    }
    let path = match std::env::var_os("EMBER_ORT_GPU_LIB") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo_root().join(ember_kernels::onnxruntime::SETUP_GPU_LIBRARY_PATH),
    };
    if !path.exists() {
        skip_gpu_test(&format!(
            "no onnxruntime-gpu library at {} (run `EMBER_ORT_GPU=1 make setup`, or set EMBER_ORT_GPU_LIB)",
            path.display()
        ));
        return None;
    }
    Some(path)
}

fn check_device(runtime: &OrtRuntime, device: Device, tolerance: f32) {
    let config = SessionConfig {
        device: device.clone(),
        ..SessionConfig::default()
    };
    let mut session = OrtSession::from_file(runtime, &model_path("dlrm_dense"), &config)
        .unwrap_or_else(|e| panic!("{}: {e}", device.name()));
    let inputs: Vec<Tensor> = ["dense", "pooled"]
        .iter()
        .map(|n| test_vector("dlrm_dense", n))
        .collect();
    let scores = session
        .run(&inputs)
        .unwrap_or_else(|e| panic!("{}: {e}", device.name()))
        .remove(0);
    let err = max_abs_err(&scores, &test_vector("dlrm_dense", "score"));
    eprintln!("{}: max abs err {err:.3e}", device.name());
    assert!(
        err <= tolerance,
        "{}: max abs err {err} > {tolerance}",
        device.name()
    );
}

#[test]
fn cuda_and_tensorrt_match_the_generator() {
    let Some(library) = gpu_library() else { return };
    let runtime = OrtRuntime::load(Some(&library)).expect("load onnxruntime-gpu");
    check_device(&runtime, Device::Cuda { device_id: 0 }, SCORE_TOLERANCE);
    let cache = std::env::temp_dir().join(format!("ember-trt-{}", std::process::id()));
    check_device(
        &runtime,
        Device::TensorRt {
            device_id: 0,
            engine_cache_dir: cache.clone(),
        },
        TENSORRT_TOLERANCE,
    );
    let cached = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert!(
        cached > 0,
        "TensorRT wrote no engine into {}",
        cache.display()
    );
    let _ = std::fs::remove_dir_all(cache);
}
