//! RedisAI's commands: AI.TENSORSET, AI.TENSORGET, AI.MODELSTORE, AI.MODELGET, AI.MODELDEL, AI.MODELEXECUTE and
//! AI.INFO, with RedisAI's reply shapes and error strings.
//!
//! Where things live: a tensor is a key of type `AI_TENSOR` in the client's database, on the shard that owns the
//! key (slot routing, as for any key), so DEL, TYPE, KEYS, EXPIRE and the rest see it ([`inference::tensors`]).
//! Every shard holds every model, with its own session and batcher, so AI.MODELEXECUTE runs on the connection's
//! shard: it reads the input tensors from their owners, runs the model through the shard's batcher, and writes
//! the outputs at their owners.

pub mod args;
pub mod reply;

use std::rc::Rc;
use std::time::Duration;

use ember_kernels::Tensor;
use ember_resp::ReplySink;

use super::{CommandError, CommandResult, InferenceOp};
use crate::client::Client;
use crate::inference::tensors::TensorRead;
use crate::inference::{self, InferenceReply, InferenceRequest, ModelStats, StoreRequest};
use crate::shard::Shard;

/// RedisAI's reply for a missing model.
pub const MODEL_MISSING: &str = "ERR model key is empty";
/// RedisAI's reply for a missing tensor.
pub const TENSOR_MISSING: &str = "ERR tensor key is empty or in a different shard";

/// Runs an inference command for `client`, writing the reply into `out`.
pub async fn run(
    op: InferenceOp,
    shard: &Rc<Shard>,
    client: &mut Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    match op {
        InferenceOp::TensorSet => tensorset(shard, client, args, out).await,
        InferenceOp::TensorGet => tensorget(shard, client, args, out).await,
        InferenceOp::ModelStore => modelstore(shard, args, out).await,
        InferenceOp::ModelGet => modelget(shard, args, out),
        InferenceOp::ModelDel => modeldel(shard, args, out).await,
        InferenceOp::ModelExecute => modelexecute(shard, client, args, out).await,
        InferenceOp::Info => info(shard, args, out).await,
        InferenceOp::Recommend => super::recommend::run(shard, client, args, out).await,
    }
}

async fn tensorset(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let parsed = {
        let config = shard.config.borrow();
        args::tensorset(args, config.proto_max_bulk_len, |bytes| {
            crate::memory::refuses_request(&config, bytes)
        })
    };
    let (key, tensor) = parsed?;
    set_tensors(shard, client, vec![(key, tensor)]).await?;
    out.ok();
    Ok(())
}

/// Writes each tensor at its key in the client's database, on the key's owning shard (one message per shard).
///
/// # Errors
/// WRONGTYPE when a key holds a value of another type (that shard writes none of its tensors; shards asked
/// before it keep theirs, as RedisAI keeps the outputs it stored before a failing one).
pub async fn set_tensors(
    shard: &Rc<Shard>,
    client: &Client,
    entries: Vec<(Vec<u8>, Tensor)>,
) -> CommandResult {
    let mut by_owner: std::collections::BTreeMap<usize, Vec<(Vec<u8>, Tensor)>> =
        std::collections::BTreeMap::new();
    for (key, tensor) in entries {
        by_owner
            .entry(shard.owner_of(&key))
            .or_default()
            .push((key, tensor));
    }
    for (owner, entries) in by_owner {
        let request = InferenceRequest::TensorSet {
            db: client.db,
            entries,
            token: client.hold,
        };
        match inference::call(shard, owner, request).await {
            InferenceReply::TensorsStored(Ok(())) => {}
            InferenceReply::TensorsStored(Err(error)) | InferenceReply::Stored(Err(error)) => {
                return Err(error.into())
            }
            other => return Err(format!("ERR unexpected shard reply {other:?}").into()),
        }
    }
    Ok(())
}

/// Tensors of `keys` in the client's database, read on their owners (one message per shard), in order.
pub async fn get_tensors(shard: &Rc<Shard>, client: &Client, keys: &[Vec<u8>]) -> Vec<TensorRead> {
    let mut by_owner: std::collections::BTreeMap<usize, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (index, key) in keys.iter().enumerate() {
        by_owner.entry(shard.owner_of(key)).or_default().push(index);
    }
    let mut tensors: Vec<TensorRead> = vec![TensorRead::Missing; keys.len()];
    for (owner, indexes) in by_owner {
        let request = InferenceRequest::TensorGet {
            db: client.db,
            keys: indexes.iter().map(|&i| keys[i].clone()).collect(),
            token: client.hold,
        };
        if let InferenceReply::Tensors(found) = inference::call(shard, owner, request).await {
            for (index, tensor) in indexes.into_iter().zip(found) {
                tensors[index] = tensor;
            }
        }
    }
    tensors
}

/// The tensors of `reads`, in order.
///
/// # Errors
/// RedisAI's [`TENSOR_MISSING`] for a missing key, WRONGTYPE for a key of another type: the first in order.
fn found_tensors(reads: Vec<TensorRead>) -> Result<Vec<Tensor>, CommandError> {
    reads
        .into_iter()
        .map(|read| match read {
            TensorRead::Found(tensor) => Ok(tensor),
            TensorRead::Missing => Err(CommandError::from(TENSOR_MISSING)),
            TensorRead::WrongType => Err(CommandError::from(super::errors::WRONGTYPE)),
        })
        .collect()
}

