//! Inference through the real binary: RedisAI's commands and RECOMMEND against the generator's numpy test vectors
//! (max abs error 1e-5), batching observed through AI.INFO, and errors that leave the server serving.
//!
//! The tests named `gpu_*` run the GPU backends (native, ort-cuda, ort-tensorrt) against the CPU's scores; where
//! there is no GPU they say why and pass, and with EMBER_REQUIRE_GPU=1 (ci/gpu-check.sh on a GPU machine) they
//! fail instead. The ONNX Runtime GPU backends also need the onnxruntime-gpu library (EMBER_ORT_GPU_LIB, or
//! `.deps/onnxruntime-gpu`); EMBER_REQUIRE_ORT_GPU=1 makes its absence a failure too. ci/gpu-check.sh runs this
//! binary away from the tree that built it and says where the tree and `ember` are with EMBER_REPO_ROOT and
//! EMBER_BIN.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ember_kernels::{npy, Tensor, TensorData};
use redis::Value;

const SCORE_TOLERANCE: f32 = 1e-5;
/// How far a GPU backend's score may be from the CPU's for the same request (the bound): float32 sums in
/// another order differ by ~1e-7 here, so 1e-4 still catches a wrong row or layer.
const GPU_SCORE_TOLERANCE: f32 = 1e-4;
/// TensorRT builds FP32 engines with TF32 matrix products allowed on Ampere and later (ONNX Runtime has no switch
/// to forbid it), so its scores get the looser bound the kernels crate's provider test uses.
const TENSORRT_SCORE_TOLERANCE: f32 = 2e-3;

