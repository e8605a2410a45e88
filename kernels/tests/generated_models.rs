//! The CPU reference, and the native CUDA engine where a GPU is, on the demo models that
//! `models/generate.py` writes, against the scores numpy computed for its test vectors
//! (max abs error 1e-5). The weights come out of the ONNX files through
//! `ember_kernels::onnx_weights`, so this also checks that reader on the real models.
//!
//! The models live in `models/` (or `$EMBER_MODELS_DIR`); they are committed, so a missing one
//! fails. The GPU half skips where there is no GPU, with its reason (and
//! fails instead with EMBER_REQUIRE_GPU=1, as ci/gpu-check.sh sets on a GPU machine).

mod common;

use std::path::PathBuf;

use ember_kernels::cuda::library::{CUBLASLT_WHEEL_LIBRARY, NVRTC_WHEEL_LIBRARY};
use ember_kernels::cuda::{self, CudaErrorKind, DlrmEngine, EngineOptions};
use ember_kernels::dlrm::{one_id_per_bag_offsets, DlrmModel, Pooling, SparseBags};
use ember_kernels::onnx_weights::dlrm_from_onnx;
use ember_kernels::reference;

const TOLERANCE: f32 = 1e-5;

fn models_dir() -> PathBuf {
    std::env::var_os("EMBER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo_root().join("models"))
}

/// The model and the directory of its test vectors, or None after printing why.
fn load(model: &str) -> Option<(DlrmModel, PathBuf)> {
    let path = models_dir().join(format!("{model}.onnx"));
    // The models are committed: a missing one is a broken checkout, not a reason to skip.
    let bytes = std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error} (the demo models are committed in models/)",
            path.display()
        )
    });
    let dlrm = dlrm_from_onnx(&bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    Some((dlrm, models_dir().join("testdata").join(model)))
}

/// A numpy array: its shape and little-endian values as f32 or i64.
struct Array {
    shape: Vec<usize>,
    floats: Vec<f32>,
    ints: Vec<i64>,
}

/// Reads a C-order `.npy` of `<f4` or `<i8` (format 1.0 to 3.0): enough for the test vectors.
fn read_npy(path: &PathBuf) -> Array {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}: not .npy", path.display());
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap())
        .collect();
    let data = &bytes[header_start + header_len..];
    let (mut floats, mut ints) = (Vec::new(), Vec::new());
    if header.contains("'<f4'") {
        floats = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
    } else if header.contains("'<i8'") {
        ints = data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
    } else {
        panic!("{}: unsupported dtype in {header}", path.display());
    }
    Array {
        shape,
        floats,
        ints,
    }
}

/// Infinite when either side holds a NaN, so that `<= TOLERANCE` fails.
fn max_abs_error(got: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(got.len(), expected.len());
    ember_kernels::compare::max_abs_difference(got, expected)
}

/// The GPU engine for `model`, or None after printing why it cannot run here.
fn engine(model: &DlrmModel) -> Option<DlrmEngine> {
    if let Err(error) = cuda::probe(0) {
        assert!(
            matches!(
                error.kind(),
                CudaErrorKind::NoDriver | CudaErrorKind::NoDevice
            ),
            "{error}"
        );
        common::skip_gpu_test(&format!("the GPU half: {error}"));
        return None;
    }
    let options = EngineOptions {
        batch_size_max: 16,
        nvrtc_library: common::setup_library(NVRTC_WHEEL_LIBRARY),
        cublaslt_library: common::setup_library(CUBLASLT_WHEEL_LIBRARY),
        ..EngineOptions::default()
    };
    Some(DlrmEngine::new(model, &options).unwrap())
}

