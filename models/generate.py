#!/usr/bin/env python3
"""Generates Ember's demo recommendation models, their embedding tables and test vectors.

A DLRM-style network (Naumov et al., 2019) with fixed seeds, no training:
  13 dense features -> bottom MLP 13-512-256-64 (ReLU after every layer)
  26 sparse features -> one embedding row each, dimension 64
  dot interaction over the 27 vectors (bottom output + 26 embeddings), strict lower triangle (351 pairs)
  top MLP (64 + 351 = 415)-512-256-1, ReLU between layers, sigmoid on the logit.

Two ONNX graphs share every weight:
  dlrm        inputs dense f32 [batch, 13], sparse i64 [batch, 26] (row ids, 0 <= id < ROWS_PER_TABLE);
              the 26 embedding tables live inside the graph. For AI.MODELEXECUTE.
  dlrm_dense  inputs dense f32 [batch, 13], pooled f32 [batch, 26, 64] (each field's pooled bag).
              The serving split: Ember gathers and pools the embedding rows from its keyspace.
Both have one output, score f32 [batch, 1].

Also written (numpy .npy files, so that Rust and Python read the same bytes):
  dlrm_embeddings.npy   f32 [26, ROWS_PER_TABLE, 64]  the tables, which `ember` and `ember-bench load-embeddings`
                        store as keys `emb:{field}:{id}` (256 bytes of little-endian f32 each)
  dlrm_user_dense.npy   f32 [ROWS_PER_TABLE, 13]       each user's dense features, keys `dense:{user}`
  testdata/<case>/*.npy inputs and the scores numpy computes for them (float32 throughout).

The expected scores come from numpy alone; the generator then runs both graphs with onnxruntime and fails if
any score differs by more than TOLERANCE, so a wrong graph never ships. Run: python3 models/generate.py [OUT_DIR]
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 4_2024
DENSE_FEATURES = 13
SPARSE_FEATURES = 26
EMBEDDING_DIM = 64
# Rows per embedding table: small enough that the committed models stay a few MB (26 * 128 * 64 f32 = 852 KB).
ROWS_PER_TABLE = 128
BOTTOM_MLP = [DENSE_FEATURES, 512, 256, EMBEDDING_DIM]
VECTORS = SPARSE_FEATURES + 1
PAIRS = VECTORS * (VECTORS - 1) // 2
TOP_MLP = [EMBEDDING_DIM + PAIRS, 512, 256, 1]
# RECOMMEND's layout: fields [0, USER_FIELDS) come from the user's rows, the rest from the candidate's.
USER_FIELDS = 13
# The model is untrained: these spreads are chosen so that scores spread over (0, 1) instead of all sitting near
# sigmoid(bias), which makes the test vectors and the demo's top-k discriminating.
EMBEDDING_BOUND = 0.5
BIAS_STD = 0.01
OPSET = 17
IR_VERSION = 8
TOLERANCE = 1e-5


def make_weights(rng):
    """Every parameter, drawn in a fixed order from one seeded generator (DLRM's Xavier-normal weights)."""

    def mlp(sizes):
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            w = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out)).astype(np.float32)
            b = rng.normal(0.0, BIAS_STD, size=(fan_out,)).astype(np.float32)
            layers.append((w, b))
        return layers

    bottom = mlp(BOTTOM_MLP)
    top = mlp(TOP_MLP)
    tables = rng.uniform(-EMBEDDING_BOUND, EMBEDDING_BOUND, size=(SPARSE_FEATURES, ROWS_PER_TABLE, EMBEDDING_DIM)).astype(np.float32)
    # DLRM's log(1 + x) transform of count features, in float64 and rounded once (see `forward_dense`).
    user_dense = np.log1p(rng.lognormal(0.0, 1.0, size=(ROWS_PER_TABLE, DENSE_FEATURES))).astype(np.float32)
    return bottom, top, tables, user_dense


def lower_triangle():
    rows, cols = np.tril_indices(VECTORS, -1)
    return rows, cols


