//! Hashes against a real redis-server (tests/data/hash_redis.txt, made by
//! tests/data/make_hash_vectors.sh): random HSET, HSETNX, HDEL, HINCRBY and HINCRBYFLOAT under
//! several `hash-max-listpack-*` settings; each reply, OBJECT ENCODING, HLEN and contents
//! (in order while packed) must match.

use ember_store::hash::{HashLimits, HashValue};

fn apply(hash: &mut HashValue, words: &[&str], limits: &HashLimits) -> String {
    let args: Vec<&[u8]> = words[2..].iter().map(|w| w.as_bytes()).collect();
    match words[0] {
        "HSET" => {
            hash.prepare_for(args.iter().copied(), limits);
            let added = args
                .chunks(2)
                .filter(|pair| hash.insert(pair[0], pair[1], limits, 0))
                .count();
            added.to_string()
        }
        "HSETNX" => {
            // Redis converts only when it sets: an existing field leaves the encoding alone.
            u8::from(hash.insert_if_absent(args[0], args[1], limits, 0)).to_string()
        }
        "HDEL" => args
            .iter()
            .filter(|field| hash.remove(field))
            .count()
            .to_string(),
        "HINCRBY" => {
            let delta: i64 = words[3].parse().unwrap();
            match hash.incr_by(args[0], delta, limits, 0) {
                Ok(value) => value.to_string(),
                Err(error) => error.to_string(),
            }
        }
        "HINCRBYFLOAT" => {
            let delta: f64 = words[3].parse().unwrap();
            match hash.incr_by_float(args[0], delta, limits, 0) {
                Ok(text) => text,
                Err(error) => error.to_string(),
            }
        }
        other => panic!("unknown command {other}"),
    }
}

fn contents(hash: &HashValue) -> String {
    let mut pairs: Vec<String> = hash
        .iter(0)
        .map(|(f, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(&f.bytes()),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    if hash.encoding_name() != "listpack" {
        pairs.sort();
    }
    pairs.join(",")
}

#[test]
fn same_replies_encodings_and_contents_as_redis() {
    let text = include_str!("data/hash_redis.txt");
    let mut hash = HashValue::new();
    let mut round = "";
    let mut checked = 0;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (query, expected) = line.split_once(" = ").expect("an answer");
        let words: Vec<&str> = query.split_whitespace().collect();
        // Rounds alternate the settings: new settings start a new key.
        if words[0] != round {
            round = words[0];
            hash = HashValue::new();
        }
        let (entries, value) = words[0].split_once('/').unwrap();
        let limits = HashLimits {
            listpack_entries_max: entries.parse().unwrap(),
            listpack_value_len_max: value.parse().unwrap(),
        };
        let reply = apply(&mut hash, &words[1..], &limits);
        let encoding = if hash.is_empty() {
            "none"
        } else {
            hash.encoding_name()
        };
        let got = format!("{reply}|{encoding}|{}|{}", hash.len(), contents(&hash));
        assert_eq!(got, expected, "after {query}");
        if hash.is_empty() {
            // The keyspace deletes an emptied hash; the next write makes a new one.
            hash = HashValue::new();
        }
        checked += 1;
    }
    assert!(checked > 1000);
}
