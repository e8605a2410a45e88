//! RedisBloom's commands (BF, CF, CMS, TOPK) through the `redis` crate: each command's
//! replies and errors as RedisBloom gives them (no RedisBloom server here to compare with:
//! the expected texts are RedisBloom's, read from its source), TYPE names, and the measured
//! false-positive rate of scalable Bloom filters.

mod common;

use common::{run, show, Ember};

/// Runs `cases` in order on one connection; every reply must read as expected.
fn expect_all(con: &mut redis::Connection, cases: &[(&[&str], &str)]) {
    let mut failures = Vec::new();
    for (args, expected) in cases {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        let got = show(&run(con, &args));
        if got != *expected {
            failures.push(format!(
                "{args:?}\n  expected {expected}\n  got      {got}",
                args = args
                    .iter()
                    .map(|a| String::from_utf8_lossy(a))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bloom_commands() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&[&str], &str)] = &[
        (&["BF.RESERVE", "bf", "0.01", "1000"], "+OK"),
        (
            &["BF.RESERVE", "bf", "0.01", "1000"],
            "(error) ERR item exists",
        ),
        (
            &["BF.RESERVE", "x", "abc", "1000"],
            "(error) ERR bad error rate",
        ),
        (
            &["BF.RESERVE", "x", "1.5", "1000"],
            "(error) ERR error rate must be in the range (0.000000, 1.000000)",
        ),
        (
            &["BF.RESERVE", "x", "0.01", "ten"],
            "(error) ERR bad capacity",
        ),
        (
            &["BF.RESERVE", "x", "0.01", "0"],
            "(error) ERR capacity must be in the range [1, 1073741824]",
        ),
        (
            &["BF.RESERVE", "x", "0.01", "10", "EXPANSION"],
            "(error) ERR no expansion",
        ),
        (
            &["BF.RESERVE", "x", "0.01", "10", "EXPANSION", "two"],
            "(error) ERR bad expansion",
        ),
        (
            &[
                "BF.RESERVE",
                "x",
                "0.01",
                "10",
                "NONSCALING",
                "EXPANSION",
                "2",
            ],
            "(error) Nonscaling filters cannot expand",
        ),
        (
            &["BF.RESERVE", "x", "0.01", "10", "EXPANSION", "40000"],
            "(error) ERR expansion must be in the range [0, 32768]",
        ),
        (
            &["BF.RESERVE", "x"],
            "(error) ERR wrong number of arguments for 'bf.reserve' command",
        ),
        (&["EXISTS", "x"], "(integer) 0"),
        (&["BF.ADD", "bf", "a"], "(integer) 1"),
        (&["BF.ADD", "bf", "a"], "(integer) 0"),
        (
            &["BF.MADD", "bf", "a", "b", "c"],
            "[(integer) 0, (integer) 1, (integer) 1]",
        ),
        (&["BF.EXISTS", "bf", "b"], "(integer) 1"),
        (&["BF.EXISTS", "bf", "zz"], "(integer) 0"),
        (&["BF.EXISTS", "missing", "zz"], "(integer) 0"),
        (
            &["BF.MEXISTS", "bf", "a", "zz", "c"],
            "[(integer) 1, (integer) 0, (integer) 1]",
        ),
        (&["BF.CARD", "bf"], "(integer) 3"),
        (&["BF.CARD", "missing"], "(integer) 0"),
        (&["TYPE", "bf"], "+MBbloom--"),
        (&["BF.INFO", "bf", "items"], "[(integer) 3]"),
        (&["BF.INFO", "bf", "CAPACITY"], "[(integer) 1000]"),
        (
            &["BF.INFO", "bf", "bogus"],
            "(error) Invalid information value",
        ),
        (&["BF.INFO", "missing"], "(error) ERR not found"),
        (&["BF.ADD", "auto", "x"], "(integer) 1"),
        (&["BF.INFO", "auto", "capacity"], "[(integer) 100]"),
        (&["BF.RESERVE", "fixed", "0.01", "2", "NONSCALING"], "+OK"),
        (
            &["BF.MADD", "fixed", "a", "b", "c", "d"],
            // The redis crate turns an error element into the reply's error.
            "(error) ERR non scaling filter is full",
        ),
        (
            &["BF.ADD", "fixed", "e"],
            "(error) ERR non scaling filter is full",
        ),
        (&["BF.INFO", "fixed", "expansion"], "[(nil)]"),
        (
            &["BF.INSERT", "ins", "NOCREATE", "ITEMS", "a"],
            "(error) ERR not found",
        ),
        (
            &[
                "BF.INSERT",
                "ins",
                "CAPACITY",
                "5",
                "ERROR",
                "0.001",
                "EXPANSION",
                "4",
                "ITEMS",
                "a",
                "b",
            ],
            "[(integer) 1, (integer) 1]",
        ),
        (&["BF.INFO", "ins", "expansion"], "[(integer) 4]"),
        (
            &["BF.INSERT", "ins", "CAPACITY", "0", "ITEMS", "a"],
            "(error) Bad capacity",
        ),
        (
            &["BF.INSERT", "ins", "ERROR", "2", "ITEMS", "a"],
            "(error) Bad error rate",
        ),
        (
            &["BF.INSERT", "ins", "BOGUS", "ITEMS", "a"],
            "(error) Unknown argument received",
        ),
        (
            &["BF.INSERT", "ins", "ITEMS"],
            "(error) ERR wrong number of arguments for 'bf.insert' command",
        ),
        (&["SET", "s", "v"], "+OK"),
        (
            &["BF.ADD", "s", "a"],
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (&["BF.EXISTS", "s", "a"], "(integer) 0"),
        (
            &["BF.CARD", "s"],
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
    ];
    expect_all(&mut con, cases);
    // Scaling: a filter of 10 at expansion 2 past 10 items has more sub-filters and capacity.
    expect_all(&mut con, &[(&["BF.RESERVE", "grow", "0.01", "10"], "+OK")]);
    for index in 0..100 {
        let _: i64 = redis::cmd("BF.ADD")
            .arg("grow")
            .arg(index)
            .query(&mut con)
            .unwrap();
    }
    let filters: Vec<i64> = redis::cmd("BF.INFO")
        .arg("grow")
        .arg("filters")
        .query(&mut con)
        .unwrap();
    let capacity: Vec<i64> = redis::cmd("BF.INFO")
        .arg("grow")
        .arg("capacity")
        .query(&mut con)
        .unwrap();
    assert_eq!((filters[0], capacity[0]), (4, 150));
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("grow")
        .query(&mut con)
        .unwrap();
    assert!(usage > 150, "MEMORY USAGE counts the bit arrays: {usage}");
    // SCAN TYPE knows the module type name (the cursor walks every shard).
    let (mut cursor, mut found) = ("0".to_string(), Vec::new());
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("TYPE")
            .arg("MBbloom--")
            .query(&mut con)
            .unwrap();
        found.extend(keys);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    found.sort();
    assert_eq!(found, ["auto", "bf", "fixed", "grow", "ins"]);
}

#[test]
fn cuckoo_commands() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&[&str], &str)] = &[
        (&["CF.RESERVE", "cf", "1000"], "+OK"),
        (&["CF.RESERVE", "cf", "1000"], "(error) ERR item exists"),
        (&["CF.RESERVE", "x", "abc"], "(error) Bad capacity"),
        (
            &["CF.RESERVE", "x", "1", "BUCKETSIZE", "2"],
            "(error) Capacity must be in the range [2 * BUCKETSIZE, 1073741824]",
        ),
        (
            &["CF.RESERVE", "x", "100", "BUCKETSIZE", "300"],
            "(error) BUCKETSIZE: value must be in the range [1, 255]",
        ),
        (
            &["CF.RESERVE", "x", "100", "MAXITERATIONS", "0"],
            "(error) MAXITERATIONS: value must be in the range [1, 65535]",
        ),
        (
            &["CF.RESERVE", "x", "100", "EXPANSION", "x"],
            "(error) Couldn't parse EXPANSION",
        ),
        (
            &["CF.RESERVE", "x", "100", "EXPANSION"],
            "(error) ERR wrong number of arguments for 'cf.reserve' command",
        ),
        (&["CF.ADD", "cf", "a"], "(integer) 1"),
        (&["CF.ADD", "cf", "a"], "(integer) 1"),
        (&["CF.ADDNX", "cf", "a"], "(integer) 0"),
        (&["CF.ADDNX", "cf", "b"], "(integer) 1"),
        (&["CF.COUNT", "cf", "a"], "(integer) 2"),
        (&["CF.EXISTS", "cf", "a"], "(integer) 1"),
        (&["CF.EXISTS", "cf", "zz"], "(integer) 0"),
        (
            &["CF.MEXISTS", "cf", "a", "zz"],
            "[(integer) 1, (integer) 0]",
        ),
        (&["CF.DEL", "cf", "a"], "(integer) 1"),
        (&["CF.COUNT", "cf", "a"], "(integer) 1"),
        (&["CF.DEL", "cf", "zz"], "(integer) 0"),
        (&["CF.DEL", "missing", "a"], "(error) Not found"),
        (
            &["CF.INSERT", "cf", "ITEMS", "c", "d"],
            "[(integer) 1, (integer) 1]",
        ),
        (
            &["CF.INSERTNX", "cf", "ITEMS", "c", "e"],
            "[(integer) 0, (integer) 1]",
        ),
        (
            &["CF.INSERT", "new", "NOCREATE", "ITEMS", "c"],
            "(error) ERR not found",
        ),
        (
            &["CF.INSERT", "new", "CAPACITY", "2", "ITEMS", "c"],
            "(error) Capacity must be in the range [cf-bucket-size * 2, 1073741824]",
        ),
        (
            &["CF.INSERT", "new", "BOGUS", "ITEMS", "c"],
            "(error) Unknown argument received",
        ),
        (&["TYPE", "cf"], "+MBbloomCF"),
        (&["CF.INFO", "missing"], "(error) ERR not found"),
        (&["SET", "s", "v"], "+OK"),
        (
            &["CF.ADD", "s", "a"],
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
    ];
    expect_all(&mut con, cases);
    let info: Vec<redis::Value> = redis::cmd("CF.INFO").arg("cf").query(&mut con).unwrap();
    let text: Vec<String> = info.iter().map(common::show_value).collect();
    assert_eq!(text.len(), 16);
    assert_eq!(
        &text[2..],
        [
            "+Number of buckets",
            "(integer) 512",
            "+Number of filters",
            "(integer) 1",
            "+Number of items inserted",
            "(integer) 5",
            "+Number of items deleted",
            "(integer) 1",
            "+Bucket size",
            "(integer) 2",
            "+Expansion rate",
            "(integer) 1",
            "+Max iterations",
            "(integer) 20"
        ]
    );
}

#[test]
fn count_min_and_top_k_commands() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&[&str], &str)] = &[
        (&["CMS.INITBYDIM", "cms", "2000", "5"], "+OK"),
        (&["CMS.INITBYDIM", "cms", "2000", "5"], "(error) CMS: key already exists"),
        (&["CMS.INITBYDIM", "x", "0", "5"], "(error) CMS: invalid width"),
        (&["CMS.INITBYDIM", "x", "10", "x"], "(error) CMS: invalid depth"),
        (&["CMS.INITBYPROB", "p", "0.001", "0.01"], "+OK"),
        (&["CMS.INFO", "p"], "[+width, (integer) 2000, +depth, (integer) 7, +count, (integer) 0]"),
        (&["CMS.INITBYPROB", "x", "1", "0.01"], "(error) CMS: invalid overestimation value"),
        (&["CMS.INITBYPROB", "x", "0.1", "0"], "(error) CMS: invalid prob value"),
        (&["CMS.INCRBY", "cms", "a", "3", "b", "4"], "[(integer) 3, (integer) 4]"),
        (&["CMS.INCRBY", "cms", "a", "-1"], "(error) CMS: Number cannot be negative"),
        (&["CMS.INCRBY", "cms", "a", "x"], "(error) CMS: Cannot parse number"),
        (&["CMS.INCRBY", "missing", "a", "1"], "(error) CMS: key does not exist"),
        (&["CMS.QUERY", "cms", "a", "b", "c"], "[(integer) 3, (integer) 4, (integer) 0]"),
        (&["CMS.INFO", "cms"], "[+width, (integer) 2000, +depth, (integer) 5, +count, (integer) 7]"),
        (&["CMS.INITBYDIM", "{m}dest", "2000", "5"], "+OK"),
        (&["CMS.INITBYDIM", "{m}src", "2000", "5"], "+OK"),
        (&["CMS.INCRBY", "{m}src", "a", "10"], "[(integer) 10]"),
        (&["CMS.MERGE", "{m}dest", "2", "cms", "{m}src", "WEIGHTS", "1", "3"], "+OK"),
        (&["CMS.QUERY", "{m}dest", "a", "b"], "[(integer) 33, (integer) 4]"),
        (&["CMS.MERGE", "{m}dest", "1", "p"], "(error) CMS: width/depth is not equal"),
        (&["CMS.MERGE", "{m}dest", "2", "cms"], "(error) CMS: wrong number of keys"),
        (&["CMS.MERGE", "{m}dest", "0", "cms"], "(error) CMS: Number of keys must be positive"),
        (&["CMS.MERGE", "nodest", "1", "cms"], "(error) CMS: key does not exist"),
        (&["TYPE", "cms"], "+CMSk-TYPE"),
        (&["TOPK.RESERVE", "top", "1"], "+OK"),
        (&["TOPK.RESERVE", "top", "1"], "(error) TopK: key already exists"),
        (&["TOPK.RESERVE", "x", "0"], "(error) TopK: invalid k"),
        (&["TOPK.RESERVE", "x", "2", "8", "7", "1.5"], "(error) TopK: invalid decay value. must be '<= 1' & '> 0'"),
        (&["TOPK.RESERVE", "x", "2", "8"], "(error) ERR wrong number of arguments for 'topk.reserve' command"),
        (&["TOPK.INFO", "top"], "[+k, (integer) 1, +width, (integer) 8, +depth, (integer) 7, +decay, \"0.9\"]"),
        (&["TOPK.ADD", "top", "a", "b"], "[(nil), \"a\"]"),
        (&["TOPK.INCRBY", "top", "c", "10"], "[\"b\"]"),
        (&["TOPK.QUERY", "top", "c", "a", "b"], "[(integer) 1, (integer) 0, (integer) 0]"),
        (&["TOPK.LIST", "top"], "[\"c\"]"),
        (&["TOPK.LIST", "top", "WITHCOUNT"], "[\"c\", (integer) 10]"),
        (&["TOPK.LIST", "top", "bogus"], "(error) WITHCOUNT keyword expected"),
        (&["TOPK.INCRBY", "top", "d", "200000"], "(error) TopK: increment must be an integer greater or equal to 0 and smaller or equal to 100,000"),
        // A bad increment among others: an error in its place, the other pairs counted, and
        // one reply element per pair (the connection stays in step: found by fuzzing).
        (&["TOPK.INCRBY", "top", "d", "x", "f", "3"], "(error) TopK: increment must be an integer greater or equal to 0 and smaller or equal to 100,000"),
        (&["TOPK.COUNT", "top", "f"], "[(integer) 3]"),
        (&["TOPK.ADD", "missing", "a"], "(error) TopK: key does not exist"),
        (&["TYPE", "top"], "+TopK-TYPE"),
    ];
    expect_all(&mut con, cases);
}

