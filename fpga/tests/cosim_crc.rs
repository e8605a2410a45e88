//! Co-simulation of `slot_hash` and `crc32c` against Ember's software path, bit for bit, with
//! random back-pressure on both sides.

mod common;

use common::{pressures, require_sim, vector_count, Case};
use ember_fpga::modules::{Crc32cSim, SlotHashSim};
use rand::{Rng, SeedableRng};

/// Longest key or message the random tests send: long enough for many beats.
const MESSAGE_LEN_MAX: usize = 200;

fn edge_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"{}".to_vec(),
        b"}{".to_vec(),
        b"{a}".to_vec(),
        b"foo{}{bar}".to_vec(),
        b"foo{{bar}}zap".to_vec(),
        b"foo{bar}{zap}".to_vec(),
        b"{user1000}.following".to_vec(),
        b"1234567{".to_vec(),
        b"1234567{}".to_vec(),
        b"1234567{x}".to_vec(),
        b"12345678{x}".to_vec(),
        b"abcdefg{0123456789abcdef}".to_vec(),
        b"{0123456}".to_vec(),
        b"{01234567}".to_vec(),
        b"{012345678}".to_vec(),
        vec![b'{'; 17],
        vec![b'}'; 17],
    ];
    // Every length 0..=64 of plain bytes, and with a tag at every position.
    for len in 0..=64usize {
        keys.push((0..len).map(|index| b'a' + (index % 26) as u8).collect());
        if len >= 3 {
            for open in 0..len - 2 {
                for close in open + 1..len {
                    let mut key: Vec<u8> =
                        (0..len).map(|index| b'0' + (index % 10) as u8).collect();
                    key[open] = b'{';
                    key[close] = b'}';
                    keys.push(key);
                }
            }
        }
    }
    keys
}

/// Keys rich in braces, so that every tag case comes up.
fn random_key(rng: &mut rand::rngs::SmallRng) -> Vec<u8> {
    let len = if rng.gen_bool(0.8) {
        rng.gen_range(0..40)
    } else {
        rng.gen_range(0..=MESSAGE_LEN_MAX)
    };
    let brace_percent = rng.gen_range(0..30);
    (0..len)
        .map(|_| match rng.gen_range(0..100) {
            roll if roll < brace_percent / 2 => b'{',
            roll if roll < brace_percent => b'}',
            _ => rng.gen(),
        })
        .collect()
}

fn random_message(rng: &mut rand::rngs::SmallRng) -> Vec<u8> {
    let len = if rng.gen_bool(0.8) {
        rng.gen_range(0..64)
    } else {
        rng.gen_range(0..=MESSAGE_LEN_MAX)
    };
    (0..len).map(|_| rng.gen()).collect()
}

#[test]
fn slot_hash_edge_cases() {
    let Some(()) = require_sim("slot_hash_edge_cases") else {
        return;
    };
    let keys = edge_keys();
    for case in pressures(0x51_07) {
        let mut sim = SlotHashSim::new().unwrap();
        let mut pressure = case.pressure();
        let hardware = sim
            .key_slots(&keys, &mut pressure)
            .unwrap_or_else(|err| panic!("{case}: {err}"));
        for (key, slot) in keys.iter().zip(hardware) {
            assert_eq!(
                slot,
                ember_store::slot::key_slot(key),
                "{case}: key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }
}

#[test]
fn slot_hash_random() {
    let Some(()) = require_sim("slot_hash_random") else {
        return;
    };
    run_random("slot_hash", 0x5107_0001, random_key, |keys, case: &Case| {
        let mut sim = SlotHashSim::new().unwrap();
        let hardware = sim
            .key_slots(keys, &mut case.pressure())
            .unwrap_or_else(|err| panic!("{case}: {err}"));
        for (key, slot) in keys.iter().zip(hardware) {
            assert_eq!(
                slot,
                ember_store::slot::key_slot(key),
                "{case}: key {key:?}"
            );
        }
        sim.cycles()
    });
}

#[test]
fn crc32c_edge_cases() {
    let Some(()) = require_sim("crc32c_edge_cases") else {
        return;
    };
    let mut messages: Vec<Vec<u8>> = (0..=130usize)
        .map(|len| (0..len).map(|i| (i * 37) as u8).collect())
        .collect();
    messages.push(b"123456789".to_vec());
    messages.push(vec![0; 64]);
    messages.push(vec![0xff; 64]);
    messages.push(vec![0xff; 4096]);
    for case in pressures(0xc3c) {
        let mut sim = Crc32cSim::new().unwrap();
        let hardware = sim
            .checksums(&messages, &mut case.pressure())
            .unwrap_or_else(|err| panic!("{case}: {err}"));
        for (message, crc) in messages.iter().zip(hardware) {
            assert_eq!(
                crc,
                ember_rdma::checksum::crc32c(message),
                "{case}: length {}",
                message.len()
            );
        }
    }
}

#[test]
fn crc32c_random() {
    let Some(()) = require_sim("crc32c_random") else {
        return;
    };
    run_random(
        "crc32c",
        0xc3c_0001,
        random_message,
        |messages, case: &Case| {
            let mut sim = Crc32cSim::new().unwrap();
            let hardware = sim
                .checksums(messages, &mut case.pressure())
                .unwrap_or_else(|err| panic!("{case}: {err}"));
            for (message, crc) in messages.iter().zip(hardware) {
                assert_eq!(
                    crc,
                    ember_rdma::checksum::crc32c(message),
                    "{case}: message {message:?}"
                );
            }
            sim.cycles()
        },
    );
}

/// Splits `vector_count()` random vectors over the back-pressure cases and runs each batch.
fn run_random(
    module: &str,
    seed: u64,
    make: impl Fn(&mut rand::rngs::SmallRng) -> Vec<u8>,
    check: impl Fn(&[Vec<u8>], &Case) -> u64,
) {
    let cases = pressures(seed);
    let per_case = vector_count().div_ceil(cases.len());
    let mut total_vectors = 0;
    let mut total_cycles = 0;
    for case in &cases {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(case.seed);
        let vectors: Vec<Vec<u8>> = (0..per_case).map(|_| make(&mut rng)).collect();
        total_cycles += check(&vectors, case);
        total_vectors += vectors.len();
    }
    eprintln!("{module}: {total_vectors} random vectors, {total_cycles} cycles, all bit-exact");
}
