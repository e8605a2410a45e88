//! Configuration with Redis's names: command-line flags (`--port 7000`), a redis.conf-syntax file
//! as the first argument, and CONFIG GET / SET at run time. Every parameter is declared once in
//! [`PARAMETERS`] with its default, its kind and why it exists.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ember_store::glob::glob_match;
use ember_store::AccessPolicy;

/// How a parameter's text is checked and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A signed integer within the bounds.
    Integer { min: i64, max: i64 },
    /// A byte count with Redis's unit suffixes (`100mb`, `1gb`).
    Memory,
    /// `yes` or `no`.
    Bool,
    /// One of the listed words.
    Enum(&'static [&'static str]),
    /// Free text.
    Text,
    /// Only the default (`no`, or empty): anything else would promise what Ember does not do,
    /// which the text says.
    Refused(&'static str),
    /// `notify-keyspace-events` classes, kept in Redis's printed form.
    KeyspaceEvents,
    /// `client-output-buffer-limit`: classes with three numbers; a value may name only some.
    OutputLimits,
    /// A byte count or a percentage (`maxmemory-clients`).
    MemoryOrPercent,
    /// A byte count of at least this many bytes (Redis's 1 MB floor of the protocol limits).
    MemoryAtLeast(i64),
}

/// Whether CONFIG SET may change a parameter while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutability {
    Mutable,
    Immutable,
}

struct Parameter {
    name: &'static str,
    default: &'static str,
    kind: Kind,
    mutability: Mutability,
}

const fn parameter(
    name: &'static str,
    default: &'static str,
    kind: Kind,
    mutability: Mutability,
) -> Parameter {
    Parameter {
        name,
        default,
        kind,
        mutability,
    }
}

use Mutability::{Immutable, Mutable};

/// Counts and sizes that Redis accepts from 0 up.
/// Any C `int`, as Redis's INT configs without bounds of their own.
const ANY_INT: Kind = Kind::Integer {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};
const NON_NEGATIVE: Kind = Kind::Integer {
    min: 0,
    max: i64::MAX,
};

/// A TCP port (0: Redis's "none" or "any").
const PORT: Kind = Kind::Integer { min: 0, max: 65535 };

/// `lfu-log-factor` and `lfu-decay-time`: from 0 to Redis's INT_MAX, so both fit the store's u32.
const LFU_PARAMETER: Kind = Kind::Integer {
    min: 0,
    max: i32::MAX as i64,
};

/// Policies Redis names for `maxmemory-policy`.
/// In Redis's order, which its CONFIG SET error lists.
pub const EVICTION_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Redis 8.6's least-recently-modified policies: accepted, but left out of the list the error
/// names, which stays Redis 7's word for word (clients and tests match it).
pub const EVICTION_POLICIES_LRM: &[&str] = &["allkeys-lrm", "volatile-lrm"];

/// Ember's own policy (`ember_store`'s `keyspace/admission.rs`): W-TinyLFU over the sampled
/// eviction, with a TinyLFU read history instead of per-key counters and an admission window
/// that a hill climber sizes. Accepted and left out of the error's list, as the LRM names are.
pub const EVICTION_POLICY_TINYLFU: &str = "allkeys-tinylfu";

