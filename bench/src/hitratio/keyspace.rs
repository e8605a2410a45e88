//! The server's own eviction, in process: a trace replayed through `ember_store::Keyspace`
//! under one of the server's `maxmemory-policy` names, with the cache's size counted in keys.
//!
//! The simulated policies of `ember_store::eviction` are models; the server evicts with the
//! keyspace's sampled pool and, under `allkeys-tinylfu`, its admission window and read
//! history (`keyspace/admission.rs`). This replays a trace through that code without a
//! socket in the way, as the server mode's client sends it: batches of GETs of distinct keys
//! (`--pipeline`, 1 by default here), then a SET of each miss; before each command, as many
//! evictions as bring the keyspace back to its size, then the end of the round, as the
//! server's eviction loop does. `--reply-hold F` models what a pipeline costs the server:
//! each hit's reply takes the room of F keys until the batch is answered (0.8 for 1 KiB
//! values at about 1.3 KB a key), so keys are evicted for the replies, as in the server, and
//! come back after.

use super::trace::{key_name, Trace};
use super::{Row, SimulationSettings};
use ember_store::{AccessPolicy, EvictionPolicy, EvictionPool, Keyspace, Value};

/// The server's policies this mode replays (the names `maxmemory-policy` takes).
pub const KEYSPACE_POLICIES: &[&str] = &[
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "allkeys-tinylfu",
];

/// The prefix of this mode's rows in tables: `keyspace:allkeys-tinylfu`.
pub const ROW_PREFIX: &str = "keyspace:";

/// How the keyspace mode sends its requests.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Most GETs in a batch (a batch also ends before a key it already holds).
    pub pipeline: usize,
    /// Keys' worth of room each hit's reply takes until its batch is answered.
    pub reply_hold: f64,
}

/// Replays `trace` through a keyspace evicting under `policy` (a `maxmemory-policy` name) at
/// `size_percent` of the trace's distinct keys.
pub fn replay_keyspace(
    trace: &Trace,
    policy: &str,
    size_percent: f64,
    settings: &SimulationSettings,
    batching: Batching,
) -> Result<Row, String> {
    let eviction = EvictionPolicy::from_name(policy)
        .filter(|_| KEYSPACE_POLICIES.contains(&policy))
        .ok_or_else(|| {
            format!(
                "--keyspace-policies: '{policy}' is not one of {}",
                KEYSPACE_POLICIES.join(", ")
            )
        })?;
    let (distinct_keys, working_set_bytes) = trace.working_set();
    let capacity_keys = ((distinct_keys as f64 * size_percent / 100.0) as usize).max(1);
    let mut keyspace = Keyspace::new();
    keyspace.set_access_policy(match eviction {
        EvictionPolicy::AllKeysLfu => AccessPolicy::Lfu {
            log_factor: settings.lfu_log_factor,
            decay_time_minutes: settings.lfu_decay_time_minutes,
        },
        _ => AccessPolicy::Lru,
    });
    keyspace.set_read_history(eviction == EvictionPolicy::AllKeysTinyLfu);
    let mut pool = EvictionPool::new(settings.seed);
    let (mut hits, mut misses, mut evictions) = (0u64, 0u64, 0u64);
    let mut evict_to = |keyspace: &mut Keyspace, capacity: usize, now_ms: u64| {
        if keyspace.key_count() <= capacity {
            return;
        }
        while keyspace.key_count() > capacity
            && keyspace
                .evict_one(&mut pool, eviction, settings.samples, now_ms)
                .is_some()
        {
            evictions += 1;
        }
        keyspace.end_eviction_round();
    };
    let mut index = 0;
    let mut in_batch = std::collections::HashSet::new();
    let mut missed = Vec::new();
    while index < trace.requests.len() {
        let now_ms = trace.requests[index]
            .time_ms
            .unwrap_or(index as u64 * 1_000 / settings.rate_per_s);
        // A batch ends before a key it already holds: that GET must see the SET before it.
        in_batch.clear();
        missed.clear();
        let mut held = 0.0;
        while index < trace.requests.len()
            && in_batch.len() < batching.pipeline.max(1)
            && in_batch.insert(trace.requests[index].key)
        {
            let key = trace.requests[index].key;
            index += 1;
            evict_to(
                &mut keyspace,
                capacity_keys.saturating_sub(held as usize),
                now_ms,
            );
            if keyspace.get(0, key_name(key).as_bytes(), now_ms).is_some() {
                hits += 1;
                held += batching.reply_hold;
            } else {
                misses += 1;
                missed.push(key);
            }
        }
        for &key in &missed {
            evict_to(&mut keyspace, capacity_keys, now_ms);
            keyspace.insert(
                0,
                key_name(key).as_bytes(),
                Value::from_bytes(b"v"),
                None,
                now_ms,
            );
        }
        evict_to(&mut keyspace, capacity_keys, now_ms);
    }
    Ok(Row {
        trace: trace.name.clone(),
        policy: format!("{ROW_PREFIX}{policy}"),
        source: "in-process".to_string(),
        size_percent,
        capacity_bytes: capacity_keys as u64,
        requests: trace.requests.len() as u64,
        hits,
        misses,
        evictions,
        keys_held: keyspace.key_count() as u64,
        dataset_bytes: working_set_bytes,
        server_dataset_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::settings;
    use super::super::trace::generate;
    use super::*;

    #[test]
    fn the_servers_tinylfu_keeps_the_head_while_replies_take_room() {
        // Zipf 1.2 over 20,000 keys, a cache of 0.2% of the distinct keys (about 15), batches
        // of 64 GETs whose hits hold 0.8 keys of room each until answered: the pressure under
        // which 4-bit sketch counters (saturated for every hot key) let allkeys-tinylfu drift
        // to a random draw of warm keys, below allkeys-lfu.
        let trace = generate("zipf-1.2", 20_000, 200_000, 64, 3).unwrap();
        let batching = Batching {
            pipeline: 64,
            reply_hold: 0.8,
        };
        let replay = |policy| replay_keyspace(&trace, policy, 0.2, &settings(), batching).unwrap();
        let (lfu, tinylfu) = (replay("allkeys-lfu"), replay("allkeys-tinylfu"));
        for row in [&lfu, &tinylfu] {
            assert_eq!(row.hits + row.misses, 200_000, "{}", row.policy);
            assert!(row.keys_held <= row.capacity_bytes, "{}", row.policy);
        }
        // Measured: 8-bit counters 4 points ahead, 4-bit ones 9 behind.
        assert!(
            tinylfu.hit_ratio() > lfu.hit_ratio() + 0.02,
            "tinylfu {} against lfu {}",
            tinylfu.hit_ratio(),
            lfu.hit_ratio()
        );
        assert!(replay_keyspace(&trace, "volatile-lru", 1.0, &settings(), batching).is_err());
    }
}
