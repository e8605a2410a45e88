//! Each module's latency and throughput are what its header comment states.

mod common;

use common::require_sim;
use ember_fpga::modules::{latency, Crc32cSim, DotI8Sim, SlotHashSim};
use ember_fpga::sim::Backpressure;

#[test]
fn latency_matches_headers() {
    let Some(()) = require_sim("latency_matches_headers") else {
        return;
    };
    // One single-beat packet with no back-pressure: the handshake clock, the latency (clock edges
    // from the handshake's to the one that raises m_axis_tvalid), and the clock that takes it.
    let mut slot_hash = SlotHashSim::new().unwrap();
    slot_hash
        .key_slots(&[b"k"], &mut Backpressure::none())
        .unwrap();
    assert_eq!(slot_hash.cycles(), 2 + latency::SLOT_HASH_CYCLES);
    let mut crc32c = Crc32cSim::new().unwrap();
    crc32c
        .checksums(&[b"k"], &mut Backpressure::none())
        .unwrap();
    assert_eq!(crc32c.cycles(), 2 + latency::CRC32C_CYCLES);
    let mut dot = DotI8Sim::new().unwrap();
    dot.dot_products(&[(&[1], &[2])], &mut Backpressure::none())
        .unwrap();
    assert_eq!(dot.cycles(), 2 + latency::DOT_I8_CYCLES);
}

#[test]
fn one_beat_a_clock() {
    let Some(()) = require_sim("one_beat_a_clock") else {
        return;
    };
    // 1000 packets of 4 full beats each: 4000 beats in 4000 clocks, then the last result.
    let keys: Vec<Vec<u8>> = (0..1000u32)
        .map(|index| format!("{index:032}").into_bytes())
        .collect();
    let mut slot_hash = SlotHashSim::new().unwrap();
    slot_hash
        .key_slots(&keys, &mut Backpressure::none())
        .unwrap();
    assert_eq!(slot_hash.cycles(), 4001 + latency::SLOT_HASH_CYCLES);
    let mut crc32c = Crc32cSim::new().unwrap();
    crc32c.checksums(&keys, &mut Backpressure::none()).unwrap();
    assert_eq!(crc32c.cycles(), 4001 + latency::CRC32C_CYCLES);
    let vectors: Vec<Vec<i8>> = (0..1000).map(|index| vec![index as i8; 64]).collect();
    let pairs: Vec<(&[i8], &[i8])> = vectors
        .iter()
        .map(|v| (v.as_slice(), v.as_slice()))
        .collect();
    let mut dot = DotI8Sim::new().unwrap();
    dot.dot_products(&pairs, &mut Backpressure::none()).unwrap();
    assert_eq!(dot.cycles(), 4001 + latency::DOT_I8_CYCLES);
}

#[test]
fn table_modules_take_one_request_a_clock() {
    use ember_fpga::modules::{
        AcMatchSim, BloomProbeSim, BloomRequest, RateRequest, TokenBucketSim,
    };
    let Some(()) = require_sim("table_modules_take_one_request_a_clock") else {
        return;
    };
    // The clear sweep after reset: one clock per RAM word (256 words per bank, 256 tenants).
    let sweep_cycles = 256;
    let requests: Vec<BloomRequest> = (0..1000u64)
        .map(|index| {
            if index % 2 == 0 {
                BloomRequest::Insert(index / 2)
            } else {
                BloomRequest::Query(index / 2)
            }
        })
        .collect();
    let mut bloom = BloomProbeSim::new().unwrap();
    bloom.run(&requests, &mut Backpressure::none()).unwrap();
    assert_eq!(
        bloom.cycles(),
        sweep_cycles + 1000 + 1 + latency::BLOOM_PROBE_CYCLES
    );

    // Every request on the same tenant: the forwarding path, back to back.
    let requests: Vec<RateRequest> = (0..1000u32)
        .map(|index| RateRequest::Check {
            tenant: 7,
            now_tick: index,
            cost: 1,
        })
        .collect();
    let mut bucket = TokenBucketSim::new().unwrap();
    bucket.run(&requests, &mut Backpressure::none()).unwrap();
    assert_eq!(
        bucket.cycles(),
        sweep_cycles + 1000 + 1 + latency::TOKEN_BUCKET_CYCLES
    );

    let filter = ember_store::text_filter::TextFilter::new(&[b"ab".as_slice()]).unwrap();
    let mut matcher = AcMatchSim::new().unwrap();
    matcher.load(&filter).unwrap();
    let load_cycles = matcher.cycles();
    assert_eq!(
        load_cycles,
        256 + (1 << (AcMatchSim::STATE_BITS + AcMatchSim::CLASS_BITS))
    );
    let text = vec![b'a'; 1000];
    matcher.scan(&[text], &mut Backpressure::none()).unwrap();
    assert_eq!(
        matcher.cycles() - load_cycles,
        1000 + 1 + latency::AC_MATCH_CYCLES
    );
}
