//! Dense tensors in row-major order, batch dimension first: what every backend takes and returns.
//!
//! The element types are RedisAI's names for the types Ember serves (FLOAT, DOUBLE, INT32, INT64).

use crate::error::{Error, ErrorKind, Result};

/// Most dimensions a tensor may have. RedisAI allows any rank; eight covers every recommendation and vision
/// model we know of, and a bound here keeps a peer from making us build a huge shape vector.
pub const RANK_MAX: usize = 8;

/// Most elements one tensor may hold (256 Mi, 1 GiB of f32): bounds the allocation a shape can ask for
/// before any data arrives.
pub const ELEMENTS_MAX: usize = 1 << 28;

/// An element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// 32-bit IEEE float.
    Float,
    /// 64-bit IEEE float.
    Double,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
}

impl DataType {
    /// Every type, in RedisAI's order.
    pub const ALL: [DataType; 4] = [
        DataType::Float,
        DataType::Double,
        DataType::Int32,
        DataType::Int64,
    ];

    /// RedisAI's name: `FLOAT`, `DOUBLE`, `INT32`, `INT64`.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
        }
    }

    /// The type for a RedisAI name, case-insensitive; `None` for any other.
    pub fn parse(name: &[u8]) -> Option<DataType> {
        DataType::ALL
            .into_iter()
            .find(|t| t.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            DataType::Float | DataType::Int32 => 4,
            DataType::Double | DataType::Int64 => 8,
        }
    }
}

/// A tensor's elements.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// FLOAT elements.
    Float(Vec<f32>),
    /// DOUBLE elements.
    Double(Vec<f64>),
    /// INT32 elements.
    Int32(Vec<i32>),
    /// INT64 elements.
    Int64(Vec<i64>),
}

