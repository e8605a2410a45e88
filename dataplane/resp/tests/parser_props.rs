//! Seeded randomized tests of the request parser: it never panics on arbitrary bytes, and a
//! stream of valid requests parses the same however it is split. proptest prints the seed and the
//! minimal failing input on failure.

use ember_resp::{encode, Limits, RequestParser};
use proptest::prelude::*;

fn parse_stream(chunks: &[&[u8]]) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let mut parser = RequestParser::new(Limits::default());
    let mut buffer = Vec::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            match parser.parse(&buffer) {
                Ok(Some(consumed)) => {
                    let args = parser.args(&buffer);
                    if !args.is_empty() {
                        requests.push(args.iter().map(<[u8]>::to_vec).collect());
                    }
                    buffer.drain(..consumed);
                }
                Ok(None) => break,
                Err(error) => return Err(error.redis_message()),
            }
        }
    }
    Ok(requests)
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_stream(&[&bytes]);
    }

    #[test]
    fn never_panics_on_resp_shaped_noise(parts in proptest::collection::vec(
        prop_oneof![Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()),
                    Just(b"-1".to_vec()), Just(b"3".to_vec()), Just(b"\"".to_vec()),
                    Just(b"abc".to_vec()), Just(b" ".to_vec())], 0..64)) {
        let _ = parse_stream(&[&parts.concat()]);
    }

    #[test]
    fn split_does_not_matter(
        requests in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6), 1..8),
        split_points in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut stream = Vec::new();
        for args in &requests {
            encode::command(&mut stream, args.iter().map(Vec::as_slice));
        }
        let mut cuts: Vec<usize> = split_points.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for cut in cuts {
            chunks.push(&stream[last..cut]);
            last = cut;
        }
        chunks.push(&stream[last..]);
        prop_assert_eq!(parse_stream(&chunks).unwrap(), requests);
    }
}
