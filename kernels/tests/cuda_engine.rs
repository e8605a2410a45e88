//! The native CUDA engine against the CPU reference (max abs error 1e-5 on the scores).
//!
//! These tests need a CUDA driver, a GPU, NVRTC and cuBLASLt. Where there is no driver or no
//! device (CI, and the machine this backend was written on) they print why and pass without
//! running (or fail, with EMBER_REQUIRE_GPU=1 as ci/gpu-check.sh sets on a GPU machine);
//! `engine_without_a_driver_is_a_typed_error` then checks the error path instead.
//! Inputs come from a seeded generator; a failure prints the seed.

mod common;

use std::time::Instant;

use ember_kernels::cuda::library::{CUBLASLT_WHEEL_LIBRARY, NVRTC_WHEEL_LIBRARY};
use ember_kernels::cuda::{self, CudaErrorKind, DlrmEngine, EngineOptions};
use ember_kernels::dlrm::{DenseLayer, DlrmModel, EmbeddingTables, Pooling, SparseBags};
use ember_kernels::reference;

/// The tolerance the issue sets for scores.
const TOLERANCE: f32 = 1e-5;
const SEED: u64 = 0x5eed_d1a7;
/// DLRM's shapes as `models/generate.py` builds them.
const DENSE: usize = 13;
const FEATURES: usize = 26;
const DIM: usize = 64;
const ROWS_PER_TABLE: usize = 128;

/// SplitMix64: small, seeded, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-bound, bound).
    fn uniform(&mut self, bound: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (unit * 2.0 - 1.0) * bound
    }

    fn below(&mut self, limit: usize) -> usize {
        (self.next_u64() % limit as u64) as usize
    }

    fn floats(&mut self, count: usize, bound: f32) -> Vec<f32> {
        (0..count).map(|_| self.uniform(bound)).collect()
    }
}

fn layers(rng: &mut Rng, sizes: &[usize], relu_last: bool) -> Vec<DenseLayer> {
    let count = sizes.len() - 1;
    (0..count)
        .map(|index| {
            let (fan_in, fan_out) = (sizes[index], sizes[index + 1]);
            // Xavier-uniform keeps activations near unit scale through the layers.
            let bound = (6.0 / (fan_in + fan_out) as f32).sqrt();
            let weight = rng.floats(fan_in * fan_out, bound);
            let bias = rng.floats(fan_out, 0.05);
            let relu = index + 1 < count || relu_last;
            DenseLayer::new(fan_in, fan_out, &weight, &bias, relu).unwrap()
        })
        .collect()
}

/// A DLRM with the demo model's shapes and seeded weights.
fn dlrm(rng: &mut Rng, with_tables: bool) -> DlrmModel {
    let bottom = layers(rng, &[DENSE, 512, 256, DIM], true);
    let top = layers(
        rng,
        &[DIM + FEATURES * (FEATURES + 1) / 2, 512, 256, 1],
        false,
    );
    let tables = with_tables.then(|| {
        let rows = rng.floats(FEATURES * ROWS_PER_TABLE * DIM, 0.5);
        EmbeddingTables::uniform(FEATURES, ROWS_PER_TABLE, DIM, &rows).unwrap()
    });
    DlrmModel::new(bottom, top, FEATURES, tables).unwrap()
}

fn dense_inputs(rng: &mut Rng, sample_count: usize) -> Vec<f32> {
    // log(1 + x) of counts, as DLRM feeds Criteo's dense features: about 0..3.
    (0..sample_count * DENSE)
        .map(|_| (1.5 + rng.uniform(1.5)).max(0.0))
        .collect()
}

fn options(batch_size_max: usize, pooling: Pooling) -> EngineOptions {
    EngineOptions {
        batch_size_max,
        pooling,
        nvrtc_library: common::setup_library(NVRTC_WHEEL_LIBRARY),
        cublaslt_library: common::setup_library(CUBLASLT_WHEEL_LIBRARY),
        ..EngineOptions::default()
    }
}

/// The device, or None after printing why the test cannot run here.
fn gpu() -> Option<cuda::DeviceInfo> {
    match cuda::probe(0) {
        Ok(device) => {
            eprintln!(
                "running on {} (sm_{}{})",
                device.name, device.compute_capability.0, device.compute_capability.1
            );
            Some(device)
        }
        Err(error)
            if matches!(
                error.kind(),
                CudaErrorKind::NoDriver | CudaErrorKind::NoDevice
            ) =>
        {
            common::skip_gpu_test(&error.to_string());
            None
        }
        Err(error) => panic!("probing the GPU failed: {error}"),
    }
}

