//! Where the keys are in commands whose keys move (Redis's "movablekeys"): a key count names how
//! many follow (SINTERCARD, ZUNIONSTORE...), or a keyword starts them (XREAD's STREAMS, GEORADIUS's
//! STORE). Routing, holds and COMMAND GETKEYS read these; a malformed request gives no keys, so it
//! runs on the caller's shard, whose handler answers Redis's error.

/// Most keys one key count may name: Redis takes any count up to the argument count, and this
/// bound only keeps a hostile count from costing anything before the argument-count check.
const COUNTED_KEYS_MAX: usize = 1 << 20;

/// The key count at `count_at`, when it is a valid one.
fn key_count(args: &[&[u8]], count_at: usize) -> Option<usize> {
    args.get(count_at)
        .and_then(|arg| ember_resp::parse_i64(arg))
        .and_then(|count| usize::try_from(count).ok())
        .filter(|&count| count > 0 && count <= COUNTED_KEYS_MAX)
}

/// The positions of `count` keys from `first`, when the count is valid and they all exist.
fn counted(args: &[&[u8]], count_at: usize) -> Vec<usize> {
    let Some(count) = key_count(args, count_at) else {
        return Vec::new();
    };
    let first = count_at + 1;
    if first + count > args.len() {
        return Vec::new();
    }
    (first..first + count).collect()
}

/// `numkeys key value [key value ...]` right after the command name (MSETEX): the key of each
/// pair, when every pair is there.
pub fn count_then_pairs(args: &[&[u8]]) -> Vec<usize> {
    let Some(count) = key_count(args, 1) else {
        return Vec::new();
    };
    if 2 + 2 * count > args.len() {
        return Vec::new();
    }
    (0..count).map(|pair| 2 + 2 * pair).collect()
}

/// `numkeys key [key ...]` right after the command name (SINTERCARD, ZUNION, ZINTER, ZDIFF,
/// ZINTERCARD).
pub fn count_then_keys(args: &[&[u8]]) -> Vec<usize> {
    counted(args, 1)
}

/// `script numkeys key [key ...]` (EVAL, EVALSHA, FCALL and their _RO forms): the ACL checks
/// read these; the table declares no keys for scripts, whose handler reads numkeys itself.
pub fn script_keys(args: &[&[u8]]) -> Vec<usize> {
    counted(args, 2)
}

/// `destination numkeys key [key ...]` (ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE).
pub fn destination_count_then_keys(args: &[&[u8]]) -> Vec<usize> {
    let mut positions = counted(args, 2);
    if !positions.is_empty() {
        positions.insert(0, 1);
    }
    positions
}

/// `... STREAMS key [key ...] id [id ...]` (XREAD, XREADGROUP): the STREAMS word (options before
/// it skipped with their values, so a group named STREAMS is no keyword), then half of what
/// follows.
pub fn streams_keys(args: &[&[u8]]) -> Vec<usize> {
    let mut index = 1;
    let streams_at = loop {
        let Some(arg) = args.get(index) else {
            return Vec::new();
        };
        if arg.eq_ignore_ascii_case(b"STREAMS") {
            break index;
        }
        index += if arg.eq_ignore_ascii_case(b"GROUP") {
            3
        } else if arg.eq_ignore_ascii_case(b"COUNT") || arg.eq_ignore_ascii_case(b"BLOCK") {
            2
        } else {
            1
        };
    };
    let rest = args.len() - streams_at - 1;
    if rest == 0 || rest % 2 != 0 {
        return Vec::new();
    }
    (streams_at + 1..streams_at + 1 + rest / 2).collect()
}

/// `key ... [STORE key] [STOREDIST key]` (GEORADIUS, GEORADIUSBYMEMBER): the source, then the
/// destination of each STORE option.
pub fn key_and_store_keys(args: &[&[u8]]) -> Vec<usize> {
    let mut positions = vec![1];
    let mut index = 2;
    while index + 1 < args.len() {
        if args[index].eq_ignore_ascii_case(b"STORE")
            || args[index].eq_ignore_ascii_case(b"STOREDIST")
        {
            positions.push(index + 1);
            index += 1;
        }
        index += 1;
    }
    positions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<&[u8]> {
        line.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn finders() {
        type Finder = fn(&[&[u8]]) -> Vec<usize>;
        let cases: &[(&str, Finder, &str, &[usize])] = &[
            (
                "two counted keys",
                count_then_keys,
                "sintercard 2 a b LIMIT 1",
                &[2, 3],
            ),
            (
                "count past the end",
                count_then_keys,
                "sintercard 3 a b",
                &[],
            ),
            ("count zero", count_then_keys, "sintercard 0 a", &[]),
            ("count not a number", count_then_keys, "zunion x a", &[]),
            (
                "store form",
                destination_count_then_keys,
                "zunionstore d 2 a b",
                &[1, 3, 4],
            ),
            (
                "store form, bad count",
                destination_count_then_keys,
                "zunionstore d -1 a",
                &[],
            ),
            (
                "streams",
                streams_keys,
                "xread COUNT 2 STREAMS a b 0 0",
                &[4, 5],
            ),
            ("streams, odd", streams_keys, "xread STREAMS a b 0", &[]),
            (
                "group",
                streams_keys,
                "xreadgroup GROUP g c STREAMS s >",
                &[5],
            ),
            (
                "group named streams",
                streams_keys,
                "xreadgroup GROUP STREAMS c STREAMS s >",
                &[5],
            ),
            ("no streams", streams_keys, "xread COUNT 2", &[]),
            (
                "georadius store",
                key_and_store_keys,
                "georadius k 0 0 1 m STORE d",
                &[1, 7],
            ),
            (
                "georadius both",
                key_and_store_keys,
                "georadius k 0 0 1 m STORE d STOREDIST e",
                &[1, 7, 9],
            ),
            (
                "georadius none",
                key_and_store_keys,
                "georadius k 0 0 1 m",
                &[1],
            ),
        ];
        for (name, finder, line, expected) in cases {
            assert_eq!(finder(&split(line)), *expected, "{name}");
        }
    }
}
