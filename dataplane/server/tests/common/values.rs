//! One key of every type in each of its size classes, and everything a client can see of a
//! key, printed so that two servers' (or one server's before and after) compare as strings:
//! DUMP / RESTORE's round trips and the RDB snapshots' use them.

use redis::Value;

use super::{run, show};

/// Commands that build one key of each type and size class (the key is the second argument).
pub fn fixtures() -> Vec<Vec<Vec<u8>>> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut add = |args: Vec<String>| commands.push(args);
    let words = |text: &str| text.split(' ').map(str::to_string).collect::<Vec<_>>();
    add(words("SET s:int 12345"));
    add(words("SET s:bigint -9223372036854775808"));
    add(words("SET s:embstr hello"));
    add(vec!["SET".into(), "s:raw".into(), "abc".repeat(100)]);
    add(vec![
        "SET".into(),
        "s:noise".into(),
        (0..200u32)
            .map(|i| char::from(b'!' + (i * 7919 % 90) as u8))
            .collect(),
    ]);
    add(words("RPUSH l:small a 1 -5 300 70000 bb"));
    let mut big = vec!["RPUSH".to_string(), "l:big".into()];
    big.extend((0..2000).map(|i| format!("element:{i}")));
    add(big);
    add(vec![
        "RPUSH".into(),
        "l:long".into(),
        "x".repeat(10_000),
        "y".into(),
    ]);
    add(words("SADD set:intset 1 2 3 -70000 5000000000"));
    add(words("SADD set:small a b c 1"));
    let mut big = vec!["SADD".to_string(), "set:ints".into()];
    big.extend((0..600).map(|i| (i * 3).to_string()));
    add(big);
    let mut big = vec!["SADD".to_string(), "set:big".into()];
    big.extend((0..300).map(|i| format!("member:{i}")));
    add(big);
    add(words(
        "ZADD z:small 1 a 2.5 b -3 c inf d -inf e 0.1 f 1e300 g",
    ));
    let mut big = vec!["ZADD".to_string(), "z:big".into()];
    for i in 0..300 {
        big.extend([format!("{}", i as f64 / 7.0), format!("member:{i}")]);
    }
    add(big);
    add(vec![
        "ZADD".into(),
        "z:long".into(),
        "1".into(),
        "m".repeat(100),
    ]);
    add(words("HSET h:small f v n 5 neg -70000"));
    let mut big = vec!["HSET".to_string(), "h:big".into()];
    for i in 0..300 {
        big.extend([format!("field:{i}"), i.to_string()]);
    }
    add(big);
    add(vec![
        "HSET".into(),
        "h:long".into(),
        "f".into(),
        "v".repeat(100),
    ]);
    for i in 1..=250 {
        let fields = if i % 10 == 0 {
            "other x more y"
        } else {
            "sensor 1"
        };
        add(words(&format!("XADD x:stream {i}-{} {fields}", i % 3)));
    }
    add(words("XDEL x:stream 5-2 100-1"));
    add(words("XGROUP CREATE x:stream g1 0"));
    add(words("XGROUP CREATE x:stream g2 $"));
    add(words(
        "XREADGROUP GROUP g1 alice COUNT 5 STREAMS x:stream >",
    ));
    add(words("XREADGROUP GROUP g1 bob COUNT 3 STREAMS x:stream >"));
    add(words("XACK x:stream g1 1-1"));
    add(words("XGROUP CREATECONSUMER x:stream g2 carol"));
    add(words("XADD x:empty 5-5 a 1"));
    add(words("XDEL x:empty 5-5"));
    commands
        .into_iter()
        .map(|args| args.into_iter().map(String::into_bytes).collect())
        .collect()
}