/// Every parameter Ember knows. Tunables Ember has no use for (listpack sizes, save points) are
/// accepted, stored and reported, because clients and test harnesses set them.
const PARAMETERS: &[Parameter] = &[
    // Where to listen; 127.0.0.1 unless told otherwise, so a new server is not open to a network.
    parameter("bind", "127.0.0.1", Kind::Text, Immutable),
    parameter("port", "6379", PORT, Immutable),
    // Shards, one executor each; 0 means one per CPU of server_cpulist, or per online core.
    parameter(
        "threads",
        "0",
        Kind::Integer { min: 0, max: 1024 },
        Immutable,
    ),
    // CPUs the shards are pinned to, one shard each in turn (Redis's name and list syntax:
    // "0-7:2,9"); empty, the default, leaves them to the kernel's scheduler (see
    // `Config::server_cpulist`).
    parameter("server_cpulist", "", Kind::Text, Immutable),
    // How long a shard spins before it parks: a parked core on a VM takes tens of us to wake.
    parameter(
        "busy-poll-us",
        "50",
        Kind::Integer {
            min: 0,
            max: 1_000_000,
        },
        Immutable,
    ),
    // How long a shard waits for another shard's answer before it gives its caller an error
    // instead: longer than any one operation a shard runs (loading a model, flushing a large
    // keyspace), short enough that a stalled shard is noticed. 0 waits for ever.
    parameter(
        "shard-reply-timeout-ms",
        "30000",
        Kind::Integer {
            min: 0,
            max: 3_600_000,
        },
        Mutable,
    ),
    // Socket I/O through one io_uring per shard (multishot receive, sends batched per turn);
    // `no` uses the runtime's own sockets (and the epoll spinner when busy polling). The ring
    // polls every listener, so a shard asleep in it accepts a new connection at once. (The
    // start-up stall once blamed on it was glommio's, with either value: runtime::run_shards.)
    parameter("io-uring", "yes", Kind::Bool, Immutable),
    parameter("requirepass", "", Kind::Text, Mutable),
    // ACLs (commands/acl): the users file, the log's length, new users' channels.
    parameter("aclfile", "", Kind::Text, Immutable),
    parameter(
        "acllog-max-len",
        "128",
        Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        Mutable,
    ),
    parameter(
        "acl-pubsub-default",
        "resetchannels",
        Kind::Enum(&["allchannels", "resetchannels"]),
        Mutable,
    ),
    parameter(
        "maxclients",
        "10000",
        Kind::Integer {
            min: 1,
            max: 1_000_000,
        },
        Mutable,
    ),
    // Largest bulk argument a client may send (Redis's default, 512 MB).
    parameter(
        "proto-max-bulk-len",
        "536870912",
        Kind::MemoryAtLeast(1024 * 1024),
        Mutable,
    ),
    // Largest unparsed input a client may have buffered before it is disconnected (1 GB).
    parameter(
        "client-query-buffer-limit",
        "1073741824",
        Kind::MemoryAtLeast(1024 * 1024),
        Mutable,
    ),
    parameter("maxmemory", "0", Kind::Memory, Mutable),
    // Client memory (query and output buffers) past which the biggest clients are evicted:
    // bytes, or a percentage of maxmemory; 0: no client eviction (crate::limits).
    parameter("maxmemory-clients", "0", Kind::MemoryOrPercent, Mutable),
    parameter(
        "maxmemory-policy",
        "noeviction",
        Kind::Enum(EVICTION_POLICIES),
        Mutable,
    ),
    parameter(
        "maxmemory-samples",
        "5",
        Kind::Integer { min: 1, max: 64 },
        Mutable,
    ),
    parameter(
        "slowlog-log-slower-than",
        "10000",
        Kind::Integer {
            min: -1,
            max: i64::MAX,
        },
        Mutable,
    ),
    parameter("slowlog-max-len", "128", NON_NEGATIVE, Mutable),
    // Redis 7's per-command latency histograms (INFO latencystats); accepted and stored.
    parameter("latency-tracking", "yes", Kind::Bool, Mutable),
    parameter("latency-monitor-threshold", "0", NON_NEGATIVE, Mutable),
    // Active expiry runs this many times a second, as Redis's `hz`.
    parameter("hz", "10", Kind::Integer { min: 1, max: 500 }, Mutable),
    parameter(
        "databases",
        "16",
        Kind::Integer { min: 16, max: 16 },
        Immutable,
    ),
    parameter("timeout", "0", NON_NEGATIVE, Mutable),
    parameter("tcp-keepalive", "300", NON_NEGATIVE, Mutable),
    parameter(
        "loglevel",
        "notice",
        Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
        Mutable,
    ),
    parameter("logfile", "", Kind::Text, Immutable),
    parameter("daemonize", "no", Kind::Bool, Immutable),
    parameter("protected-mode", "yes", Kind::Bool, Mutable),
    // TLS (crate::tls, which says what rustls makes of each): Redis's names and defaults.
    // `tls-port` 0: no TLS; `port 0` with a `tls-port`: TLS only. CONFIG SET of the others
    // reloads the certificates and settings for the next TLS connections.
    parameter("tls-port", "0", PORT, Immutable),
    parameter("tls-cert-file", "", Kind::Text, Mutable),
    parameter("tls-key-file", "", Kind::Text, Mutable),
    parameter("tls-key-file-pass", "", Kind::Text, Mutable),
    parameter("tls-client-cert-file", "", Kind::Text, Mutable),
    parameter("tls-client-key-file", "", Kind::Text, Mutable),
    parameter("tls-client-key-file-pass", "", Kind::Text, Mutable),
    parameter("tls-dh-params-file", "", Kind::Text, Mutable),
    parameter("tls-ca-cert-file", "", Kind::Text, Mutable),
    parameter("tls-ca-cert-dir", "", Kind::Text, Mutable),
    parameter(
        "tls-auth-clients",
        "yes",
        Kind::Enum(&["no", "yes", "optional"]),
        Mutable,
    ),
    parameter("tls-protocols", "", Kind::Text, Mutable),
    parameter("tls-ciphers", "", Kind::Text, Mutable),
    parameter("tls-ciphersuites", "", Kind::Text, Mutable),
    parameter("tls-prefer-server-ciphers", "no", Kind::Bool, Mutable),
    parameter("tls-session-caching", "yes", Kind::Bool, Mutable),
    parameter(
        "tls-session-cache-size",
        "20480",
        Kind::Integer {
            min: 0,
            max: i32::MAX as i64,
        },
        Mutable,
    ),
    parameter(
        "tls-session-cache-timeout",
        "300",
        Kind::Integer {
            min: 0,
            max: i32::MAX as i64,
        },
        Mutable,
    ),
    parameter("tls-replication", "no", Kind::Bool, Mutable),
    parameter("tls-cluster", "no", Kind::Bool, Mutable),
    parameter("metrics-port", "0", PORT, Immutable),
    // Unix socket of the shared-memory transport (one-sided GETs for clients on this host);
    // empty: off.
    parameter("shm", "", Kind::Text, Immutable),
    // The verbs transport (RDMA NIC or SoftRoCE); with no device Ember says so and serves TCP.
    // Fixed-function stages (the router's key slots) through the FPGA modules' Verilator models,
    // counting cycles: `sim`, or Ember's own software (`software`, the default).
    parameter(
        "offload",
        "software",
        Kind::Enum(&["software", "sim"]),
        Immutable,
    ),
    parameter("rdma", "no", Kind::Bool, Immutable),
    // TCP port verbs clients set up their queue pairs through; 0: the RESP port plus one.
    parameter("rdma-port", "0", PORT, Immutable),
    // Longest string value published for one-sided GETs (longer ones are served by message).
    parameter("rdma-value-max-len", "4096", Kind::Memory, Immutable),
    // Item log per shard of the one-sided read region.
    parameter("rdma-log-size", "67108864", Kind::Memory, Immutable),
    parameter("save", "", Kind::Text, Mutable),
    // Test hooks, as in Redis (hidden from CONFIG GET patterns): how long a background save
    // waits per key it encodes, and the load at start per key it loads: microseconds, or
    // nanoseconds when negative.
    // Writes refused (MISCONF) after a failed background save, with save points set.
    parameter("stop-writes-on-bgsave-error", "yes", Kind::Bool, Mutable),
    parameter("rdb-key-save-delay", "0", ANY_INT, Mutable),
    parameter("key-load-delay", "0", ANY_INT, Mutable),
    parameter("appendonly", "no", Kind::Bool, Mutable),
    parameter(
        "appendfsync",
        "everysec",
        Kind::Enum(&["always", "everysec", "no"]),
        Mutable,
    ),
    // The append-only file's directory in `dir`, and its rewrite when it has grown by a
    // percentage (0: never) past a size (crate::aof).
    parameter("appenddirname", "appendonlydir", Kind::Text, Immutable),
    parameter(
        "auto-aof-rewrite-min-size",
        "67108864",
        Kind::Memory,
        Mutable,
    ),
    parameter("auto-aof-rewrite-percentage", "100", NON_NEGATIVE, Mutable),
    parameter("dir", ".", Kind::Text, Mutable),
    parameter("dbfilename", "dump.rdb", Kind::Text, Mutable),
    parameter("lazyfree-lazy-expire", "no", Kind::Bool, Mutable),
    parameter("lazyfree-lazy-user-del", "no", Kind::Bool, Mutable),
    parameter("lazyfree-lazy-user-flush", "no", Kind::Bool, Mutable),
    parameter("hash-max-listpack-entries", "128", NON_NEGATIVE, Mutable),
    parameter("hash-max-listpack-value", "64", NON_NEGATIVE, Mutable),
    parameter("hash-max-ziplist-entries", "128", NON_NEGATIVE, Mutable),
    parameter("hash-max-ziplist-value", "64", NON_NEGATIVE, Mutable),
    // Largest sparse HyperLogLog before it turns dense; Redis's default and range (its
    // CONFIG SET accepts 0 to LONG_MAX).
    parameter("hll-sparse-max-bytes", "3000", NON_NEGATIVE, Mutable),
    parameter(
        "list-max-listpack-size",
        "-2",
        Kind::Integer {
            min: i64::MIN,
            max: i64::MAX,
        },
        Mutable,
    ),
    parameter(
        "list-max-ziplist-size",
        "-2",
        Kind::Integer {
            min: i64::MIN,
            max: i64::MAX,
        },
        Mutable,
    ),
    parameter("list-compress-depth", "0", NON_NEGATIVE, Mutable),
    parameter("set-max-intset-entries", "512", NON_NEGATIVE, Mutable),
    parameter("set-max-listpack-entries", "128", NON_NEGATIVE, Mutable),
    parameter("set-max-listpack-value", "64", NON_NEGATIVE, Mutable),
    parameter("zset-max-listpack-entries", "128", NON_NEGATIVE, Mutable),
    parameter("zset-max-listpack-value", "64", NON_NEGATIVE, Mutable),
    parameter("zset-max-ziplist-entries", "128", NON_NEGATIVE, Mutable),
    parameter("zset-max-ziplist-value", "64", NON_NEGATIVE, Mutable),
    // Stream block shape (ember_store::stream::StreamLimits); 0 means Redis's ceilings.
    parameter("stream-node-max-bytes", "4096", Kind::Memory, Mutable),
    parameter("stream-node-max-entries", "100", NON_NEGATIVE, Mutable),
    parameter("activerehashing", "yes", Kind::Bool, Mutable),
    parameter("lua-time-limit", "5000", NON_NEGATIVE, Mutable),
    // Client tracking's table of keys read, all shards together (Redis's default); past it,
    // keys are dropped with an invalidation. 0: no limit.
    parameter("tracking-table-max-keys", "1000000", NON_NEGATIVE, Mutable),
    // Keyspace events published through Pub/Sub (commands::notify); none by default, as Redis.
    parameter("notify-keyspace-events", "", Kind::KeyspaceEvents, Mutable),
    // Redis's defaults; the pubsub class cuts a subscriber that cannot keep up.
    parameter(
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::OutputLimits,
        Mutable,
    ),
    // Past it, a running script makes other clients' commands answer BUSY (Redis 7's name;
    // lua-time-limit is its old alias and sets the same value).
    parameter("busy-reply-threshold", "5000", NON_NEGATIVE, Mutable),
    // Ember has no replicas: above 0, writes (and scripts that may write) answer NOREPLICAS.
    parameter("min-replicas-to-write", "0", NON_NEGATIVE, Mutable),
    parameter("min-replicas-max-lag", "10", NON_NEGATIVE, Mutable),
    // The LFU counter's growth and decay (ember_store::lfu); Redis bounds both by INT_MAX.
    parameter("lfu-log-factor", "10", LFU_PARAMETER, Mutable),
    parameter("lfu-decay-time", "1", LFU_PARAMETER, Mutable),
    parameter(
        "active-expire-effort",
        "1",
        Kind::Integer { min: 1, max: 10 },
        Mutable,
    ),
    // Relative TTLs lengthened by a random 0..pct percent (commands::expiry_jitter), so keys
    // set together do not expire together; 0 (off) keeps Redis's exact TTLs.
    parameter(
        "expire-jitter-pct",
        "0",
        Kind::Integer { min: 0, max: 100 },
        Mutable,
    ),
    // Reads a second past which a string key is copied read-only to every shard (the local
    // tier, shard::local_tier); 0 turns the tier off. See local_tier's module docs for why
    // 2000 is the default.
    parameter(
        "hotkey-local-tier-rate",
        "2000",
        Kind::Integer {
            min: 0,
            max: 1_000_000_000,
        },
        Mutable,
    ),
    parameter("appendfilename", "appendonly.aof", Kind::Text, Immutable),
    parameter("replica-read-only", "yes", Kind::Bool, Mutable),
    // Kept for the tools and tests that set them, as a Redis with no replica keeps them: Ember
    // has no replication, so nothing reads them.
    parameter(
        "repl-backlog-size",
        "1048576",
        Kind::MemoryAtLeast(16 * 1024),
        Mutable,
    ),
    parameter("repl-backlog-ttl", "3600", NON_NEGATIVE, Mutable),
    // Never a replica: empty, as a Redis primary answers, and set only at start in Redis too.
    parameter("replicaof", "", Kind::Text, Immutable),
    parameter("slaveof", "", Kind::Text, Immutable),
    parameter("close-on-oom", "no", Kind::Bool, Mutable),
    // Redis's no, yes or local; no by default, as in Redis 7: DEBUG PANIC ends the process and
    // DEBUG SLEEP stalls a shard. The tests and the TCL suite's runs turn it on.
    parameter(
        "enable-debug-command",
        "no",
        Kind::Enum(&["no", "yes", "local"]),
        Immutable,
    ),
    // The listen backlog of every port Ember opens (Redis's default is 511; Ember's 1024).
    parameter(
        "tcp-backlog",
        "1024",
        Kind::Integer {
            min: 0,
            max: i32::MAX as i64,
        },
        Immutable,
    ),
    // The rest of Redis 7.0's parameters, with its defaults and checks, so that a redis.conf
    // loads as it is and CONFIG GET answers as Redis does. Nothing in Ember reads them:
    // [`without_effect`] says why, and `ember` names each one set to other than its default as
    // it starts. Settings that would promise what Ember does not do are refused instead:
    // `cluster-enabled yes`, a `unixsocket`.
    parameter(
        "cluster-enabled",
        "no",
        Kind::Refused("Ember has no cluster mode"),
        Immutable,
    ),
    parameter(
        "unixsocket",
        "",
        Kind::Refused("Ember listens on TCP ports only"),
        Immutable,
    ),
    parameter("unixsocketperm", "0", NON_NEGATIVE, Immutable),
    // Persistence.
    parameter("aof-disable-auto-gc", "no", Kind::Bool, Mutable),
    parameter("aof-load-truncated", "yes", Kind::Bool, Mutable),
    parameter("aof-rewrite-incremental-fsync", "yes", Kind::Bool, Mutable),
    parameter("aof-timestamp-enabled", "no", Kind::Bool, Mutable),
    parameter("aof-use-rdb-preamble", "yes", Kind::Bool, Mutable),
    parameter("no-appendfsync-on-rewrite", "no", Kind::Bool, Mutable),
    parameter("rdb-del-sync-files", "no", Kind::Bool, Mutable),
    parameter("rdb-save-incremental-fsync", "yes", Kind::Bool, Mutable),
    parameter("rdbchecksum", "yes", Kind::Bool, Immutable),
    parameter("rdbcompression", "yes", Kind::Bool, Mutable),
    // Replication.
    parameter("masterauth", "", Kind::Text, Mutable),
    parameter("masteruser", "", Kind::Text, Mutable),
    parameter(
        "propagation-error-behavior",
        "ignore",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
        Mutable,
    ),
    parameter("repl-disable-tcp-nodelay", "no", Kind::Bool, Mutable),
    parameter(
        "repl-diskless-load",
        "disabled",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
        Mutable,
    ),
    parameter("repl-diskless-sync", "yes", Kind::Bool, Mutable),
    parameter("repl-diskless-sync-delay", "5", NON_NEGATIVE, Mutable),
    parameter(
        "repl-diskless-sync-max-replicas",
        "0",
        NON_NEGATIVE,
        Mutable,
    ),
    parameter(
        "repl-ping-replica-period",
        "10",
        Kind::Integer {
            min: 1,
            max: i32::MAX as i64,
        },
        Mutable,
    ),
    parameter(
        "repl-timeout",
        "60",
        Kind::Integer {
            min: 1,
            max: i32::MAX as i64,
        },
        Mutable,
    ),
    parameter("replica-announce-ip", "", Kind::Text, Mutable),
    parameter("replica-announce-port", "0", PORT, Mutable),
    parameter("replica-announced", "yes", Kind::Bool, Mutable),
    parameter(
        "replica-ignore-disk-write-errors",
        "no",
        Kind::Bool,
        Mutable,
    ),
    parameter("replica-ignore-maxmemory", "yes", Kind::Bool, Mutable),
    parameter("replica-lazy-flush", "no", Kind::Bool, Mutable),
    parameter("replica-priority", "100", NON_NEGATIVE, Mutable),
    parameter("replica-serve-stale-data", "yes", Kind::Bool, Mutable),
    // Redis's older names of the same settings (ALIASES).
    parameter(
        "repl-ping-slave-period",
        "10",
        Kind::Integer {
            min: 1,
            max: i32::MAX as i64,
        },
        Mutable,
    ),
    parameter("slave-announce-ip", "", Kind::Text, Mutable),
    parameter("slave-announce-port", "0", PORT, Mutable),
    parameter("slave-ignore-maxmemory", "yes", Kind::Bool, Mutable),
    parameter("slave-lazy-flush", "no", Kind::Bool, Mutable),
    parameter("slave-priority", "100", NON_NEGATIVE, Mutable),
    parameter("slave-read-only", "yes", Kind::Bool, Mutable),
    parameter("slave-serve-stale-data", "yes", Kind::Bool, Mutable),
    parameter("min-slaves-to-write", "0", NON_NEGATIVE, Mutable),
    parameter("min-slaves-max-lag", "10", NON_NEGATIVE, Mutable),
    // Cluster mode.
    parameter(
        "cluster-allow-pubsubshard-when-down",
        "yes",
        Kind::Bool,
        Mutable,
    ),
    parameter("cluster-allow-reads-when-down", "no", Kind::Bool, Mutable),
    parameter(
        "cluster-allow-replica-migration",
        "yes",
        Kind::Bool,
        Mutable,
    ),
    parameter("cluster-announce-bus-port", "0", PORT, Mutable),
    parameter("cluster-announce-hostname", "", Kind::Text, Mutable),
    parameter("cluster-announce-ip", "", Kind::Text, Mutable),
    parameter("cluster-announce-port", "0", PORT, Mutable),
    parameter("cluster-announce-tls-port", "0", PORT, Mutable),
    parameter("cluster-config-file", "nodes.conf", Kind::Text, Immutable),
    parameter("cluster-link-sendbuf-limit", "0", Kind::Memory, Mutable),
    parameter("cluster-migration-barrier", "1", NON_NEGATIVE, Mutable),
    parameter("cluster-node-timeout", "15000", NON_NEGATIVE, Mutable),
    parameter("cluster-port", "0", PORT, Immutable),
    parameter(
        "cluster-preferred-endpoint-type",
        "ip",
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
        Mutable,
    ),
    parameter("cluster-replica-no-failover", "no", Kind::Bool, Mutable),
    parameter(
        "cluster-replica-validity-factor",
        "10",
        NON_NEGATIVE,
        Mutable,
    ),
    parameter("cluster-require-full-coverage", "yes", Kind::Bool, Mutable),
    parameter("cluster-slave-no-failover", "no", Kind::Bool, Mutable),
    parameter("cluster-slave-validity-factor", "10", NON_NEGATIVE, Mutable),
    // Redis's process, threads and allocator.
    parameter("activedefrag", "no", Kind::Bool, Mutable),
    parameter(
        "active-defrag-cycle-max",
        "25",
        Kind::Integer { min: 1, max: 99 },
        Mutable,
    ),
    parameter(
        "active-defrag-cycle-min",
        "1",
        Kind::Integer { min: 1, max: 99 },
        Mutable,
    ),
    parameter(
        "active-defrag-ignore-bytes",
        "104857600",
        Kind::Memory,
        Mutable,
    ),
    parameter(
        "active-defrag-max-scan-fields",
        "1000",
        NON_NEGATIVE,
        Mutable,
    ),
    parameter(
        "active-defrag-threshold-lower",
        "10",
        Kind::Integer { min: 0, max: 1000 },
        Mutable,
    ),
    parameter(
        "active-defrag-threshold-upper",
        "100",
        Kind::Integer { min: 0, max: 1000 },
        Mutable,
    ),
    parameter("always-show-logo", "no", Kind::Bool, Immutable),
    parameter("bind-source-addr", "", Kind::Text, Mutable),
    parameter("crash-log-enabled", "yes", Kind::Bool, Mutable),
    parameter("crash-memcheck-enabled", "yes", Kind::Bool, Mutable),
    parameter("disable-thp", "yes", Kind::Bool, Immutable),
    parameter("dynamic-hz", "yes", Kind::Bool, Mutable),
    parameter(
        "enable-module-command",
        "no",
        Kind::Enum(&["no", "yes", "local"]),
        Immutable,
    ),
    parameter(
        "enable-protected-configs",
        "no",
        Kind::Enum(&["no", "yes", "local"]),
        Immutable,
    ),
    parameter("ignore-warnings", "", Kind::Text, Mutable),
    parameter(
        "io-threads",
        "1",
        Kind::Integer { min: 1, max: 128 },
        Immutable,
    ),
    parameter("io-threads-do-reads", "no", Kind::Bool, Immutable),
    parameter("jemalloc-bg-thread", "yes", Kind::Bool, Mutable),
    parameter("lazyfree-lazy-eviction", "no", Kind::Bool, Mutable),
    parameter("lazyfree-lazy-server-del", "no", Kind::Bool, Mutable),
    parameter(
        "maxmemory-eviction-tenacity",
        "10",
        Kind::Integer { min: 0, max: 100 },
        Mutable,
    ),
    parameter(
        "oom-score-adj",
        "no",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
        Mutable,
    ),
    parameter("oom-score-adj-values", "0 200 800", Kind::Text, Mutable),
    parameter("pidfile", "", Kind::Text, Immutable),
    parameter(
        "proc-title-template",
        "{title} {listen-addr} {server-mode}",
        Kind::Text,
        Mutable,
    ),
    parameter(
        "sanitize-dump-payload",
        "no",
        Kind::Enum(&["no", "yes", "clients"]),
        Mutable,
    ),
    parameter("set-proc-title", "yes", Kind::Bool, Immutable),
    parameter("shutdown-on-sigint", "default", Kind::Text, Mutable),
    parameter("shutdown-on-sigterm", "default", Kind::Text, Mutable),
    parameter("shutdown-timeout", "10", NON_NEGATIVE, Mutable),
    parameter("socket-mark-id", "0", NON_NEGATIVE, Mutable),
    parameter(
        "supervised",
        "no",
        Kind::Enum(&["no", "upstart", "systemd", "auto"]),
        Immutable,
    ),
    parameter("syslog-enabled", "no", Kind::Bool, Immutable),
    parameter("syslog-facility", "local0", Kind::Text, Immutable),
    parameter("syslog-ident", "redis", Kind::Text, Immutable),
    parameter("bio_cpulist", "", Kind::Text, Immutable),
    parameter("aof_rewrite_cpulist", "", Kind::Text, Immutable),
    parameter("bgsave_cpulist", "", Kind::Text, Immutable),
    parameter(
        "latency-tracking-info-percentiles",
        "50 99 99.9",
        Kind::Text,
        Mutable,
    ),
];

