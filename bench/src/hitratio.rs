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

use crate::cli::Flags;
use crate::reply::{self, Reply};
use ember_store::eviction::{CacheStats, Policy, PolicyConfig, SimulatedCache};
use plotters::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

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
  --samples N           maxmemory-samples of Redis's policies (default 5)
  --lfu-log-factor N    (default 10)
  --lfu-decay-time N    minutes (default 1)
  --rate-per-s N        requests per second of the simulated clock for traces without
                        timestamps; Redis's LRU clock ticks in seconds (default 50000,
                        about what the server replays here reached)

server:
  --server HOST:PORT    replay through this server instead (GET, then SET on a miss)
  --server-policy NAME  CONFIG SET maxmemory-policy to this first (default: leave it)
  --label NAME          name of the server's rows (default server:<its maxmemory-policy>)
  --dataset-bytes N     the working set's bytes in the server (default: measured by
                        loading every key once); give the same figure to two servers to
                        compare them at equal maxmemory bytes
  --pipeline N          requests per batch (default 64)

output:
  --json FILE           write the results as JSON
  --merge LIST          JSON files of earlier runs (e.g. server runs) to add to the table and plot
  --plot FILE           write an SVG plot, one panel per trace (default: none)
  --markdown FILE       write the table as markdown";

/// Traces generated when `--traces` is not given.
const GENERATED_TRACES: [&str; 6] = [
    "zipf-0.6",
    "zipf-0.8",
    "zipf-1.0",
    "zipf-1.2",
    "zipf-scan",
    "loop",
];

/// Share of a zipf-scan trace's requests that are scans, in percent: enough that recency-only
/// policies lose part of the hot set each scan, few enough that the Zipf part dominates.
const SCAN_SHARE_PERCENT: u64 = 20;

/// Requests in one scan of a zipf-scan trace; with `SCAN_SHARE_PERCENT` this sets how often
/// scans come (every 10000 requests).
const SCAN_LEN: u64 = 2_000;

/// TTL given to every key written under a `volatile-` policy: a day, far beyond any trace
/// replayed here, so those policies see every key as evictable and none expires.
const VOLATILE_TTL_MS: u64 = 24 * 3_600 * 1_000;

/// Largest value written in server mode: trace files can name objects of gigabytes; the cap
/// keeps one SET within what servers accept by default (proto-max-bulk-len is 512 MB).
const SERVER_VALUE_BYTES_MAX: u32 = 1 << 20;

/// Longest a server may take to answer one batch before the run fails.
const SERVER_TIMEOUT: Duration = Duration::from_secs(30);

/// One request of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The key's id.
    pub key: u64,
    /// Bytes of the object (key name and value in-process; value in server mode).
    pub size_bytes: u32,
    /// Milliseconds since the trace's start, when the trace has timestamps.
    pub time_ms: Option<u64>,
}

/// A named list of requests.
pub struct Trace {
    /// Name in tables and plots.
    pub name: String,
    /// The requests in order.
    pub requests: Vec<Request>,
}

impl Trace {
    /// Distinct keys and the bytes they take, each counted at its first size.
    pub fn working_set(&self) -> (u64, u64) {
        let mut seen: HashMap<u64, u32> = HashMap::new();
        for request in &self.requests {
            seen.entry(request.key).or_insert(request.size_bytes);
        }
        let bytes = seen.values().map(|&size| u64::from(size)).sum();
        (seen.len() as u64, bytes)
    }
}

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
}