async fn tensorget(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let (key, format) = args::tensorget(args)?;
    let tensor = found_tensors(get_tensors(shard, client, &[key]).await)?
        .pop()
        .expect("one tensor asked, one read");
    reply::tensor(out, &tensor, format);
    Ok(())
}

async fn modelstore(shard: &Rc<Shard>, args: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    let parsed = args::modelstore(args)?;
    let gpu = match parsed.device {
        args::DeviceArg::Cpu => None,
        args::DeviceArg::Gpu(ordinal) => Some(ordinal),
    };
    let request = StoreRequest {
        name: parsed.key.clone(),
        blob: parsed.blob,
        backend: shard.inference.config().backend_for_device(gpu),
        device_text: parsed.device_text,
        tag: parsed.tag,
        batch_size: parsed.batch_size,
        min_batch_size: parsed.min_batch_size,
        delay_max_us: None,
        inputs: parsed.inputs,
        outputs: parsed.outputs,
    };
    // This shard first: a blob or device it refuses is refused everywhere, and the error comes back at once.
    shard.inference.store_model(request.clone())?;
    for index in (0..shard.count()).filter(|&i| i != shard.index) {
        let reply = inference::call(
            shard,
            index,
            InferenceRequest::ModelStore(Box::new(request.clone())),
        )
        .await;
        if let InferenceReply::Stored(Err(error)) = reply {
            // Shards must agree on which models exist: undo the store everywhere.
            for index in 0..shard.count() {
                inference::call(
                    shard,
                    index,
                    InferenceRequest::ModelDel {
                        key: parsed.key.clone(),
                    },
                )
                .await;
            }
            return Err(error.into());
        }
    }
    out.ok();
    Ok(())
}

fn modelget(shard: &Rc<Shard>, args: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    let (key, meta, blob) = args::modelget(args)?;
    let model = shard
        .inference
        .model(&key)
        .ok_or(CommandError::from(MODEL_MISSING))?;
    reply::model(out, &model.meta, meta, blob);
    Ok(())
}

async fn modeldel(shard: &Rc<Shard>, args: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    if args.len() != 2 {
        return Err(super::arity_message("AI.MODELDEL").into());
    }
    let mut existed = false;
    for index in 0..shard.count() {
        if let InferenceReply::Deleted(true) = inference::call(
            shard,
            index,
            InferenceRequest::ModelDel {
                key: args[1].to_vec(),
            },
        )
        .await
        {
            existed = true;
        }
    }
    if !existed {
        return Err(MODEL_MISSING.into());
    }
    out.ok();
    Ok(())
}

async fn modelexecute(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let parsed = args::modelexecute(args)?;
    let model = shard
        .inference
        .model(&parsed.key)
        .ok_or(CommandError::from(MODEL_MISSING))?;
    if parsed.inputs.len() != model.meta.input_names.len() {
        return Err(
            "ERR Number of keys given as INPUTS here does not match model definition".into(),
        );
    }
    if parsed.outputs.len() != model.meta.output_names.len() {
        return Err(
            "ERR Number of keys given as OUTPUTS here does not match model definition".into(),
        );
    }
    let inputs = found_tensors(get_tensors(shard, client, &parsed.inputs).await)?;
    let timeout = parsed.timeout_ms.map(Duration::from_millis);
    let outputs = match model.run(inputs, timeout).await {
        Ok(outputs) => outputs,
        Err(error) if error == "TIMEDOUT" => {
            out.simple(b"TIMEDOUT");
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    set_tensors(
        shard,
        client,
        parsed.outputs.into_iter().zip(outputs).collect(),
    )
    .await?;
    out.ok();
    Ok(())
}

/// Adds one shard's counters into the total: sums, and maxima for the `_max` figures.
fn add_stats(total: &mut ModelStats, part: &ModelStats) {
    total.duration_us += part.duration_us;
    total.samples += part.samples;
    total.calls += part.calls;
    total.errors += part.errors;
    total.batches += part.batches;
    total.batch_requests_max = total.batch_requests_max.max(part.batch_requests_max);
    total.batch_rows_max = total.batch_rows_max.max(part.batch_rows_max);
}

async fn info(shard: &Rc<Shard>, args: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    if args.len() > 3 {
        return Err(super::arity_message("AI.INFO").into());
    }
    if args.len() == 1 {
        reply::module_info(out, shard.inference.onnx_version().as_deref());
        return Ok(());
    }
    let key = args[1].to_vec();
    let reset = match args.get(2) {
        None => false,
        Some(arg) if super::is(arg, "RESETSTAT") => true,
        Some(_) => return Err(super::errors::SYNTAX.into()),
    };
    let model = shard
        .inference
        .model(&key)
        .ok_or(CommandError::from("ERR cannot find run info for key"))?;
    let mut total = ModelStats::default();
    for index in 0..shard.count() {
        if let InferenceReply::Stats(Some(stats)) = inference::call(
            shard,
            index,
            InferenceRequest::Stats {
                key: key.clone(),
                reset,
            },
        )
        .await
        {
            add_stats(&mut total, &stats);
        }
    }
    if reset {
        out.ok();
    } else {
        reply::info(out, &key, &model.meta, &total);
    }
    Ok(())
}
