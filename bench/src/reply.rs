//! The client side of RESP: finds where one reply ends in a byte buffer and says what it is.
//!
//! The load generator only ever sends GET, SET and PING, so it only has to understand the
//! replies those can get: simple strings, errors, integers, bulk strings and nulls (RESP2's
//! `$-1` and RESP3's `_`). Anything else is a protocol surprise that fails the run rather than
//! being skipped: a benchmark that cannot tell what it received measures nothing.

/// Longest bulk reply accepted. GET replies are as long as the values the benchmark wrote,
/// and `--value-size` is capped well below this; a longer length means a broken stream.
pub const BULK_LEN_MAX: usize = 64 << 20;

/// Longest simple string, error or integer line accepted, for the same reason.
pub const LINE_LEN_MAX: usize = 64 << 10;

/// One parsed reply. Offsets are into the buffer that was parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+...`: the text is `buffer[start..start + len]`.
    Simple { start: usize, len: usize },
    /// `-...`: the message is `buffer[start..start + len]`.
    Error { start: usize, len: usize },
    /// `:n`.
    Integer(i64),
    /// `$n`: the payload is `buffer[start..start + len]`.
    Bulk { start: usize, len: usize },
    /// `$-1` (RESP2) or `_` (RESP3).
    Null,
}

/// Why a buffer does not hold a reply this client can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// The first byte names a type GET, SET and PING never get back.
    UnexpectedType(u8),
    /// A length or integer that is not a number, or is out of bounds.
    BadNumber,
    /// A line or bulk longer than this client accepts.
    TooLong(usize),
    /// A bulk payload not followed by CRLF.
    MissingTerminator,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::UnexpectedType(byte) => {
                write!(formatter, "unexpected reply type byte 0x{byte:02x}")
            }
            ReplyError::BadNumber => write!(formatter, "malformed number in reply"),
            ReplyError::TooLong(len) => write!(formatter, "reply of {len} bytes is over the limit"),
            ReplyError::MissingTerminator => write!(formatter, "bulk reply not ended by CRLF"),
        }
    }
}

/// Parses the reply that starts at `buffer[start]`.
///
/// Returns `Ok(None)` when the buffer ends before the reply does (read more and call again),
/// or the reply and the offset just past it.
///
/// # Errors
/// Returns a [`ReplyError`] when the bytes are not a reply this client understands.
pub fn parse(buffer: &[u8], start: usize) -> Result<Option<(Reply, usize)>, ReplyError> {
    let Some(&kind) = buffer.get(start) else {
        return Ok(None);
    };
    let Some(line_end) = find_crlf(buffer, start + 1)? else {
        return Ok(None);
    };
    let line = &buffer[start + 1..line_end];
    let after_line = line_end + 2;
    match kind {
        b'+' => Ok(Some((
            Reply::Simple {
                start: start + 1,
                len: line.len(),
            },
            after_line,
        ))),
        b'-' => Ok(Some((
            Reply::Error {
                start: start + 1,
                len: line.len(),
            },
            after_line,
        ))),
        b':' => Ok(Some((Reply::Integer(parse_integer(line)?), after_line))),
        b'_' if line.is_empty() => Ok(Some((Reply::Null, after_line))),
        b'$' => {
            let declared = parse_integer(line)?;
            if declared == -1 {
                return Ok(Some((Reply::Null, after_line)));
            }
            let len = usize::try_from(declared).map_err(|_| ReplyError::BadNumber)?;
            if len > BULK_LEN_MAX {
                return Err(ReplyError::TooLong(len));
            }
            let end = after_line + len;
            if buffer.len() < end + 2 {
                return Ok(None);
            }
            if &buffer[end..end + 2] != b"\r\n" {
                return Err(ReplyError::MissingTerminator);
            }
            Ok(Some((
                Reply::Bulk {
                    start: after_line,
                    len,
                },
                end + 2,
            )))
        }
        other => Err(ReplyError::UnexpectedType(other)),
    }
}

/// Finds the CR of the first CRLF at or after `from`, refusing lines over [`LINE_LEN_MAX`].
fn find_crlf(buffer: &[u8], from: usize) -> Result<Option<usize>, ReplyError> {
    let searched = &buffer[from.min(buffer.len())..];
    match searched.iter().position(|&byte| byte == b'\r') {
        Some(offset) if offset > LINE_LEN_MAX => Err(ReplyError::TooLong(offset)),
        Some(offset) => {
            let cr = from + offset;
            match buffer.get(cr + 1) {
                None => Ok(None),
                Some(b'\n') => Ok(Some(cr)),
                Some(_) => Err(ReplyError::MissingTerminator),
            }
        }
        None if searched.len() > LINE_LEN_MAX => Err(ReplyError::TooLong(searched.len())),
        None => Ok(None),
    }
}