impl TensorData {
    /// The element type.
    pub fn dtype(&self) -> DataType {
        match self {
            TensorData::Float(_) => DataType::Float,
            TensorData::Double(_) => DataType::Double,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::Float(v) => v.len(),
            TensorData::Double(v) => v.len(),
            TensorData::Int32(v) => v.len(),
            TensorData::Int64(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn empty(dtype: DataType, capacity: usize) -> TensorData {
        match dtype {
            DataType::Float => TensorData::Float(Vec::with_capacity(capacity)),
            DataType::Double => TensorData::Double(Vec::with_capacity(capacity)),
            DataType::Int32 => TensorData::Int32(Vec::with_capacity(capacity)),
            DataType::Int64 => TensorData::Int64(Vec::with_capacity(capacity)),
        }
    }

    /// Appends `other[range]`; both must have the same type (checked by the caller).
    fn extend_from(&mut self, other: &TensorData, range: std::ops::Range<usize>) {
        match (self, other) {
            (TensorData::Float(a), TensorData::Float(b)) => a.extend_from_slice(&b[range]),
            (TensorData::Double(a), TensorData::Double(b)) => a.extend_from_slice(&b[range]),
            (TensorData::Int32(a), TensorData::Int32(b)) => a.extend_from_slice(&b[range]),
            (TensorData::Int64(a), TensorData::Int64(b)) => a.extend_from_slice(&b[range]),
            _ => unreachable!("extend_from with mismatched types; callers compare dtypes first"),
        }
    }
}

/// Borrowed elements of some rows of a tensor ([`Tensor::rows_view`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TensorView<'a> {
    /// FLOAT elements.
    Float(&'a [f32]),
    /// DOUBLE elements.
    Double(&'a [f64]),
    /// INT32 elements.
    Int32(&'a [i32]),
    /// INT64 elements.
    Int64(&'a [i64]),
}

/// A dense row-major tensor. The first dimension is the batch dimension wherever a model batches.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

/// Element count of `shape`, or an error when the rank or the count passes its bound.
///
/// # Errors
/// [`ErrorKind::InvalidTensor`] when the rank exceeds [`RANK_MAX`] or the count exceeds [`ELEMENTS_MAX`].
pub fn element_count(shape: &[usize]) -> Result<usize> {
    if shape.len() > RANK_MAX {
        return Err(Error::new(
            ErrorKind::InvalidTensor,
            format!(
                "tensor rank {} exceeds the limit of {RANK_MAX}",
                shape.len()
            ),
        ));
    }
    let mut count: usize = 1;
    for &dim in shape {
        count = count
            .checked_mul(dim)
            .filter(|&c| c <= ELEMENTS_MAX)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidTensor,
                    format!("tensor shape {shape:?} exceeds the limit of {ELEMENTS_MAX} elements"),
                )
            })?;
    }
    Ok(count)
}

impl Tensor {
    /// A tensor from its shape and elements.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTensor`] when the element count differs from the shape's, or a bound is exceeded.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor> {
        let expected = element_count(&shape)?;
        if expected != data.len() {
            return Err(Error::new(
                ErrorKind::InvalidTensor,
                format!(
                    "tensor of shape {shape:?} needs {expected} values, got {}",
                    data.len()
                ),
            ));
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor from little-endian element bytes (RedisAI's BLOB).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTensor`] when the byte count differs from what the shape and type need.
    pub fn from_le_bytes(dtype: DataType, shape: Vec<usize>, bytes: &[u8]) -> Result<Tensor> {
        let count = element_count(&shape)?;
        let expected = count * dtype.size_bytes();
        if bytes.len() != expected {
            return Err(Error::new(
                ErrorKind::InvalidTensor,
                format!(
                    "tensor of type {} and shape {shape:?} needs {expected} bytes, got {}",
                    dtype.name(),
                    bytes.len()
                ),
            ));
        }
        let data = match dtype {
            DataType::Float => TensorData::Float(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")))
                    .collect(),
            ),
            DataType::Double => TensorData::Double(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
                    .collect(),
            ),
            DataType::Int32 => TensorData::Int32(
                bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().expect("chunk of 4")))
                    .collect(),
            ),
            DataType::Int64 => TensorData::Int64(
                bytes
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8")))
                    .collect(),
            ),
        };
        Ok(Tensor { shape, data })
    }

    /// The elements as little-endian bytes (RedisAI's BLOB).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() * self.dtype().size_bytes());
        match &self.data {
            TensorData::Float(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::Double(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::Int32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::Int64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        out
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DataType {
        self.data.dtype()
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The elements, consuming the tensor.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The FLOAT elements, or `None` for another type.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::Float(v) => Some(v),
            _ => None,
        }
    }

    /// Length of the first (batch) dimension; 0 for a scalar.
    pub fn batch_len(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Elements per batch row (the product of every dimension but the first).
    fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Elements per batch row and the element range of `rows`, checked against the batch length.
    fn row_range(&self, rows: &std::ops::Range<usize>) -> Result<std::ops::Range<usize>> {
        if self.shape.is_empty() || rows.start > rows.end || rows.end > self.batch_len() {
            return Err(Error::new(
                ErrorKind::InputMismatch,
                format!(
                    "rows {rows:?} are not within a tensor of shape {:?}",
                    self.shape
                ),
            ));
        }
        let row_len = self.row_len();
        Ok(rows.start * row_len..rows.end * row_len)
    }

    /// The shape of `rows` of this tensor.
    pub fn rows_shape(&self, rows: &std::ops::Range<usize>) -> Vec<usize> {
        let mut shape = self.shape.clone();
        if let Some(first) = shape.first_mut() {
            *first = rows.end.saturating_sub(rows.start);
        }
        shape
    }

    /// A copy of rows `rows` (batch dimension).
    ///
    /// # Errors
    /// [`ErrorKind::InputMismatch`] when the range is not within the batch.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Result<Tensor> {
        let range = self.row_range(&rows)?;
        let mut data = TensorData::empty(self.dtype(), range.len());
        data.extend_from(&self.data, range);
        Ok(Tensor {
            shape: self.rows_shape(&rows),
            data,
        })
    }

    /// Elements of rows `rows`, borrowed, with their shape: a view for backends that read in place.
    ///
    /// # Errors
    /// [`ErrorKind::InputMismatch`] when the range is not within the batch.
    pub fn rows_view(&self, rows: std::ops::Range<usize>) -> Result<(Vec<usize>, TensorView<'_>)> {
        let range = self.row_range(&rows)?;
        let view = match &self.data {
            TensorData::Float(v) => TensorView::Float(&v[range]),
            TensorData::Double(v) => TensorView::Double(&v[range]),
            TensorData::Int32(v) => TensorView::Int32(&v[range]),
            TensorData::Int64(v) => TensorView::Int64(&v[range]),
        };
        Ok((self.rows_shape(&rows), view))
    }

    /// Joins tensors along the batch dimension: how a batcher merges requests.
    ///
    /// # Errors
    /// [`ErrorKind::InputMismatch`] when there are no parts, or they differ in type, rank or a non-batch dimension.
    pub fn concat_batch(parts: &[&Tensor]) -> Result<Tensor> {
        let first = parts.first().ok_or_else(|| {
            Error::new(ErrorKind::InputMismatch, "cannot concatenate zero tensors")
        })?;
        if first.shape.is_empty() {
            return Err(Error::new(
                ErrorKind::InputMismatch,
                "cannot concatenate scalars along a batch dimension",
            ));
        }
        let mut batch_len = 0usize;
        for part in parts {
            if part.dtype() != first.dtype()
                || part.shape.len() != first.shape.len()
                || part.shape[1..] != first.shape[1..]
            {
                return Err(Error::new(
                    ErrorKind::InputMismatch,
                    format!(
                        "cannot batch a {} tensor of shape {:?} with a {} tensor of shape {:?}",
                        part.dtype().name(),
                        part.shape,
                        first.dtype().name(),
                        first.shape
                    ),
                ));
            }
            batch_len += part.batch_len();
        }
        let mut shape = first.shape.clone();
        shape[0] = batch_len;
        let count =
            element_count(&shape).map_err(|e| Error::new(ErrorKind::InputMismatch, e.message()))?;
        let mut data = TensorData::empty(first.dtype(), count);
        for part in parts {
            data.extend_from(&part.data, 0..part.len());
        }
        Ok(Tensor { shape, data })
    }

    /// Splits along the batch dimension into pieces of `lens` rows: how a batcher hands replies back.
    ///
    /// # Errors
    /// [`ErrorKind::InputMismatch`] when the tensor is a scalar or `lens` does not sum to the batch length.
    pub fn split_batch(&self, lens: &[usize]) -> Result<Vec<Tensor>> {
        let total: usize = lens.iter().sum();
        if self.shape.is_empty() || total != self.batch_len() {
            return Err(Error::new(
                ErrorKind::InputMismatch,
                format!(
                    "cannot split a tensor of shape {:?} into batches of {lens:?}",
                    self.shape
                ),
            ));
        }
        let row_len = self.row_len();
        let mut start = 0;
        let mut pieces = Vec::with_capacity(lens.len());
        for &len in lens {
            let mut shape = self.shape.clone();
            shape[0] = len;
            let mut data = TensorData::empty(self.dtype(), len * row_len);
            data.extend_from(&self.data, start * row_len..(start + len) * row_len);
            pieces.push(Tensor { shape, data });
            start += len;
        }
        Ok(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for dtype in DataType::ALL {
            assert_eq!(DataType::parse(dtype.name().as_bytes()), Some(dtype));
            assert_eq!(
                DataType::parse(dtype.name().to_lowercase().as_bytes()),
                Some(dtype)
            );
        }
        assert_eq!(DataType::parse(b"FLOAT16"), None);
        assert_eq!(DataType::parse(b""), None);
    }

    #[test]
    fn bytes_round_trip_every_type() {
        let cases = [
            TensorData::Float(vec![1.5, -2.0, 0.0, f32::MAX, 3.25, -0.5]),
            TensorData::Double(vec![1.5, -2.0, 0.0, f64::MIN, 3.25, -0.5]),
            TensorData::Int32(vec![1, -2, 0, i32::MAX, i32::MIN, 7]),
            TensorData::Int64(vec![1, -2, 0, i64::MAX, i64::MIN, 7]),
        ];
        for data in cases {
            let tensor = Tensor::new(vec![2, 3], data).unwrap();
            let bytes = tensor.to_le_bytes();
            assert_eq!(bytes.len(), 6 * tensor.dtype().size_bytes());
            assert_eq!(
                Tensor::from_le_bytes(tensor.dtype(), vec![2, 3], &bytes).unwrap(),
                tensor
            );
        }
    }

    #[test]
    fn malformed_tensors_are_errors() {
        let cases: [(&str, Result<Tensor>); 5] = [
            (
                "too few values",
                Tensor::new(vec![2, 3], TensorData::Float(vec![0.0; 5])),
            ),
            (
                "too many bytes",
                Tensor::from_le_bytes(DataType::Int64, vec![2], &[0; 17]),
            ),
            (
                "rank over the limit",
                Tensor::new(vec![1; RANK_MAX + 1], TensorData::Float(vec![0.0])),
            ),
            (
                "count overflows",
                Tensor::from_le_bytes(DataType::Float, vec![usize::MAX, 2], &[]),
            ),
            (
                "count over the limit",
                Tensor::from_le_bytes(DataType::Float, vec![ELEMENTS_MAX, 2], &[]),
            ),
        ];
        for (name, result) in cases {
            let err = result.expect_err(name);
            assert_eq!(err.kind(), ErrorKind::InvalidTensor, "{name}: {err}");
        }
    }

    #[test]
    fn concat_then_split_gives_the_parts_back() {
        let a = Tensor::new(vec![1, 2], TensorData::Int32(vec![1, 2])).unwrap();
        let b = Tensor::new(vec![3, 2], TensorData::Int32(vec![3, 4, 5, 6, 7, 8])).unwrap();
        let joined = Tensor::concat_batch(&[&a, &b]).unwrap();
        assert_eq!(joined.shape(), &[4, 2]);
        assert_eq!(
            joined.data(),
            &TensorData::Int32(vec![1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(joined.split_batch(&[1, 3]).unwrap(), vec![a, b]);
        assert_eq!(
            joined.split_batch(&[2, 1]).unwrap_err().kind(),
            ErrorKind::InputMismatch
        );
    }

    #[test]
    fn concat_refuses_mismatched_parts() {
        let a = Tensor::new(vec![1, 2], TensorData::Float(vec![1.0, 2.0])).unwrap();
        let wrong_type = Tensor::new(vec![1, 2], TensorData::Double(vec![1.0, 2.0])).unwrap();
        let wrong_width = Tensor::new(vec![1, 3], TensorData::Float(vec![1.0, 2.0, 3.0])).unwrap();
        let scalar = Tensor::new(vec![], TensorData::Float(vec![1.0])).unwrap();
        for (name, parts) in [
            ("type", vec![&a, &wrong_type]),
            ("width", vec![&a, &wrong_width]),
            ("scalar", vec![&scalar]),
            ("empty", vec![]),
        ] {
            assert_eq!(
                Tensor::concat_batch(&parts).unwrap_err().kind(),
                ErrorKind::InputMismatch,
                "{name}"
            );
        }
    }
}
