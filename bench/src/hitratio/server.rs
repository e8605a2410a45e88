//! Server mode: the same requests through a real server over RESP, its maxmemory set per size,
//! its hit counters read back from INFO.

use super::trace::{key_name, Request, Trace};
use super::Row;
use crate::cli::Flags;
use crate::reply::{self, Reply};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Largest value written in server mode: trace files can name objects of gigabytes; the cap
/// keeps one SET within what servers accept by default (proto-max-bulk-len is 512 MB).
const SERVER_VALUE_BYTES_MAX: u32 = 1 << 20;

/// Most bytes of SET commands sent before reading their replies: Redis reads 16 KiB at a time
/// (its `PROTO_IOBUF_LEN`), and a longer pipeline grows the client's query buffer, which
/// `used_memory` counts and Redis shrinks later at its own pace. Kept under it, the client's
/// buffers weigh the same when the baseline is measured and while keys are evicted, so the
/// bytes left for keys are the bytes asked for.
const SET_BATCH_BYTES_MAX: usize = 16 << 10;

/// A key the warm-up before each replay writes and flushes (no trace names keys this way).
const WARM_KEY: &[u8] = b"ember-bench:hitratio:warm-up";

/// Longest a server may take to answer one batch before the run fails.
const SERVER_TIMEOUT: Duration = Duration::from_secs(30);

/// What server mode needs from the flags.
pub(super) struct ServerPlan {
    /// Servers replayed one after the other, each at every size; the first is the reference
    /// whose working set sets the bytes for all (unless `dataset_bytes` is given).
    addresses: Vec<String>,
    policy: Option<String>,
    /// One label per server, or none (then each is named from INFO and its policy).
    labels: Option<Vec<String>>,
    dataset_bytes: Option<u64>,
    pipeline: usize,
}

impl ServerPlan {
    pub(super) fn from_flags(flags: &Flags, addresses: &str) -> Result<Self, String> {
        let pipeline = flags.get_or("pipeline", 64usize)?;
        if pipeline == 0 {
            return Err("--pipeline must be positive".to_string());
        }
        let split = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect()
        };
        let addresses = split(addresses);
        if addresses.is_empty() {
            return Err("--server: no address".to_string());
        }
        let labels = flags.text("label").map(split);
        if let Some(labels) = &labels {
            if labels.len() != addresses.len() {
                return Err(format!(
                    "--label names {} servers, --server lists {}",
                    labels.len(),
                    addresses.len()
                ));
            }
        }
        Ok(ServerPlan {
            addresses,
            policy: flags.text("server-policy").map(str::to_string),
            labels,
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
    let requests: Vec<Request> = firsts.into_iter().copied().collect();
    let refused = set_all(connection, &requests, value)?;
    if refused > 0 {
        return Err(format!(
            "{refused} SETs refused with OOM while loading the working set without maxmemory"
        ));
    }
    let after = connection.info_field("memory", "used_memory")?;
    if after <= before {
        return Err(format!(
            "used_memory did not grow while loading {} keys ({before} -> {after})",
            requests.len()
        ));
    }
    Ok(after - before)
}

/// Writes every request's key, pipelined in batches of at most `SET_BATCH_BYTES_MAX` bytes
/// (at least one command each), and returns how many SETs were refused with `-OOM`.
fn set_all(connection: &mut Connection, requests: &[Request], value: &[u8]) -> Result<u64, String> {
    let mut refused = 0;
    let mut output = Vec::new();
    let mut pending = 0;
    for (index, request) in requests.iter().enumerate() {
        let name = key_name(request.key);
        encode(
            &mut output,
            &[b"SET", name.as_bytes(), &value[..server_value_len(request)]],
        );
        pending += 1;
        let next_len = requests
            .get(index + 1)
            .map_or(usize::MAX, |next| server_value_len(next) + 64);
        if output.len().saturating_add(next_len) > SET_BATCH_BYTES_MAX {
            connection.send(&output)?;
            output.clear();
            for _ in 0..pending {
                match connection.read_reply()? {
                    Owned::Simple(text) if text == "OK" => {}
                    Owned::Error(text) if text.starts_with("OOM") => refused += 1,
                    other => return Err(format!("SET replied {other:?}")),
                }
            }
            pending = 0;
        }
    }
    debug_assert_eq!(pending, 0, "the last request always flushes");
    Ok(refused)
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
        outcome.refused_writes += set_all(connection, &missed, value)?;
    }
    Ok(outcome)
}

/// Replays `trace` through every server of `plan` at every size, all at the same bytes for
/// keys: the working set as the first server stores it (or `--dataset-bytes`).
pub(super) fn replay_server(
    plan: &ServerPlan,
    trace: &Trace,
    sizes: &[f64],
) -> Result<Vec<Row>, String> {
    let value_len_max = trace
        .requests
        .iter()
        .map(server_value_len)
        .max()
        .unwrap_or(1);
    let value = vec![b'v'; value_len_max];
    let mut reference_bytes = plan.dataset_bytes;
    let mut rows = Vec::new();
    for (index, address) in plan.addresses.iter().enumerate() {
        let label = plan.labels.as_ref().map(|labels| labels[index].clone());
        let mut server = prepare_server(address, plan.policy.as_deref(), label)?;
        // Each server's own working set, for its bytes per key; the first one's (or the
        // flag's) sets every server's maxmemory.
        let own_bytes = load_working_set(&mut server.connection, trace, &value)?;
        server.connection.expect_ok(&[b"FLUSHALL"])?;
        let dataset_bytes = *reference_bytes.get_or_insert(own_bytes);
        eprintln!(
            "hitratio: {} on {}: working set {own_bytes} bytes in this server ({:.1} a key), {dataset_bytes} bytes the sizes are fractions of",
            trace.name,
            server.label,
            own_bytes as f64 / trace.working_set().0.max(1) as f64
        );
        for &size_percent in sizes {
            let mut row = replay_size(&server, plan, trace, &value, size_percent, dataset_bytes)?;
            row.server_dataset_bytes = own_bytes;
            row.dataset_bytes = dataset_bytes;
            rows.push(row);
        }
        server.finish()?;
    }
    Ok(rows)
}

/// A server under test: its address, label, policy and the maxmemory to restore.
struct Server {
    address: String,
    label: String,
    policy_name: String,
    original_maxmemory: String,
    connection: Connection,
}

impl Server {
    fn finish(mut self) -> Result<(), String> {
        self.connection.expect_ok(&[b"FLUSHALL"])?;
        self.connection.expect_ok(&[
            b"CONFIG",
            b"SET",
            b"maxmemory",
            self.original_maxmemory.as_bytes(),
        ])
    }
}

/// Connects, sets the policy if asked, lifts maxmemory and empties the server.
fn prepare_server(
    address: &str,
    policy: Option<&str>,
    label: Option<String>,
) -> Result<Server, String> {
    let mut connection = Connection::open(address)?;
    if let Some(policy) = policy {
        connection.expect_ok(&[b"CONFIG", b"SET", b"maxmemory-policy", policy.as_bytes()])?;
    }
    let policy_name = connection.config_get("maxmemory-policy")?;
    let label = match label {
        Some(label) => label,
        None => format!("{}:{policy_name}", server_kind(&mut connection)?),
    };
    let original_maxmemory = connection.config_get("maxmemory")?;
    connection.expect_ok(&[b"CONFIG", b"SET", b"maxmemory", b"0"])?;
    connection.expect_ok(&[b"FLUSHALL"])?;
    Ok(Server {
        address: address.to_string(),
        label,
        policy_name,
        original_maxmemory,
        connection,
    })
}

/// "ember" when INFO server names an Ember version, "redis" otherwise.
fn server_kind(connection: &mut Connection) -> Result<&'static str, String> {
    let Owned::Bulk(text) = connection.command(&[b"INFO", b"server"])? else {
        return Err("INFO server did not reply with a bulk string".to_string());
    };
    let is_ember = String::from_utf8_lossy(&text)
        .lines()
        .any(|line| line.starts_with("ember_version:"));
    Ok(if is_ember { "ember" } else { "redis" })
}

