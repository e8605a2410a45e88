//! The request parser against hostile bytes arriving in arbitrary pieces.
//!
//! Input: byte 0 picks the limits, bytes 1..9 the chunk sizes (cycled), the rest is the stream a
//! client sends. The stream is fed to one parser in those chunks, as a connection's reads would
//! deliver it, and to another parser whole. Checked:
//! - no panic, whatever the bytes and the chunking;
//! - the chunked parse agrees with the one-shot parse: the same requests with the same
//!   arguments, the same error (kind and offset) at the same request, the same unparsed tail;
//! - every request read, encoded again as a client would (`encode::command`), parses back to the
//!   same arguments in one piece.
#![no_main]

use ember_resp::{encode, Limits, ProtocolError, ProtocolErrorKind, RequestParser};
use libfuzzer_sys::fuzz_target;

/// Bytes of the input that choose the chunk sizes.
const CHUNK_PLAN_LEN: usize = 8;

/// Smallest inline limit the target uses (the FPGA tokenizer requires 20 or more too). A `*`/`$`
/// header line's `\r` is looked for up to two bytes past the inline limit, but a buffer that ends
/// in a header line of the limit or more without one is refused as too big, as Redis's
/// `processMultibulkBuffer` refuses it (and the FPGA tokenizer, bit for bit): for a line of the
/// limit or the limit plus one bytes the verdict depends on where a read ended. At 21 or more
/// such a line holds more than the 20 characters of any i64, so once whole it is an invalid
/// length (or still incomplete): an error either way, see `same_error`.
const INLINE_LEN_MAX_MIN: usize = 21;

/// What parsing a whole stream produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Vec<Vec<u8>>>,
    error: Option<ProtocolError>,
    /// Bytes left unparsed at the end (an incomplete request).
    tail_len: usize,
}

fn limits_for(selector: u8) -> Limits {
    if selector < 128 {
        return Limits::default();
    }
    // Small limits, so that every bound is reached by short inputs.
    Limits {
        bulk_len_max: usize::from(selector & 0x0F) * 4,
        multibulk_len_max: usize::from((selector >> 4) & 0x07),
        inline_len_max: INLINE_LEN_MAX_MIN + usize::from(selector & 0x1F),
    }
}

/// Parses `stream` delivered in chunks of the planned sizes (all of it at once when the plan is
/// empty), keeping unparsed bytes as a connection's buffer does.
fn parse_stream(limits: Limits, stream: &[u8], chunk_plan: &[u8]) -> Outcome {
    let mut parser = RequestParser::new(limits);
    let mut outcome = Outcome {
        requests: Vec::new(),
        error: None,
        tail_len: 0,
    };
    let mut buffer: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut chunk_index = 0;
    while fed < stream.len() {
        let chunk_len = match chunk_plan.get(chunk_index % chunk_plan.len().max(1)) {
            None => stream.len(),
            Some(&size) => usize::from(size).max(1),
        };
        chunk_index += 1;
        let end = (fed + chunk_len).min(stream.len());
        buffer.extend_from_slice(&stream[fed..end]);
        fed = end;
        loop {
            match parser.parse(&buffer) {
                Ok(Some(consumed)) => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    let args = parser.args(&buffer);
                    outcome
                        .requests
                        .push(args.iter().map(<[u8]>::to_vec).collect());
                    buffer.drain(..consumed);
                }
                Ok(None) => break,
                Err(error) => {
                    outcome.error = Some(error);
                    return outcome;
                }
            }
        }
    }
    outcome.tail_len = buffer.len();
    outcome
}

/// Errors agree when equal; or when the chunked parse refused a header line as too big where
/// the whole parse, at the same offset, found it an invalid length or was still waiting for its
/// line end (see `INLINE_LEN_MAX_MIN`).
fn same_error(chunked: &Outcome, whole: &Outcome) -> bool {
    use ProtocolErrorKind::*;
    match (chunked.error, whole.error) {
        (Some(a), Some(b)) if a != b => {
            a.offset() == b.offset()
                && matches!(
                    (a.kind(), b.kind()),
                    (MultibulkCountTooBig, InvalidMultibulkLength)
                        | (BulkCountTooBig, InvalidBulkLength)
                )
        }
        (Some(a), None) => {
            matches!(a.kind(), MultibulkCountTooBig | BulkCountTooBig) && whole.tail_len > 0
        }
        (a, b) => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let plan_len = rest.len().min(CHUNK_PLAN_LEN);
    let (chunk_plan, stream) = rest.split_at(plan_len);
    let limits = limits_for(selector);

    let whole = parse_stream(limits, stream, &[]);
    let chunked = parse_stream(limits, stream, chunk_plan);
    assert_eq!(chunked.requests, whole.requests, "requests differ");
    assert!(
        same_error(&chunked, &whole),
        "errors differ: chunked {:?}, whole {:?}",
        chunked.error,
        whole.error
    );
    if whole.error.is_none() && chunked.error.is_none() {
        assert_eq!(chunked.tail_len, whole.tail_len, "tails differ");
    }

    // A request read back as a client would send it parses to the same arguments.
    for request in &whole.requests {
        let mut encoded = Vec::new();
        encode::command(&mut encoded, request.iter().map(Vec::as_slice));
        let mut parser = RequestParser::new(Limits::default());
        let consumed = parser
            .parse(&encoded)
            .expect("an encoded request parses")
            .expect("an encoded request is whole");
        assert_eq!(consumed, encoded.len());
        let args: Vec<Vec<u8>> = parser.args(&encoded).iter().map(<[u8]>::to_vec).collect();
        assert_eq!(&args, request);
    }
});