impl Row {
    fn hit_ratio(&self) -> f64 {
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
            "samples",
            "lfu-log-factor",
            "lfu-decay-time",
            "rate-per-s",
            "server",
            "server-policy",
            "label",
            "dataset-bytes",
            "pipeline",
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
        for trace in &traces {
            for &policy in &policies {
                for &size in &sizes {
                    rows.push(simulate(trace, policy, size, &settings));
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

/// The layouts of trace files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// One key per line.
    Lines,
    /// `timestamp,key[,size[,...]]`; a header line is skipped.
    Csv,
    /// libCacheSim's oracleGeneral: 24-byte little-endian records.
    Oracle,
}

impl TraceFormat {
    fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "lines" => Ok(TraceFormat::Lines),
            "csv" => Ok(TraceFormat::Csv),
            "oracle" | "oracleGeneral" => Ok(TraceFormat::Oracle),
            other => Err(format!(
                "--trace-format: '{other}' is not lines, csv or oracle"
            )),
        }
    }

    fn from_path(path: &Path) -> Self {
        let name = path.to_string_lossy();
        if name.contains("oracleGeneral") || name.ends_with(".bin") {
            TraceFormat::Oracle
        } else if name.ends_with(".csv") {
            TraceFormat::Csv
        } else {
            TraceFormat::Lines
        }
    }
}

/// Bytes of one oracleGeneral record.
const ORACLE_RECORD_BYTES: usize = 24;

/// Parses a trace file's bytes, keeping at most `requests_max` requests. Keys of text formats
/// are numbered in order of first appearance; `value_size` is every object's size when the
/// format gives none.
///
/// # Errors
/// Returns a message naming the line or record that does not parse.
pub fn parse_trace(
    bytes: &[u8],
    format: TraceFormat,
    value_size: u32,
    requests_max: u64,
) -> Result<Vec<Request>, String> {
    let limit = usize::try_from(requests_max).unwrap_or(usize::MAX);
    match format {
        TraceFormat::Oracle => {
            if bytes.len() % ORACLE_RECORD_BYTES != 0 {
                return Err(format!(
                    "oracleGeneral trace of {} bytes is not a whole number of {ORACLE_RECORD_BYTES}-byte records",
                    bytes.len()
                ));
            }
            let field = |record: &[u8], at: usize, len: usize| {
                let mut value = [0u8; 8];
                value[..len].copy_from_slice(&record[at..at + len]);
                u64::from_le_bytes(value)
            };
            let mut first_time_s = None;
            Ok(bytes
                .chunks_exact(ORACLE_RECORD_BYTES)
                .take(limit)
                .map(|record| {
                    let time_s = field(record, 0, 4);
                    let start = *first_time_s.get_or_insert(time_s);
                    Request {
                        key: field(record, 4, 8),
                        // A zero-size object still occupies its key.
                        size_bytes: (field(record, 12, 4) as u32).max(1),
                        time_ms: Some(time_s.saturating_sub(start) * 1_000),
                    }
                })
                .collect())
        }
        TraceFormat::Lines | TraceFormat::Csv => {
            let text = std::str::from_utf8(bytes).map_err(|_| "trace is not UTF-8".to_string())?;
            let mut ids: HashMap<&str, u64> = HashMap::new();
            let mut requests = Vec::new();
            let mut first_time = None;
            for (number, line) in text.lines().enumerate() {
                if requests.len() >= limit {
                    break;
                }
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (key, size_bytes, time_ms) = if format == TraceFormat::Lines {
                    (line, value_size, None)
                } else {
                    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
                    let Ok(time) = fields[0].parse::<f64>() else {
                        if number == 0 {
                            continue; // a header
                        }
                        return Err(format!(
                            "line {}: '{}' is not a timestamp",
                            number + 1,
                            fields[0]
                        ));
                    };
                    let key = *fields
                        .get(1)
                        .ok_or_else(|| format!("line {}: no key", number + 1))?;
                    let size_bytes = match fields.get(2) {
                        Some(text) => text
                            .parse::<u32>()
                            .map_err(|_| format!("line {}: '{text}' is not a size", number + 1))?
                            .max(1),
                        None => value_size,
                    };
                    let start = *first_time.get_or_insert(time);
                    // Timestamps in seconds, as the common CSV traces give them.
                    (
                        key,
                        size_bytes,
                        Some(((time - start).max(0.0) * 1_000.0) as u64),
                    )
                };
                let next_id = ids.len() as u64;
                let key = *ids.entry(key).or_insert(next_id);
                requests.push(Request {
                    key,
                    size_bytes,
                    time_ms,
                });
            }
            Ok(requests)
        }
    }
}

/// Zipf sampler over ranks `0..keys` with `P(rank) ∝ 1 / (rank + 1)^skew`, by binary search
/// in the cumulative distribution.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// The distribution over `keys` ranks at `skew`.
    pub fn new(keys: u64, skew: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=keys)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(skew);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        let total = *self.cumulative.last().expect("at least one key");
        let point = rng.gen::<f64>() * total;
        self.cumulative.partition_point(|&value| value <= point) as u64
    }
}