/// The measured false-positive rate of a filter of `capacity` items at `error_rate`, probing
/// 100,000 items never added.
fn false_positive_rate(
    con: &mut redis::Connection,
    key: &str,
    capacity: usize,
    error_rate: f64,
) -> f64 {
    let _: () = redis::cmd("BF.RESERVE")
        .arg(key)
        .arg(error_rate)
        .arg(capacity)
        .query(con)
        .unwrap();
    for start in (0..capacity).step_by(1000) {
        let mut command = redis::cmd("BF.MADD");
        command.arg(key);
        for index in start..(start + 1000).min(capacity) {
            command.arg(format!("member:{index}"));
        }
        let _: Vec<i64> = command.query(con).unwrap();
    }
    let probes = 100_000;
    let mut positives = 0;
    for start in (0..probes).step_by(1000) {
        let mut command = redis::cmd("BF.MEXISTS");
        command.arg(key);
        for index in start..start + 1000 {
            command.arg(format!("stranger:{index}"));
        }
        let found: Vec<i64> = command.query(con).unwrap();
        positives += found.iter().sum::<i64>();
    }
    positives as f64 / probes as f64
}

#[test]
fn bloom_false_positive_rate_stays_under_the_requested_rate() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    for capacity in [1_000, 10_000, 100_000] {
        for error_rate in [0.01, 0.001] {
            let key = format!("fp:{capacity}:{error_rate}");
            let measured = false_positive_rate(&mut con, &key, capacity, error_rate);
            eprintln!("capacity {capacity}, error rate {error_rate}: measured {measured}");
            assert!(
                measured <= error_rate,
                "capacity {capacity}, rate {error_rate}: measured {measured}"
            );
        }
    }
}

