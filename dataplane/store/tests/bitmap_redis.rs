//! BITCOUNT and BITPOS against a real redis-server's answers over random strings
//! (tests/data/bitmap_redis.txt, made by tests/data/make_bitmap_vectors.sh).

use ember_store::bitmap::{bit_count, bit_position, Unit};

fn bytes_of(hex: &str) -> Vec<u8> {
    if hex == "-" {
        return Vec::new();
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex"))
        .collect()
}

fn unit_of(word: Option<&&str>) -> Unit {
    match word {
        Some(&"BIT") => Unit::Bit,
        _ => Unit::Byte,
    }
}

#[test]
fn same_answers_as_redis() {
    let text = include_str!("data/bitmap_redis.txt");
    let mut checked = 0;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (query, answer) = line.split_once(" = ").expect("an answer");
        let words: Vec<&str> = query.split_whitespace().collect();
        let bytes = bytes_of(words[0]);
        let number = |at: usize| words.get(at).map(|w| w.parse::<i64>().expect("a number"));
        let got = match words[1] {
            "BITCOUNT" => {
                let range =
                    number(2).map(|start| (start, number(3).unwrap(), unit_of(words.get(4))));
                bit_count(&bytes, range) as i64
            }
            "BITPOS" => {
                let bit = number(2) == Some(1);
                bit_position(&bytes, bit, number(3), number(4), unit_of(words.get(5)))
            }
            other => panic!("unknown command {other}"),
        };
        assert_eq!(got.to_string(), answer, "{query}");
        checked += 1;
    }
    assert!(checked > 2000);
}