#[test]
fn dense_model_matches_numpy() {
    let Some((model, testdata)) = load("dlrm_dense") else {
        return;
    };
    assert_eq!(model.dense_feature_count(), 13);
    assert_eq!(model.sparse_feature_count(), 26);
    assert_eq!(model.embedding_dim(), 64);
    let dense = read_npy(&testdata.join("dense.npy"));
    let pooled = read_npy(&testdata.join("pooled.npy"));
    let expected = read_npy(&testdata.join("score.npy"));
    assert_eq!(pooled.shape[1..], [26, 64]);
    let scores = reference::score_pooled(&model, &dense.floats, &pooled.floats).unwrap();
    let error = max_abs_error(&scores, &expected.floats);
    eprintln!(
        "reference, dlrm_dense, {} samples: max abs error {error:e}",
        scores.len()
    );
    assert!(error <= TOLERANCE, "reference vs numpy: {error}");

    if let Some(mut engine) = engine(&model) {
        let mut gpu_scores = vec![f32::NAN; scores.len()];
        engine
            .score_pooled(&dense.floats, &pooled.floats, &mut gpu_scores)
            .unwrap();
        let error = max_abs_error(&gpu_scores, &expected.floats);
        eprintln!("cuda, dlrm_dense: max abs error {error:e}");
        assert!(error <= TOLERANCE, "cuda vs numpy: {error}");
    }
}

#[test]
fn ids_model_matches_numpy() {
    let Some((model, testdata)) = load("dlrm") else {
        return;
    };
    assert!(model.tables().is_some(), "dlrm.onnx should hold its tables");
    let dense = read_npy(&testdata.join("dense.npy"));
    let sparse = read_npy(&testdata.join("sparse.npy"));
    let expected = read_npy(&testdata.join("score.npy"));
    let ids: Vec<u32> = sparse
        .ints
        .iter()
        .map(|&id| u32::try_from(id).unwrap())
        .collect();
    let offsets = one_id_per_bag_offsets(ids.len());
    let bags = SparseBags {
        offsets: &offsets,
        ids: &ids,
    };
    let scores = reference::score_bags(&model, &dense.floats, &bags, Pooling::Sum).unwrap();
    let error = max_abs_error(&scores, &expected.floats);
    eprintln!(
        "reference, dlrm, {} samples: max abs error {error:e}",
        scores.len()
    );
    assert!(error <= TOLERANCE, "reference vs numpy: {error}");

    if let Some(mut engine) = engine(&model) {
        let mut gpu_scores = vec![f32::NAN; scores.len()];
        engine
            .score_bags(&dense.floats, &bags, &mut gpu_scores)
            .unwrap();
        let error = max_abs_error(&gpu_scores, &expected.floats);
        eprintln!("cuda, dlrm: max abs error {error:e}");
        assert!(error <= TOLERANCE, "cuda vs numpy: {error}");
    }
}

/// The native engine behind the `Backend` trait (how the server runs it) on both demo models.
#[test]
fn native_backend_matches_numpy() {
    use ember_kernels::{Backend, Tensor, TensorData};
    if let Err(error) = cuda::probe(0) {
        common::skip_gpu_test(&format!("the native backend: {error}"));
        return;
    }
    let options = EngineOptions {
        batch_size_max: 16,
        nvrtc_library: common::setup_library(NVRTC_WHEEL_LIBRARY),
        cublaslt_library: common::setup_library(CUBLASLT_WHEEL_LIBRARY),
        ..EngineOptions::default()
    };
    for (model, second) in [("dlrm", "sparse"), ("dlrm_dense", "pooled")] {
        let bytes = std::fs::read(models_dir().join(format!("{model}.onnx"))).unwrap();
        let mut backend = ember_kernels::dlrm_backend::native_cuda(&bytes, &options).unwrap();
        assert_eq!(backend.device_name(), "native-cuda:0");
        let testdata = models_dir().join("testdata").join(model);
        let tensor = |name: &str| {
            let array = read_npy(&testdata.join(format!("{name}.npy")));
            let data = if array.floats.is_empty() {
                TensorData::Int64(array.ints)
            } else {
                TensorData::Float(array.floats)
            };
            Tensor::new(array.shape, data).unwrap()
        };
        let scores = backend.run(&[tensor("dense"), tensor(second)]).unwrap();
        let expected = read_npy(&testdata.join("score.npy"));
        let error = max_abs_error(scores[0].as_f32().unwrap(), &expected.floats);
        eprintln!("native backend, {model}: max abs error {error:e}");
        assert!(
            error <= TOLERANCE,
            "native backend vs numpy, {model}: {error}"
        );
    }
}