impl Config {
    /// The parameters set to other than their default that nothing in Ember reads, each with
    /// its value and why ([`without_effect`]); an alias pair is named once.
    pub fn settings_without_effect(&self) -> Vec<(&'static str, &str, &'static str)> {
        PARAMETERS
            .iter()
            .filter(|parameter| !ALIASES.iter().any(|(old, _)| *old == parameter.name))
            .filter_map(|parameter| {
                let why = without_effect(parameter.name)?;
                let value = self.values[parameter.name].as_str();
                (value != parameter.default).then_some((parameter.name, value, why))
            })
            .collect()
    }
}

/// Parameters CONFIG GET gives by their own name only (Redis's HIDDEN_CONFIG test hooks).
const HIDDEN: &[&str] = &["rdb-key-save-delay", "key-load-delay"];

/// Why a parameter that Ember accepts does nothing in it (`None`: it has its effect).
pub fn without_effect(name: &str) -> Option<&'static str> {
    const PERSISTENCE: &str = "an option of Redis's persistence that Ember does not apply";
    const REPLICATION: &str = "Ember has no replicas";
    const CLUSTER: &str = "Ember has no cluster mode";
    const ALLOCATOR: &str =
        "a setting of Redis's allocator or event loop that Ember does not apply";
    // The append-only file's own settings (crate::aof).
    if matches!(
        name,
        "appendonly"
            | "appendfsync"
            | "appendfilename"
            | "appenddirname"
            | "auto-aof-rewrite-min-size"
            | "auto-aof-rewrite-percentage"
    ) {
        return None;
    }
    let why = match name {
        "rdbchecksum"
        | "rdbcompression"
        | "rdb-del-sync-files"
        | "rdb-save-incremental-fsync"
        | "no-appendfsync-on-rewrite" => PERSISTENCE,
        name if name.starts_with("aof-") => PERSISTENCE,
        "masterauth"
        | "masteruser"
        | "propagation-error-behavior"
        | "repl-backlog-size"
        | "repl-backlog-ttl" => REPLICATION,
        "replicaof" | "slaveof" => "Ember does not replicate from another server",
        name if name.starts_with("repl-")
            || name.starts_with("replica-")
            || name.starts_with("slave-") =>
        {
            REPLICATION
        }
        name if name.starts_with("cluster-") => CLUSTER,
        "daemonize" => "ember stays in the foreground (run it under systemd or a supervisor)",
        "logfile" | "syslog-enabled" | "syslog-facility" | "syslog-ident" => {
            "ember writes its log to standard error"
        }
        "pidfile" => "ember writes no pid file",
        "supervised"
        | "always-show-logo"
        | "set-proc-title"
        | "proc-title-template"
        | "oom-score-adj"
        | "oom-score-adj-values"
        | "disable-thp"
        | "crash-log-enabled"
        | "crash-memcheck-enabled"
        | "ignore-warnings"
        | "shutdown-on-sigint"
        | "shutdown-on-sigterm"
        | "shutdown-timeout"
        | "socket-mark-id"
        | "bind-source-addr"
        | "enable-protected-configs"
        | "enable-module-command"
        | "unixsocketperm"
        | "bio_cpulist"
        | "aof_rewrite_cpulist"
        | "bgsave_cpulist" => "a setting of Redis's own process that Ember does not apply",
        "io-threads" | "io-threads-do-reads" => "Ember's threads are its shards (--threads)",
        "activedefrag" | "jemalloc-bg-thread" | "dynamic-hz" | "maxmemory-eviction-tenacity" => {
            ALLOCATOR
        }
        name if name.starts_with("active-defrag-") => ALLOCATOR,
        "lazyfree-lazy-eviction" | "lazyfree-lazy-server-del" => {
            "Ember frees evicted and overwritten values where they are removed"
        }
        "sanitize-dump-payload" => "RESTORE checks every payload it decodes",
        "latency-tracking-info-percentiles" => "INFO latencystats gives p50, p99 and p99.9",
        _ => return None,
    };
    Some(why)
}

