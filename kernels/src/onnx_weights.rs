//! Reads a DLRM's weights out of an ONNX model file, so that the CPU reference and the native
//! CUDA engine run the same weights as ONNX Runtime does.
//!
//! ONNX files are protocol buffers. Only what the weights need is decoded here: the graph's
//! initializers (name, dims, element type, data) and its nodes (operator, inputs, outputs,
//! integer attributes); every other field is skipped by its wire type.
//!
//! The model must be built as `models/generate.py` builds `dlrm` and `dlrm_dense`: `Gemm` nodes
//! whose weights are initializers `bot{i}_w` / `bot{i}_b` and `top{i}_w` / `top{i}_b`
//! (`[in, out]`, transB = 0), ReLU where a `Relu` node consumes a `Gemm`'s output, and for
//! `dlrm` the concatenated embedding rows `tables` with each table's first row in
//! `table_offsets`.

use std::collections::HashMap;

use crate::dlrm::{DenseLayer, DlrmError, DlrmModel, EmbeddingTables, LAYER_WIDTH_MAX};

/// Largest model file read: the demo models are a few MB; DLRMs with large tables belong in
/// the keyspace, not in the graph.
pub const MODEL_BYTES_MAX: usize = 1 << 30;
/// Most layers read per MLP; DLRM's MLPs have three or four.
const LAYER_COUNT_MAX: usize = 64;
/// Deepest protobuf nesting followed (model, graph, node, attribute).
const NESTING_MAX: usize = 8;
/// ONNX TensorProto data types used here.
const DATA_TYPE_FLOAT: i64 = 1;
const DATA_TYPE_INT64: i64 = 7;

/// One initializer's values.
#[derive(Clone, Debug, PartialEq)]
enum Values {
    Float(Vec<f32>),
    Int64(Vec<i64>),
}

#[derive(Clone, Debug, PartialEq)]
struct Initializer {
    dims: Vec<i64>,
    values: Values,
}

#[derive(Clone, Debug, Default)]
struct Node {
    op_type: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    int_attributes: Vec<(String, i64)>,
}

/// Builds a [`DlrmModel`] from the bytes of an ONNX model laid out as `models/generate.py`
/// writes it (see the module docs).
///
/// # Errors
/// [`crate::dlrm::DlrmErrorKind::InvalidModel`] when the bytes are not a protobuf this reader
/// understands, an initializer is missing or has the wrong shape, a `Gemm` transposes, or the
/// layers do not form a DLRM.
pub fn dlrm_from_onnx(bytes: &[u8]) -> Result<DlrmModel, DlrmError> {
    if bytes.len() > MODEL_BYTES_MAX {
        return Err(invalid(format!(
            "model is {} bytes, more than {MODEL_BYTES_MAX}",
            bytes.len()
        )));
    }
    let (initializers, nodes) = read_graph(bytes)?;
    let bottom = read_layers(&initializers, &nodes, "bot")?;
    let top = read_layers(&initializers, &nodes, "top")?;
    let dim = bottom
        .last()
        .map(DenseLayer::out_features)
        .ok_or_else(|| invalid("no bottom MLP layers (bot0_w)"))?;
    let top_width = top
        .first()
        .map(DenseLayer::in_features)
        .ok_or_else(|| invalid("no top MLP layers (top0_w)"))?;
    let sparse_feature_count = feature_count_from_width(top_width, dim)?;
    let tables = read_tables(&initializers, dim)?;
    DlrmModel::new(bottom, top, sparse_feature_count, tables)
}

fn invalid(message: impl Into<String>) -> DlrmError {
    DlrmError::model(format!("ONNX model: {}", message.into()))
}

/// F such that `dim + F (F + 1) / 2 == top_width`.
fn feature_count_from_width(top_width: usize, dim: usize) -> Result<usize, DlrmError> {
    let pairs = top_width.checked_sub(dim).ok_or_else(|| {
        invalid(format!(
            "top MLP takes {top_width} inputs, fewer than {dim}"
        ))
    })?;
    let mut features = 0usize;
    while features * (features + 1) / 2 < pairs {
        features += 1;
    }
    if features == 0 || features * (features + 1) / 2 != pairs {
        return Err(invalid(format!(
            "top MLP width {top_width} is not {dim} + F (F + 1) / 2 for any F"
        )));
    }
    Ok(features)
}

