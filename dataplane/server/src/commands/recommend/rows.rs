//! RECOMMEND's steps that need no runtime: which keys to read, how their values become the dense model's inputs,
//! and the reply. Layout and key names: `ember_kernels::recommend`.

use std::mem::MaybeUninit;

use ember_kernels::recommend::{decode_row_into_uninit, dense_key, embedding_key, top_k, Layout};
use ember_kernels::{DataType, Tensor, TensorData, TensorSpec};
use ember_resp::Protocol;

use ember_resp::ReplySink;

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

/// The keys RECOMMEND reads, by index: the user's dense features (0), the user's rows (1 ..= U), then each
/// candidate's rows in turn. Field prefixes are formatted once per call, so a key costs one copy into a reused
/// buffer.
pub struct RowKeys<'a> {
    layout: Layout,
    user: &'a [u8],
    candidates: &'a [Vec<u8>],
    /// `dense:{user}`.
    dense: Vec<u8>,
    /// `emb:{f}:` for every field f.
    prefixes: Vec<Vec<u8>>,
}

impl<'a> RowKeys<'a> {
    /// The keys for `user` and `candidates` under `layout`.
    pub fn new(layout: Layout, user: &'a [u8], candidates: &'a [Vec<u8>]) -> Self {
        let prefixes = (0..layout.fields).map(|f| embedding_key(f, b"")).collect();
        Self {
            layout,
            user,
            candidates,
            dense: dense_key(user),
            prefixes,
        }
    }

    /// How many keys there are: 1 + U + n * C.
    pub fn count(&self) -> usize {
        key_count(&self.layout, self.candidates.len())
    }

    /// Writes key `index` into `out` (cleared first).
    pub fn write(&self, index: usize, out: &mut Vec<u8>) {
        self.write_row(row_of(&self.layout, index), out);
    }

    /// Writes the key of `row` into `out` (cleared first).
    fn write_row(&self, row: MissingRow, out: &mut Vec<u8>) {
        out.clear();
        let (field, id) = match row {
            MissingRow::Dense => {
                out.extend_from_slice(&self.dense);
                return;
            }
            MissingRow::User(f) => (f, self.user),
            MissingRow::Candidate(c, f) => (
                self.layout.candidate_fields().start + f,
                self.candidates[c].as_slice(),
            ),
        };
        out.extend_from_slice(&self.prefixes[field]);
        out.extend_from_slice(id);
    }

    /// Every key, in order.
    #[cfg(test)]
    pub fn all(&self) -> Vec<Vec<u8>> {
        (0..self.count())
            .map(|index| {
                let mut key = Vec::new();
                self.write(index, &mut key);
                key
            })
            .collect()
    }
}

/// How many row keys a call with `candidates` candidates reads: 1 + U + n * C.
fn key_count(layout: &Layout, candidates: usize) -> usize {
    1 + layout.user_fields().len() + candidates * layout.candidate_fields().len()
}

/// Which row key `index` names.
fn row_of(layout: &Layout, index: usize) -> MissingRow {
    let user_fields = layout.user_fields().len();
    match index {
        0 => MissingRow::Dense,
        i if i <= user_fields => MissingRow::User(i - 1),
        i => {
            let per_candidate = layout.candidate_fields().len();
            let offset = i - 1 - user_fields;
            MissingRow::Candidate(offset / per_candidate, offset % per_candidate)
        }
    }
}

/// Which input a row goes to.
#[derive(Clone, Copy)]
enum Input {
    Dense,
    Pooled,
}

/// The dense model's two inputs, filled in place as the rows' values arrive (in any order): each value is
/// decoded straight into its slot, with no per-row allocation. The user's dense features and rows are decoded
/// once, into candidate 0's slots, and copied to the other candidates at the end.
///
/// The inputs' memory is never zeroed (at batch 256 they are 1.7 MB per call; asking the allocator for zeroed
/// memory was a calloc that page-faulted every call, and zeroing it by hand a pass of its own): every element is
/// written exactly once, either by [`Inputs::place`] or, for a row never placed, with zeros or an error in
/// [`Inputs::finish`], which alone makes the buffers readable.
pub struct Inputs {
    layout: Layout,
    candidates: usize,
    default_zero: bool,
    /// `[candidates, D]`: capacity only, length 0 until [`Inputs::finish`].
    dense: Vec<f32>,
    /// `[candidates, F, E]`: capacity only, length 0 until [`Inputs::finish`].
    pooled: Vec<f32>,
    /// Whether key `index`'s slot holds its value.
    placed: Vec<bool>,
    /// The first malformed row by key index, with what is wrong with it.
    invalid: Option<(usize, String)>,
}

