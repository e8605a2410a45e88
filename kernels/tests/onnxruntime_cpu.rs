//! The ONNX Runtime CPU backend against the generator's numpy test vectors, and its errors.

mod common;

use common::*;
use ember_kernels::{
    Backend, DataType, Device, ErrorKind, OrtRuntime, OrtSession, SessionConfig, Tensor, TensorData,
};

fn runtime() -> OrtRuntime {
    OrtRuntime::load(Some(&cpu_library())).expect("load the CPU runtime")
}

fn session(model: &str) -> OrtSession {
    OrtSession::from_file(&runtime(), &model_path(model), &SessionConfig::default())
        .expect("load the model")
}

#[test]
fn scores_match_the_generator_for_both_models() {
    let cases = [
        ("dlrm", ["dense", "sparse"]),
        ("dlrm_dense", ["dense", "pooled"]),
    ];
    for (model, inputs) in cases {
        let mut session = session(model);
        let inputs: Vec<Tensor> = inputs.iter().map(|name| test_vector(model, name)).collect();
        let outputs = session.run(&inputs).expect("run");
        let want = test_vector(model, "score");
        let err = max_abs_err(&outputs[0], &want);
        eprintln!("{model}: max abs err {err:.3e} over {} scores", want.len());
        assert!(
            err <= SCORE_TOLERANCE,
            "{model}: max abs err {err} > {SCORE_TOLERANCE}"
        );
    }
}

#[test]
fn the_signature_is_what_the_generator_declares() {
    let session = session("dlrm_dense");
    let inputs: Vec<(String, DataType, String)> = session
        .inputs()
        .iter()
        .map(|s| (s.name.clone(), s.dtype, s.shape_text()))
        .collect();
    assert_eq!(
        inputs,
        vec![
            ("dense".to_string(), DataType::Float, "[?, 13]".to_string()),
            (
                "pooled".to_string(),
                DataType::Float,
                "[?, 26, 64]".to_string()
            ),
        ]
    );
    assert_eq!(session.outputs()[0].name, "score");
    assert_eq!(session.device_name(), "onnxruntime-cpu");
}

#[test]
fn each_row_scores_the_same_alone_as_in_a_batch() {
    let mut session = session("dlrm");
    let dense = test_vector("dlrm", "dense");
    let sparse = test_vector("dlrm", "sparse");
    let batched = session
        .run(&[dense.clone(), sparse.clone()])
        .unwrap()
        .remove(0);
    let ones = vec![1; dense.batch_len()];
    let rows = dense
        .split_batch(&ones)
        .unwrap()
        .into_iter()
        .zip(sparse.split_batch(&ones).unwrap());
    let singles: Vec<Tensor> = rows
        .map(|(d, s)| session.run(&[d, s]).unwrap().remove(0))
        .collect();
    let joined = Tensor::concat_batch(&singles.iter().collect::<Vec<_>>()).unwrap();
    assert!(max_abs_err(&joined, &batched) <= SCORE_TOLERANCE);
    // Rows read in place give the same scores as those rows of the whole batch.
    let middle = session.run_rows(&[dense, sparse], 3..7).unwrap().remove(0);
    assert!(max_abs_err(&middle, &batched.rows(3..7).unwrap()) <= SCORE_TOLERANCE);
}

#[test]
fn malformed_models_are_errors() {
    let runtime = runtime();
    let model = std::fs::read(model_path("dlrm_dense")).unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty", Vec::new()),
        ("text", b"this is not an onnx model".to_vec()),
        ("truncated", model[..model.len() / 2].to_vec()),
        (
            "random bytes",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
    ];
    for (name, bytes) in cases {
        let err =
            OrtSession::from_bytes(&runtime, &bytes, &SessionConfig::default()).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidModel, "{name}: {err}");
        eprintln!("{name}: {err}");
    }
    // The runtime keeps working after refusing them.
    assert!(OrtSession::from_bytes(&runtime, &model, &SessionConfig::default()).is_ok());
}

#[test]
fn wrong_inputs_are_errors_that_name_the_input() {
    let mut session = session("dlrm");
    let dense = test_vector("dlrm", "dense");
    let sparse = test_vector("dlrm", "sparse");
    let sparse_as_int32 = Tensor::new(
        sparse.shape().to_vec(),
        TensorData::Int32(vec![0; sparse.len()]),
    )
    .unwrap();
    let narrow = Tensor::new(vec![16, 12], TensorData::Float(vec![0.0; 16 * 12])).unwrap();
    let short_batch = Tensor::new(vec![2, 26], TensorData::Int64(vec![0; 52])).unwrap();
    let cases: Vec<(&str, Vec<Tensor>, &str)> = vec![
        (
            "missing input",
            vec![dense.clone()],
            "model expects 2 inputs, got 1",
        ),
        (
            "wrong type",
            vec![dense.clone(), sparse_as_int32],
            "input 'sparse' expects INT64, got INT32",
        ),
        (
            "wrong width",
            vec![narrow, sparse.clone()],
            "input 'dense' expects shape [?, 13], got [16, 12]",
        ),
        (
            "batch lengths differ",
            vec![dense.clone(), short_batch],
            "input 'sparse' has batch length 2",
        ),
    ];
    for (name, inputs, want) in cases {
        let err = session.run(&inputs).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InputMismatch, "{name}: {err}");
        assert!(err.to_string().contains(want), "{name}: {err}");
    }
    // An id past the table is ONNX Runtime's error, reported, not a crash.
    let bad_ids = Tensor::new(vec![1, 26], TensorData::Int64(vec![1 << 40; 26])).unwrap();
    let one_dense = dense.split_batch(&[1, 15]).unwrap().remove(0);
    let err = session
        .run(&[one_dense, bad_ids])
        .expect_err("ids out of range");
    assert_eq!(err.kind(), ErrorKind::Inference, "{err}");
    // And the session still serves.
    assert!(session.run(&[dense, sparse]).is_ok());
}