/// Infinite when either side holds a NaN, so that `<= TOLERANCE` fails.
fn max_abs_error(got: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(got.len(), expected.len());
    ember_kernels::compare::max_abs_difference(got, expected)
}

#[test]
fn engine_without_a_driver_is_a_typed_error() {
    let probed = cuda::probe(0);
    let Err(probe_error) = probed else {
        eprintln!("skipped: a CUDA driver is present, so the no-driver path cannot be observed");
        return;
    };
    if probe_error.kind() != CudaErrorKind::NoDriver {
        eprintln!(
            "skipped: the driver loads ({probe_error}), so the no-driver path cannot be observed"
        );
        return;
    }
    assert_eq!(
        probe_error.message(),
        "no CUDA driver: libcuda.so.1 not found"
    );
    let model = dlrm(&mut Rng(SEED), false);
    let error = match DlrmEngine::new(&model, &options(8, Pooling::Sum)) {
        Ok(_) => panic!("an engine was built with no driver"),
        Err(error) => error,
    };
    assert_eq!(error.kind(), CudaErrorKind::NoDriver);
    assert_eq!(error.to_string(), "no CUDA driver: libcuda.so.1 not found");
}

#[test]
fn pooled_scores_match_the_reference() {
    if gpu().is_none() {
        return;
    }
    let mut rng = Rng(SEED);
    let model = dlrm(&mut rng, false);
    let mut engine = DlrmEngine::new(&model, &options(256, Pooling::Sum)).unwrap();
    // 1 and 256 fill their buckets; 3 and 100 are padded; 700 splits into 256 + 256 + 188.
    for sample_count in [1, 3, 100, 256, 700] {
        let dense = dense_inputs(&mut rng, sample_count);
        let pooled = rng.floats(sample_count * FEATURES * DIM, 1.0);
        let expected = reference::score_pooled(&model, &dense, &pooled).unwrap();
        let mut scores = vec![f32::NAN; sample_count];
        engine.score_pooled(&dense, &pooled, &mut scores).unwrap();
        let error = max_abs_error(&scores, &expected);
        eprintln!("pooled, {sample_count} samples: max abs error {error:e}");
        assert!(
            error <= TOLERANCE,
            "seed {SEED:#x}, {sample_count} samples: max abs error {error}"
        );
    }
}

#[test]
fn bag_scores_match_the_reference() {
    if gpu().is_none() {
        return;
    }
    for pooling in [Pooling::Sum, Pooling::Mean] {
        let mut rng = Rng(SEED + 1);
        let model = dlrm(&mut rng, true);
        let mut engine = DlrmEngine::new(&model, &options(64, pooling)).unwrap();
        for sample_count in [1, 5, 64, 150] {
            let dense = dense_inputs(&mut rng, sample_count);
            // Bags of zero to four ids: empty bags pool to zeros.
            let mut offsets = vec![0u32];
            let mut ids = Vec::new();
            for _ in 0..sample_count * FEATURES {
                for _ in 0..rng.below(5) {
                    ids.push(rng.below(ROWS_PER_TABLE) as u32);
                }
                offsets.push(ids.len() as u32);
            }
            let bags = SparseBags {
                offsets: &offsets,
                ids: &ids,
            };
            let expected = reference::score_bags(&model, &dense, &bags, pooling).unwrap();
            let mut scores = vec![f32::NAN; sample_count];
            engine.score_bags(&dense, &bags, &mut scores).unwrap();
            let error = max_abs_error(&scores, &expected);
            eprintln!("bags ({pooling:?}), {sample_count} samples: max abs error {error:e}");
            assert!(
                error <= TOLERANCE,
                "seed {:#x}, {pooling:?}, {sample_count} samples: {error}",
                SEED + 1
            );
        }
    }
}

#[test]
fn a_replayed_graph_reads_new_inputs() {
    if gpu().is_none() {
        return;
    }
    let mut rng = Rng(SEED + 2);
    let model = dlrm(&mut rng, false);
    let mut engine = DlrmEngine::new(&model, &options(16, Pooling::Sum)).unwrap();
    engine.warm_up().unwrap();
    let mut previous: Option<Vec<f32>> = None;
    for _ in 0..3 {
        let dense = dense_inputs(&mut rng, 16);
        let pooled = rng.floats(16 * FEATURES * DIM, 1.0);
        let expected = reference::score_pooled(&model, &dense, &pooled).unwrap();
        let mut scores = vec![0.0; 16];
        engine.score_pooled(&dense, &pooled, &mut scores).unwrap();
        assert!(
            max_abs_error(&scores, &expected) <= TOLERANCE,
            "seed {:#x}",
            SEED + 2
        );
        assert_ne!(
            previous.as_ref(),
            Some(&scores),
            "a replay returned the last batch's scores"
        );
        previous = Some(scores);
    }
}