/// Generates the trace called `name`.
///
/// # Errors
/// Returns a message for an unknown name.
pub fn generate(
    name: &str,
    keys: u64,
    requests: u64,
    value_size: u32,
    seed: u64,
) -> Result<Trace, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let size_of = |key: u64| object_size(key, value_size);
    let request = |key: u64| Request {
        key,
        size_bytes: size_of(key),
        time_ms: None,
    };
    let list: Vec<Request> = if let Some(skew) = name
        .strip_prefix("zipf-")
        .and_then(|s| s.parse::<f64>().ok())
    {
        let zipf = Zipf::new(keys, skew);
        (0..requests)
            .map(|_| request(zipf.sample(&mut rng)))
            .collect()
    } else if name == "zipf-scan" {
        let zipf = Zipf::new(keys, 1.0);
        let period = SCAN_LEN * 100 / SCAN_SHARE_PERCENT;
        // Scans walk a cold range of as many keys as the hot one, continuing where the last
        // scan stopped.
        let mut cold_cursor = 0;
        (0..requests)
            .map(|index| {
                if index % period < period - SCAN_LEN {
                    request(zipf.sample(&mut rng))
                } else {
                    cold_cursor = (cold_cursor + 1) % keys;
                    request(keys + cold_cursor)
                }
            })
            .collect()
    } else if name == "loop" {
        (0..requests).map(|index| request(index % keys)).collect()
    } else {
        return Err(format!(
            "unknown trace '{name}' (known: {})",
            GENERATED_TRACES.join(", ")
        ));
    };
    Ok(Trace {
        name: name.to_string(),
        requests: list,
    })
}

/// The server-side name of key `key`.
fn key_name(key: u64) -> String {
    format!("k:{key}")
}

/// In-process size of a generated key: its name and its value, what a server stores besides
/// its own overhead.
fn object_size(key: u64, value_size: u32) -> u32 {
    key_name(key).len() as u32 + value_size
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
    }
}

/// What server mode needs from the flags.
struct ServerPlan {
    address: String,
    policy: Option<String>,
    label: Option<String>,
    dataset_bytes: Option<u64>,
    pipeline: usize,
}

impl ServerPlan {
    fn from_flags(flags: &Flags, address: &str) -> Result<Self, String> {
        let pipeline = flags.get_or("pipeline", 64usize)?;
        if pipeline == 0 {
            return Err("--pipeline must be positive".to_string());
        }
        Ok(ServerPlan {
            address: address.to_string(),
            policy: flags.text("server-policy").map(str::to_string),
            label: flags.text("label").map(str::to_string),
            dataset_bytes: flags.get("dataset-bytes")?,
            pipeline,
        })
    }
}

/// A blocking RESP connection that sends commands and reads whole replies.
struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
    /// Parse position in `input`.
    start: usize,
}

/// One reply, owned.
#[derive(Debug, PartialEq)]
enum Owned {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Owned>),
}

impl Connection {
    fn open(address: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(address)
            .map_err(|error| format!("cannot connect to {address}: {error}"))?;
        stream
            .set_read_timeout(Some(SERVER_TIMEOUT))
            .map_err(|error| format!("cannot set a timeout: {error}"))?;
        stream.set_nodelay(true).ok();
        Ok(Connection {
            stream,
            input: Vec::new(),
            start: 0,
        })
    }

    fn send(&mut self, output: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(output)
            .map_err(|error| format!("send failed: {error}"))
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 64 << 10];
        let read = self
            .stream
            .read(&mut chunk)
            .map_err(|error| format!("read failed: {error}"))?;
        if read == 0 {
            return Err("the server closed the connection".to_string());
        }
        self.input.extend_from_slice(&chunk[..read]);
        Ok(())
    }

    fn read_reply(&mut self) -> Result<Owned, String> {
        // Arrays (CONFIG GET's reply) are read here: a header, then that many replies.
        if self.input.get(self.start) == Some(&b'*') || self.input.len() == self.start {
            while self.input.len() == self.start {
                self.fill()?;
            }
            if self.input[self.start] == b'*' {
                let line_end = loop {
                    if let Some(at) = self.input[self.start..]
                        .windows(2)
                        .position(|pair| pair == b"\r\n")
                    {
                        break self.start + at;
                    }
                    self.fill()?;
                };
                let count: i64 = std::str::from_utf8(&self.input[self.start + 1..line_end])
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or("malformed array length in reply")?;
                self.start = line_end + 2;
                let mut elements = Vec::new();
                for _ in 0..count.max(0) {
                    elements.push(self.read_reply()?);
                }
                return Ok(Owned::Array(elements));
            }
        }
        loop {
            match reply::parse(&self.input, self.start)
                .map_err(|error| format!("bad reply: {error}"))?
            {
                Some((parsed, next)) => {
                    let text = |start: usize, len: usize| {
                        String::from_utf8_lossy(&self.input[start..start + len]).into_owned()
                    };
                    let owned = match parsed {
                        Reply::Simple { start, len } => Owned::Simple(text(start, len)),
                        Reply::Error { start, len } => Owned::Error(text(start, len)),
                        Reply::Integer(value) => Owned::Integer(value),
                        Reply::Bulk { start, len } => {
                            Owned::Bulk(self.input[start..start + len].to_vec())
                        }
                        Reply::Null => Owned::Null,
                    };
                    self.start = next;
                    if self.start == self.input.len() {
                        self.input.clear();
                        self.start = 0;
                    }
                    return Ok(owned);
                }
                None => self.fill()?,
            }
        }
    }

    fn command(&mut self, words: &[&[u8]]) -> Result<Owned, String> {
        let mut output = Vec::new();
        encode(&mut output, words);
        self.send(&output)?;
        self.read_reply()
    }

    fn expect_ok(&mut self, words: &[&[u8]]) -> Result<(), String> {
        match self.command(words)? {
            Owned::Simple(text) if text == "OK" => Ok(()),
            other => Err(format!(
                "{} replied {other:?}",
                String::from_utf8_lossy(&words.join(&b' '))
            )),
        }
    }

    /// A field of `INFO section`, as an integer.
    fn info_field(&mut self, section: &str, field: &str) -> Result<u64, String> {
        let Owned::Bulk(text) = self.command(&[b"INFO", section.as_bytes()])? else {
            return Err(format!("INFO {section} did not reply with a bulk string"));
        };
        let text = String::from_utf8_lossy(&text);
        text.lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().parse().ok())
            .ok_or_else(|| format!("INFO {section} has no integer field {field}"))
    }

    fn config_get(&mut self, name: &str) -> Result<String, String> {
        match self.command(&[b"CONFIG", b"GET", name.as_bytes()])? {
            Owned::Array(elements) => match elements.get(1) {
                Some(Owned::Bulk(value)) => Ok(String::from_utf8_lossy(value).into_owned()),
                _ => Err(format!("CONFIG GET {name} replied {elements:?}")),
            },
            other => Err(format!("CONFIG GET {name} replied {other:?}")),
        }
    }
}