#[test]
fn gpu_providers_fail_loudly_instead_of_falling_back_to_cpu() {
    // The CPU wheel's library has no CUDA or TensorRT provider, so registering either fails on every machine,
    // with a GPU or without: this test never skips (tests/onnxruntime_gpu.rs runs the providers with the GPU
    // library).
    let runtime = runtime();
    let model = std::fs::read(model_path("dlrm_dense")).unwrap();
    let cache = std::env::temp_dir().join(format!("ember-trt-cache-{}", std::process::id()));
    for device in [
        Device::Cuda { device_id: 0 },
        Device::TensorRt {
            device_id: 0,
            engine_cache_dir: cache.clone(),
        },
    ] {
        let config = SessionConfig {
            device: device.clone(),
            ..SessionConfig::default()
        };
        let err = OrtSession::from_bytes(&runtime, &model, &config)
            .expect_err("the CPU library has no GPU provider");
        assert_eq!(
            err.kind(),
            ErrorKind::ExecutionProvider,
            "{}: {err}",
            device.name()
        );
        eprintln!("{}: {err}", device.name());
    }
    assert!(
        cache.is_dir(),
        "the TensorRT engine cache folder is created before registration"
    );
    let _ = std::fs::remove_dir_all(cache);
}

#[test]
fn recommend_layout_reproduces_the_generator_scores() {
    use ember_kernels::recommend::{top_k, Layout};
    let layout = Layout::DEMO;
    let tables = ember_kernels::npy::read(&repo_root().join("models/dlrm_embeddings.npy")).unwrap();
    let user_dense =
        ember_kernels::npy::read(&repo_root().join("models/dlrm_user_dense.npy")).unwrap();
    let (tables, user_dense) = (tables.as_f32().unwrap(), user_dense.as_f32().unwrap());
    let rows_per_table = tables.len() / (layout.fields * layout.embedding_dim);
    let row = |field: usize, id: usize| {
        let start = (field * rows_per_table + id) * layout.embedding_dim;
        tables[start..start + layout.embedding_dim].to_vec()
    };
    let user = test_vector("recommend", "user");
    let user = match user.data() {
        TensorData::Int64(v) => v[0] as usize,
        other => panic!("user id is {other:?}"),
    };
    let TensorData::Int64(candidates) = test_vector("recommend", "candidates").into_data() else {
        panic!("ids")
    };
    let user_rows: Vec<Vec<f32>> = layout.user_fields().map(|f| row(f, user)).collect();
    let candidate_rows: Vec<Vec<Vec<f32>>> = candidates
        .iter()
        .map(|&c| {
            layout
                .candidate_fields()
                .map(|f| row(f, c as usize))
                .collect()
        })
        .collect();
    let dense = &user_dense[user * layout.dense_len..(user + 1) * layout.dense_len];
    let inputs = layout.assemble(dense, &user_rows, &candidate_rows).unwrap();
    let scores = session("dlrm_dense").run(&inputs).unwrap().remove(0);
    let want = test_vector("recommend", "score");
    assert!(max_abs_err(&scores, &want) <= SCORE_TOLERANCE);
    let top = top_k(scores.as_f32().unwrap(), 5);
    assert_eq!(top, top_k(want.as_f32().unwrap(), 5));
}

#[test]
fn demo_rows_name_every_key_once() {
    let rows = ember_kernels::recommend::demo_rows(&repo_root().join("models")).unwrap();
    let layout = ember_kernels::recommend::Layout::DEMO;
    assert_eq!(rows.len(), 128 * (layout.fields + 1));
    let keys: std::collections::HashSet<&[u8]> = rows.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys.len(), rows.len());
    let (key, value) = rows.iter().find(|(k, _)| k == b"emb:25:127").unwrap();
    assert_eq!((key.len(), value.len()), (10, layout.embedding_dim * 4));
    assert!(rows
        .iter()
        .any(|(k, v)| k == b"dense:0" && v.len() == layout.dense_len * 4));
}

#[test]
fn the_cpu_library_lists_only_the_cpu_provider() {
    assert_eq!(runtime().providers(), ["cpu"]);
}

/// The DLRM backends (the native engine's adapter, here over the CPU reference) declare what ONNX Runtime reads
/// from the graphs and score the same, so a server can swap one for the other.
#[test]
fn dlrm_backends_match_onnx_runtime_signature_and_scores() {
    let cases = [
        ("dlrm", ["dense", "sparse"]),
        ("dlrm_dense", ["dense", "pooled"]),
    ];
    for (model, names) in cases {
        let mut ort = session(model);
        let bytes = std::fs::read(model_path(model)).unwrap();
        let mut reference = ember_kernels::dlrm_backend::reference_cpu(&bytes).unwrap();
        assert_eq!(reference.inputs(), ort.inputs(), "{model}");
        assert_eq!(reference.outputs(), ort.outputs(), "{model}");
        let inputs: Vec<Tensor> = names.iter().map(|name| test_vector(model, name)).collect();
        let from_ort = ort.run(&inputs).unwrap().remove(0);
        let from_reference = reference.run(&inputs).unwrap().remove(0);
        let err = max_abs_err(&from_reference, &from_ort);
        assert!(err <= SCORE_TOLERANCE, "{model}: reference vs ort {err}");
        let err = max_abs_err(&from_reference, &test_vector(model, "score"));
        assert!(err <= SCORE_TOLERANCE, "{model}: reference vs numpy {err}");
    }
}
