//! The DLRM model that Ember's recommendation path runs, as plain f32 weights: the description
//! that the CPU reference ([`crate::reference`]) and the native CUDA engine
//! ([`crate::cuda::DlrmEngine`]) both take.
//!
//! The network (Naumov et al., 2019, and `models/generate.py`):
//!
//! ```text
//! dense [n, D] -> bottom MLP (ReLU after each layer)            -> x [n, d]
//! sparse bags  -> one embedding bag per feature (sum or mean)    -> pooled [n, F, d]
//! T = [x, pooled_0, ..., pooled_{F-1}]                           (F + 1 vectors of d floats)
//! top_in = [x, T_i . T_j for i in 1..=F, j in 0..i]              (d + F (F + 1) / 2 floats)
//! top MLP (ReLU between layers) -> logit [n, 1] -> sigmoid       -> score [n]
//! ```
//!
//! Weights arrive as f32 slices per layer, laid out as ONNX `Gemm` (transB = 0) and numpy's
//! `x @ w` hold them: `weight[i * out_features + o]` is the weight from input `i` to output `o`.
//! That is how `models/generate.py` writes its initializers, so they can be passed as they are.

use std::fmt;

/// Largest layer width accepted. DLRM's widest layers are a few thousand; the bound keeps a
/// malformed model from asking for gigabytes per sample.
pub const LAYER_WIDTH_MAX: usize = 1 << 16;
/// Most sparse features (embedding tables) accepted; Criteo's DLRM has 26.
pub const SPARSE_FEATURE_COUNT_MAX: usize = 1024;
/// Most rows over all embedding tables: row indices travel as u32 to the GPU.
pub const TABLE_ROW_COUNT_MAX: usize = u32::MAX as usize;

/// What is wrong with a model or with a request's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DlrmErrorKind {
    /// The weights are inconsistent: lengths that do not match the shapes, layers that do not
    /// chain, a top MLP that does not end in one logit.
    InvalidModel,
    /// A request's inputs do not match the model: lengths, bag offsets, ids outside a table.
    InvalidInput,
}

/// An error in a DLRM model description or in the inputs given to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DlrmError {
    kind: DlrmErrorKind,
    message: String,
}

impl DlrmError {
    pub(crate) fn model(message: impl Into<String>) -> Self {
        Self {
            kind: DlrmErrorKind::InvalidModel,
            message: message.into(),
        }
    }

    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self {
            kind: DlrmErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> DlrmErrorKind {
        self.kind
    }

    /// The explanation, with the numbers that explain it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DlrmError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for DlrmError {}

/// One fully connected layer: `y = x W + b`, then ReLU when `relu` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLayer {
    in_features: usize,
    out_features: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
    relu: bool,
}

impl DenseLayer {
    /// A layer from its weights (`[in_features, out_features]`, row-major) and bias
    /// (`[out_features]`); the slices are copied.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidModel`] when a width is zero or above [`LAYER_WIDTH_MAX`], or a
    /// slice's length does not match the widths.
    pub fn new(
        in_features: usize,
        out_features: usize,
        weight: &[f32],
        bias: &[f32],
        relu: bool,
    ) -> Result<Self, DlrmError> {
        for (name, width) in [("in_features", in_features), ("out_features", out_features)] {
            if width == 0 || width > LAYER_WIDTH_MAX {
                return Err(DlrmError::model(format!(
                    "layer {name} is {width}, expected 1..={LAYER_WIDTH_MAX}"
                )));
            }
        }
        if weight.len() != in_features * out_features {
            return Err(DlrmError::model(format!(
                "layer {in_features}x{out_features} has {} weights, expected {}",
                weight.len(),
                in_features * out_features
            )));
        }
        if bias.len() != out_features {
            return Err(DlrmError::model(format!(
                "layer {in_features}x{out_features} has {} biases, expected {out_features}",
                bias.len()
            )));
        }
        Ok(Self {
            in_features,
            out_features,
            weight: weight.to_vec(),
            bias: bias.to_vec(),
            relu,
        })
    }

    /// Inputs per sample.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Outputs per sample.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The weights, `[in_features, out_features]` row-major.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// The bias, `[out_features]`.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Whether ReLU follows the affine map.
    pub fn relu(&self) -> bool {
        self.relu
    }
}

/// Where each feature's table starts in the concatenated row matrix: what turns a (feature, id)
/// pair into a row, without the rows themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableLayout {
    row_counts: Vec<usize>,
    row_offsets: Vec<usize>,
}

impl TableLayout {
    /// Number of tables (sparse features).
    pub fn feature_count(&self) -> usize {
        self.row_counts.len()
    }

