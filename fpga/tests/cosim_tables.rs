//! Co-simulation of the table-holding modules (`bloom_probe`, `token_bucket`, `ac_match`)
//! against ember-store's Bloom filter, rate limiter and text filter, bit for bit, with random
//! back-pressure on both sides and request mixes that hit the same RAM word back to back.

mod common;

use common::{pressures, require_sim, vector_count, Case};
use ember_fpga::modules::{AcMatchSim, BloomProbeSim, BloomRequest, RateRequest, TokenBucketSim};
use ember_fpga::sim::Backpressure;
use ember_store::rate_limit::{Decision, RateLimiter, TokenBucketConfig};
use ember_store::text_filter::TextFilter;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn bloom_reference(requests: &[BloomRequest]) -> Vec<bool> {
    let mut filter = BloomProbeSim::reference_filter();
    requests
        .iter()
        .map(|request| match *request {
            BloomRequest::Query(hash) => filter.contains_hash(hash),
            BloomRequest::Insert(hash) => filter.insert_hash(hash),
            BloomRequest::Clear => {
                filter.clear();
                false
            }
        })
        .collect()
}

fn check_bloom(requests: &[BloomRequest], case: &Case) -> u64 {
    let mut sim = BloomProbeSim::new().unwrap();
    let hardware = sim
        .run(requests, &mut case.pressure())
        .unwrap_or_else(|err| panic!("{case}: {err}"));
    let expected = bloom_reference(requests);
    for (index, (got, want)) in hardware.iter().zip(&expected).enumerate() {
        assert_eq!(
            got,
            want,
            "{case}: request {index} {:?} (after {:?})",
            requests[index],
            &requests[index.saturating_sub(3)..index]
        );
    }
    sim.cycles()
}

#[test]
fn bloom_probe_edge_cases() {
    let Some(()) = require_sim("bloom_probe_edge_cases") else {
        return;
    };
    use BloomRequest::*;
    let a = 0x0000_0003_0000_0010;
    let b = 0x0000_0003_0000_0011; // same words as a, next bits
    let requests = vec![
        Query(a),
        Insert(a),
        Query(a),
        Insert(a),
        Insert(b),
        Query(b),
        Query(a),
        Clear,
        Query(a),
        Insert(a),
        Clear,
        Clear,
        Query(a),
        Insert(a),
        Insert(a),
        Query(a),
        Insert(u64::MAX),
        Query(u64::MAX),
        Insert(0),
        Query(0),
        Clear,
        Query(u64::MAX),
    ];
    for case in pressures(0xb100) {
        check_bloom(&requests, &case);
    }
}

#[test]
fn bloom_probe_random() {
    let Some(()) = require_sim("bloom_probe_random") else {
        return;
    };
    let cases = pressures(0xb100_0001);
    let per_case = vector_count().div_ceil(cases.len());
    let mut cycles = 0;
    for case in &cases {
        let mut rng = SmallRng::seed_from_u64(case.seed);
        let pool: Vec<u64> = (0..3000).map(|_| rng.gen()).collect();
        let requests: Vec<BloomRequest> = (0..per_case)
            .map(|_| {
                // Half the hashes crowd a few words, so back-to-back requests collide.
                let hash = if rng.gen_bool(0.5) {
                    u64::from(rng.gen_range(0u32..3)) << 32 | u64::from(rng.gen_range(0u32..48))
                } else {
                    pool[rng.gen_range(0..pool.len())]
                };
                match rng.gen_range(0..1000) {
                    0..=1 => BloomRequest::Clear,
                    2..=450 => BloomRequest::Insert(hash),
                    _ => BloomRequest::Query(hash),
                }
            })
            .collect();
        cycles += check_bloom(&requests, case);
    }
    eprintln!(
        "bloom_probe: {} random requests, {cycles} cycles, all bit-exact",
        per_case * cases.len()
    );
}

fn rate_reference(requests: &[RateRequest]) -> Vec<Decision> {
    let mut limiter = RateLimiter::new(TokenBucketSim::TENANT_COUNT).unwrap();
    requests
        .iter()
        .map(|request| match *request {
            RateRequest::Check {
                tenant,
                now_tick,
                cost,
            } => limiter.check(tenant, now_tick, cost).unwrap(),
            RateRequest::Configure {
                tenant,
                config,
                now_tick,
            } => {
                limiter.configure(tenant, config, now_tick).unwrap();
                Decision {
                    allowed: true,
                    tokens_left: config.burst,
                }
            }
        })
        .collect()
}

