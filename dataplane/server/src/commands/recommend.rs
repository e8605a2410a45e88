//! RECOMMEND model user k CANDIDATES n id... | FROM key: gathers the user's and each candidate's embedding rows
//! from the keyspace (strings of little-endian f32, keys `dense:{user}` and `emb:{field}:{id}`), runs the dense
//! model through the shard's batcher, and returns the top k ids with their scores, best first.
//!
//! On the native backend the embedding rows this shard owns come from the shard's GPU embedding cache
//! (`inference::device_rows`): resident rows are gathered on the device, only the missing ones are copied from
//! the keyspace. The dense features, rows other shards own and rows the cache does not keep are read as on the
//! CPU path, so the reply and its errors are the same. A request of at least `--gpu-slot-rows` candidates skips
//! the pooled rows altogether: it is scored from the cache's slots ([`slots`]), and takes the pooled path only
//! when a chunk cannot be.

pub mod args;
pub mod from_key;
pub mod rows;
pub mod slots;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use ember_kernels::Tensor;
use ember_resp::ReplySink;
use ember_store::Value;

use super::{CommandError, CommandResult};
use crate::client::Client;
use crate::shard::{Shard, ShardReply, ShardRequest};

use self::args::Candidates;
use self::rows::{Inputs, InputsError, RowKeys};

/// The embedding rows of one chunk that this shard owns, set aside for the GPU embedding cache: each key's
/// index in [`RowKeys`] order and its name.
#[derive(Default)]
struct DeviceKeys {
    indexes: Vec<usize>,
    names: Vec<u8>,
    ranges: Vec<std::ops::Range<usize>>,
}

impl DeviceKeys {
    fn push(&mut self, index: usize, key: &[u8]) {
        let start = self.names.len();
        self.names.extend_from_slice(key);
        self.indexes.push(index);
        self.ranges.push(start..self.names.len());
    }

    fn keys(&self) -> Vec<&[u8]> {
        self.ranges
            .iter()
            .map(|range| &self.names[range.clone()])
            .collect()
    }
}

/// Reads every row of `keys` into `inputs`: rows this shard owns straight from its keyspace into their slots,
/// the others with one Fetch per owning shard. With `device`, the embedding rows this shard owns are set aside
/// there instead, for [`place_from_device`].
async fn gather(
    shard: &Rc<Shard>,
    db: usize,
    keys: &RowKeys<'_>,
    mut inputs: Inputs,
    now_ms: u64,
    mut device: Option<&mut DeviceKeys>,
) -> Inputs {
    let mut elsewhere: BTreeMap<usize, (Vec<usize>, Vec<Vec<u8>>)> = BTreeMap::new();
    {
        // Three passes over this shard's rows: name them, look them all up, then copy the values. The
        // lookup pass is a short loop whose iterations do not depend on each other, so the processor overlaps
        // their cache misses (two or three per lookup in a large table) instead of taking them one at a time
        // between copies.
        let mut names: Vec<u8> = Vec::with_capacity(keys.count() * 12);
        let mut local: Vec<(usize, std::ops::Range<usize>)> = Vec::with_capacity(keys.count());
        let mut key = Vec::new();
        for index in 0..keys.count() {
            keys.write(index, &mut key);
            let owner = shard.owner_of(&key);
            if owner != shard.index {
                let (indexes, owner_keys) = elsewhere.entry(owner).or_default();
                indexes.push(index);
                owner_keys.push(key.clone());
                continue;
            }
            // Key 0 is the user's dense features, which are not an embedding row.
            if let Some(device) = device.as_deref_mut().filter(|_| index != 0) {
                device.push(index, &key);
                continue;
            }
            let start = names.len();
            names.extend_from_slice(&key);
            local.push((index, start..names.len()));
        }
        let keyspace = shard.keyspace.borrow();
        let mut found: Vec<Option<&Value>> = Vec::with_capacity(GATHER_GROUP_KEYS);
        let mut text = Vec::new();
        for group in local.chunks(GATHER_GROUP_KEYS) {
            found.clear();
            found.extend(group.iter().map(|(_, range)| {
                let value = keyspace
                    .peek(db, &names[range.clone()], now_ms)
                    .map(|entry| &entry.value);
                if let Some(Value::Str(bytes)) = value {
                    prefetch_bytes(bytes);
                }
                value
            }));
            for ((index, _), value) in group.iter().zip(&found) {
                place(&mut inputs, *index, *value, &mut text);
            }
        }
    }
    for (owner, (indexes, owner_keys)) in elsewhere {
        let request = ShardRequest::Fetch {
            db,
            keys: owner_keys,
        };
        let ShardReply::Entries(entries) = shard.call(owner, request).await else {
            continue;
        };
        let mut text = Vec::new();
        for (index, entry) in indexes.into_iter().zip(entries) {
            place(
                &mut inputs,
                index,
                entry.as_ref().map(|entry| &entry.value),
                &mut text,
            );
        }
    }
    inputs
}

