//! Argument parsing for RedisAI's commands, with RedisAI's error strings, so that existing RedisAI clients see
//! the replies they expect. Pure functions from the arguments (command name first) to typed requests; the
//! command file `ai.rs` runs them.

use ember_kernels::{DataType, Tensor, TensorData};
use ember_resp::parse_i64;

/// Largest model blob AI.MODELSTORE accepts (1 GiB, ONNX's protobuf limit is 2 GiB): bounds what one command
/// may make every shard build a session from.
pub const MODEL_BLOB_BYTES_MAX: usize = 1 << 30;

/// Most inputs or outputs one AI.MODELEXECUTE may name: more than any real model has, and a bound on the key
/// lists a peer can make us build.
pub const MODEL_IO_MAX: usize = 1024;

/// Largest BATCHSIZE: a batch is built in one shard's memory, and 1 Mi rows is past any model we serve.
pub const BATCH_SIZE_MAX: u64 = 1 << 20;

/// Longest TIMEOUT (one hour), so that a typo cannot park a request for ever.
pub const TIMEOUT_MS_MAX: u64 = 3_600_000;

/// What AI.TENSORGET returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TensorFormat {
    /// dtype and shape.
    pub meta: bool,
    /// The elements as little-endian bytes.
    pub blob: bool,
    /// The elements as numbers.
    pub values: bool,
}

/// Where AI.MODELSTORE puts a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceArg {
    /// `CPU` or `CPU:n`.
    Cpu,
    /// `GPU` or `GPU:n`.
    Gpu(u32),
}

/// A parsed AI.MODELSTORE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelStore {
    /// The model's key.
    pub key: Vec<u8>,
    /// The device as the client wrote it (echoed by AI.MODELGET and AI.INFO).
    pub device_text: String,
    /// The device.
    pub device: DeviceArg,
    /// TAG, empty when absent.
    pub tag: Vec<u8>,
    /// BATCHSIZE (0: no batching).
    pub batch_size: u64,
    /// MINBATCHSIZE (0: none).
    pub min_batch_size: u64,
    /// INPUTS names, when given; checked against the model's own.
    pub inputs: Option<Vec<String>>,
    /// OUTPUTS names, when given.
    pub outputs: Option<Vec<String>>,
    /// The ONNX bytes (chunks joined).
    pub blob: Vec<u8>,
}

/// A parsed AI.MODELEXECUTE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelExecute {
    /// The model's key.
    pub key: Vec<u8>,
    /// Input tensor keys, in the model's input order.
    pub inputs: Vec<Vec<u8>>,
    /// Output tensor keys, in the model's output order.
    pub outputs: Vec<Vec<u8>>,
    /// TIMEOUT in milliseconds, when given.
    pub timeout_ms: Option<u64>,
}

fn wrong_arity(command: &str) -> String {
    format!("ERR wrong number of arguments for '{command}' command")
}

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn positive(arg: &[u8]) -> Option<u64> {
    parse_i64(arg).filter(|&n| n > 0).map(|n| n as u64)
}

