//! Helpers shared by the integration tests: where the models, test vectors and runtime library live.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use ember_kernels::{npy, Tensor};

/// The most a score may differ from the generator's numpy value.
pub const SCORE_TOLERANCE: f32 = 1e-5;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("kernels/ has a parent")
        .to_path_buf()
}

pub fn model_path(name: &str) -> PathBuf {
    repo_root().join("models").join(format!("{name}.onnx"))
}

pub fn test_vector(case: &str, name: &str) -> Tensor {
    let path = repo_root()
        .join("models/testdata")
        .join(case)
        .join(format!("{name}.npy"));
    npy::read(&path).unwrap_or_else(|e| panic!("{e} (run `python3 models/generate.py`)"))
}

/// The CPU library: $ORT_DYLIB_PATH, else where `make setup` installs it. Missing is a test failure that says
/// how to fix it: the CPU path is part of `make test`, which runs setup first.
pub fn cpu_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let path = repo_root().join(ember_kernels::onnxruntime::SETUP_LIBRARY_PATH);
            assert!(
                path.exists(),
                "{} is missing: run `make setup` (or `bash ci/setup.sh`)",
                path.display()
            );
            path
        }
    }
}

/// Largest absolute difference between two FLOAT tensors of the same shape.
pub fn max_abs_err(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    let (got, want) = (got.as_f32().expect("FLOAT"), want.as_f32().expect("FLOAT"));
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// True when this machine shows an NVIDIA device node.
pub fn has_nvidia_device() -> bool {
    Path::new("/dev/nvidia0").exists() || Path::new("/dev/nvidiactl").exists()
}
