//! Co-simulation of `dot_i8` against `ember_kernels::dot::dot_i8`, bit for bit, with random
//! back-pressure on both sides.

mod common;

use common::{pressures, require_sim, vector_count};
use ember_fpga::modules::{DotI8Sim, DOT_LEN_MAX};
use rand::{Rng, SeedableRng};

fn check(pairs: &[(Vec<i8>, Vec<i8>)], sim: &mut DotI8Sim, case: &common::Case) {
    let refs: Vec<(&[i8], &[i8])> = pairs
        .iter()
        .map(|(a, b)| (a.as_slice(), b.as_slice()))
        .collect();
    let hardware = sim
        .dot_products(&refs, &mut case.pressure())
        .unwrap_or_else(|err| panic!("{case}: {err}"));
    for ((a, b), dot) in pairs.iter().zip(hardware) {
        assert_eq!(
            dot,
            ember_kernels::dot::dot_i8(a, b),
            "{case}: a {a:?} b {b:?}"
        );
    }
}

#[test]
fn dot_i8_edge_cases() {
    let Some(()) = require_sim("dot_i8_edge_cases") else {
        return;
    };
    let mut pairs: Vec<(Vec<i8>, Vec<i8>)> = Vec::new();
    for len in 0..=70usize {
        pairs.push((
            (0..len).map(|i| (i as i8).wrapping_mul(7)).collect(),
            (0..len).map(|i| -(i as i8)).collect(),
        ));
        pairs.push((vec![i8::MIN; len], vec![i8::MIN; len]));
        pairs.push((vec![i8::MIN; len], vec![i8::MAX; len]));
        pairs.push((vec![i8::MAX; len], vec![i8::MAX; len]));
    }
    // The longest vector, all at the extreme: the accumulator's full range.
    pairs.push((vec![i8::MIN; DOT_LEN_MAX], vec![i8::MIN; DOT_LEN_MAX]));
    pairs.push((vec![i8::MIN; DOT_LEN_MAX], vec![i8::MAX; DOT_LEN_MAX]));
    for case in pressures(0xd07) {
        let mut sim = DotI8Sim::new().unwrap();
        check(&pairs, &mut sim, &case);
    }
}

#[test]
fn dot_i8_random() {
    let Some(()) = require_sim("dot_i8_random") else {
        return;
    };
    let cases = pressures(0xd07_0001);
    let per_case = vector_count().div_ceil(cases.len());
    let mut total_cycles = 0;
    for case in &cases {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(case.seed);
        let pairs: Vec<(Vec<i8>, Vec<i8>)> = (0..per_case)
            .map(|_| {
                let len = if rng.gen_bool(0.9) {
                    rng.gen_range(0..48)
                } else {
                    rng.gen_range(0..300)
                };
                (
                    (0..len).map(|_| rng.gen()).collect(),
                    (0..len).map(|_| rng.gen()).collect(),
                )
            })
            .collect();
        let mut sim = DotI8Sim::new().unwrap();
        check(&pairs, &mut sim, case);
        total_cycles += sim.cycles();
    }
    eprintln!(
        "dot_i8: {} random vector pairs, {total_cycles} cycles, all bit-exact",
        per_case * cases.len()
    );
}

#[test]
fn dot_i8_rejects_bad_input() {
    let Some(()) = require_sim("dot_i8_rejects_bad_input") else {
        return;
    };
    let mut sim = DotI8Sim::new().unwrap();
    let err = sim
        .dot_products(
            &[(&[1, 2], &[1])],
            &mut ember_fpga::sim::Backpressure::none(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: vector pair 0 has lengths 2 and 1"
    );
    let long = vec![0i8; DOT_LEN_MAX + 1];
    assert!(sim
        .dot_products(
            &[(&long, &long)],
            &mut ember_fpga::sim::Backpressure::none()
        )
        .is_err());
}
