//! SSCAN and ZSCAN's cursor: small collections answer whole with cursor 0, as Redis does for its
//! packed encodings; larger ones are walked in the order of a fixed hash of each member, the
//! cursor being the next hash to visit. Every member present from the first call to the last is
//! returned at least once whatever changes meanwhile, which is SCAN's guarantee.

use crate::commands::{errors, is, parse_integer, CommandError};

/// COUNT when none is given (Redis's default).
const COUNT_DEFAULT: usize = 10;

/// A parsed `[MATCH pattern] [COUNT count]`.
pub struct ScanOptions {
    /// Only members matching this glob; None for all (`*` included).
    pub pattern: Option<Vec<u8>>,
    /// Members to look at per call (a hint).
    pub count: usize,
}

/// A cursor as Redis reads it (`strtoul`): an optional sign, then digits; a negative cursor
/// wraps around, as in C.
///
/// # Errors
/// Redis's "invalid cursor".
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    let invalid = || CommandError::from("ERR invalid cursor");
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let magnitude: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(invalid)?;
    Ok(if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

/// Parses the options after the cursor.
///
/// # Errors
/// Syntax errors, a COUNT that is no integer or below 1, as Redis.
pub fn parse_options(args: &[&[u8]]) -> Result<ScanOptions, CommandError> {
    let mut options = ScanOptions {
        pattern: None,
        count: COUNT_DEFAULT,
    };
    let mut index = 0;
    while index < args.len() {
        let value = args
            .get(index + 1)
            .ok_or(CommandError::from(errors::SYNTAX))?;
        if is(args[index], "MATCH") {
            options.pattern = (*value != b"*").then(|| value.to_vec());
        } else if is(args[index], "COUNT") {
            let count = parse_integer(value)?;
            if count < 1 {
                return Err(errors::SYNTAX.into());
            }
            options.count = count as usize;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 2;
    }
    Ok(options)
}

/// FNV-1a: the same member always hashes alike, in every copy of a value and across calls.
fn member_hash(member: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in member {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// One call's worth of `items` from `cursor`: everything at once when `whole`, else about
/// `count` items in hash order. Returns the next cursor (0 when done) and the items that match
/// the pattern.
pub fn select<M: AsRef<[u8]>, T>(
    items: impl Iterator<Item = (M, T)>,
    cursor: u64,
    options: &ScanOptions,
    whole: bool,
) -> (u64, Vec<(M, T)>) {
    let matches = |member: &[u8]| {
        options
            .pattern
            .as_deref()
            .is_none_or(|pattern| ember_store::glob::glob_match(pattern, member))
    };
    if whole {
        return (
            0,
            items
                .filter(|(member, _)| matches(member.as_ref()))
                .collect(),
        );
    }
    let mut pending: Vec<(u64, M, T)> = items
        .map(|(member, item)| (member_hash(member.as_ref()), member, item))
        .filter(|&(hash, _, _)| hash >= cursor)
        .collect();
    let count = options.count.max(1);
    let next_cursor = if pending.len() > count {
        pending.select_nth_unstable_by_key(count - 1, |entry| entry.0);
        let boundary = pending[count - 1].0;
        // Members sharing the boundary's hash go together: the cursor cannot split them.
        pending.retain(|entry| entry.0 <= boundary);
        boundary.wrapping_add(1)
    } else {
        0
    };
    pending.sort_unstable_by_key(|entry| entry.0);
    let found = pending
        .into_iter()
        .filter(|(_, member, _)| matches(member.as_ref()))
        .map(|(_, member, item)| (member, item))
        .collect();
    (next_cursor, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("+7", Some(7)),
            ("-1", Some(u64::MAX)),
            ("x", None),
            ("", None),
            ("18446744073709551616", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_cursor(text.as_bytes()).ok(), *expected, "{text}");
        }
    }

    #[test]
    fn walks_every_member_once() {
        let members: Vec<Vec<u8>> = (0..1000).map(|i| format!("m{i}").into_bytes()).collect();
        let options = ScanOptions {
            pattern: None,
            count: 7,
        };
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let items = members.iter().map(|m| (m.as_slice(), ()));
            let (next, found) = select(items, cursor, &options, false);
            seen.extend(found.into_iter().map(|(m, ())| m.to_vec()));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        seen.sort();
        let mut expected = members.clone();
        expected.sort();
        assert_eq!(seen, expected);
    }
}
