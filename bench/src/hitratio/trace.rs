//! Traces: the request type, trace files (one key per line, CSV, oracleGeneral) and the
//! generated ones (Zipf, Zipf with scans, loop).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;

/// Traces generated when `--traces` is not given.
pub(super) const GENERATED_TRACES: [&str; 6] = [
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
    pub(super) fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "lines" => Ok(TraceFormat::Lines),
            "csv" => Ok(TraceFormat::Csv),
            "oracle" | "oracleGeneral" => Ok(TraceFormat::Oracle),
            other => Err(format!(
                "--trace-format: '{other}' is not lines, csv or oracle"
            )),
        }
    }

    pub(super) fn from_path(path: &Path) -> Self {
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
pub(super) fn key_name(key: u64) -> String {
    format!("k:{key}")
}

/// In-process size of a generated key: its name and its value, what a server stores besides
/// its own overhead.
pub(super) fn object_size(key: u64, value_size: u32) -> u32 {
    key_name(key).len() as u32 + value_size
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
}