/// Appends `words` as one RESP command.
fn encode(output: &mut Vec<u8>, words: &[&[u8]]) {
    output.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
    for word in words {
        output.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
        output.extend_from_slice(word);
        output.extend_from_slice(b"\r\n");
    }
}

/// What the client saw in one replay.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    hits: u64,
    misses: u64,
    /// SETs refused with `-OOM` (nothing evictable under the server's policy).
    refused_writes: u64,
}

/// Value bytes written for `request` in server mode: the object less its key name.
fn server_value_len(request: &Request) -> usize {
    let name_len = key_name(request.key).len() as u32;
    request
        .size_bytes
        .saturating_sub(name_len)
        .clamp(1, SERVER_VALUE_BYTES_MAX) as usize
}

/// Writes every distinct key of `trace` once (pipelined) and returns how many bytes the
/// server's `used_memory` grew by.
fn load_working_set(
    connection: &mut Connection,
    trace: &Trace,
    value: &[u8],
) -> Result<u64, String> {
    let before = connection.info_field("memory", "used_memory")?;
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<&Request> = trace
        .requests
        .iter()
        .filter(|request| seen.insert(request.key))
        .collect();
    for batch in firsts.chunks(1_000) {
        let mut output = Vec::new();
        for request in batch {
            let name = key_name(request.key);
            encode(
                &mut output,
                &[b"SET", name.as_bytes(), &value[..server_value_len(request)]],
            );
        }
        connection.send(&output)?;
        for _ in batch {
            match connection.read_reply()? {
                Owned::Simple(text) if text == "OK" => {}
                other => {
                    return Err(format!(
                        "SET while loading the working set replied {other:?}"
                    ))
                }
            }
        }
    }
    let after = connection.info_field("memory", "used_memory")?;
    if after <= before {
        return Err(format!(
            "used_memory did not grow while loading {} keys ({before} -> {after})",
            firsts.len()
        ));
    }
    Ok(after - before)
}

/// Replays `trace`: GETs of a batch of distinct keys, then SETs of the misses.
fn replay(
    connection: &mut Connection,
    trace: &Trace,
    pipeline: usize,
    value: &[u8],
) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    let mut index = 0;
    let mut in_batch = std::collections::HashSet::new();
    let mut batch: Vec<Request> = Vec::with_capacity(pipeline);
    let mut output = Vec::new();
    while index < trace.requests.len() {
        batch.clear();
        in_batch.clear();
        // A batch ends before a key it already holds: that GET must see the SET before it.
        while index < trace.requests.len()
            && batch.len() < pipeline
            && in_batch.insert(trace.requests[index].key)
        {
            batch.push(trace.requests[index]);
            index += 1;
        }
        output.clear();
        for request in &batch {
            encode(&mut output, &[b"GET", key_name(request.key).as_bytes()]);
        }
        connection.send(&output)?;
        let mut missed = Vec::new();
        for request in &batch {
            match connection.read_reply()? {
                Owned::Bulk(found) => {
                    let expected = server_value_len(request);
                    if found.len() != expected {
                        return Err(format!(
                            "GET {} returned {} bytes, {expected} were written",
                            key_name(request.key),
                            found.len()
                        ));
                    }
                    outcome.hits += 1;
                }
                Owned::Null => {
                    outcome.misses += 1;
                    missed.push(*request);
                }
                other => return Err(format!("GET replied {other:?}")),
            }
        }
        if missed.is_empty() {
            continue;
        }
        output.clear();
        for request in &missed {
            let name = key_name(request.key);
            encode(
                &mut output,
                &[b"SET", name.as_bytes(), &value[..server_value_len(request)]],
            );
        }
        connection.send(&output)?;
        for _ in &missed {
            match connection.read_reply()? {
                Owned::Simple(text) if text == "OK" => {}
                Owned::Error(text) if text.starts_with("OOM") => outcome.refused_writes += 1,
                other => return Err(format!("SET replied {other:?}")),
            }
        }
    }
    Ok(outcome)
}

