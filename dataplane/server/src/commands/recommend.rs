//! RECOMMEND model user k CANDIDATES n id... | FROM key: gathers the user's and each candidate's embedding rows
//! from the keyspace (strings of little-endian f32, keys `dense:{user}` and `emb:{field}:{id}`), runs the dense
//! model through the shard's batcher, and returns the top k ids with their scores, best first.

pub mod args;
pub mod from_key;
pub mod rows;

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

/// Reads every row of `keys` into `inputs`: rows this shard owns straight from its keyspace into their slots,
/// the others with one Fetch per owning shard.
async fn gather(
    shard: &Rc<Shard>,
    db: usize,
    keys: &RowKeys<'_>,
    mut inputs: Inputs,
    now_ms: u64,
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
            let start = names.len();
            names.extend_from_slice(&key);
            local.push((index, start..names.len()));
        }
        let keyspace = shard.keyspace.borrow();
        let found: Vec<Option<&Value>> = local
            .iter()
            .map(|(_, range)| {
                keyspace
                    .peek(db, &names[range.clone()], now_ms)
                    .map(|entry| &entry.value)
            })
            .collect();
        let mut text = Vec::new();
        for ((index, _), value) in local.iter().zip(found) {
            place(&mut inputs, *index, value, &mut text);
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
    // A request larger than max-batch goes in as several requests that the batcher runs back to back. Each
    // chunk's inputs are gathered on their own, so no tensor is built whole and then copied apart.
    let chunk_rows = match model.meta.batch_size as usize {
        0 => candidates.len(),
        rows => rows,
    };
    let mut chunks: Vec<[Tensor; 2]> = Vec::with_capacity(candidates.len().div_ceil(chunk_rows));
    for chunk in candidates.chunks(chunk_rows) {
        let keys = RowKeys::new(layout, &parsed.user, chunk);
        let inputs = Inputs::new(layout, chunk.len(), default_zero);
        match gather(shard, client.db, &keys, inputs, now_ms)
            .await
            .finish(&keys)
        {
            Ok(inputs) => chunks.push(inputs),
            Err(InputsError::Missing(row)) => {
                return Err(rows::missing_row_message(&keys, row).into());
            }
            Err(InputsError::Invalid(message)) => return Err(message.into()),
        }
    }
    let runs: Vec<Pin<Box<dyn Future<Output = Result<Vec<Tensor>, String>> + '_>>> = chunks
        .into_iter()
        .map(|inputs| Box::pin(model.run(inputs.into(), None)) as Pin<Box<dyn Future<Output = _>>>)
        .collect();
    let mut scores = Vec::with_capacity(candidates.len());
    for result in join_all(runs).await {
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
    rows::reply(out, &candidates, &scores, parsed.k, client.protocol);
    Ok(())
}