/// Dumps the filter at `from` with `dump` (BF.SCANDUMP or CF.SCANDUMP) and loads every pair
/// into `to` with `load`, as RedisBloom's documentation does it; returns the pairs' count.
fn dump_and_load(
    con: &mut redis::Connection,
    dump: &str,
    load: &str,
    from: &str,
    to: &str,
) -> usize {
    let mut iter = 0i64;
    let mut pairs = 0;
    loop {
        let (next, data): (i64, Option<Vec<u8>>) =
            redis::cmd(dump).arg(from).arg(iter).query(con).unwrap();
        if next == 0 {
            return pairs;
        }
        let data = data.expect("a chunk before the end");
        let _: () = redis::cmd(load)
            .arg(to)
            .arg(next)
            .arg(data)
            .query(con)
            .unwrap();
        pairs += 1;
        iter = next;
    }
}

/// Membership answers of `items` from `command` (BF.MEXISTS or CF.MEXISTS).
fn memberships(
    con: &mut redis::Connection,
    command: &str,
    key: &str,
    items: &[String],
) -> Vec<i64> {
    redis::cmd(command).arg(key).arg(items).query(con).unwrap()
}

#[test]
fn scandump_and_loadchunk_rebuild_the_filter() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let added: Vec<String> = (0..3000).map(|index| format!("item:{index}")).collect();
    let probes: Vec<String> = (0..6000).map(|index| format!("item:{index}")).collect();

    // A scaling Bloom filter of several sub-filters, and a non-scaling one.
    let _: () = redis::cmd("BF.RESERVE")
        .arg("bf")
        .arg(0.01)
        .arg(500)
        .query(&mut con)
        .unwrap();
    let _: Vec<i64> = redis::cmd("BF.MADD")
        .arg("bf")
        .arg(&added)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("BF.RESERVE")
        .arg("fixed")
        .arg(0.001)
        .arg(5000)
        .arg("NONSCALING")
        .query(&mut con)
        .unwrap();
    let _: Vec<i64> = redis::cmd("BF.MADD")
        .arg("fixed")
        .arg(&added)
        .query(&mut con)
        .unwrap();
    for (from, to) in [("bf", "bf-copy"), ("fixed", "fixed-copy")] {
        // The header, then one chunk per sub-filter (each is under 16 MiB).
        let pairs = dump_and_load(&mut con, "BF.SCANDUMP", "BF.LOADCHUNK", from, to);
        let info: redis::Value = redis::cmd("BF.INFO").arg(from).query(&mut con).unwrap();
        let filters = match &info {
            redis::Value::Array(fields) => match fields[5] {
                redis::Value::Int(filters) => filters as usize,
                _ => panic!("{info:?}"),
            },
            _ => panic!("{info:?}"),
        };
        assert_eq!(pairs, 1 + filters, "{from}");
        assert!(from == "fixed" || filters > 2, "{info:?}");
        let copy_info: redis::Value = redis::cmd("BF.INFO").arg(to).query(&mut con).unwrap();
        assert_eq!(info, copy_info);
        assert_eq!(
            memberships(&mut con, "BF.MEXISTS", from, &probes),
            memberships(&mut con, "BF.MEXISTS", to, &probes)
        );
        // The copy keeps working: it scales (or fills) as the original does.
        let more: Vec<String> = (0..1000).map(|index| format!("more:{index}")).collect();
        let original: redis::Value = redis::cmd("BF.MADD")
            .arg(from)
            .arg(&more)
            .query(&mut con)
            .unwrap();
        let copied: redis::Value = redis::cmd("BF.MADD")
            .arg(to)
            .arg(&more)
            .query(&mut con)
            .unwrap();
        assert_eq!(original, copied);
    }
    let header: (i64, Vec<u8>) = redis::cmd("BF.SCANDUMP")
        .arg("bf")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(header.0, 1);
    let _: () = redis::cmd("SET")
        .arg("str")
        .arg("x")
        .query(&mut con)
        .unwrap();
    expect_all(
        &mut con,
        &[
            (&["BF.SCANDUMP", "missing", "0"], "(error) ERR not found"),
            (
                &["BF.SCANDUMP", "str", "0"],
                "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (
                &["BF.SCANDUMP", "bf", "x"],
                "(error) Second argument must be numeric",
            ),
            (&["BF.SCANDUMP", "bf", "-5"], "[(integer) 0, \"\"]"),
            (&["BF.SCANDUMP", "bf", "100000000"], "[(integer) 0, \"\"]"),
            (
                &["BF.LOADCHUNK", "new", "x", "data"],
                "(error) ERR Second argument must be numeric",
            ),
            (
                &["BF.LOADCHUNK", "new", "1", "garbage"],
                "(error) ERR received bad data",
            ),
            (
                &["BF.LOADCHUNK", "new", "2", "data"],
                "(error) ERR not found",
            ),
            (
                &["BF.LOADCHUNK", "str", "1", "data"],
                "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (
                &["BF.LOADCHUNK", "bf", "3", "data"],
                "(error) ERR received bad data",
            ),
            (
                &["BF.LOADCHUNK", "bf", "100000000", "data"],
                "(error) ERR invalid offset - no link found",
            ),
            (
                &["BF.SCANDUMP", "bf"],
                "(error) ERR wrong number of arguments for 'bf.scandump' command",
            ),
            (
                &["BF.LOADCHUNK", "bf", "1"],
                "(error) ERR wrong number of arguments for 'bf.loadchunk' command",
            ),
        ],
    );
    let _: () = redis::cmd("BF.LOADCHUNK")
        .arg("raw")
        .arg(1)
        .arg(&header.1)
        .query(&mut con)
        .unwrap();
    // A chunk starting inside the first sub-filter but longer than it.
    let too_big: redis::RedisResult<()> = redis::cmd("BF.LOADCHUNK")
        .arg("raw")
        .arg((1 << 20) + 2)
        .arg(vec![0u8; 1 << 20])
        .query(&mut con);
    assert!(
        format!("{too_big:?}").contains("invalid chunk - Too big for current filter"),
        "{too_big:?}"
    );

    // Cuckoo filters: several sub-filters, with deletions.
    let _: () = redis::cmd("CF.RESERVE")
        .arg("cf")
        .arg(512)
        .query(&mut con)
        .unwrap();
    let _: Vec<i64> = redis::cmd("CF.INSERT")
        .arg("cf")
        .arg("ITEMS")
        .arg(&added)
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("CF.DEL")
        .arg("cf")
        .arg("item:7")
        .query(&mut con)
        .unwrap();
    let pairs = dump_and_load(&mut con, "CF.SCANDUMP", "CF.LOADCHUNK", "cf", "cf-copy");
    assert!(pairs > 2, "{pairs}");
    let info: redis::Value = redis::cmd("CF.INFO").arg("cf").query(&mut con).unwrap();
    let copy_info: redis::Value = redis::cmd("CF.INFO")
        .arg("cf-copy")
        .query(&mut con)
        .unwrap();
    assert_eq!(info, copy_info);
    assert_eq!(
        memberships(&mut con, "CF.MEXISTS", "cf", &probes),
        memberships(&mut con, "CF.MEXISTS", "cf-copy", &probes)
    );
    let header: (i64, Vec<u8>) = redis::cmd("CF.SCANDUMP")
        .arg("cf")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!((header.0, header.1.len()), (1, 38));
    let _: () = redis::cmd("CF.RESERVE")
        .arg("cf-empty")
        .arg(100)
        .query(&mut con)
        .unwrap();
    expect_all(
        &mut con,
        &[
            (&["CF.SCANDUMP", "cf-empty", "0"], "[(integer) 0, (nil)]"),
            (&["CF.SCANDUMP", "cf", "-1"], "(error) Invalid position"),
            (&["CF.SCANDUMP", "missing", "0"], "(error) ERR not found"),
            (
                &["CF.SCANDUMP", "str", "0"],
                "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (&["CF.SCANDUMP", "cf", "100000000"], "[(integer) 0, (nil)]"),
            (
                &["CF.LOADCHUNK", "new", "0", "data"],
                "(error) Invalid position",
            ),
            (
                &["CF.LOADCHUNK", "new", "1", "short"],
                "(error) Invalid header",
            ),
            (
                &["CF.LOADCHUNK", "new", "5", "data"],
                "(error) ERR not found",
            ),
            (
                &["CF.LOADCHUNK", "str", "1", "data"],
                "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (
                &["CF.LOADCHUNK", "cf", "1", "data"],
                "(error) ERR item exists",
            ),
            (
                &["CF.LOADCHUNK", "cf", "3", "data"],
                "(error) Couldn't load chunk!",
            ),
            (
                &["CF.LOADCHUNK", "cf", "100000000", "data"],
                "(error) Couldn't load chunk!",
            ),
        ],
    );
    let mut bad = header.1.clone();
    bad[8] = 3; // three buckets: not a power of two
    let refused: redis::RedisResult<()> = redis::cmd("CF.LOADCHUNK")
        .arg("bad")
        .arg(1)
        .arg(bad)
        .query(&mut con);
    assert!(
        format!("{refused:?}").contains("create filter!"),
        "{refused:?}"
    );
}

