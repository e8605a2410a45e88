//! Requests of a few bytes that ask the server for far more memory than they carry (issue 16:
//! "every allocation sized by a client's request bounded before it happens"), against the real
//! binary through the `redis` crate. Each case sends one hostile request and checks the exact
//! reply (Redis's or RedisBloom's own error where the request is refused, the exact result
//! where it is served), that the server's peak resident set size (VmHWM, reset before each
//! case, so a transient allocation freed before the test looks still counts) and its
//! `used_memory` grew by less than [`GROWTH_BYTES_MAX`], and that it still answers PING and
//! keeps its data.
//!
//! Two kinds of case: sizes read from arguments (TOPK.RESERVE's k, width and depth,
//! CMS.INITBYDIM, BF.RESERVE, SETRANGE's offset, AI.TENSORSET's shape...), refused before
//! anything is allocated; and a source named many times (`BITOP OR dst k k k ...`,
//! `CMS.MERGE dst N src src ...`, `PFCOUNT h h h ...`), served without a copy per repetition.

mod common;

use common::{peak_rss_bytes, reset_peak_rss, run, show, Ember};

/// How much a hostile request may make the server's peak RSS or used_memory grow: room for
/// the request itself, a destination-sized result and the allocator's slack, and far below
/// what each case would take unbounded (hundreds of MiB to gigabytes).
const GROWTH_BYTES_MAX: u64 = 64 << 20;

/// A key every case must leave as it was.
const CANARY_KEY: &str = "{b}canary";
const CANARY_VALUE: &[u8] = b"still here";

/// One server for a group of cases, with the canary stored.
struct Probe {
    ember: Ember,
    con: redis::Connection,
    /// What went wrong so far, one line a check.
    failures: Vec<String>,
}

impl Probe {
    fn start() -> Self {
        let ember = Ember::start(2);
        let mut con = ember.connect(false);
        let stored = show(&run(
            &mut con,
            &[b"SET", CANARY_KEY.as_bytes(), CANARY_VALUE],
        ));
        assert_eq!(stored, "+OK");
        Self {
            ember,
            con,
            failures: Vec::new(),
        }
    }

    /// Runs `args` (set-up, not measured) and checks its reply.
    fn setup(&mut self, args: &[&[u8]], expected: &str) {
        let got = show(&run(&mut self.con, args));
        assert_eq!(got, expected, "set-up {}", printable(args));
    }

    /// Runs `args` (a check after a case) and records a failure unless it replies `expected`.
    fn check(&mut self, args: &[&[u8]], expected: &str) {
        let got = show(&run(&mut self.con, args));
        if got != expected {
            self.failures.push(format!(
                "{}\n  expected {expected}\n  got      {got}",
                printable(args)
            ));
        }
    }

    fn used_memory(&mut self) -> u64 {
        common::info_field(&mut self.con, "memory", "used_memory")
    }

    /// Sends the hostile request `args` and checks its reply and the growth of peak RSS and
    /// used_memory (a failure is recorded, so that one run shows every case), then that the
    /// server still serves its data (a failure there ends the test).
    fn hostile(&mut self, name: &str, args: &[&[u8]], expected: &str) {
        let pid = self.ember.pid();
        assert!(
            reset_peak_rss(pid),
            "{name}: cannot reset the peak RSS of pid {pid} (/proc/{pid}/clear_refs)"
        );
        let rss_before = peak_rss_bytes(pid);
        let used_before = self.used_memory();
        let got = show(&run(&mut self.con, args));
        let rss_growth = peak_rss_bytes(pid).saturating_sub(rss_before);
        let used_growth = self.used_memory().saturating_sub(used_before);
        // The figures, for `--nocapture` (the session notes quote them).
        eprintln!("{name}: peak RSS +{rss_growth} bytes, used_memory +{used_growth} bytes");
        if got != expected {
            self.failures.push(format!(
                "{name}: reply to {}\n  expected {expected}\n  got      {got}",
                printable(args)
            ));
        }
        for (what, growth) in [("peak RSS", rss_growth), ("used_memory", used_growth)] {
            if growth >= GROWTH_BYTES_MAX {
                self.failures.push(format!(
                    "{name}: {what} grew by {growth} bytes (bound {GROWTH_BYTES_MAX})"
                ));
            }
        }
        self.ember.assert_serving(CANARY_KEY, CANARY_VALUE);
    }

    /// Fails the test with every failure recorded.
    fn finish(self) {
        assert!(self.failures.is_empty(), "{}", self.failures.join("\n"));
    }
}

