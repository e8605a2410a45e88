//! Streams against a real redis-server (tests/data/stream_redis.txt, made by
//! tests/data/make_stream_vectors.sh): random XADD with trimming, XDEL, XTRIM, XREADGROUP and
//! XACK, and after each the counters XINFO STREAM and XINFO GROUPS showed. Approximate
//! trimming only removes whole blocks, so equal lengths mean equal block boundaries.

use ember_store::stream::{
    parse_add_id, parse_id, GroupStart, ReadFrom, StreamId, StreamLimits, StreamValue, TrimOptions,
    TrimStrategy,
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
            stream
                .read_group(
                    words[2].as_bytes(),
                    words[3].as_bytes(),
                    ReadFrom::New,
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
        other => panic!("unknown command {other}"),
    }
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
        assert_eq!(observed(&stream), expected, "after {query}");
        checked += 1;
    }
    assert!(checked > 1000);
}