#[test]
fn bad_inputs_are_errors_and_the_engine_keeps_working() {
    if gpu().is_none() {
        return;
    }
    let mut rng = Rng(SEED + 3);
    let model = dlrm(&mut rng, true);
    let mut engine = DlrmEngine::new(&model, &options(8, Pooling::Sum)).unwrap();
    let dense = dense_inputs(&mut rng, 2);
    let mut scores = vec![0.0; 2];
    let short = engine
        .score_pooled(&dense, &[0.0; 10], &mut scores)
        .unwrap_err();
    assert_eq!(short.kind(), CudaErrorKind::InvalidInput);
    let mismatched = engine
        .score_pooled(&dense[..DENSE], &[0.0; 10], &mut scores)
        .unwrap_err();
    assert_eq!(mismatched.kind(), CudaErrorKind::InvalidInput);
    let offsets: Vec<u32> = (0..=2 * FEATURES as u32).collect();
    let mut ids = vec![0u32; 2 * FEATURES];
    ids[7] = ROWS_PER_TABLE as u32;
    let outside = engine
        .score_bags(
            &dense,
            &SparseBags {
                offsets: &offsets,
                ids: &ids,
            },
            &mut scores,
        )
        .unwrap_err();
    assert_eq!(outside.kind(), CudaErrorKind::InvalidInput);
    assert!(
        outside.message().contains("id 128 of feature 7"),
        "{outside}"
    );
    ids[7] = 0;
    let bags = SparseBags {
        offsets: &offsets,
        ids: &ids,
    };
    engine.score_bags(&dense, &bags, &mut scores).unwrap();
    let expected = reference::score_bags(&model, &dense, &bags, Pooling::Sum).unwrap();
    assert!(max_abs_error(&scores, &expected) <= TOLERANCE);
}