/// A configuration error, worded as Redis words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration. Each shard holds its own copy; CONFIG SET is applied to every copy.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// Typed copies of the values read on hot paths.
    pub port: u16,
    /// Addresses to listen on.
    pub bind: Vec<IpAddr>,
    /// Shards to start (0 = one per CPU of `server_cpulist`, or per online core).
    pub threads: usize,
    /// CPUs to pin the shards to, shard `i` to `server_cpulist[i % len]`; empty: not pinned.
    ///
    /// Not pinned by default: where the clients run on the same machine (an application beside
    /// its cache, redis-benchmark), a pinned shard shares its core with them while the
    /// scheduler cannot move it to a quieter one. On two cores with redis-benchmark beside the
    /// two shards, pinning cost a fifth of the requests at pipeline 1 (bench/RESULTS.md,
    /// thirty-third session). A host given to Ember alone gains little from pinning, as the
    /// scheduler leaves a busy thread where it is.
    pub server_cpulist: Vec<usize>,
    /// Spin before parking, microseconds.
    pub busy_poll_us: u64,
    /// How long to wait for another shard's answer (0 = for ever), milliseconds.
    pub shard_reply_timeout_ms: u64,
    /// Socket I/O through the shard's io_uring.
    pub io_uring: bool,
    /// Password of the default user; empty means none.
    pub requirepass: String,
    /// Most connections at once, all shards together.
    pub maxclients: usize,
    /// Largest bulk argument.
    pub proto_max_bulk_len: usize,
    /// Largest buffered unparsed input per client.
    pub client_query_buffer_limit: usize,
    /// Memory limit in bytes (0 = none).
    pub maxmemory: u64,
    /// `lazyfree-lazy-expire`: the values of keys that expire are freed in the background.
    pub lazyfree_lazy_expire: bool,
    /// `lazyfree-lazy-user-del`: DEL frees as UNLINK does (crate::lazyfree).
    pub lazyfree_lazy_user_del: bool,
    /// `lazyfree-lazy-user-flush`: FLUSHDB and FLUSHALL without SYNC free in the background.
    pub lazyfree_lazy_user_flush: bool,
    /// Eviction policy name.
    pub maxmemory_policy: String,
    /// min-replicas-to-write: above 0, writes are refused (Ember has no replicas).
    pub min_replicas_to_write: u64,
    /// Commands slower than this (microseconds) enter the slow log; negative disables it.
    pub slowlog_log_slower_than_us: i64,
    /// Slow log entries kept per shard.
    pub slowlog_max_len: usize,
    /// Events above this many milliseconds are recorded by LATENCY (0 = off).
    pub latency_monitor_threshold_ms: u64,
    /// `busy-reply-threshold` (`lua-time-limit`), milliseconds: kept typed because every
    /// script reads it.
    pub busy_reply_threshold_ms: u64,
    /// Active expiry ticks per second.
    pub hz: u64,
    /// `hash-max-listpack-entries` / `hash-max-listpack-value` (or their ziplist aliases).
    pub hash_limits: ember_store::HashLimits,
    /// `hll-sparse-max-bytes`.
    pub hll_sparse_max_bytes: usize,
    /// Prometheus endpoint port (0 = off).
    pub metrics_port: u16,
    /// `notify-keyspace-events` as class bits (commands::notify).
    pub notify_keyspace_events: u32,
    /// The pubsub class of `client-output-buffer-limit`.
    pub pubsub_output_limit: crate::shard::pubsub::OutputLimit,
    /// The normal class of `client-output-buffer-limit`.
    pub normal_output_limit: crate::shard::pubsub::OutputLimit,
    /// `maxmemory-clients`.
    pub maxmemory_clients: crate::limits::ClientMemoryLimit,
    /// `timeout`: idle clients are closed after this many seconds (0: never).
    pub timeout_s: u64,
    /// `tcp-keepalive` of accepted sockets, seconds (0: off).
    pub tcp_keepalive_s: u64,
    /// `list-max-listpack-size`: when a list leaves the listpack encoding.
    pub list_limits: ember_store::list::ListLimits,
    /// `stream-node-max-bytes` / `stream-node-max-entries`, kept typed because every XADD
    /// reads them.
    pub stream_limits: ember_store::stream::StreamLimits,
    /// Inference flags (`--model`, `--ort-lib`, ...), taken from the command line by `main`.
    pub inference: crate::inference::InferenceConfig,
}

