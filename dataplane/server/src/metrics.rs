//! The Prometheus endpoint: `GET /metrics` on `--metrics-port`, served by shard 0 in its
//! background task queue. Figures are gathered from every shard by message at scrape time, so
//! the request path pays nothing for them beyond the counters it already keeps.

use std::fmt::Write as _;
use std::rc::Rc;

use crate::commands::server::admin::{gather_info, used_memory_bytes};
use crate::runtime::{self, AsyncReadExt, AsyncWriteExt, TcpListener, TcpStream};
use crate::shard::Shard;

/// Longest HTTP request head read; scrapers send a few hundred bytes.
const REQUEST_HEAD_LEN_MAX: usize = 8 * 1024;

/// Upper bounds (seconds) of the command latency histogram buckets.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.000_001, 0.000_002, 0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_2, 0.000_5,
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
];

/// Serves the endpoint on `listener` until the process ends.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                runtime::spawn(answer(shard.clone(), stream));
            }
            Err(error) => {
                eprintln!("ember: metrics accept failed: {error}");
                runtime::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn answer(shard: Rc<Shard>, mut stream: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > REQUEST_HEAD_LEN_MAX {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = request_line.split(|&b| b == b' ');
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let response = if method == b"GET" && path == b"/metrics" {
        let body = render(&shard).await;
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    } else {
        let body = "not found: Ember serves GET /metrics\n";
        format!("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }
}

/// The exposition text of every metric.
pub async fn render(shard: &Rc<Shard>) -> String {
    let (total, per_shard) = gather_info(shard, None).await;
    let counters = total.counters;
    let mut text = Exposition(String::with_capacity(16 * 1024));
    text.single("ember_up", "gauge", "1 while Ember serves.", 1);
    text.single(
        "ember_shards",
        "gauge",
        "Shards (one executor thread each).",
        shard.count(),
    );
    text.family(
        "ember_commands_total",
        "counter",
        "Commands run, by command.",
    );
    for (name, stat) in &total.commands {
        text.sample(
            "ember_commands_total",
            &format!("command=\"{name}\""),
            stat.calls,
        );
    }
    text.family(
        "ember_command_failed_total",
        "counter",
        "Commands that replied with an error, by command.",
    );
    for (name, stat) in &total.commands {
        text.sample(
            "ember_command_failed_total",
            &format!("command=\"{name}\""),
            stat.failed_calls,
        );
    }
    text.family(
        "ember_command_rejected_total",
        "counter",
        "Commands refused before running (arity, auth), by command.",
    );
    for (name, stat) in &total.commands {
        text.sample(
            "ember_command_rejected_total",
            &format!("command=\"{name}\""),
            stat.rejected_calls,
        );
    }
    text.family(
        "ember_command_duration_seconds",
        "histogram",
        "Time to run a command, by command.",
    );
    for (name, stat) in &total.commands {
        let histogram = &stat.latency_us;
        for bound_s in LATENCY_BUCKETS_S {
            let bound_us = (bound_s * 1e6).round() as u64;
            let count = histogram.count_between(0, bound_us);
            text.sample(
                "ember_command_duration_seconds_bucket",
                &format!("command=\"{name}\",le=\"{bound_s}\""),
                count,
            );
        }
        text.sample(
            "ember_command_duration_seconds_bucket",
            &format!("command=\"{name}\",le=\"+Inf\""),
            histogram.len(),
        );
        text.sample(
            "ember_command_duration_seconds_sum",
            &format!("command=\"{name}\""),
            stat.usec as f64 / 1e6,
        );
        text.sample(
            "ember_command_duration_seconds_count",
            &format!("command=\"{name}\""),
            histogram.len(),
        );
    }
    text.family(
        "ember_error_replies_total",
        "counter",
        "Error replies, by error code.",
    );
    for (code, count) in &total.errors {
        text.sample(
            "ember_error_replies_total",
            &format!("code=\"{}\"", code.replace(['"', '\\'], "")),
            count,
        );
    }
    text.single(
        "ember_keyspace_hits_total",
        "counter",
        "Reads that found their key.",
        counters.keyspace_hits,
    );
    text.single(
        "ember_keyspace_misses_total",
        "counter",
        "Reads that did not find their key.",
        counters.keyspace_misses,
    );
    text.family("ember_keys", "gauge", "Keys stored, by database.");
    for (db, (keys, _)) in total.databases.iter().enumerate() {
        if *keys > 0 {
            text.sample("ember_keys", &format!("db=\"{db}\""), keys);
        }
    }
    text.family(
        "ember_keys_with_ttl",
        "gauge",
        "Keys with a TTL, by database.",
    );
    for (db, (_, expires)) in total.databases.iter().enumerate() {
        if *expires > 0 {
            text.sample("ember_keys_with_ttl", &format!("db=\"{db}\""), expires);
        }
    }
    text.single(
        "ember_memory_used_bytes",
        "gauge",
        "Bytes allocated, as jemalloc reports them.",
        used_memory_bytes(),
    );
    text.single(
        "ember_maxmemory_bytes",
        "gauge",
        "Configured memory limit (0 = none).",
        shard.config.borrow().maxmemory,
    );
    text.single(
        "ember_expired_keys_total",
        "counter",
        "Keys removed because their TTL passed.",
        total.expired_keys,
    );
    text.single(
        "ember_keyspace_changes_total",
        "counter",
        "Changes to keys since start: values or expiries changed, keys removed by commands (INFO persistence's rdb_changes_since_last_save).",
        total.changes,
    );
    text.single(
        "ember_evicted_keys_total",
        "counter",
        "Keys evicted for memory.",
        counters.evicted_keys,
    );
    text.single(
        "ember_tinylfu_window_keys",
        "gauge",
        "New keys allkeys-tinylfu's admission window protects from eviction (INFO stats' tinylfu_window_keys).",
        total.tinylfu_window.keys,
    );
    text.single(
        "ember_tinylfu_window_share",
        "gauge",
        "The admission window's share of the keys held, mean over shards (INFO stats' tinylfu_window_share).",
        format!("{:.4}", total.tinylfu_window.share()),
    );
    text.single(
        "ember_client_output_limit_disconnections_total",
        "counter",
        "Clients closed for their client-output-buffer-limit.",
        crate::limits::output_limit_disconnections(),
    );
    text.single(
        "ember_client_memory_bytes",
        "gauge",
        "Query and output buffers of all clients (what maxmemory-clients limits).",
        crate::limits::client_memory(),
    );
    text.single(
        "ember_evicted_clients_total",
        "counter",
        "Clients evicted by maxmemory-clients.",
        crate::limits::evicted_clients(),
    );
    text.single(
        "ember_connected_clients",
        "gauge",
        "Connected clients.",
        total.clients,
    );
    text.single(
        "ember_connections_received_total",
        "counter",
        "Connections accepted.",
        counters.connections_received,
    );
    text.single(
        "ember_rejected_connections_total",
        "counter",
        "Connections refused at maxclients.",
        counters.rejected_connections,
    );
    text.single(
        "ember_net_input_bytes_total",
        "counter",
        "Bytes read from clients.",
        counters.net_input_bytes,
    );
    text.single(
        "ember_net_output_bytes_total",
        "counter",
        "Bytes written to clients.",
        counters.net_output_bytes,
    );
    text.single(
        "ember_cross_shard_hops_total",
        "counter",
        "Requests sent from one shard to another.",
        counters.cross_shard_hops,
    );
    text.family(
        "ember_shard_busy_seconds_total",
        "counter",
        "Time each shard's executor spent running tasks.",
    );
    for (index, info) in per_shard.iter().enumerate() {
        text.sample(
            "ember_shard_busy_seconds_total",
            &format!("shard=\"{index}\""),
            info.busy_us as f64 / 1e6,
        );
    }
    text.family(
        "ember_shard_commands_total",
        "counter",
        "Commands run, by shard.",
    );
    for (index, info) in per_shard.iter().enumerate() {
        text.sample(
            "ember_shard_commands_total",
            &format!("shard=\"{index}\""),
            info.counters.commands_processed,
        );
    }
    // Traffic protection: the counters of INFO's `# Protection` section (process-wide), each
    // as `ember_protection_<name>_total`.
    for (name, value) in shard.shared.protection.counters.info_lines() {
        text.single(
            &format!("ember_protection_{name}_total"),
            "counter",
            &format!("Traffic protection: INFO protection's {name}."),
            value,
        );
    }
    // The GPU embedding cache (INFO's `# GPU` section), over every shard; zero until a RECOMMEND on the native
    // backend starts it.
    let gpu = total.gpu_cache;
    for (name, kind, help, value) in [
        (
            "ember_gpu_cache_hits_total",
            "counter",
            "Embedding rows RECOMMEND found in GPU memory.",
            gpu.hits,
        ),
        (
            "ember_gpu_cache_misses_total",
            "counter",
            "Embedding rows RECOMMEND copied to GPU memory from the keyspace.",
            gpu.misses,
        ),
        (
            "ember_gpu_cache_evictions_total",
            "counter",
            "GPU-resident embedding rows dropped to make room.",
            gpu.evictions,
        ),
        (
            "ember_gpu_cache_invalidations_total",
            "counter",
            "GPU-resident embedding rows dropped because their key was written or removed.",
            gpu.invalidations,
        ),
        (
            "ember_gpu_cache_resident_rows",
            "gauge",
            "Embedding rows resident in GPU memory.",
            gpu.resident_rows,
        ),
        (
            "ember_gpu_cache_resident_bytes",
            "gauge",
            "Bytes of GPU memory the resident embedding rows fill.",
            gpu.resident_bytes,
        ),
        (
            "ember_gpu_cache_capacity_bytes",
            "gauge",
            "Bytes of GPU memory the embedding tables hold.",
            gpu.capacity_bytes,
        ),
        (
            "ember_gpu_slot_calls_total",
            "counter",
            "RECOMMEND chunks scored from the GPU cache's slots (rows stay on the device).",
            gpu.slot_calls,
        ),
        (
            "ember_gpu_slot_samples_total",
            "counter",
            "Candidates scored from the GPU cache's slots.",
            gpu.slot_samples,
        ),
        (
            "ember_gpu_slot_fallbacks_total",
            "counter",
            "RECOMMEND chunks meant for the slot path that took the pooled path.",
            gpu.slot_fallbacks,
        ),
    ] {
        text.single(name, kind, help, value);
    }
    text.single(
        "ember_gpu_cache_hit_ratio",
        "gauge",
        "GPU embedding cache hits over lookups (0 before any).",
        gpu.hit_ratio(),
    );
    text.0
}
