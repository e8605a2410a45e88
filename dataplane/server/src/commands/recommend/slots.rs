//! RECOMMEND scored from the GPU embedding cache's slots (issue 17): on the native backend with the cache on, a
//! request of at least `--gpu-slot-rows` candidates hands the engine slots, bag offsets and dense features
//! (`DlrmEngine::score_slots`), the embedding bag runs over the cache's device table, and only scores come back.
//! The pooled path copies every row device -> host (pooled), into the model's input tensor, into the engine's
//! pinned buffer and host -> device again: 26 rows of 256 bytes a candidate, four times over.
//!
//! Why a chunk runs at once on the connection's task instead of through the batcher: the table and the engine
//! are both this shard's (on this thread), and a slot is only valid until the next write of the table, so the
//! rows must be resolved, copied and scored with no await in between; a batch of slot requests would have to
//! hold its slots across the batcher's wait. Small requests keep the batcher, where merging pays (see
//! `inference::GPU_SLOT_ROWS_DEFAULT`).
//!
//! Rows of keys this shard owns resolve to cached slots; rows of keys other shards own (and the user's dense
//! features) are fetched as on the pooled path, and the other shards' rows are written into scratch slots for this
//! call only (`DeviceRows::slots`). Anything the slot path does not handle exactly as the pooled path does (a
//! missing row, a value that is not a string of the right length, an integer, a row with a TTL, a shard that did
//! not answer, a device error) makes [`score`] return `None`, and the caller takes the pooled path, which gives
//! the CPU path's reply or error: replies never depend on which path ran.

use std::collections::BTreeMap;
use std::rc::Rc;

use ember_kernels::dlrm::SparseBags;
use ember_kernels::recommend::Layout;
use ember_store::Value;

use super::rows::RowKeys;
use super::DeviceKeys;
use crate::inference::ShardModel;
use crate::shard::{Shard, ShardReply, ShardRequest};

/// The values a chunk reads that do not come from the cache: the user's dense features and the rows of keys other
/// shards own, each checked to be a string of the right length and decoded.
struct ReadRows {
    dense: Option<Vec<f32>>,
    /// Key indexes of the other shards' rows, in the order of `rows`.
    foreign_indexes: Vec<usize>,
    /// Their rows, `dim` floats each.
    foreign_rows: Vec<f32>,
}

impl ReadRows {
    /// Takes `value` as key `index`'s row; false when it is not one (the pooled path then decides the reply).
    fn take(&mut self, layout: &Layout, index: usize, value: Option<&Value>) -> bool {
        let Some(Value::Str(bytes)) = value else {
            return false;
        };
        if index == 0 {
            let mut dense = Vec::with_capacity(layout.dense_len);
            let taken = extend_with_row(&mut dense, &bytes[..], layout.dense_len);
            self.dense = Some(dense);
            return taken;
        }
        self.foreign_indexes.push(index);
        extend_with_row(&mut self.foreign_rows, &bytes[..], layout.embedding_dim)
    }
}

/// Appends `bytes` as `floats` little-endian f32 to `out`; false (nothing appended) when the length is not that.
fn extend_with_row(out: &mut Vec<f32>, bytes: &[u8], floats: usize) -> bool {
    if bytes.len() != floats * std::mem::size_of::<f32>() {
        return false;
    }
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes(chunk.try_into().expect("4 bytes"))),
    );
    true
}

