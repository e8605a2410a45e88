//! RedisAI's reply shapes, written with ember-resp's encoder: AI.TENSORGET, AI.MODELGET and AI.INFO.

use ember_kernels::{Tensor, TensorData};

use ember_resp::ReplySink;

use super::args::TensorFormat;
use crate::inference::{ModelMeta, ModelStats};

/// RedisAI's version, reported by AI.INFO with no key (Ember implements the 1.2 command set).
pub const REDISAI_VERSION: &str = "1.2.7";

fn values(out: &mut ReplySink, tensor: &Tensor) {
    out.array_len(tensor.len());
    match tensor.data() {
        TensorData::Float(v) => v.iter().for_each(|&x| out.double(f64::from(x))),
        TensorData::Double(v) => v.iter().for_each(|&x| out.double(x)),
        TensorData::Int32(v) => v.iter().for_each(|&x| out.integer(i64::from(x))),
        TensorData::Int64(v) => v.iter().for_each(|&x| out.integer(x)),
    }
}

/// AI.TENSORGET's reply: the blob or values alone, or `dtype`, `shape` and then `blob` or `values`.
pub fn tensor(out: &mut ReplySink, tensor: &Tensor, format: TensorFormat) {
    if !format.meta {
        if format.blob {
            out.bulk(&tensor.to_le_bytes());
        } else {
            values(out, tensor);
        }
        return;
    }
    let with_data = format.blob || format.values;
    out.array_len(if with_data { 6 } else { 4 });
    out.bulk(b"dtype");
    out.bulk(tensor.dtype().name().as_bytes());
    out.bulk(b"shape");
    out.array_len(tensor.shape().len());
    for &dim in tensor.shape() {
        out.integer(dim as i64);
    }
    if format.blob {
        out.bulk(b"blob");
        out.bulk(&tensor.to_le_bytes());
    } else if format.values {
        out.bulk(b"values");
        values(out, tensor);
    }
}

/// AI.MODELGET's reply: the blob alone, or the metadata pairs (and the blob last).
pub fn model(out: &mut ReplySink, meta: &ModelMeta, with_meta: bool, with_blob: bool) {
    if !with_meta {
        out.bulk(&meta.blob);
        return;
    }
    out.array_len(if with_blob { 16 } else { 14 });
    out.bulk(b"backend");
    out.bulk(b"ONNX");
    out.bulk(b"device");
    out.bulk(meta.device_text.as_bytes());
    out.bulk(b"tag");
    out.bulk(&meta.tag);
    out.bulk(b"batchsize");
    out.integer(meta.batch_size as i64);
    out.bulk(b"minbatchsize");
    out.integer(meta.min_batch_size as i64);
    for (label, names) in [
        (&b"inputs"[..], &meta.input_names),
        (&b"outputs"[..], &meta.output_names),
    ] {
        out.bulk(label);
        out.array_len(names.len());
        for name in names {
            out.bulk(name.as_bytes());
        }
    }
    if with_blob {
        out.bulk(b"blob");
        out.bulk(&meta.blob);
    }
}

/// AI.INFO key's reply: RedisAI's 18 entries (key, type, backend, device, tag, duration, samples, calls, errors),
/// then Ember's figures as further pairs (batches, batch_requests_max, batch_rows_max, max_delay_us, and the
/// backend that runs the model, `ember_backend`: `onnxruntime-cpu`, `onnxruntime-cuda:0`, `native-cuda:0`), which
/// RedisAI clients that read the reply as a map keep as extra keys.
pub fn info(out: &mut ReplySink, key: &[u8], meta: &ModelMeta, stats: &ModelStats) {
    out.array_len(28);
    out.bulk(b"key");
    out.bulk(key);
    out.bulk(b"type");
    out.bulk(b"MODEL");
    out.bulk(b"backend");
    out.bulk(b"ONNX");
    out.bulk(b"device");
    out.bulk(meta.device_text.as_bytes());
    out.bulk(b"tag");
    out.bulk(&meta.tag);
    for (label, value) in [
        ("duration", stats.duration_us),
        ("samples", stats.samples),
        ("calls", stats.calls),
        ("errors", stats.errors),
        ("batches", stats.batches),
        ("batch_requests_max", stats.batch_requests_max),
        ("batch_rows_max", stats.batch_rows_max),
        ("max_delay_us", meta.delay_max_us),
    ] {
        out.bulk(label.as_bytes());
        out.integer(value as i64);
    }
    out.bulk(b"ember_backend");
    out.bulk(meta.backend_name.as_bytes());
}

/// AI.INFO with no key: RedisAI's version fields and the ONNX Runtime build.
pub fn module_info(out: &mut ReplySink, onnx_version: Option<&str>) {
    out.array_len(if onnx_version.is_some() { 8 } else { 6 });
    out.simple(b"Version");
    out.bulk(REDISAI_VERSION.as_bytes());
    out.simple(b"Low Level API Version");
    out.bulk(b"1");
    out.simple(b"RDB Encoding version");
    out.bulk(b"1");
    if let Some(version) = onnx_version {
        out.simple(b"ONNX version");
        out.simple(version.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_kernels::DataType;
    use ember_resp::Protocol;

    #[test]
    fn tensorget_shapes() {
        let t = Tensor::from_le_bytes(DataType::Int32, vec![2], &[1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
        let cases: [(TensorFormat, &[u8]); 3] = [
            (TensorFormat { meta: false, blob: false, values: true }, b"*2\r\n:1\r\n:2\r\n"),
            (TensorFormat { meta: false, blob: true, values: false }, b"$8\r\n\x01\0\0\0\x02\0\0\0\r\n"),
            (
                TensorFormat { meta: true, blob: false, values: true },
                b"*6\r\n$5\r\ndtype\r\n$5\r\nINT32\r\n$5\r\nshape\r\n*1\r\n:2\r\n$6\r\nvalues\r\n*2\r\n:1\r\n:2\r\n",
            ),
        ];
        for (format, want) in cases {
            let mut out = ReplySink::resp(Vec::new(), Protocol::Resp2);
            tensor(&mut out, &t, format);
            assert_eq!(out.bytes_mut().as_slice(), want, "{format:?}");
        }
        let f = Tensor::new(vec![1], TensorData::Float(vec![0.5])).unwrap();
        let mut out = ReplySink::resp(Vec::new(), Protocol::Resp3);
        tensor(
            &mut out,
            &f,
            TensorFormat {
                meta: false,
                blob: false,
                values: true,
            },
        );
        assert_eq!(out.bytes_mut().as_slice(), b"*1\r\n,0.5\r\n");
    }
}
