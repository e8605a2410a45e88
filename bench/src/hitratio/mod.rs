//! `ember-bench hitratio`: replays key traces through cache policies and reports hit ratios at
//! cache sizes given as fractions of the trace's working set (the bytes of its distinct keys).
//!
//! In-process (the default), every policy of `ember_store::eviction` runs on the same trace in
//! a [`SimulatedCache`]: a read, and a write of the key on a miss. With `--server HOST:PORT`
//! the same requests go through a real server over RESP (GET, then SET on a miss, pipelined in
//! batches that never hold one key twice, so each GET sees every earlier SET), its `maxmemory`
//! set for each size to its own baseline plus that fraction of the working set as the server
//! accounts it (measured by loading every key once, or `--dataset-bytes`), and hits and misses
//! read from `INFO stats`, which must agree with what the client saw.
//!
//! Traces: generated (Zipf at several skews, Zipf polluted by scans, a loop; seeded), or a file:
//! one key per line, CSV `timestamp,key[,size...]`, or libCacheSim's oracleGeneral binary
//! records (u32 timestamp, u64 object id, u32 size, i64 next access, little-endian).
//!
//! Files: [`trace`] reads and generates traces, [`server`] replays them over RESP, [`report`]
//! turns rows into tables and a plot; this file parses the flags and runs the simulations.

mod keyspace;
mod report;
mod server;
mod trace;

use crate::cli::Flags;
use ember_store::eviction::{CacheStats, Policy, PolicyConfig, SimulatedCache};
use report::{keys_held_table, markdown_table, summary_table, write_plot};
use serde::{Deserialize, Serialize};
use server::{replay_server, ServerPlan};
use std::path::Path;
use trace::{generate, parse_trace, Trace, TraceFormat, GENERATED_TRACES};

const USAGE: &str = "\
usage: ember-bench hitratio [flags]

Replays key traces through every eviction policy in-process (or through a server with
--server) at cache sizes that are fractions of the working set, prints a table of hit ratios
and writes an SVG plot.

traces:
  --traces LIST         generated traces, comma-separated (default all):
                        zipf-0.6,zipf-0.8,zipf-1.0,zipf-1.2 (Zipf at that skew),
                        zipf-scan (Zipf 1.0, 20% of requests in scans of cold keys),
                        loop (every key in turn, over and over)
  --trace FILE          replay this file instead of generated traces
  --trace-format F      lines (one key per line), csv (timestamp,key[,size,...]) or oracle
                        (oracleGeneral binary); default from the name: .csv, *oracleGeneral*
  --keys N              distinct keys of generated traces (default 100000)
  --requests N          requests per generated trace, or at most this many read from a file
                        (default 1000000)
  --value-size N        value bytes of each key when the trace gives no size (default 64)
  --seed N              seed of the generated traces and the policies (default 1)
  --sizes LIST          cache sizes in percent of the working set (default 0.1,1,10,30)

in-process:
  --policies LIST       policies, comma-separated (default all): allkeys-lru, volatile-lru,
                        allkeys-lfu, volatile-lfu, allkeys-random, volatile-random,
                        volatile-ttl, allkeys-lrm, volatile-lrm, s3fifo, sieve, w-tinylfu.
                        Volatile policies see every key written with a one-day TTL.
  --keyspace-policies LIST
                        also replay through the server's own eviction (ember_store's
                        Keyspace, sized in keys), rows named keyspace:POLICY; 'all' or any of
                        allkeys-lru, allkeys-lfu, allkeys-random, allkeys-tinylfu
  --pipeline N          keyspace rows: GETs per batch, as the server mode sends them
                        (default 1 here)
  --reply-hold F        keyspace rows: keys' worth of room each hit's reply takes until its
                        batch is answered, as a server's reply buffer does (default 0; 0.8
                        is a 1 KiB value at about 1.3 KB a key)
  --samples N           maxmemory-samples of Redis's policies (default 5)
  --lfu-log-factor N    (default 10)
  --lfu-decay-time N    minutes (default 1)
  --rate-per-s N        requests per second of the simulated clock for traces without
                        timestamps; Redis's LRU clock ticks in seconds (default 50000,
                        about what the server replays here reached)

