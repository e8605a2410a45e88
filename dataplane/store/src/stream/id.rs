//! Stream IDs and their text forms.

use std::fmt;

use super::StreamError;

/// A stream entry ID: milliseconds and a sequence number, ordered as the pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part (usually a Unix time).
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`, below every entry.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// An ID from its parts.
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The next ID, or `None` after [`StreamId::MAX`].
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_add(1).map(|ms| StreamId::new(ms, 0)),
        }
    }

    /// The previous ID, or `None` before `0-0`.
    pub fn previous(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_sub(1).map(|ms| StreamId::new(ms, u64::MAX)),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A number part as Redis's `string2ull` reads it: a canonical integer, or what `strtoull`
/// takes (leading spaces, a `+`, leading zeros), never negative, within 64 bits.
fn parse_u64(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Longest ID argument Redis reads.
const ID_TEXT_LEN_MAX: usize = 127;

/// `ms-seq`, or `ms` alone with `missing_seq` as its sequence; `-` and `+` are refused.
///
/// # Errors
/// [`StreamError::InvalidId`] for anything else.
pub fn parse_id(text: &[u8], missing_seq: u64) -> Result<StreamId, StreamError> {
    parse_parts(text, missing_seq, false).and_then(|parsed| match parsed {
        ParsedId::Id(id) => Ok(id),
        ParsedId::AutoSeq(_) => Err(StreamError::InvalidId),
    })
}

enum ParsedId {
    Id(StreamId),
    AutoSeq(u64),
}

fn parse_parts(
    text: &[u8],
    missing_seq: u64,
    allow_auto_seq: bool,
) -> Result<ParsedId, StreamError> {
    if text.len() > ID_TEXT_LEN_MAX {
        return Err(StreamError::InvalidId);
    }
    let (ms_text, seq_text) = match text.iter().position(|&b| b == b'-') {
        Some(dash) => (&text[..dash], Some(&text[dash + 1..])),
        None => (text, None),
    };
    let ms = parse_u64(ms_text).ok_or(StreamError::InvalidId)?;
    match seq_text {
        None => Ok(ParsedId::Id(StreamId::new(ms, missing_seq))),
        Some(b"*") if allow_auto_seq => Ok(ParsedId::AutoSeq(ms)),
        Some(seq_text) => {
            let seq = parse_u64(seq_text).ok_or(StreamError::InvalidId)?;
            Ok(ParsedId::Id(StreamId::new(ms, seq)))
        }
    }
}

/// XADD's ID argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddId {
    /// `*`: the time now, or after the last ID.
    Auto,
    /// `ms-*`: this millisecond, the next free sequence.
    AutoSeq(u64),
    /// An explicit ID (`ms` alone means `ms-0`).
    Explicit(StreamId),
}

/// Reads XADD's ID argument.
///
/// # Errors
/// [`StreamError::InvalidId`] when it is none of `*`, `ms-*`, `ms-seq`, `ms`.
pub fn parse_add_id(text: &[u8]) -> Result<AddId, StreamError> {
    if text == b"*" {
        return Ok(AddId::Auto);
    }
    Ok(match parse_parts(text, 0, true)? {
        ParsedId::Id(id) => AddId::Explicit(id),
        ParsedId::AutoSeq(ms) => AddId::AutoSeq(ms),
    })
}

/// One end of an XRANGE / XREVRANGE / XPENDING interval: `-`, `+`, an ID (a missing sequence
/// is 0 at the start and the largest at the end), or `(ID` to leave the ID out. The inclusive
/// ID it stands for.
///
/// # Errors
/// [`StreamError::InvalidId`] for a malformed ID; [`StreamError::InvalidStart`] or
/// [`StreamError::InvalidEnd`] for an exclusive bound with nothing beyond it.
pub fn parse_range_bound(text: &[u8], is_start: bool) -> Result<StreamId, StreamError> {
    match text {
        b"-" => return Ok(StreamId::MIN),
        b"+" => return Ok(StreamId::MAX),
        _ => {}
    }
    let missing_seq = if is_start { 0 } else { u64::MAX };
    let Some(inner) = text.strip_prefix(b"(") else {
        return parse_id(text, missing_seq);
    };
    let id = parse_id(inner, missing_seq)?;
    if is_start {
        id.next().ok_or(StreamError::InvalidStart)
    } else {
        id.previous().ok_or(StreamError::InvalidEnd)
    }
}
