//! Multi-key commands over both shards of `--threads 2`, from connections on either shard (the
//! kernel spreads connections over the shards' listeners): replies in request order with the
//! right values, and cross-shard MSETs of the same keys from both shards at once never mix;
//! pipelines over a database large enough that a connection prefetches its batch's keys.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{Ember, Raw};
use ember_store::slot::{key_slot, shard_of_slot};

fn owner(key: &str) -> usize {
    shard_of_slot(key_slot(key.as_bytes()), 2)
}

/// The values of an MGET reply (`None` for a nil).
fn mget_values(reply: &[u8]) -> Vec<Option<String>> {
    let text = String::from_utf8_lossy(reply);
    let mut lines = text.split("\r\n");
    let header = lines.next().unwrap();
    assert!(header.starts_with('*'), "an array: {text}");
    let count: usize = header[1..].parse().unwrap();
    (0..count)
        .map(|_| match lines.next().unwrap() {
            "$-1" => None,
            _ => Some(lines.next().unwrap().to_string()),
        })
        .collect()
}

fn command(raw: &mut Raw, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    raw.command(&args)
}

/// From eight connections in turn: MSET of keys on both shards, then MGET of them interleaved
/// with missing keys and a list (nil, as Redis answers for a key of another type), then EXISTS
/// and DEL counting over both shards; every reply checked against what was written.
#[test]
fn mget_mset_del_exists_over_both_shards_from_either_shard() {
    let ember = Ember::start(2);
    let keys: Vec<String> = (0..12).map(|i| format!("mk:{i}")).collect();
    assert!(keys.iter().any(|k| owner(k) == 0) && keys.iter().any(|k| owner(k) == 1));
    let mut setup = ember.raw();
    assert_eq!(command(&mut setup, &["RPUSH", "mk:list", "x"]), b":1\r\n");
    for connection in 0..8 {
        let mut raw = ember.raw();
        let values: Vec<String> = (0..keys.len())
            .map(|i| format!("c{connection}v{i}"))
            .collect();
        let mut mset = vec!["MSET"];
        for (key, value) in keys.iter().zip(&values) {
            mset.push(key);
            mset.push(value);
        }
        assert_eq!(
            command(&mut raw, &mset),
            b"+OK\r\n",
            "connection {connection}"
        );
        // Every key, a missing key after each third and the list in the middle.
        let mut mget = vec!["MGET"];
        let mut expected = Vec::new();
        for (i, (key, value)) in keys.iter().zip(&values).enumerate() {
            mget.push(key);
            expected.push(Some(value.clone()));
            if i % 3 == 2 {
                mget.push("mk:missing");
                expected.push(None);
            }
            if i == keys.len() / 2 {
                mget.push("mk:list");
                expected.push(None);
            }
        }
        assert_eq!(
            mget_values(&command(&mut raw, &mget)),
            expected,
            "connection {connection}"
        );
        let mut exists = vec!["EXISTS", "mk:missing", "mk:list"];
        exists.extend(keys.iter().map(String::as_str));
        assert_eq!(
            command(&mut raw, &exists),
            format!(":{}\r\n", keys.len() + 1).as_bytes(),
            "connection {connection}"
        );
        let mut del = vec!["DEL", "mk:missing"];
        del.extend(keys.iter().step_by(2).map(String::as_str));
        assert_eq!(
            command(&mut raw, &del),
            format!(":{}\r\n", keys.len().div_ceil(2)).as_bytes(),
            "connection {connection}"
        );
        let mut mget = vec!["MGET"];
        mget.extend(keys.iter().map(String::as_str));
        let expected: Vec<Option<String>> = values
            .iter()
            .enumerate()
            .map(|(i, value)| (i % 2 == 1).then(|| value.clone()))
            .collect();
        assert_eq!(
            mget_values(&command(&mut raw, &mget)),
            expected,
            "connection {connection}"
        );
    }
    // An odd argument count is refused before any key is written, on either shard.
    let mut raw = ember.raw();
    assert_eq!(
        command(&mut raw, &["MSET", "mk:0", "a", "mk:1"]),
        b"-ERR wrong number of arguments for 'mset' command\r\n"
    );
}

