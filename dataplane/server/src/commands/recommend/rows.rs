//! RECOMMEND's steps that need no runtime: which keys to read, how their values become the dense model's inputs,
//! and the reply. Layout and key names: `ember_kernels::recommend`.

use ember_kernels::recommend::{decode_row, dense_key, embedding_key, top_k, Layout};
use ember_kernels::{DataType, Tensor, TensorSpec};
use ember_resp::encode::{self, Protocol};

/// The layout a model's inputs imply: `[?, D]` FLOAT then `[?, F, E]` FLOAT, F at least 2.
///
/// # Errors
/// A message naming the model when its inputs are not a dense recommendation model's.
pub fn layout_of(model: &[u8], specs: &[TensorSpec]) -> Result<Layout, String> {
    let not_dense = || {
        format!(
            "ERR model '{}' is not a dense recommendation model (inputs FLOAT [batch, D] and FLOAT [batch, F, E])",
            String::from_utf8_lossy(model)
        )
    };
    let [dense, pooled] = specs else {
        return Err(not_dense());
    };
    match (
        dense.dtype,
        dense.shape.as_slice(),
        pooled.dtype,
        pooled.shape.as_slice(),
    ) {
        (DataType::Float, [_, Some(d)], DataType::Float, [_, Some(f), Some(e)]) if *f >= 2 => {
            Ok(Layout {
                dense_len: *d,
                fields: *f,
                embedding_dim: *e,
            })
        }
        _ => Err(not_dense()),
    }
}

/// Every key RECOMMEND reads, in order: the user's dense features, the user's rows, then each candidate's rows.
pub fn keys(layout: &Layout, user: &[u8], candidates: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut keys = Vec::with_capacity(
        1 + layout.user_fields().len() + candidates.len() * layout.candidate_fields().len(),
    );
    keys.push(dense_key(user));
    keys.extend(layout.user_fields().map(|f| embedding_key(f, user)));
    for candidate in candidates {
        keys.extend(
            layout
                .candidate_fields()
                .map(|f| embedding_key(f, candidate)),
        );
    }
    keys
}

/// The model's inputs from the values of [`keys`] (same order). A missing key is an error that names it, unless
/// `default_zero`, which reads it as zeros.
///
/// # Errors
/// [`InputsError::Missing`] naming the first missing row ([`missing_row_message`] turns it into the reply), or
/// [`InputsError::Invalid`] for a value of the wrong length.
pub fn inputs(
    layout: &Layout,
    values: Vec<Option<Vec<u8>>>,
    default_zero: bool,
    candidate_count: usize,
) -> Result<[Tensor; 2], InputsError> {
    let keys_expected =
        1 + layout.user_fields().len() + candidate_count * layout.candidate_fields().len();
    assert_eq!(values.len(), keys_expected, "one value per key from keys()");
    let mut rows = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        let expected_len = if index == 0 {
            layout.dense_len
        } else {
            layout.embedding_dim
        };
        rows.push(match value {
            Some(bytes) => {
                Some(decode_row(&bytes, expected_len).map_err(|e| {
                    InputsError::Invalid(format!("ERR embedding row #{index}: {e}"))
                })?)
            }
            None if default_zero => Some(vec![0.0; expected_len]),
            None => None,
        });
    }
    let mut rows = rows.into_iter();
    let dense = rows.next().flatten();
    let user_rows: Vec<Option<Vec<f32>>> = rows.by_ref().take(layout.user_fields().len()).collect();
    let candidate_rows: Vec<Vec<Option<Vec<f32>>>> = (0..candidate_count)
        .map(|_| {
            rows.by_ref()
                .take(layout.candidate_fields().len())
                .collect()
        })
        .collect();
    let missing = InputsError::Missing;
    let dense = dense.ok_or(missing(MissingRow::Dense))?;
    let user_rows: Vec<Vec<f32>> = user_rows
        .into_iter()
        .enumerate()
        .map(|(f, r)| r.ok_or(missing(MissingRow::User(f))))
        .collect::<Result<_, _>>()?;
    let candidate_rows: Vec<Vec<Vec<f32>>> = candidate_rows
        .into_iter()
        .enumerate()
        .map(|(c, rows)| {
            rows.into_iter()
                .enumerate()
                .map(|(f, r)| r.ok_or(missing(MissingRow::Candidate(c, f))))
                .collect()
        })
        .collect::<Result<_, _>>()?;
    layout
        .assemble(&dense, &user_rows, &candidate_rows)
        .map_err(|e| InputsError::Invalid(format!("ERR {e}")))
}

