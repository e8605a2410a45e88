//! The software and simulated offloads give the same answers; the simulated one counts cycles.

mod common;

use common::require_sim;
use ember_fpga::offload::{Offload, SimulatedOffload, SoftwareOffload};

fn exercise(offload: &mut dyn Offload) -> (Vec<u16>, Vec<u32>, Vec<i32>, usize) {
    let keys: Vec<&[u8]> = vec![b"", b"foo", b"{user1000}.following", b"a{b}c{d}"];
    let slots = offload.key_slots(&keys).unwrap();
    let checksums = offload.checksums(&keys).unwrap();
    let a: Vec<i8> = (0..40).map(|index| index as i8 - 20).collect();
    let dots = offload.dot_products(&[(&a, &a), (&[], &[])]).unwrap();
    let streams: Vec<&[u8]> = vec![
        b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"*1\r\n+x",
    ];
    let events = offload.tokenize(&streams).unwrap();
    assert!(offload.dot_products(&[(&[1], &[])]).is_err());
    (slots, checksums, dots, events.iter().map(Vec::len).sum())
}

#[test]
fn software_and_simulated_agree() {
    let mut software = SoftwareOffload;
    let expected = exercise(&mut software);
    assert_eq!(expected.0[2], 3443);
    assert_eq!(software.cycles(), 0);
    let Some(()) = require_sim("software_and_simulated_agree") else {
        return;
    };
    let mut simulated = SimulatedOffload::new().unwrap();
    assert_eq!(exercise(&mut simulated), expected);
    assert!(simulated.cycles() > 0);
    assert_eq!(simulated.name(), "sim");
}
