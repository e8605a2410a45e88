//! MEMORY USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE and HELP.
//!
//! MEMORY USAGE asks the shard owning the key (the table gives its key position, for ACLs);
//! STATS gathers every shard's figures; the other subcommands run where the connection lives,
//! reading the process-wide gauge and allocator.

use std::rc::Rc;

use ember_resp::ReplySink;

use super::{errors, is, parse_integer, CommandResult};
use crate::client::Client;
use crate::commands::remote::admin_on;
use crate::commands::server::admin::{gather_info, human_bytes};
use crate::memory::{allocated_bytes, GAUGE};
use crate::shard::{AdminRequest, Shard, ShardReply};

const HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Print this help.",
];

/// MEMORY subcommand [args]: USAGE asks the key's shard, STATS every shard; the others read
/// the process-wide gauge and allocator where the connection lives.
pub async fn run(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let sub = args[1];
    if is(sub, "usage") && args.len() >= 3 {
        return usage(shard, client, args, out).await;
    }
    if is(sub, "stats") && args.len() == 2 {
        return stats(shard, client, out).await;
    }
    if is(sub, "doctor") && args.len() == 2 {
        out.verbatim(doctor().as_bytes());
        return Ok(());
    }
    if is(sub, "malloc-stats") && args.len() == 2 {
        out.verbatim(malloc_stats().as_bytes());
        return Ok(());
    }
    if is(sub, "purge") && args.len() == 2 {
        purge();
        out.ok();
        return Ok(());
    }
    if is(sub, "help") && args.len() == 2 {
        out.array_len(HELP.len());
        for line in HELP {
            out.simple(line.as_bytes());
        }
        return Ok(());
    }
    Err(super::unknown_subcommand_message("memory", sub).into())
}

/// MEMORY USAGE key [SAMPLES count]: the key's estimated bytes (key, value, entry), or nil.
async fn usage(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let mut rest = &args[3..];
    while let [option, value, tail @ ..] = rest {
        if !is(option, "samples") {
            return Err(errors::SYNTAX.into());
        }
        if parse_integer(value)? < 0 {
            return Err(errors::SYNTAX.into());
        }
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(errors::SYNTAX.into());
    }
    // Every value's size is kept exactly, so SAMPLES changes nothing.
    let key = args[2];
    let request = AdminRequest::MemoryUsage {
        db: client.db,
        key: key.to_vec(),
    };
    match admin_on(shard, client.hold, shard.owner_of(key), request).await {
        ShardReply::Integer(bytes) if bytes >= 0 => out.integer(bytes),
        _ => out.null(),
    }
    Ok(())
}

/// MEMORY STATS: Redis 7.0's fields, in its order, from every shard's figures.
async fn stats(shard: &Rc<Shard>, client: &Client, out: &mut ReplySink) -> CommandResult {
    let (total, _) = gather_info(shard, client.hold).await;
    let used = GAUGE.refresh();
    let peak = GAUGE.peak_bytes().max(used);
    let figures = Figures::gather(shard, &total, used);
    let databases: Vec<(usize, (u64, u64))> = total
        .databases
        .iter()
        .zip(&figures.tables)
        .enumerate()
        .filter(|(_, ((keys, _), _))| *keys > 0)
        .map(|(db, (_, &tables))| (db, tables))
        .collect();
    let keys: u64 = total.databases.iter().map(|&(keys, _)| keys as u64).sum();
    let net = used.saturating_sub(figures.startup);
    let allocator = figures.allocator;
    out.map_len(27 + databases.len());
    let integer = |out: &mut ReplySink, name: &str, value: i64| {
        out.bulk(name.as_bytes());
        out.integer(value);
    };
    integer(out, "peak.allocated", peak as i64);
    integer(out, "total.allocated", used as i64);
    integer(out, "startup.allocated", figures.startup as i64);
    integer(out, "replication.backlog", 0);
    integer(out, "clients.slaves", 0);
    integer(out, "clients.normal", figures.clients as i64);
    integer(out, "cluster.links", 0);
    integer(out, "aof.buffer", 0);
    // The shards' interpreters hold the compiled scripts: Ember's Lua caches.
    integer(out, "lua.caches", (figures.scripts + figures.lua) as i64);
    integer(
        out,
        "functions.caches",
        (figures.functions + figures.library_lua) as i64,
    );
    for (db, (main, expires)) in databases {
        out.bulk(format!("db.{db}").as_bytes());
        out.map_len(3);
        integer(out, "overhead.hashtable.main", main as i64);
        integer(out, "overhead.hashtable.expires", expires as i64);
        integer(out, "overhead.hashtable.slot-to-keys", 0);
    }
    integer(out, "overhead.total", figures.overhead() as i64);
    integer(out, "keys.count", keys as i64);
    integer(out, "keys.bytes-per-key", (net / keys.max(1)) as i64);
    integer(out, "dataset.bytes", figures.dataset() as i64);
    let double = |out: &mut ReplySink, name: &str, value: f64| {
        out.bulk(name.as_bytes());
        out.double(value);
    };
    double(out, "dataset.percentage", figures.dataset_percentage());
    double(
        out,
        "peak.percentage",
        used as f64 * 100.0 / peak.max(1) as f64,
    );
    integer(out, "allocator.allocated", allocator.allocated as i64);
    integer(out, "allocator.active", allocator.active as i64);
    integer(out, "allocator.resident", allocator.resident as i64);
    let names = [
        (
            "allocator-fragmentation.ratio",
            "allocator-fragmentation.bytes",
        ),
        ("allocator-rss.ratio", "allocator-rss.bytes"),
        ("rss-overhead.ratio", "rss-overhead.bytes"),
        ("fragmentation", "fragmentation.bytes"),
    ];
    for ((ratio, bytes), (ratio_name, bytes_name)) in figures.fragmentation().into_iter().zip(names)
    {
        double(out, ratio_name, ratio);
        integer(out, bytes_name, bytes);
    }
    Ok(())
}