/// The examples of RedisBloom's command pages (redis.io/commands/bf.info, cf.info, cms.info,
/// topk.info, topk.list), reply for reply, in RESP2 and RESP3. One difference is Redis's, not
/// Ember's: the pages print TOPK.INFO's decay as `"0.92500000000000004"`, Redis 7.0's `%.17g`;
/// Redis 7.2 formats doubles shortest-round-trip (`"0.925"`), and so does Ember.
#[test]
fn reply_shapes_as_redisbloom_documents() {
    let ember = Ember::start(2);
    let setup: &[(&[&str], &str)] = &[
        (&["BF.ADD", "bf1", "observation1"], "(integer) 1"),
        (&["CF.RESERVE", "cf", "1000"], "+OK"),
        (&["CMS.INITBYDIM", "test", "2000", "7"], "+OK"),
        (&["TOPK.RESERVE", "topk", "50", "2000", "7", "0.925"], "+OK"),
        (&["TOPK.RESERVE", "tk", "3"], "+OK"),
        (
            &["TOPK.INCRBY", "tk", "foo", "12", "42", "7", "bar", "2"],
            "[(nil), (nil), (nil)]",
        ),
    ];
    let mut con = ember.connect(false);
    expect_all(&mut con, setup);
    expect_all(
        &mut con,
        &[
            (
                &["BF.INFO", "bf1"],
                "[+Capacity, (integer) 100, +Size, (integer) 240, +Number of filters, (integer) 1, \
                 +Number of items inserted, (integer) 1, +Expansion rate, (integer) 2]",
            ),
            (&["BF.INFO", "bf1", "CAPACITY"], "[(integer) 100]"),
            (
                &["CF.INFO", "cf"],
                "[+Size, (integer) 1080, +Number of buckets, (integer) 512, +Number of filters, \
                 (integer) 1, +Number of items inserted, (integer) 0, +Number of items deleted, \
                 (integer) 0, +Bucket size, (integer) 2, +Expansion rate, (integer) 1, \
                 +Max iterations, (integer) 20]",
            ),
            (
                &["CMS.INFO", "test"],
                "[+width, (integer) 2000, +depth, (integer) 7, +count, (integer) 0]",
            ),
            (
                &["TOPK.INFO", "topk"],
                "[+k, (integer) 50, +width, (integer) 2000, +depth, (integer) 7, +decay, \"0.925\"]",
            ),
            (
                &["TOPK.LIST", "tk", "WITHCOUNT"],
                "[\"foo\", (integer) 12, \"42\", (integer) 7, \"bar\", (integer) 2]",
            ),
            (&["TOPK.LIST", "tk"], "[\"foo\", \"42\", \"bar\"]"),
        ],
    );
    let mut con = ember.connect(true);
    expect_all(
        &mut con,
        &[
            (
                &["BF.INFO", "bf1"],
                "{+Capacity: (integer) 100, +Size: (integer) 240, +Number of filters: (integer) 1, \
                 +Number of items inserted: (integer) 1, +Expansion rate: (integer) 2}",
            ),
            (&["BF.INFO", "bf1", "CAPACITY"], "{+Capacity: (integer) 100}"),
            (&["BF.EXISTS", "bf1", "observation1"], "(boolean) true"),
            (
                &["CMS.INFO", "test"],
                "{+width: (integer) 2000, +depth: (integer) 7, +count: (integer) 0}",
            ),
            (
                &["TOPK.INFO", "topk"],
                "{+k: (integer) 50, +width: (integer) 2000, +depth: (integer) 7, +decay: (double) 0.925}",
            ),
        ],
    );
}