/// Keys looked up before their rows are copied: the copies read rows that the lookups asked the CPU to fetch
/// (each row's bytes are a line or more of their own, a cache miss each when read cold, 5% of the shard at batch
/// 256), and 128 rows of the demo model's 256 bytes are 32 KB, which stay in the first-level cache until copied.
const GATHER_GROUP_KEYS: usize = 128;

/// Bytes of a cache line, the stride of [`prefetch_bytes`].
const CACHE_LINE_BYTES: usize = 64;

/// Asks the CPU to bring `bytes` into its caches: a hint, which never faults and changes no result.
fn prefetch_bytes(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(CACHE_LINE_BYTES) {
        // SAFETY: a prefetch reads nothing into the program and never faults, whatever the address; this one is
        // a live slice's besides. SSE, which the intrinsic needs, is part of x86_64's baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Places the rows set aside in `device` from the shard's GPU embedding cache; the rows it does not keep are
/// read from the keyspace as [`gather`] reads them. Runs with no await, so no write comes between the cache's
/// lookups and the rows it returns.
fn place_from_device(
    shard: &Shard,
    db: usize,
    device: &DeviceKeys,
    inputs: &mut Inputs,
    now_ms: u64,
) -> Result<(), CommandError> {
    let keys = device.keys();
    let keyspace = shard.keyspace.borrow();
    let mut pooled = Vec::new();
    let (on_device, dim) = shard
        .inference
        .with_device_rows(|rows| {
            rows.gather(&keyspace, db, &keys, now_ms, &mut pooled)
                .map(|flags| (flags, rows.dim()))
        })
        .ok_or(CommandError::from(
            "ERR GPU embedding cache is not running on this shard",
        ))?
        .map_err(CommandError::from)?;
    let mut next = 0;
    let mut text = Vec::new();
    for ((&index, key), here) in device.indexes.iter().zip(&keys).zip(on_device) {
        if here {
            inputs.place_row(index, &pooled[next * dim..(next + 1) * dim]);
            next += 1;
        } else {
            let value = keyspace.peek(db, key, now_ms).map(|entry| &entry.value);
            place(inputs, index, value, &mut text);
        }
    }
    assert_eq!(next * dim, pooled.len(), "every pooled row was placed");
    Ok(())
}

/// Places one row's value: a string's bytes in place, an integer's text through `text`; a set or sorted set is
/// the wrong type for a row.
fn place(inputs: &mut Inputs, index: usize, value: Option<&Value>, text: &mut Vec<u8>) {
    match value {
        None => inputs.place(index, None),
        Some(Value::Str(bytes)) => inputs.place(index, Some(bytes)),
        Some(int @ Value::Int(_)) => {
            text.clear();
            int.write_bytes(text);
            inputs.place(index, Some(text));
        }
        Some(other) => inputs.wrong_type(index, other.type_name()),
    }
}

/// Polls every future until all are done: the chunks of one RECOMMEND enter the batcher together.
async fn join_all<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *result = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.expect("every future finished"))
        .collect()
}