/// Why the inputs could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputsError {
    /// A row is not in the keyspace.
    Missing(MissingRow),
    /// A row is malformed; the reply text.
    Invalid(String),
}

/// Which row was missing, turned into the message by [`missing_row_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingRow {
    /// The user's dense features.
    Dense,
    /// A user field.
    User(usize),
    /// Candidate index, field offset within the candidate fields.
    Candidate(usize, usize),
}

/// The error naming the missing key.
pub fn missing_row_message(
    layout: &Layout,
    user: &[u8],
    candidates: &[Vec<u8>],
    row: MissingRow,
) -> String {
    let key = match row {
        MissingRow::Dense => dense_key(user),
        MissingRow::User(f) => embedding_key(f, user),
        MissingRow::Candidate(c, f) => {
            embedding_key(layout.candidate_fields().start + f, &candidates[c])
        }
    };
    format!(
        "ERR embedding row '{}' not found (set it, or start ember with --embedding-default zero)",
        String::from_utf8_lossy(&key)
    )
}

/// The top `k` candidates with their scores, best first: like ZRANGE WITHSCORES, a flat array of id, score in
/// RESP2 and an array of [id, score] pairs in RESP3.
pub fn reply(
    out: &mut Vec<u8>,
    candidates: &[Vec<u8>],
    scores: &[f32],
    k: usize,
    protocol: Protocol,
) {
    let top = top_k(scores, k);
    match protocol {
        Protocol::Resp2 => encode::array_len(out, top.len() * 2),
        Protocol::Resp3 => encode::array_len(out, top.len()),
    }
    for index in top {
        if protocol == Protocol::Resp3 {
            encode::array_len(out, 2);
        }
        encode::bulk(out, &candidates[index]);
        encode::double(out, f64::from(scores[index]), protocol);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        dense_len: 1,
        fields: 2,
        embedding_dim: 1,
    };

    fn row(x: f32) -> Option<Vec<u8>> {
        Some(x.to_le_bytes().to_vec())
    }

    #[test]
    fn keys_and_inputs_line_up() {
        let candidates = vec![b"a".to_vec(), b"b".to_vec()];
        assert_eq!(
            keys(&LAYOUT, b"u", &candidates),
            vec![
                b"dense:u".to_vec(),
                b"emb:0:u".to_vec(),
                b"emb:1:a".to_vec(),
                b"emb:1:b".to_vec()
            ]
        );
        let [dense, pooled] = inputs(
            &LAYOUT,
            vec![row(9.0), row(1.0), row(2.0), row(3.0)],
            false,
            2,
        )
        .unwrap();
        assert_eq!(dense.as_f32().unwrap(), &[9.0, 9.0]);
        assert_eq!(pooled.as_f32().unwrap(), &[1.0, 2.0, 1.0, 3.0]);
    }

    #[test]
    fn missing_rows_are_named_or_defaulted() {
        let candidates = vec![b"a".to_vec(), b"b".to_vec()];
        let err = inputs(&LAYOUT, vec![row(9.0), row(1.0), row(2.0), None], false, 2).unwrap_err();
        assert_eq!(err, InputsError::Missing(MissingRow::Candidate(1, 0)));
        assert_eq!(
            missing_row_message(&LAYOUT, b"u", &candidates, MissingRow::Candidate(1, 0)),
            "ERR embedding row 'emb:1:b' not found (set it, or start ember with --embedding-default zero)"
        );
        let [_, pooled] =
            inputs(&LAYOUT, vec![row(9.0), row(1.0), row(2.0), None], true, 2).unwrap();
        assert_eq!(pooled.as_f32().unwrap(), &[1.0, 2.0, 1.0, 0.0]);
        let err = inputs(
            &LAYOUT,
            vec![Some(vec![1, 2]), row(1.0), row(2.0), row(3.0)],
            false,
            2,
        )
        .unwrap_err();
        assert!(
            matches!(&err, InputsError::Invalid(m) if m.contains("row has 2 bytes")),
            "{err:?}"
        );
    }

    #[test]
    fn reply_is_best_first() {
        let mut out = Vec::new();
        reply(
            &mut out,
            &[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
            &[0.25, 0.75, 0.5],
            2,
            Protocol::Resp2,
        );
        assert_eq!(
            out,
            b"*4\r\n$1\r\nb\r\n$4\r\n0.75\r\n$1\r\nc\r\n$3\r\n0.5\r\n"
        );
    }
}