/// redis-py's own helpers (`r.bf()`, `r.cf()`, `r.cms()`, `r.topk()`, including BF.SCANDUMP/
/// LOADCHUNK as redis-py documents them) through examples/bloom_guard.py, which checks every
/// reply and exits non-zero when one is wrong. Skipped without redis-py.
#[test]
fn redis_py_helpers() {
    let Some((python, python_path)) = common::python_with_redis_py() else {
        eprintln!("skipped: redis-py is not installed (ci/setup-servertests.sh puts it in .deps/python-redis)");
        return;
    };
    let ember = Ember::start(2);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/bloom_guard.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .args(["--port", &ember.port.to_string()])
        .env("PYTHONPATH", python_path)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("bloom_guard: all checks passed"), "{text}");
}

fn info_field(con: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").query(con).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO has no {field}"))
        .trim()
        .parse()
        .unwrap()
}

/// Every key of `type_name` through a full SCAN TYPE walk.
fn scan_type(con: &mut redis::Connection, type_name: &str) -> Vec<String> {
    let (mut cursor, mut found) = ("0".to_string(), Vec::new());
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("TYPE")
            .arg(type_name)
            .query(con)
            .unwrap();
        found.extend(keys);
        if next == "0" {
            found.sort();
            return found;
        }
        cursor = next;
    }
}