fn read_layers(
    initializers: &HashMap<String, Initializer>,
    nodes: &[Node],
    prefix: &str,
) -> Result<Vec<DenseLayer>, DlrmError> {
    let mut layers = Vec::new();
    for index in 0..LAYER_COUNT_MAX {
        let weight_name = format!("{prefix}{index}_w");
        let Some(weight) = initializers.get(&weight_name) else {
            break;
        };
        let bias_name = format!("{prefix}{index}_b");
        let bias = initializers
            .get(&bias_name)
            .ok_or_else(|| invalid(format!("{weight_name} has no {bias_name}")))?;
        let (Values::Float(weight_values), Values::Float(bias_values)) =
            (&weight.values, &bias.values)
        else {
            return Err(invalid(format!(
                "{weight_name} and {bias_name} must be float"
            )));
        };
        let [in_features, out_features] = weight.dims[..] else {
            return Err(invalid(format!(
                "{weight_name} has dims {:?}, expected 2",
                weight.dims
            )));
        };
        let width = |value: i64| {
            usize::try_from(value)
                .ok()
                .filter(|&w| w <= LAYER_WIDTH_MAX)
        };
        let (Some(in_features), Some(out_features)) = (width(in_features), width(out_features))
        else {
            return Err(invalid(format!("{weight_name} has dims {:?}", weight.dims)));
        };
        let gemm = nodes
            .iter()
            .find(|node| node.op_type == "Gemm" && node.inputs.get(1) == Some(&weight_name))
            .ok_or_else(|| invalid(format!("no Gemm node uses {weight_name}")))?;
        for (name, value) in &gemm.int_attributes {
            if (name == "transA" || name == "transB") && *value != 0 {
                return Err(invalid(format!("the Gemm of {weight_name} sets {name}")));
            }
        }
        let output = gemm.outputs.first();
        let relu = nodes
            .iter()
            .any(|node| node.op_type == "Relu" && node.inputs.first() == output);
        layers.push(DenseLayer::new(
            in_features,
            out_features,
            weight_values,
            bias_values,
            relu,
        )?);
    }
    Ok(layers)
}

fn read_tables(
    initializers: &HashMap<String, Initializer>,
    dim: usize,
) -> Result<Option<EmbeddingTables>, DlrmError> {
    let Some(tables) = initializers.get("tables") else {
        return Ok(None);
    };
    let offsets = initializers
        .get("table_offsets")
        .ok_or_else(|| invalid("tables without table_offsets"))?;
    let (Values::Float(rows), Values::Int64(offsets)) = (&tables.values, &offsets.values) else {
        return Err(invalid("tables must be float and table_offsets int64"));
    };
    if tables.dims.len() != 2 || tables.dims[1] != dim as i64 {
        return Err(invalid(format!(
            "tables has dims {:?}, expected [rows, {dim}]",
            tables.dims
        )));
    }
    let total_rows = rows.len() / dim;
    let mut bounds: Vec<usize> = Vec::with_capacity(offsets.len() + 1);
    for &offset in offsets {
        let offset = usize::try_from(offset)
            .ok()
            .filter(|&offset| offset <= total_rows)
            .ok_or_else(|| invalid(format!("table offset {offset} outside {total_rows} rows")))?;
        bounds.push(offset);
    }
    bounds.push(total_rows);
    if bounds[0] != 0 || bounds.windows(2).any(|pair| pair[1] <= pair[0]) {
        return Err(invalid(format!(
            "table_offsets {offsets:?} do not split the rows"
        )));
    }
    let slices: Vec<&[f32]> = bounds
        .windows(2)
        .map(|pair| &rows[pair[0] * dim..pair[1] * dim])
        .collect();
    EmbeddingTables::new(dim, &slices).map(Some)
}

/// A protobuf reader over one message's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

/// One field: its number and its payload.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    Fixed64,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    fn varint(&mut self) -> Result<u64, DlrmError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.position)
                .ok_or_else(|| invalid("truncated varint"))?;
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DlrmError> {
        let end = self
            .position
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| invalid("field runs past the end of its message"))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>, DlrmError> {
        if self.position == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| invalid("length does not fit in memory"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                let bytes = self.take(4)?;
                Field::Fixed32(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            }
            wire_type => return Err(invalid(format!("unsupported wire type {wire_type}"))),
        };
        Ok(Some((key >> 3, field)))
    }
}

type Graph = (HashMap<String, Initializer>, Vec<Node>);

fn read_graph(model: &[u8]) -> Result<Graph, DlrmError> {
    let mut reader = Reader::new(model);
    let mut graph = None;
    // ModelProto.graph = 7.
    while let Some((number, field)) = reader.next_field()? {
        if let (7, Field::Bytes(bytes)) = (number, field) {
            graph = Some(bytes);
        }
    }
    let graph = graph.ok_or_else(|| invalid("no graph (is this an ONNX model?)"))?;
    let mut initializers = HashMap::new();
    let mut nodes = Vec::new();
    let mut reader = Reader::new(graph);
    // GraphProto.node = 1, GraphProto.initializer = 5.
    while let Some((number, field)) = reader.next_field()? {
        match (number, field) {
            (1, Field::Bytes(bytes)) => nodes.push(read_node(bytes, 1)?),
            (5, Field::Bytes(bytes)) => {
                let (name, initializer) = read_tensor(bytes)?;
                initializers.insert(name, initializer);
            }
            _ => {}
        }
    }
    Ok((initializers, nodes))
}

