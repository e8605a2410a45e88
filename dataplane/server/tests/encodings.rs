//! OBJECT ENCODING in every size class and at the CONFIG thresholds: strings, sorted sets and
//! hashes side by side with a real redis-server 7.0 (whose names for them are 7.2's); lists and
//! sets against Redis 7.2's names written out (7.0 says `quicklist` for every list and has no
//! set listpack).

mod common;
mod family_compare;

use common::{run, show, Ember};
use family_compare::{compare_args, ArgCase};

const LONG_44: &str = "01234567890123456789012345678901234567890123";
const LONG_45: &str = "012345678901234567890123456789012345678901234";

const SIDE_BY_SIDE: &[ArgCase] = arg_cases! {
    "strings" => [["SET", "i", "12345"], ["OBJECT", "ENCODING", "i"], ["SET", "big", "-9223372036854775808"], ["OBJECT", "ENCODING", "big"], ["SET", "over", "9223372036854775808"], ["OBJECT", "ENCODING", "over"], ["SET", "e", LONG_44], ["OBJECT", "ENCODING", "e"], ["SET", "r", LONG_45], ["OBJECT", "ENCODING", "r"], ["SET", "lead", "012"], ["OBJECT", "ENCODING", "lead"], ["INCR", "n"], ["OBJECT", "ENCODING", "n"]],
    "zset thresholds" => [["CONFIG", "SET", "zset-max-listpack-entries", "3"], ["ZADD", "z", "1", "a", "2", "b", "3", "c"], ["OBJECT", "ENCODING", "z"], ["ZADD", "z", "4", "d"], ["OBJECT", "ENCODING", "z"], ["ZADD", "w", "1", "a", "2", "b", "3", "c", "4", "d"], ["OBJECT", "ENCODING", "w"], ["CONFIG", "SET", "zset-max-ziplist-value", "4"], ["CONFIG", "GET", "zset-max-listpack-value"], ["ZADD", "v", "1", "abcd"], ["OBJECT", "ENCODING", "v"], ["ZADD", "v", "1", "abcde"], ["OBJECT", "ENCODING", "v"], ["CONFIG", "SET", "zset-max-listpack-entries", "128"], ["CONFIG", "SET", "zset-max-listpack-value", "64"]],
    "hash thresholds" => [["CONFIG", "SET", "hash-max-listpack-entries", "2"], ["HSET", "h", "a", "1", "b", "2"], ["OBJECT", "ENCODING", "h"], ["HSET", "h", "c", "3"], ["OBJECT", "ENCODING", "h"], ["CONFIG", "SET", "hash-max-listpack-entries", "128"]],
    "set intset threshold" => [["CONFIG", "SET", "set-max-intset-entries", "3"], ["SADD", "s", "1", "2", "3"], ["OBJECT", "ENCODING", "s"], ["SADD", "s", "x"], ["SADD", "t", "1"], ["SADD", "t", "2"], ["SADD", "t", "3"], ["SADD", "t", "4"], ["CONFIG", "SET", "set-max-intset-entries", "512"]],
    "stream" => [["XADD", "x", "1-1", "a", "1"], ["OBJECT", "ENCODING", "x"]],
};

#[test]
fn encodings_match_redis_server() {
    compare_args(SIDE_BY_SIDE);
}

/// Each step and the reply Redis 7.2 gives (names checked against its t_set.c / t_list.c rules).
const REDIS_7_2: &[(&[&str], &str)] = &[
    (&["RPUSH", "l", "a", "b"], "(integer) 2"),
    (&["OBJECT", "ENCODING", "l"], "\"listpack\""),
    (&["CONFIG", "SET", "list-max-listpack-size", "3"], "+OK"),
    (&["RPUSH", "l", "c", "d"], "(integer) 4"),
    (&["OBJECT", "ENCODING", "l"], "\"quicklist\""),
    (&["CONFIG", "SET", "list-max-ziplist-size", "-2"], "+OK"),
    (
        &["CONFIG", "GET", "list-max-listpack-size"],
        "[\"list-max-listpack-size\", \"-2\"]",
    ),
    (&["SADD", "s", "1", "2"], "(integer) 2"),
    (&["OBJECT", "ENCODING", "s"], "\"intset\""),
    (&["SADD", "s", "x"], "(integer) 1"),
    (&["OBJECT", "ENCODING", "s"], "\"listpack\""),
    (&["CONFIG", "SET", "set-max-listpack-entries", "3"], "+OK"),
    (&["SADD", "s", "y"], "(integer) 1"),
    (&["OBJECT", "ENCODING", "s"], "\"hashtable\""),
    (&["CONFIG", "SET", "set-max-intset-entries", "2"], "+OK"),
    (&["SADD", "i", "1", "2", "3"], "(integer) 3"),
    (&["OBJECT", "ENCODING", "i"], "\"listpack\""),
    (&["SADD", "j", "1", "2"], "(integer) 2"),
    (&["SADD", "j", "3"], "(integer) 1"),
    (&["OBJECT", "ENCODING", "j"], "\"hashtable\""),
    (&["CONFIG", "SET", "set-max-listpack-value", "3"], "+OK"),
    (&["SADD", "k", "abcd"], "(integer) 1"),
    (&["OBJECT", "ENCODING", "k"], "\"hashtable\""),
    (&["SADD", "m", "abc"], "(integer) 1"),
    (&["OBJECT", "ENCODING", "m"], "\"listpack\""),
];

#[test]
fn list_and_set_encodings_are_redis_7_2s() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    for (args, expected) in REDIS_7_2 {
        let bytes: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        assert_eq!(show(&run(&mut con, &bytes)), *expected, "{args:?}");
    }
}
