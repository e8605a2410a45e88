//! Every keyspace command's argument parser, through the handler the executor runs, against an
//! in-process keyspace (no server: the handlers parse and run in one step, so the parse is
//! reached by running them).
//!
//! The input is a short program: each step picks a command from the server's table (those that
//! run on a keyspace: strings, lists, sets, sorted sets, hashes, streams, geo, bitmaps,
//! HyperLogLog, Bloom/cuckoo/count-min/top-k, SORT, DUMP/RESTORE, keys, ...) and builds its
//! arguments from the bytes: a key of a few, a keyword or number the commands read, or any bytes.
//! Commands run one after another on the same keyspace, so later ones meet values of every type.
//!
//! Checked, for every command: the key finder names positions inside the arguments; the executor's
//! arity check; no panic; a command that succeeds writes exactly one whole RESP frame; one that
//! fails writes nothing and returns an error that is one line and starts with an upper-case code
//! (`ERR`, `WRONGTYPE`, ...), as Redis's errors do (RedisBloom's commands excepted: the module
//! replies some errors without a code, and Ember as it); and no command makes the heap grow,
//! even for a moment, by more than [`COMMAND_PEAK_BYTES_MAX`] (a few bytes of arguments must
//! not size an allocation without bound: issue 16).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use ember_resp::{parse_frame, Protocol, ReplySink};
use ember_server::commands::{self, notify, CommandSpec, Ctx, Handler, KeyspaceFn};
use ember_server::config::Config;
use ember_server::protection::{Registry, ShardProtection};
use ember_server::shard::pubsub::PubSub;
use ember_server::stats::ShardStats;
use ember_store::Keyspace;
use libfuzzer_sys::arbitrary::{Result as ArbitraryResult, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Commands per input.
const STEPS_MAX: usize = 12;
/// Arguments after the name.
const ARGS_MAX: usize = 12;
/// The time commands run at.
const NOW_MS: u64 = 1_764_000_000_000;

/// Most a command may raise the heap above where it started, at its peak: the largest value
/// one command may create (a Bloom, cuckoo or count-min structure: 1 GiB, their bounds in
/// ember-store; strings stay under the target's proto-max-bulk-len of 1 MiB), plus slack for
/// the reply and the command's own bookkeeping. A command that copies a value once per time
/// it is named, or sizes a structure past its bound, goes over it. (DUMP or COPY of a 1 GiB
/// value could take twice that legitimately; no word below sizes one that large.)
const COMMAND_PEAK_BYTES_MAX: usize = (1 << 30) + (64 << 20);

/// The system allocator, counting the bytes allocated now and their peak, so that each
/// command's peak can be checked (the target is single-threaded; libFuzzer's own threads
/// allocate little and only make the figure larger).
struct CountingAllocator;

static HEAP_BYTES: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

fn heap_grew(bytes: usize) {
    let now = HEAP_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    HEAP_PEAK_BYTES.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call goes to `System` unchanged; the counters are only arithmetic beside it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        heap_grew(layout.size());
        // SAFETY: the caller's contract for `alloc`, passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        heap_grew(layout.size());
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the new block allocated before the old one is freed, as a moving
        // realloc does.
        heap_grew(new_size);
        // SAFETY: as `dealloc` for `ptr` and `layout`; `new_size` is the caller's.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Keys: few, so that commands meet each other's values.
const KEYS: [&[u8]; 5] = [b"k", b"other", b"{k}2", b"", b"k\x00\xff"];
/// Words the argument parsers look for.
const WORDS: &[&[u8]] = &[
    b"EX",
    b"PX",
    b"EXAT",
    b"PXAT",
    b"KEEPTTL",
    b"PERSIST",
    b"NX",
    b"XX",
    b"GT",
    b"LT",
    b"CH",
    b"INCR",
    b"GET",
    b"WITHSCORES",
    b"WITHSCORE",
    b"LIMIT",
    b"BYSCORE",
    b"BYLEX",
    b"REV",
    b"COUNT",
    b"MATCH",
    b"TYPE",
    b"NOVALUES",
    b"WITHVALUES",
    b"BEFORE",
    b"AFTER",
    b"LEFT",
    b"RIGHT",
    b"MIN",
    b"MAX",
    b"SUM",
    b"WEIGHTS",
    b"AGGREGATE",
    b"RANK",
    b"MAXLEN",
    b"MINID",
    b"NOMKSTREAM",
    b"IDLE",
    b"TIME",
    b"RETRYCOUNT",
    b"FORCE",
    b"JUSTID",
    b"LASTID",
    b"ENTRIESREAD",
    b"STREAMS",
    b"BLOCK",
    b"GROUP",
    b"CREATE",
    b"SETID",
    b"DESTROY",
    b"CONSUMERS",
    b"FULL",
    b"STORE",
    b"STOREDIST",
    b"ASC",
    b"DESC",
    b"ALPHA",
    b"BY",
    b"WITHCOORD",
    b"WITHDIST",
    b"WITHHASH",
    b"FROMMEMBER",
    b"FROMLONLAT",
    b"BYRADIUS",
    b"BYBOX",
    b"ANY",
    b"M",
    b"KM",
    b"FT",
    b"MI",
    b"BIT",
    b"BYTE",
    b"OVERFLOW",
    b"WRAP",
    b"SAT",
    b"FAIL",
    b"u8",
    b"i16",
    b"u63",
    b"i64",
    b"#1",
    b"REPLACE",
    b"ABSTTL",
    b"FREQ",
    b"DB",
    b"LEN",
    b"IDX",
    b"MINMATCHLEN",
    b"FIELDS",
    b"FNX",
    b"FXX",
    b"CAPACITY",
    b"ERROR",
    b"EXPANSION",
    b"NONSCALING",
    b"ITEMS",
    b"NOCREATE",
    b"BUCKETSIZE",
    b"MAXITERATIONS",
    // Redis 8.2-8.6: SET's and DELEX's comparisons, BITOP's new operations, the stream
    // deletions' policies and IDS block, idempotent XADD and XCFGSET.
    b"IFEQ",
    b"IFNE",
    b"IFDEQ",
    b"IFDNE",
    b"DIFF",
    b"DIFF1",
    b"ANDOR",
    b"ONE",
    b"KEEPREF",
    b"DELREF",
    b"ACKED",
    b"IDS",
    b"IDMP",
    b"IDMPAUTO",
    b"IDMP-DURATION",
    b"IDMP-MAXSIZE",
    b"-",
    b"+",
    b"*",
    b"$",
    b">",
    b"0-0",
    b"1-1",
    b"(1",
    b"[a",
    b"-inf",
    b"+inf",
    b"inf",
    b"nan",
    b"0",
    b"1",
    b"-1",
    b"2",
    b"3",
    b"10",
    b"100",
    b"1.5",
    b"-0.0",
    b"1e300",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"4294967295",
    // A top-k heap of 50 million slots (1.2 GB: past TOP_K_BYTES_MAX, and under the bound of
    // cells top-k had before it, which let TOPK.RESERVE allocate it).
    b"50000000",
    b"18446744073709551615",
    b"13.361389",
    b"38.115556",
    b"*1",
    b"h?llo",
];

/// The commands that run on a keyspace, from the server's table.
static KEYSPACE_COMMANDS: LazyLock<Vec<(&'static CommandSpec, KeyspaceFn)>> = LazyLock::new(|| {
    commands::COMMANDS
        .iter()
        .filter_map(|spec| match spec.handler {
            Handler::Keyspace(handler) => Some((spec, handler)),
            _ => None,
        })
        .collect()
});

struct Shard {
    keyspace: Keyspace,
    config: Config,
    stats: ShardStats,
    pubsub: PubSub,
    protection: ShardProtection,
}

impl Shard {
    fn new() -> Self {
        let mut config = Config::default();
        // The smallest Redis allows: commands that size a value from an argument (SETRANGE,
        // SETBIT) are bounded by it.
        config
            .set("proto-max-bulk-len", "1mb")
            .expect("a valid setting");
        Self {
            keyspace: Keyspace::new(),
            config,
            stats: ShardStats::new(),
            pubsub: PubSub::new(1),
            protection: ShardProtection::new(Arc::new(Registry::default())),
        }
    }

    /// Runs one command as the executor does once it has its spec: arity, keys, the handler.
    fn run(&mut self, spec: &CommandSpec, handler: KeyspaceFn, args: &[&[u8]], protocol: Protocol) {
        if !commands::arity_ok(spec.arity, args.len()) {
            return;
        }
        for position in spec.key_positions(args) {
            assert!(
                (1..args.len()).contains(&position),
                "{}: key position {position} of {} arguments",
                spec.name,
                args.len()
            );
        }
        let mut out = ReplySink::resp(Vec::new(), protocol);
        // Every handler's append-only records are built too (and checked below).
        let mut propagation = ember_server::aof::Propagation::recording();
        let mut ctx = Ctx {
            keyspace: &mut self.keyspace,
            db: 0,
            protocol,
            now_ms: NOW_MS,
            out: &mut out,
            config: &self.config,
            stats: &self.stats,
            no_touch: false,
            script: false,
            pubsub: &self.pubsub,
            protection: &self.protection,
            propagation: &mut propagation,
        };
        notify::before_command(ctx.keyspace, &self.config);
        let heap_start_bytes = HEAP_BYTES.load(Ordering::Relaxed);
        HEAP_PEAK_BYTES.store(heap_start_bytes, Ordering::Relaxed);
        let result = handler(&mut ctx, args);
        let heap_growth_bytes = HEAP_PEAK_BYTES
            .load(Ordering::Relaxed)
            .saturating_sub(heap_start_bytes);
        assert!(
            heap_growth_bytes <= COMMAND_PEAK_BYTES_MAX,
            "{}: the heap grew by {heap_growth_bytes} bytes at its peak",
            spec.name
        );
        // What the append-only file would log replays: known commands of a valid arity.
        for record in propagation.records() {
            let index = commands::lookup(&record[0]).unwrap_or_else(|| {
                panic!("{}: logs an unknown command {:?}", spec.name, record[0])
            });
            assert!(
                commands::arity_ok(commands::COMMANDS[index].arity, record.len()),
                "{}: logs {} with {} arguments",
                spec.name,
                commands::COMMANDS[index].name,
                record.len()
            );
        }
        notify::after_command(&mut self.keyspace, &self.pubsub, &self.config, NOW_MS);
        let written = std::mem::take(out.bytes_mut());
        match result {
            Ok(()) => match parse_frame(&written) {
                Ok(Some((_, consumed))) => assert_eq!(
                    consumed,
                    written.len(),
                    "{}: more than one reply",
                    spec.name
                ),
                other => panic!("{}: reply is not one frame: {other:?}", spec.name),
            },
            Err(error) => {
                assert!(written.is_empty(), "{}: a reply and an error", spec.name);
                let message = &error.0;
                let code: String = message.chars().take_while(|c| *c != ' ').collect();
                // RedisBloom's commands (BF., CF., CMS., TOPK.) reply some errors without a
                // code ("Bad capacity"), as the module does through RM_ReplyWithError.
                let module = spec.name.contains('.');
                assert!(
                    !message.is_empty() && (module || code.chars().all(|c| c.is_ascii_uppercase())),
                    "{}: error without a code: {message:?}",
                    spec.name
                );
                // As the executor writes it (CR and LF as spaces, as Redis does): one frame.
                let mut encoded = Vec::new();
                ember_resp::encode::error(&mut encoded, message);
                assert!(
                    matches!(parse_frame(&encoded), Ok(Some((_, n))) if n == encoded.len()),
                    "{}: error is not one frame: {message:?}",
                    spec.name
                );
            }
        }
    }
}

fn argument(u: &mut Unstructured<'_>) -> ArbitraryResult<Vec<u8>> {
    Ok(match u.choose_index(8)? {
        0 | 1 => u.choose(&KEYS)?.to_vec(),
        2..=5 => u.choose(WORDS)?.to_vec(),
        6 => u.arbitrary::<i64>()?.to_string().into_bytes(),
        _ => u.arbitrary::<&[u8]>()?.to_vec(),
    })
}

fn step(shard: &mut Shard, u: &mut Unstructured<'_>, protocol: Protocol) -> ArbitraryResult<()> {
    let (spec, handler) = *u.choose(&KEYSPACE_COMMANDS[..])?;
    let count = u.int_in_range(0..=ARGS_MAX)?;
    let mut args = vec![spec.name.as_bytes().to_vec()];
    for _ in 0..count {
        args.push(argument(u)?);
    }
    let views: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    shard.run(spec, handler, &views, protocol);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let protocol = if u.arbitrary::<bool>().unwrap_or(false) {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    let mut shard = Shard::new();
    for _ in 0..STEPS_MAX {
        if u.is_empty() || step(&mut shard, &mut u, protocol).is_err() {
            break;
        }
    }
});