/// A request as text for a failure message (a long one cut short).
fn printable(args: &[&[u8]]) -> String {
    let words: Vec<String> = args
        .iter()
        .take(8)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    let more = args.len().saturating_sub(words.len());
    if more > 0 {
        format!("{} ... ({more} more)", words.join(" "))
    } else {
        words.join(" ")
    }
}

/// `args` with `key` appended `times` times.
fn repeated<'a>(args: &[&'a [u8]], key: &'a [u8], times: usize) -> Vec<&'a [u8]> {
    let mut all = args.to_vec();
    all.extend(std::iter::repeat_n(key, times));
    all
}

/// Sizes read from arguments: each request is refused with its family's own error before
/// anything is allocated, and creates nothing.
#[test]
fn sizes_from_arguments_are_refused_before_allocating() {
    let mut probe = Probe::start();
    probe.setup(&[b"SADD", b"{b}set", b"member"], "(integer) 1");
    let topk_memory = "(error) ERR Insufficient memory to create topk data structure";
    let cms_memory = "(error) CMS: Insufficient memory to create the key";
    let bit_offset = "(error) ERR bit offset is not an integer or out of range";
    #[rustfmt::skip]
    let cases: &[(&str, &[&[u8]], &str)] = &[
        // 30 million heap slots of 24 bytes: 720 MB for a 25-byte request.
        ("topk: k alone", &[b"TOPK.RESERVE", b"{b}t1", b"30000000"], topk_memory),
        ("topk: table and heap together past 512 MiB, each below it",
            &[b"TOPK.RESERVE", b"{b}t2", b"12000000", b"33554432", b"1", b"0.9"], topk_memory),
        ("topk: largest dimensions",
            &[b"TOPK.RESERVE", b"{b}t3", b"1", b"4294967295", b"4294967295", b"0.9"], topk_memory),
        ("topk: RedisBloom's own case",
            &[b"TOPK.RESERVE", b"{b}t4", b"3", b"2000000000", b"200000000", b"1"], topk_memory),
        ("cms: by dimensions", &[b"CMS.INITBYDIM", b"{b}c", b"1000000000", b"1000000000"], cms_memory),
        ("cms: by dimensions past 2^32", &[b"CMS.INITBYDIM", b"{b}c", b"2294967296", b"2294967296"], cms_memory),
        ("cms: dimensions whose product overflows",
            &[b"CMS.INITBYDIM", b"{b}c", b"100000000000000", b"100000000000000"],
            "(error) CMS: invalid init arguments"),
        ("cms: by probability",
            &[b"CMS.INITBYPROB", b"{b}c", b"0.0000000000000001", b"0.0000000000000001"], cms_memory),
        ("bloom: capacity and error rate",
            &[b"BF.RESERVE", b"{b}f", b"0.000001", b"1073741824"],
            "(error) ERR Insufficient memory to create filter"),
        ("cuckoo: capacity past RedisBloom's range",
            &[b"CF.RESERVE", b"{b}f", b"2147483648"],
            "(error) Capacity must be in the range [2 * BUCKETSIZE, 1073741824]"),
        ("setrange: offset past proto-max-bulk-len",
            &[b"SETRANGE", b"{b}s", b"536870912", b"x"],
            "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
        ("setbit: offset past proto-max-bulk-len", &[b"SETBIT", b"{b}s", b"4294967296", b"1"], bit_offset),
        ("bitfield: offset past proto-max-bulk-len",
            &[b"BITFIELD", b"{b}s", b"SET", b"u8", b"4294967296", b"1"], bit_offset),
        ("ai.tensorset: zeros of a shape past proto-max-bulk-len",
            &[b"AI.TENSORSET", b"{b}a", b"DOUBLE", b"268435456"],
            "(error) ERR tensor too large: 2147483648 bytes with no data given, more than proto-max-bulk-len (536870912)"),
        ("srandmember: repeats",
            &[b"SRANDMEMBER", b"{b}set", b"-2000000000"],
            "(error) ERR SRANDMEMBER returns at most 1048576 members with repeats"),
    ];
    for (name, args, expected) in cases {
        probe.hostile(name, args, expected);
    }
    // Each top-k case has its own key, so that one created on a server without the bound
    // does not turn the next into "key already exists".
    for key in [
        "{b}t1", "{b}t2", "{b}t3", "{b}t4", "{b}c", "{b}f", "{b}s", "{b}a",
    ] {
        probe.check(&[b"EXISTS", key.as_bytes()], "(integer) 0");
    }
    probe.finish();
}

/// `BITOP OR dst k k k ...`: the result of a source named many times, with no copy of the
/// source per repetition (8 MiB named 40 times would be 320 MiB).
#[test]
fn bitop_reads_a_repeated_source_without_copying_it() {
    let mut probe = Probe::start();
    let source_len = 8 << 20;
    let last = (source_len - 1).to_string();
    probe.setup(
        &[b"SETRANGE", b"{b}k", last.as_bytes(), b"\x81"],
        &format!("(integer) {source_len}"),
    );
    probe.setup(
        &[b"SETRANGE", b"{b}k", b"0", b"\x0f"],
        &format!("(integer) {source_len}"),
    );
    for operation in ["OR", "AND", "XOR"] {
        let args = repeated(&[b"BITOP", operation.as_bytes(), b"{b}dst"], b"{b}k", 40);
        probe.hostile(
            &format!("bitop {operation}"),
            &args,
            &format!("(integer) {source_len}"),
        );
        // OR and AND of one value with itself give it back; XOR of an even count, zeros.
        let bits = if operation == "XOR" { 0 } else { 4 + 2 };
        probe.check(&[b"BITCOUNT", b"{b}dst"], &format!("(integer) {bits}"));
        probe.check(&[b"STRLEN", b"{b}dst"], &format!("(integer) {source_len}"));
    }
    probe.finish();
}

/// `CMS.MERGE dst 40 src src ...`: the weighted sum from borrowed sketches, with no copy of
/// the source per repetition (an 8 MB sketch named 40 times would be 320 MB); the destination
/// may also be among its own sources.
#[test]
fn cms_merge_reads_a_repeated_source_without_copying_it() {
    let mut probe = Probe::start();
    for key in ["{b}src", "{b}dst"] {
        probe.setup(&[b"CMS.INITBYDIM", key.as_bytes(), b"500000", b"4"], "+OK");
    }
    probe.setup(&[b"CMS.INCRBY", b"{b}src", b"item", b"3"], "[(integer) 3]");
    let args = repeated(&[b"CMS.MERGE", b"{b}dst", b"40"], b"{b}src", 40);
    probe.hostile("cms.merge, one source 40 times", &args, "+OK");
    probe.check(&[b"CMS.QUERY", b"{b}dst", b"item"], "[(integer) 120]");
    let mut weighted = repeated(&[b"CMS.MERGE", b"{b}dst", b"41", b"{b}dst"], b"{b}src", 40);
    weighted.push(b"WEIGHTS");
    weighted.extend(std::iter::repeat_n(&b"2"[..], 41));
    probe.hostile(
        "cms.merge, weighted, the destination among its sources",
        &weighted,
        "+OK",
    );
    // 2 * 120 (the destination) + 40 * 2 * 3.
    probe.check(&[b"CMS.QUERY", b"{b}dst", b"item"], "[(integer) 480]");
    probe.check(
        &[b"CMS.INFO", b"{b}dst"],
        "[+width, (integer) 500000, +depth, (integer) 4, +count, (integer) 480]",
    );
    probe.finish();
}

/// `PFCOUNT h h h ...` and `PFMERGE dst h h h ...`: each source is merged into one set of
/// registers as it is read, so a dense HyperLogLog (12 KiB) named 20000 times costs one copy
/// at a time, not 240 MB.
#[test]
fn hyperloglog_reads_a_repeated_source_without_copying_it() {
    let mut probe = Probe::start();
    let elements: Vec<String> = (0..5000).map(|index| format!("element{index}")).collect();
    let mut add: Vec<&[u8]> = vec![b"PFADD", b"{b}h"];
    add.extend(elements.iter().map(|element| element.as_bytes()));
    probe.setup(&add, "(integer) 1");
    // Redis's dense encoding: 16 bytes of header and 16384 registers of 6 bits.
    probe.setup(&[b"STRLEN", b"{b}h"], "(integer) 12304");
    let count = show(&run(&mut probe.con, &[b"PFCOUNT", b"{b}h"]));
    let estimate: u64 = count
        .strip_prefix("(integer) ")
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("PFCOUNT: {count}"));
    assert!(
        (4800..=5200).contains(&estimate),
        "PFCOUNT of 5000: {count}"
    );
    let args = repeated(&[b"PFCOUNT"], b"{b}h", 20_000);
    probe.hostile("pfcount, one key 20000 times", &args, &count);
    let args = repeated(&[b"PFMERGE", b"{b}dst"], b"{b}h", 20_000);
    probe.hostile("pfmerge, one source 20000 times", &args, "+OK");
    probe.check(&[b"PFCOUNT", b"{b}dst"], &count);
    probe.finish();
}