    /// The row of the concatenated matrix that holds feature `feature`'s row `id`.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidInput`] when `feature` or `id` is outside the tables.
    pub fn global_row(&self, feature: usize, id: u64) -> Result<u32, DlrmError> {
        let row_count = *self.row_counts.get(feature).ok_or_else(|| {
            DlrmError::input(format!(
                "feature {feature} outside the {} embedding tables",
                self.row_counts.len()
            ))
        })?;
        if id >= row_count as u64 {
            return Err(DlrmError::input(format!(
                "id {id} of feature {feature} is outside its table of {row_count} rows"
            )));
        }
        // Fits: total rows are at most TABLE_ROW_COUNT_MAX = u32::MAX (checked when built).
        Ok((self.row_offsets[feature] as u64 + id) as u32)
    }

    /// Checks `bags` for `sample_count` samples and turns their ids into rows of the
    /// concatenated matrix, in bag order.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidInput`] when the bags are malformed or an id is outside its table.
    pub fn global_rows(
        &self,
        sample_count: usize,
        bags: &SparseBags<'_>,
    ) -> Result<Vec<u32>, DlrmError> {
        let feature_count = self.feature_count();
        bags.validate(sample_count, feature_count)?;
        let mut rows = Vec::with_capacity(bags.ids.len());
        for (bag, window) in bags.offsets.windows(2).enumerate() {
            let feature = bag % feature_count;
            for &id in &bags.ids[window[0] as usize..window[1] as usize] {
                rows.push(self.global_row(feature, u64::from(id))?);
            }
        }
        Ok(rows)
    }
}

/// The embedding tables of the sparse features, concatenated: feature `f`'s row `id` is row
/// `row_offset(f) + id` of one `[total_rows, dim]` matrix (as the `dlrm` ONNX graph holds them).
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingTables {
    dim: usize,
    layout: TableLayout,
    rows: Vec<f32>,
}

impl EmbeddingTables {
    /// Tables from one slice per feature, each `[row_count, dim]` row-major; copied.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidModel`] when `dim` or a table is empty, a table's length is not a
    /// multiple of `dim`, or the counts exceed [`SPARSE_FEATURE_COUNT_MAX`] or
    /// [`TABLE_ROW_COUNT_MAX`].
    pub fn new(dim: usize, tables: &[&[f32]]) -> Result<Self, DlrmError> {
        if dim == 0 || dim > LAYER_WIDTH_MAX {
            return Err(DlrmError::model(format!(
                "embedding dimension is {dim}, expected 1..={LAYER_WIDTH_MAX}"
            )));
        }
        if tables.is_empty() || tables.len() > SPARSE_FEATURE_COUNT_MAX {
            return Err(DlrmError::model(format!(
                "{} embedding tables, expected 1..={SPARSE_FEATURE_COUNT_MAX}",
                tables.len()
            )));
        }
        let mut row_counts = Vec::with_capacity(tables.len());
        let mut row_offsets = Vec::with_capacity(tables.len());
        let mut total_rows = 0usize;
        for (feature, table) in tables.iter().enumerate() {
            if table.is_empty() || table.len() % dim != 0 {
                return Err(DlrmError::model(format!(
                    "embedding table {feature} has {} floats, expected a positive multiple of {dim}",
                    table.len()
                )));
            }
            row_offsets.push(total_rows);
            row_counts.push(table.len() / dim);
            total_rows += table.len() / dim;
        }
        if total_rows > TABLE_ROW_COUNT_MAX {
            return Err(DlrmError::model(format!(
                "embedding tables hold {total_rows} rows, more than {TABLE_ROW_COUNT_MAX}"
            )));
        }
        let rows = tables.concat();
        Ok(Self {
            dim,
            layout: TableLayout {
                row_counts,
                row_offsets,
            },
            rows,
        })
    }

    /// Tables that are already concatenated, `feature_count` tables of `rows_per_table` rows
    /// each (the layout of `models/dlrm_embeddings.npy`: `[F, rows_per_table, dim]`).
    ///
    /// # Errors
    /// As [`EmbeddingTables::new`], and when `rows.len()` is not
    /// `feature_count * rows_per_table * dim`.
    pub fn uniform(
        feature_count: usize,
        rows_per_table: usize,
        dim: usize,
        rows: &[f32],
    ) -> Result<Self, DlrmError> {
        let table_len = rows_per_table
            .checked_mul(dim)
            .filter(|&len| len > 0)
            .ok_or_else(|| DlrmError::model("embedding tables have no rows or no columns"))?;
        if feature_count == 0 || rows.len() != feature_count.saturating_mul(table_len) {
            return Err(DlrmError::model(format!(
                "embedding tables have {} floats, expected {feature_count} x {rows_per_table} x {dim}",
                rows.len()
            )));
        }
        let tables: Vec<&[f32]> = rows.chunks(table_len).collect();
        Self::new(dim, &tables)
    }

