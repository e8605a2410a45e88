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