/// Replays `trace` through the server at every size.
fn replay_server(plan: &ServerPlan, trace: &Trace, sizes: &[f64]) -> Result<Vec<Row>, String> {
    let mut connection = Connection::open(&plan.address)?;
    if let Some(policy) = &plan.policy {
        connection.expect_ok(&[b"CONFIG", b"SET", b"maxmemory-policy", policy.as_bytes()])?;
    }
    let policy_name = connection.config_get("maxmemory-policy")?;
    let label = plan
        .label
        .clone()
        .unwrap_or_else(|| format!("server:{policy_name}"));
    let original_maxmemory = connection.config_get("maxmemory")?;
    let value_len_max = trace
        .requests
        .iter()
        .map(server_value_len)
        .max()
        .unwrap_or(1);
    let value = vec![b'v'; value_len_max];
    connection.expect_ok(&[b"CONFIG", b"SET", b"maxmemory", b"0"])?;
    connection.expect_ok(&[b"FLUSHALL"])?;
    let dataset_bytes = match plan.dataset_bytes {
        Some(bytes) => bytes,
        None => {
            let bytes = load_working_set(&mut connection, trace, &value)?;
            connection.expect_ok(&[b"FLUSHALL"])?;
            bytes
        }
    };
    eprintln!(
        "hitratio: {} on {label}: working set {dataset_bytes} bytes in the server",
        trace.name
    );
    let mut rows = Vec::new();
    for &size_percent in sizes {
        connection.expect_ok(&[b"CONFIG", b"SET", b"maxmemory", b"0"])?;
        connection.expect_ok(&[b"FLUSHALL"])?;
        // The server's own memory (its structures, this client's buffers) is under the limit
        // too, so the cache gets its share on top of what the empty server uses.
        let baseline_bytes = connection.info_field("memory", "used_memory")?;
        let cache_bytes = (dataset_bytes as f64 * size_percent / 100.0) as u64;
        let maxmemory = baseline_bytes + cache_bytes.max(1);
        connection.expect_ok(&[
            b"CONFIG",
            b"SET",
            b"maxmemory",
            maxmemory.to_string().as_bytes(),
        ])?;
        connection.expect_ok(&[b"CONFIG", b"RESETSTAT"])?;
        let started = Instant::now();
        let outcome = replay(&mut connection, trace, plan.pipeline, &value)?;
        let elapsed_s = started.elapsed().as_secs_f64();
        let hits = connection.info_field("stats", "keyspace_hits")?;
        let misses = connection.info_field("stats", "keyspace_misses")?;
        let evictions = connection.info_field("stats", "evicted_keys")?;
        let keys_held = match connection.command(&[b"DBSIZE"])? {
            Owned::Integer(count) if count >= 0 => count as u64,
            other => return Err(format!("DBSIZE replied {other:?}")),
        };
        if (hits, misses) != (outcome.hits, outcome.misses) {
            return Err(format!(
                "the server counts {hits} hits and {misses} misses, the client saw {} and {}",
                outcome.hits, outcome.misses
            ));
        }
        if outcome.refused_writes > 0 {
            eprintln!(
                "hitratio: {} SETs refused with OOM (nothing evictable under {policy_name})",
                outcome.refused_writes
            );
        }
        eprintln!(
            "hitratio: {} {size_percent}% maxmemory {maxmemory} (baseline {baseline_bytes}): hit ratio {:.4}, {evictions} evicted, {keys_held} keys held, {:.0} requests/s",
            trace.name,
            hits as f64 / (hits + misses).max(1) as f64,
            trace.requests.len() as f64 / elapsed_s
        );
        rows.push(Row {
            trace: trace.name.clone(),
            policy: label.clone(),
            source: "server".to_string(),
            size_percent,
            capacity_bytes: maxmemory,
            requests: trace.requests.len() as u64,
            hits,
            misses,
            evictions,
            keys_held,
        });
    }
    connection.expect_ok(&[b"FLUSHALL"])?;
    connection.expect_ok(&[
        b"CONFIG",
        b"SET",
        b"maxmemory",
        original_maxmemory.as_bytes(),
    ])?;
    Ok(rows)
}