def forward_dense(bottom, top, dense, pooled):
    """The reference: numpy, the same operations in the same order as the graph, on the float32 weights and inputs
    widened to float64, with the score rounded to float32 once at the end. Float32 matrix products would be
    rounded differently by each BLAS kernel (OpenBLAS picks one per CPU: Haswell, SkylakeX, Zen...), so the
    committed scores would change with the machine that ran the generator; float64's differences between kernels
    (about 1e-16) vanish in the one rounding to float32, so every machine writes the same bytes."""
    x = dense.astype(np.float64)
    for w, b in bottom:
        x = np.maximum(x @ w.astype(np.float64) + b.astype(np.float64), 0.0)
    vectors = np.concatenate([x[:, None, :], pooled.astype(np.float64)], axis=1)
    products = vectors @ vectors.transpose(0, 2, 1)
    rows, cols = lower_triangle()
    r = np.concatenate([x, products[:, rows, cols]], axis=1)
    for i, (w, b) in enumerate(top):
        r = r @ w.astype(np.float64) + b.astype(np.float64)
        if i + 1 < len(top):
            r = np.maximum(r, 0.0)
    return (1.0 / (1.0 + np.exp(-r))).astype(np.float32)


def forward_ids(bottom, top, tables, dense, sparse):
    pooled = tables[np.arange(SPARSE_FEATURES)[None, :], sparse]
    return forward_dense(bottom, top, dense, pooled)


