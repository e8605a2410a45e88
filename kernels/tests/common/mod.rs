//! Helpers shared by the integration tests: where the models, test vectors and runtime library live.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use ember_kernels::{npy, Tensor};

/// The most a score may differ from the generator's numpy value.
pub const SCORE_TOLERANCE: f32 = 1e-5;

/// The variable that names the repository root where a test binary runs away from the tree that built it
/// (ci/gpu-check.sh carries prebuilt test binaries to a GPU machine and sets it there).
pub const REPO_ROOT_ENV: &str = "EMBER_REPO_ROOT";

/// With this variable set to 1 (ci/gpu-check.sh sets it on the GPU machine), a GPU test that would skip fails.
pub const REQUIRE_GPU_ENV: &str = "EMBER_REQUIRE_GPU";

pub fn repo_root() -> PathBuf {
    match std::env::var_os(REPO_ROOT_ENV) {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("kernels/ has a parent")
            .to_path_buf(),
    }
}

/// Says why a GPU test does not run here, or fails with that reason when $EMBER_REQUIRE_GPU is 1.
pub fn skip_gpu_test(reason: &str) {
    if std::env::var(REQUIRE_GPU_ENV).is_ok_and(|value| value == "1") {
        panic!("{REQUIRE_GPU_ENV}=1 but this GPU test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// A library that setup installs under .deps (`relative` to the repository root), where it is installed.
pub fn setup_library(relative: &str) -> Option<PathBuf> {
    let path = repo_root().join(relative);
    path.exists().then_some(path)
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

/// Largest absolute difference between two FLOAT tensors of the same shape; infinite when either holds a NaN.
pub fn max_abs_err(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    let (got, want) = (got.as_f32().expect("FLOAT"), want.as_f32().expect("FLOAT"));
    ember_kernels::compare::max_abs_difference(got, want)
}

/// True when this machine shows an NVIDIA device node.
pub fn has_nvidia_device() -> bool {
    Path::new("/dev/nvidia0").exists() || Path::new("/dev/nvidiactl").exists()
}