fn parse_integer(digits: &[u8]) -> Result<i64, ReplyError> {
    let text = std::str::from_utf8(digits).map_err(|_| ReplyError::BadNumber)?;
    text.parse::<i64>().map_err(|_| ReplyError::BadNumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        input: &'static [u8],
        expected: Result<Option<(Reply, usize)>, ReplyError>,
    }

    #[test]
    fn parses_the_replies_of_get_set_and_ping() {
        let cases = [
            Case {
                name: "ok",
                input: b"+OK\r\n",
                expected: Ok(Some((Reply::Simple { start: 1, len: 2 }, 5))),
            },
            Case {
                name: "error",
                input: b"-ERR bad\r\n",
                expected: Ok(Some((Reply::Error { start: 1, len: 7 }, 10))),
            },
            Case {
                name: "integer",
                input: b":-42\r\n",
                expected: Ok(Some((Reply::Integer(-42), 6))),
            },
            Case {
                name: "bulk",
                input: b"$3\r\nabc\r\n",
                expected: Ok(Some((Reply::Bulk { start: 4, len: 3 }, 9))),
            },
            Case {
                name: "empty bulk",
                input: b"$0\r\n\r\n",
                expected: Ok(Some((Reply::Bulk { start: 4, len: 0 }, 6))),
            },
            Case {
                name: "resp2 null",
                input: b"$-1\r\n",
                expected: Ok(Some((Reply::Null, 5))),
            },
            Case {
                name: "resp3 null",
                input: b"_\r\n",
                expected: Ok(Some((Reply::Null, 3))),
            },
            Case {
                name: "empty buffer",
                input: b"",
                expected: Ok(None),
            },
            Case {
                name: "line cut before CRLF",
                input: b"+OK",
                expected: Ok(None),
            },
            Case {
                name: "line cut between CR and LF",
                input: b"+OK\r",
                expected: Ok(None),
            },
            Case {
                name: "bulk payload cut",
                input: b"$3\r\nab",
                expected: Ok(None),
            },
            Case {
                name: "bulk terminator cut",
                input: b"$3\r\nabc\r",
                expected: Ok(None),
            },
            Case {
                name: "array is not a GET reply",
                input: b"*1\r\n$1\r\na\r\n",
                expected: Err(ReplyError::UnexpectedType(b'*')),
            },
            Case {
                name: "bulk length not a number",
                input: b"$x\r\n",
                expected: Err(ReplyError::BadNumber),
            },
            Case {
                name: "negative bulk length",
                input: b"$-2\r\n",
                expected: Err(ReplyError::BadNumber),
            },
            Case {
                name: "huge bulk length",
                input: b"$999999999999\r\n",
                expected: Err(ReplyError::TooLong(999_999_999_999)),
            },
            Case {
                name: "bulk without CRLF after payload",
                input: b"$3\r\nabcxy",
                expected: Err(ReplyError::MissingTerminator),
            },
            Case {
                name: "CR not followed by LF",
                input: b"+OK\rx",
                expected: Err(ReplyError::MissingTerminator),
            },
        ];
        for case in cases {
            assert_eq!(parse(case.input, 0), case.expected, "case {}", case.name);
        }
    }

    #[test]
    fn parses_back_to_back_replies_from_an_offset() {
        let buffer = b"+OK\r\n$2\r\nhi\r\n:1\r\n";
        let (first, next) = parse(buffer, 0).unwrap().unwrap();
        assert_eq!(first, Reply::Simple { start: 1, len: 2 });
        let (second, next) = parse(buffer, next).unwrap().unwrap();
        assert_eq!(second, Reply::Bulk { start: 9, len: 2 });
        let (third, next) = parse(buffer, next).unwrap().unwrap();
        assert_eq!(third, Reply::Integer(1));
        assert_eq!(next, buffer.len());
        assert_eq!(parse(buffer, next), Ok(None));
    }

    #[test]
    fn refuses_an_endless_line() {
        let mut buffer = vec![b'+'];
        buffer.resize(LINE_LEN_MAX + 10, b'a');
        assert!(matches!(parse(&buffer, 0), Err(ReplyError::TooLong(_))));
    }
}