server:
  --server LIST         replay through these servers instead (HOST:PORT, comma-separated;
                        GET, then SET on a miss), one after the other, in one run
  --server-policy NAME  CONFIG SET maxmemory-policy to this first (default: leave it)
  --label LIST          names of the servers' rows, one per server (default
                        redis:<policy> or ember:<policy>, from INFO server)
  --dataset-bytes N     the working set's bytes the sizes are fractions of (default: as
                        the first server stores it, measured by loading every key once);
                        every server gets the same bytes for keys on top of its own
                        empty used_memory
  --pipeline N          requests per batch (default 64)

output:
  --json FILE           write the results as JSON
  --merge LIST          JSON files of earlier runs (e.g. server runs) to add to the table and plot
  --plot FILE           write an SVG plot, one panel per trace (default: none)
  --markdown FILE       write the table as markdown";

/// TTL given to every key written under a `volatile-` policy: a day, far beyond any trace
/// replayed here, so those policies see every key as evictable and none expires.
const VOLATILE_TTL_MS: u64 = 24 * 3_600 * 1_000;

/// One measured hit ratio.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// Trace name.
    pub trace: String,
    /// Policy name (in-process) or server label.
    pub policy: String,
    /// "in-process" or "server".
    pub source: String,
    /// Cache size in percent of the working set.
    pub size_percent: f64,
    /// Bytes the cache held at most (in-process) or maxmemory (server).
    pub capacity_bytes: u64,
    /// Requests replayed.
    pub requests: u64,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// Keys evicted.
    pub evictions: u64,
    /// Keys held at the end of the replay (DBSIZE in server mode): what the bytes bought.
    pub keys_held: u64,
    /// Bytes of the working set the size is a fraction of: the trace's own (in-process), or
    /// the reference server's `used_memory` growth when it held every key (server mode).
    #[serde(default)]
    pub dataset_bytes: u64,
    /// Server mode: how much this server's `used_memory` grew holding every key once (its
    /// own bytes for the working set); 0 in-process.
    #[serde(default)]
    pub server_dataset_bytes: u64,
}

impl Row {
    pub(crate) fn hit_ratio(&self) -> f64 {
        self.hits as f64 / (self.hits + self.misses).max(1) as f64
    }
}

