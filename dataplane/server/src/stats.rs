//! A shard's counters, per-command statistics with latency histograms, the slow log and the
//! latency monitor. Plain `Cell`s: one executor owns them; INFO and /metrics gather them from
//! every shard by message.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Largest command latency a histogram records, microseconds (1,000 s); longer ones saturate.
/// With two significant digits the counts then take 24 KiB per command used, as Redis's
/// (1 ns to 1 s); an hour took 26 KiB, jemalloc's 28 KiB class.
const LATENCY_US_MAX: u64 = 1_000_000_000;
/// Arguments of a command kept in a slow log entry, as Redis's SLOWLOG_ENTRY_MAX_ARGC.
const SLOWLOG_ARGS_MAX: usize = 32;
/// Bytes of one argument kept in a slow log entry, as Redis's SLOWLOG_ENTRY_MAX_STRING.
const SLOWLOG_ARG_LEN_MAX: usize = 128;
/// Samples kept per latency event, as Redis's LATENCY_TS_LEN.
const LATENCY_SAMPLES_MAX: usize = 160;

/// Statistics of one command on one shard.
#[derive(Debug, Clone)]
pub struct CommandStat {
    /// Calls that ran.
    pub calls: u64,
    /// Microseconds spent in them.
    pub usec: u64,
    /// Calls refused before running (arity, auth).
    pub rejected_calls: u64,
    /// Calls that ran and replied with an error.
    pub failed_calls: u64,
    /// Latency of the calls, microseconds; calls of up to [`SHORT_CALL_US`] are counted in
    /// `short_calls` first and added by [`CommandStat::settle`] (every copy taken for INFO or
    /// metrics is settled).
    pub latency_us: Histogram<u64>,
    /// Calls that took 1, 2, ... [`SHORT_CALL_US`] microseconds, not yet in `latency_us`: most
    /// calls take a microsecond or less, and an increment costs a fraction of the histogram's
    /// record (1.2% of a shard's time under pipelined GETs).
    short_calls: [u64; SHORT_CALL_US as usize],
}

/// The longest call counted apart from the histogram until it is read ([`CommandStat`]).
const SHORT_CALL_US: u64 = 4;

impl CommandStat {
    fn new() -> Self {
        Self {
            calls: 0,
            usec: 0,
            rejected_calls: 0,
            failed_calls: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 2).expect("valid bounds"),
            short_calls: [0; SHORT_CALL_US as usize],
        }
    }

    /// Records one call of `duration_us` (under a microsecond counts as one, as Redis's).
    fn record(&mut self, duration_us: u64) {
        let duration_us = duration_us.max(1);
        match self.short_calls.get_mut(duration_us as usize - 1) {
            Some(count) => *count += 1,
            None => self.latency_us.saturating_record(duration_us),
        }
    }

    /// Moves the short calls' counts into the histogram.
    fn settle(&mut self) {
        for (index, count) in self.short_calls.iter_mut().enumerate() {
            if *count > 0 {
                self.latency_us
                    .saturating_record_n(index as u64 + 1, std::mem::take(count));
            }
        }
    }

    /// The calls by power-of-two latency bucket, as LATENCY HISTOGRAM shows them: (1, 2, 4, ...
    /// microseconds, the calls that took at most that long), cumulative, only the buckets
    /// where the count grows. Of a settled copy.
    pub fn cumulative_buckets(&self) -> Vec<(u64, u64)> {
        let total = self.latency_us.len();
        let mut buckets = Vec::new();
        let (mut bound, mut previous) = (1u64, 0u64);
        while previous < total && bound <= LATENCY_US_MAX {
            let cumulative = self.latency_us.count_between(0, bound);
            if cumulative > previous {
                buckets.push((bound, cumulative));
                previous = cumulative;
            }
            bound *= 2;
        }
        buckets
    }

    /// Adds `other`'s figures to these (settled).
    pub fn merge(&mut self, other: &CommandStat) {
        self.calls += other.calls;
        self.usec += other.usec;
        self.rejected_calls += other.rejected_calls;
        self.failed_calls += other.failed_calls;
        let _ = self.latency_us.add(&other.latency_us);
        for (count, other) in self.short_calls.iter_mut().zip(other.short_calls) {
            *count += other;
        }
        self.settle();
    }
}