/// The distinct values of `key` over `rows`, in first-seen order.
fn distinct<T: PartialEq + Clone>(rows: &[Row], key: impl Fn(&Row) -> T) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    for row in rows {
        let value = key(row);
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

fn size_label(size_percent: f64) -> String {
    format!("{size_percent}%")
}

fn row_label(row: &Row) -> String {
    if row.source == "server" {
        format!("{} (server)", row.policy)
    } else {
        row.policy.clone()
    }
}

/// Hit ratios in percent: one table per trace, a row per policy, a column per size; the best
/// in-process figure of each column in bold.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut text = String::new();
    for trace in distinct(rows, |row| row.trace.clone()) {
        let of_trace: Vec<&Row> = rows.iter().filter(|row| row.trace == trace).collect();
        let owned: Vec<Row> = of_trace.iter().map(|row| (*row).clone()).collect();
        let mut sizes = distinct(&owned, |row| row.size_percent);
        sizes.sort_by(f64::total_cmp);
        let requests = of_trace.first().map_or(0, |row| row.requests);
        text.push_str(&format!(
            "\n**{trace}** ({requests} requests; hit ratio in %, by cache size in % of the working set)\n\n| policy |"
        ));
        for &size in &sizes {
            text.push_str(&format!(" {} |", size_label(size)));
        }
        text.push_str("\n|---|");
        text.push_str(&"---:|".repeat(sizes.len()));
        text.push('\n');
        let best: Vec<f64> = sizes
            .iter()
            .map(|&size| {
                of_trace
                    .iter()
                    .filter(|row| row.size_percent == size && row.source == "in-process")
                    .map(|row| row.hit_ratio())
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        for label in distinct(&owned, row_label) {
            text.push_str(&format!("| {label} |"));
            for (column, &size) in sizes.iter().enumerate() {
                let cell = of_trace
                    .iter()
                    .find(|row| row_label(row) == label && row.size_percent == size);
                match cell {
                    Some(row) => {
                        let figure = format!("{:.2}", row.hit_ratio() * 100.0);
                        let is_best = row.source == "in-process" && row.hit_ratio() >= best[column];
                        if is_best {
                            text.push_str(&format!(" **{figure}** |"));
                        } else {
                            text.push_str(&format!(" {figure} |"));
                        }
                    }
                    None => text.push_str(" |"),
                }
            }
            text.push('\n');
        }
    }
    text
}

/// Points of hit ratio (percent) within which a policy counts as matching the best one.
const NEAR_BEST_POINTS: f64 = 1.0;

/// One line per in-process policy over every (trace, size) cell: its mean hit ratio, the cells
/// where it is within `NEAR_BEST_POINTS` of the best policy, and its largest gap to the best.
/// This is what picks a default policy.
pub fn summary_table(rows: &[Row]) -> String {
    let simulated: Vec<Row> = rows
        .iter()
        .filter(|row| row.source == "in-process")
        .cloned()
        .collect();
    if simulated.is_empty() {
        return String::new();
    }
    let cells = distinct(&simulated, |row| {
        (row.trace.clone(), row.size_percent.to_bits())
    });
    let best = |trace: &str, size_bits: u64| {
        simulated
            .iter()
            .filter(|row| row.trace == trace && row.size_percent.to_bits() == size_bits)
            .map(Row::hit_ratio)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let mut text = format!(
        "\n**Summary** (in-process, {} cells of trace x size)\n\n| policy | mean hit ratio % | cells within {NEAR_BEST_POINTS} point of the best | largest gap to the best, points |\n|---|---:|---:|---:|\n",
        cells.len()
    );
    for policy in distinct(&simulated, |row| row.policy.clone()) {
        let mine: Vec<&Row> = simulated
            .iter()
            .filter(|row| row.policy == policy)
            .collect();
        let mean = mine.iter().map(|row| row.hit_ratio()).sum::<f64>() / mine.len() as f64;
        let gaps: Vec<f64> = mine
            .iter()
            .map(|row| (best(&row.trace, row.size_percent.to_bits()) - row.hit_ratio()) * 100.0)
            .collect();
        let near = gaps.iter().filter(|&&gap| gap <= NEAR_BEST_POINTS).count();
        let worst = gaps.iter().copied().fold(0.0f64, f64::max);
        text.push_str(&format!(
            "| {policy} | {:.2} | {near}/{} | {worst:.2} |\n",
            mean * 100.0,
            mine.len()
        ));
    }
    text
}

/// Colours of the plot's lines, one per policy label in order (16 distinct hues, then reused).
const LINE_COLORS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(174, 199, 232),
    RGBColor(255, 127, 14),
    RGBColor(255, 187, 120),
    RGBColor(44, 160, 44),
    RGBColor(152, 223, 138),
    RGBColor(148, 103, 189),
    RGBColor(197, 176, 213),
    RGBColor(140, 86, 75),
    RGBColor(196, 156, 148),
    RGBColor(227, 119, 194),
    RGBColor(214, 39, 40),
    RGBColor(0, 0, 0),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Pixel size of one panel of the plot.
const PANEL_SIZE: (u32, u32) = (760, 460);

/// Writes one panel per trace: hit ratio against cache size, a line per policy.
///
/// # Errors
/// Returns a message when the file cannot be written.
pub fn write_plot(path: &Path, rows: &[Row]) -> Result<(), String> {
    draw_plot(path, rows).map_err(|error| format!("cannot draw {}: {error}", path.display()))
}

fn draw_plot(path: &Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    let traces = distinct(rows, |row| row.trace.clone());
    let labels = distinct(rows, row_label);
    let columns = if traces.len() > 1 { 2 } else { 1 };
    let panel_rows = traces.len().div_ceil(columns);
    let size = (
        PANEL_SIZE.0 * columns as u32,
        PANEL_SIZE.1 * panel_rows as u32,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((panel_rows, columns));
    for (trace, panel) in traces.iter().zip(panels.iter()) {
        let of_trace: Vec<Row> = rows
            .iter()
            .filter(|row| &row.trace == trace)
            .cloned()
            .collect();
        let mut sizes = distinct(&of_trace, |row| row.size_percent);
        sizes.sort_by(f64::total_cmp);
        let top = of_trace
            .iter()
            .map(|row| row.hit_ratio() * 100.0)
            .fold(0.0f64, f64::max);
        let x_labels: Vec<String> = sizes.iter().map(|&size| size_label(size)).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{trace}: hit ratio by cache size"),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(
                -0.2f64..(sizes.len() as f64 - 0.8),
                0f64..(top * 1.1).max(1.0),
            )?;
        chart
            .configure_mesh()
            .x_labels(sizes.len())
            .x_label_formatter(&|x| {
                let index = x.round();
                if (x - index).abs() < 1e-6 && index >= 0.0 {
                    x_labels.get(index as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("cache size, % of the working set")
            .y_desc("hit ratio, %")
            .draw()?;
        for (label_index, label) in labels.iter().enumerate() {
            let color = LINE_COLORS[label_index % LINE_COLORS.len()];
            let points: Vec<(f64, f64)> = sizes
                .iter()
                .enumerate()
                .filter_map(|(index, &size)| {
                    of_trace
                        .iter()
                        .find(|row| &row_label(row) == label && row.size_percent == size)
                        .map(|row| (index as f64, row.hit_ratio() * 100.0))
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let is_server = label.ends_with("(server)");
            let width = if is_server { 3 } else { 1 };
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(width))
                });
            chart.draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 3, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle_record(time_s: u32, id: u64, size: u32) -> Vec<u8> {
        let mut record = Vec::new();
        record.extend_from_slice(&time_s.to_le_bytes());
        record.extend_from_slice(&id.to_le_bytes());
        record.extend_from_slice(&size.to_le_bytes());
        record.extend_from_slice(&(-1i64).to_le_bytes());
        record
    }

    fn request(key: u64, size_bytes: u32, time_ms: Option<u64>) -> Request {
        Request {
            key,
            size_bytes,
            time_ms,
        }
    }

    #[test]
    fn reads_every_trace_format() {
        let oracle = [
            oracle_record(100, 7, 300),
            oracle_record(102, 9, 0),
            oracle_record(105, 7, 300),
        ]
        .concat();
        let cases: Vec<(&str, Vec<u8>, TraceFormat, Vec<Request>)> = vec![
            (
                "one key per line, keys numbered by first appearance",
                b"alpha\nbeta\n\nalpha\n# comment\ngamma\n".to_vec(),
                TraceFormat::Lines,
                vec![
                    request(0, 10, None),
                    request(1, 10, None),
                    request(0, 10, None),
                    request(2, 10, None),
                ],
            ),
            (
                "csv with a header and sizes, time from the first row",
                b"timestamp,key,size\n10,a,100\n10.5,b,0\n12,a,100\n".to_vec(),
                TraceFormat::Csv,
                vec![
                    request(0, 100, Some(0)),
                    request(1, 1, Some(500)),
                    request(0, 100, Some(2_000)),
                ],
            ),
            (
                "csv without sizes takes the value size",
                b"1,x\n2,y\n".to_vec(),
                TraceFormat::Csv,
                vec![request(0, 10, Some(0)), request(1, 10, Some(1_000))],
            ),
            (
                "oracleGeneral records, zero sizes counted as one byte",
                oracle,
                TraceFormat::Oracle,
                vec![
                    request(7, 300, Some(0)),
                    request(9, 1, Some(2_000)),
                    request(7, 300, Some(5_000)),
                ],
            ),
        ];
        for (name, bytes, format, expected) in cases {
            assert_eq!(
                parse_trace(&bytes, format, 10, u64::MAX).unwrap(),
                expected,
                "{name}"
            );
            let limited = parse_trace(&bytes, format, 10, 2).unwrap();
            assert_eq!(limited, expected[..2], "{name}: --requests limits");
        }
    }

    #[test]
    fn refuses_malformed_traces() {
        let cases: &[(&[u8], TraceFormat, &str)] = &[
            (&[0u8; 25], TraceFormat::Oracle, "not a whole number"),
            (
                b"1,a\nx,b\n",
                TraceFormat::Csv,
                "line 2: 'x' is not a timestamp",
            ),
            (
                b"1,a,big\n",
                TraceFormat::Csv,
                "line 1: 'big' is not a size",
            ),
            (b"1\n", TraceFormat::Csv, "line 1: no key"),
        ];
        for &(bytes, format, message) in cases {
            let error = parse_trace(bytes, format, 10, u64::MAX).unwrap_err();
            assert!(error.contains(message), "{error:?} should say {message:?}");
        }
    }

    #[test]
    fn generated_traces_have_their_shape() {
        let keys = 1_000;
        let top_share = |name: &str| {
            let trace = generate(name, keys, 50_000, 16, 3).unwrap();
            trace
                .requests
                .iter()
                .filter(|request| request.key == 0)
                .count() as f64
                / 50_000.0
        };
        // P(top key) = 1 / H(keys, skew): about 0.134 at skew 1.0 and 1000 keys.
        let share = top_share("zipf-1.0");
        assert!(
            (0.12..0.15).contains(&share),
            "zipf-1.0 top key share {share}"
        );
        assert!(top_share("zipf-1.2") > share && share > top_share("zipf-0.6"));
        let again = generate("zipf-0.8", keys, 1_000, 16, 3).unwrap();
        assert_eq!(
            again.requests,
            generate("zipf-0.8", keys, 1_000, 16, 3).unwrap().requests,
            "seeded"
        );
        let looped = generate("loop", keys, 2_500, 16, 3).unwrap();
        assert_eq!(looped.requests[1_999].key, 999);
        assert_eq!(looped.working_set().0, keys);
        let scan = generate("zipf-scan", keys, 100_000, 16, 3).unwrap();
        let cold = scan
            .requests
            .iter()
            .filter(|request| request.key >= keys)
            .count();
        assert_eq!(cold, 20_000, "a fifth of the requests scan");
        assert!(generate("zipf-x", keys, 10, 16, 3).is_err());
    }

    fn settings() -> SimulationSettings {
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

    #[test]
    fn tables_and_plots_carry_every_row() {
        let trace = generate("zipf-1.0", 500, 5_000, 16, 5).unwrap();
        let mut rows = Vec::new();
        for policy in [Policy::AllKeysLru, Policy::WTinyLfu] {
            for size in [1.0, 10.0] {
                rows.push(simulate(&trace, policy, size, &settings()));
            }
        }
        let mut server = rows[0].clone();
        server.policy = "server:allkeys-lru".to_string();
        server.source = "server".to_string();
        rows.push(server);
        let table = markdown_table(&rows);
        for label in [
            "| allkeys-lru |",
            "| w-tinylfu |",
            "| server:allkeys-lru (server) |",
            "| 1% | 10% |",
        ] {
            assert!(table.contains(label), "{label} missing from\n{table}");
        }
        assert_eq!(table.matches("**").count() % 2, 0);
        let summary = summary_table(&rows);
        assert!(
            summary.contains("| w-tinylfu |") && summary.contains("/2 |"),
            "{summary}"
        );
        assert!(
            !summary.contains("(server)"),
            "servers are not summarised: {summary}"
        );
        let path = std::env::temp_dir().join(format!("ember-hitratio-{}.svg", std::process::id()));
        write_plot(&path, &rows).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("w-tinylfu") && svg.contains("zipf-1.0"));
        std::fs::remove_file(path).ok();
    }
}
