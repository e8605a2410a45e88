//! SORT and SORT_RO against a two-shard ember, side by side with a real redis-server: lists,
//! sets and sorted sets; BY and GET patterns whose keys (and hash fields) are spread over both
//! shards; STORE into destinations on either shard; inside MULTI and a script; every error.
//!
//! Weights and destinations are many distinct keys (`w_1`..`w_8`, `d1`..`d6`), so whatever the
//! slot function, some live on the source's shard and some on the other one.

mod common;
mod family_compare;

use common::{run, show, Ember};
use ember_store::slot::{key_slot, shard_of_slot};
use family_compare::{compare_args, ArgCase};

/// A list of eight elements and, for each, a weight, a hash with a weight and a name; element 4
/// has no hash and element 6 a weight spelled as a float.
const WEIGHTS: &[&[&str]] = &[
    &["RPUSH", "l", "1", "2", "3", "4", "5", "6", "7", "8"],
    &[
        "MSET", "w_1", "50", "w_2", "10", "w_3", "70", "w_4", "20", "w_5", "5", "w_6", "-1.5",
        "w_7", "3", "w_8", "1e2",
    ],
    &["HSET", "o_1", "weight", "3", "name", "one"],
    &["HSET", "o_2", "weight", "1", "name", "two"],
    &["HSET", "o_3", "weight", "8", "name", "three"],
    &["HSET", "o_5", "weight", "2", "name", "five"],
    &["HSET", "o_6", "weight", "7", "name", "six"],
    &["HSET", "o_7", "weight", "4", "name", "seven"],
    &["HSET", "o_8", "weight", "6", "name", "eight"],
];