/// One slow log entry.
#[derive(Debug, Clone)]
pub struct SlowlogEntry {
    /// Unique, increasing per shard (shard index in the low bits keeps them unique overall).
    pub id: u64,
    /// Unix time, seconds.
    pub timestamp_s: u64,
    /// How long the command ran, microseconds.
    pub duration_us: u64,
    /// The command and its arguments, truncated as Redis truncates them.
    pub args: Vec<Vec<u8>>,
    /// The client's address.
    pub client_addr: String,
    /// The client's name.
    pub client_name: String,
}

/// SLOWLOG subcommands sent to every shard.
#[derive(Debug, Clone, Copy)]
pub enum SlowlogRequest {
    /// The newest `count` entries (all when negative).
    Get { count: i64 },
    /// Entry count.
    Len,
    /// Forget every entry.
    Reset,
}

/// One latency event's samples.
#[derive(Debug, Clone)]
pub struct LatencyEvent {
    /// Event name ("command", "expire-cycle").
    pub name: &'static str,
    /// (unix seconds, milliseconds) samples, oldest first.
    pub samples: Vec<(u64, u64)>,
    /// Largest latency ever seen, milliseconds.
    pub max_ms: u64,
}

/// LATENCY subcommands sent to every shard.
#[derive(Debug, Clone)]
pub enum LatencyRequest {
    /// Every event's samples.
    All,
    /// Forget the named events (all when empty); returns how many were reset.
    Reset(Vec<String>),
}

/// Everything INFO and /metrics need from one shard.
#[derive(Debug, Clone, Default)]
pub struct ShardInfo {
    /// Counters.
    pub counters: Counters,
    /// (keys, expires) per database.
    pub databases: Vec<(usize, usize)>,
    /// Per-command figures by command name.
    pub commands: BTreeMap<&'static str, CommandStat>,
    /// Error replies by error code (`ERR`, `WRONGTYPE`).
    pub errors: BTreeMap<String, u64>,
    /// Clients connected to this shard.
    pub clients: usize,
    /// Bytes of this shard's key tables and TTL indexes (not the keys and values): Redis's
    /// hashtable overhead, per database (main, expires).
    pub table_bytes: Vec<(usize, usize)>,
    /// Bytes of this shard's Lua interpreter for scripts.
    pub lua_bytes: usize,
    /// Bytes of this shard's Lua interpreter for function libraries.
    pub library_lua_bytes: usize,
    /// Time the shard's executor spent running tasks, microseconds.
    pub busy_us: u64,
    /// Keys removed by expiry.
    pub expired_keys: u64,
    /// Changes to the keyspace (Redis's dirty counter; `ember_store::KeyspaceStats::changes`).
    pub changes: u64,
    /// Clock cycles the offload spent in simulated hardware.
    pub offload_cycles: u64,
    /// The GPU embedding cache's counters (zero where it has not started).
    pub gpu_cache: crate::inference::gpu_cache::RowCacheStats,
    /// `allkeys-tinylfu`'s admission window (added up over the shards that keep one).
    pub tinylfu_window: TinyLfuWindow,
}

/// INFO's `tinylfu_window_*`: the admission windows of the shards that keep a read history.
#[derive(Debug, Clone, Copy, Default)]
pub struct TinyLfuWindow {
    /// Shards keeping a read history (`allkeys-tinylfu`).
    pub shards: u64,
    /// New keys the windows protect from eviction.
    pub keys: u64,
    /// Keys past the windows waiting to be judged.
    pub candidates: u64,
    /// The windows' shares of their shards' keys, in millionths, added up.
    pub share_ppm_sum: u64,
}

impl TinyLfuWindow {
    /// One shard's window (`None` when it keeps no read history).
    pub fn of(window: Option<ember_store::AdmissionWindow>) -> Self {
        window.map_or_else(Self::default, |window| Self {
            shards: 1,
            keys: window.keys as u64,
            candidates: window.candidates as u64,
            share_ppm_sum: window.share_ppm,
        })
    }

    /// Adds `other` to this.
    pub fn add(&mut self, other: &Self) {
        self.shards += other.shards;
        self.keys += other.keys;
        self.candidates += other.candidates;
        self.share_ppm_sum += other.share_ppm_sum;
    }

    /// The windows' mean share of their shards' keys, as a fraction (0 with no window).
    pub fn share(&self) -> f64 {
        let scale = ember_store::WINDOW_SHARE_SCALE_PPM as f64;
        self.share_ppm_sum as f64 / scale / self.shards.max(1) as f64
    }
}