fn doctor() -> String {
    let used = allocated_bytes();
    let resident = Allocator::read().resident;
    let peak = GAUGE.peak_bytes().max(used);
    let mut findings = Vec::new();
    if peak > used.saturating_mul(3) / 2 && peak > (64 << 20) {
        findings.push(format!(
            " * Peak memory: the peak ({}) is more than 150% of the memory used now ({}).",
            human_bytes(peak),
            human_bytes(used)
        ));
    }
    if resident > used.saturating_mul(14) / 10 && resident > (64 << 20) {
        findings.push(format!(
            " * High allocator fragmentation: {} resident for {} allocated.",
            human_bytes(resident),
            human_bytes(used)
        ));
    }
    if findings.is_empty() {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.".into()
    } else {
        format!(
            "Sam, I detected a few issues in this Ember instance memory implants:\n\n{}\n",
            findings.join("\n")
        )
    }
}

/// MEMORY PURGE, as Redis's: the calling shard's thread cache goes back to its arena, and every
/// arena returns its dirty pages to the system now instead of on jemalloc's decay schedule
/// (after a large DEL or FLUSHALL, the resident memory drops at once).
fn purge() {
    // `MALLCTL_ARENAS_ALL`: every arena.
    const NAMES: [&[u8]; 2] = [b"thread.tcache.flush\0", b"arena.4096.purge\0"];
    for name in NAMES {
        // SAFETY: both names are NUL-terminated and name void controls, which take and give
        // no value (every pointer null, every length 0).
        unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
        }
    }
}

/// MEMORY MALLOC-STATS: jemalloc's own report (`malloc_stats_print`), as Redis prints it, after
/// a line of the figures the gauge reads.
fn malloc_stats() -> String {
    let allocator = Allocator::read();
    let read = |value: Result<usize, tikv_jemalloc_ctl::Error>| value.unwrap_or(0);
    let mut report = format!(
        "jemalloc stats: allocated {} active {} resident {} mapped {} retained {} metadata {}\n",
        allocator.allocated,
        allocator.active,
        allocator.resident,
        read(tikv_jemalloc_ctl::stats::mapped::read()),
        read(tikv_jemalloc_ctl::stats::retained::read()),
        read(tikv_jemalloc_ctl::stats::metadata::read()),
    );
    /// Appends one piece of jemalloc's report to the `String` behind `opaque`.
    unsafe extern "C" fn append(opaque: *mut std::ffi::c_void, text: *const std::ffi::c_char) {
        // SAFETY: `opaque` is the `String` passed below, alive and not otherwise borrowed for
        // the call; jemalloc passes a NUL-terminated string.
        let (report, text) = unsafe {
            (
                &mut *opaque.cast::<String>(),
                std::ffi::CStr::from_ptr(text),
            )
        };
        report.push_str(&text.to_string_lossy());
    }
    // SAFETY: the callback only appends to `report`, which outlives the call; a null options
    // string asks for the whole report.
    unsafe {
        tikv_jemalloc_sys::malloc_stats_print(
            Some(append),
            (&mut report as *mut String).cast(),
            std::ptr::null(),
        );
    }
    report
}

/// What the allocator says of its memory (jemalloc's `stats.allocated`, `stats.active` and
/// `stats.resident`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Allocator {
    /// Bytes handed out to the program.
    pub allocated: u64,
    /// Bytes of the pages that hold them (allocated plus the gaps in those pages).
    pub active: u64,
    /// Bytes of the allocator's pages resident in memory.
    pub resident: u64,
}