/// Runs RECOMMEND.
pub async fn run(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let parsed = args::recommend(args)?;
    let model = shard
        .inference
        .model(&parsed.model)
        .ok_or(CommandError::from(super::ai::MODEL_MISSING))?;
    let layout = rows::layout_of(&parsed.model, &model.input_specs())?;
    let now_ms = crate::stats::unix_time_ms();
    let candidates = match parsed.candidates {
        Candidates::Ids(ids) => ids,
        Candidates::Key(key) => from_key::candidates(shard, client.db, &key, now_ms).await?,
    };
    let default_zero = shard.inference.config().embedding_default_zero;
    let through_device = shard.inference.uses_device_rows(
        model.meta.backend,
        layout.embedding_dim,
        shard.shared.shard_count,
        |observer| shard.keyspace.borrow_mut().add_observer(observer),
    )?;
    // A request larger than max-batch goes in as several requests that the batcher runs back to back. Each
    // chunk's inputs are gathered on their own, so no tensor is built whole and then copied apart.
    let chunk_rows = match model.meta.batch_size as usize {
        0 => candidates.len(),
        rows => rows,
    };
    let slot_rows_min = shard.inference.config().gpu_slot_rows_min;
    let through_slots = through_device && slot_rows_min > 0 && candidates.len() >= slot_rows_min;
    // Each chunk's scores: those scored from slots at once, the others after the batcher ran their tensors.
    let chunk_count = candidates.len().div_ceil(chunk_rows);
    let mut chunk_scores: Vec<Option<Vec<f32>>> = Vec::with_capacity(chunk_count);
    let mut chunks: Vec<[Tensor; 2]> = Vec::with_capacity(chunk_count);
    for (chunk_index, chunk) in candidates.chunks(chunk_rows).enumerate() {
        let keys = RowKeys::new(layout, &parsed.user, chunk);
        if through_slots {
            if chunk_index > 0 {
                // A chunk holds the shard for its device time; let cache commands in between chunks.
                crate::runtime::yield_if_needed().await;
            }
            let scores = slots::score(shard, client.db, &model, layout, &keys, now_ms).await;
            let scored = scores.is_some();
            chunk_scores.push(scores);
            if scored {
                continue;
            }
        } else {
            chunk_scores.push(None);
        }
        let (dense_len, pooled_len) = Inputs::lens(layout, chunk.len());
        let buffers = [
            model.input_buffer(dense_len),
            model.input_buffer(pooled_len),
        ];
        let inputs = Inputs::in_buffers(layout, chunk.len(), default_zero, buffers);
        let mut device = through_device.then(DeviceKeys::default);
        let mut inputs = gather(shard, client.db, &keys, inputs, now_ms, device.as_mut()).await;
        if let Some(device) = &device {
            place_from_device(shard, client.db, device, &mut inputs, now_ms)?;
        }
        match inputs.finish(&keys) {
            Ok(inputs) => chunks.push(inputs),
            Err(InputsError::Missing(row)) => {
                return Err(rows::missing_row_message(&keys, row).into());
            }
            Err(InputsError::Invalid(message)) => return Err(message.into()),
        }
    }
    let runs: Vec<Pin<Box<dyn Future<Output = Result<Vec<Tensor>, String>> + '_>>> = chunks
        .into_iter()
        .map(|inputs| {
            Box::pin(model.run_recycling(inputs.into())) as Pin<Box<dyn Future<Output = _>>>
        })
        .collect();
    let mut batched = join_all(runs).await.into_iter();
    let mut scores = Vec::with_capacity(candidates.len());
    for scored in chunk_scores {
        if let Some(scored) = scored {
            scores.extend_from_slice(&scored);
            continue;
        }
        let result = batched
            .next()
            .expect("a batcher result for every chunk not scored from slots");
        let outputs = result.map_err(CommandError::from)?;
        let first = outputs
            .first()
            .and_then(Tensor::as_f32)
            .ok_or(CommandError::from(
                "ERR the model's first output is not FLOAT",
            ))?;
        if first.len() != outputs[0].batch_len() {
            return Err("ERR the model's first output is not one score per row".into());
        }
        scores.extend_from_slice(first);
    }
    assert!(batched.next().is_none(), "every batcher result was placed");
    assert_eq!(scores.len(), candidates.len(), "one score per candidate");
    rows::reply(out, &candidates, &scores, parsed.k, client.protocol);
    Ok(())
}