    /// Floats per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of tables (sparse features).
    pub fn feature_count(&self) -> usize {
        self.layout.feature_count()
    }

    /// Rows of feature `feature`'s table.
    ///
    /// # Panics
    /// When `feature >= feature_count()` (a caller bug).
    pub fn row_count(&self, feature: usize) -> usize {
        self.layout.row_counts[feature]
    }

    /// Rows over all tables.
    pub fn total_row_count(&self) -> usize {
        self.rows.len() / self.dim
    }

    /// The concatenated rows, `[total_row_count, dim]` row-major.
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// Where each table starts among the rows.
    pub fn layout(&self) -> &TableLayout {
        &self.layout
    }

    /// The row of the concatenated matrix that holds feature `feature`'s row `id`.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidInput`] when `feature` or `id` is outside the tables.
    pub fn global_row(&self, feature: usize, id: u64) -> Result<u32, DlrmError> {
        self.layout.global_row(feature, id)
    }
}

/// How an embedding bag combines its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pooling {
    /// The sum of the rows (DLRM's and `models/generate.py`'s choice).
    #[default]
    Sum,
    /// The mean of the rows; an empty bag pools to zeros.
    Mean,
}

/// The sparse inputs of a batch as bags: for sample `s` and feature `f`, bag `b = s * F + f`
/// holds `ids[offsets[b]..offsets[b + 1]]`, each an id local to feature `f`'s table.
#[derive(Clone, Copy, Debug)]
pub struct SparseBags<'a> {
    /// `sample_count * F + 1` non-decreasing positions into `ids`, from 0 to `ids.len()`.
    pub offsets: &'a [u32],
    /// Row ids, local to each bag's feature table.
    pub ids: &'a [u32],
}

impl SparseBags<'_> {
    /// Checks the bags' structure against `sample_count` samples of `feature_count` features.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidInput`] naming the first offset that is wrong.
    pub fn validate(&self, sample_count: usize, feature_count: usize) -> Result<(), DlrmError> {
        let bag_count = sample_count * feature_count;
        if self.offsets.len() != bag_count + 1 {
            return Err(DlrmError::input(format!(
                "{} bag offsets for {sample_count} samples of {feature_count} features, expected {}",
                self.offsets.len(),
                bag_count + 1
            )));
        }
        if self.offsets[0] != 0 {
            return Err(DlrmError::input(format!(
                "bag offsets start at {}, expected 0",
                self.offsets[0]
            )));
        }
        if let Some(bag) = self.offsets.windows(2).position(|pair| pair[1] < pair[0]) {
            return Err(DlrmError::input(format!(
                "bag offset {} ({}) is below offset {bag} ({})",
                bag + 1,
                self.offsets[bag + 1],
                self.offsets[bag]
            )));
        }
        let last = self.offsets[bag_count] as usize;
        if last != self.ids.len() {
            return Err(DlrmError::input(format!(
                "bag offsets end at {last} but there are {} ids",
                self.ids.len()
            )));
        }
        Ok(())
    }
}

/// Offsets for bags of exactly one id each (`[0, 1, ..., bag_count]`): the `dlrm` graph's
/// `sparse [n, F]` input, flattened, is then the ids.
pub fn one_id_per_bag_offsets(bag_count: usize) -> Vec<u32> {
    (0..=bag_count as u32).collect()
}

/// A validated DLRM: bottom MLP, optional embedding tables, top MLP ending in one logit.
#[derive(Clone, Debug, PartialEq)]
pub struct DlrmModel {
    bottom: Vec<DenseLayer>,
    top: Vec<DenseLayer>,
    sparse_feature_count: usize,
    tables: Option<EmbeddingTables>,
}

