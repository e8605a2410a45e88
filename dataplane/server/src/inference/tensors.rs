//! RedisAI tensors in the keyspace: a tensor is an ordinary key of type `AI_TENSOR` in the client's database on
//! the shard that owns the key, so DEL, TYPE, KEYS, SCAN, EXPIRE, RENAME, FLUSHDB and the rest see it as they
//! see any key. The store keeps it as an opaque [`TensorValue`] (ember-store does not know ember-kernels); this
//! file converts between that and the kernels' [`Tensor`] and reads and writes tensor keys for AI.TENSORSET,
//! AI.TENSORGET and AI.MODELEXECUTE on the owning shard.

use ember_kernels::{DataType, Tensor};
use ember_store::{Keyspace, TensorValue, Value};

use crate::commands::errors;

/// What a tensor key held when it was read.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorRead {
    /// A tensor.
    Found(Tensor),
    /// No such key (or it expired).
    Missing,
    /// A key of another type.
    WrongType,
}

/// The store's form of `tensor`.
pub fn to_value(tensor: &Tensor) -> Value {
    Value::Tensor(Box::new(TensorValue::new(
        tensor.dtype().name(),
        tensor.shape().to_vec(),
        tensor.to_le_bytes(),
    )))
}

/// The kernels' form of a stored tensor. Only [`to_value`] writes tensor values, so the parts always agree; a
/// disagreement would be a bug here, and it answers an error rather than stopping the shard.
///
/// # Errors
/// A message when the type name is unknown or the bytes do not fit the shape.
pub fn from_value(value: &TensorValue) -> Result<Tensor, String> {
    let dtype = DataType::parse(value.dtype().as_bytes())
        .ok_or_else(|| format!("ERR stored tensor has unknown type {}", value.dtype()))?;
    Tensor::from_le_bytes(dtype, value.shape().to_vec(), value.data())
        .map_err(|e| format!("ERR {e}"))
}

/// Reads the tensors at `keys` in `db`, in order; each read counts as a keyspace hit or miss in `count_lookup`.
pub fn read(
    keyspace: &mut Keyspace,
    db: usize,
    keys: &[Vec<u8>],
    now_ms: u64,
    mut count_lookup: impl FnMut(bool),
) -> Vec<TensorRead> {
    keys.iter()
        .map(|key| {
            let entry = keyspace.get(db, key, now_ms);
            count_lookup(entry.is_some());
            match entry.map(|entry| &entry.value) {
                None => TensorRead::Missing,
                Some(Value::Tensor(tensor)) => match from_value(tensor) {
                    Ok(tensor) => TensorRead::Found(tensor),
                    // Unreachable while only `to_value` writes tensors; a value that does not convert
                    // is not a tensor the kernels can use, and the client gets WRONGTYPE, not a crash.
                    Err(_) => TensorRead::WrongType,
                },
                Some(_) => TensorRead::WrongType,
            }
        })
        .collect()
}

/// Stores each tensor at its key in `db`, replacing an older tensor and clearing its TTL, as RedisAI's
/// AI.TENSORSET does (a module value set on a key drops its expiry).
///
/// # Errors
/// WRONGTYPE, with nothing written, when any of the keys holds a value of another type: RedisAI opens the key
/// for a tensor and refuses a key of another type (`RAI_OpenKey_Tensor`) rather than replacing it.
pub fn write(
    keyspace: &mut Keyspace,
    db: usize,
    entries: Vec<(Vec<u8>, Tensor)>,
    now_ms: u64,
) -> Result<(), String> {
    let taken = entries.iter().any(|(key, _)| {
        keyspace
            .get(db, key, now_ms)
            .is_some_and(|entry| !matches!(entry.value, Value::Tensor(_)))
    });
    if taken {
        return Err(errors::WRONGTYPE.to_string());
    }
    for (key, tensor) in entries {
        keyspace.insert(db, &key, to_value(&tensor), None, now_ms);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_kernels::TensorData;

    fn tensor(values: &[f32]) -> Tensor {
        Tensor::new(vec![1, values.len()], TensorData::Float(values.to_vec())).unwrap()
    }

    #[test]
    fn round_trip_every_type() {
        let cases = [
            Tensor::new(
                vec![2, 2],
                TensorData::Float(vec![1.0, -2.5, f32::INFINITY, 0.0]),
            )
            .unwrap(),
            Tensor::new(vec![3], TensorData::Double(vec![1e300, -0.0, 3.5])).unwrap(),
            Tensor::new(vec![1, 2], TensorData::Int32(vec![i32::MIN, 7])).unwrap(),
            Tensor::new(vec![2, 1], TensorData::Int64(vec![i64::MAX, -1])).unwrap(),
        ];
        for case in cases {
            let Value::Tensor(value) = to_value(&case) else {
                panic!("to_value made a non-tensor");
            };
            assert_eq!(value.dtype(), case.dtype().name());
            assert_eq!(from_value(&value).unwrap(), case);
        }
        let bad = TensorValue::new("FLOAT", vec![2], vec![0; 4]);
        assert!(from_value(&bad).is_err());
    }

    #[test]
    fn write_then_read_in_one_database() {
        let mut keyspace = Keyspace::new();
        keyspace.insert(0, b"s", Value::from_bytes(b"text"), None, 0);
        keyspace.insert(0, b"t", Value::from_bytes(b"1"), None, 0);
        keyspace.remove(0, b"t", 0);
        write(&mut keyspace, 0, vec![(b"t".to_vec(), tensor(&[1.0]))], 0).unwrap();
        // Over a string: WRONGTYPE, and the tensor of the same request is not written either.
        assert_eq!(
            write(
                &mut keyspace,
                0,
                vec![
                    (b"u".to_vec(), tensor(&[2.0])),
                    (b"s".to_vec(), tensor(&[3.0]))
                ],
                0
            ),
            Err(errors::WRONGTYPE.to_string())
        );
        // Over a tensor with a TTL: replaced, and the TTL is gone.
        keyspace.set_expire(0, b"t", Some(50), 0);
        write(&mut keyspace, 0, vec![(b"t".to_vec(), tensor(&[4.0]))], 0).unwrap();
        assert_eq!(keyspace.get(0, b"t", 0).unwrap().expire_at_ms(), None);
        let mut lookups = Vec::new();
        let keys = [b"t".to_vec(), b"u".to_vec(), b"s".to_vec()];
        assert_eq!(
            read(&mut keyspace, 0, &keys, 100, |hit| lookups.push(hit)),
            vec![
                TensorRead::Found(tensor(&[4.0])),
                TensorRead::Missing,
                TensorRead::WrongType
            ]
        );
        assert_eq!(lookups, vec![true, false, true]);
        assert_eq!(
            read(&mut keyspace, 1, &keys[..1], 0, |_| {}),
            vec![TensorRead::Missing]
        );
    }
}