/// A number out of range (`1e400`) comes last in its case: Redis reads C's `errno` after
/// strtod without clearing it first, so until a system call of the next connection resets it,
/// every later numeric SORT on that connection fails too.
const SIDE_BY_SIDE: &[ArgCase] = arg_cases! {
    "numeric list" => [["RPUSH", "l", "3", "1", "2", "10", "-5", "1.5", "3"], ["SORT", "l"], ["SORT", "l", "DESC"], ["SORT", "l", "ASC"], ["SORT", "l", "LIMIT", "1", "2"], ["SORT", "l", "LIMIT", "-10", "100"], ["SORT", "l", "LIMIT", "10", "5"], ["SORT", "l", "LIMIT", "0", "0"], ["SORT", "l", "LIMIT", "2", "-1"], ["SORT", "l", "LIMIT", "2", "9223372036854775807"], ["SORT_RO", "l", "DESC", "LIMIT", "0", "3"], ["SORT", "missing"], ["SORT_RO", "missing", "LIMIT", "0", "1"]],
    "numbers as strtod reads them" => [["RPUSH", "l", "", " 5", "0x10", "1e3", "-inf", "+inf", ".5", "-0"], ["SORT", "l"], ["RPUSH", "n", "5 "], ["SORT", "n"], ["RPUSH", "o", "nan"], ["SORT", "o"], ["RPUSH", "p", "a", "b", "c"], ["SETBIT", "w_a", "7", "0"], ["SETRANGE", "w_b", "2", "7"], ["SET", "w_c", "-1"], ["SORT", "p", "BY", "w_*"], ["SETRANGE", "w_c", "0", " "], ["SORT", "p", "BY", "w_*"], ["RPUSH", "m", "1e400"], ["SORT", "m"]],
    "alpha" => [["RPUSH", "l", "b", "a", "c", "10", "2", "ab", "a"], ["SORT", "l", "ALPHA"], ["SORT", "l", "ALPHA", "DESC"], ["SORT", "l", "ALPHA", "LIMIT", "2", "3"], ["SORT", "l"], ["SORT_RO", "l"], ["SORT", "l", "BY", "nosort"]],
    "sets" => [["SADD", "s", "5", "3", "9", "1", "20"], ["SORT", "s"], ["SORT", "s", "DESC"], ["SORT", "s", "ALPHA"], ["SORT", "s", "LIMIT", "1", "2"], ["~SORT", "s", "BY", "nosort"], ["SORT", "s", "BY", "nosort", "STORE", "d1"], ["LRANGE", "d1", "0", "-1"], ["SADD", "t", "x", "yy", "z", "a"], ["SORT", "t", "ALPHA"], ["SORT", "t"], ["SORT", "t", "BY", "nosort", "DESC", "STORE", "d2"], ["LRANGE", "d2", "0", "-1"], ["EVAL", "return redis.call('sort', KEYS[1], 'by', '_')", "1", "t"], ["EVAL", "return redis.call('sort', KEYS[1], 'by', '_', 'get', '#', 'get', '_:*')", "1", "t"], ["EVAL", "return redis.call('sort', KEYS[1], 'desc')", "1", "s"]],
    "sorted sets" => [["ZADD", "z", "1", "a", "5", "b", "2", "c", "10", "d", "3", "e"], ["SORT", "z", "ALPHA"], ["SORT", "z", "ALPHA", "DESC"], ["SORT", "z", "BY", "nosort"], ["SORT", "z", "BY", "nosort", "DESC"], ["SORT", "z", "BY", "nosort", "LIMIT", "1", "2"], ["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2"], ["SORT", "z", "BY", "nosort", "LIMIT", "5", "10"], ["SORT", "z", "BY", "nosort", "LIMIT", "-10", "100"], ["SORT", "z"], ["ZADD", "n", "3", "30", "1", "10", "2", "20"], ["SORT", "n"], ["SORT", "n", "DESC", "LIMIT", "0", "2"]],
    "list in native order" => [["LPUSH", "l", "2", "1", "4", "3", "5"], ["SORT", "l", "BY", "nosort"], ["SORT", "l", "BY", "nosort", "DESC"], ["SORT", "l", "BY", "nosort", "LIMIT", "1", "3"], ["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "3"], ["SORT", "l", "BY", "nosort", "STORE", "d3"], ["LRANGE", "d3", "0", "-1"], ["SORT", "l", "BY", "nosort", "LIMIT", "0", "3", "STORE", "d3"], ["LRANGE", "d3", "0", "-1"], ["SORT", "l", "BY", "nosort", "BY", "w_*"]],
};

/// Cases that start from [`WEIGHTS`]: a name and the commands that follow.
const WITH_WEIGHTS: &[(&str, &[&[&str]])] = &[
    (
        "by keys across shards",
        &[
            &["SORT", "l", "BY", "w_*"],
            &["SORT", "l", "BY", "w_*", "DESC"],
            &["SORT", "l", "BY", "w_*", "LIMIT", "2", "3"],
            &["SORT", "l", "BY", "w_*", "ALPHA"],
            &["SORT", "l", "BY", "w_*", "ALPHA", "DESC", "LIMIT", "0", "4"],
            &["SORT_RO", "l", "BY", "w_*", "DESC"],
            &["SORT", "l", "BY", "missing_*"],
            &["SORT", "l", "BY", "missing_*", "ALPHA"],
        ],
    ),
    (
        "get patterns across shards",
        &[
            &["SORT", "l", "BY", "w_*", "GET", "#", "GET", "w_*"],
            &["SORT", "l", "GET", "o_*->name", "GET", "#", "GET", "o_*->weight"],
            &["SORT", "l", "BY", "o_*->weight", "GET", "o_*->name"],
            &["SORT", "l", "BY", "o_*->weight", "DESC", "LIMIT", "1", "3", "GET", "o_*->name"],
            &["SORT", "l", "GET", "nokey"],
            &["SORT", "l", "GET", "o_*->missing", "LIMIT", "0", "2"],
            &["SORT", "l", "GET", "o_*", "LIMIT", "0", "2"],
            &["SORT", "l", "BY", "nosort", "GET", "w_*"],
            &["SORT_RO", "l", "BY", "nosort", "GET", "o_*->name"],
            &["SET", "x:1->", "arrow"],
            &["SORT", "l", "LIMIT", "0", "1", "GET", "x:*->"],
        ],
    ),
    (
        "store across shards",
        &[
            &["SORT", "l", "BY", "w_*", "STORE", "d1"],
            &["LRANGE", "d1", "0", "-1"],
            &["SORT", "l", "BY", "w_*", "GET", "o_*->name", "STORE", "d2"],
            &["LRANGE", "d2", "0", "-1"],
            &["SORT", "l", "STORE", "d3"],
            &["LRANGE", "d3", "0", "-1"],
            &["SORT", "l", "DESC", "LIMIT", "0", "2", "STORE", "d4"],
            &["LRANGE", "d4", "0", "-1"],
            &["SET", "d5", "string"],
            &["EXPIRE", "d5", "100"],
            &["SORT", "l", "STORE", "d5"],
            &["TYPE", "d5"],
            &["TTL", "d5"],
            &["SORT", "missing", "STORE", "d1"],
            &["EXISTS", "d1"],
            &["SORT", "l", "LIMIT", "10", "10", "STORE", "d6"],
            &["EXISTS", "d6"],
            &["SORT", "l", "BY", "w_*", "STORE", "w_1"],
            &["LRANGE", "w_1", "0", "-1"],
            &["SORT", "l", "STORE", "l"],
            &["LRANGE", "l", "0", "-1"],
        ],
    ),
    (
        "sub-sort by element on equal weights",
        &[
            &["SADD", "s", "b", "a", "c", "aa"],
            &["MSET", "sc_a", "1", "sc_b", "1", "sc_c", "0", "sc_aa", "1"],
            &["SORT", "s", "BY", "sc_*"],
            &["SORT", "s", "BY", "sc_*", "DESC"],
        ],
    ),
    (
        "transactions and scripts",
        &[
            &["MULTI"],
            &["SORT", "l", "BY", "w_*", "GET", "o_*->name"],
            &["SORT", "l", "BY", "w_*", "STORE", "d1"],
            &["EXEC"],
            &["LRANGE", "d1", "0", "-1"],
            &["EVAL", "return redis.call('sort', KEYS[1], 'by', 'w_*')", "1", "l"],
            &["EVAL", "return redis.call('sort', KEYS[1], 'by', 'w_*', 'get', 'o_*->name', 'store', KEYS[2])", "2", "l", "d2"],
            &["LRANGE", "d2", "0", "-1"],
            &["EVAL", "return redis.call('sort_ro', 'l', 'by', 'o_*->weight')", "0"],
        ],
    ),
    (
        "errors",
        &[
            &["SORT", "l", "LIMIT", "1"],
            &["SORT", "l", "LIMIT", "a", "1"],
            &["SORT", "l", "LIMIT", "1", "1.5"],
            &["SORT", "l", "SIDEWAYS"],
            &["SORT", "l", "BY"],
            &["SORT", "l", "GET"],
            &["SORT", "l", "STORE"],
            &["SORT_RO", "l", "STORE", "d1"],
            &["SORT"],
            &["SORT_RO"],
            &["SET", "w_3", "heavy"],
            &["SORT", "l", "BY", "w_*"],
            &["SORT", "l", "BY", "w_*", "STORE", "d1"],
            &["EXISTS", "d1"],
            &["SORT", "l", "BY", "w_*", "ALPHA"],
            &["SET", "str", "x"],
            &["SORT", "str"],
            &["SORT", "str", "BY", "w_*"],
            &["SORT_RO", "str"],
            &["SORT", "o_1"],
            &["SORT", "l", "BY", "nosort", "STORE", "str"],
            &["TYPE", "str"],
        ],
    ),
    (
        "command getkeys",
        &[
            &["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "def"],
            &["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "invalid", "STORE", "stillbad", "STORE", "def"],
            &["COMMAND", "GETKEYS", "SORT", "abc", "BY", "store", "GET", "store", "LIMIT", "0", "1"],
            &["COMMAND", "GETKEYS", "SORT_RO", "abc", "BY", "w_*"],
        ],
    ),
];

#[test]
fn sort_replies_match_redis_server() {
    compare_args(SIDE_BY_SIDE);
}

#[test]
fn sort_by_keys_on_both_shards_matches_redis_server() {
    let cases: Vec<ArgCase> = WITH_WEIGHTS
        .iter()
        .map(|&(name, commands)| ArgCase {
            name,
            commands: Vec::leak(WEIGHTS.iter().chain(commands).copied().collect()),
        })
        .collect();
    compare_args(&cases);
}

/// The weights and hashes are spread over both shards (the test would not test what it says
/// otherwise), and a SORT reading them all sees one snapshot while another client keeps
/// rewriting them pairwise with MSET (a cross-shard write): every reply is one of the two
/// orders, never a mix.
#[test]
fn sort_by_pattern_is_atomic_across_shards() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let owners: std::collections::BTreeSet<usize> = (1..=8)
        .map(|i| shard_of_slot(key_slot(format!("w_{i}").as_bytes()), 2))
        .collect();
    assert_eq!(owners.len(), 2, "the weights all live on one shard");
    let elements: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    let mut push: Vec<&[u8]> = vec![b"RPUSH", b"l"];
    push.extend(elements.iter().map(|e| e.as_bytes()));
    run(&mut con, &push).unwrap();
    // Order A: weight i; order B: weight -i. MSET writes all weights at once.
    let mset = |sign: i64| -> Vec<Vec<u8>> {
        let mut args = vec![b"MSET".to_vec()];
        for i in 1..=40i64 {
            args.push(format!("w_{i}").into_bytes());
            args.push((sign * i).to_string().into_bytes());
        }
        args
    };
    let (ascending, descending) = (mset(1), mset(-1));
    run(&mut con, &as_slices(&ascending)).unwrap();
    let port = ember.port;
    let writer = std::thread::spawn(move || {
        let mut con = common::connect(port, false);
        for round in 0..300 {
            let args = if round % 2 == 0 {
                &descending
            } else {
                &ascending
            };
            run(
                &mut con,
                &args.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            )
            .unwrap();
        }
    });
    let forward = show(&Ok(redis::Value::Array(
        elements
            .iter()
            .map(|e| redis::Value::BulkString(e.clone().into_bytes()))
            .collect(),
    )));
    let backward = show(&Ok(redis::Value::Array(
        elements
            .iter()
            .rev()
            .map(|e| redis::Value::BulkString(e.clone().into_bytes()))
            .collect(),
    )));
    for _ in 0..300 {
        let reply = show(&run(&mut con, &[b"SORT", b"l", b"BY", b"w_*"]));
        assert!(
            reply == forward || reply == backward,
            "a SORT saw half of an MSET: {reply}"
        );
    }
    writer.join().unwrap();
}

fn as_slices(args: &[Vec<u8>]) -> Vec<&[u8]> {
    args.iter().map(Vec::as_slice).collect()
}