fn check_rate(requests: &[RateRequest], case: &Case) -> u64 {
    let mut sim = TokenBucketSim::new().unwrap();
    let hardware = sim
        .run(requests, &mut case.pressure())
        .unwrap_or_else(|err| panic!("{case}: {err}"));
    let expected = rate_reference(requests);
    for (index, (got, want)) in hardware.iter().zip(&expected).enumerate() {
        assert_eq!(
            got,
            want,
            "{case}: request {index} {:?} (after {:?})",
            requests[index],
            &requests[index.saturating_sub(3)..index]
        );
    }
    sim.cycles()
}

#[test]
fn token_bucket_edge_cases() {
    let Some(()) = require_sim("token_bucket_edge_cases") else {
        return;
    };
    use RateRequest::*;
    let config = TokenBucketConfig {
        rate_per_tick: 2,
        burst: 10,
    };
    let extreme = TokenBucketConfig {
        rate_per_tick: u16::MAX,
        burst: u32::MAX,
    };
    let requests = vec![
        Check {
            tenant: 0,
            now_tick: 0,
            cost: 1,
        }, // unconfigured: denied
        Check {
            tenant: 0,
            now_tick: 0,
            cost: 0,
        },
        Configure {
            tenant: 0,
            config,
            now_tick: 0,
        },
        Check {
            tenant: 0,
            now_tick: 0,
            cost: 4,
        },
        Check {
            tenant: 0,
            now_tick: 0,
            cost: 4,
        },
        Check {
            tenant: 0,
            now_tick: 0,
            cost: 4,
        }, // back to back on one tenant: 2 left, denied
        Check {
            tenant: 0,
            now_tick: 1,
            cost: 4,
        },
        Check {
            tenant: 0,
            now_tick: u32::MAX,
            cost: 10,
        },
        Check {
            tenant: 0,
            now_tick: 3,
            cost: 9,
        }, // the clock wrapped
        Configure {
            tenant: 255,
            config: extreme,
            now_tick: 5,
        },
        Check {
            tenant: 255,
            now_tick: 5,
            cost: u32::MAX,
        },
        Check {
            tenant: 255,
            now_tick: 6,
            cost: 65_535,
        },
        Check {
            tenant: 255,
            now_tick: u32::MAX,
            cost: u32::MAX,
        },
        Configure {
            tenant: 1,
            config,
            now_tick: 7,
        },
        Check {
            tenant: 1,
            now_tick: 7,
            cost: 11,
        },
        Configure {
            tenant: 1,
            config: TokenBucketConfig {
                rate_per_tick: 0,
                burst: 3,
            },
            now_tick: 8,
        },
        Check {
            tenant: 1,
            now_tick: 1_000_000,
            cost: 3,
        },
        Check {
            tenant: 1,
            now_tick: 2_000_000,
            cost: 1,
        },
    ];
    for case in pressures(0x70b) {
        check_rate(&requests, &case);
    }
    let mut sim = TokenBucketSim::new().unwrap();
    let err = sim
        .run(
            &[Check {
                tenant: 256,
                now_tick: 0,
                cost: 0,
            }],
            &mut Backpressure::none(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: tenant 256 is outside 0..256"
    );
}

#[test]
fn token_bucket_random() {
    let Some(()) = require_sim("token_bucket_random") else {
        return;
    };
    let cases = pressures(0x70b_0001);
    let per_case = vector_count().div_ceil(cases.len());
    let mut cycles = 0;
    for case in &cases {
        let mut rng = SmallRng::seed_from_u64(case.seed);
        let mut now_tick: u32 = rng.gen();
        let requests: Vec<RateRequest> = (0..per_case)
            .map(|_| {
                now_tick = match rng.gen_range(0..100) {
                    0 => rng.gen(), // a jump, forwards or (wrapping) backwards
                    1..=40 => now_tick,
                    _ => now_tick.wrapping_add(rng.gen_range(1..4)),
                };
                // Mostly a few tenants, so that requests of one tenant come back to back.
                let tenant = if rng.gen_bool(0.8) {
                    rng.gen_range(0..3)
                } else {
                    rng.gen_range(0..TokenBucketSim::TENANT_COUNT)
                };
                if rng.gen_range(0..100) < 3 {
                    let config = if rng.gen_bool(0.1) {
                        TokenBucketConfig {
                            rate_per_tick: rng.gen(),
                            burst: rng.gen(),
                        }
                    } else {
                        TokenBucketConfig {
                            rate_per_tick: rng.gen_range(0..5),
                            burst: rng.gen_range(0..100),
                        }
                    };
                    RateRequest::Configure {
                        tenant,
                        config,
                        now_tick,
                    }
                } else {
                    let cost = if rng.gen_bool(0.05) {
                        rng.gen()
                    } else {
                        rng.gen_range(0..20)
                    };
                    RateRequest::Check {
                        tenant,
                        now_tick,
                        cost,
                    }
                }
            })
            .collect();
        cycles += check_rate(&requests, case);
    }
    eprintln!(
        "token_bucket: {} random requests, {cycles} cycles, all bit-exact",
        per_case * cases.len()
    );
}

fn check_scan(
    sim: &mut AcMatchSim,
    filter: &TextFilter,
    texts: &[Vec<u8>],
    case: &Case,
    patterns: &[Vec<u8>],
) {
    sim.load(filter)
        .unwrap_or_else(|err| panic!("{case}: {err}"));
    let hardware = sim
        .scan(texts, &mut case.pressure())
        .unwrap_or_else(|err| panic!("{case}: {err}"));
    for (text, got) in texts.iter().zip(hardware) {
        assert_eq!(
            got,
            filter.scan(text),
            "{case}: patterns {patterns:?} text {text:?}"
        );
    }
}

#[test]
fn ac_match_edge_cases() {
    let Some(()) = require_sim("ac_match_edge_cases") else {
        return;
    };
    let patterns: Vec<Vec<u8>> = vec![
        b"he".to_vec(),
        b"she".to_vec(),
        b"his".to_vec(),
        b"hers".to_vec(),
        vec![0, 255],
    ];
    let refs: Vec<&[u8]> = patterns.iter().map(Vec::as_slice).collect();
    let filter = TextFilter::new(&refs).unwrap();
    let texts: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"ushers".to_vec(),
        b"h".to_vec(),
        b"he".to_vec(),
        b"".to_vec(),
        b"hehehe".to_vec(),
        vec![0, 255, 0, 255],
        b"xyz".to_vec(),
        vec![b'h'; 300],
        b"shishershe".to_vec(),
    ];
    for case in pressures(0xac) {
        let mut sim = AcMatchSim::new().unwrap();
        check_scan(&mut sim, &filter, &texts, &case, &patterns);
    }
    // A filter with no patterns matches nothing.
    let mut sim = AcMatchSim::new().unwrap();
    check_scan(
        &mut sim,
        &TextFilter::new(&[]).unwrap(),
        &texts,
        &pressures(0xac)[0],
        &[],
    );
    // Too many classes for the module's tables: a clear error.
    let every: Vec<u8> = (0..=255).collect();
    let err = sim
        .load(&TextFilter::new(&[every.as_slice()]).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    let mut fresh = AcMatchSim::new().unwrap();
    assert!(fresh.scan(&[b"x"], &mut Backpressure::none()).is_err());
}

#[test]
fn ac_match_random() {
    let Some(()) = require_sim("ac_match_random") else {
        return;
    };
    let cases = pressures(0xac_0001);
    let per_case = vector_count().div_ceil(cases.len());
    let texts_per_filter = 1000;
    let mut cycles = 0;
    for case in &cases {
        let mut rng = SmallRng::seed_from_u64(case.seed);
        let mut sim = AcMatchSim::new().unwrap();
        for _ in 0..per_case.div_ceil(texts_per_filter) {
            let alphabet = rng.gen_range(2u8..12);
            let patterns: Vec<Vec<u8>> = (0..rng.gen_range(1..14))
                .map(|_| {
                    (0..rng.gen_range(1..7))
                        .map(|_| b'a' + rng.gen_range(0..alphabet))
                        .collect()
                })
                .collect();
            let refs: Vec<&[u8]> = patterns.iter().map(Vec::as_slice).collect();
            let filter = TextFilter::new(&refs).unwrap();
            let texts: Vec<Vec<u8>> = (0..texts_per_filter)
                .map(|_| {
                    (0..rng.gen_range(0..50))
                        .map(|_| b'a' + rng.gen_range(0..alphabet + 2))
                        .collect()
                })
                .collect();
            check_scan(&mut sim, &filter, &texts, case, &patterns);
        }
        cycles += sim.cycles();
    }
    eprintln!(
        "ac_match: {} random texts, {cycles} cycles, all bit-exact",
        per_case.div_ceil(texts_per_filter) * texts_per_filter * cases.len()
    );
}
