//! Whole reply frames, for clients (ember-bench, tests): RESP2 and RESP3, parsed with a depth
//! bound. The server's request path does not use this module; it allocates per frame.

use crate::error::{ProtocolError, ProtocolErrorKind};
use crate::request::parse_i64;

/// Deepest nesting accepted, so a hostile reply cannot exhaust the stack.
pub const FRAME_DEPTH_MAX: usize = 64;

/// One reply frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+text`
    Simple(Vec<u8>),
    /// `-message`
    Error(Vec<u8>),
    /// `:n`
    Integer(i64),
    /// `$len` bulk string.
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or `_`.
    Null,
    /// `*n` array.
    Array(Vec<Frame>),
    /// `,` double.
    Double(f64),
    /// `#t` / `#f`.
    Boolean(bool),
    /// `(` big number, as text.
    BigNumber(Vec<u8>),
    /// `=` verbatim string, with its three-letter format.
    Verbatim(Vec<u8>),
    /// `%` map.
    Map(Vec<(Frame, Frame)>),
    /// `~` set.
    Set(Vec<Frame>),
    /// `>` push.
    Push(Vec<Frame>),
}

/// Parses one frame from the start of `input`: `Ok(Some((frame, consumed)))`, or `Ok(None)` when
/// more bytes are needed.
///
/// # Errors
/// [`ProtocolErrorKind::InvalidFrame`] for an unknown type byte, a bad length or nesting deeper
/// than [`FRAME_DEPTH_MAX`].
pub fn parse_frame(input: &[u8]) -> Result<Parsed, ProtocolError> {
    parse_at(input, 0, 0)
}

fn invalid(at: usize) -> ProtocolError {
    ProtocolError::new(ProtocolErrorKind::InvalidFrame, at)
}

fn line(input: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = input.get(at + 1..)?;
    let cr = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..cr], at + 1 + cr + 2))
}

type Parsed = Option<(Frame, usize)>;

fn parse_at(input: &[u8], at: usize, depth: usize) -> Result<Parsed, ProtocolError> {
    if depth > FRAME_DEPTH_MAX {
        return Err(invalid(at));
    }
    let Some(&type_byte) = input.get(at) else {
        return Ok(None);
    };
    let Some((text, next)) = line(input, at) else {
        return Ok(None);
    };
    let number = || parse_i64(text).ok_or_else(|| invalid(at));
    let frame = match type_byte {
        b'+' => (Frame::Simple(text.to_vec()), next),
        b'-' => (Frame::Error(text.to_vec()), next),
        b':' => (Frame::Integer(number()?), next),
        b'_' => (Frame::Null, next),
        b'#' => (Frame::Boolean(text == b"t"), next),
        b'(' => (Frame::BigNumber(text.to_vec()), next),
        b',' => {
            let text = std::str::from_utf8(text).map_err(|_| invalid(at))?;
            let value = match text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => text.parse().map_err(|_| invalid(at))?,
            };
            (Frame::Double(value), next)
        }
        b'$' | b'=' | b'!' => {
            let len = number()?;
            if len < 0 {
                (Frame::Null, next)
            } else {
                let end = next + len as usize;
                if input.len() < end + 2 {
                    return Ok(None);
                }
                let body = input[next..end].to_vec();
                let frame = match type_byte {
                    b'$' => Frame::Bulk(body),
                    b'!' => Frame::Error(body),
                    _ => Frame::Verbatim(body),
                };
                (frame, end + 2)
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let len = number()?;
            if len < 0 {
                return Ok(Some((Frame::Null, next)));
            }
            let per_entry = if matches!(type_byte, b'%' | b'|') {
                2
            } else {
                1
            };
            let mut items = Vec::with_capacity((len as usize * per_entry).min(1024));
            let mut cursor = next;
            for _ in 0..len as usize * per_entry {
                let Some((item, after)) = parse_at(input, cursor, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                cursor = after;
            }
            let frame = match type_byte {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                b'|' => {
                    // An attribute precedes the frame it annotates; clients here ignore it.
                    return parse_at(input, cursor, depth + 1);
                }
                _ => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut items = items.into_iter();
                    while let (Some(key), Some(value)) = (items.next(), items.next()) {
                        pairs.push((key, value));
                    }
                    Frame::Map(pairs)
                }
            };
            (frame, cursor)
        }
        _ => return Err(invalid(at)),
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let cases: &[(&[u8], Frame)] = &[
            (b"+OK\r\n", Frame::Simple(b"OK".to_vec())),
            (b"$-1\r\n", Frame::Null),
            (
                b"*2\r\n:1\r\n$1\r\na\r\n",
                Frame::Array(vec![Frame::Integer(1), Frame::Bulk(b"a".to_vec())]),
            ),
            (
                b"%1\r\n+a\r\n#t\r\n",
                Frame::Map(vec![(Frame::Simple(b"a".to_vec()), Frame::Boolean(true))]),
            ),
            (b",1.5\r\n", Frame::Double(1.5)),
        ];
        for (input, expected) in cases {
            let (frame, consumed) = parse_frame(input).unwrap().unwrap();
            assert_eq!(&frame, expected);
            assert_eq!(consumed, input.len());
            for split in 0..input.len() {
                assert_eq!(parse_frame(&input[..split]).unwrap(), None);
            }
        }
    }

    #[test]
    fn depth_is_bounded() {
        let input = b"*1\r\n".repeat(FRAME_DEPTH_MAX + 2);
        assert!(parse_frame(&input).is_err());
    }
}
