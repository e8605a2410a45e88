//! Nanoseconds per keyspace lookup: fills one keyspace with `KEYS` string keys of 16-byte names
//! and values (as `bench/scripts/bytes_per_key.py` writes them), then times `get` of keys drawn
//! in a shuffled order (hits), and of absent keys (misses), each over every key once, `ROUNDS`
//! times. Prints the median of the rounds; the run checks that every hit found its own value.
//! `history` as the third argument turns the read history of `allkeys-tinylfu` on, to see what
//! it adds to a lookup.
//!
//! cargo run -p ember-store --release --example lookup [KEYS] [ROUNDS] [history]

use std::hint::black_box;
use std::time::Instant;

use ember_store::{Keyspace, Value};

/// Keys when none is given: a million, as the memory figures use.
const KEYS_DEFAULT: usize = 1_000_000;

/// Rounds when none is given.
const ROUNDS_DEFAULT: usize = 5;

/// Fixed seed of the shuffle, so every run draws the same order.
const SHUFFLE_SEED: u64 = 0x5eed_1007_0c0f_fee5;

fn key(index: usize) -> Vec<u8> {
    format!("key:{index:012}").into_bytes()
}

/// A Fisher-Yates shuffle of `0..len` with xorshift draws.
fn shuffled(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut state = seed;
    for at in (1..len).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(at, (state % (at as u64 + 1)) as usize);
    }
    order
}

fn median(mut figures: Vec<f64>) -> f64 {
    figures.sort_by(f64::total_cmp);
    figures[figures.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let key_count = args
        .next()
        .map_or(KEYS_DEFAULT, |arg| arg.parse().expect("KEYS is a number"));
    let rounds = args.next().map_or(ROUNDS_DEFAULT, |arg| {
        arg.parse().expect("ROUNDS is a number")
    });
    let history = args.next().as_deref() == Some("history");
    let mut keyspace = Keyspace::new();
    keyspace.set_read_history(history);
    for index in 0..key_count {
        let value = Value::from_vec(format!("val:{index:012}").into_bytes());
        keyspace.insert(0, &key(index), value, None, 0);
    }
    let order = shuffled(key_count, SHUFFLE_SEED);
    let present: Vec<Vec<u8>> = order.iter().map(|&index| key(index)).collect();
    let absent: Vec<Vec<u8>> = order.iter().map(|&index| key(index + key_count)).collect();
    let mut hit_ns = Vec::new();
    let mut miss_ns = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let mut found = 0usize;
        for (key, &index) in present.iter().zip(&order) {
            let entry = keyspace.get(0, black_box(key), 0).expect("present");
            let Value::Str(bytes) = &entry.value else {
                panic!("a string value")
            };
            // The value's last digits are the key's index: a wrong entry fails the run.
            assert_eq!(bytes[4..], key[4..], "key {index}");
            found += 1;
        }
        hit_ns.push(started.elapsed().as_nanos() as f64 / found as f64);
        let started = Instant::now();
        let mut missed = 0usize;
        for key in &absent {
            missed += usize::from(keyspace.get(0, black_box(key), 0).is_none());
        }
        miss_ns.push(started.elapsed().as_nanos() as f64 / key_count as f64);
        assert_eq!((found, missed), (key_count, key_count));
    }
    println!(
        "{key_count} keys, {rounds} rounds{}: hit {:.1} ns/lookup, miss {:.1} ns/lookup (medians)",
        if history { ", read history on" } else { "" },
        median(hit_ns),
        median(miss_ns)
    );
}