fn repo_root() -> PathBuf {
    if let Some(root) = std::env::var_os("EMBER_REPO_ROOT").filter(|p| !p.is_empty()) {
        return PathBuf::from(root);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The `ember` binary: $EMBER_BIN where the tests run away from their build, else the one cargo built.
fn ember_binary() -> PathBuf {
    std::env::var_os("EMBER_BIN")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ember")), PathBuf::from)
}

/// True when `variable` is set to 1: a skip is then a failure.
fn required(variable: &str) -> bool {
    std::env::var(variable).is_ok_and(|value| value == "1")
}

/// Says why a GPU test does not run here, or fails with that reason when `variable` is 1.
fn skip_gpu(variable: &str, reason: &str) {
    assert!(
        !required(variable),
        "{variable}=1 but this GPU test cannot run: {reason}"
    );
    eprintln!("skipped: {reason}");
}

fn ort_lib() -> PathBuf {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let path = repo_root().join(".deps/onnxruntime/libonnxruntime.so");
    assert!(
        path.exists(),
        "{} is missing: run `make setup`",
        path.display()
    );
    path
}

fn vector(case: &str, name: &str) -> Tensor {
    npy::read(
        &repo_root()
            .join("models/testdata")
            .join(case)
            .join(format!("{name}.npy")),
    )
    .expect("test vector")
}

fn model_bytes(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("models").join(format!("{name}.onnx"))).expect("model file")
}

/// The `ember` binary on 127.0.0.1, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts `ember --port 0` and takes the port from its ready line: a port chosen here and
    /// bound later could be taken in between (or answered by a listener another test's child
    /// inherited), and a connect that succeeds says nothing about which process accepted it.
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(ember_binary())
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(extra)
            .current_dir(repo_root())
            .env_remove("ORT_DYLIB_PATH")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ember");
        let stdout = child.stdout.take().expect("stdout piped");
        let rx = common::watch_ready_line(stdout, |_| {});
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(port)) => Server { child, port },
            outcome => {
                let _ = child.kill();
                let status = child.wait();
                panic!("ember did not print its ready line ({outcome:?}; exit {status:?})");
            }
        }
    }

    fn connection(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        client.get_connection().expect("connect")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shape_args(tensor: &Tensor) -> Vec<String> {
    tensor.shape().iter().map(usize::to_string).collect()
}

fn tensorset(con: &mut redis::Connection, key: &str, tensor: &Tensor) {
    let dtype = tensor.dtype().name();
    let reply: Value = redis::cmd("AI.TENSORSET")
        .arg(key)
        .arg(dtype)
        .arg(shape_args(tensor))
        .arg("BLOB")
        .arg(tensor.to_le_bytes())
        .query(con)
        .expect("AI.TENSORSET");
    assert_eq!(reply, Value::Okay);
}

fn error_of(result: redis::RedisResult<Value>) -> String {
    match result {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn floats(values: &Value) -> Vec<f32> {
    let Value::Array(items) = values else {
        panic!("not an array: {values:?}")
    };
    items
        .iter()
        .map(|v| match v {
            Value::BulkString(b) => std::str::from_utf8(b).unwrap().parse::<f32>().unwrap(),
            Value::Double(d) => *d as f32,
            other => panic!("not a number: {other:?}"),
        })
        .collect()
}

/// Infinite when either side holds a NaN, so that `<= tolerance` fails.
fn max_abs_err(got: &[f32], want: &Tensor) -> f32 {
    let want = want.as_f32().unwrap();
    assert_eq!(got.len(), want.len());
    ember_kernels::compare::max_abs_difference(got, want)
}

#[test]
fn modelexecute_scores_match_the_generator() {
    let lib = ort_lib();
    let server = Server::start(&["--threads", "2", "--ort-lib", lib.to_str().unwrap()]);
    let mut con = server.connection();
    for (model, inputs) in [
        ("dlrm", ["dense", "sparse"]),
        ("dlrm_dense", ["dense", "pooled"]),
    ] {
        let stored: Value = redis::cmd("AI.MODELSTORE")
            .arg(model)
            .arg("ONNX")
            .arg("CPU")
            .arg("BLOB")
            .arg(model_bytes(model))
            .query(&mut con)
            .expect("AI.MODELSTORE");
        assert_eq!(stored, Value::Okay);
        let keys: Vec<String> = inputs.iter().map(|i| format!("{{{model}}}:{i}")).collect();
        for (key, name) in keys.iter().zip(inputs) {
            tensorset(&mut con, key, &vector(model, name));
        }
        let out = format!("{{{model}}}:score");
        let reply: Value = redis::cmd("AI.MODELEXECUTE")
            .arg(model)
            .arg("INPUTS")
            .arg(2)
            .arg(&keys)
            .arg("OUTPUTS")
            .arg(1)
            .arg(&out)
            .query(&mut con)
            .expect("AI.MODELEXECUTE");
        assert_eq!(reply, Value::Okay);
        let values: Value = redis::cmd("AI.TENSORGET")
            .arg(&out)
            .arg("VALUES")
            .query(&mut con)
            .unwrap();
        let err = max_abs_err(&floats(&values), &vector(model, "score"));
        assert!(err <= SCORE_TOLERANCE, "{model}: max abs err {err}");
        let meta: Value = redis::cmd("AI.TENSORGET")
            .arg(&out)
            .arg("META")
            .query(&mut con)
            .unwrap();
        assert_eq!(
            meta,
            Value::Array(vec![
                Value::BulkString(b"dtype".to_vec()),
                Value::BulkString(b"FLOAT".to_vec()),
                Value::BulkString(b"shape".to_vec()),
                Value::Array(vec![Value::Int(16), Value::Int(1)]),
            ])
        );
    }
}

/// Two shards serving `dlrm_dense` with the demo embeddings, and the generator's RECOMMEND case: the user id and
/// the candidate ids.
fn recommend_server() -> (Server, Vec<i64>, Vec<i64>) {
    let lib = ort_lib();
    let server = Server::start(&[
        "--threads",
        "2",
        "--ort-lib",
        lib.to_str().unwrap(),
        "--model",
        "dlrm_dense=models/dlrm_dense.onnx",
        "--demo-embeddings",
        "models",
    ]);
    let (user, candidates) = recommend_case();
    (server, user, candidates)
}

/// The generator's RECOMMEND case: the user id (one element) and the candidate ids.
fn recommend_case() -> (Vec<i64>, Vec<i64>) {
    let TensorData::Int64(user) = vector("recommend", "user").into_data() else {
        panic!("the RECOMMEND case's user is not INT64")
    };
    let TensorData::Int64(candidates) = vector("recommend", "candidates").into_data() else {
        panic!("the RECOMMEND case's candidates are not INT64")
    };
    (user, candidates)
}

#[test]
fn recommend_scores_match_the_generator() {
    let (server, user, candidates) = recommend_server();
    let mut con = server.connection();
    let scores = vector("recommend", "score");
    let scores = scores.as_f32().unwrap();
    let k = 5;
    let reply: Value = redis::cmd("RECOMMEND")
        .arg("dlrm_dense")
        .arg(user[0])
        .arg(k)
        .arg("CANDIDATES")
        .arg(candidates.len())
        .arg(&candidates)
        .query(&mut con)
        .expect("RECOMMEND");
    let Value::Array(items) = reply else {
        panic!("not an array")
    };
    assert_eq!(items.len(), 2 * k);
    let mut want: Vec<(i64, f32)> = candidates
        .iter()
        .copied()
        .zip(scores.iter().copied())
        .collect();
    want.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    for (pair, (id, score)) in items.chunks(2).zip(want) {
        let Value::BulkString(got_id) = &pair[0] else {
            panic!("id {:?}", pair[0])
        };
        assert_eq!(std::str::from_utf8(got_id).unwrap(), id.to_string());
        let got = floats(&Value::Array(vec![pair[1].clone()]))[0];
        assert!(
            (got - score).abs() <= SCORE_TOLERANCE,
            "candidate {id}: {got} vs {score}"
        );
    }
    // A missing row is an error that names the key, and the server keeps serving.
    let err = error_of(
        redis::cmd("RECOMMEND")
            .arg("dlrm_dense")
            .arg(7)
            .arg(1)
            .arg("CANDIDATES")
            .arg(1)
            .arg("no-such-item")
            .query(&mut con),
    );
    assert!(err.contains("emb:13:no-such-item"), "{err}");
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

/// The ids and scores of a RECOMMEND reply (RESP2: id, score, id, score...).
fn ranked(reply: Value) -> Vec<(String, f32)> {
    let Value::Array(items) = reply else {
        panic!("not an array: {reply:?}")
    };
    items
        .chunks(2)
        .map(|pair| {
            let Value::BulkString(id) = &pair[0] else {
                panic!("id {:?}", pair[0])
            };
            let score = floats(&Value::Array(vec![pair[1].clone()]))[0];
            (String::from_utf8(id.clone()).unwrap(), score)
        })
        .collect()
}

/// RECOMMEND ... FROM a set or a sorted set answers as CANDIDATES with the same ids, whichever
/// shard holds the key; a string key is WRONGTYPE, a missing one an error that says so.
#[test]
fn recommend_from_a_set_or_sorted_set_matches_candidates() {
    let (server, user, candidates) = recommend_server();
    let mut con = server.connection();
    let k = candidates.len();
    let recommend = |con: &mut redis::Connection, source: &[String]| -> redis::RedisResult<Value> {
        redis::cmd("RECOMMEND")
            .arg("dlrm_dense")
            .arg(user[0])
            .arg(k)
            .arg(source)
            .query(con)
    };
    let mut listed = vec!["CANDIDATES".to_string(), candidates.len().to_string()];
    listed.extend(candidates.iter().map(i64::to_string));
    let want = ranked(recommend(&mut con, &listed).expect("RECOMMEND CANDIDATES"));
    assert_eq!(want.len(), k);
    // Several keys, so that some live on the connection's shard and some on the other.
    for index in 0..4 {
        let (set_key, zset_key) = (format!("cands:set:{index}"), format!("cands:zset:{index}"));
        let _: i64 = redis::cmd("SADD")
            .arg(&set_key)
            .arg(&candidates)
            .query(&mut con)
            .unwrap();
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&zset_key);
        for (rank, id) in candidates.iter().rev().enumerate() {
            zadd.arg(rank).arg(id);
        }
        let _: i64 = zadd.query(&mut con).unwrap();
        for key in [&set_key, &zset_key] {
            let got = ranked(
                recommend(&mut con, &["FROM".to_string(), key.clone()]).expect("RECOMMEND FROM"),
            );
            assert_eq!(got.len(), want.len(), "FROM {key}");
            for ((got_id, got_score), (want_id, want_score)) in got.iter().zip(&want) {
                assert_eq!(got_id, want_id, "FROM {key}");
                assert!(
                    (got_score - want_score).abs() <= SCORE_TOLERANCE,
                    "FROM {key}: {got_id} scored {got_score} vs {want_score}"
                );
            }
        }
    }
    let _: () = redis::cmd("SET")
        .arg("cands:string")
        .arg("1")
        .query(&mut con)
        .unwrap();
    // The client library shows an error as "CODE: detail".
    let cases = [
        (
            "cands:string",
            "WRONGTYPE: Operation against a key holding the wrong kind of value",
        ),
        ("cands:missing", "no candidates: FROM key does not exist"),
        ("cands:too-many", "at most 65536 candidates per RECOMMEND"),
    ];
    let too_many: Vec<usize> = (0..=65_536).collect();
    let _: i64 = redis::cmd("SADD")
        .arg("cands:too-many")
        .arg(&too_many)
        .query(&mut con)
        .unwrap();
    for (key, want) in cases {
        let err = error_of(recommend(&mut con, &["FROM".to_string(), key.to_string()]));
        assert!(err.contains(want), "FROM {key}: {err}");
    }
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn concurrent_requests_merge_into_batches() {
    let lib = ort_lib();
    // One shard and a long delay: requests from every connection wait for company, so they must merge.
    let server = Server::start(&[
        "--threads",
        "1",
        "--ort-lib",
        lib.to_str().unwrap(),
        "--model",
        "dlrm=models/dlrm.onnx,max-batch=64,max-delay-us=200000",
    ]);
    let dense = vector("dlrm", "dense")
        .split_batch(&[4, 12])
        .unwrap()
        .remove(0);
    let sparse = vector("dlrm", "sparse")
        .split_batch(&[4, 12])
        .unwrap()
        .remove(0);
    let want = vector("dlrm", "score")
        .split_batch(&[4, 12])
        .unwrap()
        .remove(0);
    let clients = 8;
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (mut con, dense, sparse, want) = (
                server.connection(),
                dense.clone(),
                sparse.clone(),
                want.clone(),
            );
            std::thread::spawn(move || {
                let (d, s, o) = (
                    format!("{{c{c}}}:d"),
                    format!("{{c{c}}}:s"),
                    format!("{{c{c}}}:o"),
                );
                tensorset(&mut con, &d, &dense);
                tensorset(&mut con, &s, &sparse);
                let _: Value = redis::cmd("AI.MODELEXECUTE")
                    .arg("dlrm")
                    .arg("INPUTS")
                    .arg(2)
                    .arg(&d)
                    .arg(&s)
                    .arg("OUTPUTS")
                    .arg(1)
                    .arg(&o)
                    .query(&mut con)
                    .expect("AI.MODELEXECUTE");
                let values: Value = redis::cmd("AI.TENSORGET")
                    .arg(&o)
                    .arg("VALUES")
                    .query(&mut con)
                    .unwrap();
                assert!(
                    max_abs_err(&floats(&values), &want) <= SCORE_TOLERANCE,
                    "client {c}: scores after batching"
                );
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("client");
    }
    let mut con = server.connection();
    let info: Value = redis::cmd("AI.INFO").arg("dlrm").query(&mut con).unwrap();
    let Value::Array(items) = info else {
        panic!("AI.INFO: {info:?}")
    };
    let field = |name: &str| {
        items
            .chunks(2)
            .find(|pair| pair[0] == Value::BulkString(name.as_bytes().to_vec()))
            .map(|pair| match pair[1] {
                Value::Int(n) => n,
                ref other => panic!("{name}: {other:?}"),
            })
            .unwrap_or_else(|| panic!("AI.INFO has no {name}"))
    };
    assert_eq!(field("calls"), clients);
    assert_eq!(field("samples"), clients * 4);
    assert!(
        field("batches") < clients,
        "requests were not merged: {} batches for {clients} calls",
        field("batches")
    );
    assert!(field("batch_requests_max") > 1);
}

#[test]
fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let lib = ort_lib();
    let server = Server::start(&[
        "--threads",
        "2",
        "--ort-lib",
        lib.to_str().unwrap(),
        "--model",
        "dlrm=models/dlrm.onnx",
    ]);
    let mut con = server.connection();
    let execute =
        |con: &mut redis::Connection, model: &str, inputs: &[&str]| -> redis::RedisResult<Value> {
            redis::cmd("AI.MODELEXECUTE")
                .arg(model)
                .arg("INPUTS")
                .arg(inputs.len())
                .arg(inputs)
                .arg("OUTPUTS")
                .arg(1)
                .arg("{t}:o")
                .query(con)
        };
    tensorset(&mut con, "{t}:dense", &vector("dlrm", "dense"));
    tensorset(&mut con, "{t}:sparse", &vector("dlrm", "sparse"));
    let narrow = Tensor::new(vec![16, 12], TensorData::Float(vec![0.5; 16 * 12])).unwrap();
    tensorset(&mut con, "{t}:narrow", &narrow);
    let cases: Vec<(&str, redis::RedisResult<Value>, &str)> = vec![
        (
            "malformed blob",
            redis::cmd("AI.MODELSTORE")
                .arg("bad")
                .arg("ONNX")
                .arg("CPU")
                .arg("BLOB")
                .arg(b"not a model".as_slice())
                .query(&mut con),
            "protobuf parsing failed",
        ),
        (
            "unknown model",
            execute(&mut con, "nope", &["{t}:dense", "{t}:sparse"]),
            "model key is empty",
        ),
        (
            "missing tensor",
            execute(&mut con, "dlrm", &["{t}:dense", "{t}:none"]),
            "tensor key is empty",
        ),
        (
            "wrong shape",
            execute(&mut con, "dlrm", &["{t}:narrow", "{t}:sparse"]),
            "input 'dense' expects shape [?, 13], got [16, 12]",
        ),
        (
            "wrong type",
            execute(&mut con, "dlrm", &["{t}:sparse", "{t}:sparse"]),
            "input 'dense' expects FLOAT, got INT64",
        ),
        (
            "wrong input count",
            execute(&mut con, "dlrm", &["{t}:dense"]),
            "does not match model definition",
        ),
    ];
    for (name, result, want) in cases {
        let err = error_of(result);
        assert!(err.contains(want), "{name}: {err}");
    }
    let ok = execute(&mut con, "dlrm", &["{t}:dense", "{t}:sparse"])
        .expect("a good request after the bad ones");
    assert_eq!(ok, Value::Okay);
    let _: () = redis::cmd("SET")
        .arg("plain")
        .arg("value")
        .query(&mut con)
        .unwrap();
    let got: String = redis::cmd("GET").arg("plain").query(&mut con).unwrap();
    assert_eq!(got, "value");
}

#[test]
fn a_missing_runtime_is_an_error_that_names_the_fix() {
    let server = Server::start(&[
        "--threads",
        "1",
        "--ort-lib",
        "/nonexistent/libonnxruntime.so",
    ]);
    let mut con = server.connection();
    let err = error_of(
        redis::cmd("AI.MODELSTORE")
            .arg("m")
            .arg("ONNX")
            .arg("CPU")
            .arg("BLOB")
            .arg(model_bytes("dlrm"))
            .query(&mut con),
    );
    assert!(
        err.contains("Could not load backend") && err.contains("make setup"),
        "{err}"
    );
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

fn query(con: &mut redis::Connection, line: &str) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(line.split(' ').next().unwrap());
    for arg in line.split(' ').skip(1) {
        cmd.arg(arg);
    }
    cmd.query(con)
}

fn ok(con: &mut redis::Connection, line: &str) -> Value {
    query(con, line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn sorted_keys(con: &mut redis::Connection, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(con).unwrap();
    keys.sort();
    keys
}

/// Every key a full SCAN with `options` returns, sorted.
fn scan_all(con: &mut redis::Connection, options: &[&str]) -> Vec<String> {
    let mut cursor = 0u64;
    let mut keys = Vec::new();
    loop {
        let (next, mut step): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg(options)
            .query(con)
            .unwrap();
        keys.append(&mut step);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys
}

#[test]
fn tensors_are_keys_of_the_clients_database() {
    const WRONGTYPE: &str = "WRONGTYPE";
    const MISSING: &str = "tensor key is empty or in a different shard";
    for threads in ["1", "2"] {
        let server = Server::start(&["--threads", threads]);
        let mut con = server.connection();
        let case = format!("--threads {threads}");
        // Eight keys without hash tags: with two shards, some live on each.
        let names: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        for name in &names {
            assert_eq!(
                ok(&mut con, &format!("AI.TENSORSET {name} FLOAT 2 VALUES 1 2")),
                Value::Okay
            );
        }
        for name in &names {
            assert_eq!(
                ok(&mut con, &format!("TYPE {name}")),
                Value::SimpleString("AI_TENSOR".into()),
                "{case}"
            );
            assert_eq!(
                ok(&mut con, &format!("OBJECT ENCODING {name}")),
                Value::BulkString(b"raw".to_vec())
            );
            for line in [
                format!("GET {name}"),
                format!("INCR {name}"),
                format!("SADD {name} m"),
                format!("ZSCORE {name} m"),
            ] {
                assert!(
                    error_of(query(&mut con, &line)).starts_with(WRONGTYPE),
                    "{case}: {line}"
                );
            }
        }
        assert_eq!(ok(&mut con, "DBSIZE"), Value::Int(8), "{case}");
        assert_eq!(sorted_keys(&mut con, "t*"), names, "{case}");
        assert_eq!(scan_all(&mut con, &["TYPE", "ai_tensor"]), names, "{case}");
        assert_eq!(
            ok(&mut con, &format!("EXISTS {}", names.join(" "))),
            Value::Int(8)
        );

        // A tensor over a key of another type is refused as RedisAI refuses it; the string stays.
        ok(&mut con, "SET s text");
        assert!(error_of(query(&mut con, "AI.TENSORSET s FLOAT 1 VALUES 1")).starts_with(WRONGTYPE));
        assert_eq!(ok(&mut con, "GET s"), Value::BulkString(b"text".to_vec()));
        assert!(error_of(query(&mut con, "AI.TENSORGET s VALUES")).starts_with(WRONGTYPE));
        // A string over a tensor replaces it (SET ignores the old type).
        ok(&mut con, "SET t7 text");
        assert_eq!(
            ok(&mut con, "TYPE t7"),
            Value::SimpleString("string".into())
        );

        // Another database does not see database 0's tensors, and keeps its own.
        let mut other = redis::Client::open(format!("redis://127.0.0.1:{}/1", server.port))
            .unwrap()
            .get_connection()
            .unwrap();
        assert_eq!(ok(&mut other, "DBSIZE"), Value::Int(0), "{case}");
        assert_eq!(
            ok(&mut other, "TYPE t0"),
            Value::SimpleString("none".into())
        );
        assert!(error_of(query(&mut other, "AI.TENSORGET t0 META")).contains(MISSING));
        ok(&mut other, "AI.TENSORSET t0 INT32 1 VALUES 9");
        assert_eq!(
            ok(&mut other, "AI.TENSORGET t0 VALUES"),
            Value::Array(vec![Value::Int(9)])
        );
        assert_eq!(
            floats(&ok(&mut con, "AI.TENSORGET t0 VALUES")),
            vec![1.0, 2.0]
        );

        // DEL, EXPIRE, RENAME, COPY and MOVE treat a tensor as any key.
        assert_eq!(ok(&mut con, "DEL t0 t1 nothing"), Value::Int(2), "{case}");
        assert!(error_of(query(&mut con, "AI.TENSORGET t0 VALUES")).contains(MISSING));
        assert_eq!(ok(&mut con, "EXPIRE t2 100"), Value::Int(1));
        let Value::Int(ttl) = ok(&mut con, "TTL t2") else {
            panic!("TTL")
        };
        assert!((1..=100).contains(&ttl), "{case}: ttl {ttl}");
        assert_eq!(ok(&mut con, "PEXPIRE t2 1"), Value::Int(1));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(ok(&mut con, "EXISTS t2"), Value::Int(0), "{case}");
        assert!(error_of(query(&mut con, "AI.TENSORGET t2 VALUES")).contains(MISSING));
        ok(&mut con, "RENAME t3 renamed");
        assert_eq!(
            floats(&ok(&mut con, "AI.TENSORGET renamed VALUES")),
            vec![1.0, 2.0],
            "{case}"
        );
        assert_eq!(ok(&mut con, "COPY renamed copied"), Value::Int(1));
        assert_eq!(
            ok(&mut con, "TYPE copied"),
            Value::SimpleString("AI_TENSOR".into())
        );
        assert_eq!(ok(&mut con, "MOVE copied 2"), Value::Int(1));
        assert_eq!(ok(&mut con, "EXISTS copied"), Value::Int(0));
        // Overwriting a tensor with a tensor clears its TTL, as a module value set on a key does.
        ok(&mut con, "EXPIRE t4 100");
        ok(&mut con, "AI.TENSORSET t4 DOUBLE 1 VALUES 3");
        assert_eq!(ok(&mut con, "TTL t4"), Value::Int(-1));

        // WATCH sees a tensor write; AI.TENSORSET runs inside MULTI/EXEC.
        ok(&mut con, "WATCH t5");
        ok(&mut other, "SELECT 0");
        ok(&mut other, "AI.TENSORSET t5 FLOAT 1 VALUES 5");
        ok(&mut con, "MULTI");
        ok(&mut con, "AI.TENSORSET t6 FLOAT 1 VALUES 6");
        assert_eq!(ok(&mut con, "EXEC"), Value::Nil, "{case}");
        ok(&mut con, "MULTI");
        ok(&mut con, "AI.TENSORSET t6 FLOAT 1 VALUES 6");
        ok(&mut con, "AI.TENSORGET t6 VALUES");
        assert_eq!(
            ok(&mut con, "EXEC"),
            Value::Array(vec![
                Value::Okay,
                Value::Array(vec![Value::BulkString(b"6".to_vec())])
            ]),
            "{case}"
        );

        ok(&mut con, "FLUSHALL");
        assert_eq!(ok(&mut con, "DBSIZE"), Value::Int(0), "{case}");
        ok(&mut other, "SELECT 1");
        assert_eq!(ok(&mut other, "DBSIZE"), Value::Int(0), "{case}");
    }
}

#[test]
fn modelexecute_outputs_are_keys() {
    let lib = ort_lib();
    for threads in ["1", "2"] {
        let server = Server::start(&["--threads", threads, "--ort-lib", lib.to_str().unwrap()]);
        let mut con = server.connection();
        let case = format!("--threads {threads}");
        let stored: Value = redis::cmd("AI.MODELSTORE")
            .arg("dlrm")
            .arg("ONNX")
            .arg("CPU")
            .arg("BLOB")
            .arg(model_bytes("dlrm"))
            .query(&mut con)
            .expect("AI.MODELSTORE");
        assert_eq!(stored, Value::Okay);
        // Inputs and outputs without hash tags, so with two shards they spread over both.
        for (index, output) in ["out:a", "out:b", "out:c", "out:d"].into_iter().enumerate() {
            let (dense, sparse) = (format!("in:dense:{index}"), format!("in:sparse:{index}"));
            tensorset(&mut con, &dense, &vector("dlrm", "dense"));
            tensorset(&mut con, &sparse, &vector("dlrm", "sparse"));
            let line = format!("AI.MODELEXECUTE dlrm INPUTS 2 {dense} {sparse} OUTPUTS 1 {output}");
            assert_eq!(ok(&mut con, &line), Value::Okay, "{case}");
            assert_eq!(
                ok(&mut con, &format!("TYPE {output}")),
                Value::SimpleString("AI_TENSOR".into())
            );
            let values = ok(&mut con, &format!("AI.TENSORGET {output} VALUES"));
            let err = max_abs_err(&floats(&values), &vector("dlrm", "score"));
            assert!(
                err <= SCORE_TOLERANCE,
                "{case}: {output}: max abs err {err}"
            );
        }
        assert_eq!(
            sorted_keys(&mut con, "out:*"),
            ["out:a", "out:b", "out:c", "out:d"],
            "{case}"
        );
        assert_eq!(ok(&mut con, "DBSIZE"), Value::Int(12), "{case}");
        // An output key of another type is WRONGTYPE; a deleted input is RedisAI's missing-tensor error.
        ok(&mut con, "SET out:string text");
        let line = "AI.MODELEXECUTE dlrm INPUTS 2 in:dense:0 in:sparse:0 OUTPUTS 1 out:string";
        assert!(
            error_of(query(&mut con, line)).starts_with("WRONGTYPE"),
            "{case}"
        );
        assert_eq!(
            ok(&mut con, "GET out:string"),
            Value::BulkString(b"text".to_vec())
        );
        ok(&mut con, "DEL in:sparse:0");
        let line = "AI.MODELEXECUTE dlrm INPUTS 2 in:dense:0 in:sparse:0 OUTPUTS 1 out:a";
        assert!(
            error_of(query(&mut con, line)).contains("tensor key is empty or in a different shard"),
            "{case}"
        );
    }
}

/// AI.INFO key's pairs as (name, value).
fn info_pairs(con: &mut redis::Connection, key: &str) -> Vec<(String, Value)> {
    let info: Value = redis::cmd("AI.INFO").arg(key).query(con).unwrap();
    let Value::Array(items) = info else {
        panic!("AI.INFO: {info:?}")
    };
    items
        .chunks(2)
        .map(|pair| {
            let Value::BulkString(name) = &pair[0] else {
                panic!("AI.INFO name {:?}", pair[0])
            };
            (String::from_utf8(name.clone()).unwrap(), pair[1].clone())
        })
        .collect()
}

fn info_text(con: &mut redis::Connection, key: &str, name: &str) -> String {
    match info_pairs(con, key).into_iter().find(|(n, _)| n == name) {
        Some((_, Value::BulkString(text))) => String::from_utf8(text).unwrap(),
        other => panic!("AI.INFO {key} {name}: {other:?}"),
    }
}

fn modelstore(
    con: &mut redis::Connection,
    key: &str,
    device: &str,
    model: &str,
) -> redis::RedisResult<Value> {
    redis::cmd("AI.MODELSTORE")
        .arg(key)
        .arg("ONNX")
        .arg(device)
        .arg("BLOB")
        .arg(model_bytes(model))
        .query(con)
}

/// AI.MODELEXECUTE of `key` on the stored test-vector inputs of `model`; the scores.
fn execute(con: &mut redis::Connection, key: &str, model: &str, inputs: [&str; 2]) -> Vec<f32> {
    let names: Vec<String> = inputs.iter().map(|i| format!("{{{model}}}:{i}")).collect();
    let out = format!("{{{model}}}:{key}:score");
    let reply: Value = redis::cmd("AI.MODELEXECUTE")
        .arg(key)
        .arg("INPUTS")
        .arg(2)
        .arg(&names)
        .arg("OUTPUTS")
        .arg(1)
        .arg(&out)
        .query(con)
        .unwrap_or_else(|e| panic!("AI.MODELEXECUTE {key}: {e}"));
    assert_eq!(reply, Value::Okay);
    let values: Value = redis::cmd("AI.TENSORGET")
        .arg(&out)
        .arg("VALUES")
        .query(con)
        .unwrap();
    floats(&values)
}

/// RECOMMEND `model` for the generator's RECOMMEND case, every candidate ranked: (id, score) sorted by id.
fn recommend_all(
    con: &mut redis::Connection,
    model: &str,
    user: i64,
    candidates: &[i64],
) -> Vec<(String, f32)> {
    let reply: Value = redis::cmd("RECOMMEND")
        .arg(model)
        .arg(user)
        .arg(candidates.len())
        .arg("CANDIDATES")
        .arg(candidates.len())
        .arg(candidates)
        .query(con)
        .unwrap_or_else(|e| panic!("RECOMMEND {model}: {e}"));
    let mut ranked = ranked(reply);
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    ranked
}

/// A GPU backend to test: its `--backend` name, the name its sessions report, the ONNX Runtime library the
/// server loads with it, and how close to the CPU its scores must be.
struct GpuBackend {
    flag: &'static str,
    reported: &'static str,
    ort_lib: PathBuf,
    tolerance: f32,
}

/// The GPU backends this machine can run; the others are skipped with their reason (or fail, see the module
/// docs). Empty where there is no GPU.
fn gpu_backends() -> Vec<GpuBackend> {
    if let Err(error) = ember_kernels::cuda::probe(0) {
        skip_gpu("EMBER_REQUIRE_GPU", &format!("no GPU: {error}"));
        return Vec::new();
    }
    let mut backends = vec![GpuBackend {
        flag: "native",
        reported: "native-cuda:0",
        ort_lib: ort_lib(),
        tolerance: GPU_SCORE_TOLERANCE,
    }];
    let gpu_lib = std::env::var_os("EMBER_ORT_GPU_LIB")
        .filter(|p| !p.is_empty())
        .map_or_else(
            || repo_root().join(ember_kernels::onnxruntime::SETUP_GPU_LIBRARY_PATH),
            PathBuf::from,
        );
    if gpu_lib.exists() {
        backends.push(GpuBackend {
            flag: "ort-cuda",
            reported: "onnxruntime-cuda:0",
            ort_lib: gpu_lib.clone(),
            tolerance: GPU_SCORE_TOLERANCE,
        });
        backends.push(GpuBackend {
            flag: "ort-tensorrt",
            reported: "onnxruntime-tensorrt:0",
            ort_lib: gpu_lib,
            tolerance: TENSORRT_SCORE_TOLERANCE,
        });
    } else {
        skip_gpu(
            "EMBER_REQUIRE_ORT_GPU",
            &format!(
                "ort-cuda and ort-tensorrt: no onnxruntime-gpu library at {} (EMBER_ORT_GPU=1 make setup, or set \
                 EMBER_ORT_GPU_LIB)",
                gpu_lib.display()
            ),
        );
    }
    backends
}

/// On each GPU backend: AI.MODELSTORE ... GPU runs there (AI.INFO says which backend), and AI.MODELEXECUTE and
/// RECOMMEND give the CPU's scores within the backend's tolerance, from a server that serves both at once.
#[test]
fn gpu_modelstore_and_recommend_match_the_cpu_on_each_gpu_backend() {
    let (user, candidates) = recommend_case();
    let user = user[0];
    for backend in gpu_backends() {
        let server = Server::start(&[
            "--threads",
            "2",
            "--ort-lib",
            backend.ort_lib.to_str().unwrap(),
            "--backend",
            backend.flag,
            "--tensorrt-cache",
            std::env::temp_dir()
                .join("ember-gpu-test-trt")
                .to_str()
                .unwrap(),
            "--demo-embeddings",
            "models",
        ]);
        let mut con = server.connection();
        for (model, inputs) in [
            ("dlrm", ["dense", "sparse"]),
            ("dlrm_dense", ["dense", "pooled"]),
        ] {
            let (cpu, gpu) = (format!("{model}_cpu"), format!("{model}_gpu"));
            assert_eq!(
                modelstore(&mut con, &cpu, "CPU", model).unwrap(),
                Value::Okay
            );
            let stored = modelstore(&mut con, &gpu, "GPU", model);
            assert_eq!(
                stored,
                Ok(Value::Okay),
                "{}: AI.MODELSTORE {gpu} GPU",
                backend.flag
            );
            assert_eq!(info_text(&mut con, &gpu, "device"), "GPU");
            assert_eq!(info_text(&mut con, &gpu, "ember_backend"), backend.reported);
            assert_eq!(
                info_text(&mut con, &cpu, "ember_backend"),
                "onnxruntime-cpu"
            );
            for name in inputs {
                tensorset(
                    &mut con,
                    &format!("{{{model}}}:{name}"),
                    &vector(model, name),
                );
            }
            let from_cpu = execute(&mut con, &cpu, model, inputs);
            let from_gpu = execute(&mut con, &gpu, model, inputs);
            let error = ember_kernels::compare::max_abs_difference(&from_gpu, &from_cpu);
            eprintln!(
                "{} {model}: AI.MODELEXECUTE max abs difference from the CPU {error:e}",
                backend.flag
            );
            assert!(
                error <= backend.tolerance,
                "{} {model}: {error}",
                backend.flag
            );
            assert!(max_abs_err(&from_cpu, &vector(model, "score")) <= SCORE_TOLERANCE);
        }
        let from_cpu = recommend_all(&mut con, "dlrm_dense_cpu", user, &candidates);
        let from_gpu = recommend_all(&mut con, "dlrm_dense_gpu", user, &candidates);
        assert_eq!(from_cpu.len(), candidates.len());
        let ids =
            |ranked: &[(String, f32)]| ranked.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&from_gpu), ids(&from_cpu), "{}", backend.flag);
        let scores = |ranked: &[(String, f32)]| ranked.iter().map(|(_, s)| *s).collect::<Vec<_>>();
        let error =
            ember_kernels::compare::max_abs_difference(&scores(&from_gpu), &scores(&from_cpu));
        eprintln!(
            "{}: RECOMMEND max abs difference from the CPU {error:e}",
            backend.flag
        );
        assert!(
            error <= backend.tolerance,
            "{} RECOMMEND: {error}",
            backend.flag
        );
    }
}

/// A GPU backend that this machine does not have is a clear error, at start-up and from AI.MODELSTORE, and the
/// cache keeps serving: on a machine with no GPU for every GPU device, on one with a GPU for device 99. Runs
/// everywhere.
#[test]
fn a_missing_gpu_backend_is_a_clear_error_and_the_cache_keeps_serving() {
    let lib = ort_lib();
    let lib = lib.to_str().unwrap();
    let has_gpu = ember_kernels::cuda::probe(0).is_ok();
    let missing_device = if has_gpu { "GPU:99" } else { "GPU" };
    let cases = [
        // (flags, the error's start, what explains it)
        (
            vec![
                "--backend",
                "native",
                "--model",
                "m0=models/dlrm_dense.onnx,backend=native,device=99",
            ],
            if has_gpu {
                "Could not load backend native:99"
            } else {
                "Could not load backend native:0"
            },
            if has_gpu { "no CUDA device 99" } else { "CUDA" },
        ),
        // The CPU library has no CUDA or TensorRT provider, GPU or not.
        (
            vec!["--ort-gpu-provider", "cuda"],
            "Could not load backend ort-cuda:",
            "no cuda provider",
        ),
        (
            vec!["--backend", "ort-tensorrt"],
            "Could not load backend ort-tensorrt:",
            "no tensorrt provider",
        ),
    ];
    for (flags, start, why) in cases {
        let mut args = vec!["--threads", "2", "--ort-lib", lib];
        args.extend(flags.iter().copied());
        // The model whose backend is missing is left out at start-up; the server still starts.
        let server = Server::start(&args);
        let mut con = server.connection();
        let device = if flags.contains(&"native") {
            missing_device
        } else {
            "GPU"
        };
        let error = error_of(modelstore(&mut con, "m", device, "dlrm_dense"));
        assert!(
            error.contains(start) && error.contains(why),
            "{flags:?}: {error}"
        );
        // The model was not stored on any shard, m0 was left out, and the cache and the CPU backend still serve.
        for key in ["m", "m0"] {
            let error = error_of(
                redis::cmd("AI.MODELGET")
                    .arg(key)
                    .arg("META")
                    .query(&mut con),
            );
            assert!(error.contains("model key is empty"), "{key}: {error}");
        }
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
        let got: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
        assert_eq!(got, "v");
        assert_eq!(
            modelstore(&mut con, "m", "CPU", "dlrm_dense").unwrap(),
            Value::Okay
        );
        assert_eq!(info_text(&mut con, "m", "ember_backend"), "onnxruntime-cpu");
    }
}

/// A field of INFO `section` as a number.
fn info_number(con: &mut redis::Connection, section: &str, name: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}: {info}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("INFO {section} {name}: {e}"))
}

/// The GPU embedding cache's INFO fields, in the order INFO gives them (the last three count RECOMMEND chunks
/// scored from the cache's slots).
const GPU_CACHE_FIELDS: [&str; 11] = [
    "gpu_cache_hits",
    "gpu_cache_misses",
    "gpu_cache_hit_ratio",
    "gpu_cache_evictions",
    "gpu_cache_invalidations",
    "gpu_cache_resident_rows",
    "gpu_cache_resident_bytes",
    "gpu_cache_capacity_bytes",
    "gpu_slot_calls",
    "gpu_slot_samples",
    "gpu_slot_fallbacks",
];

/// Every GPU cache figure from INFO gpu, printed so a GPU run's log shows what the server saw.
fn gpu_cache_info(
    con: &mut redis::Connection,
    when: &str,
) -> std::collections::HashMap<&'static str, f64> {
    let figures: std::collections::HashMap<&'static str, f64> = GPU_CACHE_FIELDS
        .iter()
        .map(|&name| (name, info_number(con, "gpu", name)))
        .collect();
    let mut line: Vec<String> = GPU_CACHE_FIELDS
        .iter()
        .map(|name| format!("{name}={}", figures[name]))
        .collect();
    line.insert(0, format!("INFO gpu {when}:"));
    eprintln!("{}", line.join(" "));
    figures
}

/// INFO's `# GPU` section is there at zero where RECOMMEND never ran on the native backend (here, on the CPU
/// backend), `--gpu-cache-rows` refuses a bad value at start-up, and `0` turns the cache off. Runs everywhere.
#[test]
fn gpu_cache_info_is_zero_off_the_native_backend_and_its_flag_is_checked() {
    let (server, user, candidates) = recommend_server();
    let mut con = server.connection();
    let ranked = recommend_all(&mut con, "dlrm_dense", user[0], &candidates);
    assert_eq!(ranked.len(), candidates.len());
    let info: String = redis::cmd("INFO").arg("gpu").query(&mut con).unwrap();
    assert!(info.starts_with("# GPU\r\n"), "{info}");
    let figures = gpu_cache_info(&mut con, "after RECOMMEND on ort-cpu");
    for name in GPU_CACHE_FIELDS {
        assert_eq!(figures[name], 0.0, "{name}");
    }
    let everything: String = redis::cmd("INFO")
        .arg("everything")
        .query(&mut con)
        .unwrap();
    assert!(
        everything.contains("# GPU\r\ngpu_cache_hits:0"),
        "{everything}"
    );
    drop(server);
    for (flag, value, why) in [
        (
            "--gpu-cache-rows",
            "lots",
            "--gpu-cache-rows: 'lots' is not a number",
        ),
        (
            "--gpu-cache-rows",
            "99999999999",
            "--gpu-cache-rows: 99999999999 is over the most",
        ),
        (
            "--gpu-slot-rows",
            "some",
            "--gpu-slot-rows: 'some' is not a number",
        ),
    ] {
        let output = Command::new(ember_binary())
            .args(["--port", "0", flag, value])
            .output()
            .expect("run ember");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{value}: {stderr}");
        assert!(stderr.contains(why), "{value}: {stderr}");
    }
}

/// How RECOMMEND on the native backend reads the GPU cache's rows: each GPU cache test runs on both.
#[derive(Clone, Copy, Debug)]
enum GpuPath {
    /// Rows pooled on the device, copied back, and run through the batcher (`--gpu-slot-rows 0`).
    Pooled,
    /// Every request scored from the cache's slots, rows staying on the device (`--gpu-slot-rows 1`).
    Slots,
}

const GPU_PATHS: [GpuPath; 2] = [GpuPath::Pooled, GpuPath::Slots];

impl GpuPath {
    fn slot_rows_flag(self) -> &'static str {
        match self {
            GpuPath::Pooled => "0",
            GpuPath::Slots => "1",
        }
    }
}

/// After `gpu_requests` RECOMMEND chunks on the `gpu` model, all on `path`: the slot path's counters say which
/// path ran, so a test cannot pass on the pooled path while meaning the slot path.
fn assert_path_ran(
    figures: &std::collections::HashMap<&'static str, f64>,
    path: GpuPath,
    chunks: f64,
    samples: f64,
    fallbacks: f64,
) {
    let ran = (
        figures["gpu_slot_calls"],
        figures["gpu_slot_samples"],
        figures["gpu_slot_fallbacks"],
    );
    match path {
        GpuPath::Pooled => assert_eq!(ran, (0.0, 0.0, 0.0), "{path:?}"),
        GpuPath::Slots => assert_eq!(ran, (chunks, samples, fallbacks), "{path:?}"),
    }
}

/// A server serving `dlrm_dense` twice, `cpu` on ONNX Runtime's CPU provider and `gpu` on the native engine
/// with the GPU embedding cache, over the demo embeddings; None (after saying why, or failing under
/// EMBER_REQUIRE_GPU=1) where there is no GPU. `slot_rows` is `--gpu-slot-rows`.
fn gpu_cache_server(threads: &str, slot_rows: &str) -> Option<Server> {
    if let Err(error) = ember_kernels::cuda::probe(0) {
        skip_gpu("EMBER_REQUIRE_GPU", &format!("no GPU: {error}"));
        return None;
    }
    let lib = ort_lib();
    Some(Server::start(&[
        "--threads",
        threads,
        "--ort-lib",
        lib.to_str().unwrap(),
        "--model",
        "cpu=models/dlrm_dense.onnx,backend=ort-cpu",
        "--model",
        "gpu=models/dlrm_dense.onnx,backend=native",
        "--gpu-cache-rows",
        "65536",
        "--gpu-slot-rows",
        slot_rows,
        "--demo-embeddings",
        "models",
    ]))
}

/// RECOMMEND of the same request on `cpu` and on `gpu`: the GPU's scores must be the CPU's within 1e-4 (a NaN
/// anywhere fails), with the same ids; returns the CPU's (id, score) by id.
fn assert_gpu_matches_cpu(
    con: &mut redis::Connection,
    user: i64,
    candidates: &[i64],
    when: &str,
) -> Vec<(String, f32)> {
    let from_cpu = recommend_all(con, "cpu", user, candidates);
    let from_gpu = recommend_all(con, "gpu", user, candidates);
    let ids =
        |ranked: &[(String, f32)]| ranked.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    let scores = |ranked: &[(String, f32)]| ranked.iter().map(|(_, s)| *s).collect::<Vec<_>>();
    assert_eq!(ids(&from_gpu), ids(&from_cpu), "{when}");
    let error = ember_kernels::compare::max_abs_difference(&scores(&from_gpu), &scores(&from_cpu));
    eprintln!(
        "{when}: RECOMMEND through the GPU cache, {} candidates, max abs difference from the CPU {error:e}",
        candidates.len()
    );
    assert!(
        error <= GPU_SCORE_TOLERANCE,
        "{when}: GPU scores {:?} vs CPU {:?}",
        &from_gpu[..from_gpu.len().min(4)],
        &from_cpu[..from_cpu.len().min(4)]
    );
    from_cpu
}

/// RECOMMEND on the native backend with the GPU embedding cache on gives the CPU backend's scores (1e-4, NaN
/// fails) across two shards; the first request misses on every row the connection's shard owns and hits
/// none, and the same request again hits exactly those rows and copies nothing. On both paths.
#[test]
fn gpu_cache_recommend_matches_the_cpu_and_hits_on_a_repeat() {
    for path in GPU_PATHS {
        eprintln!("{path:?} path:");
        if !recommend_matches_the_cpu_and_hits_on_a_repeat(path) {
            return;
        }
    }
}

/// One path of [`gpu_cache_recommend_matches_the_cpu_and_hits_on_a_repeat`]; false where there is no GPU.
fn recommend_matches_the_cpu_and_hits_on_a_repeat(path: GpuPath) -> bool {
    let Some(server) = gpu_cache_server("2", path.slot_rows_flag()) else {
        return false;
    };
    let (user, candidates) = recommend_case();
    let user = user[0];
    let mut con = server.connection();
    let before = gpu_cache_info(&mut con, "at start");
    assert_eq!(before["gpu_cache_hits"] + before["gpu_cache_misses"], 0.0);
    assert_gpu_matches_cpu(&mut con, user, &candidates, "first request");
    let first = gpu_cache_info(&mut con, "after the first request");
    assert!(
        first["gpu_cache_misses"] > 0.0,
        "no row went through the cache"
    );
    assert_eq!(first["gpu_cache_hits"], 0.0);
    assert_eq!(first["gpu_cache_resident_rows"], first["gpu_cache_misses"]);
    // 64 floats a row.
    assert_eq!(
        first["gpu_cache_resident_bytes"],
        first["gpu_cache_resident_rows"] * 256.0
    );
    assert!(first["gpu_cache_capacity_bytes"] >= 65536.0 * 256.0);
    assert_gpu_matches_cpu(&mut con, user, &candidates, "the same request again");
    let second = gpu_cache_info(&mut con, "after the repeat");
    assert_eq!(second["gpu_cache_hits"], first["gpu_cache_misses"]);
    assert_eq!(second["gpu_cache_misses"], first["gpu_cache_misses"]);
    assert!((second["gpu_cache_hit_ratio"] - 0.5).abs() < 1e-3);
    // Another user's request shares the candidates' rows: those hit, its own user rows miss.
    assert_gpu_matches_cpu(&mut con, user + 1, &candidates, "another user");
    let third = gpu_cache_info(&mut con, "after another user");
    assert!(third["gpu_cache_hits"] > second["gpu_cache_hits"]);
    assert_eq!(third["gpu_cache_evictions"], 0.0);
    // Three requests of one chunk each (the case's candidates are fewer than max-batch).
    let requests = 3.0;
    assert_path_ran(
        &third,
        path,
        requests,
        requests * candidates.len() as f64,
        0.0,
    );
    true
}

/// A SET of an embedding row invalidates its GPU copy: the next RECOMMEND on the native backend scores the
/// new row exactly as the CPU backend does (and differently from before), gpu_cache_invalidations counts it,
/// and a DEL of the row makes the native backend's RECOMMEND fail as the CPU's does. One shard, so that every
/// row is the connection's shard's and every count is exact. On both paths.
#[test]
fn gpu_cache_a_set_row_is_seen_by_the_next_recommend() {
    for path in GPU_PATHS {
        eprintln!("{path:?} path:");
        if !a_set_row_is_seen_by_the_next_recommend(path) {
            return;
        }
    }
}

/// One path of [`gpu_cache_a_set_row_is_seen_by_the_next_recommend`]; false where there is no GPU.
fn a_set_row_is_seen_by_the_next_recommend(path: GpuPath) -> bool {
    let Some(server) = gpu_cache_server("1", path.slot_rows_flag()) else {
        return false;
    };
    let (user, candidates) = recommend_case();
    let user = user[0];
    let mut con = server.connection();
    let old = assert_gpu_matches_cpu(&mut con, user, &candidates, "before the SET");
    let cached = gpu_cache_info(&mut con, "before the SET");
    assert_eq!(cached["gpu_cache_invalidations"], 0.0);
    // The demo rows' keys: field f of entity id is `emb:{f}:{id}`; fields 0..13 are the user's, 13..26 the
    // candidate's (ember_kernels::recommend). Rewrite candidate 0's first field and the user's first field.
    let target = candidates[0];
    let written = [format!("emb:13:{target}"), format!("emb:0:{user}")];
    for (index, key) in written.iter().enumerate() {
        let row: Vec<f32> = (0..64)
            .map(|i| 0.5 * (((i * 7 + index * 3) % 11) as f32 / 11.0 - 0.5))
            .collect();
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(ember_kernels::recommend::encode_row(&row))
            .query(&mut con)
            .unwrap();
    }
    let after_set = gpu_cache_info(&mut con, "after the SETs");
    assert_eq!(after_set["gpu_cache_invalidations"], written.len() as f64);
    assert_eq!(
        after_set["gpu_cache_resident_rows"],
        cached["gpu_cache_resident_rows"] - written.len() as f64
    );
    let new = assert_gpu_matches_cpu(&mut con, user, &candidates, "after the SET");
    let target_score = |ranked: &[(String, f32)]| {
        ranked
            .iter()
            .find(|(id, _)| *id == target.to_string())
            .map(|(_, score)| *score)
            .unwrap()
    };
    eprintln!(
        "candidate {target}: score {} before the SET, {} after",
        target_score(&old),
        target_score(&new)
    );
    assert!(
        (target_score(&new) - target_score(&old)).abs() > 1e-4,
        "the SET did not change candidate {target}'s score: the test's row is no test"
    );
    let reread = gpu_cache_info(&mut con, "after the RECOMMEND that read the new rows");
    assert_eq!(
        reread["gpu_cache_misses"],
        cached["gpu_cache_misses"] + written.len() as f64
    );
    // DEL: the native backend's RECOMMEND fails as the CPU's, naming the key.
    let _: i64 = redis::cmd("DEL").arg(&written[0]).query(&mut con).unwrap();
    for model in ["cpu", "gpu"] {
        let error = error_of(
            redis::cmd("RECOMMEND")
                .arg(model)
                .arg(user)
                .arg(1)
                .arg("CANDIDATES")
                .arg(1)
                .arg(target)
                .query(&mut con),
        );
        assert!(
            error.contains(&written[0]) && error.contains("not found"),
            "{model}: {error}"
        );
    }
    let deleted = gpu_cache_info(&mut con, "after the DEL");
    assert_eq!(
        deleted["gpu_cache_invalidations"],
        written.len() as f64 + 1.0
    );
    // Two requests scored from slots; the one after the DEL could not be (its row is gone) and took the pooled
    // path, which gave the error.
    assert_path_ran(&deleted, path, 2.0, 2.0 * candidates.len() as f64, 1.0);
    true
}

/// A RECOMMEND of 1000 candidates at the default `--gpu-slot-rows` (256) and max-batch (256) runs as four chunks
/// scored from the GPU cache's slots across two shards (the other shard's rows in scratch slots), and gives the
/// CPU's scores; a request of 255 candidates, under the threshold, takes the batcher and the pooled path.
#[test]
fn gpu_slots_score_a_large_request_in_chunks_as_the_cpu_does() {
    if let Err(error) = ember_kernels::cuda::probe(0) {
        skip_gpu("EMBER_REQUIRE_GPU", &format!("no GPU: {error}"));
        return;
    }
    let lib = ort_lib();
    let server = Server::start(&[
        "--threads",
        "2",
        "--ort-lib",
        lib.to_str().unwrap(),
        "--model",
        "cpu=models/dlrm_dense.onnx,backend=ort-cpu",
        "--model",
        "gpu=models/dlrm_dense.onnx,backend=native",
        "--gpu-cache-rows",
        "65536",
        "--demo-embeddings",
        "models",
    ]);
    let (user, _) = recommend_case();
    let user = user[0];
    // The demo tables hold 128 ids each: candidates repeat, as in `ember-bench infer`.
    let candidates: Vec<i64> = (0..1000).map(|i| (i * 7 + 3) % 128).collect();
    let mut con = server.connection();
    assert_gpu_matches_cpu(&mut con, user, &candidates, "1000 candidates");
    let large = gpu_cache_info(&mut con, "after 1000 candidates");
    assert_path_ran(&large, GpuPath::Slots, 4.0, 1000.0, 0.0);
    assert_gpu_matches_cpu(&mut con, user, &candidates, "1000 candidates again");
    let again = gpu_cache_info(&mut con, "after 1000 candidates again");
    assert_path_ran(&again, GpuPath::Slots, 8.0, 2000.0, 0.0);
    assert_eq!(again["gpu_cache_misses"], large["gpu_cache_misses"]);
    assert_gpu_matches_cpu(&mut con, user, &candidates[..255], "255 candidates");
    let small = gpu_cache_info(&mut con, "after 255 candidates");
    assert_path_ran(&small, GpuPath::Slots, 8.0, 2000.0, 0.0);
    assert!(small["gpu_cache_hits"] > again["gpu_cache_hits"]);
}