impl Inputs {
    /// Inputs for `candidates` rows, nothing placed yet.
    #[cfg(test)]
    pub fn new(layout: Layout, candidates: usize, default_zero: bool) -> Self {
        let (dense_len, pooled_len) = Self::lens(layout, candidates);
        Self::in_buffers(
            layout,
            candidates,
            default_zero,
            [
                Vec::with_capacity(dense_len),
                Vec::with_capacity(pooled_len),
            ],
        )
    }

    /// How many floats the (`dense`, `pooled`) inputs of `candidates` rows hold.
    pub fn lens(layout: Layout, candidates: usize) -> (usize, usize) {
        (
            candidates * layout.dense_len,
            candidates * layout.fields * layout.embedding_dim,
        )
    }

    /// Inputs for `candidates` rows built in `buffers` (`dense`, `pooled`; empty, with room for at least
    /// [`Inputs::lens`] floats), nothing placed yet.
    ///
    /// # Panics
    /// When a buffer is not empty or is too small.
    pub fn in_buffers(
        layout: Layout,
        candidates: usize,
        default_zero: bool,
        buffers: [Vec<f32>; 2],
    ) -> Self {
        let [dense, pooled] = buffers;
        let (dense_len, pooled_len) = Self::lens(layout, candidates);
        assert!(dense.is_empty() && dense.capacity() >= dense_len);
        assert!(pooled.is_empty() && pooled.capacity() >= pooled_len);
        Self {
            layout,
            candidates,
            default_zero,
            dense,
            pooled,
            placed: vec![false; key_count(&layout, candidates)],
            invalid: None,
        }
    }

    /// Where key `index`'s value goes. Distinct keys have disjoint slots; together with the copies of
    /// [`Inputs::finish`] (candidate 0's dense features and user rows to every other candidate) they cover both
    /// inputs exactly (`slots_and_copies_cover_the_inputs_once` checks it).
    fn slot(&self, index: usize) -> (Input, std::ops::Range<usize>) {
        let e = self.layout.embedding_dim;
        let row = |start: usize| start * e..(start + 1) * e;
        match row_of(&self.layout, index) {
            MissingRow::Dense => (Input::Dense, 0..self.layout.dense_len),
            MissingRow::User(field) => (Input::Pooled, row(field)),
            MissingRow::Candidate(c, offset) => (
                Input::Pooled,
                row(c * self.layout.fields + self.layout.candidate_fields().start + offset),
            ),
        }
    }

    fn slot_mut(&mut self, index: usize) -> &mut [MaybeUninit<f32>] {
        let (input, range) = self.slot(index);
        let buffer = match input {
            Input::Dense => &mut self.dense,
            Input::Pooled => &mut self.pooled,
        };
        &mut buffer.spare_capacity_mut()[range]
    }

    /// Places the value of key `index` ([`RowKeys`] order); `None` when the key does not exist.
    pub fn place(&mut self, index: usize, value: Option<&[u8]>) {
        let Some(bytes) = value else {
            // A missing row stays unplaced: finish() fills it with zeros or names it.
            return;
        };
        match decode_row_into_uninit(bytes, self.slot_mut(index)) {
            Ok(()) => self.placed[index] = true,
            Err(error) => {
                self.record_invalid(index, format!("ERR embedding row '{{key}}': {error}"));
            }
        }
    }

    /// Places key `index`'s row, already decoded (from the GPU embedding cache).
    ///
    /// # Panics
    /// When `row` is not one embedding row of the layout (the cache's rows are the model's width).
    pub fn place_row(&mut self, index: usize, row: &[f32]) {
        let slot = self.slot_mut(index);
        assert_eq!(slot.len(), row.len(), "row {index} has the layout's width");
        for (element, &value) in slot.iter_mut().zip(row) {
            element.write(value);
        }
        self.placed[index] = true;
    }

