//! Streams against a real redis-server (tests/data/stream_redis.txt, made by
//! tests/data/make_stream_vectors.sh): random XADD with trimming, XDEL, XTRIM, XREADGROUP (new
//! and history), XACK, XCLAIM, XAUTOCLAIM and XGROUP SETID / DELCONSUMER, and after each the
//! counters XINFO STREAM and XINFO GROUPS showed and the whole PEL. Approximate
//! trimming only removes whole blocks, so equal lengths mean equal block boundaries.

use ember_store::stream::{
    parse_add_id, parse_id, parse_range_bound, ClaimOptions, GroupStart, ReadFrom, StreamId,
    StreamLimits, StreamValue, TrimOptions, TrimStrategy,
};

fn text(value: Option<u64>) -> String {
    value.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

/// A trimming clause (`MAXLEN|MINID [~|=] N [LIMIT L]`) at the start of `words`: the options
/// and the words it took, or `Err` when Redis would refuse the command.
fn parse_trim(words: &[&str]) -> Result<(Option<TrimOptions>, usize), ()> {
    let Some(&kind) = words.first().filter(|w| **w == "MAXLEN" || **w == "MINID") else {
        return Ok((None, 0));
    };
    let mut at = 1;
    let approximate = match words[at] {
        "~" => {
            at += 1;
            true
        }
        "=" => {
            at += 1;
            false
        }
        _ => false,
    };
    let strategy = if kind == "MAXLEN" {
        TrimStrategy::MaxLen(words[at].parse().map_err(|_| ())?)
    } else {
        TrimStrategy::MinId(parse_id(words[at].as_bytes(), 0).map_err(|_| ())?)
    };
    at += 1;
    let mut limit = None;
    if words.get(at) == Some(&"LIMIT") {
        limit = Some(words[at + 1].parse().map_err(|_| ())?);
        at += 2;
    }
    Ok((
        Some(TrimOptions {
            strategy,
            approximate,
            limit,
        }),
        at,
    ))
}

fn ids(words: &[&str]) -> Result<Vec<StreamId>, ()> {
    words
        .iter()
        .map(|w| parse_id(w.as_bytes(), 0).map_err(|_| ()))
        .collect()
}

fn apply(stream: &mut StreamValue, words: &[&str], limits: &StreamLimits, now_ms: u64) {
    match words[0] {
        "XADD" => {
            let Ok((trim, used)) = parse_trim(&words[2..]) else {
                return;
            };
            let Ok(id) = parse_add_id(words[2 + used].as_bytes()) else {
                return;
            };
            let fields: Vec<&[u8]> = words[3 + used..].iter().map(|w| w.as_bytes()).collect();
            if stream.add(id, &fields, now_ms, limits).is_ok() {
                if let Some(trim) = trim {
                    stream.trim(trim, limits);
                }
            }
        }
        "XDEL" => {
            if let Ok(ids) = ids(&words[2..]) {
                stream.delete(&ids);
            }
        }
        "XTRIM" => {
            if let Ok((Some(trim), _)) = parse_trim(&words[2..]) {
                stream.trim(trim, limits);
            }
        }
        "XREADGROUP" => {
            let count: usize = words[5].parse().unwrap();
            let from = match words[8] {
                ">" => ReadFrom::New,
                id => ReadFrom::History(parse_id(id.as_bytes(), 0).unwrap()),
            };
            stream
                .read_group(
                    words[2].as_bytes(),
                    words[3].as_bytes(),
                    from,
                    count,
                    false,
                    now_ms,
                )
                .unwrap();
        }
        "XACK" => {
            if let Ok(ids) = ids(&words[3..]) {
                stream.ack(words[2].as_bytes(), &ids).unwrap();
            }
        }
        "XCLAIM" => claim(stream, words, now_ms),
        "XAUTOCLAIM" => {
            let Ok(start) = parse_range_bound(words[5].as_bytes(), true) else {
                return;
            };
            let count: usize = words[7].parse().unwrap();
            let just_id = words.get(8) == Some(&"JUSTID");
            stream
                .auto_claim(b"g", words[3].as_bytes(), 0, start, count, just_id, now_ms)
                .unwrap();
        }
        "XGROUP" if words[1] == "DELCONSUMER" => {
            stream.delete_consumer(b"g", words[4].as_bytes()).unwrap();
        }
        "XGROUP" if words[1] == "SETID" => {
            if let Ok(id) = parse_id(words[4].as_bytes(), 0) {
                stream.set_group_id(b"g", GroupStart::Id(id), None).unwrap();
            }
        }
        other => panic!("unknown command {other}"),
    }
}

/// XCLAIM s g consumer min-idle id... [JUSTID] [FORCE] [RETRYCOUNT n]: IDs are read until one
/// does not parse; the rest must be options, or Redis refuses the whole command.
fn claim(stream: &mut StreamValue, words: &[&str], now_ms: u64) {
    let mut at = 5;
    let mut ids = Vec::new();
    while let Some(id) = words.get(at).and_then(|w| parse_id(w.as_bytes(), 0).ok()) {
        ids.push(id);
        at += 1;
    }
    let mut options = ClaimOptions::default();
    while at < words.len() {
        match words[at] {
            "JUSTID" => options.just_id = true,
            "FORCE" => options.force = true,
            "RETRYCOUNT" => {
                at += 1;
                options.retry_count = Some(words[at].parse().unwrap());
            }
            _ => return,
        }
        at += 1;
    }
    stream
        .claim(b"g", words[3].as_bytes(), 0, &ids, options, now_ms)
        .unwrap();
}

fn pending_list(stream: &StreamValue) -> String {
    stream
        .pending_range(b"g", StreamId::MIN, StreamId::MAX, usize::MAX, None, 0, 1)
        .unwrap()
        .iter()
        .map(|line| {
            let consumer = String::from_utf8_lossy(line.consumer.as_bytes());
            format!("{}/{consumer}/{}", line.id, line.delivery_count)
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn observed(stream: &StreamValue) -> String {
    let info = stream.info();
    let group = &stream.group_infos()[0];
    [
        info.length.to_string(),
        info.blocks.to_string(),
        info.last_generated_id.to_string(),
        info.max_deleted_entry_id.to_string(),
        info.entries_added.to_string(),
        info.recorded_first_entry_id.to_string(),
        text(group.entries_read),
        text(group.lag),
        group.pending.to_string(),
        group.last_delivered_id.to_string(),
        pending_list(stream),
    ]
    .join(" ")
}

#[test]
fn same_counters_as_redis() {
    let text = include_str!("data/stream_redis.txt");
    let mut stream = StreamValue::new();
    let mut round_node_entries = "";
    let mut checked = 0;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (query, expected) = line.rsplit_once(" = ").expect("an answer");
        // An empty PEL leaves a trailing space in Redis's line.
        let expected = expected.trim_end();
        let words: Vec<&str> = query.split_whitespace().collect();
        // Rounds alternate the node limits: new limits start a new stream and group.
        if words[0] != round_node_entries {
            round_node_entries = words[0];
            stream = StreamValue::new();
            stream
                .create_group(b"g", GroupStart::Id(StreamId::MIN), None)
                .unwrap();
        }
        let (entries, bytes) = words[0].split_once('/').expect("entries/bytes");
        let limits = StreamLimits {
            node_bytes_max: bytes.parse().unwrap(),
            node_entries_max: entries.parse().unwrap(),
        };
        apply(&mut stream, &words[1..], &limits, 1);
        assert_eq!(observed(&stream).trim_end(), expected, "after {query}");
        checked += 1;
    }
    assert!(checked > 1000);
}
