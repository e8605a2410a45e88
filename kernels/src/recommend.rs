//! The recommendation layout shared by the server's RECOMMEND, `ember-bench` and the tests: how embedding rows
//! are named in the keyspace, how a user and candidates become a dense model's inputs, and top-k.
//!
//! A dense model (such as `models/dlrm_dense.onnx`) takes `dense` FLOAT [batch, D] and `pooled` FLOAT
//! [batch, F, E]. For `RECOMMEND model user k CANDIDATES n id...`, row b of the batch scores candidate b:
//! - `dense` is the user's dense features, key `dense:{user}` (D little-endian f32);
//! - fields `0 .. F/2` of `pooled` are the user's rows, fields `F/2 .. F` the candidate's; field f of entity id
//!   is key `emb:{f}:{id}` (E little-endian f32). Each field is a bag of one row here, so pooling (a sum) is the
//!   row itself; the model also takes true multi-row bags, as the generator's `dlrm_dense` test vectors show.

use crate::error::{Error, ErrorKind, Result};
use crate::tensor::{Tensor, TensorData};

/// The key holding field `field`'s embedding row for entity `id`.
pub fn embedding_key(field: usize, id: &[u8]) -> Vec<u8> {
    let mut key = format!("emb:{field}:").into_bytes();
    key.extend_from_slice(id);
    key
}

/// The key holding a user's dense features.
pub fn dense_key(user: &[u8]) -> Vec<u8> {
    let mut key = b"dense:".to_vec();
    key.extend_from_slice(user);
    key
}

/// Little-endian f32 bytes as floats.
///
/// # Errors
/// [`ErrorKind::InvalidTensor`] when the length is not `4 * expected_len`.
pub fn decode_row(bytes: &[u8], expected_len: usize) -> Result<Vec<f32>> {
    check_row_len(bytes, expected_len)?;
    Ok(floats(bytes).collect())
}

/// Little-endian f32 bytes decoded into `row`, memory not yet initialised (a model input that is written once and
/// never zeroed), which gives the expected length: on success every element of `row` is initialised.
///
/// # Errors
/// [`ErrorKind::InvalidTensor`] when the length is not `4 * row.len()`; `row` is then untouched.
pub fn decode_row_into_uninit(bytes: &[u8], row: &mut [std::mem::MaybeUninit<f32>]) -> Result<()> {
    check_row_len(bytes, row.len())?;
    for (value, x) in row.iter_mut().zip(floats(bytes)) {
        value.write(x);
    }
    Ok(())
}

/// The floats of little-endian bytes (a trailing partial float is ignored; callers check the length first).
fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().expect("chunk of 4")))
}

fn check_row_len(bytes: &[u8], floats: usize) -> Result<()> {
    if bytes.len() == floats * 4 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidTensor,
        format!(
            "row has {} bytes, expected {} ({floats} little-endian f32)",
            bytes.len(),
            floats * 4,
        ),
    ))
}

/// Floats as little-endian bytes: how rows are written.
pub fn encode_row(row: &[f32]) -> Vec<u8> {
    row.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A dense model's shape as RECOMMEND sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Dense features per row (D).
    pub dense_len: usize,
    /// Sparse fields (F); the first `fields / 2` are the user's.
    pub fields: usize,
    /// Embedding dimension (E).
    pub embedding_dim: usize,
}

impl Layout {
    /// The demo model's layout: 13 dense features, 26 fields of dimension 64.
    pub const DEMO: Layout = Layout {
        dense_len: 13,
        fields: 26,
        embedding_dim: 64,
    };

    /// Fields that come from the user.
    pub fn user_fields(&self) -> std::ops::Range<usize> {
        0..self.fields / 2
    }

    /// Fields that come from the candidate.
    pub fn candidate_fields(&self) -> std::ops::Range<usize> {
        self.fields / 2..self.fields
    }

    /// Builds the (`dense`, `pooled`) inputs for one user and `candidate_rows.len()` candidates.
    /// `user_rows` holds the user fields' rows in order; each entry of `candidate_rows` the candidate fields' rows.
    ///
    /// # Errors
    /// [`ErrorKind::InputMismatch`] when a count or a row length differs from the layout.
    pub fn assemble(
        &self,
        user_dense: &[f32],
        user_rows: &[Vec<f32>],
        candidate_rows: &[Vec<Vec<f32>>],
    ) -> Result<[Tensor; 2]> {
        let mismatch = |what: String| Error::new(ErrorKind::InputMismatch, what);
        if user_dense.len() != self.dense_len {
            return Err(mismatch(format!(
                "user dense features have {} values, expected {}",
                user_dense.len(),
                self.dense_len
            )));
        }
        if user_rows.len() != self.user_fields().len() {
            return Err(mismatch(format!(
                "{} user rows, expected {}",
                user_rows.len(),
                self.user_fields().len()
            )));
        }
        let row_lengths_fit =
            |rows: &[Vec<f32>]| rows.iter().all(|row| row.len() == self.embedding_dim);
        if !row_lengths_fit(user_rows) || !candidate_rows.iter().all(|rows| row_lengths_fit(rows)) {
            return Err(mismatch(format!(
                "an embedding row does not have {} values",
                self.embedding_dim
            )));
        }
        let batch = candidate_rows.len();
        let mut dense = Vec::with_capacity(batch * self.dense_len);
        let mut pooled = Vec::with_capacity(batch * self.fields * self.embedding_dim);
        for rows in candidate_rows {
            if rows.len() != self.candidate_fields().len() {
                return Err(mismatch(format!(
                    "{} candidate rows, expected {}",
                    rows.len(),
                    self.candidate_fields().len()
                )));
            }
            dense.extend_from_slice(user_dense);
            for row in user_rows.iter().chain(rows) {
                pooled.extend_from_slice(row);
            }
        }
        Ok([
            Tensor::new(vec![batch, self.dense_len], TensorData::Float(dense))?,
            Tensor::new(
                vec![batch, self.fields, self.embedding_dim],
                TensorData::Float(pooled),
            )?,
        ])
    }
}