/// Plain counters of a shard, added up over shards for INFO.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Commands run.
    pub commands_processed: u64,
    /// Connections accepted.
    pub connections_received: u64,
    /// Connections refused at maxclients.
    pub rejected_connections: u64,
    /// Reads that found their key.
    pub keyspace_hits: u64,
    /// Reads that did not.
    pub keyspace_misses: u64,
    /// Bytes read from clients.
    pub net_input_bytes: u64,
    /// Bytes written to clients.
    pub net_output_bytes: u64,
    /// Requests sent to other shards.
    pub cross_shard_hops: u64,
    /// Keys evicted for memory.
    pub evicted_keys: u64,
    /// Errors replied.
    pub error_replies: u64,
    /// GETs answered from the local tier's copies (shard::local_tier).
    pub local_tier_hits: u64,
    /// Copies the local tier holds now.
    pub local_tier_copies: u64,
}

impl Counters {
    /// Adds `other` to these.
    pub fn add(&mut self, other: &Counters) {
        self.commands_processed += other.commands_processed;
        self.connections_received += other.connections_received;
        self.rejected_connections += other.rejected_connections;
        self.keyspace_hits += other.keyspace_hits;
        self.keyspace_misses += other.keyspace_misses;
        self.net_input_bytes += other.net_input_bytes;
        self.net_output_bytes += other.net_output_bytes;
        self.cross_shard_hops += other.cross_shard_hops;
        self.evicted_keys += other.evicted_keys;
        self.error_replies += other.error_replies;
        self.local_tier_hits += other.local_tier_hits;
        self.local_tier_copies += other.local_tier_copies;
    }
}

/// A shard's statistics.
pub struct ShardStats {
    /// Commands run.
    pub commands_processed: Cell<u64>,
    /// Connections accepted.
    pub connections_received: Cell<u64>,
    /// Connections refused.
    pub rejected_connections: Cell<u64>,
    /// Read hits.
    pub keyspace_hits: Cell<u64>,
    /// Read misses.
    pub keyspace_misses: Cell<u64>,
    /// Bytes in.
    pub net_input_bytes: Cell<u64>,
    /// Bytes out.
    pub net_output_bytes: Cell<u64>,
    /// Requests sent to other shards.
    pub cross_shard_hops: Cell<u64>,
    /// Multi-shard reads that met a multi-shard write and ran again under holds.
    pub read_retries: Cell<u64>,
    /// Keys evicted.
    pub evicted_keys: Cell<u64>,
    /// Error replies.
    pub error_replies: Cell<u64>,
    /// By command index; boxed, so that the table costs a word per command (an unboxed
    /// `Option<CommandStat>` is ~170 bytes, and the table grew to the highest index used: a
    /// first GET or SET cost 60-90 KB here, against Redis's 25 KB for the command's histogram,
    /// which a small `maxmemory` felt).
    commands: RefCell<Vec<Option<Box<CommandStat>>>>,
    errors: RefCell<BTreeMap<String, u64>>,
    slowlog: RefCell<VecDeque<SlowlogEntry>>,
    latency: RefCell<BTreeMap<&'static str, LatencyEvent>>,
}

