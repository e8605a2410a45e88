//! The DLRM engines behind the one [`Backend`] trait, so that a server reaches the native CUDA
//! engine exactly as it reaches ONNX Runtime: tensors in, tensors out.
//!
//! A [`DlrmBackend`] wraps anything that scores a DLRM ([`DlrmScorer`]): the native CUDA engine
//! ([`crate::cuda::DlrmEngine`], built with [`native_cuda`]) or the CPU reference
//! ([`ReferenceScorer`], built with [`reference_cpu`], which is how the adapter is tested on a
//! machine with no GPU). Its signature is the generator's (`models/generate.py`):
//!
//! | model       | inputs                                              | output            |
//! |-------------|-----------------------------------------------------|-------------------|
//! | `dlrm`      | `dense` FLOAT `[?, D]`, `sparse` INT64 `[?, F]`     | `score` FLOAT `[?, 1]` |
//! | `dlrm_dense`| `dense` FLOAT `[?, D]`, `pooled` FLOAT `[?, F, d]`  | `score` FLOAT `[?, 1]` |
//!
//! A model whose ONNX graph holds the embedding tables takes `sparse` (one id per field, as the
//! `dlrm` graph does); one without takes `pooled`.

use crate::backend::{check_inputs, Backend, TensorSpec};
use crate::cuda::{CudaError, CudaErrorKind, DlrmEngine, EngineOptions};
use crate::dlrm::{DlrmError, DlrmErrorKind, DlrmModel, Pooling, SparseBags};
use crate::error::{Error, ErrorKind, Result};
use crate::onnx_weights::dlrm_from_onnx;
use crate::reference;
use crate::tensor::{DataType, Tensor, TensorData, TensorView};

/// Something that scores a DLRM: one score per sample into `scores`.
pub trait DlrmScorer {
    /// Scores samples from dense features `[n, D]` and pooled embeddings `[n, F, d]`.
    ///
    /// # Errors
    /// [`ErrorKind::InputMismatch`] when the lengths do not match the model;
    /// [`ErrorKind::Inference`] when the device fails.
    fn score_pooled(&mut self, dense: &[f32], pooled: &[f32], scores: &mut [f32]) -> Result<()>;

    /// Scores samples from dense features `[n, D]` and bags of ids into the model's tables.
    ///
    /// # Errors
    /// [`ErrorKind::InputMismatch`] when the lengths or offsets do not match or an id is outside
    /// its table; [`ErrorKind::Inference`] when the device fails.
    fn score_bags(
        &mut self,
        dense: &[f32],
        bags: &SparseBags<'_>,
        scores: &mut [f32],
    ) -> Result<()>;

    /// The scorer as the native CUDA engine, when it is one (for
    /// [`crate::cuda::DlrmEngine::score_slots`]); `None` by default.
    fn native_engine(&mut self) -> Option<&mut DlrmEngine> {
        None
    }
}

/// The CPU reference as a scorer: exact float32, slow, the yardstick for every other backend.
#[derive(Clone, Debug)]
pub struct ReferenceScorer {
    model: DlrmModel,
}

impl ReferenceScorer {
    /// A scorer over `model`.
    pub fn new(model: DlrmModel) -> Self {
        Self { model }
    }
}

fn from_dlrm_error(error: DlrmError) -> Error {
    let kind = match error.kind() {
        DlrmErrorKind::InvalidModel => ErrorKind::InvalidModel,
        _ => ErrorKind::InputMismatch,
    };
    Error::new(kind, error.message())
}

fn copy_scores(got: Vec<f32>, scores: &mut [f32]) -> Result<()> {
    if got.len() != scores.len() {
        return Err(Error::new(
            ErrorKind::InputMismatch,
            format!(
                "the inputs hold {} samples, room for {} scores",
                got.len(),
                scores.len()
            ),
        ));
    }
    scores.copy_from_slice(&got);
    Ok(())
}

impl DlrmScorer for ReferenceScorer {
    fn score_pooled(&mut self, dense: &[f32], pooled: &[f32], scores: &mut [f32]) -> Result<()> {
        let got = reference::score_pooled(&self.model, dense, pooled).map_err(from_dlrm_error)?;
        copy_scores(got, scores)
    }

    fn score_bags(
        &mut self,
        dense: &[f32],
        bags: &SparseBags<'_>,
        scores: &mut [f32],
    ) -> Result<()> {
        let got = reference::score_bags(&self.model, dense, bags, Pooling::Sum)
            .map_err(from_dlrm_error)?;
        copy_scores(got, scores)
    }
}