/// One replay of `trace` at `size_percent` of `dataset_bytes` on an empty server.
fn replay_size(
    server: &Server,
    plan: &ServerPlan,
    trace: &Trace,
    value: &[u8],
    size_percent: f64,
    dataset_bytes: u64,
) -> Result<Row, String> {
    // A new connection for each size: an old one's query buffer can hold a large pipeline's
    // allocation that the server would count in the baseline and free during the replay.
    let mut connection = Connection::open(&server.address)?;
    connection.expect_ok(&[b"CONFIG", b"SET", b"maxmemory", b"0"])?;
    connection.expect_ok(&[b"FLUSHALL"])?;
    // Statistics are reset before the baseline, then every command this replay sends is used
    // once: both servers keep a latency histogram per command used (about 24 KiB each), and
    // CONFIG RESETSTAT frees them. Reset after the baseline, the commands used before it gave
    // their histograms' bytes to the cache (Redis ~100 KB, Ember ~120 KB, depending on what
    // each had run), and the replay's own first GET, SET and INFO took them back.
    connection.expect_ok(&[b"CONFIG", b"RESETSTAT"])?;
    connection.command(&[b"GET", WARM_KEY])?;
    connection.expect_ok(&[b"SET", WARM_KEY, b"x"])?;
    connection.command(&[b"DBSIZE"])?;
    connection.command(&[b"CONFIG", b"GET", b"maxmemory"])?;
    connection.expect_ok(&[b"FLUSHALL"])?;
    // Counted from here (the warm-up's GET was a miss); these are INFO's own first use too.
    let hits_before = connection.info_field("stats", "keyspace_hits")?;
    let misses_before = connection.info_field("stats", "keyspace_misses")?;
    let evictions_before = connection.info_field("stats", "evicted_keys")?;
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
    let started = Instant::now();
    let outcome = replay(&mut connection, trace, plan.pipeline, value)?;
    let elapsed_s = started.elapsed().as_secs_f64();
    let hits = connection.info_field("stats", "keyspace_hits")? - hits_before;
    let misses = connection.info_field("stats", "keyspace_misses")? - misses_before;
    let evictions = connection.info_field("stats", "evicted_keys")? - evictions_before;
    let used_bytes = connection.info_field("memory", "used_memory")?;
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
            "hitratio: {} SETs refused with OOM (nothing evictable under {})",
            outcome.refused_writes, server.policy_name
        );
    }
    eprintln!(
        "hitratio: {} {} {size_percent}% maxmemory {maxmemory} (baseline {baseline_bytes}, used at the end {used_bytes}): hit ratio {:.4}, {evictions} evicted, {keys_held} keys held, {:.0} requests/s",
        trace.name,
        server.label,
        hits as f64 / (hits + misses).max(1) as f64,
        trace.requests.len() as f64 / elapsed_s
    );
    Ok(Row {
        trace: trace.name.clone(),
        policy: server.label.clone(),
        source: "server".to_string(),
        size_percent,
        capacity_bytes: maxmemory,
        requests: trace.requests.len() as u64,
        hits,
        misses,
        evictions,
        keys_held,
        dataset_bytes,
        server_dataset_bytes: 0,
    })
}