#[test]
fn filters_count_in_used_memory_obey_eviction_and_have_types() {
    let ember =
        common::Ember::start_with(&["--threads", "2", "--maxmemory-policy", "allkeys-random"]);
    let mut con = ember.connect(false);
    // One filter of 500,000 items at 0.5% (its first sub-filter): 11.03 bits each, 690 KB.
    let before = info_field(&mut con, "used_memory");
    let _: () = redis::cmd("BF.RESERVE")
        .arg("big")
        .arg(0.01)
        .arg(500_000)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CF.RESERVE")
        .arg("bigcf")
        .arg(1 << 20)
        .query(&mut con)
        .unwrap();
    let grown = info_field(&mut con, "used_memory") - before;
    // 690 KB of bits and 1 MiB of buckets (2^19 buckets of 2).
    assert!(grown >= 689_000 + (1 << 20), "used_memory grew by {grown}");
    let _: i64 = redis::cmd("DEL")
        .arg("big")
        .arg("bigcf")
        .query(&mut con)
        .unwrap();
    // The bulk of it comes back (some of the allocator's memory may stay with it).
    let after = info_field(&mut con, "used_memory");
    assert!(
        after < before + grown / 2,
        "DEL gave it back: {before} -> {} -> {after}",
        before + grown
    );

    // TYPE and SCAN TYPE know all four types, on both shards.
    let _: () = redis::cmd("CMS.INITBYDIM")
        .arg("c1")
        .arg(100)
        .arg(5)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CMS.INITBYDIM")
        .arg("c2")
        .arg(100)
        .arg(5)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("TOPK.RESERVE")
        .arg("t1")
        .arg(5)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("TOPK.RESERVE")
        .arg("t2")
        .arg(5)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CF.RESERVE")
        .arg("f1")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CF.RESERVE")
        .arg("f2")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("BF.ADD")
        .arg("b1")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("BF.ADD")
        .arg("b2")
        .arg("x")
        .query(&mut con)
        .unwrap();
    for (type_name, keys) in [
        ("MBbloom--", ["b1", "b2"]),
        ("MBbloomCF", ["f1", "f2"]),
        ("CMSk-TYPE", ["c1", "c2"]),
        ("TopK-TYPE", ["t1", "t2"]),
    ] {
        assert_eq!(scan_type(&mut con, type_name), keys);
        for key in keys {
            let named: String = redis::cmd("TYPE").arg(key).query(&mut con).unwrap();
            assert_eq!(named, type_name);
        }
    }

    // Eviction: 48 filters of 690 KB (33 MB) written against 8 MB of room.
    let maxmemory = info_field(&mut con, "used_memory") + (8 << 20);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(maxmemory)
        .query(&mut con)
        .unwrap();
    for index in 0..48 {
        let _: () = redis::cmd("BF.RESERVE")
            .arg(format!("filter:{index}"))
            .arg(0.01)
            .arg(500_000)
            .query(&mut con)
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut used = info_field(&mut con, "used_memory");
    while used as f64 > maxmemory as f64 * 1.05 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        used = info_field(&mut con, "used_memory");
    }
    assert!(
        used as f64 <= maxmemory as f64 * 1.05,
        "used_memory {used} over {maxmemory}"
    );
    let evicted = info_field(&mut con, "evicted_keys");
    assert!(evicted >= 30, "evicted_keys {evicted}");
    let left = scan_type(&mut con, "MBbloom--").len();
    assert!(left < 20, "{left} Bloom filters left");
}

