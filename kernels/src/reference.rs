//! CPU reference of the DLRM forward pass in f32: the numbers that the native CUDA engine is
//! checked against (max abs error 1e-5 on the scores).
//!
//! Plain loops, no SIMD and no reordering: every sum adds its terms in index order, starting from
//! zero, and a layer adds its bias after the sum, as numpy's `x @ w + b` does. The GPU sums in
//! the same order except inside cuBLASLt, whose blocking changes the rounding by a few ulps.

use crate::dlrm::{pair_count, DenseLayer, DlrmError, DlrmModel, Pooling, SparseBags};

/// `y = x W + b` (then ReLU if the layer says so) for `sample_count` rows of `input`.
///
/// # Panics
/// When `input.len() != sample_count * layer.in_features()` (a caller bug).
pub fn dense_layer(layer: &DenseLayer, input: &[f32], sample_count: usize) -> Vec<f32> {
    let (in_features, out_features) = (layer.in_features(), layer.out_features());
    assert_eq!(input.len(), sample_count * in_features, "dense_layer input");
    let mut output = vec![0.0f32; sample_count * out_features];
    for (row, out_row) in input
        .chunks_exact(in_features)
        .zip(output.chunks_exact_mut(out_features))
    {
        for (&x, weights) in row.iter().zip(layer.weight().chunks_exact(out_features)) {
            for (sum, &w) in out_row.iter_mut().zip(weights) {
                *sum += x * w;
            }
        }
        for (value, &b) in out_row.iter_mut().zip(layer.bias()) {
            *value += b;
            if layer.relu() {
                *value = value.max(0.0);
            }
        }
    }
    output
}

/// The layers one after another.
///
/// # Panics
/// When `input` does not hold `sample_count` rows of the first layer's width (a caller bug).
pub fn mlp(layers: &[DenseLayer], input: &[f32], sample_count: usize) -> Vec<f32> {
    let mut activations = input.to_vec();
    for layer in layers {
        activations = dense_layer(layer, &activations, sample_count);
    }
    activations
}

/// Pools bags of rows of `table` (`[rows, dim]` row-major): bag `b` combines rows
/// `rows[offsets[b]..offsets[b + 1]]`. Returns `[offsets.len() - 1, dim]`.
///
/// # Panics
/// When an offset or a row is out of range (a caller bug: validate with
/// [`DlrmModel::global_rows`] first).
pub fn embedding_bag(
    table: &[f32],
    dim: usize,
    rows: &[u32],
    offsets: &[u32],
    pooling: Pooling,
) -> Vec<f32> {
    let bag_count = offsets.len().saturating_sub(1);
    let mut pooled = vec![0.0f32; bag_count * dim];
    for (window, out) in offsets.windows(2).zip(pooled.chunks_exact_mut(dim)) {
        let bag = &rows[window[0] as usize..window[1] as usize];
        for &row in bag {
            let start = row as usize * dim;
            for (sum, &value) in out.iter_mut().zip(&table[start..start + dim]) {
                *sum += value;
            }
        }
        if pooling == Pooling::Mean && !bag.is_empty() {
            let count = bag.len() as f32;
            for value in out.iter_mut() {
                *value /= count;
            }
        }
    }
    pooled
}

/// DLRM's dot interaction: per sample, `[x, T_i . T_j for i in 1..=F, j in 0..i]` where
/// `T = [x, pooled_0, ..., pooled_{F-1}]`; `bottom` is `[n, dim]`, `pooled` is `[n, F, dim]`.
/// Returns `[n, dim + F (F + 1) / 2]`.
///
/// # Panics
/// When the lengths do not match `sample_count`, `feature_count` and `dim` (a caller bug).
pub fn dot_interaction(
    bottom: &[f32],
    pooled: &[f32],
    sample_count: usize,
    feature_count: usize,
    dim: usize,
) -> Vec<f32> {
    assert_eq!(bottom.len(), sample_count * dim, "dot_interaction bottom");
    assert_eq!(
        pooled.len(),
        sample_count * feature_count * dim,
        "dot_interaction pooled"
    );
    let width = dim + pair_count(feature_count);
    let mut output = Vec::with_capacity(sample_count * width);
    for (x, embeddings) in bottom
        .chunks_exact(dim)
        .zip(pooled.chunks_exact(feature_count * dim))
    {
        let vector = |index: usize| -> &[f32] {
            if index == 0 {
                x
            } else {
                &embeddings[(index - 1) * dim..index * dim]
            }
        };
        output.extend_from_slice(x);
        for i in 1..=feature_count {
            for j in 0..i {
                let sum = vector(i)
                    .iter()
                    .zip(vector(j))
                    .fold(0.0f32, |sum, (&a, &b)| sum + a * b);
                output.push(sum);
            }
        }
    }
    output
}