/// The engine's errors in the crate's kinds: a missing driver, device or CUDA library is
/// [`ErrorKind::DeviceMissing`], so that a server can say "not on this machine" apart from "failed".
pub fn from_cuda_error(error: CudaError) -> Error {
    let kind = match error.kind() {
        CudaErrorKind::NoDriver | CudaErrorKind::NoDevice | CudaErrorKind::LibraryMissing => {
            ErrorKind::DeviceMissing
        }
        CudaErrorKind::InvalidModel => ErrorKind::InvalidModel,
        CudaErrorKind::InvalidInput => ErrorKind::InputMismatch,
        _ => ErrorKind::Inference,
    };
    Error::new(kind, error.message())
}

impl DlrmScorer for DlrmEngine {
    fn score_pooled(&mut self, dense: &[f32], pooled: &[f32], scores: &mut [f32]) -> Result<()> {
        DlrmEngine::score_pooled(self, dense, pooled, scores).map_err(from_cuda_error)
    }

    fn score_bags(
        &mut self,
        dense: &[f32],
        bags: &SparseBags<'_>,
        scores: &mut [f32],
    ) -> Result<()> {
        DlrmEngine::score_bags(self, dense, bags, scores).map_err(from_cuda_error)
    }

    fn native_engine(&mut self) -> Option<&mut DlrmEngine> {
        Some(self)
    }
}

/// A DLRM scorer as a [`Backend`]; see the module docs for its signature.
pub struct DlrmBackend<S> {
    scorer: S,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    device_name: String,
    takes_ids: bool,
    /// Reused for each run: the `sparse` ids as u32 and one bag per id.
    ids: Vec<u32>,
    offsets: Vec<u32>,
}

impl<S> std::fmt::Debug for DlrmBackend<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DlrmBackend")
            .field("device", &self.device_name)
            .field("inputs", &self.inputs)
            .finish()
    }
}

fn spec(name: &str, dtype: DataType, fixed: &[usize]) -> TensorSpec {
    let mut shape = vec![None];
    shape.extend(fixed.iter().map(|&n| Some(n)));
    TensorSpec {
        name: name.to_string(),
        dtype,
        shape,
    }
}

impl<S: DlrmScorer> DlrmBackend<S> {
    /// `scorer` over `model`, reported as `device_name` (`native-cuda:0`, `reference-cpu`).
    pub fn new(scorer: S, model: &DlrmModel, device_name: impl Into<String>) -> Self {
        let (features, dim) = (model.sparse_feature_count(), model.embedding_dim());
        let takes_ids = model.tables().is_some();
        let second = if takes_ids {
            spec("sparse", DataType::Int64, &[features])
        } else {
            spec("pooled", DataType::Float, &[features, dim])
        };
        Self {
            scorer,
            inputs: vec![
                spec("dense", DataType::Float, &[model.dense_feature_count()]),
                second,
            ],
            outputs: vec![spec("score", DataType::Float, &[1])],
            device_name: device_name.into(),
            takes_ids,
            ids: Vec::new(),
            offsets: Vec::new(),
        }
    }

    /// The scorer inside.
    pub fn scorer(&self) -> &S {
        &self.scorer
    }

    fn score_rows(&mut self, inputs: &[Tensor], rows: std::ops::Range<usize>) -> Result<Vec<f32>> {
        let sample_count = rows.len();
        let (_, dense) = inputs[0].rows_view(rows.clone())?;
        let (_, second) = inputs[1].rows_view(rows)?;
        let TensorView::Float(dense) = dense else {
            unreachable!("check_inputs checked dense's type")
        };
        let mut scores = vec![0.0f32; sample_count];
        match second {
            TensorView::Float(pooled) if !self.takes_ids => {
                self.scorer.score_pooled(dense, pooled, &mut scores)?;
            }
            TensorView::Int64(sparse) if self.takes_ids => {
                self.ids.clear();
                for (index, &id) in sparse.iter().enumerate() {
                    let id = u32::try_from(id).map_err(|_| {
                        Error::new(
                            ErrorKind::InputMismatch,
                            format!("sparse id {id} at position {index} is not a row id"),
                        )
                    })?;
                    self.ids.push(id);
                }
                if self.offsets.len() != self.ids.len() + 1 {
                    self.offsets = crate::dlrm::one_id_per_bag_offsets(self.ids.len());
                }
                let bags = SparseBags {
                    offsets: &self.offsets,
                    ids: &self.ids,
                };
                self.scorer.score_bags(dense, &bags, &mut scores)?;
            }
            _ => unreachable!("check_inputs checked the second input's type"),
        }
        Ok(scores)
    }
}

