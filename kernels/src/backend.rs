//! The one backend trait: tensors in, tensors out, batch dimension first.

use crate::error::{Error, ErrorKind, Result};
use crate::tensor::{DataType, Tensor};

/// A model input or output as the model declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name in the graph.
    pub name: String,
    /// The element type.
    pub dtype: DataType,
    /// Each dimension: `Some(n)` when fixed, `None` when dynamic (the batch dimension, usually).
    pub shape: Vec<Option<usize>>,
}

impl TensorSpec {
    /// The shape as text, dynamic dimensions shown as `?`: `[?, 13]`.
    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| d.map_or_else(|| "?".to_string(), |n| n.to_string()))
            .collect();
        format!("[{}]", dims.join(", "))
    }
}

/// An inference backend holding one loaded model. One per shard: `run` takes `&mut self` and is never shared.
pub trait Backend {
    /// Which backend and device, for INFO and errors: `onnxruntime-cpu`, `onnxruntime-cuda:0`, ...
    fn device_name(&self) -> &str;

    /// The model's inputs, in the order [`Backend::run`] takes them.
    fn inputs(&self) -> &[TensorSpec];

    /// The model's outputs, in the order [`Backend::run`] returns them.
    fn outputs(&self) -> &[TensorSpec];

    /// Runs the model on one batch. Every input has the batch dimension first, and the same batch length.
    ///
    /// # Errors
    /// [`ErrorKind::InputMismatch`] when the inputs do not match [`Backend::inputs`];
    /// [`ErrorKind::Inference`] when the backend fails.
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>>;

    /// Runs the model on rows `rows` of the batch: how a long batch runs in slices. The default copies the rows
    /// out; backends that can read a view of the rows in place override it.
    ///
    /// # Errors
    /// As [`Backend::run`], and [`ErrorKind::InputMismatch`] when `rows` is past the batch.
    fn run_rows(&mut self, inputs: &[Tensor], rows: std::ops::Range<usize>) -> Result<Vec<Tensor>> {
        let sliced = inputs
            .iter()
            .map(|t| t.rows(rows.clone()))
            .collect::<Result<Vec<_>>>()?;
        self.run(&sliced)
    }

    /// The native CUDA engine inside, for a caller that scores rows already on the device
    /// ([`crate::cuda::DlrmEngine::score_slots`] over the GPU embedding cache's table) instead of
    /// handing tensors to [`Backend::run`]; `None` for every other backend (the default).
    fn native_engine(&mut self) -> Option<&mut crate::cuda::DlrmEngine> {
        None
    }
}

/// Checks inputs against specs: count, element type, rank, fixed dimensions, one batch length.
/// Backends call this before running so that a wrong request gets a message that names the input.
///
/// # Errors
/// [`ErrorKind::InputMismatch`] describing the first mismatch.
pub fn check_inputs(specs: &[TensorSpec], inputs: &[Tensor]) -> Result<()> {
    if specs.len() != inputs.len() {
        return Err(Error::new(
            ErrorKind::InputMismatch,
            format!("model expects {} inputs, got {}", specs.len(), inputs.len()),
        ));
    }
    let mut batch_len = None;
    for (spec, input) in specs.iter().zip(inputs) {
        if spec.dtype != input.dtype() {
            return Err(Error::new(
                ErrorKind::InputMismatch,
                format!(
                    "input '{}' expects {}, got {}",
                    spec.name,
                    spec.dtype.name(),
                    input.dtype().name()
                ),
            ));
        }
        let fits = spec.shape.len() == input.shape().len()
            && spec
                .shape
                .iter()
                .zip(input.shape())
                .all(|(want, &got)| want.is_none_or(|w| w == got));
        if !fits {
            return Err(Error::new(
                ErrorKind::InputMismatch,
                format!(
                    "input '{}' expects shape {}, got {:?}",
                    spec.name,
                    spec.shape_text(),
                    input.shape()
                ),
            ));
        }
        if let Some(&first) = input.shape().first() {
            if *batch_len.get_or_insert(first) != first {
                return Err(Error::new(
                    ErrorKind::InputMismatch,
                    format!(
                        "input '{}' has batch length {first}, other inputs have {}",
                        spec.name,
                        batch_len.unwrap_or(0)
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorData;

    fn specs() -> Vec<TensorSpec> {
        vec![
            TensorSpec {
                name: "dense".into(),
                dtype: DataType::Float,
                shape: vec![None, Some(2)],
            },
            TensorSpec {
                name: "ids".into(),
                dtype: DataType::Int64,
                shape: vec![None, Some(1)],
            },
        ]
    }

    fn floats(shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape, TensorData::Float(vec![0.0; n])).unwrap()
    }

    fn ints(shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape, TensorData::Int64(vec![0; n])).unwrap()
    }

    #[test]
    fn inputs_are_checked() {
        let cases: Vec<(&str, Vec<Tensor>, Option<&str>)> = vec![
            ("matching", vec![floats(vec![3, 2]), ints(vec![3, 1])], None),
            (
                "too few",
                vec![floats(vec![3, 2])],
                Some("model expects 2 inputs, got 1"),
            ),
            (
                "wrong type",
                vec![ints(vec![3, 2]), ints(vec![3, 1])],
                Some("input 'dense' expects FLOAT, got INT64"),
            ),
            (
                "wrong width",
                vec![floats(vec![3, 3]), ints(vec![3, 1])],
                Some("input 'dense' expects shape [?, 2], got [3, 3]"),
            ),
            (
                "wrong rank",
                vec![floats(vec![6]), ints(vec![3, 1])],
                Some("input 'dense' expects shape [?, 2], got [6]"),
            ),
            (
                "batch lengths differ",
                vec![floats(vec![3, 2]), ints(vec![2, 1])],
                Some("input 'ids' has batch length 2, other inputs have 3"),
            ),
        ];
        for (name, inputs, want) in cases {
            let got = check_inputs(&specs(), &inputs)
                .err()
                .map(|e| (e.kind(), e.to_string()));
            assert_eq!(
                got,
                want.map(|w| (ErrorKind::InputMismatch, w.to_string())),
                "{name}"
            );
        }
    }
}