impl Allocator {
    /// Reads the allocator's statistics now.
    pub fn read() -> Self {
        let _ = tikv_jemalloc_ctl::epoch::advance();
        Self {
            allocated: tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64,
            active: tikv_jemalloc_ctl::stats::active::read().unwrap_or(0) as u64,
            resident: tikv_jemalloc_ctl::stats::resident::read().unwrap_or(0) as u64,
        }
    }
}

/// The memory figures of INFO memory beyond the gauge: what `used_memory` holds besides the
/// data (Redis's `getMemoryOverheadData`), from every shard's [`crate::stats::ShardInfo`].
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// `used_memory`.
    pub used: u64,
    /// `used_memory_startup`.
    pub startup: u64,
    /// The process's resident set.
    pub rss: u64,
    /// The connections' buffers and state (`mem_clients_normal`).
    pub clients: u64,
    /// Cached scripts (`used_memory_scripts_eval`).
    pub scripts: u64,
    /// Function libraries (`used_memory_functions`).
    pub functions: u64,
    /// The shards' Lua interpreters for scripts. Unlike Redis's, they allocate from the
    /// process's allocator, so `used_memory` holds them, and they count as overhead.
    pub lua: u64,
    /// The shards' Lua interpreters for function libraries (counted as `lua`).
    pub library_lua: u64,
    /// The key tables and TTL indexes of every database, all shards together (main, expires).
    pub tables: Vec<(u64, u64)>,
    /// The allocator's own figures.
    pub allocator: Allocator,
}

impl Figures {
    /// The figures now, `used` being `used_memory` and `total` every shard's INFO figures.
    pub fn gather(shard: &crate::shard::Shard, total: &crate::stats::ShardInfo, used: u64) -> Self {
        let scripts = &shard.shared.scripts;
        Self {
            used,
            startup: GAUGE.startup_bytes(),
            rss: rss_bytes(),
            clients: crate::limits::client_memory(),
            scripts: scripts.cached_bytes() as u64,
            functions: scripts.libraries.read().expect("libraries lock").bytes() as u64,
            lua: total.lua_bytes as u64,
            library_lua: total.library_lua_bytes as u64,
            tables: total
                .table_bytes
                .iter()
                .map(|&(main, expires)| (main as u64, expires as u64))
                .collect(),
            allocator: Allocator::read(),
        }
    }

    /// Bytes of `used_memory` that are not data: start-up, clients, scripts, interpreters and
    /// the tables' own structure (at most `used_memory`).
    pub fn overhead(&self) -> u64 {
        let tables: u64 = self
            .tables
            .iter()
            .map(|(main, expires)| main + expires)
            .sum();
        (self.startup
            + self.clients
            + self.scripts
            + self.functions
            + self.lua
            + self.library_lua
            + tables)
            .min(self.used)
    }

    /// Redis's four fragmentation figures, each a ratio and its excess in bytes: the
    /// allocator's active pages over what it handed out, its resident pages over the active
    /// ones, the process's resident set over the allocator's, and that set over `used_memory`.
    pub fn fragmentation(&self) -> [(f64, i64); 4] {
        let allocator = self.allocator;
        [
            (allocator.active, allocator.allocated),
            (allocator.resident, allocator.active),
            (self.rss, allocator.resident),
            (self.rss, self.used),
        ]
        .map(|(part, whole)| {
            (
                part as f64 / whole.max(1) as f64,
                part as i64 - whole as i64,
            )
        })
    }

    /// `used_memory_dataset`: what is left for keys and values.
    pub fn dataset(&self) -> u64 {
        self.used - self.overhead()
    }

    /// The dataset's share of what was allocated since start-up, percent.
    pub fn dataset_percentage(&self) -> f64 {
        let net = self.used.saturating_sub(self.startup);
        if net == 0 {
            return 0.0;
        }
        self.dataset() as f64 * 100.0 / net as f64
    }
}

/// The process's resident set (`used_memory_rss`), from /proc.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| {
            text.split_whitespace()
                .nth(1)
                .and_then(|pages| pages.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// The machine's memory (`total_system_memory`), from sysconf.
pub fn total_system_memory() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages < 0 || page_size < 0 {
        return 0;
    }
    pages as u64 * page_size as u64
}

/// `mem_allocator`: jemalloc and its version, as Redis says it (`jemalloc-5.3.0`).
pub fn allocator_name() -> String {
    let version = tikv_jemalloc_ctl::version::read().unwrap_or("unknown");
    format!("jemalloc-{}", version.split('-').next().unwrap_or(version))
}
