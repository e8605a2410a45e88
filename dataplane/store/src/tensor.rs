//! Tensor values: what RedisAI's AI.TENSORSET stores under a key (TYPE answers `AI_TENSOR`).
//!
//! The store does not know tensor arithmetic or element types (that is ember-kernels', and the
//! store depends on no other Ember crate): a tensor here is an opaque payload of a type name,
//! a shape and the elements as little-endian bytes. The server checks that the three agree
//! before it stores one and converts to and from the kernels' tensor at the edges.

/// A tensor kept in the keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorValue {
    /// RedisAI's element type name (`FLOAT`, `INT64`...), as the server spelled it.
    dtype: Box<str>,
    /// Elements per dimension, batch dimension first.
    shape: Box<[usize]>,
    /// The elements in row-major order, little-endian.
    data: Box<[u8]>,
}

impl TensorValue {
    /// A tensor of element type `dtype` and shape `shape` whose elements are `data`
    /// (little-endian, row-major). The caller has checked that `data` holds exactly the
    /// elements `shape` asks for.
    pub fn new(dtype: &str, shape: Vec<usize>, data: Vec<u8>) -> Self {
        Self {
            dtype: dtype.into(),
            shape: shape.into_boxed_slice(),
            data: data.into_boxed_slice(),
        }
    }

    /// The element type name.
    pub fn dtype(&self) -> &str {
        &self.dtype
    }

    /// Elements per dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements as little-endian bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Bytes held on the heap: type name, shape and data.
    pub fn heap_len(&self) -> usize {
        self.dtype.len() + std::mem::size_of_val(&*self.shape) + self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_heap_len() {
        // (type, shape, data bytes, heap bytes: name + 8 per dimension on a 64-bit target + data)
        let cases: &[(&str, &[usize], usize, usize)] = &[
            ("FLOAT", &[2, 3], 24, 5 + 16 + 24),
            ("INT64", &[1], 8, 5 + 8 + 8),
            ("DOUBLE", &[], 8, 6 + 8),
            ("INT32", &[0, 4], 0, 5 + 16),
        ];
        for &(dtype, shape, data_len, heap_len) in cases {
            let tensor = TensorValue::new(dtype, shape.to_vec(), vec![7; data_len]);
            assert_eq!(tensor.dtype(), dtype);
            assert_eq!(tensor.shape(), shape);
            assert_eq!(tensor.data(), vec![7; data_len].as_slice());
            if cfg!(target_pointer_width = "64") {
                assert_eq!(tensor.heap_len(), heap_len, "{dtype} {shape:?}");
            }
        }
    }
}
