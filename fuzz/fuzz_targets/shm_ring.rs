//! The shm provider's message ring against a hostile peer: the server pops requests from a ring
//! that the client writes, so every byte of it may be anything.
//!
//! Input drives pushes, pops and hostile writes (any bytes at any offset of the ring: head, tail,
//! lengths, wrap markers, payloads). Checked: never a panic; until the first hostile write,
//! messages come out exactly as they went in, in order (a push refused as full or too large
//! changes nothing); after it, a pop returns a message within the ring's limit, and a pop or a
//! push may fail with a `Protocol` error, after which the ring is not used again (the server
//! closes such a connection).
#![no_main]

use std::collections::VecDeque;
use std::sync::Arc;

use ember_rdma::shm::memory::SharedMemory;
use ember_rdma::shm::ring::{ring_len, Consumer, Doorbell, Producer, Ring, RING_CAPACITY_MIN};
use ember_rdma::ErrorKind;
use libfuzzer_sys::arbitrary::{Result as ArbitraryResult, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Operations per input.
const OPS_MAX: usize = 256;
/// Rings the target uses: the smallest, so that wrapping and a full ring come quickly.
const CAPACITY: usize = RING_CAPACITY_MIN;

fn run(u: &mut Unstructured<'_>) -> ArbitraryResult<()> {
    let memory =
        Arc::new(SharedMemory::create("ember-fuzz-ring", ring_len(CAPACITY)).expect("memfd"));
    let doorbell = Arc::new(Doorbell::new().expect("eventfd"));
    let ring = |memory: &Arc<SharedMemory>| Ring::attach(memory.clone(), 0, CAPACITY).unwrap();
    let mut producer = Producer::new(ring(&memory), doorbell);
    let mut consumer = Consumer::new(ring(&memory));
    let message_len_max = ring(&memory).message_len_max();
    let mut in_flight: VecDeque<Vec<u8>> = VecDeque::new();
    let mut hostile = false;
    for _ in 0..OPS_MAX {
        if u.is_empty() {
            break;
        }
        match u.choose_index(4)? {
            0 | 1 => {
                let len = if u.ratio(1, 16)? {
                    u.int_in_range(0..=message_len_max + 16)?
                } else {
                    u.int_in_range(0..=200)?
                };
                let fill: u8 = u.arbitrary()?;
                let message: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                match producer.push(&message) {
                    Ok(()) => in_flight.push_back(message),
                    Err(error) if error.kind() == ErrorKind::Protocol => {
                        // A tail the peer moved where it cannot be: the connection is closed.
                        assert!(hostile, "an honest ring failed a push: {error}");
                        return Ok(());
                    }
                    Err(error) => {
                        assert!(
                            matches!(error.kind(), ErrorKind::TooLarge | ErrorKind::WouldBlock),
                            "push: {error}"
                        );
                        assert_eq!(error.kind() == ErrorKind::TooLarge, len > message_len_max);
                    }
                }
            }
            2 => {
                let mut popped = None;
                match consumer.pop(|bytes| popped = Some(bytes.to_vec())) {
                    Ok(true) => {
                        let popped = popped.expect("a message");
                        assert!(popped.len() <= message_len_max);
                        if !hostile {
                            assert_eq!(Some(popped), in_flight.pop_front(), "out of order");
                        }
                    }
                    Ok(false) => {
                        if !hostile {
                            assert!(in_flight.is_empty(), "a pushed message was not found");
                        }
                    }
                    Err(error) => {
                        assert!(hostile, "an honest ring failed: {error}");
                        assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
                        return Ok(()); // the connection would be closed
                    }
                }
            }
            _ => {
                // What a hostile client can do: write anything anywhere in its ring.
                let at = u.choose_index(memory.len())? & !7;
                let word: u64 = match u.choose_index(4)? {
                    0 => u.arbitrary()?,
                    1 => u64::MAX - u64::from(u.arbitrary::<u8>()?),
                    2 => u64::from(u.arbitrary::<u32>()?),
                    _ => u.int_in_range(0..=2 * CAPACITY as u64)?,
                };
                memory.store_u64(at, word, std::sync::atomic::Ordering::Relaxed);
                hostile = true;
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