/// Writers on both shards MSET the same keys of both shards, each call to one value of its
/// own, half of them naming the keys in reverse order, while readers MGET them. Two MSETs of
/// the same keys must not interleave: every MGET sees one MSET's value everywhere, and so does
/// the final state.
#[test]
fn mset_from_both_shards_on_the_same_keys_never_mixes() {
    let ember = Ember::start(2);
    let keys: Vec<String> = (0..6).map(|i| format!("pair:{i}")).collect();
    assert!(keys.iter().any(|k| owner(k) == 0) && keys.iter().any(|k| owner(k) == 1));
    let port = ember.port;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for writer in 0..6 {
        let keys = keys.clone();
        let stop = stop.clone();
        let writes = writes.clone();
        handles.push(thread::spawn(move || {
            let mut raw = Raw::connect(port);
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let value = format!("w{writer}r{round}");
                let mut args: Vec<&str> = vec!["MSET"];
                let order: Box<dyn Iterator<Item = &String>> = if round % 2 == 0 {
                    Box::new(keys.iter())
                } else {
                    Box::new(keys.iter().rev())
                };
                for key in order {
                    args.push(key);
                    args.push(&value);
                }
                assert_eq!(command(&mut raw, &args), b"+OK\r\n");
                writes.fetch_add(1, Ordering::Relaxed);
                round += 1;
            }
        }));
    }
    for _ in 0..3 {
        let keys = keys.clone();
        let stop = stop.clone();
        handles.push(thread::spawn(move || {
            let mut raw = Raw::connect(port);
            let mut args: Vec<&str> = vec!["MGET"];
            args.extend(keys.iter().map(String::as_str));
            while !stop.load(Ordering::Relaxed) {
                let reply = command(&mut raw, &args);
                let values = mget_values(&reply);
                assert_eq!(values.len(), keys.len());
                assert!(
                    values.iter().all(|v| *v == values[0]),
                    "two MSETs mixed: {}",
                    String::from_utf8_lossy(&reply)
                );
            }
        }));
    }
    // Runs until the writers made progress (generous on a loaded machine), at least 1.5 s.
    thread::sleep(Duration::from_millis(1500));
    for _ in 0..300 {
        if writes.load(Ordering::Relaxed) >= 200 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().expect("a client thread failed");
    }
    assert!(
        writes.load(Ordering::Relaxed) >= 200,
        "writers made progress"
    );
    let mut raw = ember.raw();
    let mut args: Vec<&str> = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    let values = mget_values(&command(&mut raw, &args));
    assert!(
        values.iter().all(|v| v.is_some() && *v == values[0]),
        "the final state is one MSET's: {values:?}"
    );
}

/// The RESP2 reply to reading `value`: a bulk string of its text, or nil.
fn bulk_or_nil(value: Option<impl std::fmt::Display>) -> Vec<u8> {
    match value {
        Some(value) => {
            let text = value.to_string();
            format!("${}\r\n{text}\r\n", text.len()).into_bytes()
        }
        None => b"$-1\r\n".to_vec(),
    }
}