impl Default for Config {
    fn default() -> Self {
        let values = PARAMETERS
            .iter()
            .map(|p| (p.name, p.default.to_string()))
            .collect();
        let mut config = Self {
            values,
            port: 0,
            bind: Vec::new(),
            threads: 0,
            server_cpulist: Vec::new(),
            busy_poll_us: 0,
            shard_reply_timeout_ms: 0,
            io_uring: true,
            requirepass: String::new(),
            maxclients: 0,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            maxmemory: 0,
            lazyfree_lazy_expire: false,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            maxmemory_policy: String::new(),
            min_replicas_to_write: 0,
            slowlog_log_slower_than_us: 0,
            slowlog_max_len: 0,
            latency_monitor_threshold_ms: 0,
            busy_reply_threshold_ms: 0,
            hz: 0,
            hash_limits: ember_store::HashLimits::default(),
            hll_sparse_max_bytes: 0,
            metrics_port: 0,
            notify_keyspace_events: 0,
            pubsub_output_limit: crate::shard::pubsub::OutputLimit::PUBSUB_DEFAULT,
            normal_output_limit: crate::shard::pubsub::OutputLimit::PUBSUB_DEFAULT,
            maxmemory_clients: crate::limits::ClientMemoryLimit::Off,
            timeout_s: 0,
            tcp_keepalive_s: 0,
            list_limits: ember_store::list::ListLimits::default(),
            stream_limits: ember_store::stream::StreamLimits::default(),
            inference: crate::inference::InferenceConfig::default(),
        };
        config.refresh_typed().expect("defaults are valid");
        config
    }
}