fn parse_f64(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ if text.is_empty() || text.trim() != text => None,
        _ => text.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

/// AI.TENSORSET key type dim... [BLOB data | VALUES v...]; no data means zeros, as in RedisAI.
/// A tensor of zeros may take at most `zeros_len_max` bytes (proto-max-bulk-len: no more than a
/// client could have sent as a BLOB), so a few bytes of request never allocate gigabytes; and
/// a tensor for which `refuses_bytes` (the server's maxmemory charge) says no gets Redis's OOM
/// error before it is built.
///
/// # Errors
/// RedisAI's message for the first problem found.
pub fn tensorset(
    args: &[&[u8]],
    zeros_len_max: usize,
    refuses_bytes: impl Fn(u64) -> bool,
) -> Result<(Vec<u8>, Tensor), String> {
    if args.len() < 4 {
        return Err(wrong_arity("AI.TENSORSET"));
    }
    let dtype = DataType::parse(args[2]).ok_or("ERR invalid data type")?;
    let mut shape = Vec::new();
    let mut position = 3;
    enum Data<'a> {
        Zeros,
        Blob(&'a [u8]),
        Values(&'a [&'a [u8]]),
    }
    let mut data = Data::Zeros;
    let mut count: u64 = 1;
    while position < args.len() {
        let arg = args[position];
        if eq(arg, "BLOB") {
            if args.len() - 1 - position != 1 {
                return Err("ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command".into());
            }
            data = Data::Blob(args[position + 1]);
            break;
        }
        if eq(arg, "VALUES") {
            if (args.len() - 1 - position) as u64 != count {
                return Err(
                    "ERR wrong number of values was given in 'AI.TENSORSET' command".into(),
                );
            }
            data = Data::Values(&args[position + 1..]);
            break;
        }
        let dim = positive(arg).ok_or("ERR invalid or negative value found in tensor shape")?;
        count = count.saturating_mul(dim);
        shape.push(dim as usize);
        position += 1;
    }
    if shape.len() > ember_kernels::tensor::RANK_MAX
        || count > ember_kernels::tensor::ELEMENTS_MAX as u64
    {
        return Err(format!(
            "ERR tensor too large: at most {} dimensions and {} elements",
            ember_kernels::tensor::RANK_MAX,
            ember_kernels::tensor::ELEMENTS_MAX
        ));
    }
    let count = count as usize;
    if matches!(data, Data::Zeros) && count * dtype.size_bytes() > zeros_len_max {
        return Err(format!(
            "ERR tensor too large: {} bytes with no data given, more than proto-max-bulk-len ({zeros_len_max})",
            count * dtype.size_bytes()
        ));
    }
    if refuses_bytes((count * dtype.size_bytes()) as u64) {
        return Err(crate::memory::OOM_ERROR.into());
    }
    let tensor = match data {
        Data::Blob(bytes) => Tensor::from_le_bytes(dtype, shape, bytes)
            .map_err(|_| "ERR data length does not match tensor shape and type".to_string())?,
        Data::Zeros => {
            let zeros = match dtype {
                DataType::Float => TensorData::Float(vec![0.0; count]),
                DataType::Double => TensorData::Double(vec![0.0; count]),
                DataType::Int32 => TensorData::Int32(vec![0; count]),
                DataType::Int64 => TensorData::Int64(vec![0; count]),
            };
            Tensor::new(shape, zeros).map_err(|e| format!("ERR {e}"))?
        }
        Data::Values(values) => {
            let invalid = || "ERR invalid value".to_string();
            let data = match dtype {
                DataType::Float => TensorData::Float(
                    values
                        .iter()
                        .map(|v| parse_f64(v).map(|x| x as f32).ok_or_else(invalid))
                        .collect::<Result<_, _>>()?,
                ),
                DataType::Double => TensorData::Double(
                    values
                        .iter()
                        .map(|v| parse_f64(v).ok_or_else(invalid))
                        .collect::<Result<_, _>>()?,
                ),
                DataType::Int32 => TensorData::Int32(
                    values
                        .iter()
                        .map(|v| {
                            parse_i64(v)
                                .and_then(|n| i32::try_from(n).ok())
                                .ok_or_else(invalid)
                        })
                        .collect::<Result<_, _>>()?,
                ),
                DataType::Int64 => TensorData::Int64(
                    values
                        .iter()
                        .map(|v| parse_i64(v).ok_or_else(invalid))
                        .collect::<Result<_, _>>()?,
                ),
            };
            Tensor::new(shape, data).map_err(|e| format!("ERR {e}"))?
        }
    };
    Ok((args[1].to_vec(), tensor))
}

/// AI.TENSORGET key [META] [BLOB | VALUES]; no format means META and BLOB, as in RedisAI.
///
/// # Errors
/// RedisAI's message for a wrong argument count or format.
pub fn tensorget(args: &[&[u8]]) -> Result<(Vec<u8>, TensorFormat), String> {
    if args.len() < 2 || args.len() > 4 {
        return Err(wrong_arity("AI.TENSORGET"));
    }
    if args.len() == 2 {
        return Ok((
            args[1].to_vec(),
            TensorFormat {
                meta: true,
                blob: true,
                values: false,
            },
        ));
    }
    let mut format = TensorFormat::default();
    for arg in &args[2..] {
        if eq(arg, "BLOB") {
            format.blob = true;
        } else if eq(arg, "VALUES") {
            format.values = true;
        } else if eq(arg, "META") {
            format.meta = true;
        } else {
            return Err("ERR unsupported data format".into());
        }
    }
    if format.blob && format.values {
        return Err("ERR both BLOB and VALUES specified".into());
    }
    Ok((args[1].to_vec(), format))
}