/// The next slow log id, one sequence for every shard as Redis has one log: SLOWLOG GET merges
/// the shards' logs by it, so the entries come newest first across shards too (per-shard
/// sequences put a busy shard's older entries before another shard's newer one).
static SLOWLOG_NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Default for ShardStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardStats {
    /// Zeroed statistics of a shard.
    pub fn new() -> Self {
        Self {
            commands_processed: Cell::new(0),
            connections_received: Cell::new(0),
            rejected_connections: Cell::new(0),
            keyspace_hits: Cell::new(0),
            keyspace_misses: Cell::new(0),
            net_input_bytes: Cell::new(0),
            net_output_bytes: Cell::new(0),
            cross_shard_hops: Cell::new(0),
            read_retries: Cell::new(0),
            evicted_keys: Cell::new(0),
            error_replies: Cell::new(0),
            commands: RefCell::new(Vec::new()),
            errors: RefCell::new(BTreeMap::new()),
            slowlog: RefCell::new(VecDeque::new()),
            latency: RefCell::new(BTreeMap::new()),
        }
    }

    /// Counts a multi-shard read that ran again under holds.
    pub fn count_read_retry(&self) {
        self.read_retries.set(self.read_retries.get() + 1);
    }

    /// Counts a hit or a miss of a read.
    pub fn count_lookup(&self, hit: bool) {
        let cell = if hit {
            &self.keyspace_hits
        } else {
            &self.keyspace_misses
        };
        cell.set(cell.get() + 1);
    }

    /// Records one run of command `command_index` that took `duration_us` (and failed or not);
    /// the index is the ACL catalogue's, where a subcommand has its own.
    pub fn record_call(&self, command_index: usize, duration_us: u64, failed: bool) {
        self.commands_processed
            .set(self.commands_processed.get() + 1);
        let mut commands = self.commands.borrow_mut();
        if commands.len() <= command_index {
            commands.resize_with(command_index + 1, || None);
        }
        let stat = commands[command_index].get_or_insert_with(|| Box::new(CommandStat::new()));
        stat.calls += 1;
        stat.usec += duration_us;
        stat.failed_calls += u64::from(failed);
        stat.record(duration_us);
    }

    /// Records a call refused before it ran.
    pub fn record_rejected(&self, command_index: usize) {
        let mut commands = self.commands.borrow_mut();
        if commands.len() <= command_index {
            commands.resize_with(command_index + 1, || None);
        }
        commands[command_index]
            .get_or_insert_with(|| Box::new(CommandStat::new()))
            .rejected_calls += 1;
    }

    /// Counts an error reply by its code (the first word of the message).
    pub fn record_error(&self, message: &str) {
        self.error_replies.set(self.error_replies.get() + 1);
        let code = message.split(' ').next().unwrap_or("ERR");
        *self
            .errors
            .borrow_mut()
            .entry(code.to_string())
            .or_insert(0) += 1;
    }

    /// Adds a slow log entry, keeping at most `max_len`; the arguments at `secrets` show as
    /// `(redacted)`.
    pub fn slowlog_push(
        &self,
        entry_args: &[&[u8]],
        secrets: &[usize],
        duration_us: u64,
        client_addr: &str,
        client_name: &str,
        max_len: usize,
    ) {
        let mut args: Vec<Vec<u8>> = Vec::with_capacity(entry_args.len().min(SLOWLOG_ARGS_MAX));
        for (position, arg) in entry_args.iter().enumerate() {
            if position + 1 == SLOWLOG_ARGS_MAX && entry_args.len() > SLOWLOG_ARGS_MAX {
                args.push(
                    format!("... ({} more arguments)", entry_args.len() - position).into_bytes(),
                );
                break;
            }
            if secrets.contains(&position) {
                args.push(b"(redacted)".to_vec());
            } else if arg.len() > SLOWLOG_ARG_LEN_MAX {
                let mut shortened = arg[..SLOWLOG_ARG_LEN_MAX].to_vec();
                shortened.extend_from_slice(
                    format!("... ({} more bytes)", arg.len() - SLOWLOG_ARG_LEN_MAX).as_bytes(),
                );
                args.push(shortened);
            } else {
                args.push(arg.to_vec());
            }
        }
        let id = SLOWLOG_NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut slowlog = self.slowlog.borrow_mut();
        slowlog.push_front(SlowlogEntry {
            id,
            timestamp_s: unix_time_ms() / 1000,
            duration_us,
            args,
            client_addr: client_addr.to_string(),
            client_name: client_name.to_string(),
        });
        slowlog.truncate(max_len);
    }

    /// Answers a SLOWLOG request for this shard.
    pub fn slowlog(&self, request: SlowlogRequest) -> (Vec<SlowlogEntry>, usize) {
        let mut slowlog = self.slowlog.borrow_mut();
        match request {
            SlowlogRequest::Get { count } => {
                let take = if count < 0 {
                    slowlog.len()
                } else {
                    count as usize
                };
                (slowlog.iter().take(take).cloned().collect(), slowlog.len())
            }
            SlowlogRequest::Len => (Vec::new(), slowlog.len()),
            SlowlogRequest::Reset => {
                slowlog.clear();
                (Vec::new(), 0)
            }
        }
    }

    /// Records a latency sample of `event` when it reaches the monitor's threshold.
    pub fn latency_sample(&self, event: &'static str, latency_ms: u64, threshold_ms: u64) {
        if threshold_ms == 0 || latency_ms < threshold_ms {
            return;
        }
        let now_s = unix_time_ms() / 1000;
        let mut events = self.latency.borrow_mut();
        let entry = events.entry(event).or_insert_with(|| LatencyEvent {
            name: event,
            samples: Vec::new(),
            max_ms: 0,
        });
        entry.max_ms = entry.max_ms.max(latency_ms);
        match entry.samples.last_mut() {
            Some((time, value)) if *time == now_s => *value = (*value).max(latency_ms),
            _ => entry.samples.push((now_s, latency_ms)),
        }
        if entry.samples.len() > LATENCY_SAMPLES_MAX {
            entry.samples.remove(0);
        }
    }

    /// Answers a LATENCY request for this shard.
    pub fn latency(&self, request: &LatencyRequest) -> Vec<LatencyEvent> {
        let mut events = self.latency.borrow_mut();
        match request {
            LatencyRequest::All => events.values().cloned().collect(),
            LatencyRequest::Reset(names) => {
                let removed: Vec<LatencyEvent> = if names.is_empty() {
                    std::mem::take(&mut *events).into_values().collect()
                } else {
                    names
                        .iter()
                        .filter_map(|name| events.remove(name.as_str()))
                        .collect()
                };
                removed
            }
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for cell in [
            &self.commands_processed,
            &self.connections_received,
            &self.rejected_connections,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.cross_shard_hops,
            &self.evicted_keys,
            &self.error_replies,
        ] {
            cell.set(0);
        }
        self.commands.borrow_mut().clear();
        self.errors.borrow_mut().clear();
    }

    /// This shard's counters.
    pub fn counters(&self) -> Counters {
        Counters {
            commands_processed: self.commands_processed.get(),
            connections_received: self.connections_received.get(),
            rejected_connections: self.rejected_connections.get(),
            keyspace_hits: self.keyspace_hits.get(),
            keyspace_misses: self.keyspace_misses.get(),
            net_input_bytes: self.net_input_bytes.get(),
            net_output_bytes: self.net_output_bytes.get(),
            cross_shard_hops: self.cross_shard_hops.get(),
            evicted_keys: self.evicted_keys.get(),
            error_replies: self.error_replies.get(),
            // Filled in by the shard, which owns the tier.
            local_tier_hits: 0,
            local_tier_copies: 0,
        }
    }

    /// Per-command figures, by the name `name_of` gives each index.
    pub fn command_stats(
        &self,
        name_of: impl Fn(usize) -> &'static str,
    ) -> BTreeMap<&'static str, CommandStat> {
        self.commands
            .borrow()
            .iter()
            .enumerate()
            .filter_map(|(index, stat)| {
                stat.as_ref().map(|stat| {
                    let mut copy = (**stat).clone();
                    copy.settle();
                    (name_of(index), copy)
                })
            })
            .collect()
    }

    /// Error counts by code.
    pub fn error_stats(&self) -> BTreeMap<String, u64> {
        self.errors.borrow().clone()
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_time_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_calls_reach_the_histogram_of_every_copy() {
        let stats = ShardStats::new();
        for duration_us in [0, 1, 1, 3, 4, 5, 250] {
            stats.record_call(0, duration_us, false);
        }
        let copy = stats
            .command_stats(|_| "get")
            .remove("get")
            .expect("recorded");
        assert_eq!(copy.calls, 7);
        assert_eq!(copy.latency_us.len(), 7, "short calls counted once each");
        assert_eq!(
            copy.latency_us.count_at(1),
            3,
            "under a microsecond counts as one"
        );
        assert_eq!(copy.latency_us.count_at(3), 1);
        assert_eq!(copy.latency_us.count_at(4), 1);
        assert_eq!(copy.latency_us.count_at(5), 1);
        assert_eq!(copy.latency_us.value_at_quantile(0.5), 3);
        // Reading leaves the shard's own counts as they were: a second copy sees the same.
        stats.record_call(0, 2, false);
        let mut total = stats
            .command_stats(|_| "get")
            .remove("get")
            .expect("recorded");
        assert_eq!(total.latency_us.len(), 8);
        total.merge(&copy);
        assert_eq!(total.latency_us.len(), 15);
        assert_eq!(total.latency_us.count_at(1), 6);
    }
}