/// The engine's inputs for `candidates` samples: each sample's bags (one slot each: the user's fields, then the
/// candidate's) in the model's field order, the offsets of those one-slot bags, and the user's dense features once
/// per sample. `slot_of` holds each key index's slot ([`RowKeys`] order; index 0, the dense features, unused).
fn engine_inputs(
    layout: &Layout,
    candidates: usize,
    slot_of: &[u32],
    dense_row: &[f32],
) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let user = layout.user_fields().len();
    let per_candidate = layout.candidate_fields().len();
    // RowKeys and the model's pooled input both put the user's fields first.
    assert_eq!(
        layout.candidate_fields().start,
        user,
        "user fields come first"
    );
    assert_eq!(slot_of.len(), 1 + user + candidates * per_candidate);
    assert_eq!(dense_row.len(), layout.dense_len);
    let user_slots = &slot_of[1..=user];
    let mut ids = Vec::with_capacity(candidates * layout.fields);
    for candidate in 0..candidates {
        let first = 1 + user + candidate * per_candidate;
        ids.extend_from_slice(user_slots);
        ids.extend_from_slice(&slot_of[first..first + per_candidate]);
    }
    let bag_count = u32::try_from(ids.len()).expect("a chunk's bags fit u32");
    let offsets: Vec<u32> = (0..=bag_count).collect();
    let mut dense = Vec::with_capacity(candidates * layout.dense_len);
    for _ in 0..candidates {
        dense.extend_from_slice(dense_row);
    }
    (ids, offsets, dense)
}

/// Scores one chunk (`keys`, `candidates` candidates) of a RECOMMEND from the shard's GPU embedding cache; `None`
/// when the chunk must take the pooled path instead (see the module docs), counted as a fallback.
pub async fn score(
    shard: &Rc<Shard>,
    db: usize,
    model: &ShardModel,
    layout: Layout,
    keys: &RowKeys<'_>,
    now_ms: u64,
) -> Option<Vec<f32>> {
    let scores = try_score(shard, db, model, layout, keys, now_ms).await;
    shard.inference.with_device_rows(|rows| match &scores {
        Some(scores) => rows.count_slot_call(scores.len()),
        None => rows.count_slot_fallback(),
    });
    scores
}

async fn try_score(
    shard: &Rc<Shard>,
    db: usize,
    model: &ShardModel,
    layout: Layout,
    keys: &RowKeys<'_>,
    now_ms: u64,
) -> Option<Vec<f32>> {
    let count = keys.count();
    let mut local = DeviceKeys::default();
    let mut dense_key_here: Option<Vec<u8>> = None;
    let mut elsewhere: BTreeMap<usize, (Vec<usize>, Vec<Vec<u8>>)> = BTreeMap::new();
    let mut key = Vec::new();
    for index in 0..count {
        keys.write(index, &mut key);
        let owner = shard.owner_of(&key);
        if owner != shard.index {
            let (indexes, owner_keys) = elsewhere.entry(owner).or_default();
            indexes.push(index);
            owner_keys.push(key.clone());
        } else if index == 0 {
            // Key 0 is the user's dense features, which are not an embedding row.
            dense_key_here = Some(key.clone());
        } else {
            local.push(index, &key);
        }
    }
    let mut read = ReadRows {
        dense: None,
        foreign_indexes: Vec::new(),
        foreign_rows: Vec::new(),
    };
    for (owner, (indexes, owner_keys)) in elsewhere {
        let request = ShardRequest::Fetch {
            db,
            keys: owner_keys,
        };
        let ShardReply::Entries(entries) = shard.call(owner, request).await else {
            return None;
        };
        if entries.len() != indexes.len() {
            return None;
        }
        for (index, entry) in indexes.into_iter().zip(&entries) {
            if !read.take(&layout, index, entry.as_ref().map(|entry| &entry.value)) {
                return None;
            }
        }
    }
    // From here to the scores there is no await: no write can come between resolving a slot and the kernel
    // reading it, and the scratch slots hold this call's rows until it returns.
    let keyspace = shard.keyspace.borrow();
    if let Some(dense_key) = &dense_key_here {
        let value = keyspace
            .peek(db, dense_key, now_ms)
            .map(|entry| &entry.value);
        if !read.take(&layout, 0, value) {
            return None;
        }
    }
    let dense_row = read.dense.as_deref()?;
    let local_keys = local.keys();
    let candidates = (count - 1 - layout.user_fields().len()) / layout.candidate_fields().len();
    let outcome = shard.inference.with_device_rows(|rows| {
        let mut local_slots = Vec::with_capacity(local_keys.len());
        let Some(foreign_slots) = rows.slots(
            &keyspace,
            db,
            &local_keys,
            now_ms,
            &read.foreign_rows,
            &mut local_slots,
        )?
        else {
            return Ok(None);
        };
        let mut slot_of = vec![u32::MAX; count];
        for (&index, &slot) in local.indexes.iter().zip(&local_slots) {
            slot_of[index] = slot;
        }
        for (&index, slot) in read.foreign_indexes.iter().zip(foreign_slots) {
            slot_of[index] = slot;
        }
        // Every embedding row has a slot: the local keys' from the cache, the others' in the scratch range.
        assert!(
            slot_of[1..].iter().all(|&slot| slot != u32::MAX),
            "every row key has a slot"
        );
        let (ids, offsets, dense) = engine_inputs(&layout, candidates, &slot_of, dense_row);
        let bags = SparseBags {
            offsets: &offsets,
            ids: &ids,
        };
        let mut scores = vec![0.0f32; candidates];
        model.score_slots(rows.table(), &dense, &bags, &mut scores)?;
        Ok::<_, String>(Some(scores))
    })?;
    match outcome {
        Ok(scores) => scores,
        Err(error) => {
            report_device_error(shard, &error);
            None
        }
    }
}