fn device(text: &[u8]) -> Option<DeviceArg> {
    let text = std::str::from_utf8(text).ok()?;
    let upper = text.to_ascii_uppercase();
    let (kind, ordinal) = match upper.split_once(':') {
        Some((kind, ordinal))
            if !ordinal.is_empty()
                && ordinal.len() <= 5
                && ordinal.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (kind.to_string(), ordinal.parse::<u32>().ok()?)
        }
        Some(_) => return None,
        None => (upper.clone(), 0),
    };
    match kind.as_str() {
        "CPU" => Some(DeviceArg::Cpu),
        "GPU" => Some(DeviceArg::Gpu(ordinal)),
        _ => None,
    }
}

/// Reads `count name...` after INPUTS or OUTPUTS.
fn names(args: &[&[u8]], position: &mut usize, what: &str) -> Result<Vec<String>, String> {
    let count = args
        .get(*position)
        .and_then(|a| positive(a))
        .filter(|&n| n as usize <= MODEL_IO_MAX)
        .ok_or_else(|| format!("ERR Invalid argument for {what}_count"))? as usize;
    *position += 1;
    if args.len() - *position < count {
        return Err(format!(
            "ERR number of model {what}s does not match the number of given arguments"
        ));
    }
    let names = args[*position..*position + count]
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    *position += count;
    Ok(names)
}

/// AI.MODELSTORE key ONNX CPU|GPU[:n] [TAG tag] [BATCHSIZE n [MINBATCHSIZE m]] [INPUTS n name...]
/// [OUTPUTS n name...] BLOB chunk....
///
/// # Errors
/// RedisAI's message for the first problem found.
pub fn modelstore(args: &[&[u8]]) -> Result<ModelStore, String> {
    if args.len() < 6 {
        return Err(wrong_arity("AI.MODELSTORE"));
    }
    let backend = args[2];
    if !eq(backend, "ONNX") {
        return Err(
            if ["TF", "TFLITE", "TORCH"].iter().any(|b| eq(backend, b)) {
                "ERR Could not load backend: Ember serves ONNX models only".into()
            } else {
                "ERR unsupported backend".into()
            },
        );
    }
    let device_arg = device(args[3]).ok_or("ERR Invalid DEVICE")?;
    let mut position = 4;
    let mut tag = Vec::new();
    if args.get(position).is_some_and(|a| eq(a, "TAG")) {
        tag = args
            .get(position + 1)
            .ok_or("ERR Insufficient arguments, missing model BLOB")?
            .to_vec();
        position += 2;
    }
    let mut batch_size = 0;
    if args.get(position).is_some_and(|a| eq(a, "BATCHSIZE")) {
        batch_size = args
            .get(position + 1)
            .and_then(|a| parse_i64(a))
            .filter(|&n| (0..=BATCH_SIZE_MAX as i64).contains(&n))
            .ok_or("ERR Invalid argument for BATCHSIZE")? as u64;
        position += 2;
    }
    let mut min_batch_size = 0;
    if args.get(position).is_some_and(|a| eq(a, "MINBATCHSIZE")) {
        if batch_size == 0 {
            return Err("ERR MINBATCHSIZE specified without BATCHSIZE".into());
        }
        min_batch_size = args
            .get(position + 1)
            .and_then(|a| parse_i64(a))
            .filter(|&n| (0..=batch_size as i64).contains(&n))
            .ok_or("ERR Invalid argument for MINBATCHSIZE")? as u64;
        position += 2;
    }
    let mut inputs = None;
    if args.get(position).is_some_and(|a| eq(a, "INPUTS")) {
        position += 1;
        inputs = Some(names(args, &mut position, "input")?);
    }
    let mut outputs = None;
    if args.get(position).is_some_and(|a| eq(a, "OUTPUTS")) {
        position += 1;
        outputs = Some(names(args, &mut position, "output")?);
    }
    match args.get(position) {
        None => return Err("ERR Insufficient arguments, missing model BLOB".into()),
        Some(a) if !eq(a, "BLOB") => return Err("ERR Invalid argument, expected BLOB".into()),
        Some(_) => position += 1,
    }
    if position == args.len() {
        return Err("ERR Insufficient arguments, missing model BLOB".into());
    }
    let blob_len: usize = args[position..].iter().map(|c| c.len()).sum();
    if blob_len > MODEL_BLOB_BYTES_MAX {
        return Err(format!(
            "ERR model blob of {blob_len} bytes exceeds the limit of {MODEL_BLOB_BYTES_MAX}"
        ));
    }
    Ok(ModelStore {
        key: args[1].to_vec(),
        device_text: String::from_utf8_lossy(args[3]).to_ascii_uppercase(),
        device: device_arg,
        tag,
        batch_size,
        min_batch_size,
        inputs,
        outputs,
        blob: args[position..].concat(),
    })
}

