//! RedisAI's commands: AI.TENSORSET, AI.TENSORGET, AI.MODELSTORE, AI.MODELGET, AI.MODELDEL, AI.MODELEXECUTE and
//! AI.INFO, with RedisAI's reply shapes and error strings.
//!
//! Where things live: a tensor lives on the shard that owns its key (slot routing, as for any key; tensors are
//! kept beside the keyspace, not in it, so DEL and TYPE do not see them). Every shard holds every model, with
//! its own session and batcher, so AI.MODELEXECUTE runs on the connection's shard: it gathers the input tensors
//! from their owners, runs the model through the shard's batcher, and stores the outputs at their owners.

pub mod args;
pub mod reply;

use std::rc::Rc;
use std::time::Duration;

use ember_kernels::Tensor;
use ember_resp::encode;

use super::{CommandError, CommandResult, InferenceOp};
use crate::client::Client;
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
    out: &mut Vec<u8>,
) -> CommandResult {
    match op {
        InferenceOp::TensorSet => tensorset(shard, args, out).await,
        InferenceOp::TensorGet => tensorget(shard, client, args, out).await,
        InferenceOp::ModelStore => modelstore(shard, args, out).await,
        InferenceOp::ModelGet => modelget(shard, args, out),
        InferenceOp::ModelDel => modeldel(shard, args, out).await,
        InferenceOp::ModelExecute => modelexecute(shard, args, out).await,
        InferenceOp::Info => info(shard, args, out).await,
        InferenceOp::Recommend => super::recommend::run(shard, client, args, out).await,
    }
}

async fn tensorset(shard: &Rc<Shard>, args: &[&[u8]], out: &mut Vec<u8>) -> CommandResult {
    let (key, tensor) = args::tensorset(args)?;
    let owner = shard.owner_of(&key);
    inference::call(
        shard,
        owner,
        InferenceRequest::TensorSet {
            entries: vec![(key, tensor)],
        },
    )
    .await;
    encode::ok(out);
    Ok(())
}

/// Tensors of `keys`, fetched from their owners, in order.
pub async fn get_tensors(shard: &Rc<Shard>, keys: &[Vec<u8>]) -> Vec<Option<Tensor>> {
    let mut by_owner: std::collections::BTreeMap<usize, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (index, key) in keys.iter().enumerate() {
        by_owner.entry(shard.owner_of(key)).or_default().push(index);
    }
    let mut tensors: Vec<Option<Tensor>> = vec![None; keys.len()];
    for (owner, indexes) in by_owner {
        let request = InferenceRequest::TensorGet {
            keys: indexes.iter().map(|&i| keys[i].clone()).collect(),
        };
        if let InferenceReply::Tensors(found) = inference::call(shard, owner, request).await {
            for (index, tensor) in indexes.into_iter().zip(found) {
                tensors[index] = tensor;
            }
        }
    }
    tensors
}

async fn tensorget(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut Vec<u8>,
) -> CommandResult {
    let (key, format) = args::tensorget(args)?;
    let tensor = get_tensors(shard, &[key])
        .await
        .pop()
        .flatten()
        .ok_or(CommandError::from(TENSOR_MISSING))?;
    reply::tensor(out, &tensor, format, client.protocol);
    Ok(())
}

async fn modelstore(shard: &Rc<Shard>, args: &[&[u8]], out: &mut Vec<u8>) -> CommandResult {
    let parsed = args::modelstore(args)?;
    let gpu = match parsed.device {
        args::DeviceArg::Cpu => None,
        args::DeviceArg::Gpu(ordinal) => Some(ordinal),
    };
    let request = StoreRequest {
        name: parsed.key.clone(),
        blob: parsed.blob,
        device: shard.inference.config().device(gpu),
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
    encode::ok(out);
    Ok(())
}

fn modelget(shard: &Rc<Shard>, args: &[&[u8]], out: &mut Vec<u8>) -> CommandResult {
    let (key, meta, blob) = args::modelget(args)?;
    let model = shard
        .inference
        .model(&key)
        .ok_or(CommandError::from(MODEL_MISSING))?;
    reply::model(out, &model.meta, meta, blob);
    Ok(())
}

async fn modeldel(shard: &Rc<Shard>, args: &[&[u8]], out: &mut Vec<u8>) -> CommandResult {
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
    encode::ok(out);
    Ok(())
}

async fn modelexecute(shard: &Rc<Shard>, args: &[&[u8]], out: &mut Vec<u8>) -> CommandResult {
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
    let inputs = get_tensors(shard, &parsed.inputs)
        .await
        .into_iter()
        .collect::<Option<Vec<Tensor>>>()
        .ok_or(CommandError::from(TENSOR_MISSING))?;
    let timeout = parsed.timeout_ms.map(Duration::from_millis);
    let outputs = match model.run(inputs, timeout).await {
        Ok(outputs) => outputs,
        Err(error) if error == "TIMEDOUT" => {
            encode::simple(out, b"TIMEDOUT");
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    let mut by_owner: std::collections::BTreeMap<usize, Vec<(Vec<u8>, Tensor)>> =
        std::collections::BTreeMap::new();
    for (key, tensor) in parsed.outputs.into_iter().zip(outputs) {
        by_owner
            .entry(shard.owner_of(&key))
            .or_default()
            .push((key, tensor));
    }
    for (owner, entries) in by_owner {
        inference::call(shard, owner, InferenceRequest::TensorSet { entries }).await;
    }
    encode::ok(out);
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

async fn info(shard: &Rc<Shard>, args: &[&[u8]], out: &mut Vec<u8>) -> CommandResult {
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
        encode::ok(out);
    } else {
        reply::info(out, &key, &model.meta, &total);
    }
    Ok(())
}