/// Says on stderr, once per shard, why the slot path failed: the request itself is answered by the pooled path,
/// so this line and INFO's `gpu_slot_fallbacks` are where a broken device path shows.
fn report_device_error(shard: &Shard, error: &str) {
    thread_local! {
        static REPORTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !REPORTED.with(|reported| reported.replace(true)) {
        eprintln!(
            "ember: shard {}: RECOMMEND from GPU cache slots failed, using the pooled path: {error}",
            shard.index
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bags_follow_the_models_field_order() {
        // 2 user fields, 2 candidate fields, 3 candidates: key indexes 1-2 are the user's, then 2 per candidate.
        let layout = Layout {
            dense_len: 2,
            fields: 4,
            embedding_dim: 1,
        };
        let slot_of = [u32::MAX, 10, 11, 20, 21, 30, 31, 40, 41];
        let (ids, offsets, dense) = engine_inputs(&layout, 3, &slot_of, &[0.5, -1.0]);
        assert_eq!(ids, [10, 11, 20, 21, 10, 11, 30, 31, 10, 11, 40, 41]);
        assert_eq!(offsets, (0..=12).collect::<Vec<u32>>());
        assert_eq!(dense, [0.5, -1.0, 0.5, -1.0, 0.5, -1.0]);
    }

    #[test]
    fn only_strings_of_the_rows_length_are_read() {
        let layout = Layout {
            dense_len: 2,
            fields: 2,
            embedding_dim: 1,
        };
        let row = |floats: &[f32]| Value::from_vec(ember_kernels::recommend::encode_row(floats));
        // (what, key index, value, taken)
        let cases = [
            ("dense features", 0, Some(row(&[1.0, 2.0])), true),
            ("dense features too short", 0, Some(row(&[1.0])), false),
            ("an embedding row", 3, Some(row(&[4.0])), true),
            (
                "an embedding row too long",
                3,
                Some(row(&[4.0, 5.0])),
                false,
            ),
            ("an integer", 3, Some(Value::Int(7)), false),
            ("a missing key", 3, None, false),
        ];
        for (what, index, value, taken) in cases {
            let mut read = ReadRows {
                dense: None,
                foreign_indexes: Vec::new(),
                foreign_rows: Vec::new(),
            };
            assert_eq!(read.take(&layout, index, value.as_ref()), taken, "{what}");
            if taken && index == 0 {
                assert_eq!(read.dense.as_deref(), Some(&[1.0, 2.0][..]), "{what}");
            }
            if taken && index > 0 {
                assert_eq!(
                    (read.foreign_indexes, read.foreign_rows),
                    (vec![3], vec![4.0])
                );
            }
        }
    }
}