fn string(bytes: &[u8]) -> Result<String, DlrmError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid("a name is not UTF-8"))
}

fn read_node(bytes: &[u8], depth: usize) -> Result<Node, DlrmError> {
    if depth > NESTING_MAX {
        return Err(invalid("nesting too deep"));
    }
    let mut node = Node::default();
    let mut reader = Reader::new(bytes);
    // NodeProto: input = 1, output = 2, op_type = 4, attribute = 5.
    while let Some((number, field)) = reader.next_field()? {
        match (number, field) {
            (1, Field::Bytes(bytes)) => node.inputs.push(string(bytes)?),
            (2, Field::Bytes(bytes)) => node.outputs.push(string(bytes)?),
            (4, Field::Bytes(bytes)) => node.op_type = string(bytes)?,
            (5, Field::Bytes(bytes)) => {
                if let Some(attribute) = read_int_attribute(bytes)? {
                    node.int_attributes.push(attribute);
                }
            }
            _ => {}
        }
    }
    Ok(node)
}

/// An attribute's name and integer value (AttributeProto: name = 1, i = 3), if it has one.
fn read_int_attribute(bytes: &[u8]) -> Result<Option<(String, i64)>, DlrmError> {
    let mut reader = Reader::new(bytes);
    let (mut name, mut value) = (None, None);
    while let Some((number, field)) = reader.next_field()? {
        match (number, field) {
            (1, Field::Bytes(bytes)) => name = Some(string(bytes)?),
            (3, Field::Varint(raw)) => value = Some(raw as i64),
            _ => {}
        }
    }
    Ok(name.zip(value))
}

fn read_tensor(bytes: &[u8]) -> Result<(String, Initializer), DlrmError> {
    let mut reader = Reader::new(bytes);
    let mut dims = Vec::new();
    let mut data_type = 0i64;
    let mut name = String::new();
    let mut raw: Option<&[u8]> = None;
    let mut floats = Vec::new();
    let mut int64s = Vec::new();
    // TensorProto: dims = 1, data_type = 2, float_data = 4, int64_data = 7, name = 8,
    // raw_data = 9. Repeated numbers come packed (proto3's default) or one per field.
    while let Some((number, field)) = reader.next_field()? {
        match (number, field) {
            (1, Field::Varint(value)) => dims.push(value as i64),
            (1, Field::Bytes(packed)) => {
                let mut inner = Reader::new(packed);
                while inner.position < packed.len() {
                    dims.push(inner.varint()? as i64);
                }
            }
            (2, Field::Varint(value)) => data_type = value as i64,
            (4, Field::Fixed32(bits)) => floats.push(f32::from_bits(bits)),
            (4, Field::Bytes(packed)) => floats.extend(le_floats(packed)?),
            (7, Field::Varint(value)) => int64s.push(value as i64),
            (7, Field::Bytes(packed)) => {
                let mut inner = Reader::new(packed);
                while inner.position < packed.len() {
                    int64s.push(inner.varint()? as i64);
                }
            }
            (8, Field::Bytes(bytes)) => name = string(bytes)?,
            (9, Field::Bytes(bytes)) => raw = Some(bytes),
            _ => {}
        }
    }
    let element_count = dims.iter().try_fold(1usize, |count, &dim| {
        usize::try_from(dim)
            .ok()
            .and_then(|dim| count.checked_mul(dim))
    });
    let element_count =
        element_count.ok_or_else(|| invalid(format!("{name} has dims {dims:?}")))?;
    let values = match (data_type, raw) {
        (DATA_TYPE_FLOAT, Some(raw)) => Values::Float(le_floats(raw)?),
        (DATA_TYPE_FLOAT, None) => Values::Float(floats),
        (DATA_TYPE_INT64, Some(raw)) => {
            if raw.len() % 8 != 0 {
                return Err(invalid(format!(
                    "{name}: raw int64 data of {} bytes",
                    raw.len()
                )));
            }
            Values::Int64(
                raw.chunks_exact(8)
                    .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect(),
            )
        }
        (DATA_TYPE_INT64, None) => Values::Int64(int64s),
        // Other initializers (the graph's index constants) are not weights; keep their shape.
        _ => Values::Int64(Vec::new()),
    };
    let len = match &values {
        Values::Float(values) => values.len(),
        Values::Int64(values) => values.len(),
    };
    if matches!(data_type, DATA_TYPE_FLOAT | DATA_TYPE_INT64) && len != element_count {
        return Err(invalid(format!(
            "{name} holds {len} values but its dims {dims:?} say {element_count}"
        )));
    }
    Ok((name, Initializer { dims, values }))
}