impl Config {
    /// Reads the command line: an optional redis.conf-syntax file first, then `--name value...`
    /// pairs, which win over the file.
    ///
    /// # Errors
    /// An unknown parameter, a bad value or an unreadable file, with a message naming it.
    pub fn from_args(args: &[String]) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        let mut rest = args;
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first).map_err(|error| {
                    ConfigError(format!("cannot read config file '{first}': {error}"))
                })?;
                config.apply_file(&text)?;
                rest = &rest[1..];
            }
        }
        let mut index = 0;
        while index < rest.len() {
            let Some(name) = rest[index].strip_prefix("--") else {
                return Err(ConfigError(format!(
                    "unexpected argument '{}': options start with --",
                    rest[index]
                )));
            };
            index += 1;
            let mut words = Vec::new();
            while index < rest.len() && !rest[index].starts_with("--") {
                words.push(rest[index].clone());
                index += 1;
            }
            // A yes/no option given alone (`--rdma`) means yes.
            let is_flag = words.is_empty() && find(name).is_some_and(|p| p.kind == Kind::Bool);
            let value = if is_flag {
                "yes".to_string()
            } else {
                words.join(" ")
            };
            config.set_startup(name, &value)?;
        }
        Ok(config)
    }

    /// Reads a redis.conf-syntax file's text, as `ember FILE` (and `--config`) reads the file:
    /// the defaults, then each line.
    ///
    /// # Errors
    /// An unknown parameter or a bad value, with the line number.
    pub fn from_file_text(text: &str) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.apply_file(text)?;
        Ok(config)
    }

    fn apply_file(&mut self, text: &str) -> Result<(), ConfigError> {
        // Each `save` line adds a save point to those of the lines before it, as in redis.conf
        // (`save ""` clears them).
        let mut save_points = None::<String>;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let mut value = value.trim().trim_matches('"').to_string();
            if name.eq_ignore_ascii_case("save") {
                if let Some(before) = save_points.as_ref().filter(|_| !value.is_empty()) {
                    value = format!("{before} {value}");
                }
                save_points = Some(value.clone());
            }
            self.set_startup(name, &value).map_err(|error| {
                ConfigError(format!("config file line {}: {}", number + 1, error.0))
            })?;
        }
        Ok(())
    }

    fn set_startup(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let name = name.to_ascii_lowercase();
        let parameter =
            find(&name).ok_or_else(|| ConfigError(format!("unknown option '{name}'")))?;
        self.store(parameter, value)
    }

    fn store(&mut self, parameter: &Parameter, value: &str) -> Result<(), ConfigError> {
        let canonical =
            validate(parameter, &self.values[parameter.name], value).map_err(|why| {
                ConfigError(format!(
                    "invalid value '{value}' for '{}': {why}",
                    parameter.name
                ))
            })?;
        let previous = self.values.insert(parameter.name, canonical.clone());
        let alias = alias_of(parameter.name);
        let previous_alias = alias.map(|alias| self.values.insert(alias, canonical));
        if let Err(error) = self.refresh_typed() {
            self.values.insert(
                parameter.name,
                previous.expect("every parameter has a value"),
            );
            if let (Some(alias), Some(Some(value))) = (alias, previous_alias) {
                self.values.insert(alias, value);
            }
            return Err(error);
        }
        Ok(())
    }

    /// CONFIG SET of one parameter.
    ///
    /// # Errors
    /// Redis's CONFIG SET wording for an unknown, immutable or invalid parameter.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let lower = name.to_ascii_lowercase();
        let Some(parameter) = find(&lower) else {
            return Err(ConfigError(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if parameter.mutability == Immutable {
            return Err(ConfigError(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            )));
        }
        // Validated here, not through store()'s message, because the reason itself may
        // contain ": " (the enum error lists values).
        if let Err(why) = validate(parameter, &self.values[parameter.name], value) {
            return Err(ConfigError(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            )));
        }
        // lua-time-limit is busy-reply-threshold's old name: both hold the value.
        let alias = match parameter.name {
            "lua-time-limit" => find("busy-reply-threshold"),
            "busy-reply-threshold" => find("lua-time-limit"),
            _ => None,
        };
        if let Some(alias) = alias {
            let _ = self.store(alias, value);
        }
        self.store(parameter, value).map_err(|error| {
            ConfigError(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {}",
                error.0
            ))
        })
    }

    /// The parameter `name` sets, by its name as listed; `None` for an unknown one. CONFIG SET
    /// refuses a parameter given twice (Redis 7.0 lets a parameter and its old name through
    /// together: `lua-time-limit` with `busy-reply-threshold` is accepted).
    pub fn canonical_name(name: &str) -> Option<&'static str> {
        find(&name.to_ascii_lowercase()).map(|parameter| parameter.name)
    }

    /// CONFIG GET: every (name, value) whose name matches `pattern`.
    pub fn get_matching(&self, pattern: &str) -> Vec<(&'static str, String)> {
        let pattern = pattern.to_ascii_lowercase();
        // A hidden parameter answers its own name only, never a pattern (as Redis's).
        let exact = !pattern.contains(['*', '?', '[']);
        self.values
            .iter()
            .filter(|(name, _)| {
                glob_match(pattern.as_bytes(), name.as_bytes()) && (exact || !HIDDEN.contains(name))
            })
            .map(|(name, value)| (*name, value.clone()))
            .collect()
    }

    /// The text of parameter `name` (for settings read once at start-up, like the transports').
    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    /// A byte-count parameter's value.
    pub fn memory_value(&self, name: &str) -> u64 {
        parse_memory(self.value(name)).map_or(0, |bytes| bytes.max(0) as u64)
    }

    /// True when a command that ran `micros` microseconds goes into the slow log (the
    /// threshold is on and reached).
    pub fn slowlog_logs(&self, micros: u64) -> bool {
        u64::try_from(self.slowlog_log_slower_than_us).is_ok_and(|threshold| micros >= threshold)
    }

    /// What each keyspace records on access: Redis's LFU word under a policy with "lfu" in its
    /// name (its `MAXMEMORY_FLAG_LFU`), the LRU clock under every other, `noeviction` included.
    pub fn access_policy(&self) -> AccessPolicy {
        if self.maxmemory_policy.contains("lrm") {
            return AccessPolicy::Lrm;
        }
        // TinyLFU's counts live in the keyspace's read history; each key keeps the LRU clock,
        // which breaks ties between keys read equally often.
        if self.read_history() || !self.maxmemory_policy.contains("lfu") {
            return AccessPolicy::Lru;
        }
        // Bounded by LFU_PARAMETER when set, so the conversions cannot fail.
        let bounded = |name| u32::try_from(self.integer(name)).expect("bounded by LFU_PARAMETER");
        AccessPolicy::Lfu {
            log_factor: bounded("lfu-log-factor"),
            decay_time_minutes: bounded("lfu-decay-time"),
        }
    }

    /// True under `allkeys-tinylfu`, whose eviction ranks keys by the keyspace's read history
    /// ([`ember_store::Keyspace::set_read_history`]): only then is the history kept.
    pub fn read_history(&self) -> bool {
        self.maxmemory_policy == EVICTION_POLICY_TINYLFU
    }

    /// An integer parameter's current value (names are checked when the table is built).
    pub fn integer(&self, name: &str) -> i64 {
        parse_memory(&self.values[name]).expect("validated") // integers parse as memory too
    }

    fn refresh_typed(&mut self) -> Result<(), ConfigError> {
        self.port = self.integer("port") as u16;
        self.bind = self.values["bind"]
            .split_whitespace()
            .map(|word| {
                word.trim_start_matches('-')
                    .parse::<IpAddr>()
                    .map_err(|_| ConfigError(format!("invalid bind address '{word}'")))
            })
            .collect::<Result<_, _>>()?;
        if self.bind.is_empty() {
            return Err(ConfigError("bind needs at least one address".into()));
        }
        self.threads = self.integer("threads") as usize;
        self.server_cpulist = parse_cpulist(&self.values["server_cpulist"]).ok_or_else(|| {
            ConfigError(format!(
                "invalid server_cpulist '{}' (CPU numbers and ranges, as in 0-3,6 or 0-7:2)",
                self.values["server_cpulist"]
            ))
        })?;
        self.busy_poll_us = self.integer("busy-poll-us") as u64;
        self.shard_reply_timeout_ms = self.integer("shard-reply-timeout-ms") as u64;
        self.io_uring = self.values["io-uring"] == "yes";
        self.requirepass = self.values["requirepass"].clone();
        self.maxclients = self.integer("maxclients") as usize;
        self.proto_max_bulk_len = self.integer("proto-max-bulk-len") as usize;
        self.client_query_buffer_limit = self.integer("client-query-buffer-limit") as usize;
        self.maxmemory = self.integer("maxmemory") as u64;
        self.lazyfree_lazy_expire = self.values["lazyfree-lazy-expire"] == "yes";
        self.lazyfree_lazy_user_del = self.values["lazyfree-lazy-user-del"] == "yes";
        self.lazyfree_lazy_user_flush = self.values["lazyfree-lazy-user-flush"] == "yes";
        self.maxmemory_policy = self.values["maxmemory-policy"].clone();
        self.min_replicas_to_write = self.integer("min-replicas-to-write") as u64;
        self.slowlog_log_slower_than_us = self.integer("slowlog-log-slower-than");
        self.slowlog_max_len = self.integer("slowlog-max-len") as usize;
        self.latency_monitor_threshold_ms = self.integer("latency-monitor-threshold") as u64;
        self.busy_reply_threshold_ms = self.integer("busy-reply-threshold") as u64;
        self.hz = self.integer("hz") as u64;
        self.hash_limits = ember_store::HashLimits {
            listpack_entries_max: self.integer("hash-max-listpack-entries") as usize,
            listpack_value_len_max: self.integer("hash-max-listpack-value") as usize,
        };
        self.hll_sparse_max_bytes = self.integer("hll-sparse-max-bytes") as usize;
        self.metrics_port = self.integer("metrics-port") as u16;
        self.notify_keyspace_events =
            crate::commands::notify::parse_classes(&self.values["notify-keyspace-events"])
                .map_err(ConfigError)?;
        self.pubsub_output_limit =
            crate::shard::pubsub::pubsub_output_limit(&self.values["client-output-buffer-limit"]);
        self.normal_output_limit =
            crate::limits::normal_output_limit(&self.values["client-output-buffer-limit"]);
        self.maxmemory_clients =
            crate::limits::ClientMemoryLimit::parse(&self.values["maxmemory-clients"])
                .ok_or_else(|| ConfigError("argument must be a memory or percent value".into()))?;
        self.timeout_s = self.integer("timeout") as u64;
        self.tcp_keepalive_s = self.integer("tcp-keepalive") as u64;
        self.list_limits.listpack_size = self.integer("list-max-listpack-size");
        self.stream_limits = ember_store::stream::StreamLimits {
            node_bytes_max: self.memory_value("stream-node-max-bytes") as usize,
            node_entries_max: self.values["stream-node-max-entries"]
                .parse()
                .unwrap_or(ember_store::stream::StreamLimits::default().node_entries_max),
        };
        // Sets and sorted sets read their size classes from the process's one setting.
        ember_store::set::set_limits(ember_store::set::SetLimits {
            intset_entries_max: self.integer("set-max-intset-entries") as usize,
            listpack_entries_max: self.integer("set-max-listpack-entries") as usize,
            listpack_value_len_max: self.integer("set-max-listpack-value") as usize,
        });
        ember_store::zset::set_limits(ember_store::zset::ZSetLimits {
            listpack_entries_max: self.integer("zset-max-listpack-entries") as usize,
            listpack_value_len_max: self.integer("zset-max-listpack-value") as usize,
        });
        Ok(())
    }
}

