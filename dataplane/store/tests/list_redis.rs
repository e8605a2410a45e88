//! Lists against a real redis-server (tests/data/list_redis.txt, made by
//! tests/data/make_list_vectors.sh): random pushes, pops with counts, LPOS with RANK / COUNT /
//! MAXLEN, LREM, LINSERT, LSET, LTRIM, LRANGE and LINDEX; each reply and the whole list after
//! it must match. A missing key's replies are the server's and are written out here.

use ember_store::list::{End, ListLimits, ListValue, PositionQuery};

fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(" "))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn number(word: &str) -> i64 {
    word.parse().expect("a number")
}

fn apply(slot: &mut Option<ListValue>, words: &[&str], limits: &ListLimits) -> String {
    let args: Vec<&[u8]> = words[2..].iter().map(|w| w.as_bytes()).collect();
    let end = |name: &str| {
        if name.starts_with('L') {
            End::Front
        } else {
            End::Back
        }
    };
    match words[0] {
        "LPUSH" | "RPUSH" => {
            let list = slot.get_or_insert_with(ListValue::new);
            list.push(end(words[0]), &args, limits).to_string()
        }
        "LPOP" | "RPOP" => match slot {
            None => "nil".to_string(),
            Some(list) => {
                let count = number(words[2]) as usize;
                array(
                    list.pop_many(end(words[0]), count, limits)
                        .iter()
                        .map(|e| text(e)),
                )
            }
        },
        "LPOS" => {
            let mut query = PositionQuery::default();
            let mut with_count = false;
            for pair in words[3..].chunks(2) {
                match pair[0] {
                    "RANK" => query.rank = number(pair[1]),
                    "COUNT" => {
                        query.count = number(pair[1]) as usize;
                        with_count = true;
                    }
                    "MAXLEN" => query.maxlen = number(pair[1]) as usize,
                    other => panic!("unknown LPOS option {other}"),
                }
            }
            let found = match slot {
                None => Vec::new(),
                Some(list) => list.positions(args[0], query).unwrap(),
            };
            match (with_count, found.first()) {
                (true, _) => array(found.iter().map(|i| i.to_string())),
                (false, Some(first)) => first.to_string(),
                (false, None) => "nil".to_string(),
            }
        }
        "LREM" => match slot {
            None => "0".to_string(),
            Some(list) => list.remove(args[1], number(words[2]), limits).to_string(),
        },
        "LINSERT" => match slot {
            None => "0".to_string(),
            Some(list) => {
                let after = words[2] == "AFTER";
                match list.insert(args[1], args[2], after, limits) {
                    Some(len) => len.to_string(),
                    None => "-1".to_string(),
                }
            }
        },
        "LSET" => match slot {
            None => "ERR no such key".to_string(),
            Some(list) => match list.set(number(words[2]), args[1], limits) {
                Ok(()) => "OK".to_string(),
                Err(error) => error.to_string(),
            },
        },
        "LTRIM" => {
            if let Some(list) = slot {
                list.trim(number(words[2]), number(words[3]), limits);
            }
            "OK".to_string()
        }
        "LRANGE" => match slot {
            None => "[]".to_string(),
            Some(list) => array(
                list.range(number(words[2]), number(words[3]))
                    .into_iter()
                    .map(|e| text(&e)),
            ),
        },
        "LINDEX" => match slot.as_ref().and_then(|list| list.get(number(words[2]))) {
            None => "nil".to_string(),
            Some(element) => text(&element),
        },
        other => panic!("unknown command {other}"),
    }
}

#[test]
fn same_replies_and_contents_as_redis() {
    let text_file = include_str!("data/list_redis.txt");
    let limits = ListLimits::default();
    let mut slot: Option<ListValue> = None;
    let mut checked = 0;
    for line in text_file.lines().filter(|line| !line.starts_with('#')) {
        let (query, expected) = line.split_once(" = ").expect("an answer");
        if query == "DEL k" {
            slot = None;
            continue;
        }
        let words: Vec<&str> = query.split_whitespace().collect();
        let reply = apply(&mut slot, &words, &limits);
        if slot.as_ref().is_some_and(ListValue::is_empty) {
            // The keyspace deletes an emptied list.
            slot = None;
        }
        let contents: Vec<String> = slot
            .as_ref()
            .map(|list| list.iter().map(|e| text(&e)).collect())
            .unwrap_or_default();
        assert_eq!(
            format!("{reply}|{}", contents.join(",")),
            expected,
            "after {query}"
        );
        checked += 1;
    }
    assert!(checked > 1000);
}