pub fn keys() -> Vec<String> {
    let creators: [&[u8]; 6] = [b"SET", b"RPUSH", b"SADD", b"ZADD", b"HSET", b"XADD"];
    let mut keys: Vec<String> = fixtures()
        .iter()
        .filter(|args| creators.contains(&args[0].as_slice()))
        .map(|args| String::from_utf8(args[1].clone()).unwrap())
        .collect();
    keys.dedup();
    keys
}

pub fn cmd(con: &mut redis::Connection, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    show(&run(con, &args))
}

pub fn sorted(mut reply: redis::RedisResult<Value>) -> String {
    if let Ok(Value::Array(items)) = &mut reply {
        items.sort_by_key(|item| show(&Ok(item.clone())));
    }
    show(&reply)
}

/// Everything a client can see of `key`: type, contents, TTL presence, and for streams the
/// counters, groups, pending entries and consumers (times left out).
pub fn contents(con: &mut redis::Connection, key: &str) -> String {
    let kind = cmd(con, &["TYPE", key]).trim_start_matches('+').to_string();
    let body = match kind.as_str() {
        "string" => cmd(con, &["GET", key]),
        "list" => cmd(con, &["LRANGE", key, "0", "-1"]),
        "set" => sorted(run(con, &[b"SMEMBERS", key.as_bytes()])),
        // Scores as numbers: Redis 7.0 prints them with %.17g, 7.2 and Ember the shortest way.
        "zset" => match run(
            con,
            &[b"ZRANGE", key.as_bytes(), b"0", b"-1", b"WITHSCORES"],
        ) {
            Ok(Value::Array(items)) => items
                .chunks(2)
                .map(|pair| {
                    let score: f64 = redis::from_redis_value(&pair[1]).unwrap();
                    format!("{} {score:?}", show(&Ok(pair[0].clone())))
                })
                .collect::<Vec<_>>()
                .join(", "),
            other => show(&other),
        },
        "hash" => sorted(run(con, &[b"HGETALL", key.as_bytes()])),
        "stream" => {
            let mut text = cmd(con, &["XRANGE", key, "-", "+"]);
            let info = run(con, &[b"XINFO", b"STREAM", key.as_bytes()]);
            if let Ok(Value::Array(items)) = info {
                for pair in items.chunks(2) {
                    let name = show(&Ok(pair[0].clone()));
                    if !name.contains("radix-tree") {
                        text += &format!(" {name}={}", show(&Ok(pair[1].clone())));
                    }
                }
            }
            text += &cmd(con, &["XINFO", "GROUPS", key]);
            for group in ["g1", "g2"] {
                // Each pending entry without its idle time.
                if let Ok(Value::Array(entries)) = run(
                    con,
                    &[
                        b"XPENDING",
                        key.as_bytes(),
                        group.as_bytes(),
                        b"-",
                        b"+",
                        b"100",
                    ],
                ) {
                    for entry in entries {
                        if let Value::Array(fields) = entry {
                            let shown: Vec<String> = [0, 1, 3]
                                .iter()
                                .map(|&at| show(&Ok(fields[at].clone())))
                                .collect();
                            text += &format!(" {}", shown.join(" "));
                        }
                    }
                }
                text += &cmd(con, &["XPENDING", key, group]);
                if let Ok(Value::Array(consumers)) = run(
                    con,
                    &[b"XINFO", b"CONSUMERS", key.as_bytes(), group.as_bytes()],
                ) {
                    for consumer in consumers {
                        if let Value::Array(fields) = consumer {
                            text += &format!(
                                " {} {}",
                                show(&Ok(fields[1].clone())),
                                show(&Ok(fields[3].clone()))
                            );
                        }
                    }
                }
            }
            text
        }
        other => panic!("{key}: unexpected type {other}"),
    };
    // Errors name the key: the copies have other names.
    format!("{kind}: {}", body.replace(key, "<key>"))
}

pub fn fill(con: &mut redis::Connection) {
    for args in fixtures() {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        run(con, &args).unwrap_or_else(|error| panic!("{args:?}: {error}"));
    }
}