/// Parses a CPU list as Redis's `server_cpulist` and taskset's `--cpu-list` take it: numbers,
/// ranges `A-B` and strided ranges `A-B:S`, separated by commas, in the order given (a CPU
/// named twice is kept once). `None` when it is not such a list; the empty text is no CPU.
pub fn parse_cpulist(text: &str) -> Option<Vec<usize>> {
    const CPUS_MAX: usize = libc::CPU_SETSIZE as usize;
    let mut cpus = Vec::new();
    if text.trim().is_empty() {
        return Some(cpus);
    }
    for item in text.trim().split(',') {
        let (range, stride) = match item.split_once(':') {
            Some((range, stride)) => (range, stride.parse::<usize>().ok().filter(|&s| s > 0)?),
            None => (item, 1),
        };
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (first.parse::<usize>().ok()?, last.parse::<usize>().ok()?),
            None => {
                let cpu = range.parse::<usize>().ok()?;
                (cpu, cpu)
            }
        };
        if first > last || last >= CPUS_MAX {
            return None;
        }
        for cpu in (first..=last).step_by(stride) {
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
    }
    Some(cpus)
}

/// Redis's old names that are one setting with the new ones (`hash-max-ziplist-entries` is
/// `hash-max-listpack-entries`): setting either sets both, so CONFIG GET answers alike.
const ALIASES: &[(&str, &str)] = &[
    ("slave-announce-ip", "replica-announce-ip"),
    ("slave-announce-port", "replica-announce-port"),
    ("slave-ignore-maxmemory", "replica-ignore-maxmemory"),
    ("slave-lazy-flush", "replica-lazy-flush"),
    ("slave-priority", "replica-priority"),
    ("slave-read-only", "replica-read-only"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("repl-ping-slave-period", "repl-ping-replica-period"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
    ("cluster-slave-no-failover", "cluster-replica-no-failover"),
    (
        "cluster-slave-validity-factor",
        "cluster-replica-validity-factor",
    ),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
];

/// The other name of a parameter that has two.
fn alias_of(name: &str) -> Option<&'static str> {
    ALIASES.iter().find_map(|&(old, new)| {
        if name == old {
            Some(new)
        } else if name == new {
            Some(old)
        } else {
            None
        }
    })
}

fn find(name: &str) -> Option<&'static Parameter> {
    PARAMETERS.iter().find(|p| p.name == name)
}

/// Checks `value` for `parameter` (whose current value is `previous`) and returns the form
/// that is stored.
fn validate(parameter: &Parameter, previous: &str, value: &str) -> Result<String, String> {
    match parameter.kind {
        Kind::Integer { min, max } => {
            let number: i64 = value
                .trim()
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if number < min || number > max {
                return Err("argument must be between the allowed bounds".into());
            }
            Ok(number.to_string())
        }
        Kind::Memory => {
            let bytes = parse_memory(value).ok_or("argument must be a memory value".to_string())?;
            if bytes < 0 {
                return Err("argument must be a memory value".into());
            }
            Ok(bytes.to_string())
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(words) => {
            let lower = value.to_ascii_lowercase();
            let extra = words == EVICTION_POLICIES
                && (EVICTION_POLICIES_LRM.contains(&lower.as_str())
                    || lower == EVICTION_POLICY_TINYLFU);
            if words.contains(&lower.as_str()) || extra {
                Ok(lower)
            } else {
                // Redis lists the accepted values.
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    words.join(", ")
                ))
            }
        }
        Kind::Text => match parameter.name {
            "save" if !crate::persistence::valid_save_points(value) => {
                Err("Invalid save parameters".into())
            }
            "dbfilename" if value.contains('/') || value.is_empty() => {
                Err("dbfilename can't be a path, just a filename".into())
            }
            "appendfilename" if value.contains('/') || value.is_empty() => {
                Err("appendfilename can't be a path, just a filename".into())
            }
            "appenddirname" if value.contains('/') || value.is_empty() => {
                Err("appenddirname can't be a path, just a dirname".into())
            }
            "dir" if !std::path::Path::new(value).is_dir() => {
                Err("No such file or directory".into())
            }
            _ => Ok(value.to_string()),
        },
        Kind::Refused(_) if value.is_empty() || value.eq_ignore_ascii_case("no") => {
            Ok(value.to_ascii_lowercase())
        }
        Kind::Refused(why) => Err(why.to_string()),
        Kind::KeyspaceEvents => crate::commands::notify::canonical_classes(previous, value),
        Kind::OutputLimits => crate::shard::pubsub::merge_output_limits(previous, value),
        Kind::MemoryOrPercent => crate::limits::canonical_client_memory(value),
        Kind::MemoryAtLeast(min) => {
            let bytes = parse_memory(value).ok_or("argument must be a memory value".to_string())?;
            if bytes < min {
                return Err(format!(
                    "argument must be between {min} and {} inclusive",
                    i64::MAX
                ));
            }
            Ok(bytes.to_string())
        }
    }
}

