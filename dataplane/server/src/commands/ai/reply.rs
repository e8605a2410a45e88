//! RedisAI's reply shapes, written with ember-resp's encoder: AI.TENSORGET, AI.MODELGET and AI.INFO.

use ember_kernels::{Tensor, TensorData};
use ember_resp::encode::{self, Protocol};

use super::args::TensorFormat;
use crate::inference::{ModelMeta, ModelStats};

/// RedisAI's version, reported by AI.INFO with no key (Ember implements the 1.2 command set).
pub const REDISAI_VERSION: &str = "1.2.7";

fn values(out: &mut Vec<u8>, tensor: &Tensor, protocol: Protocol) {
    encode::array_len(out, tensor.len());
    match tensor.data() {
        TensorData::Float(v) => v
            .iter()
            .for_each(|&x| encode::double(out, f64::from(x), protocol)),
        TensorData::Double(v) => v.iter().for_each(|&x| encode::double(out, x, protocol)),
        TensorData::Int32(v) => v.iter().for_each(|&x| encode::integer(out, i64::from(x))),
        TensorData::Int64(v) => v.iter().for_each(|&x| encode::integer(out, x)),
    }
}

/// AI.TENSORGET's reply: the blob or values alone, or `dtype`, `shape` and then `blob` or `values`.
pub fn tensor(out: &mut Vec<u8>, tensor: &Tensor, format: TensorFormat, protocol: Protocol) {
    if !format.meta {
        if format.blob {
            encode::bulk(out, &tensor.to_le_bytes());
        } else {
            values(out, tensor, protocol);
        }
        return;
    }
    let with_data = format.blob || format.values;
    encode::array_len(out, if with_data { 6 } else { 4 });
    encode::bulk(out, b"dtype");
    encode::bulk(out, tensor.dtype().name().as_bytes());
    encode::bulk(out, b"shape");
    encode::array_len(out, tensor.shape().len());
    for &dim in tensor.shape() {
        encode::integer(out, dim as i64);
    }
    if format.blob {
        encode::bulk(out, b"blob");
        encode::bulk(out, &tensor.to_le_bytes());
    } else if format.values {
        encode::bulk(out, b"values");
        values(out, tensor, protocol);
    }
}

/// AI.MODELGET's reply: the blob alone, or the metadata pairs (and the blob last).
pub fn model(out: &mut Vec<u8>, meta: &ModelMeta, with_meta: bool, with_blob: bool) {
    if !with_meta {
        encode::bulk(out, &meta.blob);
        return;
    }
    encode::array_len(out, if with_blob { 16 } else { 14 });
    encode::bulk(out, b"backend");
    encode::bulk(out, b"ONNX");
    encode::bulk(out, b"device");
    encode::bulk(out, meta.device_text.as_bytes());
    encode::bulk(out, b"tag");
    encode::bulk(out, &meta.tag);
    encode::bulk(out, b"batchsize");
    encode::integer(out, meta.batch_size as i64);
    encode::bulk(out, b"minbatchsize");
    encode::integer(out, meta.min_batch_size as i64);
    for (label, names) in [
        (&b"inputs"[..], &meta.input_names),
        (&b"outputs"[..], &meta.output_names),
    ] {
        encode::bulk(out, label);
        encode::array_len(out, names.len());
        for name in names {
            encode::bulk(out, name.as_bytes());
        }
    }
    if with_blob {
        encode::bulk(out, b"blob");
        encode::bulk(out, &meta.blob);
    }
}

/// AI.INFO key's reply: RedisAI's 18 entries (key, type, backend, device, tag, duration, samples, calls, errors),
/// then Ember's figures as further pairs (batches, batch_requests_max, batch_rows_max, max_delay_us, and the
/// backend that runs the model, `ember_backend`: `onnxruntime-cpu`, `onnxruntime-cuda:0`, `native-cuda:0`), which
/// RedisAI clients that read the reply as a map keep as extra keys.
pub fn info(out: &mut Vec<u8>, key: &[u8], meta: &ModelMeta, stats: &ModelStats) {
    encode::array_len(out, 28);
    encode::bulk(out, b"key");
    encode::bulk(out, key);
    encode::bulk(out, b"type");
    encode::bulk(out, b"MODEL");
    encode::bulk(out, b"backend");
    encode::bulk(out, b"ONNX");
    encode::bulk(out, b"device");
    encode::bulk(out, meta.device_text.as_bytes());
    encode::bulk(out, b"tag");
    encode::bulk(out, &meta.tag);
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
        encode::bulk(out, label.as_bytes());
        encode::integer(out, value as i64);
    }
    encode::bulk(out, b"ember_backend");
    encode::bulk(out, meta.backend_name.as_bytes());
}

/// AI.INFO with no key: RedisAI's version fields and the ONNX Runtime build.
pub fn module_info(out: &mut Vec<u8>, onnx_version: Option<&str>) {
    encode::array_len(out, if onnx_version.is_some() { 8 } else { 6 });
    encode::simple(out, b"Version");
    encode::bulk(out, REDISAI_VERSION.as_bytes());
    encode::simple(out, b"Low Level API Version");
    encode::bulk(out, b"1");
    encode::simple(out, b"RDB Encoding version");
    encode::bulk(out, b"1");
    if let Some(version) = onnx_version {
        encode::simple(out, b"ONNX version");
        encode::simple(out, version.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_kernels::DataType;

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
            let mut out = Vec::new();
            tensor(&mut out, &t, format, Protocol::Resp2);
            assert_eq!(out, want, "{format:?}");
        }
        let f = Tensor::new(vec![1], TensorData::Float(vec![0.5])).unwrap();
        let mut out = Vec::new();
        tensor(
            &mut out,
            &f,
            TensorFormat {
                meta: false,
                blob: false,
                values: true,
            },
            Protocol::Resp3,
        );
        assert_eq!(out, b"*1\r\n,0.5\r\n");
    }
}
