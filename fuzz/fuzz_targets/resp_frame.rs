//! Reply frames: `parse_frame` against hostile bytes, and encode/parse round trips.
//!
//! Checked, on the same input:
//! - the raw bytes as a reply stream: `parse_frame` never panics; a frame it reads, encoded again
//!   with `ember_resp::encode`, parses back to a frame that encodes to the same bytes (a fixed
//!   point), consuming exactly those bytes;
//! - the bytes as a recipe for a frame (RESP3 types, nested up to `GENERATED_DEPTH_MAX`): encoded
//!   in RESP3 it parses back equal; encoded in RESP2 it parses back to its RESP2 form (maps as
//!   flat arrays, doubles as bulk strings, booleans as integers); every strict prefix of an
//!   encoding is incomplete (`Ok(None)`), never an error or another frame.
#![no_main]

use ember_resp::encode::{self, Protocol};
use ember_resp::{parse_frame, Frame};
use libfuzzer_sys::arbitrary::{Result as ArbitraryResult, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Nesting of generated frames; well below `FRAME_DEPTH_MAX` so that every one parses.
const GENERATED_DEPTH_MAX: usize = 8;
/// Elements of one generated aggregate.
const GENERATED_LEN_MAX: usize = 6;
/// Encodings up to this long have every prefix checked; longer ones a sample of prefixes, so one
/// input costs O(n) parses rather than O(n^2).
const EVERY_PREFIX_LEN_MAX: usize = 64;
/// Prefixes checked of a longer encoding.
const SAMPLED_PREFIX_COUNT: usize = 8;

/// Encodes `frame` with Ember's reply encoder. Shapes the encoder has no function for (a big
/// number, an error that is not one clean line, a verbatim string of another format) are
/// written out by hand in their RESP3 form.
fn encode_frame(out: &mut Vec<u8>, frame: &Frame, protocol: Protocol) {
    match frame {
        Frame::Simple(text) => encode::simple(out, text),
        Frame::Error(text) => match std::str::from_utf8(text) {
            Ok(text) if !text.contains(['\r', '\n']) => encode::error(out, text),
            _ => raw(out, b'!', text),
        },
        Frame::Integer(value) => encode::integer(out, *value),
        Frame::Bulk(bytes) => encode::bulk(out, bytes),
        Frame::Null => encode::null(out, protocol),
        Frame::Array(items) => {
            encode::array_len(out, items.len());
            items
                .iter()
                .for_each(|item| encode_frame(out, item, protocol));
        }
        Frame::Double(value) => encode::double(out, *value, protocol),
        Frame::Boolean(value) => encode::boolean(out, *value, protocol),
        Frame::BigNumber(text) => {
            out.push(b'(');
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Frame::Verbatim(body) => match body.strip_prefix(b"txt:") {
            Some(text) => encode::verbatim(out, text, protocol),
            None => raw(out, b'=', body),
        },
        Frame::Map(pairs) => {
            encode::map_len(out, pairs.len(), protocol);
            for (key, value) in pairs {
                encode_frame(out, key, protocol);
                encode_frame(out, value, protocol);
            }
        }
        Frame::Set(items) => {
            encode::set_len(out, items.len(), protocol);
            items
                .iter()
                .for_each(|item| encode_frame(out, item, protocol));
        }
        Frame::Push(items) => {
            encode::push_len(out, items.len(), protocol);
            items
                .iter()
                .for_each(|item| encode_frame(out, item, protocol));
        }
    }
}

/// A length-prefixed frame (`!` blob error, `=` verbatim).
fn raw(out: &mut Vec<u8>, type_byte: u8, body: &[u8]) {
    out.push(type_byte);
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

/// What a RESP2 client reads for `frame` as Ember's encoder writes it in RESP2.
fn resp2_form(frame: &Frame) -> Frame {
    match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            Frame::Array(items.iter().map(resp2_form).collect())
        }
        Frame::Map(pairs) => Frame::Array(
            pairs
                .iter()
                .flat_map(|(key, value)| [resp2_form(key), resp2_form(value)])
                .collect(),
        ),
        Frame::Double(value) => Frame::Bulk(encode::format_double(*value).into_bytes()),
        Frame::Boolean(value) => Frame::Integer(i64::from(*value)),
        Frame::Verbatim(body) => match body.strip_prefix(b"txt:") {
            Some(text) => Frame::Bulk(text.to_vec()),
            None => frame.clone(),
        },
        other => other.clone(),
    }
}

/// Frame equality with NaN equal to itself (a NaN double round-trips as `nan`).
fn same_frame(a: &Frame, b: &Frame) -> bool {
    let all = |x: &[Frame], y: &[Frame]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_frame(p, q))
    };
    match (a, b) {
        (Frame::Double(x), Frame::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Frame::Array(x), Frame::Array(y))
        | (Frame::Set(x), Frame::Set(y))
        | (Frame::Push(x), Frame::Push(y)) => all(x, y),
        (Frame::Map(x), Frame::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same_frame(k1, k2) && same_frame(v1, v2))
        }
        _ => a == b,
    }
}

