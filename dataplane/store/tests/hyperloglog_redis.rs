//! HyperLogLog values against ones a real redis-server wrote (tests/data/hll_redis.txt, made by
//! tests/data/make_hll_vectors.sh): the same commands must give the same bytes, and Redis's
//! bytes loaded here must give Redis's counts.

use std::collections::HashMap;

use ember_store::hyperloglog::{HyperLogLog, SPARSE_BYTES_MAX_DEFAULT};

struct Vector {
    count: u64,
    bytes: Option<Vec<u8>>,
}

fn vectors() -> HashMap<String, Vector> {
    let text = include_str!("data/hll_redis.txt");
    let mut vectors = HashMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let mut fields = line.split(' ');
        let name = fields.next().expect("name").to_string();
        let count = fields.next().expect("count").parse().expect("a count");
        let hex = fields.next().expect("hex");
        let bytes = (hex != "-").then(|| {
            (0..hex.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex"))
                .collect()
        });
        vectors.insert(name, Vector { count, bytes });
    }
    vectors
}

/// One PFADD of e:FROM..e:TO-1.
fn pfadd(hll: &mut HyperLogLog, from: usize, to: usize, sparse_bytes_max: usize) {
    for element in from..to {
        hll.add(format!("e:{element}").as_bytes(), sparse_bytes_max)
            .unwrap();
    }
}

fn built(from: usize, to: usize, sparse_bytes_max: usize) -> HyperLogLog {
    let mut hll = HyperLogLog::new();
    pfadd(&mut hll, from, to, sparse_bytes_max);
    hll
}

fn abc() -> HyperLogLog {
    let mut hll = HyperLogLog::new();
    for element in [b"a", b"b", b"c"] {
        hll.add(element, SPARSE_BYTES_MAX_DEFAULT).unwrap();
    }
    hll
}

/// Each case replays the script's commands here; `counted` says whether Redis ran PFCOUNT
/// before GET (the cached count is then part of the bytes).
#[test]
fn same_commands_same_bytes_and_counts() {
    let vectors = vectors();
    let merged = |sources: &[&HyperLogLog]| {
        let mut destination = HyperLogLog::new();
        destination
            .merge(sources, SPARSE_BYTES_MAX_DEFAULT)
            .unwrap();
        destination
    };
    let cases: Vec<(&str, HyperLogLog, bool)> = vec![
        ("empty", HyperLogLog::new(), false),
        ("abc_uncounted", abc(), false),
        ("abc_counted", abc(), true),
        ("e0_1000", built(0, 1000, 3000), true),
        ("e0_5000", built(0, 5000, 3000), true),
        ("e0_100000", built(0, 100_000, 3000), true),
        ("e0_100_max200", built(0, 100, 200), true),
        ("e0_30_max200", built(0, 30, 200), true),
        (
            "merge_abc_e0_1000",
            merged(&[&abc(), &built(0, 1000, 3000)]),
            true,
        ),
        (
            "merge_abc_e0_5000",
            merged(&[&abc(), &built(0, 5000, 3000)]),
            true,
        ),
    ];
    for (name, mut hll, counted) in cases {
        let vector = &vectors[name];
        let expected = vector.bytes.as_ref().expect("bytes");
        if !counted {
            // Redis's GET came before its PFCOUNT: the cached count is still marked stale.
            assert!(hll.as_bytes() == &expected[..], "{name}: bytes differ");
        }
        assert_eq!(hll.count().unwrap(), vector.count, "{name}: count");
        if counted {
            assert!(hll.as_bytes() == &expected[..], "{name}: bytes differ");
        }
    }
    let union = HyperLogLog::count_union(&[&abc(), &built(0, 1000, 3000), &built(0, 5000, 3000)]);
    assert_eq!(union.unwrap(), vectors["union_abc_e0_1000_e0_5000"].count);
}

/// Redis's bytes, loaded with their cached count cleared, recount to Redis's answer; and adding
/// more to them goes on exactly as in Ember's own copy.
#[test]
fn redis_bytes_recount_and_grow_alike() {
    for (name, vector) in vectors() {
        let Some(bytes) = vector.bytes else { continue };
        let mut stale = bytes.clone();
        stale[15] |= 0x80;
        let mut hll = HyperLogLog::from_bytes(stale).unwrap();
        assert_eq!(hll.count().unwrap(), vector.count, "{name}");
        let mut grown = HyperLogLog::from_bytes(bytes).unwrap();
        pfadd(&mut grown, 200_000, 200_050, SPARSE_BYTES_MAX_DEFAULT);
        assert!(grown.count().unwrap() >= vector.count, "{name}");
    }
}