/// Pipelined batches over a database large enough that a connection reads its batch ahead and
/// prefetches the keys (more than `PREFETCH_MIN_KEYS`, 32,768, a shard): every reply is what the
/// commands give run one after the other, with requests cut across reads, inline requests,
/// keyless commands, repeated keys, and fields and members of a large hash and set in the
/// batches; with one shard and with two (where only the keys the connection's shard owns are
/// prefetched). Seeded.
#[test]
fn pipelines_over_a_large_database_answer_in_order() {
    const KEYS: u64 = 80_000;
    for threads in [1, 2] {
        let ember = Ember::start(threads);
        let mut con = ember.connect(false);
        let mut pipe = redis::pipe();
        for i in 0..KEYS {
            pipe.cmd("SET").arg(format!("k:{i}")).arg(i).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        // A hash and a set of the table class, whose fields and members are prefetched too.
        let mut pipe = redis::pipe();
        for j in 0..1_000 {
            pipe.cmd("HSET")
                .arg("big:hash")
                .arg(format!("f:{j}"))
                .arg(j)
                .ignore();
            pipe.cmd("SADD")
                .arg("big:set")
                .arg(format!("m:{j}"))
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        let mut fields: Vec<Option<u64>> = (0..1_500).map(|j| (j < 1_000).then_some(j)).collect();
        let mut values: Vec<Option<i64>> = (0..KEYS as i64).map(Some).collect();
        let mut raw = ember.raw();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64 + threads as u64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for batch in 0..60 {
            let (mut requests, mut expected) = (Vec::new(), Vec::new());
            for _ in 0..1 + next(48) {
                // A few hot keys, so that a batch repeats some.
                let i = if next(4) == 0 { next(8) } else { next(KEYS) } as usize;
                let key = format!("k:{i}");
                let j = next(1_500) as usize;
                let field = format!("f:{j}");
                match next(10) {
                    0 => {
                        let value = next(1_000_000) as i64;
                        requests.push(common::multibulk(&[
                            b"SET",
                            key.as_bytes(),
                            value.to_string().as_bytes(),
                        ]));
                        values[i] = Some(value);
                        expected.push(b"+OK\r\n".to_vec());
                    }
                    1 => {
                        requests.push(common::multibulk(&[b"INCR", key.as_bytes()]));
                        let value = values[i].unwrap_or(0) + 1;
                        values[i] = Some(value);
                        expected.push(format!(":{value}\r\n").into_bytes());
                    }
                    2 => {
                        requests.push(common::multibulk(&[b"DEL", key.as_bytes()]));
                        let existed = values[i].take().is_some();
                        expected.push(format!(":{}\r\n", u8::from(existed)).into_bytes());
                    }
                    3 => {
                        // Inline: its arguments are not in the input where the parser found them.
                        requests.push(format!("EXISTS {key}\r\n").into_bytes());
                        expected
                            .push(format!(":{}\r\n", u8::from(values[i].is_some())).into_bytes());
                    }
                    4 => {
                        requests.push(common::multibulk(&[b"PING"]));
                        expected.push(b"+PONG\r\n".to_vec());
                    }
                    5 | 6 => {
                        requests.push(common::multibulk(&[b"GET", key.as_bytes()]));
                        expected.push(bulk_or_nil(values[i]));
                    }
                    7 => {
                        requests.push(common::multibulk(&[b"HGET", b"big:hash", field.as_bytes()]));
                        expected.push(bulk_or_nil(fields[j]));
                    }
                    8 => {
                        let value = next(1_000_000);
                        requests.push(common::multibulk(&[
                            b"HSET",
                            b"big:hash",
                            field.as_bytes(),
                            value.to_string().as_bytes(),
                        ]));
                        let added = fields[j].replace(value).is_none();
                        expected.push(format!(":{}\r\n", u8::from(added)).into_bytes());
                    }
                    _ => {
                        let member = format!("m:{j}");
                        requests.push(common::multibulk(&[
                            b"SISMEMBER",
                            b"big:set",
                            member.as_bytes(),
                        ]));
                        expected.push(format!(":{}\r\n", u8::from(j < 1_000)).into_bytes());
                    }
                }
            }
            let bytes = requests.concat();
            // Cut the batch in two at a random byte (inside a request, most of the time), the
            // second part sent once the first has had time to be read alone.
            let cut = next(bytes.len() as u64) as usize;
            raw.send(&bytes[..cut]);
            if batch % 3 == 0 {
                thread::sleep(Duration::from_millis(5));
            }
            raw.send(&bytes[cut..]);
            for (index, want) in expected.iter().enumerate() {
                let got = raw.reply();
                assert_eq!(
                    got.escape_ascii().to_string(),
                    want.escape_ascii().to_string(),
                    "threads {threads}, batch {batch}, reply {index}"
                );
            }
        }
        assert_eq!(
            common::run(&mut con, &[b"DBSIZE"]).unwrap(),
            redis::Value::Int(values.iter().flatten().count() as i64 + 2)
        );
    }
}