/// Parses Redis memory values: `1024`, `1k` (1000), `1kb` (1024), `mb`, `gb`, any case.
pub fn parse_memory(text: &str) -> Option<i64> {
    let lower = text.trim().to_ascii_lowercase();
    let units: &[(&str, i64)] = &[
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
    ];
    for (suffix, multiplier) in units {
        if let Some(number) = lower.strip_suffix(suffix) {
            return number.parse::<i64>().ok()?.checked_mul(*multiplier);
        }
    }
    lower.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CONFIG GET shows a default as it shows the same value set (a memory value in bytes): a
    /// file that repeats CONFIG GET's output reads back the same. Found by the config_file fuzz
    /// target (rdma-log-size showed "64mb", then "67108864" once set to it).
    #[test]
    fn defaults_are_canonical() {
        for parameter in PARAMETERS.iter() {
            let canonical = validate(parameter, parameter.default, parameter.default)
                .unwrap_or_else(|why| panic!("default of {}: {why}", parameter.name));
            assert_eq!(
                canonical, parameter.default,
                "default of {}",
                parameter.name
            );
        }
    }

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn defaults_and_flags() {
        let config = Config::from_args(&args(&[
            "--port",
            "7000",
            "--threads",
            "2",
            "--maxmemory",
            "1mb",
        ]))
        .unwrap();
        assert_eq!(config.port, 7000);
        assert_eq!(config.threads, 2);
        assert_eq!(config.maxmemory, 1024 * 1024);
        assert_eq!(config.bind, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        // DEBUG is off unless asked for, as in Redis 7.
        assert_eq!(config.value("enable-debug-command"), "no");
        assert!(Config::from_args(&args(&["--nonsense", "1"])).is_err());
        assert!(Config::from_args(&args(&["--port", "70000"])).is_err());
    }

    #[test]
    fn config_file() {
        let dir = std::env::temp_dir().join(format!("ember-config-test-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# comment\nport 7001\nmaxmemory-policy allkeys-lru\nsave \"\"\n",
        )
        .unwrap();
        let config = Config::from_args(&args(&[dir.to_str().unwrap(), "--port", "7002"])).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(config.port, 7002);
        assert_eq!(config.maxmemory_policy, "allkeys-lru");
    }

    /// Redis 7's parameters load: Ember applies what it does (tcp-backlog, the old names of
    /// replica settings as aliases), keeps the rest for CONFIG GET and names it as without
    /// effect, and refuses what it cannot honour.
    #[test]
    fn redis_7_parameters_load() {
        let config = Config::from_file_text(
            "daemonize yes\ntcp-backlog 511\nappendonly yes\nappendfsync always\n\
             slave-priority 50\nrepl-diskless-load swapdb\nio-threads 4\n\
             lazyfree-lazy-server-del yes\nactive-defrag-cycle-max 50\nlatency-tracking no\n",
        )
        .unwrap();
        assert_eq!(config.value("replica-priority"), "50");
        assert_eq!(config.integer("tcp-backlog"), 511);
        let mut inert: Vec<&str> = config
            .settings_without_effect()
            .iter()
            .map(|(name, _, _)| *name)
            .collect();
        inert.sort_unstable();
        assert_eq!(
            inert,
            [
                "active-defrag-cycle-max",
                "daemonize",
                "io-threads",
                "lazyfree-lazy-server-del",
                "repl-diskless-load",
                "replica-priority",
            ]
        );
        for refused in [
            "cluster-enabled yes",
            "unixsocket /tmp/redis.sock",
            "repl-diskless-load sometimes",
        ] {
            assert!(Config::from_file_text(refused).is_err(), "{refused}");
        }
        assert!(Config::default().settings_without_effect().is_empty());
    }

    /// Every parameter of the block kept only for Redis's sake (from `cluster-enabled` on) says
    /// why it does nothing, but the two that refuse all but their default and the old names,
    /// whose other name is checked or acts (`min-slaves-to-write` is `min-replicas-to-write`).
    #[test]
    fn redis_only_parameters_say_why() {
        let first = PARAMETERS
            .iter()
            .position(|parameter| parameter.name == "cluster-enabled")
            .expect("the block starts at cluster-enabled");
        for parameter in &PARAMETERS[first..] {
            if matches!(parameter.kind, Kind::Refused(_)) || alias_of(parameter.name).is_some() {
                continue;
            }
            assert!(
                without_effect(parameter.name).is_some(),
                "{} has no reason",
                parameter.name
            );
        }
    }

    #[test]
    fn server_cpulist_takes_redis_lists() {
        assert_eq!(parse_cpulist(""), Some(vec![]));
        assert_eq!(parse_cpulist("3"), Some(vec![3]));
        assert_eq!(parse_cpulist("0-3"), Some(vec![0, 1, 2, 3]));
        assert_eq!(parse_cpulist("0-7:2"), Some(vec![0, 2, 4, 6]));
        assert_eq!(parse_cpulist("4,1-2,4"), Some(vec![4, 1, 2]));
        for bad in ["x", "1-", "-1", "3-1", "0-7:0", "0-7:", "1,,2", "0-99999"] {
            assert_eq!(parse_cpulist(bad), None, "{bad}");
        }
        let config = Config::from_args(&args(&["--server_cpulist", "1,0"])).unwrap();
        assert_eq!(config.server_cpulist, vec![1, 0]);
        assert_eq!(config.value("server_cpulist"), "1,0");
        assert!(Config::from_args(&args(&["--server_cpulist", "zero"])).is_err());
        assert!(without_effect("server_cpulist").is_none());
    }

    #[test]
    fn access_policy_follows_maxmemory_policy() {
        let mut config = Config::default();
        assert_eq!(config.access_policy(), AccessPolicy::Lru);
        config.set("lfu-log-factor", "3").unwrap();
        config.set("lfu-decay-time", "0").unwrap();
        assert_eq!(config.access_policy(), AccessPolicy::Lru);
        for (policy, expected) in [
            (
                "allkeys-lfu",
                AccessPolicy::Lfu {
                    log_factor: 3,
                    decay_time_minutes: 0,
                },
            ),
            (
                "volatile-lfu",
                AccessPolicy::Lfu {
                    log_factor: 3,
                    decay_time_minutes: 0,
                },
            ),
            ("volatile-lru", AccessPolicy::Lru),
            ("allkeys-random", AccessPolicy::Lru),
            ("allkeys-tinylfu", AccessPolicy::Lru),
            ("ALLKEYS-TINYLFU", AccessPolicy::Lru),
        ] {
            config.set("maxmemory-policy", policy).unwrap();
            assert_eq!(config.access_policy(), expected, "{policy}");
            assert_eq!(
                config.read_history(),
                policy.eq_ignore_ascii_case("allkeys-tinylfu"),
                "{policy}"
            );
        }
        assert!(config.set("lfu-log-factor", "2147483648").is_err());
        assert!(config.set("lfu-decay-time", "-1").is_err());
    }

    #[test]
    fn slow_log_threshold() {
        let mut config = Config::default();
        config.set("slowlog-log-slower-than", "10000").unwrap();
        assert!(!config.slowlog_logs(9_999));
        assert!(config.slowlog_logs(10_000));
        config.set("slowlog-log-slower-than", "0").unwrap();
        assert!(config.slowlog_logs(0));
        config.set("slowlog-log-slower-than", "-1").unwrap();
        assert!(!config.slowlog_logs(u64::MAX));
    }

    #[test]
    fn config_set_and_get() {
        let mut config = Config::default();
        config.set("hash-max-listpack-entries", "512").unwrap();
        assert_eq!(config.get_matching("hash-max-listpack-*")[0].1, "512");
        assert!(config.set("port", "1").unwrap_err().0.contains("immutable"));
        assert!(config
            .set("nope", "1")
            .unwrap_err()
            .0
            .starts_with("ERR Unknown option"));
        assert!(config.set("maxmemory-policy", "bogus").is_err());
        assert_eq!(parse_memory("2gb"), Some(2 * 1024 * 1024 * 1024));
    }

    #[test]
    fn hash_limits_follow_both_names() {
        let mut config = Config::default();
        assert_eq!(config.hash_limits, ember_store::HashLimits::default());
        assert_eq!(config.hll_sparse_max_bytes, 3000);
        config.set("hash-max-ziplist-entries", "7").unwrap();
        config.set("hash-max-listpack-value", "9").unwrap();
        assert_eq!(config.hash_limits.listpack_entries_max, 7);
        assert_eq!(config.hash_limits.listpack_value_len_max, 9);
        assert_eq!(config.value("hash-max-listpack-entries"), "7");
        assert_eq!(config.value("hash-max-ziplist-value"), "9");
    }
}