/// Entry point of `ember-bench hitratio`.
///
/// # Errors
/// Returns a message for a bad flag, an unreadable trace, a server that misbehaves or an
/// output that cannot be written.
pub fn main(args: &[String]) -> Result<(), String> {
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let flags = Flags::parse(
        args,
        &[
            "traces",
            "trace",
            "trace-format",
            "keys",
            "requests",
            "value-size",
            "seed",
            "sizes",
            "policies",
            "keyspace-policies",
            "samples",
            "lfu-log-factor",
            "lfu-decay-time",
            "rate-per-s",
            "server",
            "server-policy",
            "label",
            "dataset-bytes",
            "pipeline",
            "reply-hold",
            "json",
            "merge",
            "plot",
            "markdown",
        ],
        &[],
    )?;
    let sizes = parse_list(flags.text("sizes").unwrap_or("0.1,1,10,30"), |text| {
        text.parse::<f64>()
            .ok()
            .filter(|size| *size > 0.0 && *size <= 100.0)
            .ok_or_else(|| format!("--sizes: '{text}' is not a percentage in (0, 100]"))
    })?;
    let traces = load_traces(&flags)?;
    let mut rows = Vec::new();
    if let Some(address) = flags.text("server") {
        let plan = ServerPlan::from_flags(&flags, address)?;
        for trace in &traces {
            rows.extend(replay_server(&plan, trace, &sizes)?);
        }
    } else {
        let policies = match flags.text("policies") {
            None => Policy::ALL.to_vec(),
            Some(list) => parse_list(list, |name| {
                Policy::from_name(name)
                    .ok_or_else(|| format!("--policies: unknown policy '{name}'"))
            })?,
        };
        let settings = SimulationSettings {
            samples: flags.get_or("samples", ember_store::eviction::SAMPLES_DEFAULT)?,
            lfu_log_factor: flags.get_or("lfu-log-factor", 10u32)?,
            lfu_decay_time_minutes: flags.get_or("lfu-decay-time", 1u32)?,
            rate_per_s: flags.get_or("rate-per-s", 50_000u64)?.max(1),
            seed: flags.get_or("seed", 1u64)?,
        };
        let batching = keyspace::Batching {
            pipeline: flags.get_or("pipeline", 1usize)?.max(1),
            reply_hold: flags.get_or("reply-hold", 0.0f64)?,
        };
        let keyspace_policies = match flags.text("keyspace-policies") {
            None => Vec::new(),
            Some("all") => keyspace::KEYSPACE_POLICIES.to_vec(),
            Some(list) => list.split(',').collect(),
        };
        for trace in &traces {
            for &policy in &policies {
                for &size in &sizes {
                    rows.push(simulate(trace, policy, size, &settings));
                }
            }
            for &policy in &keyspace_policies {
                for &size in &sizes {
                    rows.push(keyspace::replay_keyspace(
                        trace, policy, size, &settings, batching,
                    )?);
                }
            }
        }
    }
    // This run's rows only: merged files stay where they are.
    if let Some(path) = flags.text("json") {
        let text = serde_json::to_string_pretty(&rows).expect("rows serialise");
        write_file(Path::new(path), &text)?;
    }
    if let Some(list) = flags.text("merge") {
        for path in list.split(',') {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read {path}: {error}"))?;
            let merged: Vec<Row> = serde_json::from_str(&text)
                .map_err(|error| format!("{path} is not a hitratio JSON file: {error}"))?;
            rows.extend(merged);
        }
    }
    let mut table = markdown_table(&rows);
    table.push_str(&summary_table(&rows));
    table.push_str(&keys_held_table(&rows, Policy::WTinyLfu.name()));
    println!("{table}");
    if let Some(path) = flags.text("markdown") {
        write_file(Path::new(path), &table)?;
    }
    if let Some(path) = flags.text("plot") {
        write_plot(Path::new(path), &rows)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn parse_list<T>(text: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let items = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse)
        .collect::<Result<Vec<T>, String>>()?;
    if items.is_empty() {
        return Err(format!("empty list '{text}'"));
    }
    Ok(items)
}

fn load_traces(flags: &Flags) -> Result<Vec<Trace>, String> {
    let requests_max = flags.get_or("requests", 1_000_000u64)?;
    let value_size: u32 = flags.get_or("value-size", 64u32)?;
    if let Some(path) = flags.text("trace") {
        let format = match flags.text("trace-format") {
            Some(name) => TraceFormat::from_name(name)?,
            None => TraceFormat::from_path(Path::new(path)),
        };
        let bytes =
            std::fs::read(path).map_err(|error| format!("cannot read trace {path}: {error}"))?;
        let requests = parse_trace(&bytes, format, value_size, requests_max)?;
        if requests.is_empty() {
            return Err(format!("trace {path} holds no request"));
        }
        let name = Path::new(path)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string());
        return Ok(vec![Trace { name, requests }]);
    }
    let keys = flags.get_or("keys", 100_000u64)?;
    if keys == 0 || requests_max == 0 {
        return Err("--keys and --requests must be positive".to_string());
    }
    let seed = flags.get_or("seed", 1u64)?;
    let names = match flags.text("traces") {
        Some(list) => parse_list(list, |name| Ok(name.to_string()))?,
        None => GENERATED_TRACES
            .iter()
            .map(|name| name.to_string())
            .collect(),
    };
    names
        .iter()
        .map(|name| generate(name, keys, requests_max, value_size, seed))
        .collect()
}