/// AI.MODELGET key [META] [BLOB]: (key, meta, blob).
///
/// # Errors
/// RedisAI's message when neither META nor BLOB is given or the count is wrong.
pub fn modelget(args: &[&[u8]]) -> Result<(Vec<u8>, bool, bool), String> {
    if args.len() < 2 || args.len() > 4 {
        return Err(wrong_arity("AI.MODELGET"));
    }
    let meta = args[2..].iter().any(|a| eq(a, "META"));
    let blob = args[2..].iter().any(|a| eq(a, "BLOB"));
    if !meta && !blob {
        return Err("ERR no META or BLOB specified".into());
    }
    Ok((args[1].to_vec(), meta, blob))
}

/// AI.MODELEXECUTE key INPUTS n key... OUTPUTS n key... [TIMEOUT ms]. The counts are checked against the
/// model by the caller (RedisAI's "does not match model definition" errors), which knows the model.
///
/// # Errors
/// RedisAI's message for the first problem found.
pub fn modelexecute(args: &[&[u8]]) -> Result<ModelExecute, String> {
    if args.len() < 8 {
        return Err(wrong_arity("AI.MODELEXECUTE"));
    }
    let mut position = 2;
    if !eq(args[position], "INPUTS") {
        return Err("ERR INPUTS not specified".into());
    }
    position += 1;
    let count = |arg: Option<&&[u8]>, what: &str| -> Result<usize, String> {
        let n = arg
            .and_then(|a| parse_i64(a))
            .ok_or_else(|| format!("ERR Invalid argument for {what}_count"))?;
        if n <= 0 || n as usize > MODEL_IO_MAX {
            let capital = if what == "input" { "Input" } else { "Output" };
            return Err(format!("ERR {capital} count must be a positive integer"));
        }
        Ok(n as usize)
    };
    let inputs_len = count(args.get(position), "input")?;
    position += 1;
    if position + inputs_len > args.len() {
        return Err("ERR number of input keys to AI.MODELEXECUTE command does not match the number of given arguments".into());
    }
    let inputs = args[position..position + inputs_len]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    position += inputs_len;
    if position == args.len() || !eq(args[position], "OUTPUTS") {
        return Err("ERR OUTPUTS not specified".into());
    }
    position += 1;
    let outputs_len = count(args.get(position), "output")?;
    position += 1;
    if position + outputs_len > args.len() {
        return Err("ERR number of output keys to AI.MODELEXECUTE command does not match the number of given arguments".into());
    }
    let outputs = args[position..position + outputs_len]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    position += outputs_len;
    let mut timeout_ms = None;
    if position < args.len() {
        if !eq(args[position], "TIMEOUT") {
            return Err(format!(
                "ERR Invalid argument: {}",
                String::from_utf8_lossy(args[position])
            ));
        }
        let value = args
            .get(position + 1)
            .ok_or("ERR No value provided for TIMEOUT")?;
        let ms = parse_i64(value)
            .filter(|&n| n > 0 && n as u64 <= TIMEOUT_MS_MAX)
            .ok_or("ERR Invalid value for TIMEOUT")?;
        timeout_ms = Some(ms as u64);
        position += 2;
        if position < args.len() {
            return Err(format!(
                "ERR Invalid argument: {}",
                String::from_utf8_lossy(args[position])
            ));
        }
    }
    Ok(ModelExecute {
        key: args[1].to_vec(),
        inputs,
        outputs,
        timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<Vec<u8>> {
        line.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    fn run<T>(parse: fn(&[&[u8]]) -> Result<T, String>, line: &str) -> Result<T, String> {
        let owned = split(line);
        let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        parse(&args)
    }

    /// AI.TENSORSET under Redis's default proto-max-bulk-len.
    fn tensorset_512mb(args: &[&[u8]]) -> Result<(Vec<u8>, Tensor), String> {
        tensorset(args, 512 << 20, |_| false)
    }

    #[test]
    fn tensorset_cases() {
        let ok = run(
            tensorset_512mb,
            "AI.TENSORSET t FLOAT 2 2 VALUES 1 2.5 -3 inf",
        )
        .unwrap();
        assert_eq!(ok.0, b"t");
        assert_eq!(ok.1.shape(), &[2, 2]);
        assert_eq!(ok.1.as_f32().unwrap(), &[1.0, 2.5, -3.0, f32::INFINITY]);
        let zeros = run(tensorset_512mb, "AI.TENSORSET t int64 3").unwrap().1;
        assert_eq!(zeros.data(), &TensorData::Int64(vec![0, 0, 0]));
        let int32 = run(
            tensorset_512mb,
            "AI.TENSORSET t INT32 2 VALUES -7 2147483647",
        )
        .unwrap()
        .1;
        assert_eq!(int32.data(), &TensorData::Int32(vec![-7, i32::MAX]));
        let errors = [
            ("AI.TENSORSET t FLOAT", "ERR wrong number of arguments for 'AI.TENSORSET' command"),
            ("AI.TENSORSET t HALF 2 VALUES 1 2", "ERR invalid data type"),
            ("AI.TENSORSET t FLOAT 2 VALUES 1", "ERR wrong number of values was given in 'AI.TENSORSET' command"),
            ("AI.TENSORSET t FLOAT 0 VALUES", "ERR invalid or negative value found in tensor shape"),
            ("AI.TENSORSET t FLOAT -2 VALUES 1 2", "ERR invalid or negative value found in tensor shape"),
            ("AI.TENSORSET t FLOAT 2 VALUES 1 x", "ERR invalid value"),
            ("AI.TENSORSET t INT32 1 VALUES 2147483648", "ERR invalid value"),
            ("AI.TENSORSET t INT64 1 VALUES 1.5", "ERR invalid value"),
            ("AI.TENSORSET t FLOAT 2 BLOB abcd", "ERR data length does not match tensor shape and type"),
            ("AI.TENSORSET t FLOAT 1 BLOB ab cd", "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"),
            ("AI.TENSORSET t FLOAT 99999 99999 99999", "ERR tensor too large: at most 8 dimensions and 268435456 elements"),
            ("AI.TENSORSET k DOUBLE 268435456", "ERR tensor too large: 2147483648 bytes with no data given, more than proto-max-bulk-len (536870912)"),
        ];
        for (line, want) in errors {
            assert_eq!(run(tensorset_512mb, line).unwrap_err(), want, "{line}");
        }
    }

    #[test]
    fn tensorget_cases() {
        let cases: [(&str, Result<TensorFormat, &str>); 6] = [
            (
                "AI.TENSORGET t",
                Ok(TensorFormat {
                    meta: true,
                    blob: true,
                    values: false,
                }),
            ),
            (
                "AI.TENSORGET t VALUES",
                Ok(TensorFormat {
                    meta: false,
                    blob: false,
                    values: true,
                }),
            ),
            (
                "AI.TENSORGET t META blob",
                Ok(TensorFormat {
                    meta: true,
                    blob: true,
                    values: false,
                }),
            ),
            (
                "AI.TENSORGET t BLOB VALUES",
                Err("ERR both BLOB and VALUES specified"),
            ),
            ("AI.TENSORGET t JSON", Err("ERR unsupported data format")),
            (
                "AI.TENSORGET t META BLOB VALUES",
                Err("ERR wrong number of arguments for 'AI.TENSORGET' command"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                run(tensorget, line).map(|(_, f)| f),
                want.map_err(str::to_string),
                "{line}"
            );
        }
    }

    #[test]
    fn modelstore_cases() {
        let full = run(modelstore, "AI.MODELSTORE m ONNX gpu:1 TAG v2 BATCHSIZE 64 MINBATCHSIZE 8 INPUTS 2 a b OUTPUTS 1 c BLOB xy z").unwrap();
        assert_eq!(full.device, DeviceArg::Gpu(1));
        assert_eq!(full.device_text, "GPU:1");
        assert_eq!((full.batch_size, full.min_batch_size), (64, 8));
        assert_eq!(full.inputs, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(full.outputs, Some(vec!["c".to_string()]));
        assert_eq!(full.tag, b"v2");
        assert_eq!(full.blob, b"xyz", "chunks are joined");
        let plain = run(modelstore, "AI.MODELSTORE m ONNX CPU BLOB x").unwrap();
        assert_eq!(
            (plain.device, plain.batch_size, plain.inputs),
            (DeviceArg::Cpu, 0, None)
        );
        let errors = [
            (
                "AI.MODELSTORE m ONNX CPU BLOB",
                "ERR wrong number of arguments for 'AI.MODELSTORE' command",
            ),
            (
                "AI.MODELSTORE m CAFFE CPU BLOB x",
                "ERR unsupported backend",
            ),
            (
                "AI.MODELSTORE m TORCH CPU BLOB x",
                "ERR Could not load backend: Ember serves ONNX models only",
            ),
            ("AI.MODELSTORE m ONNX TPU BLOB x", "ERR Invalid DEVICE"),
            ("AI.MODELSTORE m ONNX GPU:x BLOB x", "ERR Invalid DEVICE"),
            (
                "AI.MODELSTORE m ONNX CPU BATCHSIZE x BLOB x",
                "ERR Invalid argument for BATCHSIZE",
            ),
            (
                "AI.MODELSTORE m ONNX CPU MINBATCHSIZE 2 BLOB x",
                "ERR MINBATCHSIZE specified without BATCHSIZE",
            ),
            (
                "AI.MODELSTORE m ONNX CPU BATCHSIZE 4 MINBATCHSIZE 8 BLOB x",
                "ERR Invalid argument for MINBATCHSIZE",
            ),
            (
                "AI.MODELSTORE m ONNX CPU INPUTS 3 a b",
                "ERR number of model inputs does not match the number of given arguments",
            ),
            (
                "AI.MODELSTORE m ONNX CPU TAG t x y",
                "ERR Invalid argument, expected BLOB",
            ),
            (
                "AI.MODELSTORE m ONNX CPU TAG t BLOB",
                "ERR Insufficient arguments, missing model BLOB",
            ),
        ];
        for (line, want) in errors {
            assert_eq!(run(modelstore, line).unwrap_err(), want, "{line}");
        }
    }

    #[test]
    fn modelexecute_cases() {
        let ok = run(
            modelexecute,
            "AI.MODELEXECUTE m INPUTS 2 a b OUTPUTS 1 c TIMEOUT 50",
        )
        .unwrap();
        assert_eq!(ok.inputs, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(ok.outputs, vec![b"c".to_vec()]);
        assert_eq!(ok.timeout_ms, Some(50));
        let errors = [
            ("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS", "ERR wrong number of arguments for 'AI.MODELEXECUTE' command"),
            ("AI.MODELEXECUTE m IN 1 a OUTPUTS 1 b", "ERR INPUTS not specified"),
            ("AI.MODELEXECUTE m INPUTS x a OUTPUTS 1 b", "ERR Invalid argument for input_count"),
            ("AI.MODELEXECUTE m INPUTS 0 a OUTPUTS 1 b", "ERR Input count must be a positive integer"),
            ("AI.MODELEXECUTE m INPUTS 9 a OUTPUTS 1 b", "ERR number of input keys to AI.MODELEXECUTE command does not match the number of given arguments"),
            ("AI.MODELEXECUTE m INPUTS 1 a OUT 1 b c", "ERR OUTPUTS not specified"),
            ("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 2 b", "ERR number of output keys to AI.MODELEXECUTE command does not match the number of given arguments"),
            ("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 1 b WAIT 3", "ERR Invalid argument: WAIT"),
            ("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 1 b TIMEOUT 0", "ERR Invalid value for TIMEOUT"),
            ("AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 1 b TIMEOUT", "ERR No value provided for TIMEOUT"),
        ];
        for (line, want) in errors {
            assert_eq!(run(modelexecute, line).unwrap_err(), want, "{line}");
        }
    }

    #[test]
    fn modelget_cases() {
        assert_eq!(
            run(modelget, "AI.MODELGET m META").unwrap(),
            (b"m".to_vec(), true, false)
        );
        assert_eq!(
            run(modelget, "AI.MODELGET m blob meta").unwrap(),
            (b"m".to_vec(), true, true)
        );
        assert_eq!(
            run(modelget, "AI.MODELGET m").unwrap_err(),
            "ERR no META or BLOB specified"
        );
    }
}