/// The logistic function, `1 / (1 + e^-x)`.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Scores a batch given its pooled embeddings (the `dlrm_dense` serving model): `dense` is
/// `[n, D]`, `pooled` is `[n, F, d]`; one score per sample.
///
/// # Errors
/// [`crate::dlrm::DlrmErrorKind::InvalidInput`] when the lengths do not match the model.
pub fn score_pooled(
    model: &DlrmModel,
    dense: &[f32],
    pooled: &[f32],
) -> Result<Vec<f32>, DlrmError> {
    let sample_count = model.pooled_sample_count(dense, pooled)?;
    let bottom = mlp(model.bottom(), dense, sample_count);
    let top_in = dot_interaction(
        &bottom,
        pooled,
        sample_count,
        model.sparse_feature_count(),
        model.embedding_dim(),
    );
    let logits = mlp(model.top(), &top_in, sample_count);
    Ok(logits.into_iter().map(sigmoid).collect())
}

/// Scores a batch given its sparse ids as bags over the model's own tables (the `dlrm` model).
///
/// # Errors
/// [`crate::dlrm::DlrmErrorKind::InvalidInput`] when the model has no tables, the lengths or
/// offsets do not match, or an id is outside its table.
pub fn score_bags(
    model: &DlrmModel,
    dense: &[f32],
    bags: &SparseBags<'_>,
    pooling: Pooling,
) -> Result<Vec<f32>, DlrmError> {
    let sample_count = model.dense_sample_count(dense)?;
    let rows = model.global_rows(sample_count, bags)?;
    let tables = model
        .tables()
        .ok_or_else(|| DlrmError::input("this model has no embedding tables"))?;
    let pooled = embedding_bag(tables.rows(), tables.dim(), &rows, bags.offsets, pooling);
    score_pooled(model, dense, &pooled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlrm::{one_id_per_bag_offsets, DlrmErrorKind, EmbeddingTables};

    fn layer(
        in_features: usize,
        out_features: usize,
        weight: &[f32],
        bias: &[f32],
        relu: bool,
    ) -> DenseLayer {
        DenseLayer::new(in_features, out_features, weight, bias, relu).unwrap()
    }

    /// d = 1, F = 1: x = relu(2 * dense), top_in = [x, e * x], logit = x + 3 e x - 1.
    fn tiny_model(tables: Option<EmbeddingTables>) -> DlrmModel {
        let bottom = vec![layer(1, 1, &[2.0], &[0.0], true)];
        let top = vec![layer(2, 1, &[1.0, 3.0], &[-1.0], false)];
        DlrmModel::new(bottom, top, 1, tables).unwrap()
    }

    #[test]
    fn dense_layer_cases() {
        // W is [in = 2, out = 3]: y_o = x_0 W[0][o] + x_1 W[1][o] + b_o.
        let weights = [1.0, 2.0, -3.0, 4.0, 5.0, 6.0];
        let affine = layer(2, 3, &weights, &[0.5, 0.0, -1.0], false);
        let relu = layer(2, 3, &weights, &[0.5, 0.0, -1.0], true);
        let cases: [(&str, &DenseLayer, Vec<f32>, Vec<f32>); 3] = [
            ("one row", &affine, vec![1.0, 1.0], vec![5.5, 7.0, 2.0]),
            (
                "two rows",
                &affine,
                vec![1.0, 0.0, 0.0, -1.0],
                vec![1.5, 2.0, -4.0, -3.5, -5.0, -7.0],
            ),
            ("relu clamps", &relu, vec![0.0, -1.0], vec![0.0, 0.0, 0.0]),
        ];
        for (name, layer, input, expected) in cases {
            let sample_count = input.len() / 2;
            assert_eq!(dense_layer(layer, &input, sample_count), expected, "{name}");
        }
    }

    #[test]
    fn interaction_orders_pairs_as_dlrm() {
        // F = 2, d = 2: T0 = x = (1, 2), T1 = (3, 4), T2 = (5, 6).
        // Pairs (1,0) = 11, (2,0) = 17, (2,1) = 39.
        let output = dot_interaction(&[1.0, 2.0], &[3.0, 4.0, 5.0, 6.0], 1, 2, 2);
        assert_eq!(output, vec![1.0, 2.0, 11.0, 17.0, 39.0]);
        // Two samples keep their rows apart.
        let output = dot_interaction(&[1.0, 0.0, 0.0, 1.0], &[2.0, 3.0, 2.0, 3.0], 2, 1, 2);
        assert_eq!(output, vec![1.0, 0.0, 2.0, 0.0, 1.0, 3.0]);
    }

    #[test]
    fn embedding_bag_cases() {
        // Rows: 0 = (1, 2), 1 = (10, 20), 2 = (100, 200).
        let table = [1.0, 2.0, 10.0, 20.0, 100.0, 200.0];
        let rows = [0, 2, 1, 1];
        let offsets = [0, 2, 2, 4];
        let sum = embedding_bag(&table, 2, &rows, &offsets, Pooling::Sum);
        assert_eq!(sum, vec![101.0, 202.0, 0.0, 0.0, 20.0, 40.0]);
        let mean = embedding_bag(&table, 2, &rows, &offsets, Pooling::Mean);
        assert_eq!(mean, vec![50.5, 101.0, 0.0, 0.0, 10.0, 20.0]);
    }

    #[test]
    fn tiny_model_end_to_end() {
        let model = tiny_model(None);
        // dense 0.5 -> x = 1; e = 2 -> logit = 1 + 6 - 1 = 6.
        // dense -1 -> x = 0 (ReLU); logit = -1.
        let scores = score_pooled(&model, &[0.5, -1.0], &[2.0, 2.0]).unwrap();
        assert_eq!(scores, vec![sigmoid(6.0), sigmoid(-1.0)]);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn bags_match_pooled_inputs() {
        // Table rows 0..4 of dimension 1: 0.5, 1.0, 1.5, 2.0.
        let tables = EmbeddingTables::new(1, &[&[0.5, 1.0, 1.5, 2.0]]).unwrap();
        let model = tiny_model(Some(tables));
        let dense = [0.5, 0.25, 1.0];
        let bags = SparseBags {
            offsets: &[0, 2, 3, 3],
            ids: &[0, 3, 1],
        };
        let by_bags = score_bags(&model, &dense, &bags, Pooling::Sum).unwrap();
        let by_pooled = score_pooled(&model, &dense, &[2.5, 1.0, 0.0]).unwrap();
        assert_eq!(by_bags, by_pooled);
        let by_mean = score_bags(&model, &dense, &bags, Pooling::Mean).unwrap();
        assert_eq!(
            by_mean,
            score_pooled(&model, &dense, &[1.25, 1.0, 0.0]).unwrap()
        );
        let one_hot = SparseBags {
            offsets: &one_id_per_bag_offsets(3),
            ids: &[2, 2, 0],
        };
        let by_one_hot = score_bags(&model, &dense, &one_hot, Pooling::Sum).unwrap();
        assert_eq!(
            by_one_hot,
            score_pooled(&model, &dense, &[1.5, 1.5, 0.5]).unwrap()
        );
    }

    /// A named case: what was run, and a fragment its error message must hold.
    type ScoreCase = (&'static str, Result<Vec<f32>, DlrmError>, &'static str);

    #[test]
    fn input_errors_are_named() {
        let tables = EmbeddingTables::new(1, &[&[0.5, 1.0]]).unwrap();
        let model = tiny_model(Some(tables));
        let cases: [ScoreCase; 6] = [
            (
                "pooled too short",
                score_pooled(&model, &[1.0, 2.0], &[1.0]),
                "pooled has 1 floats",
            ),
            (
                "id outside table",
                score_bags(
                    &model,
                    &[1.0],
                    &SparseBags {
                        offsets: &[0, 1],
                        ids: &[2],
                    },
                    Pooling::Sum,
                ),
                "id 2 of feature 0 is outside its table of 2 rows",
            ),
            (
                "offsets count",
                score_bags(
                    &model,
                    &[1.0, 1.0],
                    &SparseBags {
                        offsets: &[0, 1],
                        ids: &[0],
                    },
                    Pooling::Sum,
                ),
                "2 bag offsets for 2 samples",
            ),
            (
                "offsets decrease",
                score_bags(
                    &model,
                    &[1.0, 1.0],
                    &SparseBags {
                        offsets: &[0, 2, 1],
                        ids: &[0],
                    },
                    Pooling::Sum,
                ),
                "bag offset 2 (1) is below offset 1 (2)",
            ),
            (
                "offsets do not cover ids",
                score_bags(
                    &model,
                    &[1.0],
                    &SparseBags {
                        offsets: &[0, 1],
                        ids: &[0, 0],
                    },
                    Pooling::Sum,
                ),
                "bag offsets end at 1 but there are 2 ids",
            ),
            (
                "no tables",
                score_bags(
                    &tiny_model(None),
                    &[1.0],
                    &SparseBags {
                        offsets: &[0, 1],
                        ids: &[0],
                    },
                    Pooling::Sum,
                ),
                "no embedding tables",
            ),
        ];
        for (name, result, needle) in cases {
            let error = result.unwrap_err();
            assert_eq!(error.kind(), DlrmErrorKind::InvalidInput, "{name}");
            assert!(
                error.message().contains(needle),
                "{name}: {}",
                error.message()
            );
        }
    }

    #[test]
    fn model_errors_are_named() {
        let ok = |i, o| layer(i, o, &vec![0.0; i * o], &vec![0.0; o], true);
        let cases: [(&str, Result<DlrmModel, DlrmError>, &str); 4] = [
            (
                "bottom does not chain",
                DlrmModel::new(vec![ok(2, 3), ok(4, 1)], vec![ok(2, 1)], 1, None),
                "bottom MLP layer 0 gives 3 outputs but layer 1 takes 4 inputs",
            ),
            (
                "top width",
                DlrmModel::new(vec![ok(2, 4)], vec![ok(9, 1)], 2, None),
                "top MLP takes 9 inputs, but dimension 4 with 2 features gives 4 + 3 = 7",
            ),
            (
                "two logits",
                DlrmModel::new(vec![ok(2, 1)], vec![ok(2, 2)], 1, None),
                "ends in 2 outputs",
            ),
            (
                "table dimension",
                DlrmModel::new(
                    vec![ok(2, 1)],
                    vec![ok(2, 1)],
                    1,
                    Some(EmbeddingTables::new(2, &[&[0.0; 4]]).unwrap()),
                ),
                "1 embedding tables of dimension 2, expected 1 of 1",
            ),
        ];
        for (name, result, needle) in cases {
            let error = result.unwrap_err();
            assert_eq!(error.kind(), DlrmErrorKind::InvalidModel, "{name}");
            assert!(
                error.message().contains(needle),
                "{name}: {}",
                error.message()
            );
        }
        let error = DenseLayer::new(2, 2, &[0.0; 3], &[0.0; 2], false).unwrap_err();
        assert!(error.message().contains("has 3 weights, expected 4"));
        let error = EmbeddingTables::uniform(2, 3, 4, &[0.0; 20]).unwrap_err();
        assert!(error.message().contains("expected 2 x 3 x 4"));
    }

    #[test]
    fn global_rows_offset_each_table() {
        let tables = EmbeddingTables::uniform(3, 2, 1, &[0.0; 6]).unwrap();
        assert_eq!(tables.global_row(0, 1), Ok(1));
        assert_eq!(tables.global_row(2, 0), Ok(4));
        assert_eq!(
            tables.global_row(3, 0).unwrap_err().kind(),
            DlrmErrorKind::InvalidInput
        );
    }

    /// SplitMix64, so the randomized test replays from its seed.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(state: &mut u64) -> f32 {
        ((next(state) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// An independent f64 forward pass: the full Gram matrix, then numpy's `tril_indices(n, -1)`
    /// order (row-major over i > j), layers as `sum_i x_i W[i][o] + b_o`.
    fn forward_f64(model: &DlrmModel, dense: &[f32], pooled: &[f32]) -> f64 {
        let run = |layers: &[DenseLayer], input: Vec<f64>| {
            layers.iter().fold(input, |x, layer| {
                (0..layer.out_features())
                    .map(|o| {
                        let sum: f64 = (0..layer.in_features())
                            .map(|i| x[i] * f64::from(layer.weight()[i * layer.out_features() + o]))
                            .sum::<f64>()
                            + f64::from(layer.bias()[o]);
                        if layer.relu() {
                            sum.max(0.0)
                        } else {
                            sum
                        }
                    })
                    .collect()
            })
        };
        let x = run(
            model.bottom(),
            dense.iter().map(|&v| f64::from(v)).collect(),
        );
        let dim = model.embedding_dim();
        let mut vectors = vec![x.clone()];
        vectors.extend(
            pooled
                .chunks(dim)
                .map(|row| row.iter().map(|&v| f64::from(v)).collect()),
        );
        let count = vectors.len();
        let gram: Vec<Vec<f64>> = (0..count)
            .map(|i| {
                (0..count)
                    .map(|j| (0..dim).map(|c| vectors[i][c] * vectors[j][c]).sum())
                    .collect()
            })
            .collect();
        let mut top_in = x;
        for (i, row) in gram.iter().enumerate() {
            top_in.extend_from_slice(&row[..i]);
        }
        let logit = run(model.top(), top_in)[0];
        1.0 / (1.0 + (-logit).exp())
    }

    #[test]
    fn randomized_models_match_an_f64_forward_pass() {
        let seed = 0xd1a7_5eed_u64;
        let mut state = seed;
        for case in 0..40 {
            let dim = 1 + (next(&mut state) % 8) as usize;
            let features = 1 + (next(&mut state) % 6) as usize;
            let dense_width = 1 + (next(&mut state) % 5) as usize;
            let hidden = 1 + (next(&mut state) % 16) as usize;
            let mut make = |i: usize, o: usize, relu: bool| {
                let weight: Vec<f32> = (0..i * o).map(|_| uniform(&mut state)).collect();
                let bias: Vec<f32> = (0..o).map(|_| uniform(&mut state) * 0.1).collect();
                DenseLayer::new(i, o, &weight, &bias, relu).unwrap()
            };
            let bottom = vec![make(dense_width, hidden, true), make(hidden, dim, true)];
            let top_width = dim + pair_count(features);
            let top = vec![make(top_width, hidden, true), make(hidden, 1, false)];
            let model = DlrmModel::new(bottom, top, features, None).unwrap();
            let dense: Vec<f32> = (0..dense_width).map(|_| uniform(&mut state)).collect();
            let pooled: Vec<f32> = (0..features * dim).map(|_| uniform(&mut state)).collect();
            let got = score_pooled(&model, &dense, &pooled).unwrap()[0];
            let expected = forward_f64(&model, &dense, &pooled);
            assert!(
                (f64::from(got) - expected).abs() <= 1e-5,
                "seed {seed:#x}, case {case}: {got} vs {expected}"
            );
        }
    }
}