/// Knobs of the in-process policies.
pub struct SimulationSettings {
    /// maxmemory-samples.
    pub samples: usize,
    /// lfu-log-factor.
    pub lfu_log_factor: u32,
    /// lfu-decay-time in minutes.
    pub lfu_decay_time_minutes: u32,
    /// Requests per simulated second for traces without timestamps.
    pub rate_per_s: u64,
    /// Seed of the policies' random choices.
    pub seed: u64,
}

/// Replays `trace` through `policy` at `size_percent` of its working set.
pub fn simulate(
    trace: &Trace,
    policy: Policy,
    size_percent: f64,
    settings: &SimulationSettings,
) -> Row {
    let (distinct_keys, working_set_bytes) = trace.working_set();
    let capacity_bytes = ((working_set_bytes as f64 * size_percent / 100.0) as u64).max(1);
    let average_bytes = (working_set_bytes / distinct_keys.max(1)).max(1);
    let config = PolicyConfig {
        capacity_bytes,
        expected_entries: (capacity_bytes / average_bytes).max(1),
        samples: settings.samples,
        lfu_log_factor: settings.lfu_log_factor,
        lfu_decay_time_minutes: settings.lfu_decay_time_minutes,
        seed: settings.seed,
    };
    let mut cache = SimulatedCache::new(policy.build(&config), capacity_bytes);
    for (index, request) in trace.requests.iter().enumerate() {
        let now_ms = request
            .time_ms
            .unwrap_or(index as u64 * 1_000 / settings.rate_per_s);
        let expire_at_ms = policy.is_volatile().then_some(now_ms + VOLATILE_TTL_MS);
        cache.request(
            request.key,
            u64::from(request.size_bytes),
            expire_at_ms,
            now_ms,
        );
    }
    let stats: CacheStats = cache.stats();
    assert_eq!(
        stats.hits + stats.misses,
        trace.requests.len() as u64,
        "every request is a hit or a miss"
    );
    Row {
        trace: trace.name.clone(),
        policy: policy.name().to_string(),
        source: "in-process".to_string(),
        size_percent,
        capacity_bytes,
        requests: trace.requests.len() as u64,
        hits: stats.hits,
        misses: stats.misses,
        evictions: stats.evictions,
        keys_held: cache.len() as u64,
        dataset_bytes: working_set_bytes,
        server_dataset_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn settings() -> SimulationSettings {
        SimulationSettings {
            samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time_minutes: 1,
            rate_per_s: 100_000,
            seed: 1,
        }
    }

    #[test]
    fn simulation_hit_ratios_follow_cache_size_and_known_pathologies() {
        let zipf = generate("zipf-1.0", 5_000, 100_000, 16, 5).unwrap();
        let ratios: Vec<f64> = [1.0, 10.0, 30.0]
            .iter()
            .map(|&size| simulate(&zipf, Policy::AllKeysLru, size, &settings()).hit_ratio())
            .collect();
        assert!(
            ratios[0] < ratios[1] && ratios[1] < ratios[2],
            "grows with size: {ratios:?}"
        );
        // A loop longer than the cache: LRU always evicts the key needed next (0 hits, its
        // known pathology); random eviction keeps a few (4% with these seeds).
        // One request a second, so that Redis's LRU clock (seconds) orders every request.
        let one_per_second = SimulationSettings {
            rate_per_s: 1,
            ..settings()
        };
        let looped = generate("loop", 1_000, 20_000, 16, 5).unwrap();
        let lru = simulate(&looped, Policy::AllKeysLru, 30.0, &one_per_second);
        let random = simulate(&looped, Policy::AllKeysRandom, 30.0, &one_per_second);
        assert!(lru.hit_ratio() < 0.05, "lru on a loop: {}", lru.hit_ratio());
        assert!(
            random.hit_ratio() > 0.02 && random.hit_ratio() > lru.hit_ratio(),
            "random on a loop: {}",
            random.hit_ratio()
        );
        assert_eq!(lru.hits + lru.misses, 20_000);
    }
}