def dense_network_nodes(bottom, top, pooled_name):
    """Nodes and initializers from (dense, pooled) to score; shared by both graphs."""
    nodes, inits = [], []
    x = "dense"
    for i, (w, b) in enumerate(bottom):
        inits += [numpy_helper.from_array(w, f"bot{i}_w"), numpy_helper.from_array(b, f"bot{i}_b")]
        nodes.append(helper.make_node("Gemm", [x, f"bot{i}_w", f"bot{i}_b"], [f"bot{i}_lin"]))
        nodes.append(helper.make_node("Relu", [f"bot{i}_lin"], [f"bot{i}"]))
        x = f"bot{i}"
    rows, cols = lower_triangle()
    inits += [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_one"),
        numpy_helper.from_array(np.array([-1, VECTORS * VECTORS], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array((rows * VECTORS + cols).astype(np.int64), "tril_index"),
    ]
    nodes += [
        helper.make_node("Unsqueeze", [x, "axis_one"], ["bottom_row"]),
        helper.make_node("Concat", ["bottom_row", pooled_name], ["vectors"], axis=1),
        helper.make_node("Transpose", ["vectors"], ["vectors_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["vectors", "vectors_t"], ["products"]),
        helper.make_node("Reshape", ["products", "flat_shape"], ["products_flat"]),
        helper.make_node("Gather", ["products_flat", "tril_index"], ["interactions"], axis=1),
        helper.make_node("Concat", [x, "interactions"], ["top_in"], axis=1),
    ]
    r = "top_in"
    for i, (w, b) in enumerate(top):
        inits += [numpy_helper.from_array(w, f"top{i}_w"), numpy_helper.from_array(b, f"top{i}_b")]
        nodes.append(helper.make_node("Gemm", [r, f"top{i}_w", f"top{i}_b"], [f"top{i}_lin"]))
        if i + 1 < len(top):
            nodes.append(helper.make_node("Relu", [f"top{i}_lin"], [f"top{i}"]))
            r = f"top{i}"
        else:
            nodes.append(helper.make_node("Sigmoid", [f"top{i}_lin"], ["score"]))
    return nodes, inits


def finish(graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ember-models")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def build_dense_model(bottom, top):
    nodes, inits = dense_network_nodes(bottom, top, "pooled")
    graph = helper.make_graph(
        nodes,
        "dlrm_dense",
        [
            helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["batch", DENSE_FEATURES]),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", SPARSE_FEATURES, EMBEDDING_DIM]),
        ],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    return finish(graph)


def build_ids_model(bottom, top, tables):
    nodes, inits = dense_network_nodes(bottom, top, "pooled")
    # One concatenated table; field f's rows start at f * ROWS_PER_TABLE.
    offsets = (np.arange(SPARSE_FEATURES, dtype=np.int64) * ROWS_PER_TABLE).astype(np.int64)
    inits += [
        numpy_helper.from_array(tables.reshape(SPARSE_FEATURES * ROWS_PER_TABLE, EMBEDDING_DIM), "tables"),
        numpy_helper.from_array(offsets, "table_offsets"),
    ]
    lookup = [
        helper.make_node("Add", ["sparse", "table_offsets"], ["rows"]),
        helper.make_node("Gather", ["tables", "rows"], ["pooled"], axis=0),
    ]
    graph = helper.make_graph(
        lookup + nodes,
        "dlrm",
        [
            helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["batch", DENSE_FEATURES]),
            helper.make_tensor_value_info("sparse", TensorProto.INT64, ["batch", SPARSE_FEATURES]),
        ],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    return finish(graph)


def save_case(out_dir, case, arrays):
    case_dir = os.path.join(out_dir, "testdata", case)
    os.makedirs(case_dir, exist_ok=True)
    for name, array in arrays.items():
        np.save(os.path.join(case_dir, f"{name}.npy"), np.ascontiguousarray(array))


def make_cases(rng, bottom, top, tables, user_dense):
    """Test vectors: inputs drawn from a second seeded generator, scores from numpy."""
    cases = {}
    batch = 16
    dense = np.log1p(rng.lognormal(0.0, 1.0, size=(batch, DENSE_FEATURES))).astype(np.float32)  # float64, rounded once
    sparse = rng.integers(0, ROWS_PER_TABLE, size=(batch, SPARSE_FEATURES), dtype=np.int64)
    cases["dlrm"] = {"dense": dense, "sparse": sparse, "score": forward_ids(bottom, top, tables, dense, sparse)}

    # Bags of one to four rows per field, summed: the pooling an embedding bag does.
    pooled = np.zeros((batch, SPARSE_FEATURES, EMBEDDING_DIM), dtype=np.float32)
    for b in range(batch):
        for f in range(SPARSE_FEATURES):
            bag = rng.integers(0, ROWS_PER_TABLE, size=int(rng.integers(1, 5)))
            pooled[b, f] = tables[f, bag].sum(axis=0, dtype=np.float32)
    cases["dlrm_dense"] = {"dense": dense, "pooled": pooled, "score": forward_dense(bottom, top, dense, pooled)}

    # RECOMMEND: one user, candidates; fields below USER_FIELDS are the user's rows, the rest the candidate's.
    user = np.array([7], dtype=np.int64)
    candidates = rng.choice(ROWS_PER_TABLE, size=32, replace=False).astype(np.int64)
    rec_dense = np.repeat(user_dense[user], len(candidates), axis=0)
    rec_sparse = np.empty((len(candidates), SPARSE_FEATURES), dtype=np.int64)
    rec_sparse[:, :USER_FIELDS] = user[0]
    rec_sparse[:, USER_FIELDS:] = candidates[:, None]
    scores = forward_ids(bottom, top, tables, rec_dense, rec_sparse)
    cases["recommend"] = {"user": user, "candidates": candidates, "score": scores}
    return cases


def check_with_onnxruntime(out_dir, cases):
    try:
        import onnxruntime as ort
    except ImportError:
        print("generate: onnxruntime not installed; skipped the graph check", file=sys.stderr)
        return
    runs = [
        ("dlrm", ["dense", "sparse"]),
        ("dlrm_dense", ["dense", "pooled"]),
    ]
    for model, inputs in runs:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(os.path.join(out_dir, f"{model}.onnx"), options, providers=["CPUExecutionProvider"])
        (got,) = session.run(["score"], {name: cases[model][name] for name in inputs})
        err = float(np.max(np.abs(got - cases[model]["score"])))
        if err > TOLERANCE:
            sys.exit(f"generate: {model}: onnxruntime and numpy differ by {err} > {TOLERANCE}")
        print(f"generate: {model}: onnxruntime matches numpy (max abs err {err:.2e})")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out_dir, exist_ok=True)
    bottom, top, tables, user_dense = make_weights(np.random.default_rng(SEED))
    onnx.save(build_ids_model(bottom, top, tables), os.path.join(out_dir, "dlrm.onnx"))
    onnx.save(build_dense_model(bottom, top), os.path.join(out_dir, "dlrm_dense.onnx"))
    np.save(os.path.join(out_dir, "dlrm_embeddings.npy"), tables)
    np.save(os.path.join(out_dir, "dlrm_user_dense.npy"), user_dense)
    cases = make_cases(np.random.default_rng(SEED + 1), bottom, top, tables, user_dense)
    for case, arrays in cases.items():
        save_case(out_dir, case, arrays)
    scores = cases["dlrm"]["score"]
    print(f"generate: wrote {out_dir}; dlrm test scores span [{scores.min():.4f}, {scores.max():.4f}]")
    check_with_onnxruntime(out_dir, cases)


if __name__ == "__main__":
    main()