/// DUMP and RESTORE carry Bloom and cuckoo filters and count-min sketches as RedisBloom's module
/// values (its `rdb_save` field streams); the restored copy answers every lookup and INFO field
/// alike. Top-k is still refused.
#[test]
fn dump_and_restore_filters_and_sketches() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let added: Vec<String> = (0..2000).map(|index| format!("item:{index}")).collect();
    let probes: Vec<String> = (0..4000).map(|index| format!("item:{index}")).collect();
    let _: () = redis::cmd("BF.RESERVE")
        .arg("bf")
        .arg(0.01)
        .arg(300)
        .query(&mut con)
        .unwrap();
    let _: Vec<i64> = redis::cmd("BF.MADD")
        .arg("bf")
        .arg(&added)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CF.RESERVE")
        .arg("cf")
        .arg(256)
        .query(&mut con)
        .unwrap();
    let _: Vec<i64> = redis::cmd("CF.INSERT")
        .arg("cf")
        .arg("ITEMS")
        .arg(&added)
        .query(&mut con)
        .unwrap();
    for (key, info, exists) in [
        ("bf", "BF.INFO", "BF.MEXISTS"),
        ("cf", "CF.INFO", "CF.MEXISTS"),
    ] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut con).unwrap();
        assert_eq!(payload[0], 7, "RDB_TYPE_MODULE_2");
        let copy = format!("{key}-copy");
        let _: () = redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(&payload)
            .query(&mut con)
            .unwrap();
        let original: redis::Value = redis::cmd(info).arg(key).query(&mut con).unwrap();
        let restored: redis::Value = redis::cmd(info).arg(&copy).query(&mut con).unwrap();
        assert_eq!(original, restored);
        assert_eq!(
            memberships(&mut con, exists, key, &probes),
            memberships(&mut con, exists, &copy, &probes)
        );
        let named: String = redis::cmd("TYPE").arg(&copy).query(&mut con).unwrap();
        let expected: String = redis::cmd("TYPE").arg(key).query(&mut con).unwrap();
        assert_eq!(named, expected);
        // A damaged payload is refused as Redis refuses one.
        let mut damaged = payload.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0xff;
        let refused: redis::RedisResult<()> = redis::cmd("RESTORE")
            .arg(format!("{key}-bad"))
            .arg(0)
            .arg(&damaged)
            .query(&mut con);
        assert!(
            format!("{refused:?}").contains("payload version or checksum are wrong"),
            "{refused:?}"
        );
    }
    // A count-min sketch: the counters and the total come back.
    let _: () = redis::cmd("CMS.INITBYDIM")
        .arg("cms")
        .arg(100)
        .arg(4)
        .query(&mut con)
        .unwrap();
    let mut incrby = redis::cmd("CMS.INCRBY");
    incrby.arg("cms");
    for (index, item) in added.iter().take(200).enumerate() {
        incrby.arg(item).arg(index % 9 + 1);
    }
    let _: Vec<i64> = incrby.query(&mut con).unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("cms").query(&mut con).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("cms-copy")
        .arg(0)
        .arg(&payload)
        .query(&mut con)
        .unwrap();
    for key in ["cms", "cms-copy"] {
        let info: redis::Value = redis::cmd("CMS.INFO").arg(key).query(&mut con).unwrap();
        assert_eq!(
            common::show_value(&info),
            "[+width, (integer) 100, +depth, (integer) 4, +count, (integer) 993]"
        );
    }
    let original: Vec<i64> = redis::cmd("CMS.QUERY")
        .arg("cms")
        .arg(&probes[..300])
        .query(&mut con)
        .unwrap();
    let restored: Vec<i64> = redis::cmd("CMS.QUERY")
        .arg("cms-copy")
        .arg(&probes[..300])
        .query(&mut con)
        .unwrap();
    assert_eq!(original, restored);
    let _: () = redis::cmd("TOPK.RESERVE")
        .arg("top")
        .arg(3)
        .query(&mut con)
        .unwrap();
    expect_all(
        &mut con,
        &[(
            &["DUMP", "top"],
            "(error) ERR DUMP is not supported for values of type TopK-TYPE",
        )],
    );
}