    /// Records that key `index` holds a `type_name` value, not a row.
    pub fn wrong_type(&mut self, index: usize, type_name: &str) {
        self.record_invalid(
            index,
            format!("WRONGTYPE embedding row '{{key}}' holds a {type_name}, not a string of little-endian f32"),
        );
    }

    fn record_invalid(&mut self, index: usize, message: String) {
        if self
            .invalid
            .as_ref()
            .is_none_or(|(first, _)| index < *first)
        {
            self.invalid = Some((index, message));
        }
    }

    /// The finished (`dense`, `pooled`) tensors; `keys` names a malformed row in its message.
    ///
    /// # Errors
    /// The first malformed row if any (its message), else the first row never placed: missing from the keyspace
    /// (or from a shard that did not answer), unless `default_zero` reads it as zeros.
    pub fn finish(mut self, keys: &RowKeys<'_>) -> Result<[Tensor; 2], InputsError> {
        if let Some((index, message)) = self.invalid {
            let mut key = Vec::new();
            keys.write(index, &mut key);
            return Err(InputsError::Invalid(
                message.replace("{key}", &String::from_utf8_lossy(&key)),
            ));
        }
        for index in 0..self.placed.len() {
            if self.placed[index] {
                continue;
            }
            if !self.default_zero {
                return Err(InputsError::Missing(row_of(&self.layout, index)));
            }
            self.slot_mut(index).fill(MaybeUninit::new(0.0));
        }
        let d = self.layout.dense_len;
        let user_len = self.layout.user_fields().len() * self.layout.embedding_dim;
        let per_candidate = self.layout.fields * self.layout.embedding_dim;
        let (dense_len, pooled_len) = (self.candidates * d, self.candidates * per_candidate);
        {
            let (dense, pooled) = (
                self.dense.spare_capacity_mut(),
                self.pooled.spare_capacity_mut(),
            );
            for c in 1..self.candidates {
                dense.copy_within(0..d, c * d);
                pooled.copy_within(0..user_len, c * per_candidate);
            }
        }
        // SAFETY: every key index's slot is written (placed, or zero-filled by the loop above, which returns on
        // any other unplaced index), and the slots of all key indexes plus the copies just made cover
        // `0..dense_len` of `dense` and `0..pooled_len` of `pooled` (see `slot`), so every element up to the new
        // lengths is initialised. Both lengths are at most the capacities, as `in_buffers` asserted.
        unsafe {
            self.dense.set_len(dense_len);
            self.pooled.set_len(pooled_len);
        }
        let tensor = |shape, data| {
            Tensor::new(shape, TensorData::Float(data))
                .map_err(|e| InputsError::Invalid(format!("ERR {e}")))
        };
        Ok([
            tensor(vec![self.candidates, d], self.dense)?,
            tensor(
                vec![
                    self.candidates,
                    self.layout.fields,
                    self.layout.embedding_dim,
                ],
                self.pooled,
            )?,
        ])
    }
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
pub fn missing_row_message(keys: &RowKeys<'_>, row: MissingRow) -> String {
    let mut key = Vec::new();
    keys.write_row(row, &mut key);
    format!(
        "ERR embedding row '{}' not found (set it, or start ember with --embedding-default zero)",
        String::from_utf8_lossy(&key)
    )
}

/// The top `k` candidates with their scores, best first: like ZRANGE WITHSCORES, a flat array of id, score in
/// RESP2 and an array of [id, score] pairs in RESP3.
pub fn reply(
    out: &mut ReplySink,
    candidates: &[Vec<u8>],
    scores: &[f32],
    k: usize,
    protocol: Protocol,
) {
    let top = top_k(scores, k);
    match protocol {
        Protocol::Resp2 => out.array_len(top.len() * 2),
        Protocol::Resp3 => out.array_len(top.len()),
    }
    for index in top {
        if protocol == Protocol::Resp3 {
            out.array_len(2);
        }
        out.bulk(&candidates[index]);
        out.double(f64::from(scores[index]));
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

    /// Places `values` in reverse order, as replies from several shards may arrive.
    fn inputs(values: &[Option<Vec<u8>>], default_zero: bool) -> Result<[Tensor; 2], InputsError> {
        let candidates = vec![b"a".to_vec(), b"b".to_vec()];
        let mut inputs = Inputs::new(LAYOUT, 2, default_zero);
        for (index, value) in values.iter().enumerate().rev() {
            inputs.place(index, value.as_deref());
        }
        inputs.finish(&RowKeys::new(LAYOUT, b"u", &candidates))
    }

    #[test]
    fn keys_and_inputs_line_up() {
        let candidates = vec![b"a".to_vec(), b"b".to_vec()];
        let keys = RowKeys::new(LAYOUT, b"u", &candidates);
        assert_eq!(keys.count(), 4);
        assert_eq!(
            keys.all(),
            vec![
                b"dense:u".to_vec(),
                b"emb:0:u".to_vec(),
                b"emb:1:a".to_vec(),
                b"emb:1:b".to_vec()
            ]
        );
        let [dense, pooled] = inputs(&[row(9.0), row(1.0), row(2.0), row(3.0)], false).unwrap();
        assert_eq!(dense.shape(), &[2, 1]);
        assert_eq!(dense.as_f32().unwrap(), &[9.0, 9.0]);
        assert_eq!(pooled.shape(), &[2, 2, 1]);
        assert_eq!(pooled.as_f32().unwrap(), &[1.0, 2.0, 1.0, 3.0]);
    }

    #[test]
    fn slots_and_copies_cover_the_inputs_once() {
        // finish() makes the inputs readable on this: every element is written by exactly one slot or copy.
        let layouts = [
            LAYOUT,
            Layout::DEMO,
            Layout {
                dense_len: 3,
                fields: 5,
                embedding_dim: 2,
            },
        ];
        for layout in layouts {
            for candidates in [1, 2, 7] {
                let inputs = Inputs::new(layout, candidates, false);
                let d = layout.dense_len;
                let per_candidate = layout.fields * layout.embedding_dim;
                let user_len = layout.user_fields().len() * layout.embedding_dim;
                let mut dense = vec![0u32; candidates * d];
                let mut pooled = vec![0u32; candidates * per_candidate];
                for index in 0..inputs.placed.len() {
                    let (input, range) = inputs.slot(index);
                    let counts = match input {
                        Input::Dense => &mut dense,
                        Input::Pooled => &mut pooled,
                    };
                    counts[range].iter_mut().for_each(|n| *n += 1);
                }
                for c in 1..candidates {
                    dense[c * d..(c + 1) * d].iter_mut().for_each(|n| *n += 1);
                    pooled[c * per_candidate..c * per_candidate + user_len]
                        .iter_mut()
                        .for_each(|n| *n += 1);
                }
                assert!(
                    dense.iter().chain(&pooled).all(|&n| n == 1),
                    "{layout:?} with {candidates} candidates"
                );
            }
        }
    }

    #[test]
    fn the_demo_layout_places_user_and_candidate_rows() {
        let layout = Layout::DEMO;
        let candidates: Vec<Vec<u8>> = (0..3).map(|c| c.to_string().into_bytes()).collect();
        let keys = RowKeys::new(layout, b"7", &candidates);
        let all = keys.all();
        assert_eq!(all.len(), 1 + 13 + 3 * 13);
        assert_eq!(all[14], b"emb:13:0");
        assert_eq!(all[1 + 13 + 2 * 13 + 12], b"emb:25:2");
        let mut inputs = Inputs::new(layout, 3, false);
        for (index, key) in all.iter().enumerate() {
            let len = if index == 0 { 13 } else { 64 };
            // Every value encodes its own key index, so each slot shows where it came from.
            let value: Vec<f32> = vec![index as f32; len];
            let bytes: Vec<u8> = value.iter().flat_map(|x| x.to_le_bytes()).collect();
            assert!(!key.is_empty());
            inputs.place(index, Some(&bytes));
        }
        let [dense, pooled] = inputs.finish(&keys).unwrap();
        assert!(dense.as_f32().unwrap().iter().all(|&x| x == 0.0));
        let pooled = pooled.as_f32().unwrap();
        for c in 0..3 {
            for f in 0..26 {
                let expected = if f < 13 {
                    1 + f
                } else {
                    1 + 13 + c * 13 + (f - 13)
                };
                let start = (c * 26 + f) * 64;
                assert!(
                    pooled[start..start + 64]
                        .iter()
                        .all(|&x| x == expected as f32),
                    "candidate {c} field {f}"
                );
            }
        }
    }

    #[test]
    fn rows_in_key_order_and_in_any_order_give_the_same_inputs() {
        let layout = Layout {
            dense_len: 2,
            fields: 4,
            embedding_dim: 3,
        };
        let candidates: Vec<Vec<u8>> = (0..5).map(|c| c.to_string().into_bytes()).collect();
        let keys = RowKeys::new(layout, b"u", &candidates);
        let value = |index: usize| -> Option<Vec<u8>> {
            // The last user row is missing: read as zeros with default_zero.
            (index != 2).then(|| {
                let len = if index == 0 { 2 } else { 3 };
                (0..len)
                    .flat_map(|i| ((index * 10 + i) as f32).to_le_bytes())
                    .collect()
            })
        };
        let build = |order: &[usize]| {
            let mut inputs = Inputs::new(layout, candidates.len(), true);
            for &index in order {
                inputs.place(index, value(index).as_deref());
            }
            let [dense, pooled] = inputs.finish(&keys).unwrap();
            (
                dense.as_f32().unwrap().to_vec(),
                pooled.as_f32().unwrap().to_vec(),
            )
        };
        let forward: Vec<usize> = (0..keys.count()).collect();
        let (dense, pooled) = build(&forward);
        for c in 0..5 {
            assert_eq!(&dense[c * 2..c * 2 + 2], &[0.0, 1.0]);
            let row = &pooled[c * 12..(c + 1) * 12];
            assert_eq!(
                &row[..6],
                &[10.0, 11.0, 12.0, 0.0, 0.0, 0.0],
                "user rows of candidate {c}"
            );
            let first = (3 + c * 2) as f32 * 10.0;
            assert_eq!(&row[6..9], &[first, first + 1.0, first + 2.0]);
        }
        let mut shuffled = forward.clone();
        shuffled.reverse();
        shuffled.swap(0, 7);
        assert_eq!(build(&shuffled), (dense, pooled));
    }

    #[test]
    fn missing_rows_are_named_or_defaulted() {
        let candidates = vec![b"a".to_vec(), b"b".to_vec()];
        let err = inputs(&[row(9.0), None, row(2.0), None], false).unwrap_err();
        assert_eq!(
            err,
            InputsError::Missing(MissingRow::User(0)),
            "the first missing row wins"
        );
        let err = inputs(&[row(9.0), row(1.0), row(2.0), None], false).unwrap_err();
        assert_eq!(err, InputsError::Missing(MissingRow::Candidate(1, 0)));
        assert_eq!(
            missing_row_message(
                &RowKeys::new(LAYOUT, b"u", &candidates),
                MissingRow::Candidate(1, 0)
            ),
            "ERR embedding row 'emb:1:b' not found (set it, or start ember with --embedding-default zero)"
        );
        let [_, pooled] = inputs(&[row(9.0), row(1.0), row(2.0), None], true).unwrap();
        assert_eq!(pooled.as_f32().unwrap(), &[1.0, 2.0, 1.0, 0.0]);
        let mut typed = Inputs::new(LAYOUT, 2, false);
        typed.wrong_type(3, "set");
        assert!(matches!(
            typed.finish(&RowKeys::new(LAYOUT, b"u", &candidates)),
            Err(InputsError::Invalid(m)) if m.starts_with("WRONGTYPE embedding row 'emb:1:b' holds a set")
        ));
        let err = inputs(&[row(9.0), None, Some(vec![1, 2]), Some(vec![3])], false).unwrap_err();
        assert!(
            matches!(&err, InputsError::Invalid(m) if m.contains("row 'emb:1:a'") && m.contains("row has 2 bytes")),
            "a malformed row wins over a missing one, the first malformed row is named: {err:?}"
        );
    }

    #[test]
    fn reply_is_best_first() {
        let mut out = ReplySink::resp(Vec::new(), Protocol::Resp2);
        reply(
            &mut out,
            &[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
            &[0.25, 0.75, 0.5],
            2,
            Protocol::Resp2,
        );
        assert_eq!(
            out.bytes_mut().as_slice(),
            b"*4\r\n$1\r\nb\r\n$4\r\n0.75\r\n$1\r\nc\r\n$3\r\n0.5\r\n"
        );
    }
}