impl<S: DlrmScorer> Backend for DlrmBackend<S> {
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
        let sample_count = rows.len();
        let scores = self.score_rows(inputs, rows)?;
        Ok(vec![Tensor::new(
            vec![sample_count, 1],
            TensorData::Float(scores),
        )?])
    }

    fn native_engine(&mut self) -> Option<&mut DlrmEngine> {
        self.scorer.native_engine()
    }
}

/// The weights of an ONNX DLRM as `models/generate.py` lays them out.
///
/// # Errors
/// [`ErrorKind::InvalidModel`] when the graph is not such a DLRM (the native engine runs DLRMs
/// only; ONNX Runtime runs any graph).
pub fn dlrm_weights(model_bytes: &[u8]) -> Result<DlrmModel> {
    dlrm_from_onnx(model_bytes).map_err(|error| {
        Error::new(
            ErrorKind::InvalidModel,
            format!(
                "the native engine runs DLRMs laid out as models/generate.py writes them: {}",
                error.message()
            ),
        )
    })
}

/// The native CUDA engine on `options.device_ordinal`, behind [`Backend`], reported as
/// `native-cuda:N`. Captures every batch bucket's graph before returning, so no request pays for
/// a capture.
///
/// # Errors
/// [`ErrorKind::InvalidModel`] as [`dlrm_weights`]; [`ErrorKind::DeviceMissing`] when the driver,
/// the device, NVRTC or cuBLASLt is missing (the message names the fix); [`ErrorKind::Inference`]
/// when the device fails while loading.
pub fn native_cuda(model_bytes: &[u8], options: &EngineOptions) -> Result<DlrmBackend<DlrmEngine>> {
    let model = dlrm_weights(model_bytes)?;
    let mut engine = DlrmEngine::new(&model, options).map_err(from_cuda_error)?;
    engine.warm_up().map_err(from_cuda_error)?;
    let name = format!("native-cuda:{}", options.device_ordinal);
    Ok(DlrmBackend::new(engine, &model, name))
}