impl DlrmModel {
    /// Checks that the layers chain: the bottom MLP ends in the embedding dimension `d`, the top
    /// MLP starts at `d + F (F + 1) / 2` and ends in one logit, and the tables (when given; the
    /// dense-only serving model has none) are `F` tables of dimension `d`.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidModel`] naming the first mismatch.
    pub fn new(
        bottom: Vec<DenseLayer>,
        top: Vec<DenseLayer>,
        sparse_feature_count: usize,
        tables: Option<EmbeddingTables>,
    ) -> Result<Self, DlrmError> {
        if bottom.is_empty() || top.is_empty() {
            return Err(DlrmError::model(
                "the bottom and top MLPs need at least one layer each",
            ));
        }
        if sparse_feature_count == 0 || sparse_feature_count > SPARSE_FEATURE_COUNT_MAX {
            return Err(DlrmError::model(format!(
                "{sparse_feature_count} sparse features, expected 1..={SPARSE_FEATURE_COUNT_MAX}"
            )));
        }
        check_chain("bottom", &bottom)?;
        check_chain("top", &top)?;
        let dim = bottom[bottom.len() - 1].out_features;
        let interaction_width = dim + pair_count(sparse_feature_count);
        if top[0].in_features != interaction_width {
            return Err(DlrmError::model(format!(
                "top MLP takes {} inputs, but dimension {dim} with {sparse_feature_count} features \
                 gives {dim} + {} = {interaction_width}",
                top[0].in_features,
                pair_count(sparse_feature_count)
            )));
        }
        let logits = top[top.len() - 1].out_features;
        if logits != 1 {
            return Err(DlrmError::model(format!(
                "top MLP ends in {logits} outputs, expected one logit"
            )));
        }
        if let Some(tables) = &tables {
            if tables.dim() != dim || tables.feature_count() != sparse_feature_count {
                return Err(DlrmError::model(format!(
                    "{} embedding tables of dimension {}, expected {sparse_feature_count} of {dim}",
                    tables.feature_count(),
                    tables.dim()
                )));
            }
        }
        Ok(Self {
            bottom,
            top,
            sparse_feature_count,
            tables,
        })
    }

    /// The bottom MLP's layers.
    pub fn bottom(&self) -> &[DenseLayer] {
        &self.bottom
    }

    /// The top MLP's layers.
    pub fn top(&self) -> &[DenseLayer] {
        &self.top
    }

    /// The embedding tables, if the model holds them.
    pub fn tables(&self) -> Option<&EmbeddingTables> {
        self.tables.as_ref()
    }

    /// Dense features per sample (the bottom MLP's input width).
    pub fn dense_feature_count(&self) -> usize {
        self.bottom[0].in_features
    }

    /// Sparse features (pooled embeddings) per sample.
    pub fn sparse_feature_count(&self) -> usize {
        self.sparse_feature_count
    }

    /// Floats per embedding (the bottom MLP's output width).
    pub fn embedding_dim(&self) -> usize {
        self.bottom[self.bottom.len() - 1].out_features
    }

    /// The top MLP's input width: `d + F (F + 1) / 2`.
    pub fn interaction_width(&self) -> usize {
        self.embedding_dim() + pair_count(self.sparse_feature_count)
    }

    /// Checks a batch's dense and pooled inputs and returns its sample count.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidInput`] when a length is not a whole number of samples or the
    /// two disagree.
    pub fn pooled_sample_count(&self, dense: &[f32], pooled: &[f32]) -> Result<usize, DlrmError> {
        let sample_count = self.dense_sample_count(dense)?;
        let per_sample = self.sparse_feature_count * self.embedding_dim();
        if pooled.len() != sample_count * per_sample {
            return Err(DlrmError::input(format!(
                "pooled has {} floats, expected {sample_count} samples x {} features x {}",
                pooled.len(),
                self.sparse_feature_count,
                self.embedding_dim()
            )));
        }
        Ok(sample_count)
    }

    /// Checks a batch's dense input and returns its sample count.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidInput`] when `dense` is not a whole number of samples.
    pub fn dense_sample_count(&self, dense: &[f32]) -> Result<usize, DlrmError> {
        let width = self.dense_feature_count();
        if dense.len() % width != 0 {
            return Err(DlrmError::input(format!(
                "dense has {} floats, not a multiple of {width} features",
                dense.len()
            )));
        }
        Ok(dense.len() / width)
    }

    /// Checks bags against the model's tables and turns their ids into rows of the
    /// concatenated table matrix.
    ///
    /// # Errors
    /// [`DlrmErrorKind::InvalidInput`] when the model has no tables, the bags are malformed for
    /// `sample_count` samples, or an id is outside its table.
    pub fn global_rows(
        &self,
        sample_count: usize,
        bags: &SparseBags<'_>,
    ) -> Result<Vec<u32>, DlrmError> {
        let tables = self.tables.as_ref().ok_or_else(|| {
            DlrmError::input("this model has no embedding tables: give pooled embeddings instead")
        })?;
        tables.layout().global_rows(sample_count, bags)
    }
}

/// Pairs in the strict lower triangle over `F + 1` vectors: `F (F + 1) / 2`.
pub fn pair_count(sparse_feature_count: usize) -> usize {
    sparse_feature_count * (sparse_feature_count + 1) / 2
}

fn check_chain(name: &str, layers: &[DenseLayer]) -> Result<(), DlrmError> {
    for (index, pair) in layers.windows(2).enumerate() {
        if pair[0].out_features != pair[1].in_features {
            return Err(DlrmError::model(format!(
                "{name} MLP layer {index} gives {} outputs but layer {} takes {} inputs",
                pair[0].out_features,
                index + 1,
                pair[1].in_features
            )));
        }
    }
    Ok(())
}