/// Bytes for a line-delimited frame: no `\r` or `\n` (the generator's simplification; the raw
/// stream above covers lines with lone ones).
fn line_bytes(u: &mut Unstructured<'_>) -> ArbitraryResult<Vec<u8>> {
    let bytes: Vec<u8> = u.arbitrary()?;
    Ok(bytes
        .into_iter()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect())
}

fn generate(u: &mut Unstructured<'_>, depth: usize) -> ArbitraryResult<Frame> {
    let leaf_kinds = 10;
    let kinds = if depth >= GENERATED_DEPTH_MAX {
        leaf_kinds
    } else {
        leaf_kinds + 4
    };
    let items = |u: &mut Unstructured<'_>| -> ArbitraryResult<Vec<Frame>> {
        let len = u.int_in_range(0..=GENERATED_LEN_MAX)?;
        (0..len).map(|_| generate(u, depth + 1)).collect()
    };
    Ok(match u.choose_index(kinds)? {
        0 => Frame::Simple(line_bytes(u)?),
        1 => Frame::Error(line_bytes(u)?),
        2 => Frame::Error(u.arbitrary()?), // any bytes: written as a blob error
        3 => Frame::Integer(u.arbitrary()?),
        4 => Frame::Bulk(u.arbitrary()?),
        5 => Frame::Null,
        6 => Frame::Double(f64::from_bits(u.arbitrary()?)),
        7 => Frame::Boolean(u.arbitrary()?),
        8 => Frame::BigNumber(line_bytes(u)?),
        9 => {
            let mut body = b"txt:".to_vec();
            body.extend_from_slice(u.arbitrary()?);
            Frame::Verbatim(body)
        }
        10 => Frame::Array(items(u)?),
        11 => Frame::Set(items(u)?),
        12 => Frame::Push(items(u)?),
        _ => {
            let len = u.int_in_range(0..=GENERATED_LEN_MAX)?;
            let pairs = (0..len)
                .map(|_| Ok((generate(u, depth + 1)?, generate(u, depth + 1)?)))
                .collect::<ArbitraryResult<Vec<_>>>()?;
            Frame::Map(pairs)
        }
    })
}

/// Parses `encoded`, which must hold exactly one whole frame, and checks its prefixes.
fn parse_whole(encoded: &[u8]) -> Frame {
    let (frame, consumed) = parse_frame(encoded)
        .expect("an encoded frame parses")
        .expect("an encoded frame is whole");
    assert_eq!(consumed, encoded.len(), "frame ends early");
    let check = |cut: usize| {
        assert_eq!(
            parse_frame(&encoded[..cut]),
            Ok(None),
            "prefix of {cut} bytes is not incomplete"
        );
    };
    if encoded.len() <= EVERY_PREFIX_LEN_MAX {
        (0..encoded.len()).for_each(check);
    } else {
        let step = encoded.len() / SAMPLED_PREFIX_COUNT;
        (0..encoded.len()).step_by(step).for_each(check);
        check(encoded.len() - 1);
    }
    frame
}

fn check_raw_stream(data: &[u8]) {
    let Ok(Some((frame, consumed))) = parse_frame(data) else {
        return;
    };
    assert!(consumed <= data.len());
    let mut encoded = Vec::new();
    encode_frame(&mut encoded, &frame, Protocol::Resp3);
    let again = parse_whole(&encoded);
    let mut encoded_again = Vec::new();
    encode_frame(&mut encoded_again, &again, Protocol::Resp3);
    assert_eq!(encoded, encoded_again, "encoding is not a fixed point");
}

fn check_generated(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(frame) = generate(&mut u, 0) else {
        return;
    };
    let mut resp3 = Vec::new();
    encode_frame(&mut resp3, &frame, Protocol::Resp3);
    let parsed = parse_whole(&resp3);
    assert!(
        same_frame(&parsed, &frame),
        "RESP3 round trip: {frame:?} became {parsed:?}"
    );
    let mut resp2 = Vec::new();
    encode_frame(&mut resp2, &frame, Protocol::Resp2);
    let parsed = parse_whole(&resp2);
    let expected = resp2_form(&frame);
    assert!(
        same_frame(&parsed, &expected),
        "RESP2 round trip: {expected:?} became {parsed:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    check_raw_stream(data);
    check_generated(data);
});