/// Throughput of the graph path per batch size. Opt-in (`--ignored`): run it where a GPU is,
/// and copy its lines to bench/RESULTS.md with this command:
/// `cargo test --release -p ember-kernels --test cuda_engine -- --ignored --nocapture cuda_throughput`
#[test]
#[ignore = "GPU benchmark; run with --ignored on a machine with a GPU"]
fn cuda_throughput() {
    let Some(device) = gpu() else {
        return;
    };
    let mut rng = Rng(SEED + 4);
    let model = dlrm(&mut rng, false);
    let mut engine = DlrmEngine::new(&model, &options(4096, Pooling::Sum)).unwrap();
    engine.warm_up().unwrap();
    for batch in [1, 64, 256, 1024, 4096] {
        let dense = dense_inputs(&mut rng, batch);
        let pooled = rng.floats(batch * FEATURES * DIM, 1.0);
        let mut scores = vec![0.0; batch];
        // The check that makes a fast wrong run fail.
        engine.score_pooled(&dense, &pooled, &mut scores).unwrap();
        let expected = reference::score_pooled(&model, &dense, &pooled).unwrap();
        assert!(max_abs_error(&scores, &expected) <= TOLERANCE);
        let iterations = (200_000 / batch).clamp(50, 5_000);
        let mut latencies_us = Vec::with_capacity(iterations);
        let started = Instant::now();
        for _ in 0..iterations {
            let call = Instant::now();
            engine.score_pooled(&dense, &pooled, &mut scores).unwrap();
            latencies_us.push(call.elapsed().as_secs_f64() * 1e6);
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies_us.sort_by(f64::total_cmp);
        let percentile = |p: f64| latencies_us[((latencies_us.len() - 1) as f64 * p) as usize];
        println!(
            "{}: batch {batch}: {:.0} samples/s, p50 {:.1} us, p99 {:.1} us ({iterations} launches)",
            device.name,
            (batch * iterations) as f64 / seconds,
            percentile(0.50),
            percentile(0.99)
        );
    }
}

fn row_table_shape(capacity_rows: usize) -> cuda::RowTableShape {
    cuda::RowTableShape {
        capacity_rows,
        dim: DIM,
        rows_per_write_max: 64,
        bag_count_max: 64,
        ids_max: 256,
    }
}

#[test]
fn row_table_errors_are_typed_without_a_gpu() {
    let zero = cuda::DeviceRowTable::new(0, row_table_shape(0), None)
        .err()
        .expect("a table of no rows");
    assert_eq!(zero.kind(), CudaErrorKind::InvalidModel, "{zero}");
    if cuda::probe(0).is_ok() {
        eprintln!("skipped the no-driver half: a GPU is present");
        return;
    }
    let error = cuda::DeviceRowTable::new(0, row_table_shape(8), None)
        .err()
        .expect("no driver here");
    assert!(
        matches!(
            error.kind(),
            CudaErrorKind::NoDriver | CudaErrorKind::NoDevice
        ),
        "{error}"
    );
}

/// The GPU embedding cache's table: rows written into slots pool as the CPU reference pools the
/// same rows, a rewritten slot (an invalidated row read again) is seen by the next pool, and bad
/// slots are errors that leave the table working.
#[test]
fn row_table_pools_what_was_written_and_sees_rewrites() {
    if gpu().is_none() {
        return;
    }
    let seed = SEED ^ 0x7461_626c;
    eprintln!("seed {seed:#x}");
    let mut rng = Rng(seed);
    let capacity = 32;
    // Written 16 rows a call, so that the table is filled by more than one write. `host` is the
    // host's copy of what each slot holds.
    let (mut table, mut host) = filled_row_table(&mut rng, capacity, 16);
    assert_eq!(table.capacity_bytes(), capacity * DIM * 4);
    let check = |table: &mut cuda::DeviceRowTable, host: &[f32], rng: &mut Rng, pooling| {
        let bag_count = 1 + rng.below(40);
        let mut offsets = vec![0u32];
        let mut slots = Vec::new();
        for _ in 0..bag_count {
            for _ in 0..rng.below(5) {
                slots.push(rng.below(capacity) as u32);
            }
            offsets.push(slots.len() as u32);
        }
        let mut got = vec![f32::NAN; bag_count * DIM];
        table.pool(&offsets, &slots, pooling, &mut got).unwrap();
        let want = reference::embedding_bag(host, DIM, &slots, &offsets, pooling);
        let error = ember_kernels::compare::max_abs_difference(&got, &want);
        assert!(
            error <= 1e-6,
            "seed {seed:#x}: {pooling:?} pooled off by {error}"
        );
    };
    for _ in 0..20 {
        check(&mut table, &host, &mut rng, Pooling::Sum);
        check(&mut table, &host, &mut rng, Pooling::Mean);
    }
    // Rewrite three slots, as the cache does when a SET invalidated their rows.
    let rewritten = [3u32, 17, 31];
    let fresh = rng.floats(rewritten.len() * DIM, 0.5);
    for (index, &slot) in rewritten.iter().enumerate() {
        host[slot as usize * DIM..(slot as usize + 1) * DIM]
            .copy_from_slice(&fresh[index * DIM..(index + 1) * DIM]);
    }
    table.write_rows(&rewritten, &fresh).unwrap();
    for _ in 0..20 {
        check(&mut table, &host, &mut rng, Pooling::Sum);
    }
    let mut out = vec![0.0; DIM];
    let past = table.pool(&[0, 1], &[capacity as u32], Pooling::Sum, &mut out);
    assert_eq!(past.unwrap_err().kind(), CudaErrorKind::InvalidInput);
    let short = table.write_rows(&[0], &[0.0; 3]);
    assert_eq!(short.unwrap_err().kind(), CudaErrorKind::InvalidInput);
    check(&mut table, &host, &mut rng, Pooling::Sum);
}

/// Random bags of slots below `capacity`, zero to four a bag, `F` bags a sample.
fn slot_bags(rng: &mut Rng, sample_count: usize, capacity: usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32];
    let mut slots = Vec::new();
    for _ in 0..sample_count * FEATURES {
        for _ in 0..rng.below(5) {
            slots.push(rng.below(capacity) as u32);
        }
        offsets.push(slots.len() as u32);
    }
    (offsets, slots)
}

/// A device table of `capacity` random rows, written `rows_per_write` rows a call, and the
/// host's copy of them.
fn filled_row_table(
    rng: &mut Rng,
    capacity: usize,
    rows_per_write: usize,
) -> (cuda::DeviceRowTable, Vec<f32>) {
    let wheel = common::setup_library(NVRTC_WHEEL_LIBRARY);
    let mut table =
        cuda::DeviceRowTable::new(0, row_table_shape(capacity), wheel.as_deref()).unwrap();
    let host = rng.floats(capacity * DIM, 0.5);
    let all_slots: Vec<u32> = (0..capacity as u32).collect();
    for chunk in all_slots.chunks(rows_per_write) {
        let rows: Vec<f32> = chunk
            .iter()
            .flat_map(|&s| host[s as usize * DIM..(s as usize + 1) * DIM].to_vec())
            .collect();
        table.write_rows(chunk, &rows).unwrap();
    }
    (table, host)
}