fn le_floats(bytes: &[u8]) -> Result<Vec<f32>, DlrmError> {
    if bytes.len() % 4 != 0 {
        return Err(invalid(format!("float data of {} bytes", bytes.len())));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlrm::DlrmErrorKind;

    /// Protobuf writer for the tests: key, then payload.
    fn varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn bytes_field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn varint_field(number: u64, value: u64, out: &mut Vec<u8>) {
        varint(number << 3, out);
        varint(value, out);
    }

    fn tensor(name: &str, dims: &[u64], values: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut packed = Vec::new();
        for &dim in dims {
            varint(dim, &mut packed);
        }
        bytes_field(1, &packed, &mut out);
        varint_field(2, DATA_TYPE_FLOAT as u64, &mut out);
        bytes_field(8, name.as_bytes(), &mut out);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes_field(9, &raw, &mut out);
        out
    }

    fn node(op_type: &str, inputs: &[&str], output: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for input in inputs {
            bytes_field(1, input.as_bytes(), &mut out);
        }
        bytes_field(2, output.as_bytes(), &mut out);
        bytes_field(4, op_type.as_bytes(), &mut out);
        out
    }

    /// The tiny DLRM of the reference tests: d = 1, F = 1, bottom 1-1 with ReLU, top 2-1.
    fn tiny_model_bytes() -> Vec<u8> {
        let mut graph = Vec::new();
        bytes_field(
            1,
            &node("Gemm", &["dense", "bot0_w", "bot0_b"], "bot0_lin"),
            &mut graph,
        );
        bytes_field(1, &node("Relu", &["bot0_lin"], "bot0"), &mut graph);
        bytes_field(
            1,
            &node("Gemm", &["top_in", "top0_w", "top0_b"], "top0_lin"),
            &mut graph,
        );
        bytes_field(1, &node("Sigmoid", &["top0_lin"], "score"), &mut graph);
        bytes_field(5, &tensor("bot0_w", &[1, 1], &[2.0]), &mut graph);
        bytes_field(5, &tensor("bot0_b", &[1], &[0.0]), &mut graph);
        bytes_field(5, &tensor("top0_w", &[2, 1], &[1.0, 3.0]), &mut graph);
        bytes_field(5, &tensor("top0_b", &[1], &[-1.0]), &mut graph);
        let mut model = Vec::new();
        varint_field(1, 8, &mut model);
        bytes_field(7, &graph, &mut model);
        model
    }

    #[test]
    fn reads_layers_and_relu_placement() {
        let model = dlrm_from_onnx(&tiny_model_bytes()).unwrap();
        assert_eq!(model.sparse_feature_count(), 1);
        assert_eq!(model.bottom()[0].weight(), &[2.0]);
        assert!(model.bottom()[0].relu());
        assert!(!model.top()[0].relu());
        assert_eq!(model.top()[0].weight(), &[1.0, 3.0]);
        assert_eq!(model.top()[0].bias(), &[-1.0]);
        assert!(model.tables().is_none());
        let scores = crate::reference::score_pooled(&model, &[0.5], &[2.0]).unwrap();
        assert_eq!(scores, vec![crate::reference::sigmoid(6.0)]);
    }

    #[test]
    fn malformed_bytes_are_errors() {
        let full = tiny_model_bytes();
        let cases: [(&str, &[u8], &str); 4] = [
            ("empty", &[], "no graph"),
            ("truncated", &full[..full.len() / 2], "past the end"),
            ("bad wire type", &[0x0f], "wire type 7"),
            ("unterminated varint", &[0x08, 0xff], "truncated varint"),
        ];
        for (name, bytes, needle) in cases {
            let error = dlrm_from_onnx(bytes).unwrap_err();
            assert_eq!(error.kind(), DlrmErrorKind::InvalidModel, "{name}");
            assert!(
                error.message().contains(needle),
                "{name}: {}",
                error.message()
            );
        }
    }

    #[test]
    fn feature_count_solves_the_width() {
        assert_eq!(feature_count_from_width(415, 64), Ok(26));
        assert_eq!(feature_count_from_width(2, 1), Ok(1));
        assert!(feature_count_from_width(416, 64).is_err());
        assert!(feature_count_from_width(10, 64).is_err());
    }
}
