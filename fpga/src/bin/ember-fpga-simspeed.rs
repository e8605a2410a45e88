//! Measures how many clock cycles a second each Verilated module simulates, driven from Rust
//! through the shim with no back-pressure, and checks every result against the software path
//! (a fast wrong run fails). Prints one JSON object; fpga/synth/run.sh puts it in REPORT.md.
//!
//! Usage: `cargo run --release -p ember-fpga --bin ember-fpga-simspeed`

use std::time::Instant;

use ember_fpga::modules::{
    complete_events, resp_reference_events, AcMatchSim, BloomProbeSim, BloomRequest, Crc32cSim,
    DotI8Sim, RateRequest, RespTokenizerSim, SlotHashSim, TokenBucketSim,
};
use ember_fpga::sim::{Backpressure, SimError};
use ember_store::rate_limit::TokenBucketConfig;

/// Work per module: enough for about a second of simulation each.
const PACKET_COUNT: usize = 200_000;

fn measure(name: &str, run: impl FnOnce() -> Result<u64, SimError>) -> Result<String, SimError> {
    let start = Instant::now();
    let cycles = run()?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(format!(
        "\"{name}\": {{\"cycles\": {cycles}, \"seconds\": {seconds:.3}, \"cycles_per_second\": {:.0}}}",
        cycles as f64 / seconds
    ))
}

fn main() -> Result<(), SimError> {
    let keys: Vec<Vec<u8>> = (0..PACKET_COUNT)
        .map(|index| format!("user:{{{index}}}:profile:{index:08}").into_bytes())
        .collect();
    let mut results = Vec::new();
    results.push(measure("slot_hash", || {
        let mut sim = SlotHashSim::new()?;
        let slots = sim.key_slots(&keys, &mut Backpressure::none())?;
        assert!(keys
            .iter()
            .zip(&slots)
            .all(|(key, &slot)| slot == ember_store::slot::key_slot(key)));
        Ok(sim.cycles())
    })?);
    results.push(measure("crc32c", || {
        let mut sim = Crc32cSim::new()?;
        let crcs = sim.checksums(&keys, &mut Backpressure::none())?;
        assert!(keys
            .iter()
            .zip(&crcs)
            .all(|(key, &crc)| crc == ember_rdma::checksum::crc32c(key)));
        Ok(sim.cycles())
    })?);
    results.push(measure("dot_i8", || {
        let vectors: Vec<Vec<i8>> = (0..PACKET_COUNT / 4)
            .map(|index| (0..64).map(|lane| (index + lane) as i8).collect())
            .collect();
        let pairs: Vec<(&[i8], &[i8])> = vectors
            .iter()
            .map(|v| (v.as_slice(), v.as_slice()))
            .collect();
        let mut sim = DotI8Sim::new()?;
        let dots = sim.dot_products(&pairs, &mut Backpressure::none())?;
        assert!(vectors
            .iter()
            .zip(&dots)
            .all(|(v, &dot)| dot == ember_kernels::dot::dot_i8(v, v)));
        Ok(sim.cycles())
    })?);
    results.push(measure("bloom_probe", || {
        let requests: Vec<BloomRequest> = (0..PACKET_COUNT as u64)
            .map(|index| {
                if index % 2 == 0 {
                    BloomRequest::Insert(index.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                } else {
                    BloomRequest::Query(index)
                }
            })
            .collect();
        let mut sim = BloomProbeSim::new()?;
        let answers = sim.run(&requests, &mut Backpressure::none())?;
        let mut filter = BloomProbeSim::reference_filter();
        for (request, answer) in requests.iter().zip(answers) {
            let expected = match *request {
                BloomRequest::Insert(hash) => filter.insert_hash(hash),
                BloomRequest::Query(hash) => filter.contains_hash(hash),
                BloomRequest::Clear => unreachable!("no clears here"),
            };
            assert_eq!(answer, expected);
        }
        Ok(sim.cycles())
    })?);
    results.push(measure("token_bucket", || {
        let mut requests: Vec<RateRequest> = (0..256)
            .map(|tenant| RateRequest::Configure {
                tenant,
                config: TokenBucketConfig {
                    rate_per_tick: 1,
                    burst: 50,
                },
                now_tick: 0,
            })
            .collect();
        requests.extend((0..PACKET_COUNT as u32).map(|index| RateRequest::Check {
            tenant: index % 7,
            now_tick: index / 3,
            cost: 2,
        }));
        let mut sim = TokenBucketSim::new()?;
        let decisions = sim.run(&requests, &mut Backpressure::none())?;
        let mut limiter =
            ember_store::rate_limit::RateLimiter::new(TokenBucketSim::TENANT_COUNT).unwrap();
        for (request, decision) in requests.iter().zip(decisions) {
            match *request {
                RateRequest::Configure {
                    tenant,
                    config,
                    now_tick,
                } => limiter.configure(tenant, config, now_tick).unwrap(),
                RateRequest::Check {
                    tenant,
                    now_tick,
                    cost,
                } => {
                    assert_eq!(decision, limiter.check(tenant, now_tick, cost).unwrap())
                }
            }
        }
        Ok(sim.cycles())
    })?);
    results.push(measure("ac_match", || {
        let filter = ember_store::text_filter::TextFilter::new(&[
            b"drop table".as_slice(),
            b"<script",
            b"union select",
        ])
        .unwrap();
        let texts: Vec<Vec<u8>> = (0..PACKET_COUNT / 8)
            .map(|index| format!("GET /search?q=item{index}&sort=price <script").into_bytes())
            .collect();
        let mut sim = AcMatchSim::new()?;
        sim.load(&filter)?;
        let scans = sim.scan(&texts, &mut Backpressure::none())?;
        assert!(texts
            .iter()
            .zip(&scans)
            .all(|(text, scan)| *scan == filter.scan(text)));
        Ok(sim.cycles())
    })?);
    results.push(measure("resp_tokenizer", || {
        let request = b"*3\r\n$3\r\nSET\r\n$16\r\nuser:1000:visits\r\n$5\r\n12345\r\n";
        let streams: Vec<Vec<u8>> = (0..PACKET_COUNT / 40).map(|_| request.repeat(20)).collect();
        let mut sim = RespTokenizerSim::new()?;
        let events = sim.tokenize(&streams, &mut Backpressure::none())?;
        assert!(streams
            .iter()
            .zip(&events)
            .all(|(stream, events)| complete_events(events) == resp_reference_events(stream)));
        Ok(sim.cycles())
    })?);
    println!("{{{}}}", results.join(", "));
    Ok(())
}