/// The demo tables the generator writes (`dlrm_embeddings.npy` [F, rows, E] and `dlrm_user_dense.npy`
/// [rows, D] in `dir`) as the keys and values RECOMMEND reads: `emb:{f}:{id}` and `dense:{id}` for every id.
///
/// # Errors
/// [`ErrorKind::Io`] when a file is missing or malformed; [`ErrorKind::InputMismatch`] when the shapes do not
/// fit [`Layout::DEMO`].
pub fn demo_rows(dir: &std::path::Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let tables = crate::npy::read(&dir.join("dlrm_embeddings.npy"))?;
    let dense = crate::npy::read(&dir.join("dlrm_user_dense.npy"))?;
    let layout = Layout::DEMO;
    let fits = tables.shape().len() == 3
        && tables.shape()[0] == layout.fields
        && tables.shape()[2] == layout.embedding_dim
        && dense.shape() == [tables.shape()[1], layout.dense_len];
    let (Some(tables_f32), Some(dense_f32), true) = (tables.as_f32(), dense.as_f32(), fits) else {
        return Err(Error::new(
            ErrorKind::InputMismatch,
            format!(
                "demo tables have shapes {:?} and {:?}; regenerate with models/generate.py",
                tables.shape(),
                dense.shape()
            ),
        ));
    };
    let rows = tables.shape()[1];
    let mut out = Vec::with_capacity(rows * (layout.fields + 1));
    for id in 0..rows {
        let id_text = id.to_string();
        out.push((
            dense_key(id_text.as_bytes()),
            encode_row(&dense_f32[id * layout.dense_len..(id + 1) * layout.dense_len]),
        ));
        for field in 0..layout.fields {
            let start = (field * rows + id) * layout.embedding_dim;
            out.push((
                embedding_key(field, id_text.as_bytes()),
                encode_row(&tables_f32[start..start + layout.embedding_dim]),
            ));
        }
    }
    Ok(out)
}

/// Indexes of the `k` highest scores, highest first; ties keep the earlier index first (a stable order, so
/// replies are deterministic). NaN scores sort last.
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        y.partial_cmp(&x)
            .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
            .then(a.cmp(&b))
    });
    order.truncate(k);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_by_field_and_id() {
        assert_eq!(embedding_key(3, b"42"), b"emb:3:42");
        assert_eq!(dense_key(b"user7"), b"dense:user7");
    }

    #[test]
    fn rows_round_trip_and_bad_lengths_are_errors() {
        let row = [1.5f32, -2.0, 0.25];
        assert_eq!(decode_row(&encode_row(&row), 3).unwrap(), row);
        assert_eq!(
            decode_row(&[0; 11], 3).unwrap_err().kind(),
            ErrorKind::InvalidTensor
        );
    }

    #[test]
    fn top_k_orders_by_score_then_index() {
        let cases: [(&[f32], usize, &[usize]); 5] = [
            (&[0.1, 0.9, 0.5], 2, &[1, 2]),
            (&[0.5, 0.5, 0.7], 3, &[2, 0, 1]),
            (&[0.2, f32::NAN, 0.3], 3, &[2, 0, 1]),
            (&[0.2], 5, &[0]),
            (&[], 1, &[]),
        ];
        for (scores, k, want) in cases {
            assert_eq!(top_k(scores, k), want, "{scores:?} k={k}");
        }
    }

    #[test]
    fn assemble_puts_user_rows_first_then_the_candidates() {
        let layout = Layout {
            dense_len: 1,
            fields: 2,
            embedding_dim: 2,
        };
        let [dense, pooled] = layout
            .assemble(
                &[9.0],
                &[vec![1.0, 2.0]],
                &[vec![vec![3.0, 4.0]], vec![vec![5.0, 6.0]]],
            )
            .unwrap();
        assert_eq!(dense.shape(), &[2, 1]);
        assert_eq!(dense.as_f32().unwrap(), &[9.0, 9.0]);
        assert_eq!(pooled.shape(), &[2, 2, 2]);
        assert_eq!(
            pooled.as_f32().unwrap(),
            &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 5.0, 6.0]
        );
        let err = layout.assemble(&[9.0], &[vec![1.0]], &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InputMismatch);
    }
}
