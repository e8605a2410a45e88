//! Co-simulation of `resp_tokenizer` against ember-resp's request parser: the same argument
//! and request boundaries, and every protocol error at the same byte offset, with random
//! back-pressure on both sides.

mod common;

use common::{pressures, require_sim, vector_count, Case};
use ember_fpga::modules::{complete_events, resp_reference_events, RespTokenizerSim};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Number strings around every rule of string2ll and the limits.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "00",
    "01",
    "-0",
    "-1",
    "-2",
    "+1",
    "",
    " 1",
    "1 ",
    "1a",
    "-",
    "--1",
    "1-",
    "2147483647",
    "2147483648",
    "4294967296",
    "9999999999",
    "10000000000",
    "-9223372036854775808",
    "-9223372036854775809",
    "-9223372036854775807",
    "-9999999999999999999",
    "-99999999999999999999",
    "9223372036854775807",
    "12345678901234567890",
    "123456789012345678901",
    "536870912",
    "536870913",
    "999999999",
    "1000000000",
    "0000000000000000000000",
];

fn check(streams: &[Vec<u8>], case: &Case) -> u64 {
    let mut sim = RespTokenizerSim::new().unwrap();
    let hardware = sim
        .tokenize(streams, &mut case.pressure())
        .unwrap_or_else(|err| panic!("{case}: {err}"));
    for (stream, events) in streams.iter().zip(&hardware) {
        let expected = resp_reference_events(stream);
        assert_eq!(
            complete_events(events),
            expected,
            "{case}: stream {:?}",
            String::from_utf8_lossy(&stream[..stream.len().min(400)])
        );
    }
    sim.cycles()
}

fn push_request(stream: &mut Vec<u8>, rng: &mut SmallRng) {
    match rng.gen_range(0..100) {
        0..=2 => stream.extend_from_slice(b"*0\r\n"),
        3..=4 => stream.extend_from_slice(b"*-1\r\n"),
        5..=6 => stream.extend_from_slice(b"PING\r\n"),
        7..=14 => {
            // A crafted number in the count or in a length.
            let number = NUMBERS[rng.gen_range(0..NUMBERS.len())];
            if rng.gen_bool(0.5) {
                stream.extend_from_slice(format!("*{number}\r\n").as_bytes());
                for _ in 0..rng.gen_range(0..3) {
                    stream.extend_from_slice(b"$1\r\nx\r\n");
                }
            } else {
                stream.extend_from_slice(format!("*1\r\n${number}\r\n").as_bytes());
                stream.extend((0..rng.gen_range(0..6)).map(|_| b'y'));
                stream.extend_from_slice(b"\r\n");
            }
        }
        _ => {
            let argument_count = rng.gen_range(1..6);
            stream.extend_from_slice(format!("*{argument_count}\r").as_bytes());
            // The byte after a '\r' and the two after an argument are not checked.
            stream.push(if rng.gen_bool(0.9) { b'\n' } else { rng.gen() });
            for _ in 0..argument_count {
                let len = if rng.gen_bool(0.9) {
                    rng.gen_range(0..12)
                } else {
                    rng.gen_range(0..200)
                };
                stream.extend_from_slice(format!("${len}\r\n").as_bytes());
                stream.extend((0..len).map(|_| if rng.gen_bool(0.1) { b'\r' } else { rng.gen() }));
                if rng.gen_bool(0.95) {
                    stream.extend_from_slice(b"\r\n");
                } else {
                    stream.extend_from_slice(&[rng.gen(), rng.gen()]);
                }
            }
        }
    }
}

fn random_stream(rng: &mut SmallRng) -> Vec<u8> {
    let mut stream = Vec::new();
    for _ in 0..rng.gen_range(0..5) {
        push_request(&mut stream, rng);
    }
    // Corruption: a byte replaced, inserted or removed.
    if !stream.is_empty() && rng.gen_bool(0.25) {
        let at = rng.gen_range(0..stream.len());
        match rng.gen_range(0..3) {
            0 => stream[at] = rng.gen(),
            1 => stream.insert(
                at,
                *b"*$\r\n0-9x".get(rng.gen_range(0..8)).expect("in range"),
            ),
            _ => {
                stream.remove(at);
            }
        }
    }
    // A stream that ends mid-request.
    if !stream.is_empty() && rng.gen_bool(0.2) {
        stream.truncate(rng.gen_range(0..stream.len()));
    }
    stream
}

#[test]
fn resp_tokenizer_edge_cases() {
    let Some(()) = require_sim("resp_tokenizer_edge_cases") else {
        return;
    };
    let digits = |count: usize| "1".repeat(count);
    let mut streams: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"*1\r\n$4\r\nPING\r\n".to_vec(),
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
        b"*0\r\n*-1\r\n*1\r\n$0\r\n\r\n".to_vec(),
        b"*1\r\n+OK\r\n".to_vec(),
        b"*1\r\n$-1\r\n".to_vec(),
        b"*x\r\n".to_vec(),
        b"PING\r\n".to_vec(),
        b"*1\r\n$4\r\nPING\r\nPING\r\n".to_vec(),
        b"*".to_vec(),
        b"*1\r".to_vec(),
        b"*1\r\n".to_vec(),
        b"*1\r\n$".to_vec(),
        b"*1\r\n$4\r\nPI".to_vec(),
        b"*2\r\n$1\r\na\r\n".to_vec(),
        b"*1\r\n$999999999\r\nshort\r\n".to_vec(),
    ];
    for number in NUMBERS {
        streams.push(format!("*{number}\r\n$1\r\nx\r\n").into_bytes());
        streams.push(format!("*1\r\n${number}\r\nx\r\n").into_bytes());
    }
    // Header lines at the "too big" limit (64 KiB): with and without a line end inside the
    // window, and streams that end inside one.
    for count in [65_534usize, 65_535, 65_536, 65_537, 65_538, 70_000] {
        streams.push(format!("*{}\r\n", digits(count)).into_bytes());
        streams.push(format!("*{}", digits(count)).into_bytes());
        streams.push(format!("*1\r\n${}\r\n", digits(count)).into_bytes());
        streams.push(format!("*1\r\n${}", digits(count)).into_bytes());
    }
    for case in pressures(0x7e5).iter().take(2) {
        check(&streams, case);
    }
}

#[test]
fn resp_tokenizer_random() {
    let Some(()) = require_sim("resp_tokenizer_random") else {
        return;
    };
    let cases = pressures(0x7e5_0001);
    let per_case = vector_count().div_ceil(cases.len());
    let mut cycles = 0;
    for case in &cases {
        let mut rng = SmallRng::seed_from_u64(case.seed);
        let streams: Vec<Vec<u8>> = (0..per_case).map(|_| random_stream(&mut rng)).collect();
        cycles += check(&streams, case);
    }
    eprintln!(
        "resp_tokenizer: {} random streams, {cycles} cycles, all bit-exact",
        per_case * cases.len()
    );
}