/// The CPU reference behind [`Backend`], reported as `reference-cpu`.
///
/// # Errors
/// [`ErrorKind::InvalidModel`] as [`dlrm_weights`].
pub fn reference_cpu(model_bytes: &[u8]) -> Result<DlrmBackend<ReferenceScorer>> {
    let model = dlrm_weights(model_bytes)?;
    Ok(DlrmBackend::new(
        ReferenceScorer::new(model.clone()),
        &model,
        "reference-cpu",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlrm::{DenseLayer, EmbeddingTables};

    /// d = 1, F = 1: x = relu(2 * dense), top_in = [x, e * x], score = sigmoid(x + 3 e x - 1).
    fn tiny_model(with_tables: bool) -> DlrmModel {
        let bottom = vec![DenseLayer::new(1, 1, &[2.0], &[0.0], true).unwrap()];
        let top = vec![DenseLayer::new(2, 1, &[1.0, 3.0], &[-1.0], false).unwrap()];
        let tables = with_tables.then(|| EmbeddingTables::new(1, &[&[0.5, -1.0, 2.0]]).unwrap());
        DlrmModel::new(bottom, top, 1, tables).unwrap()
    }

    fn expected(dense: f32, embedding: f32) -> f32 {
        let x = (2.0 * dense).max(0.0);
        reference::sigmoid(x + 3.0 * embedding * x - 1.0)
    }

    fn floats(shape: Vec<usize>, values: Vec<f32>) -> Tensor {
        Tensor::new(shape, TensorData::Float(values)).unwrap()
    }

    fn backend(with_tables: bool) -> DlrmBackend<ReferenceScorer> {
        let model = tiny_model(with_tables);
        DlrmBackend::new(ReferenceScorer::new(model.clone()), &model, "reference-cpu")
    }

    #[test]
    fn signature_follows_the_tables() {
        let cases = [
            (
                false,
                "pooled",
                DataType::Float,
                vec![None, Some(1), Some(1)],
            ),
            (true, "sparse", DataType::Int64, vec![None, Some(1)]),
        ];
        for (with_tables, name, dtype, shape) in cases {
            let mut backend = backend(with_tables);
            // Only the native engine scores slots of a device table; the reference is not it.
            assert!(backend.native_engine().is_none());
            let names: Vec<&str> = backend.inputs().iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["dense", name], "tables {with_tables}");
            assert_eq!(backend.inputs()[1].dtype, dtype);
            assert_eq!(backend.inputs()[1].shape, shape);
            assert_eq!(backend.outputs()[0].shape, vec![None, Some(1)]);
            assert_eq!(backend.device_name(), "reference-cpu");
        }
    }

    #[test]
    fn pooled_and_sparse_rows_score_as_the_reference() {
        let dense = [0.25f32, 1.0, -3.0, 0.5];
        let table = [0.5f32, -1.0, 2.0];
        let ids = [2i64, 0, 1, 2];
        let want: Vec<f32> = dense
            .iter()
            .zip(ids)
            .map(|(&d, id)| expected(d, table[id as usize]))
            .collect();
        let pooled: Vec<f32> = ids.iter().map(|&id| table[id as usize]).collect();

        let mut pooled_backend = backend(false);
        let inputs = [
            floats(vec![4, 1], dense.to_vec()),
            floats(vec![4, 1, 1], pooled),
        ];
        let got = pooled_backend.run(&inputs).unwrap().remove(0);
        assert_eq!(got.shape(), [4, 1]);
        assert!(crate::compare::within(got.as_f32().unwrap(), &want, 1e-6));
        let middle = pooled_backend.run_rows(&inputs, 1..3).unwrap().remove(0);
        assert!(crate::compare::within(
            middle.as_f32().unwrap(),
            &want[1..3],
            1e-6
        ));

        let mut ids_backend = backend(true);
        let inputs = [
            floats(vec![4, 1], dense.to_vec()),
            Tensor::new(vec![4, 1], TensorData::Int64(ids.to_vec())).unwrap(),
        ];
        let got = ids_backend.run(&inputs).unwrap().remove(0);
        assert!(crate::compare::within(got.as_f32().unwrap(), &want, 1e-6));
        // Another length reuses the buffers with new offsets.
        let tail = ids_backend.run_rows(&inputs, 3..4).unwrap().remove(0);
        assert!(crate::compare::within(
            tail.as_f32().unwrap(),
            &want[3..],
            1e-6
        ));
    }

    #[test]
    fn bad_inputs_are_errors_and_the_backend_keeps_serving() {
        let mut backend = backend(true);
        let dense = floats(vec![1, 1], vec![1.0]);
        let ids = |id: i64| Tensor::new(vec![1, 1], TensorData::Int64(vec![id])).unwrap();
        let cases: [(&str, Vec<Tensor>, &str); 4] = [
            ("negative id", vec![dense.clone(), ids(-1)], "sparse id -1"),
            ("id past the table", vec![dense.clone(), ids(3)], "3"),
            (
                "pooled given to an ids model",
                vec![dense.clone(), floats(vec![1, 1, 1], vec![0.0])],
                "input 'sparse' expects INT64",
            ),
            ("one input", vec![dense.clone()], "model expects 2 inputs"),
        ];
        for (name, inputs, message) in cases {
            let error = backend.run(&inputs).expect_err(name);
            assert_eq!(error.kind(), ErrorKind::InputMismatch, "{name}: {error}");
            assert!(error.message().contains(message), "{name}: {error}");
        }
        let score = backend.run(&[dense, ids(1)]).unwrap().remove(0);
        assert!(crate::compare::within(
            score.as_f32().unwrap(),
            &[expected(1.0, -1.0)],
            1e-6
        ));
    }

    #[test]
    fn a_graph_that_is_not_a_dlrm_is_an_invalid_model() {
        for (name, bytes) in [("empty", &b""[..]), ("not protobuf", &b"\xff\xff\xff"[..])] {
            let error = reference_cpu(bytes).expect_err(name);
            assert_eq!(error.kind(), ErrorKind::InvalidModel, "{name}: {error}");
        }
    }

    #[test]
    fn cuda_errors_keep_their_meaning() {
        let cases = [
            (CudaErrorKind::NoDriver, ErrorKind::DeviceMissing),
            (CudaErrorKind::NoDevice, ErrorKind::DeviceMissing),
            (CudaErrorKind::LibraryMissing, ErrorKind::DeviceMissing),
            (CudaErrorKind::InvalidInput, ErrorKind::InputMismatch),
            (CudaErrorKind::InvalidModel, ErrorKind::InvalidModel),
            (CudaErrorKind::Driver, ErrorKind::Inference),
            (CudaErrorKind::Blas, ErrorKind::Inference),
        ];
        for (cuda, kind) in cases {
            let error = from_cuda_error(CudaError::new(cuda, "why"));
            assert_eq!((error.kind(), error.message()), (kind, "why"), "{cuda:?}");
        }
    }
}