/// The GPU embedding cache's path without host round trips: `score_slots` runs the embedding
/// bag over an external `DeviceRowTable` and the MLPs in one graph, and must score as
/// `score_pooled` scores the same rows pooled on the host (max abs error 1e-5). Also: a second
/// table recaptures the graphs (its rows, not the first table's, are read), a rewritten row is
/// seen by the next call, and bad slots are typed errors that leave the engine working.
#[test]
fn slot_scores_over_a_row_table_match_pooled_scores() {
    if gpu().is_none() {
        return;
    }
    let seed = SEED ^ 0x736c_6f74;
    eprintln!("seed {seed:#x}");
    let mut rng = Rng(seed);
    let model = dlrm(&mut rng, false);
    for pooling in [Pooling::Sum, Pooling::Mean] {
        let mut engine = DlrmEngine::new(&model, &options(64, pooling)).unwrap();
        let capacity = 300;
        let (mut table, mut host) = filled_row_table(&mut rng, capacity, 64);
        let (other, other_host) = filled_row_table(&mut rng, 40, 64);
        let compare = |rng: &mut Rng,
                       engine: &mut DlrmEngine,
                       table: &cuda::DeviceRowTable,
                       host: &[f32],
                       capacity: usize,
                       sample_count: usize,
                       what: &str| {
            let dense = dense_inputs(rng, sample_count);
            let (offsets, slots) = slot_bags(rng, sample_count, capacity);
            let pooled = reference::embedding_bag(host, DIM, &slots, &offsets, pooling);
            let mut expected = vec![f32::NAN; sample_count];
            engine.score_pooled(&dense, &pooled, &mut expected).unwrap();
            let bags = SparseBags {
                offsets: &offsets,
                ids: &slots,
            };
            let mut got = vec![f32::NAN; sample_count];
            engine.score_slots(table, &dense, &bags, &mut got).unwrap();
            let error = max_abs_error(&got, &expected);
            eprintln!(
                "slots vs pooled ({pooling:?}, {what}), {sample_count} samples, {} slots: max abs error {error:e}",
                slots.len()
            );
            assert!(
                error <= TOLERANCE,
                "seed {seed:#x}, {pooling:?}, {what}, {sample_count} samples: {error}"
            );
        };
        for sample_count in [1, 5, 64, 150] {
            compare(
                &mut rng,
                &mut engine,
                &table,
                &host,
                capacity,
                sample_count,
                "table",
            );
        }
        for sample_count in [3, 64] {
            compare(
                &mut rng,
                &mut engine,
                &other,
                &other_host,
                40,
                sample_count,
                "other table",
            );
        }
        let rewritten = [0u32, 7, 39];
        let fresh = rng.floats(rewritten.len() * DIM, 0.5);
        for (index, &slot) in rewritten.iter().enumerate() {
            host[slot as usize * DIM..(slot as usize + 1) * DIM]
                .copy_from_slice(&fresh[index * DIM..(index + 1) * DIM]);
        }
        table.write_rows(&rewritten, &fresh).unwrap();
        for sample_count in [2, 100] {
            compare(
                &mut rng,
                &mut engine,
                &table,
                &host,
                40,
                sample_count,
                "rewritten",
            );
        }

        let dense = dense_inputs(&mut rng, 1);
        let mut offsets: Vec<u32> = (0..=FEATURES as u32).collect();
        let mut slots = vec![0u32; FEATURES];
        slots[5] = capacity as u32;
        let mut score = [0.0f32];
        let past = engine.score_slots(
            &table,
            &dense,
            &SparseBags {
                offsets: &offsets,
                ids: &slots,
            },
            &mut score,
        );
        assert_eq!(past.unwrap_err().kind(), CudaErrorKind::InvalidInput);
        slots[5] = 1;
        offsets[3] = 0;
        let unsorted = engine.score_slots(
            &table,
            &dense,
            &SparseBags {
                offsets: &offsets,
                ids: &slots,
            },
            &mut score,
        );
        assert_eq!(unsorted.unwrap_err().kind(), CudaErrorKind::InvalidInput);
        compare(
            &mut rng,
            &mut engine,
            &table,
            &host,
            capacity,
            7,
            "after errors",
        );
    }
}
